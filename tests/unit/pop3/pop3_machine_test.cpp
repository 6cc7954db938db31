#include "protocols/pop3/pop3_machine.hpp"

#include <catch2/catch.hpp>
#include <functional>

#include "../imap/machine_harness.hpp"
#include "protocols/pop3/pop3_backend_opener.hpp"
#include "protocols/pop3/pop3_syntax.hpp"

using namespace tlsbridge;
using namespace tlsbridge::protocols::pop3;
using test::machine_harness;

namespace {

const std::string greeting = "+OK Dovecot ready. <1.2@backend>\r\n";
const std::string backend_capa =
    "+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\nSTLS\r\nUSER\r\nSASL PLAIN\r\n.\r\n";

machine_settings starttls_front() {
  machine_settings s;
  s.front = config::front_tls::starttls;
  s.require_tls = true;
  s.hostname = "proxy.test";
  return s;
}

machine_settings implicit_front() {
  auto s = starttls_front();
  s.front = config::front_tls::implicit;
  return s;
}

using scenario = std::function<void(machine_harness&, pop3_machine&)>;

void both_feeds(const machine_settings& settings, const scenario& body) {
  std::string transcripts[2];
  for (int bytewise = 0; bytewise < 2; ++bytewise) {
    INFO((bytewise ? "bytes one at a time" : "whole chunks"));
    pop3_machine m(settings, greeting);
    machine_harness h(m, bytewise == 1);
    h.start();
    CHECK(h.take_client() == greeting);
    body(h, m);
    transcripts[bytewise] = h.transcript();
  }
  CHECK(transcripts[0] == transcripts[1]);
}

}  // namespace

TEST_CASE("pop3 multiline_scanner: terminator and dot-stuffing table", "[pop3]") {
  struct row {
    const char* body;
    std::size_t consumed;  // 0 = not done within the input
  };
  const row rows[] = {
      {".\r\n", 3},
      {"line\r\n.\r\n", 9},
      {"..\r\n.\r\n", 7},              // ".." is a stuffed "."
      {"...\r\n.x\r\n.\r\nrest", 12},  // "..." and ".x" are data
      {"a.\r\n.\r\n", 7},
      {"\r\n.\r\n", 5},
      {"line\r\n.. \r\n", 0},
      {"line\r\n", 0},
      {"x.\r\n", 0},
      {".\n", 2},  // a bare LF also ends a line
  };
  for (const auto& r : rows) {
    INFO(r.body);
    std::string_view body(r.body);
    multiline_scanner whole;
    auto res = whole.scan(body);
    CHECK(res.done == (r.consumed != 0));
    if (r.consumed) CHECK(res.consumed == r.consumed);
    // One byte at a time: the same end.
    multiline_scanner bytes;
    std::size_t total = 0;
    bool done = false;
    for (std::size_t i = 0; i < body.size() && !done; ++i) {
      auto b = bytes.scan(body.substr(i, 1));
      total += b.consumed;
      done = b.done;
    }
    CHECK(done == (r.consumed != 0));
    if (r.consumed) CHECK(total == r.consumed);
  }
}

TEST_CASE("pop3 multi-line commands and CAPA rewriting table", "[pop3]") {
  CHECK(has_multiline_reply("RETR", "1"));
  CHECK(has_multiline_reply("top", "1 0"));
  CHECK(has_multiline_reply("LIST", ""));
  CHECK(!has_multiline_reply("LIST", "1"));
  CHECK(has_multiline_reply("UIDL", ""));
  CHECK(!has_multiline_reply("UIDL", "2"));
  CHECK(has_multiline_reply("CAPA", ""));
  CHECK(has_multiline_reply("AUTH", ""));
  CHECK(!has_multiline_reply("AUTH", "PLAIN"));
  CHECK(!has_multiline_reply("STAT", ""));
  const std::vector<std::string> lines{"TOP", "STLS", "USER", "SASL PLAIN LOGIN", "stls"};
  CHECK(rewrite_capa(lines, {.offer_stls = true, .hide_sasl = true, .hide_user = true}) ==
        std::vector<std::string>{"TOP", "STLS"});
  CHECK(rewrite_capa(lines, {}) == std::vector<std::string>{"TOP", "USER", "SASL PLAIN LOGIN"});
}

TEST_CASE("pop3 CAPA is rewritten for the front state; STLS answered locally", "[pop3]") {
  both_feeds(starttls_front(), [](machine_harness& h, pop3_machine& m) {
    h.client("CAPA\r\n");
    CHECK(h.take_backend() == "CAPA\r\n");
    h.backend(backend_capa);
    CHECK(h.take_client() ==
          "+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\nSTLS\r\n.\r\n");
    h.client("STLS\r\nUSER evil\r\n");
    CHECK(h.take_client() == "+OK Begin TLS negotiation\r\n");
    CHECK(h.take_marks() == std::vector<std::string>{"start_front_tls"});
    CHECK(h.take_backend().empty());
    CHECK(m.facts().starttls_injection);
    CHECK(m.facts().injected_bytes == 11);
    h.front_tls();
    h.client("CAPA\r\n");
    h.backend(backend_capa);
    CHECK(h.take_client() ==
          "+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\nUSER\r\nSASL PLAIN\r\n.\r\n");
    h.client("STLS\r\n");
    CHECK(h.take_client() == "-ERR TLS is already active\r\n");
  });
}

TEST_CASE("pop3 require_tls refuses USER/PASS/APOP/AUTH before TLS", "[pop3]") {
  both_feeds(starttls_front(), [](machine_harness& h, pop3_machine& m) {
    h.client("USER alice\r\nPASS secret\r\nAPOP alice 0123\r\nAUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n");
    const std::string refusal = "-ERR Plaintext authentication is not allowed: use STLS first\r\n";
    CHECK(h.take_client() == refusal + refusal + refusal + refusal);
    CHECK(h.take_backend().empty());
    // Each refusal is audited with its rule, none as a login.
    auto events = m.take_audit_events();
    CHECK(events.size() == 4);
    for (auto& e : events) CHECK(e["event"] == "pop3.refused");
  });
}

TEST_CASE("pop3 pipelined login, RETR with dot-stuffed trap lines, QUIT", "[pop3]") {
  const std::string body = "Subject: trap\r\n\r\n..\r\n+OK fake\r\n...\r\n.STLS\r\n-ERR fake\r\n";
  both_feeds(implicit_front(), [&](machine_harness& h, pop3_machine& m) {
    h.client("USER alice\r\nPASS secret\r\nSTAT\r\n");
    CHECK(h.take_backend() == "USER alice\r\nPASS secret\r\nSTAT\r\n");
    h.backend("+OK\r\n+OK Logged in.\r\n+OK 1 100\r\n");
    CHECK(h.take_client() == "+OK\r\n+OK Logged in.\r\n+OK 1 100\r\n");
    auto events = m.take_audit_events();
    REQUIRE(events.size() == 1);
    CHECK(events[0]["event"] == "pop3.login");
    CHECK(events[0]["user"] == "alice");
    CHECK(events[0]["result"] == "+OK Logged in.");

    h.client("RETR 1\r\nLIST 1\r\nLIST\r\nQUIT\r\n");
    const std::string replies = "+OK 100 octets\r\n" + body + ".\r\n" + "+OK 1 100\r\n" +
                                "+OK 1 messages\r\n1 100\r\n.\r\n";
    h.backend(replies);
    CHECK(h.take_client() == replies);
    CHECK(!h.closed());
    h.backend("+OK Logging out.\r\n");
    CHECK(h.take_client() == "+OK Logging out.\r\n");
    CHECK(h.closed());
    CHECK(m.facts().outcome == "ok");
  });
}

TEST_CASE("pop3 AUTH PLAIN exchange and -ERR multi-line commands", "[pop3]") {
  both_feeds(implicit_front(), [](machine_harness& h, pop3_machine& m) {
    h.client("AUTH PLAIN\r\n");
    CHECK(h.take_backend() == "AUTH PLAIN\r\n");
    h.backend("+ \r\n");
    CHECK(h.take_client() == "+ \r\n");
    h.client("AGFsaWNlAHNlY3JldA==\r\nSTAT\r\n");
    CHECK(h.take_backend() == "AGFsaWNlAHNlY3JldA==\r\n");  // STAT held until AUTH completes
    h.backend("+OK Logged in.\r\n");
    CHECK(h.take_backend() == "STAT\r\n");
    auto events = m.take_audit_events();
    REQUIRE(events.size() == 1);
    CHECK(events[0]["user"] == "alice");
    // A -ERR to a multi-line command has no body.
    h.backend("+OK 0 0\r\n");
    h.client("RETR 9\r\nNOOP\r\n");
    h.backend("-ERR There's no message 9.\r\n+OK\r\n");
    CHECK(h.take_client() == "+OK Logged in.\r\n+OK 0 0\r\n-ERR There's no message 9.\r\n+OK\r\n");
  });
}

TEST_CASE("pop3 oversized line is refused and the session goes on; endings", "[pop3]") {
  both_feeds(implicit_front(), [](machine_harness& h, pop3_machine& m) {
    h.client("NOOP " + std::string(70 * 1024, 'x') + "\r\nNOOP\r\n");
    CHECK(h.take_client() == "-ERR Line too long\r\n");
    CHECK(h.take_backend() == "NOOP\r\n");
    h.backend("+OK\r\n");
    h.shutdown();
    CHECK(h.take_client() == "+OK\r\n-ERR proxy.test shutting down\r\n");
    CHECK(m.facts().outcome == "shutdown");
  });
  pop3_machine m(starttls_front(), greeting);
  machine_harness h(m, false);
  h.idle_timeout();
  CHECK(h.take_client() == "-ERR proxy.test autologout; idle timeout\r\n");
  CHECK(m.facts().outcome == "timeout");
}

TEST_CASE("pop3 opener: CAPA then STLS; require_tls; no CAPA support", "[pop3]") {
  using kind = protocols::backend_opener::action::kind;
  pop3_backend_opener o(config::back_tls::starttls, true);
  auto a = o.on_read("+OK ready <1@x>\r\n");
  REQUIRE(a.what == kind::write);
  CHECK(a.data == "CAPA\r\n");
  o.on_written();
  a = o.on_read("+OK\r\nUSER\r\nSTLS\r\n.\r\n");
  REQUIRE(a.what == kind::write);
  CHECK(a.data == "STLS\r\n");
  o.on_written();
  CHECK(o.on_read("+OK Begin TLS negotiation now.\r\n").what == kind::handshake);
  CHECK(o.on_handshake_done().what == kind::done);
  CHECK(o.greeting() == "+OK ready <1@x>\r\n");

  pop3_backend_opener no_stls(config::back_tls::starttls, true);
  no_stls.on_read("+OK ready\r\n");
  no_stls.on_written();
  CHECK(no_stls.on_read("+OK\r\nUSER\r\n.\r\n").what == kind::fail);

  pop3_backend_opener old(config::back_tls::starttls, false);
  old.on_read("+OK ready\r\n");
  old.on_written();
  a = old.on_read("-ERR unknown command\r\n");
  REQUIRE(a.what == kind::write);
  CHECK(a.data == "STLS\r\n");
  old.on_written();
  CHECK(old.on_read("-ERR no\r\n").what == kind::done);
  CHECK(old.upgrade_skipped());

  pop3_backend_opener bad(config::back_tls::none, true);
  CHECK(bad.on_read("-ERR go away\r\n").what == kind::fail);
}
