// The SMTP shield (issue 12 items 4 and 8): grammar-first command tokenising, SASL
// responses tracked by the backend's 334 challenges, BDAT only with the backend's CHUNKING, nothing
// after QUIT, and only the 3xx replies the machine knows. Every scenario runs under the three feeds
// of session_script.hpp (whole, client byte-at-a-time, both sides byte-at-a-time) with the same
// expected steps, and what reached the backend is checked byte for byte.
#include <boost/json/serialize.hpp>
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "protocols/smtp/smtp_machine.hpp"
#include "session_script.hpp"

using namespace tlsbridge::protocols::smtp;
using namespace tlsbridge::test;
namespace config = tlsbridge::config;

namespace {

const std::string greeting = "220 backend.example ESMTP\r\n";
const std::string ehlo_chunking =
    "250-backend.example\r\n250-PIPELINING\r\n250-AUTH PLAIN LOGIN\r\n250 CHUNKING\r\n";
const std::string ehlo_plain = "250-backend.example\r\n250-PIPELINING\r\n250 AUTH PLAIN LOGIN\r\n";
const std::string syntax_error = "500 5.5.2 Syntax error, command unrecognized\r\n";
const std::string bare_line_end = "500 5.5.2 Bare CR or LF in command line refused\r\n";
const std::string no_chunking =
    "502 5.5.1 BDAT not available: the server did not offer CHUNKING\r\n";

machine_settings settings(bool require_tls = true) {
  machine_settings s;
  s.front = config::front_tls::starttls;
  s.require_tls = require_tls;
  s.hostname = "proxy.example";
  return s;
}

template <class Scenario>
void run_all_feeds(const machine_settings& settings, Scenario&& scenario) {
  std::string client_ref, backend_ref;
  for (feed f : all_feeds) {
    smtp_machine machine(settings, greeting);
    session_script s(machine, f);
    scenario(s, machine);
    if (f == feed::whole) {
      client_ref = s.client_bytes();
      backend_ref = s.backend_bytes();
    } else {
      INFO("feed: " << feed_name(f));
      CHECK(printable(s.client_bytes()) == printable(client_ref));
      CHECK(printable(s.backend_bytes()) == printable(backend_ref));
    }
  }
}

// Greeting, STARTTLS, handshake, EHLO (answered with backend_ehlo): ready for mail.
void open_tls_session(session_script& s, smtp_machine&, const std::string& backend_ehlo) {
  s.start({expect_client(greeting)});
  s.client("STARTTLS\r\n",
           {expect_client("220 2.0.0 Ready to start TLS\r\n"), expect_start_front_tls()});
  s.front_tls_established({});
  s.client("EHLO c\r\n", {expect_backend("EHLO c\r\n")});
  s.backend(backend_ehlo, {expect_client(backend_ehlo)});
}

std::vector<std::string> refusal_reasons(smtp_machine& m) {
  std::vector<std::string> out;
  for (auto& e : m.take_audit_events())
    if (e.at("event").as_string() == "smtp.refused")
      out.emplace_back(e.at("reason").as_string().c_str());
  return out;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// Every malformed variant of issue 12 item 4 and the ones it does not name.
const std::vector<std::string>& malformed_lines() {
  using namespace std::string_literals;
  static const std::vector<std::string> lines{
      "XEXCH50\t1 2"s,     " XEXCH50 1 2"s,
      "X-ANONYMOUSTLS\t"s, "XSHADOW\tx"s,
      "XRDST\t"s,          "AUTH\tPLAIN AGFsaWNlAHNlY3JldA=="s,
      "DATA\t"s,           "MAIL\tFROM:<a@b>"s,
      "MAIL  FROM:<a@b>"s, " DATA"s,
      "DATA\x0b"s,         "DATA\x0c"s,
      "DA\0TA"s,           "\0DATA"s,
      "RCPT\tTO:<x@y>"s,   "BDAT\t5 LAST"s,
      "RSET\t"s,           "QUIT\t"s,
      "STARTTLS\t"s,       ""s,
      "NOOP\x1b"s,         "MAILFROM:<a@b>"s};
  return lines;
}

}  // namespace

TEST_CASE("shield: malformed command lines get 500 5.5.2 and never reach the backend",
          "[smtp][session][shield]") {
  for (const auto& bad : malformed_lines()) {
    INFO("line: " << printable(bad));
    run_all_feeds(settings(), [&](session_script& s, smtp_machine& m) {
      open_tls_session(s, m, ehlo_chunking);
      s.client(bad + "\r\n", {expect_client(syntax_error)});
      // The success path right behind it, on the same session.
      s.client("MAIL FROM:<a@b>\r\n", {expect_backend("MAIL FROM:<a@b>\r\n")});
      s.backend("250 2.1.0 OK\r\n", {expect_client("250 2.1.0 OK\r\n")});
      CHECK(s.backend_bytes() == "EHLO c\r\nMAIL FROM:<a@b>\r\n");
      const auto reasons = refusal_reasons(m);
      REQUIRE(reasons.size() == 1);
      CHECK(reasons[0].rfind("smtp.verb_syntax: RFC 5321 command syntax: ", 0) == 0);
    });
  }
}

TEST_CASE("shield: DATA<TAB> leaves the machine in command mode, as the backend never saw it",
          "[smtp][session][shield]") {
  run_all_feeds(settings(), [&](session_script& s, smtp_machine& m) {
    open_tls_session(s, m, ehlo_chunking);
    s.client("MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n",
             {expect_backend("MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\n")});
    s.backend("250 ok\r\n250 ok\r\n", {expect_client("250 ok\r\n250 ok\r\n")});
    // What a client would send as the message after it is commands again, judged one by one.
    s.client("DATA\t\r\nRSET\r\n", {expect_client(syntax_error), expect_backend("RSET\r\n")});
    s.backend("250 reset\r\n", {expect_client("250 reset\r\n")});
    CHECK_FALSE(contains(s.backend_bytes(), "DATA"));
  });
}

TEST_CASE("shield: AUTH<TAB>PLAIN on a require_tls = false listener is refused, not relayed",
          "[smtp][session][shield]") {
  run_all_feeds(settings(false), [&](session_script& s, smtp_machine& m) {
    s.start({expect_client(greeting)});
    s.client("EHLO c\r\n", {expect_backend("EHLO c\r\n")});
    s.backend(ehlo_plain, {expect_client("250-backend.example\r\n250-PIPELINING\r\n"
                                         "250 STARTTLS\r\n")});
    s.client("AUTH\tPLAIN AGFsaWNlAHNlY3JldA==\r\n", {expect_client(syntax_error)});
    s.client("AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n",
             {expect_client("538 5.7.11 Encryption required for requested authentication "
                            "mechanism\r\n")});
    // A well-formed unknown verb still passes without require_tls (the listener's policy).
    s.client("XFOO bar\r\n", {expect_backend("XFOO bar\r\n")});
    CHECK(s.backend_bytes() == "EHLO c\r\nXFOO bar\r\n");
    const auto reasons = refusal_reasons(m);
    REQUIRE(reasons.size() == 2);
    CHECK(reasons[1] == "smtp.auth_before_tls: AUTH before front TLS");
  });
}

TEST_CASE("shield: a bare CR or a bare LF in a command line is refused",
          "[smtp][session][shield]") {
  run_all_feeds(settings(), [&](session_script& s, smtp_machine& m) {
    open_tls_session(s, m, ehlo_chunking);
    s.client("NOOP\nMAIL FROM:<a@b>\r\n",
             {expect_client(bare_line_end), expect_backend("MAIL FROM:<a@b>\r\n")});
    s.backend("250 ok\r\n", {expect_client("250 ok\r\n")});
    s.client("RCPT TO:<x@y>\rDATA\r\n", {expect_client(bare_line_end)});
    s.client("\n", {expect_client(bare_line_end)});
    CHECK(s.backend_bytes() == "EHLO c\r\nMAIL FROM:<a@b>\r\n");
  });
}

TEST_CASE("shield: SASL responses follow the backend's 334, never tokenised as commands",
          "[smtp][session][shield]") {
  SECTION("LOGIN, responses with = + /, then a command") {
    run_all_feeds(settings(), [&](session_script& s, smtp_machine& m) {
      open_tls_session(s, m, ehlo_chunking);
      s.client("AUTH LOGIN\r\n", {expect_backend("AUTH LOGIN\r\n")});
      s.backend("334 VXNlcm5hbWU6\r\n", {expect_client("334 VXNlcm5hbWU6\r\n")});
      s.client("YS+b/c==\r\n", {expect_backend("YS+b/c==\r\n")});
      s.backend("334 UGFzc3dvcmQ6\r\n", {expect_client("334 UGFzc3dvcmQ6\r\n")});
      s.client("c2VjcmV0\r\n", {expect_backend("c2VjcmV0\r\n")});
      s.backend("235 2.7.0 Authentication successful\r\n",
                {expect_client("235 2.7.0 Authentication successful\r\n")});
      s.client("MAIL FROM:<a@b>\r\n", {expect_backend("MAIL FROM:<a@b>\r\n")});
      CHECK(refusal_reasons(m).empty());
    });
  }
  SECTION("a response pipelined before the 334 is held, then relayed as a response") {
    run_all_feeds(settings(), [&](session_script& s, smtp_machine& m) {
      open_tls_session(s, m, ehlo_chunking);
      s.client("AUTH LOGIN\r\nYWxpY2U=\r\n", {expect_backend("AUTH LOGIN\r\n")});
      s.backend("334 VXNlcm5hbWU6\r\n",
                {expect_client("334 VXNlcm5hbWU6\r\n"), expect_backend("YWxpY2U=\r\n")});
      s.backend("535 5.7.8 no\r\n", {expect_client("535 5.7.8 no\r\n")});
      s.client("NOOP\r\n", {expect_backend("NOOP\r\n")});
    });
  }
  SECTION("'*' cancels (RFC 4954 §4), the backend's 501 ends the exchange") {
    run_all_feeds(settings(), [&](session_script& s, smtp_machine& m) {
      open_tls_session(s, m, ehlo_chunking);
      s.client("AUTH PLAIN\r\n", {expect_backend("AUTH PLAIN\r\n")});
      s.backend("334 \r\n", {expect_client("334 \r\n")});
      s.client("*\r\n", {expect_backend("*\r\n")});
      s.backend("501 5.7.0 Authentication aborted\r\n",
                {expect_client("501 5.7.0 Authentication aborted\r\n")});
      s.client("NOOP\r\n", {expect_backend("NOOP\r\n")});
      (void)m;
    });
  }
  SECTION("what is not a response is cancelled with '*', never relayed") {
    using namespace std::string_literals;
    for (const std::string& bad :
         {"MAIL FROM:<a@b>"s, "dGVz\tdA=="s, "RCPT TO:<x@y>"s, "dGVzdA\0=="s, " dGVzdA=="s}) {
      INFO("response: " << printable(bad));
      run_all_feeds(settings(), [&](session_script& s, smtp_machine& m) {
        open_tls_session(s, m, ehlo_chunking);
        s.client("X-EXPS GSSAPI\r\n", {expect_backend("X-EXPS GSSAPI\r\n")});
        s.backend("334 \r\n", {expect_client("334 \r\n")});
        s.client(bad + "\r\n", {expect_backend("*\r\n")});
        s.backend("501 5.7.0 aborted\r\n", {expect_client("501 5.7.0 aborted\r\n")});
        s.client("NOOP\r\n", {expect_backend("NOOP\r\n")});
        CHECK_FALSE(contains(s.backend_bytes(), bad));
        CHECK(refusal_reasons(m) ==
              std::vector<std::string>{
                  "smtp.sasl_response_syntax: SASL response not base64 (RFC 4954 §4): cancelled"});
      });
    }
  }
  SECTION("an over-long response is cancelled too") {
    auto st = settings();
    st.max_command_line = 64;
    run_all_feeds(st, [&](session_script& s, smtp_machine& m) {
      open_tls_session(s, m, ehlo_chunking);
      s.client("AUTH PLAIN\r\n", {expect_backend("AUTH PLAIN\r\n")});
      s.backend("334 \r\n", {expect_client("334 \r\n")});
      s.client(std::string(100, 'A') + "\r\n", {expect_backend("*\r\n")});
      s.backend("501 5.7.0 aborted\r\n", {expect_client("501 5.7.0 aborted\r\n")});
      (void)m;
    });
  }
  SECTION("a 334 to anything but AUTH is a backend protocol error") {
    run_all_feeds(settings(), [&](session_script& s, smtp_machine& m) {
      open_tls_session(s, m, ehlo_chunking);
      s.client("NOOP\r\n", {expect_backend("NOOP\r\n")});
      s.backend(
          "334 what\r\n",
          {expect_client("421 4.4.2 proxy.example backend protocol error\r\n"), expect_close()});
      (void)m;
    });
    run_all_feeds(settings(), [&](session_script& s, smtp_machine& m) {
      open_tls_session(s, m, ehlo_chunking);
      s.client("MAIL FROM:<a@b>\r\n", {expect_backend("MAIL FROM:<a@b>\r\n")});
      s.backend(
          "354 go ahead\r\n",
          {expect_client("421 4.4.2 proxy.example backend protocol error\r\n"), expect_close()});
      (void)m;
    });
  }
}

TEST_CASE("shield: BDAT only while the backend offers CHUNKING (RFC 3030)",
          "[smtp][session][shield]") {
  SECTION("no CHUNKING: 502, the chunk framed and dropped, the next command relayed") {
    run_all_feeds(settings(), [&](session_script& s, smtp_machine& m) {
      open_tls_session(s, m, ehlo_plain);
      s.client("MAIL FROM:<a@b>\r\n", {expect_backend("MAIL FROM:<a@b>\r\n")});
      s.backend("250 ok\r\n", {expect_client("250 ok\r\n")});
      s.client("BDAT 24 LAST\r\nRCPT TO:<evil@x>\r\nQUIT\r\nNOOP\r\n",
               {expect_client(no_chunking), expect_backend("NOOP\r\n")});
      CHECK(s.backend_bytes() == "EHLO c\r\nMAIL FROM:<a@b>\r\nNOOP\r\n");
      CHECK(refusal_reasons(m) == std::vector<std::string>{
                                       "smtp.bdat_without_chunking: BDAT without CHUNKING (RFC 3030 §2)"});
    });
  }
  SECTION("BDAT 0 LAST without CHUNKING: 502, nothing to drop") {
    run_all_feeds(settings(), [&](session_script& s, smtp_machine& m) {
      open_tls_session(s, m, ehlo_plain);
      s.client("BDAT 0 LAST\r\nNOOP\r\n", {expect_client(no_chunking), expect_backend("NOOP\r\n")});
      (void)m;
    });
  }
  SECTION("CHUNKING offered: relayed; a later EHLO without it turns it off") {
    run_all_feeds(settings(), [&](session_script& s, smtp_machine& m) {
      open_tls_session(s, m, ehlo_chunking);
      s.client("BDAT 3 LAST\r\nabc", {expect_backend("BDAT 3 LAST\r\nabc")});
      s.backend("250 2.0.0 queued\r\n", {expect_client("250 2.0.0 queued\r\n")});
      // Pipelined behind an EHLO the offer is unknown until its reply: refused.
      s.client("EHLO again\r\nBDAT 3 LAST\r\nxyz", {expect_backend("EHLO again\r\n")});
      s.backend(ehlo_plain, {expect_client(ehlo_plain + no_chunking)});
      s.client("BDAT 1 LAST\r\nq", {expect_client(no_chunking)});
      CHECK(s.backend_bytes() == "EHLO c\r\nBDAT 3 LAST\r\nabcEHLO again\r\n");
      (void)m;
    });
  }
  SECTION("a size two backends could read differently closes the session") {
    for (const char* bad : {"BDAT +5 LAST", "BDAT 05 LAST", "BDAT 010", "BDAT 2147483648",
                            "BDAT 18446744073709551615 LAST", "BDAT 5 LAST ", "BDAT 5  LAST"}) {
      INFO(bad);
      run_all_feeds(settings(), [&](session_script& s, smtp_machine& m) {
        open_tls_session(s, m, ehlo_chunking);
        s.client(std::string(bad) + "\r\nhello",
                 {expect_client("501 5.5.4 Malformed BDAT command\r\n"
                                "421 4.7.0 proxy.example closing connection\r\n"),
                  expect_close()});
        CHECK_FALSE(contains(s.backend_bytes(), "BDAT"));
        (void)m;
      });
    }
  }
}

TEST_CASE("shield: nothing after QUIT is relayed or answered", "[smtp][session][shield]") {
  run_all_feeds(settings(), [&](session_script& s, smtp_machine& m) {
    open_tls_session(s, m, ehlo_chunking);
    s.client("QUIT\r\nMAIL FROM:<a@b>\r\nDATA\t\r\n", {expect_backend("QUIT\r\n")});
    s.client("RCPT TO:<c@d>\r\n", {});
    s.backend("221 2.0.0 Bye\r\n", {expect_client("221 2.0.0 Bye\r\n"), expect_close()});
    CHECK(s.backend_bytes() == "EHLO c\r\nQUIT\r\n");
    (void)m;
  });
}

TEST_CASE("shield: refusals are audited one by one up to a bound, then counted",
          "[smtp][session][shield]") {
  smtp_machine m(settings(), greeting);
  session_script s(m, feed::whole);
  open_tls_session(s, m, ehlo_chunking);
  std::string many;
  for (int i = 0; i < 40; ++i) many += "\tX\r\n";
  std::string replies;
  for (int i = 0; i < 40; ++i) replies += syntax_error;
  s.client(many, {expect_client(replies)});
  CHECK(refusal_reasons(m).size() == 32);
  CHECK(m.facts().reason.rfind("40 command(s) refused", 0) == 0);
}

namespace {

struct recorder final : relay_observer {
  std::vector<std::string> seen;
  void command(const tlsbridge::protocols::smtp::command& c, std::string_view line) override {
    seen.push_back("C " + c.name + "|" + std::string(line));
  }
  void sasl_response(std::string_view line) override { seen.push_back("S " + std::string(line)); }
  void message_end() override { seen.emplace_back("E"); }
};

}  // namespace

TEST_CASE("shield: the relay observer sees exactly what was relayed, in order",
          "[smtp][session][shield]") {
  smtp_machine m(settings(), greeting);
  recorder r;
  m.set_observer(&r);
  session_script s(m, feed::whole);
  open_tls_session(s, m, ehlo_chunking);
  s.client("AUTH PLAIN\r\n", {expect_backend("AUTH PLAIN\r\n")});
  s.backend("334 \r\n", {expect_client("334 \r\n")});
  s.client("AGEAYg==\r\n", {expect_backend("AGEAYg==\r\n")});
  s.backend("235 ok\r\n", {expect_client("235 ok\r\n")});
  s.client("MAIL FROM:<a@b>\r\nDATA\t\r\nRCPT TO:<c@d>\r\nDATA\r\n",
           {expect_backend("MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n")});
  s.backend("250 ok\r\n250 ok\r\n354 go\r\n",
            {expect_client("250 ok\r\n" + syntax_error + "250 ok\r\n354 go\r\n")});
  s.client("x\r\n.\r\n", {expect_backend("x\r\n.\r\n")});
  s.client_eof({expect_backend("QUIT\r\n"), expect_close()});
  CHECK(r.seen == std::vector<std::string>{
                      "C EHLO|EHLO c", "C AUTH|AUTH PLAIN", "S AGEAYg==", "C MAIL|MAIL FROM:<a@b>",
                      "C RCPT|RCPT TO:<c@d>", "C DATA|DATA", "E", "C QUIT|QUIT"});
}

TEST_CASE("shield: client EOF while the backend may read data or a SASL response drops the leg",
          "[smtp][session][shield]") {
  // A QUIT there would be message data (the 354 is on its way) or a SASL response, not a QUIT.
  run_all_feeds(settings(), [&](session_script& s, smtp_machine& m) {
    open_tls_session(s, m, ehlo_chunking);
    s.client("MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n",
             {expect_backend("MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n")});
    s.client_eof({expect_abort_backend(), expect_close()});
  });
  run_all_feeds(settings(), [&](session_script& s, smtp_machine& m) {
    open_tls_session(s, m, ehlo_chunking);
    s.client("AUTH LOGIN\r\n", {expect_backend("AUTH LOGIN\r\n")});
    s.backend("334 VXNlcm5hbWU6\r\n", {expect_client("334 VXNlcm5hbWU6\r\n")});
    s.client_eof({expect_abort_backend(), expect_close()});
  });
}

TEST_CASE("shield: AUTH after STARTTLS waits for the new EHLO (RFC 3207 §4.2)",
          "[smtp][session][shield]") {
  run_all_feeds(settings(), [&](session_script& s, smtp_machine& m) {
    s.start({expect_client(greeting)});
    s.client("EHLO c\r\n", {expect_backend("EHLO c\r\n")});
    s.backend(ehlo_plain, {expect_client("250-backend.example\r\n250-PIPELINING\r\n"
                                         "250 STARTTLS\r\n")});
    s.client("STARTTLS\r\n",
             {expect_client("220 2.0.0 Ready to start TLS\r\n"), expect_start_front_tls()});
    s.front_tls_established({});
    s.client("AUTH PLAIN AGEAYg==\r\nX-EXPS GSSAPI\r\n",
             {expect_client("503 5.5.1 Send EHLO first after STARTTLS\r\n"
                            "503 5.5.1 Send EHLO first after STARTTLS\r\n")});
    CHECK(s.backend_bytes() == "EHLO c\r\n");
    (void)m;
  });
}
