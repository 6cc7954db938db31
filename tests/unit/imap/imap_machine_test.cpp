#include "protocols/imap/imap_machine.hpp"

#include <catch2/catch.hpp>
#include <functional>

#include "machine_harness.hpp"

using namespace tlsbridge;
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

machine_settings implicit_front() {
  auto s = starttls_front();
  s.front = config::front_tls::implicit;
  return s;
}

using scenario = std::function<void(machine_harness&, imap_machine&)>;

// Runs the scenario with whole chunks and byte by byte; both must give the same transcript.
void both_feeds(const machine_settings& settings, const scenario& body) {
  std::string transcripts[2];
  for (int bytewise = 0; bytewise < 2; ++bytewise) {
    INFO((bytewise ? "bytes one at a time" : "whole chunks"));
    imap_machine m(settings, greeting);
    machine_harness h(m, bytewise == 1);
    h.start();
    h.take_client();
    body(h, m);
    transcripts[bytewise] = h.transcript();
  }
  CHECK(transcripts[0] == transcripts[1]);
}

}  // namespace

TEST_CASE("imap greeting is rewritten for the front leg's state", "[imap]") {
  {
    imap_machine m(starttls_front(), greeting);
    machine_harness h(m, false);
    h.start();
    CHECK(h.take_client() ==
          "* OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL+ IDLE STARTTLS LOGINDISABLED] Dovecot "
          "ready.\r\n");
  }
  {
    imap_machine m(implicit_front(), greeting);
    machine_harness h(m, false);
    h.start();
    CHECK(h.take_client() ==
          "* OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL+ IDLE AUTH=PLAIN] Dovecot ready.\r\n");
  }
}

TEST_CASE("imap STARTTLS is answered by the proxy; pipelined plaintext is discarded", "[imap]") {
  both_feeds(starttls_front(), [](machine_harness& h, imap_machine& m) {
    h.client("a1 CAPABILITY\r\n");
    CHECK(h.take_backend() == "a1 CAPABILITY\r\n");
    h.backend("* CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN IDLE\r\na1 OK done\r\n");
    CHECK(h.take_client() ==
          "* CAPABILITY IMAP4rev1 IDLE STARTTLS LOGINDISABLED\r\na1 OK done\r\n");

    h.client("a2 STARTTLS\r\na3 LOGIN evil secret\r\n");
    CHECK(h.take_client() == "a2 OK Begin TLS negotiation now\r\n");
    CHECK(h.take_marks() == std::vector<std::string>{"start_front_tls"});
    CHECK(h.take_backend().empty());
    CHECK(m.client_input_paused());
    CHECK(m.facts().starttls_injection);
    CHECK(m.facts().injected_bytes == 22);

    h.front_tls();
    CHECK(!m.client_input_paused());
    h.client("a4 CAPABILITY\r\n");
    CHECK(h.take_backend() == "a4 CAPABILITY\r\n");
    h.backend("* CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN IDLE\r\na4 OK done\r\n");
    CHECK(h.take_client() == "* CAPABILITY IMAP4rev1 AUTH=PLAIN IDLE\r\na4 OK done\r\n");
    h.client("a5 LOGIN alice secret\r\n");
    CHECK(h.take_backend() == "a5 LOGIN alice secret\r\n");
    h.backend("a5 OK [CAPABILITY IMAP4rev1 STARTTLS IDLE] Logged in\r\n");
    CHECK(h.take_client() == "a5 OK [CAPABILITY IMAP4rev1 IDLE] Logged in\r\n");
    auto events = m.take_audit_events();
    REQUIRE(events.size() == 1);
    CHECK(events[0]["event"] == "imap.login");
    CHECK(events[0]["user"] == "alice");
    CHECK(events[0]["result"] == "OK Logged in");
  });
}

TEST_CASE("imap STARTTLS waits for earlier relayed commands", "[imap]") {
  both_feeds(starttls_front(), [](machine_harness& h, imap_machine&) {
    h.client("a1 NOOP\r\na2 STARTTLS\r\n");
    CHECK(h.take_backend() == "a1 NOOP\r\n");
    CHECK(h.take_client().empty());
    CHECK(h.take_marks().empty());
    h.backend("a1 OK NOOP completed\r\n");
    CHECK(h.take_client() == "a1 OK NOOP completed\r\na2 OK Begin TLS negotiation now\r\n");
    CHECK(h.take_marks() == std::vector<std::string>{"start_front_tls"});
  });
}

TEST_CASE("imap require_tls: LOGIN and AUTHENTICATE before TLS are refused locally", "[imap]") {
  both_feeds(starttls_front(), [](machine_harness& h, imap_machine& m) {
    h.client("a1 LOGIN alice secret\r\n");
    CHECK(h.take_client() == "a1 NO [PRIVACYREQUIRED] Use STARTTLS before authenticating\r\n");
    h.client("a2 AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==\r\n");
    CHECK(h.take_client() == "a2 NO [PRIVACYREQUIRED] Use STARTTLS before authenticating\r\n");
    // A synchronizing literal: the NO takes the place of "+", the client sends no literal.
    h.client("a3 LOGIN {5}\r\n");
    CHECK(h.take_client() == "a3 NO [PRIVACYREQUIRED] Use STARTTLS before authenticating\r\n");
    // Non-synchronizing literals arrive anyway: skipped as data, then refused.
    h.client("a4 LOGIN {5+}\r\nalice {13+}\r\na5 STARTTLS\r\n\r\n");
    CHECK(h.take_client() == "a4 NO [PRIVACYREQUIRED] Use STARTTLS before authenticating\r\n");
    h.client("a6 NOOP\r\n");
    CHECK(h.take_backend() == "a6 NOOP\r\n");
    // Each refusal is audited with its rule; no login record, nothing reached the backend.
    auto events = m.take_audit_events();
    CHECK(events.size() == 4);
    for (auto& e : events) {
      CHECK(e["event"] == "imap.refused");
      CHECK(e["reason"].as_string().starts_with("imap.require_tls"));
    }
    CHECK(!m.facts().starttls_injection);
  });
}

TEST_CASE("imap literals are data: 'a STARTTLS' inside APPEND is carried to the backend",
          "[imap]") {
  const std::string message = "Subject: x\r\n\r\nb STARTTLS\r\nc LOGIN a b\r\n* CAPABILITY\r\n";
  both_feeds(starttls_front(), [&](machine_harness& h, imap_machine& m) {
    h.client("a1 STARTTLS\r\n");
    h.front_tls();
    h.take_client();
    h.take_marks();
    // Synchronizing: the client waits for the backend's "+".
    h.client("a2 APPEND INBOX {" + std::to_string(message.size()) + "}\r\n");
    CHECK(h.take_backend() == "a2 APPEND INBOX {" + std::to_string(message.size()) + "}\r\n");
    h.backend("+ OK\r\n");
    CHECK(h.take_client() == "+ OK\r\n");
    h.client(message + "\r\n");
    CHECK(h.take_backend() == message + "\r\n");
    CHECK(h.take_client().empty());
    CHECK(h.take_marks().empty());
    h.backend("a2 OK Append completed.\r\n");
    CHECK(h.take_client() == "a2 OK Append completed.\r\n");
    // Non-synchronizing, pipelined with the next command.
    h.client("a3 APPEND INBOX {" + std::to_string(message.size()) + "+}\r\n" + message +
             "\r\na4 NOOP\r\n");
    CHECK(h.take_backend() == "a3 APPEND INBOX {" + std::to_string(message.size()) + "+}\r\n" +
                                  message + "\r\na4 NOOP\r\n");
    CHECK(h.take_client().empty());
    CHECK(m.facts().injected_bytes == 0);
  });
}

TEST_CASE("imap a synchronizing literal refused by the backend ends the command", "[imap]") {
  both_feeds(implicit_front(), [](machine_harness& h, imap_machine&) {
    h.client("a1 APPEND nobox {5}\r\n");
    CHECK(h.take_backend() == "a1 APPEND nobox {5}\r\n");
    h.client("a2 NOOP\r\n");  // early: held, not taken as the literal
    CHECK(h.take_backend().empty());
    h.backend("a1 NO [TRYCREATE] Mailbox doesn't exist\r\n");
    CHECK(h.take_client() == "a1 NO [TRYCREATE] Mailbox doesn't exist\r\n");
    CHECK(h.take_backend() == "a2 NOOP\r\n");
  });
}

TEST_CASE("imap backend literals are relayed untouched, never read as responses", "[imap]") {
  const std::string body =
      "Subject: trap\r\n\r\n* CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN\r\na1 OK fake\r\n"
      "* OK [CAPABILITY STARTTLS] x\r\n";
  both_feeds(starttls_front(), [&](machine_harness& h, imap_machine&) {
    // a2 is refused locally and must wait for a1's real completion.
    h.client("a1 FETCH 1 BODY[]\r\na2 COMPRESS DEFLATE\r\n");
    CHECK(h.take_backend() == "a1 FETCH 1 BODY[]\r\n");
    const std::string response = "* 1 FETCH (BODY[] {" + std::to_string(body.size()) + "}\r\n" +
                                 body + " FLAGS (\\Seen))\r\n";
    h.backend(response);
    CHECK(h.take_client() == response);
    h.backend("a1 OK Fetch completed.\r\n");
    CHECK(h.take_client() ==
          "a1 OK Fetch completed.\r\na2 NO COMPRESS is not available through this proxy\r\n");
  });
}

TEST_CASE("imap LOGIN user from quoted strings and literals; audit_envelope", "[imap]") {
  both_feeds(implicit_front(), [](machine_harness& h, imap_machine& m) {
    h.client("a1 LOGIN \"al ice\" \"pw\"\r\n");
    h.backend("a1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n");
    h.client("a2 LOGIN {5+}\r\nalice {6+}\r\nsecret\r\n");
    CHECK(h.take_backend() ==
          "a1 LOGIN \"al ice\" \"pw\"\r\na2 LOGIN {5+}\r\nalice {6+}\r\nsecret\r\n");
    h.backend("a2 OK Logged in\r\n");
    auto events = m.take_audit_events();
    REQUIRE(events.size() == 2);
    CHECK(events[0]["user"] == "al ice");
    CHECK(events[0]["result"] == "NO [AUTHENTICATIONFAILED] Authentication failed.");
    CHECK(events[1]["user"] == "alice");
    CHECK(events[1]["result"] == "OK Logged in");
  });
  auto s = implicit_front();
  s.audit_envelope = false;
  imap_machine m(s, greeting);
  machine_harness h(m, false);
  h.client("a1 LOGIN alice secret\r\n");
  h.backend("a1 OK Logged in\r\n");
  auto events = m.take_audit_events();
  REQUIRE(events.size() == 1);
  CHECK(!events[0].contains("user"));
  CHECK(events[0]["result"] == "OK Logged in");
}

TEST_CASE("imap AUTHENTICATE PLAIN exchange after TLS", "[imap]") {
  both_feeds(implicit_front(), [](machine_harness& h, imap_machine& m) {
    h.client("a1 AUTHENTICATE PLAIN\r\n");
    CHECK(h.take_backend() == "a1 AUTHENTICATE PLAIN\r\n");
    h.backend("+ \r\n");
    CHECK(h.take_client() == "+ \r\n");
    h.client("AGFsaWNlAHNlY3JldA==\r\n");
    CHECK(h.take_backend() == "AGFsaWNlAHNlY3JldA==\r\n");
    h.backend("a1 OK Logged in\r\n");
    auto events = m.take_audit_events();
    REQUIRE(events.size() == 1);
    CHECK(events[0]["user"] == "alice");
  });
}

TEST_CASE("imap IDLE: DONE waits for '+ idling'; notifications pass; drain ends an IDLE",
          "[imap]") {
  both_feeds(implicit_front(), [](machine_harness& h, imap_machine&) {
    h.client("a1 IDLE\r\nDONE\r\na2 NOOP\r\n");
    CHECK(h.take_backend() == "a1 IDLE\r\n");
    h.backend("+ idling\r\n");
    CHECK(h.take_client() == "+ idling\r\n");
    CHECK(h.take_backend() == "DONE\r\n");
    h.backend("* 2 EXISTS\r\na1 OK Idle completed.\r\n");
    CHECK(h.take_client() == "* 2 EXISTS\r\na1 OK Idle completed.\r\n");
    CHECK(h.take_backend() == "a2 NOOP\r\n");
    h.backend("a2 OK NOOP completed.\r\n");
    h.take_client();
    h.client("a3 IDLE\r\n");
    h.backend("+ idling\r\n");
    h.take_client();
    h.shutdown();
    CHECK(h.take_client() == "* BYE proxy.test shutting down\r\n");
    CHECK(h.closed());
  });
}

TEST_CASE("imap limits: oversized line and literal", "[imap]") {
  both_feeds(implicit_front(), [](machine_harness& h, imap_machine& m) {
    h.client("a1 APPEND INBOX {100000000}\r\n");
    CHECK(h.take_client() == "a1 NO [TOOBIG] Literal too large\r\n");
    CHECK(h.take_backend().empty());
    h.client("a2 NOOP\r\n");
    CHECK(h.take_backend() == "a2 NOOP\r\n");
    h.client("a3 APPEND INBOX {100000000+}\r\n");
    CHECK(h.take_client() == "* BYE proxy.test literal too large\r\n");
    CHECK(h.closed());
    CHECK(m.facts().outcome == "limit");
  });
  both_feeds(implicit_front(), [](machine_harness& h, imap_machine& m) {
    h.client("a1 SEARCH " + std::string(70 * 1024, 'x') + "\r\n");
    CHECK(h.take_client() == "* BYE proxy.test command line too long\r\n");
    CHECK(h.take_backend().empty());
    CHECK(h.closed());
    CHECK(m.facts().outcome == "limit");
  });
}

TEST_CASE("imap LOGOUT closes after the tagged reply; timeouts and backend loss", "[imap]") {
  both_feeds(implicit_front(), [](machine_harness& h, imap_machine& m) {
    h.client("a1 LOGOUT\r\n");
    CHECK(h.take_backend() == "a1 LOGOUT\r\n");
    h.backend("* BYE Logging out\r\na1 OK Logout completed.\r\n");
    CHECK(h.take_client() == "* BYE Logging out\r\na1 OK Logout completed.\r\n");
    CHECK(h.take_marks() == std::vector<std::string>{"close"});
    CHECK(m.facts().outcome == "ok");
  });
  both_feeds(implicit_front(), [](machine_harness& h, imap_machine& m) {
    h.idle_timeout();
    CHECK(h.take_client() == "* BYE proxy.test Autologout; idle timeout\r\n");
    CHECK(m.facts().outcome == "timeout");
  });
  both_feeds(implicit_front(), [](machine_harness& h, imap_machine& m) {
    h.client("a1 NOOP\r\n");
    h.shutdown();
    CHECK(h.take_client().empty());  // a command is in flight
    h.backend("a1 OK done\r\n");
    CHECK(h.take_client() == "a1 OK done\r\n* BYE proxy.test shutting down\r\n");
    CHECK(m.facts().outcome == "shutdown");
  });
  both_feeds(implicit_front(), [](machine_harness& h, imap_machine& m) {
    h.backend_eof();
    CHECK(h.take_client() == "* BYE proxy.test connection to backend lost\r\n");
    CHECK(m.facts().outcome == "backend_unavailable");
  });
}
