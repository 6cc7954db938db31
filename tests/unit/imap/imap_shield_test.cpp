// The shield's IMAP tokeniser (issue 12 item 3): command lines are tokenised by the
// RFC 3501 §9 grammar before a byte is relayed; a literal marker counts only where an argument
// starts; what the proxy cannot read unambiguously is refused by the proxy, never relayed, and the
// client's own framing of the refused command is followed (no "+" for {n}, {n+} bytes dropped).
#include <catch2/catch.hpp>
#include <functional>
#include <string>
#include <vector>

#include "machine_harness.hpp"
#include "protocols/imap/imap_machine.hpp"
#include "protocols/imap/imap_syntax.hpp"

using namespace tlsbridge;
using protocols::imap::command_scanner;
using protocols::imap::imap_machine;
using protocols::imap::machine_settings;
using test::machine_harness;

namespace {

const std::string greeting =
    "* OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL+ IDLE STARTTLS AUTH=PLAIN] Dovecot ready.\r\n";

machine_settings starttls_front() {
  machine_settings s;
  s.front = config::front_tls::starttls;
  s.require_tls = true;
  s.hostname = "proxy.test";
  return s;
}

using scenario = std::function<void(machine_harness&, imap_machine&)>;

void both_feeds(const machine_settings& settings, const scenario& body,
                const std::string& hello = greeting) {
  std::string transcripts[2];
  for (int bytewise = 0; bytewise < 2; ++bytewise) {
    INFO((bytewise ? "bytes one at a time" : "whole chunks"));
    imap_machine m(settings, hello);
    machine_harness h(m, bytewise == 1);
    h.start();
    h.take_client();
    body(h, m);
    transcripts[bytewise] = h.transcript();
  }
  CHECK(transcripts[0] == transcripts[1]);
}

void to_tls(machine_harness& h) {
  h.client("t0 STARTTLS\r\n");
  h.front_tls();
  h.take_client();
  h.take_marks();
}

}  // namespace

TEST_CASE("imap command_scanner: yes / no / literal table", "[imap][shield]") {
  using r = command_scanner::result;
  struct row {
    const char* line;
    r what;
    std::uint64_t size = 0;
    bool sync = true;
  };
  const row rows[] = {
      // accepted
      {"a NOOP", r::complete},
      {"a1 LOGIN alice secret", r::complete},
      {"a LOGIN \"al ice\" \"p\\\"w\\\\\"", r::complete},
      {"a LOGIN {5}", r::literal, 5, true},
      {"a LOGIN {5+}", r::literal, 5, false},
      {"a LOGIN \"{5}\" {00000000000000000022+}", r::literal, 22, false},
      {"a APPEND INBOX (\\Seen) ~{12}", r::literal, 12, true},
      {"a APPEND INBOX {0}", r::literal, 0, true},
      {"a FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (FROM TO)]<0.100>)", r::complete},
      {"a ID (\"name\" {5}", r::literal, 5, true},
      {"a LIST \"\" *", r::complete},
      {"a STORE 1 +FLAGS (\\Deleted)", r::complete},
      {"a SELECT \"Entw\xc3\xbcrfe\"", r::complete},  // UTF-8 in a quoted string (RFC 6855)
      {"a ID ()", r::complete},
      // refused: the vectors and their relatives
      {"a NOOP x{22+}", r::refused},
      {"a NOOP x~{22+}", r::refused},
      {"a NOOP \"{22+}", r::refused},
      {"a NOOP \"x\"{22+}", r::refused},
      {"a NOOP ({22+}x", r::refused},
      {"a NOOP {22+} ", r::refused},
      {"a NOOP {22+}x", r::refused},
      {"a NOOP {}", r::refused},
      {"a NOOP {+}", r::refused},
      {"a NOOP {2 2}", r::refused},
      {"a NOOP {-1}", r::refused},
      {"a NOOP {22", r::refused},
      {"{5+}", r::refused},                   // a literal as the tag
      {"a{5+} NOOP", r::refused},             // a literal at the end of the tag
      {"a NOOP{5+}", r::refused},             // ... of the command name
      {"a\tLOGIN alice secret", r::refused},  // TAB instead of SP
      {" a LOGIN alice secret", r::refused},  // leading SP
      {"a  LOGIN alice secret", r::refused},  // two SP
      {"a LOGIN alice  secret", r::refused},
      {"a LOGIN alice secret ", r::refused},
      {"a LOGIN alice\tsecret", r::refused},
      {"a LOGIN alice sec\0ret", r::refused},
      {"a LOGIN alice sec\rret", r::refused},
      {"a LOGIN \"a\tb\" x", r::refused},
      {"a LOGIN \"a\\b\" x", r::refused},  // only \" and \\ may be escaped
      {"a LOGIN \"alice secret", r::refused},
      {"a LOGIN al\"ice\" x", r::refused},
      {"a NOOP (x", r::refused},
      {"a NOOP x)", r::refused},
      {"a+ NOOP", r::refused},  // "+" is not a tag character
      {"a", r::refused},
      {"a ", r::refused},
  };
  for (const auto& row : rows) {
    // Lines with an embedded NUL need their real length.
    std::string line(row.line);
    if (line == "a LOGIN alice sec") line = std::string("a LOGIN alice sec\0ret", 21);
    INFO(line);
    command_scanner s;
    auto o = s.first(line, false);
    CHECK(o.what == row.what);
    if (o.what == r::refused) CHECK(!o.rule.empty());
    if (o.what == r::literal && row.what == r::literal) {
      CHECK(o.literal.size == row.size);
      CHECK(o.literal.synchronizing == row.sync);
    }
  }
  // 8-bit outside a quoted string: refused before TLS only.
  command_scanner s;
  CHECK(s.first("a SELECT Entw\xc3\xbcrfe", false).what == r::refused);
  CHECK(s.first("a SELECT Entw\xc3\xbcrfe", true).what == r::complete);
  // Huge sizes saturate rather than wrap.
  auto huge = s.first("a APPEND x {99999999999999999999999999}", false);
  REQUIRE(huge.what == r::literal);
  CHECK(huge.literal.size == UINT64_MAX);
}

TEST_CASE("imap command_scanner: arguments however spelled, across literals", "[imap][shield]") {
  using r = command_scanner::result;
  command_scanner s;
  REQUIRE(s.first("a login {5+}", true).what == r::literal);
  CHECK(s.tag() == "a");
  CHECK(s.name() == "LOGIN");
  s.literal_data("al");
  s.literal_data("ice");
  s.literal_end();
  REQUIRE(s.next(" \"pw\"", true).what == r::complete);
  REQUIRE(s.arguments().size() == 2);
  CHECK(s.arguments()[0] == "alice");
  CHECK(s.arguments()[1] == "pw");
  // After a literal: SP, ")" or the end only.
  REQUIRE(s.first("a LOGIN {5}", true).what == r::literal);
  s.literal_data("alice");
  CHECK(s.next("x", true).what == r::refused);
  REQUIRE(s.first("a ID ({1}", true).what == r::literal);
  s.literal_data("x");
  CHECK(s.next(")", true).what == r::complete);
  REQUIRE(s.first("a LOGIN \"a\\\"b\" pw", true).what == r::complete);
  CHECK(s.arguments()[0] == "a\"b");
}

TEST_CASE("imap shield: the issue's literal vectors are refused, never relayed", "[imap][shield]") {
  // Issue 12 item 3: "a NOOP x{22+}" + "b LOGIN alice secret" (22 bytes) before STARTTLS.
  for (std::string first : {"a NOOP x{22+}", "a NOOP ~{22+}", "a NOOP \"{22+}", "a NOOP x~{22+}"}) {
    both_feeds(starttls_front(), [&](machine_harness& h, imap_machine& m) {
      INFO(first);
      h.client(first + "\r\nb LOGIN alice secret\r\n");
      CHECK(h.take_backend().empty());
      // The 22 bytes were read as the refused command's literal and dropped; the command ends
      // with the client's next line (the rest after the literal, here empty).
      CHECK(h.take_client().empty());
      h.client("\r\n");
      const std::string reply = h.take_client();
      CHECK(reply.starts_with("a BAD "));
      CHECK(reply.find("b NO") == std::string::npos);
      h.client("c NOOP\r\n");
      CHECK(h.take_backend() == "c NOOP\r\n");
      auto events = m.take_audit_events();
      REQUIRE(events.size() == 1);
      CHECK(events[0]["event"] == "imap.refused");
      CHECK(m.refusals() == 1);
    });
  }
}

TEST_CASE("imap shield: malformed lines get BAD from the proxy", "[imap][shield]") {
  both_feeds(starttls_front(), [](machine_harness& h, imap_machine& m) {
    h.client("a\tLOGIN alice secret\r\n");
    CHECK(h.take_client().starts_with("* BAD "));  // no valid tag
    h.client(" a LOGIN alice secret\r\n");
    CHECK(h.take_client().starts_with("* BAD "));
    h.client("b NOOP \"unterminated\r\n");
    CHECK(h.take_client().starts_with("b BAD "));
    // A synchronizing marker on a refused line: no "+", so the client sends no literal; what it
    // sends next is a new command.
    h.client("c NOOP x{5}\r\nd NOOP\r\n");
    CHECK(h.take_client().starts_with("c BAD "));
    CHECK(h.take_backend() == "d NOOP\r\n");
    h.backend("d OK done\r\n");
    CHECK(h.take_client() == "d OK done\r\n");
    // STARTTLS with an argument or a literal.
    h.client("e STARTTLS {5+}\r\nhello\r\n");
    CHECK(h.take_client().starts_with("e BAD "));
    CHECK(!m.client_input_paused());
    // 8-bit outside a quoted string before TLS.
    h.client("f SELECT Entw\xc3\xbcrfe\r\n");
    CHECK(h.take_client().starts_with("f BAD "));
    CHECK(h.take_backend().empty());
  });
}

TEST_CASE("imap shield: non-synchronizing literals before TLS are refused and dropped",
          "[imap][shield]") {
  both_feeds(starttls_front(), [](machine_harness& h, imap_machine&) {
    // Even in a command that is otherwise fine: its bytes are read and dropped with the rest of
    // the command, so no command can hide in one.
    h.client("a ID ({4+}\r\nname {21+}\r\nb LOGIN alice secret)\r\nc NOOP\r\n");
    CHECK(h.take_client().starts_with("a BAD "));
    CHECK(h.take_backend() == "c NOOP\r\n");
    // A later fragment of a relayed command: the backend is mid-command, both legs end.
    h.client("d ID ({4}\r\n");
    CHECK(h.take_backend() == "d ID ({4}\r\n");
    h.backend("+ OK\r\n");
    h.client("name {5+}\r\n");
    CHECK(h.take_backend() == "name");
    CHECK(h.closed());
  });
}

TEST_CASE("imap shield: logins are recognised however they are spelled", "[imap][shield]") {
  // Before TLS: refused with PRIVACYREQUIRED, no "+" for a synchronizing literal.
  both_feeds(starttls_front(), [](machine_harness& h, imap_machine&) {
    for (std::string login :
         {"a LOGIN \"alice\" \"secret\"", "a login alice secret", "a LoGiN {5}",
          "a AUTHENTICATE \"PLAIN\"", "a authenticate PLAIN =", "a AUTHENTICATE {5}"}) {
      INFO(login);
      h.client(login + "\r\n");
      CHECK(h.take_client() == "a NO [PRIVACYREQUIRED] Use STARTTLS before authenticating\r\n");
      CHECK(h.take_backend().empty());
    }
  });
  // After TLS: relayed and audited with the user name, from a quoted string or a literal.
  both_feeds(starttls_front(), [](machine_harness& h, imap_machine& m) {
    to_tls(h);
    h.client("b LOGIN {5}\r\n");
    CHECK(h.take_backend() == "b LOGIN {5}\r\n");
    h.client("alice {6+}\r\n");  // held: "+" not yet there
    CHECK(h.take_backend().empty());
    h.backend("+ OK\r\n");
    CHECK(h.take_backend() == "alice {6+}\r\n");
    h.client("secret\r\n");
    CHECK(h.take_backend() == "secret\r\n");
    h.backend("b OK [CAPABILITY IMAP4rev1] Logged in\r\n");
    auto events = m.take_audit_events();
    REQUIRE(events.size() == 1);
    CHECK(events[0]["event"] == "imap.login");
    CHECK(events[0]["user"] == "alice");
    h.client("c LOGIN \"bob \\\"q\\\"\" x\r\n");
    h.backend("c NO nope\r\n");
    events = m.take_audit_events();
    REQUIRE(events.size() == 1);
    CHECK(events[0]["user"] == "bob \"q\"");
  });
}

TEST_CASE("imap shield: AUTHENTICATE continuations and IDLE's DONE still work", "[imap][shield]") {
  both_feeds(starttls_front(), [](machine_harness& h, imap_machine& m) {
    to_tls(h);
    h.client("a AUTHENTICATE PLAIN\r\nAGFsaWNlAHNlY3JldA==\r\n");
    CHECK(h.take_backend() == "a AUTHENTICATE PLAIN\r\n");  // the response waits for "+"
    h.backend("+ \r\n");
    CHECK(h.take_backend() == "AGFsaWNlAHNlY3JldA==\r\n");
    h.backend("a OK Logged in\r\n");
    auto events = m.take_audit_events();
    REQUIRE(events.size() == 1);
    CHECK(events[0]["user"] == "alice");
    h.client("b AUTHENTICATE PLAIN\r\n");
    h.backend("+ \r\n");
    h.client("*\r\n");  // cancel (RFC 3501 §6.2.2)
    CHECK(h.take_backend() == "b AUTHENTICATE PLAIN\r\n*\r\n");
    h.backend("b BAD cancelled\r\n");
    h.client("c IDLE\r\n");
    h.backend("+ idling\r\n");
    h.client("DONE\r\n");
    h.backend("c OK done\r\nd OK\r\n");
    CHECK(h.take_backend() == "c IDLE\r\nDONE\r\n");
    h.client("d NOOP\r\n");
    CHECK(h.take_backend() == "d NOOP\r\n");
  });
}

TEST_CASE("imap shield: tags, pipelining behind a synchronizing literal, capabilities",
          "[imap][shield]") {
  both_feeds(starttls_front(), [](machine_harness& h, imap_machine&) {
    to_tls(h);
    // A second command with the tag of one in flight is refused: the backend's tagged reply to
    // the first would otherwise end the second's wait for "+".
    h.client("a NOOP\r\na LOGIN {20}\r\n");
    CHECK(h.take_backend() == "a NOOP\r\n");
    CHECK(h.take_client() == "");
    h.backend("a OK NOOP\r\n");
    CHECK(h.take_client() ==
          "a OK NOOP\r\na BAD [CLIENTBUG] Refused by proxy: tag already in use\r\n");
    // Commands pipelined behind {n} before "+" are held and become the literal once it comes.
    h.client("b APPEND INBOX {11}\r\nc LOGIN x y\r\n");
    CHECK(h.take_backend() == "b APPEND INBOX {11}\r\n");
    h.backend("+ go\r\n");
    // The held bytes: 11 of literal, then the CRLF that ends the APPEND.
    CHECK(h.take_backend() == "c LOGIN x y\r\n");
    h.backend("b OK appended\r\n");
    h.take_client();
    // literal8 only in APPEND, and only to a BINARY server (this one did not say BINARY).
    h.client("d APPEND INBOX ~{3}\r\n");
    CHECK(h.take_client().starts_with("d BAD "));
    h.backend("* CAPABILITY IMAP4rev1 BINARY LITERAL+\r\n");
    h.take_client();
    h.client("e APPEND INBOX ~{3+}\r\nabc\r\n");
    CHECK(h.take_backend() == "e APPEND INBOX ~{3+}\r\nabc\r\n");
    h.backend("e OK appended\r\n");
    h.take_client();
    h.client("f SEARCH ~{3+}\r\nabc\r\n");
    CHECK(h.take_client().starts_with("f BAD "));
    CHECK(h.take_backend().empty());
  });
  // A backend without LITERAL+/LITERAL- would read "{n+}" as text: refused after TLS too.
  both_feeds(
      starttls_front(),
      [](machine_harness& h, imap_machine&) {
        to_tls(h);
        h.client("a LOGIN {5+}\r\nalice x\r\nb NOOP\r\n");
        CHECK(h.take_client().starts_with("a BAD "));
        CHECK(h.take_backend() == "b NOOP\r\n");
      },
      "* OK [CAPABILITY IMAP4rev1 STARTTLS] ready\r\n");
}

TEST_CASE("imap shield: literals only in commands whose grammar has strings", "[imap][shield]") {
  using protocols::imap::literal_allowed_in;
  CHECK(literal_allowed_in("LOGIN", ""));
  CHECK(literal_allowed_in("APPEND", ""));
  CHECK(literal_allowed_in("UID", "fetch"));
  CHECK(!literal_allowed_in("UID", "STORE"));
  CHECK(!literal_allowed_in("NOOP", ""));
  CHECK(!literal_allowed_in("AUTHENTICATE", ""));
  CHECK(!literal_allowed_in("XFOO", ""));
  both_feeds(starttls_front(), [](machine_harness& h, imap_machine& m) {
    to_tls(h);
    // Dovecot's imap process answers NOOP (or an unknown command) without parsing its arguments
    // and skips to the next LF: the literal's bytes would be its next command.
    h.client("a NOOP {19+}\r\nb COMPRESS DEFLATE\r\n\r\nc CHECK {5}\r\nd XFOO {3+}\r\nabc\r\n");
    CHECK(h.take_backend().empty());
    const std::string replies = h.take_client();
    CHECK(replies.starts_with("a BAD [CLIENTBUG] Refused by proxy: literal in a command"));
    CHECK(replies.find("c BAD") != std::string::npos);
    CHECK(replies.find("d BAD") != std::string::npos);
    // AUTHENTICATE's arguments are atoms (RFC 4959): quoted or literal spellings are refused.
    h.client("e AUTHENTICATE \"PLAIN\"\r\nf AUTHENTICATE PLAIN {4+}\r\nAGFs\r\n");
    const std::string auth = h.take_client();
    CHECK(auth.starts_with("e BAD "));
    CHECK(auth.find("f BAD ") != std::string::npos);
    CHECK(h.take_backend().empty());
    // The same literal where the grammar has a string passes.
    h.client("g SELECT {5+}\r\nINBOX\r\n");
    CHECK(h.take_backend() == "g SELECT {5+}\r\nINBOX\r\n");
    CHECK(m.refusals() == 5);
  });
}

TEST_CASE("imap shield: the backend's status texts never announce a literal", "[imap][shield]") {
  using protocols::imap::response_literal;
  CHECK(!response_literal("a NO Mailbox doesn't exist: x{30}", true));
  CHECK(!response_literal("* NO Mailbox doesn't exist: x {30}", true));
  CHECK(!response_literal("* BYE {5}", true));
  CHECK(!response_literal("+ {5}", true));
  CHECK(!response_literal("* 1 FETCH (BODY[] x{5}", true));
  CHECK(response_literal("* 1 FETCH (BODY[] {5}", true)->size == 5);
  CHECK(response_literal("* 1 FETCH (BINARY[] ~{5}", true)->size == 5);
  CHECK(response_literal("* LIST () \"/\" {5}", true)->size == 5);
  CHECK(response_literal(" BODY[HEADER] {7}", false)->size == 7);
  both_feeds(starttls_front(), [](machine_harness& h, imap_machine&) {
    to_tls(h);
    // The server echoes a mailbox name ending in "{30}" in a NO; the FETCH after it holds a
    // message whose lines would otherwise be read as responses (a "+" and a tagged OK).
    h.client("a STATUS \"x{30}\" (MESSAGES)\r\nb FETCH 1 BODY[]\r\nc IDLE\r\n");
    h.take_backend();
    const std::string body = "+ fake\r\nc OK fake\r\n";
    h.backend("a NO Mailbox doesn't exist: x{30}\r\n* 1 FETCH (BODY[] {" +
              std::to_string(body.size()) + "}\r\n" + body + ")\r\nb OK done\r\n");
    h.take_client();
    // No "+" was taken from the message: IDLE's DONE waits for the server's real "+".
    h.client("DONE\r\n");
    CHECK(h.take_backend().empty());
    h.backend("+ idling\r\n");
    CHECK(h.take_backend() == "DONE\r\n");
  });
}
