// smtp_machine driven by scripted I/O (session_script.hpp). Every scenario runs under three feeds
// — whole chunks, the client's bytes one at a time, and both sides' bytes one at a time — with the
// same expected steps, and the bytes each side received are compared across the feeds.
#include "protocols/smtp/smtp_machine.hpp"

#include <boost/json/serialize.hpp>
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "session_script.hpp"

using namespace tlsbridge::protocols::smtp;
using namespace tlsbridge::test;
namespace config = tlsbridge::config;

namespace {

const std::string greeting = "220 backend.example Microsoft ESMTP MAIL Service ready\r\n";
const std::string backend_ehlo =
    "250-backend.example Hello [10.0.0.1]\r\n"
    "250-SIZE 10485760\r\n"
    "250-PIPELINING\r\n"
    "250-STARTTLS\r\n"
    "250-X-ANONYMOUSTLS\r\n"
    "250-AUTH NTLM\r\n"
    "250-X-EXPS GSSAPI NTLM\r\n"
    "250-CHUNKING\r\n"
    "250 XEXCH50\r\n";
const std::string ehlo_before_tls =
    "250-backend.example Hello [10.0.0.1]\r\n"
    "250-SIZE 10485760\r\n"
    "250-PIPELINING\r\n"
    "250-CHUNKING\r\n"
    "250 STARTTLS\r\n";
const std::string ehlo_after_tls =
    "250-backend.example Hello [10.0.0.1]\r\n"
    "250-SIZE 10485760\r\n"
    "250-PIPELINING\r\n"
    "250-AUTH NTLM\r\n"
    "250-X-EXPS GSSAPI NTLM\r\n"
    "250 CHUNKING\r\n";
const std::string ready_tls = "220 2.0.0 Ready to start TLS\r\n";
const std::string must_starttls = "530 5.7.0 Must issue a STARTTLS command first\r\n";
const std::string backend_lost = "421 4.4.2 proxy.example connection to backend lost\r\n";
const std::string protocol_error = "421 4.4.2 proxy.example backend protocol error\r\n";

machine_settings default_settings() {
  machine_settings s;
  s.front = config::front_tls::starttls;
  s.require_tls = true;
  s.bare_lf = config::bare_lf_mode::reject;
  s.hostname = "proxy.example";
  return s;
}

// Runs `scenario(script, machine)` under every feed; the bytes each side got must not depend on
// how the input was chunked.
template <class Scenario>
void run_all_feeds(const machine_settings& settings, Scenario&& scenario) {
  std::string client_ref, backend_ref, transcript_ref;
  for (feed f : all_feeds) {
    smtp_machine machine(settings, greeting);
    session_script s(machine, f);
    scenario(s, machine);
    if (f == feed::whole) {
      client_ref = s.client_bytes();
      backend_ref = s.backend_bytes();
      transcript_ref = s.transcript();
    } else {
      INFO("feed: " << feed_name(f));
      CHECK(printable(s.client_bytes()) == printable(client_ref));
      CHECK(printable(s.backend_bytes()) == printable(backend_ref));
      CHECK(s.transcript() == transcript_ref);
    }
  }
}

template <class Scenario>
void run_all_feeds(Scenario&& scenario) {
  run_all_feeds(default_settings(), std::forward<Scenario>(scenario));
}

// Greeting and a first EHLO, front leg still plaintext.
void open_plain(session_script& s) {
  s.start({expect_client(greeting)});
  s.client("EHLO client.example\r\n", {expect_backend("EHLO client.example\r\n")});
  s.backend(backend_ehlo, {expect_client(ehlo_before_tls)});
}

// Greeting, EHLO, STARTTLS, handshake, EHLO again: ready for a transaction.
void open_tls(session_script& s, smtp_machine& m) {
  open_plain(s);
  s.client("STARTTLS\r\n", {expect_client(ready_tls), expect_start_front_tls()});
  CHECK(m.client_input_paused());
  s.front_tls_established({});
  CHECK_FALSE(m.client_input_paused());
  s.client("EHLO client.example\r\n", {expect_backend("EHLO client.example\r\n")});
  s.backend(backend_ehlo, {expect_client(ehlo_after_tls)});
}

// MAIL + RCPT accepted, DATA answered 354: the session is in message data.
void open_data(session_script& s, smtp_machine& m) {
  open_tls(s, m);
  s.client("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n",
           {expect_backend("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n")});
  s.backend(
      "250 2.1.0 Sender OK\r\n250 2.1.5 Recipient OK\r\n354 Start mail input\r\n",
      {expect_client("250 2.1.0 Sender OK\r\n250 2.1.5 Recipient OK\r\n354 Start mail input\r\n")});
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

}  // namespace

TEST_CASE("smtp_machine: greeting on start, EHLO relayed and rewritten, QUIT", "[smtp][session]") {
  run_all_feeds([](session_script& s, smtp_machine& m) {
    open_plain(s);
    s.client("QUIT\r\n", {expect_backend("QUIT\r\n")});
    s.backend(
        "221 2.0.0 Service closing transmission channel\r\n",
        {expect_client("221 2.0.0 Service closing transmission channel\r\n"), expect_close()});
    CHECK(m.facts().outcome == "ok");
    // Closed: nothing more happens.
    s.client("NOOP\r\n", {});
    s.backend("250 late\r\n", {});
    s.client_eof({});
    s.backend_eof({});
    CHECK(m.take_audit_events().empty());
  });
}

TEST_CASE("smtp_machine: require_tls refuses mail commands before STARTTLS", "[smtp][session]") {
  run_all_feeds([](session_script& s, smtp_machine&) {
    open_plain(s);
    for (const char* line : {"MAIL FROM:<a@b>\r\n", "RCPT TO:<c@d>\r\n", "DATA\r\n",
                             "VRFY postmaster\r\n", "EXPN list\r\n", "HELP\r\n", "FOO bar\r\n"}) {
      s.client(line, {expect_client(must_starttls)});
    }
    // The allowed ones pass.
    s.client("NOOP\r\n", {expect_backend("NOOP\r\n")});
    s.backend("250 2.0.0 OK\r\n", {expect_client("250 2.0.0 OK\r\n")});
    s.client("RSET\r\n", {expect_backend("RSET\r\n")});
    s.backend("250 2.0.0 Resetting\r\n", {expect_client("250 2.0.0 Resetting\r\n")});
    s.client("HELO again.example\r\n", {expect_backend("HELO again.example\r\n")});
    s.backend("250 backend.example Hello\r\n", {expect_client("250 backend.example Hello\r\n")});
    CHECK_FALSE(contains(s.backend_bytes(), "MAIL"));
    CHECK_FALSE(contains(s.backend_bytes(), "RCPT"));
    CHECK_FALSE(contains(s.backend_bytes(), "VRFY"));
  });
}

TEST_CASE("smtp_machine: pipelined refused commands are answered in order", "[smtp][session]") {
  run_all_feeds([](session_script& s, smtp_machine&) {
    s.start({expect_client(greeting)});
    s.client("EHLO c\r\nMAIL FROM:<a@b>\r\nNOOP\r\nRCPT TO:<x>\r\n",
             {expect_backend("EHLO c\r\nNOOP\r\n")});
    s.backend(backend_ehlo, {expect_client(ehlo_before_tls + must_starttls)});
    s.backend("250 2.0.0 OK\r\n", {expect_client("250 2.0.0 OK\r\n" + must_starttls)});
  });
}

TEST_CASE("smtp_machine: AUTH before front TLS gets 538, after it is relayed", "[smtp][session]") {
  const std::string refused =
      "538 5.7.11 Encryption required for requested authentication mechanism\r\n";
  for (bool require_tls : {true, false}) {
    INFO("require_tls " << require_tls);
    auto settings = default_settings();
    settings.require_tls = require_tls;
    run_all_feeds(settings, [&](session_script& s, smtp_machine& m) {
      open_plain(s);
      s.client("AUTH NTLM TlRMTVNTUAABAAAA\r\n", {expect_client(refused)});
      s.client("X-EXPS GSSAPI\r\n", {expect_client(refused)});
      s.client("auth login\r\n", {expect_client(refused)});
      CHECK_FALSE(contains(s.backend_bytes(), "AUTH"));
      CHECK_FALSE(contains(s.backend_bytes(), "X-EXPS"));
      s.client("STARTTLS\r\n", {expect_client(ready_tls), expect_start_front_tls()});
      s.front_tls_established({});
      s.client("EHLO c\r\n", {expect_backend("EHLO c\r\n")});
      s.backend(backend_ehlo, {expect_client(ehlo_after_tls)});
      s.client("AUTH NTLM TlRMTVNTUAABAAAA\r\n",
               {expect_backend("AUTH NTLM TlRMTVNTUAABAAAA\r\n")});
      s.backend("334 TlRMTVNTUAACAAAA\r\n", {expect_client("334 TlRMTVNTUAACAAAA\r\n")});
      CHECK_FALSE(m.facts().starttls_injection);
    });
  }
}

TEST_CASE("smtp_machine: STARTTLS with pipelined plaintext discards it (CVE-2011-0411)",
          "[smtp][session]") {
  run_all_feeds([](session_script& s, smtp_machine& m) {
    open_plain(s);
    CHECK_FALSE(m.client_input_paused());
    s.client("STARTTLS\r\nMAIL FROM:<evil@attacker>\r\n",
             {expect_client(ready_tls), expect_start_front_tls()});
    CHECK(m.client_input_paused());
    CHECK(m.facts().starttls_injection);
    CHECK(m.facts().injected_bytes == std::string("MAIL FROM:<evil@attacker>\r\n").size());
    // Anything delivered before the handshake completes is discarded too.
    s.client("RCPT TO:<victim@example>\r\n", {});
    CHECK(m.client_input_paused());
    s.front_tls_established({});
    CHECK_FALSE(m.client_input_paused());
    // RFC 3207 §4.2: the client must start over with EHLO.
    s.client("MAIL FROM:<a@example.org>\r\n",
             {expect_client("503 5.5.1 Send EHLO first after STARTTLS\r\n")});
    s.client("EHLO client.example\r\n", {expect_backend("EHLO client.example\r\n")});
    s.backend(backend_ehlo, {expect_client(ehlo_after_tls)});
    s.client("MAIL FROM:<a@example.org>\r\n", {expect_backend("MAIL FROM:<a@example.org>\r\n")});
    CHECK_FALSE(contains(s.backend_bytes(), "evil"));
    CHECK_FALSE(contains(s.backend_bytes(), "victim"));
    // STARTTLS again is refused locally.
    s.client("STARTTLS\r\n", {});
    s.backend("250 2.1.0 Sender OK\r\n",
              {expect_client("250 2.1.0 Sender OK\r\n503 5.5.1 TLS already active\r\n")});
  });
}

TEST_CASE("smtp_machine: STARTTLS pipelined behind EHLO waits for the EHLO reply",
          "[smtp][session]") {
  run_all_feeds([](session_script& s, smtp_machine& m) {
    s.start({expect_client(greeting)});
    s.client("EHLO c\r\nSTARTTLS\r\nMAIL FROM:<evil@attacker>\r\n", {expect_backend("EHLO c\r\n")});
    CHECK(m.client_input_paused());
    CHECK(m.facts().starttls_injection);
    s.backend(backend_ehlo, {expect_client(ehlo_before_tls + ready_tls), expect_start_front_tls()});
    s.front_tls_established({});
    CHECK_FALSE(contains(s.backend_bytes(), "MAIL"));
  });
}

TEST_CASE("smtp_machine: a clean STARTTLS records no injection", "[smtp][session]") {
  run_all_feeds([](session_script& s, smtp_machine& m) {
    open_tls(s, m);
    CHECK_FALSE(m.facts().starttls_injection);
    CHECK(m.facts().injected_bytes == 0);
  });
}

TEST_CASE("smtp_machine: pipelined transaction, replies in order, audit event", "[smtp][session]") {
  run_all_feeds([](session_script& s, smtp_machine& m) {
    open_tls(s, m);
    const std::string commands =
        "MAIL FROM:<alice@example.org> SIZE=21\r\n"
        "RCPT TO:<bob@example.net>\r\n"
        "RCPT TO:<nobody@example.net>\r\n"
        "RCPT TO: <carol@example.net>\r\n"
        "DATA\r\n";
    s.client(commands, {expect_backend(commands)});  // all in one write
    const std::string replies =
        "250 2.1.0 Sender OK\r\n"
        "250 2.1.5 Recipient OK\r\n"
        "550 5.1.1 User unknown\r\n"
        "250 2.1.5 Recipient OK\r\n"
        "354 Start mail input; end with <CRLF>.<CRLF>\r\n";
    s.backend(replies, {expect_client(replies)});
    const std::string body = "Subject: t\r\n\r\n..dot\r\nhello\r\n";
    s.client(body + ".\r\n", {expect_backend(body + ".\r\n")});
    CHECK(m.take_audit_events().empty());  // not before the final reply
    s.backend("250 2.6.0 <q123@backend.example> Queued mail for delivery\r\n",
              {expect_client("250 2.6.0 <q123@backend.example> Queued mail for delivery\r\n")});
    auto events = m.take_audit_events();
    REQUIRE(events.size() == 1);
    const auto& e = events[0];
    CHECK(e.at("event").as_string() == "smtp.message");
    CHECK(e.at("helo").as_string() == "client.example");
    CHECK(e.at("mail_from").as_string() == "alice@example.org");
    CHECK(boost::json::serialize(e.at("rcpt")) == R"(["bob@example.net","carol@example.net"])");
    CHECK(e.at("size").to_number<std::uint64_t>() == body.size());
    CHECK(contains(std::string(e.at("reply").as_string()), "q123@backend.example"));
    CHECK(m.take_audit_events().empty());

    // The next transaction starts clean.
    s.client("MAIL FROM:<>\r\nRCPT TO:<x@example.net>\r\nDATA\r\n",
             {expect_backend("MAIL FROM:<>\r\nRCPT TO:<x@example.net>\r\nDATA\r\n")});
    s.backend("250 ok\r\n250 ok\r\n354 go\r\n", {expect_client("250 ok\r\n250 ok\r\n354 go\r\n")});
    s.client(".\r\n", {expect_backend(".\r\n")});
    s.backend("250 2.6.0 <q124@backend.example> queued\r\n",
              {expect_client("250 2.6.0 <q124@backend.example> queued\r\n")});
    events = m.take_audit_events();
    REQUIRE(events.size() == 1);
    CHECK(events[0].at("mail_from").as_string() == "");
    CHECK(boost::json::serialize(events[0].at("rcpt")) == R"(["x@example.net"])");
    CHECK(events[0].at("size").to_number<std::uint64_t>() == 0);
  });
}

TEST_CASE("smtp_machine: audit_envelope = false leaves addresses out", "[smtp][session]") {
  auto settings = default_settings();
  settings.audit_envelope = false;
  run_all_feeds(settings, [](session_script& s, smtp_machine& m) {
    open_data(s, m);
    s.client("x\r\n.\r\n", {expect_backend("x\r\n.\r\n")});
    s.backend("250 queued\r\n", {expect_client("250 queued\r\n")});
    auto events = m.take_audit_events();
    REQUIRE(events.size() == 1);
    CHECK_FALSE(events[0].contains("mail_from"));
    CHECK_FALSE(events[0].contains("rcpt"));
    CHECK_FALSE(events[0].contains("helo"));
    CHECK(events[0].at("size").to_number<std::uint64_t>() == 3);
  });
}

TEST_CASE("smtp_machine: commands pipelined after the end of data", "[smtp][session]") {
  run_all_feeds([](session_script& s, smtp_machine& m) {
    open_data(s, m);
    s.client("body\r\n.\r\nEHLO other.example\r\nQUIT\r\n",
             {expect_backend("body\r\n.\r\nEHLO other.example\r\nQUIT\r\n")});
    s.backend("250 2.6.0 <q1@b> queued\r\n" + backend_ehlo + "221 bye\r\n",
              {expect_client("250 2.6.0 <q1@b> queued\r\n" + ehlo_after_tls + "221 bye\r\n"),
               expect_close()});
    auto events = m.take_audit_events();
    REQUIRE(events.size() == 1);
    // The event describes the transaction the final reply ends, not the EHLO pipelined after it.
    CHECK(events[0].at("helo").as_string() == "client.example");
    CHECK(events[0].at("mail_from").as_string() == "a@example.org");
    CHECK(boost::json::serialize(events[0].at("rcpt")) == R"(["b@example.net"])");
    CHECK(events[0].at("size").to_number<std::uint64_t>() == 6);
  });
}

TEST_CASE("smtp_machine: a local reply waits behind pending backend replies", "[smtp][session]") {
  run_all_feeds([](session_script& s, smtp_machine& m) {
    open_tls(s, m);
    s.client("MAIL FROM:<a@b>\r\nXEXCH50 10 2\r\nNOOP\r\n",
             {expect_backend("MAIL FROM:<a@b>\r\nNOOP\r\n")});
    s.backend("250 2.1.0 Sender OK\r\n",
              {expect_client("250 2.1.0 Sender OK\r\n"
                             "502 5.5.1 XEXCH50 is not available through this proxy\r\n")});
    s.backend("250 2.0.0 OK\r\n", {expect_client("250 2.0.0 OK\r\n")});
  });
}

TEST_CASE("smtp_machine: Exchange-internal commands are refused, never relayed",
          "[smtp][session]") {
  auto check = [](session_script& s) {
    for (const char* verb : {"X-ANONYMOUSTLS", "XEXCH50", "XSHADOW", "XSHADOWREQUEST", "XRDST"}) {
      s.client(std::string(verb) + " 1 2\r\n",
               {expect_client("502 5.5.1 " + std::string(verb) +
                              " is not available through this proxy\r\n")});
      CHECK_FALSE(contains(s.backend_bytes(), verb));
    }
    s.client("x-anonymoustls\r\n",
             {expect_client("502 5.5.1 X-ANONYMOUSTLS is not available through this proxy\r\n")});
  };
  SECTION("after front TLS") {
    run_all_feeds([&](session_script& s, smtp_machine& m) {
      open_tls(s, m);
      check(s);
    });
  }
  SECTION("before front TLS without require_tls") {
    auto settings = default_settings();
    settings.require_tls = false;
    run_all_feeds(settings, [&](session_script& s, smtp_machine&) {
      open_plain(s);
      check(s);
    });
  }
  SECTION("before front TLS with require_tls: refused too (530)") {
    run_all_feeds([&](session_script& s, smtp_machine&) {
      open_plain(s);
      s.client("X-ANONYMOUSTLS\r\n", {expect_client(must_starttls)});
      s.client("XEXCH50 1 2\r\n", {expect_client(must_starttls)});
      CHECK_FALSE(contains(s.backend_bytes(), "X"));
    });
  }
}

TEST_CASE("smtp_machine: BDAT chunks are data, never commands (RFC 3030)", "[smtp][session]") {
  run_all_feeds([](session_script& s, smtp_machine& m) {
    open_tls(s, m);
    s.client("MAIL FROM:<a@example.org> BODY=BINARYMIME\r\nRCPT TO:<b@example.net>\r\n",
             {expect_backend(
                 "MAIL FROM:<a@example.org> BODY=BINARYMIME\r\nRCPT TO:<b@example.net>\r\n")});
    s.backend("250 2.1.0 OK\r\n250 2.1.5 OK\r\n",
              {expect_client("250 2.1.0 OK\r\n250 2.1.5 OK\r\n")});
    const char raw[] = "bin\x00\xff\r\n.\r\nQUIT\r\nMAIL FROM:<evil>\r\n";
    const std::string chunk1(raw, sizeof raw - 1);  // binary, with an NUL and <CRLF>.<CRLF>
    const std::string bdat1 = "BDAT " + std::to_string(chunk1.size()) + "\r\n";
    s.client(bdat1 + chunk1, {expect_backend(bdat1 + chunk1)});
    s.backend("250 2.0.0 octets received\r\n", {expect_client("250 2.0.0 octets received\r\n")});
    CHECK(m.take_audit_events().empty());
    // The last chunk, a command right behind it.
    const std::string chunk2 = "RSET\r\n";
    s.client("BDAT 6 LAST\r\n" + chunk2 + "NOOP\r\n",
             {expect_backend("BDAT 6 LAST\r\n" + chunk2 + "NOOP\r\n")});
    s.backend("250 2.6.0 <q7@backend.example> Queued\r\n250 2.0.0 OK\r\n",
              {expect_client("250 2.6.0 <q7@backend.example> Queued\r\n250 2.0.0 OK\r\n")});
    auto events = m.take_audit_events();
    REQUIRE(events.size() == 1);
    CHECK(events[0].at("mail_from").as_string() == "a@example.org");
    CHECK(boost::json::serialize(events[0].at("rcpt")) == R"(["b@example.net"])");
    CHECK(events[0].at("size").to_number<std::uint64_t>() == chunk1.size() + chunk2.size());
    CHECK(contains(std::string(events[0].at("reply").as_string()), "q7@backend.example"));
  });
}

TEST_CASE("smtp_machine: BDAT pipelined with its envelope", "[smtp][session]") {
  run_all_feeds([](session_script& s, smtp_machine& m) {
    open_tls(s, m);
    const std::string all =
        "MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nBDAT 4 LAST\r\nabcd"
        "MAIL FROM:<c@example.org>\r\nRCPT TO:<d@example.net>\r\nBDAT 0 LAST\r\n";
    s.client(all, {expect_backend(all)});
    const std::string replies =
        "250 ok\r\n250 ok\r\n250 2.6.0 <q1@b> queued\r\n250 ok\r\n250 ok\r\n250 2.6.0 <q2@b> "
        "queued\r\n";
    s.backend(replies, {expect_client(replies)});
    auto events = m.take_audit_events();
    REQUIRE(events.size() == 2);
    CHECK(events[0].at("mail_from").as_string() == "a@example.org");
    CHECK(events[0].at("size").to_number<std::uint64_t>() == 4);
    CHECK(events[1].at("mail_from").as_string() == "c@example.org");
    CHECK(boost::json::serialize(events[1].at("rcpt")) == R"(["d@example.net"])");
    CHECK(events[1].at("size").to_number<std::uint64_t>() == 0);
  });
}

TEST_CASE("smtp_machine: a BDAT the proxy refuses still frames its chunk", "[smtp][session]") {
  SECTION("before STARTTLS (530)") {
    run_all_feeds([](session_script& s, smtp_machine&) {
      open_plain(s);
      s.client("BDAT 10 LAST\r\nSTARTTLS\r\nNOOP\r\n",
               {expect_client(must_starttls), expect_backend("NOOP\r\n")});
      CHECK_FALSE(contains(s.client_bytes(), ready_tls));
    });
  }
  SECTION("after STARTTLS, before EHLO (503)") {
    run_all_feeds([](session_script& s, smtp_machine& m) {
      open_plain(s);
      s.client("STARTTLS\r\n", {expect_client(ready_tls), expect_start_front_tls()});
      s.front_tls_established({});
      s.client("BDAT 6\r\nRSET\r\nNOOP\r\n",
               {expect_client("503 5.5.1 Send EHLO first after STARTTLS\r\n"),
                expect_backend("NOOP\r\n")});
      CHECK_FALSE(m.facts().starttls_injection);
    });
  }
}

TEST_CASE("smtp_machine: malformed BDAT closes (its chunk cannot be framed)", "[smtp][session]") {
  run_all_feeds([](session_script& s, smtp_machine& m) {
    open_tls(s, m);
    s.client("BDAT lots\r\nQUIT\r\n",
             {expect_client("501 5.5.4 Malformed BDAT command\r\n"
                            "421 4.7.0 proxy.example closing connection\r\n"),
              expect_close()});
    CHECK_FALSE(contains(s.backend_bytes(), "BDAT"));
    (void)m;
  });
}

TEST_CASE("smtp_machine: DATA refused or accepted with data sent early", "[smtp][session]") {
  SECTION("refused DATA: held bytes are commands again") {
    run_all_feeds([](session_script& s, smtp_machine& m) {
      open_tls(s, m);
      s.client("MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nNOOP\r\n",
               {expect_backend("MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n")});
      s.backend("250 ok\r\n550 no such user\r\n554 5.5.1 No valid recipients\r\n",
                {expect_client("250 ok\r\n550 no such user\r\n554 5.5.1 No valid recipients\r\n"),
                 expect_backend("NOOP\r\n")});
      CHECK(m.take_audit_events().empty());
    });
  }
  SECTION("accepted DATA: held bytes are message data") {
    run_all_feeds([](session_script& s, smtp_machine& m) {
      open_tls(s, m);
      s.client("MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nhi\r\n.\r\n",
               {expect_backend("MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n")});
      s.backend("250 ok\r\n250 ok\r\n354 go\r\n",
                {expect_client("250 ok\r\n250 ok\r\n354 go\r\n"), expect_backend("hi\r\n.\r\n")});
      s.backend("250 queued\r\n", {expect_client("250 queued\r\n")});
      CHECK(m.take_audit_events().size() == 1);
    });
  }
  SECTION("too much data before the DATA reply") {
    auto settings = default_settings();
    settings.max_held_bytes = 64;
    run_all_feeds(settings, [](session_script& s, smtp_machine& m) {
      open_tls(s, m);
      s.client("MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n" + std::string(100, 'x'),
               {expect_backend("MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n"),
                expect_client("421 4.7.0 proxy.example too much data before the DATA reply\r\n"),
                expect_close()});
    });
  }
}

TEST_CASE("smtp_machine: backend EOF", "[smtp][session]") {
  SECTION("at a command boundary: 421 4.4.2 and close") {
    run_all_feeds([](session_script& s, smtp_machine& m) {
      open_tls(s, m);
      s.client("MAIL FROM:<a@b>\r\n", {expect_backend("MAIL FROM:<a@b>\r\n")});
      s.backend_eof({expect_client(backend_lost), expect_close()});
      CHECK(m.facts().outcome == "backend_unavailable");
      s.client("RCPT TO:<c@d>\r\n", {});
      CHECK_FALSE(contains(s.client_bytes(), "250 2.1.0"));
    });
  }
  SECTION("during DATA: no 250, ever") {
    run_all_feeds([](session_script& s, smtp_machine& m) {
      open_data(s, m);
      s.client("partial message\r\n", {expect_backend("partial message\r\n")});
      s.backend_eof({expect_client(backend_lost), expect_close()});
      s.client(".\r\n", {});
      CHECK(s.client_bytes().substr(s.client_bytes().find("354")).find("250") == std::string::npos);
      CHECK(m.take_audit_events().empty());
    });
  }
  SECTION("after the dot, before the final reply: no 250") {
    run_all_feeds([](session_script& s, smtp_machine& m) {
      open_data(s, m);
      s.client("msg\r\n.\r\n", {expect_backend("msg\r\n.\r\n")});
      s.backend_eof({expect_client(backend_lost), expect_close()});
      CHECK(m.take_audit_events().empty());
    });
  }
}

TEST_CASE("smtp_machine: client EOF", "[smtp][session]") {
  SECTION("at a command boundary: QUIT to the backend") {
    run_all_feeds([](session_script& s, smtp_machine& m) {
      open_tls(s, m);
      s.client_eof({expect_backend("QUIT\r\n"), expect_close()});
      CHECK(m.facts().outcome == "client_closed");
    });
  }
  SECTION("during DATA: the back leg is aborted, no final dot") {
    run_all_feeds([](session_script& s, smtp_machine& m) {
      open_data(s, m);
      s.client("Subject: half\r\n\r\nbody\r\n", {expect_backend("Subject: half\r\n\r\nbody\r\n")});
      s.client_eof({expect_abort_backend(), expect_close()});
      CHECK_FALSE(contains(s.backend_bytes(), "\r\n.\r\n"));
      CHECK(m.facts().outcome == "client_closed");
    });
  }
  SECTION("during DATA with a held dot: still no final dot") {
    run_all_feeds([](session_script& s, smtp_machine& m) {
      open_data(s, m);
      s.client("body\r\n.\r", {expect_backend("body\r\n")});
      s.client_eof({expect_abort_backend(), expect_close()});
      CHECK_FALSE(contains(s.backend_bytes(), "\r\n.\r"));
    });
  }
  SECTION("inside a BDAT chunk: aborted") {
    run_all_feeds([](session_script& s, smtp_machine& m) {
      open_tls(s, m);
      s.client("MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nBDAT 100 LAST\r\nabc",
               {expect_backend("MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nBDAT 100 LAST\r\nabc")});
      s.client_eof({expect_abort_backend(), expect_close()});
    });
  }
}

TEST_CASE("smtp_machine: SMTP smuggling in message data", "[smtp][session]") {
  const std::string refused =
      "554 5.6.0 Message contains a bare CR or LF, refused (SMTP smuggling)\r\n"
      "421 4.4.2 proxy.example closing connection\r\n";
  SECTION("reject: bare LF aborts the back leg before any final dot") {
    run_all_feeds([&](session_script& s, smtp_machine& m) {
      open_data(s, m);
      s.client("Subject: x\r\n\r\nline1\r\n.\nMAIL FROM:<evil@attacker>\r\n.\r\n",
               {expect_backend("Subject: x\r\n\r\nline1\r\n"), expect_abort_backend(),
                expect_client(refused), expect_close()});
      CHECK(m.facts().outcome == "refused_policy");
      CHECK_FALSE(contains(s.backend_bytes(), "\r\n.\r\n"));
      CHECK_FALSE(contains(s.backend_bytes(), "evil"));
      CHECK(m.take_audit_events().empty());
      s.backend("250 2.6.0 queued\r\n", {});
      CHECK_FALSE(contains(s.client_bytes(), "250 2.6.0"));
    });
  }
  SECTION("reject: bare CR") {
    run_all_feeds([&](session_script& s, smtp_machine& m) {
      open_data(s, m);
      s.client("abc\r.\r\n", {expect_backend("abc"), expect_abort_backend(), expect_client(refused),
                              expect_close()});
    });
  }
  SECTION("normalize: rewritten to CRLF, the smuggled dot is stuffed") {
    auto settings = default_settings();
    settings.bare_lf = config::bare_lf_mode::normalize;
    run_all_feeds(settings, [&](session_script& s, smtp_machine& m) {
      open_data(s, m);
      s.client("line1\n.\nMAIL FROM:<evil@attacker>\r\n.\r\n",
               {expect_backend("line1\r\n..\r\nMAIL FROM:<evil@attacker>\r\n.\r\n")});
      s.backend("250 2.6.0 <q1@b> queued\r\n", {expect_client("250 2.6.0 <q1@b> queued\r\n")});
      CHECK(m.facts().reason == "bare CR/LF in message data (normalized)");
      auto events = m.take_audit_events();
      REQUIRE(events.size() == 1);
      CHECK(events[0].at("size").to_number<std::uint64_t>() == 35);
    });
  }
  SECTION("pass: unchanged, but a bare LF never ends the data") {
    auto settings = default_settings();
    settings.bare_lf = config::bare_lf_mode::pass;
    run_all_feeds(settings, [&](session_script& s, smtp_machine& m) {
      open_data(s, m);
      s.client("a\n.\nb\r\n", {expect_backend("a\n.\nb\r\n")});
      s.client(".\r\n", {expect_backend(".\r\n")});
      s.backend("250 queued\r\n", {expect_client("250 queued\r\n")});
      CHECK(m.facts().reason == "bare CR/LF in message data (passed)");
    });
  }
}

TEST_CASE("smtp_machine: idle timeout", "[smtp][session]") {
  SECTION("in commands") {
    run_all_feeds([](session_script& s, smtp_machine& m) {
      open_plain(s);
      s.idle_timeout({expect_client("421 4.4.2 proxy.example timeout\r\n"), expect_close()});
      CHECK(m.facts().outcome == "timeout");
    });
  }
  SECTION("in message data: the back leg is aborted first") {
    run_all_feeds([](session_script& s, smtp_machine& m) {
      open_data(s, m);
      s.client("some data\r\n", {expect_backend("some data\r\n")});
      s.idle_timeout({expect_abort_backend(), expect_client("421 4.4.2 proxy.example timeout\r\n"),
                      expect_close()});
      CHECK_FALSE(contains(s.backend_bytes(), "\r\n.\r\n"));
    });
  }
}

TEST_CASE("smtp_machine: shutdown drains at a command boundary", "[smtp][session]") {
  const std::string bye = "421 4.3.2 proxy.example shutting down\r\n";
  SECTION("idle at a boundary: at once") {
    run_all_feeds([&](session_script& s, smtp_machine& m) {
      open_tls(s, m);
      s.shutdown({expect_backend("QUIT\r\n"), expect_client(bye), expect_close()});
      CHECK(m.facts().outcome == "shutdown");
    });
  }
  SECTION("a reply pending: after it") {
    run_all_feeds([&](session_script& s, smtp_machine& m) {
      open_tls(s, m);
      s.client("NOOP\r\n", {expect_backend("NOOP\r\n")});
      s.shutdown({});
      s.backend("250 2.0.0 OK\r\n", {expect_client("250 2.0.0 OK\r\n"), expect_backend("QUIT\r\n"),
                                     expect_client(bye), expect_close()});
    });
  }
  SECTION("mid-transaction in DATA: after the final reply") {
    run_all_feeds([&](session_script& s, smtp_machine& m) {
      open_data(s, m);
      s.client("Subject: x\r\n", {expect_backend("Subject: x\r\n")});
      s.shutdown({});
      s.client("\r\nbody\r\n.\r\n", {expect_backend("\r\nbody\r\n.\r\n")});
      s.backend("250 2.6.0 <q1@b> queued\r\n",
                {expect_client("250 2.6.0 <q1@b> queued\r\n"), expect_backend("QUIT\r\n"),
                 expect_client(bye), expect_close()});
      CHECK(m.take_audit_events().size() == 1);
    });
  }
  SECTION("a partial command line: waits for the line and its reply") {
    run_all_feeds([&](session_script& s, smtp_machine& m) {
      open_tls(s, m);
      s.client("NO", {});
      s.shutdown({});
      s.client("OP\r\n", {expect_backend("NOOP\r\n")});
      s.backend("250 OK\r\n", {expect_client("250 OK\r\n"), expect_backend("QUIT\r\n"),
                               expect_client(bye), expect_close()});
    });
  }
}

TEST_CASE("smtp_machine: command lines over 4096 bytes get 500 and the session goes on",
          "[smtp][session]") {
  run_all_feeds([](session_script& s, smtp_machine&) {
    open_plain(s);
    const std::string long_line = "NOOP " + std::string(5000, 'x') + "\r\n";
    s.client(long_line, {expect_client("500 5.5.2 Line too long\r\n")});
    s.client("NOOP\r\n", {expect_backend("NOOP\r\n")});
    s.backend("250 OK\r\n", {expect_client("250 OK\r\n")});
    // Exactly at the limit is fine; one over is not. Also two in one chunk.
    const std::string at_limit = "NOOP " + std::string(4091, 'y');
    REQUIRE(at_limit.size() == 4096);
    s.client(at_limit + "\r\n", {expect_backend(at_limit + "\r\n")});
    s.backend("250 OK\r\n", {expect_client("250 OK\r\n")});
    s.client(at_limit + "y\r\n" + long_line + "NOOP\r\n",
             {expect_client("500 5.5.2 Line too long\r\n500 5.5.2 Line too long\r\n"),
              expect_backend("NOOP\r\n")});
    s.backend("250 OK\r\n", {expect_client("250 OK\r\n")});
  });
}

TEST_CASE("smtp_machine: backend replies nobody asked for", "[smtp][session]") {
  SECTION("an unsolicited 421 is relayed and closes") {
    run_all_feeds([](session_script& s, smtp_machine& m) {
      open_plain(s);
      s.backend("421 4.3.2 Service not available, closing transmission channel\r\n",
                {expect_client("421 4.3.2 Service not available, closing transmission channel\r\n"),
                 expect_close()});
      CHECK(m.facts().outcome == "backend_unavailable");
    });
  }
  SECTION("an unsolicited 250 is a protocol error, not relayed") {
    run_all_feeds([](session_script& s, smtp_machine&) {
      open_plain(s);
      s.backend("250 2.6.0 queued\r\n", {expect_client(protocol_error), expect_close()});
    });
  }
  SECTION("garbage from the backend") {
    run_all_feeds([](session_script& s, smtp_machine&) {
      open_plain(s);
      s.client("NOOP\r\n", {expect_backend("NOOP\r\n")});
      s.backend("HTTP/1.1 400 Bad Request\r\n", {expect_client(protocol_error), expect_close()});
    });
  }
  SECTION("garbage during DATA aborts the back leg") {
    run_all_feeds([](session_script& s, smtp_machine& m) {
      open_data(s, m);
      s.backend("garbage\r\n",
                {expect_abort_backend(), expect_client(protocol_error), expect_close()});
    });
  }
}

TEST_CASE("smtp_machine: implicit-TLS front leg", "[smtp][session]") {
  auto settings = default_settings();
  settings.front = config::front_tls::implicit;
  run_all_feeds(settings, [](session_script& s, smtp_machine&) {
    s.start({expect_client(greeting)});
    s.client("EHLO c\r\n", {expect_backend("EHLO c\r\n")});
    s.backend(backend_ehlo, {expect_client(ehlo_after_tls)});
    s.client("STARTTLS\r\n", {expect_client("502 5.5.1 STARTTLS not available\r\n")});
    s.client("AUTH NTLM\r\n", {expect_backend("AUTH NTLM\r\n")});
    s.backend("334 x\r\n", {expect_client("334 x\r\n")});
  });
}

TEST_CASE("smtp_machine: plaintext front leg without require_tls", "[smtp][session]") {
  auto settings = default_settings();
  settings.front = config::front_tls::none;
  run_all_feeds(settings, [](session_script& s, smtp_machine&) {
    s.start({expect_client(greeting)});
    s.client("EHLO c\r\n", {expect_backend("EHLO c\r\n")});
    s.backend(backend_ehlo,
              {expect_client("250-backend.example Hello [10.0.0.1]\r\n250-SIZE 10485760\r\n"
                             "250-PIPELINING\r\n250 CHUNKING\r\n")});
    s.client("STARTTLS\r\n", {expect_client("502 5.5.1 STARTTLS not available\r\n")});
    s.client("MAIL FROM:<a@b>\r\n", {expect_backend("MAIL FROM:<a@b>\r\n")});
    s.backend("250 ok\r\n", {expect_client("250 ok\r\n")});
  });
}

TEST_CASE("smtp_machine: too many pipelined commands", "[smtp][session]") {
  auto settings = default_settings();
  settings.max_pending_commands = 3;
  run_all_feeds(settings, [](session_script& s, smtp_machine&) {
    s.start({expect_client(greeting)});
    s.client(
        "NOOP\r\nNOOP\r\nNOOP\r\nNOOP\r\n",
        {expect_backend("NOOP\r\nNOOP\r\nNOOP\r\n"),
         expect_client("421 4.7.0 proxy.example too many pipelined commands\r\n"), expect_close()});
  });
}

TEST_CASE("smtp_machine: a whole conversation coalesced, split at every point", "[smtp][session]") {
  // Everything the client says after TLS, in one stream; the backend answers only afterwards.
  // However the stream is cut into two reads, both sides must receive the same bytes.
  const std::string client_stream =
      "MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n"
      "Subject: s\r\n\r\n..x\r\n.\r\n"
      "MAIL FROM:<c@example.org>\r\nRCPT TO:<d@example.net>\r\nBDAT 7 LAST\r\n.\r\nQUIT"
      "RSET\r\nQUIT\r\n";
  const std::string backend_stream =
      "250 ok\r\n250 ok\r\n354 go\r\n250 2.6.0 <q1@b> queued\r\n"
      "250 ok\r\n250 ok\r\n250 2.6.0 <q2@b> queued\r\n250 reset\r\n221 bye\r\n";
  const std::string expected_backend =
      "MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n"
      "Subject: s\r\n\r\n..x\r\n.\r\n"
      "MAIL FROM:<c@example.org>\r\nRCPT TO:<d@example.net>\r\nBDAT 7 LAST\r\n.\r\nQUIT"
      "RSET\r\nQUIT\r\n";
  for (std::size_t cut = 0; cut <= client_stream.size(); ++cut) {
    INFO("split at " << cut);
    smtp_machine m(default_settings(), greeting);
    std::string to_backend, to_client;
    bool closed = false;
    auto collect = [&](const tlsbridge::protocols::step_list& out) {
      for (const auto& st : out.steps()) {
        if (st.what == step::kind::send_backend) to_backend += st.data;
        if (st.what == step::kind::send_client) to_client += st.data;
        if (st.what == step::kind::close) closed = true;
      }
    };
    session_script s(m, feed::whole);
    open_tls(s, m);
    tlsbridge::protocols::step_list out;
    m.on_client_data(std::string_view(client_stream).substr(0, cut), out);
    m.on_client_data(std::string_view(client_stream).substr(cut), out);
    collect(out);
    // Only the commands before DATA went out; the rest waits for the 354.
    CHECK(to_backend == "MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n");
    out.clear();
    m.on_backend_data(backend_stream, out);
    collect(out);
    CHECK(printable(to_backend) == printable(expected_backend));
    CHECK(printable(to_client) == printable(backend_stream));
    CHECK(closed);
    auto events = m.take_audit_events();
    REQUIRE(events.size() == 2);
    CHECK(events[0].at("size").to_number<std::uint64_t>() == 19);
    CHECK(events[1].at("size").to_number<std::uint64_t>() == 7);
    CHECK(events[1].at("mail_from").as_string() == "c@example.org");
  }
}
