// The machines and the auth guard's gate (protocols/common/auth_gate.hpp): each finds the user
// and the backend's verdict in its grammar, a failure's reply follows a delay_client step (the
// tarpit), and a blocked attempt is answered by the proxy with nothing relayed.
#include <catch2/catch.hpp>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "../imap/machine_harness.hpp"
#include "protocols/http/https_machine.hpp"
#include "protocols/imap/imap_machine.hpp"
#include "protocols/pop3/pop3_machine.hpp"
#include "protocols/smtp/smtp_machine.hpp"

using namespace tlsbridge;
using protocols::auth_block;
using test::machine_harness;

namespace {

// Blocks the users in `blocked_users` (by auth_user_key) and records what it was told.
struct fake_gate : protocols::auth_gate {
  std::vector<std::string> blocked_users;
  bool ip_blocked = false;
  std::vector<std::string> asked, failures, successes;

  auth_block may_try(std::string_view user) override {
    asked.emplace_back(user);
    if (ip_blocked) return auth_block::ip;
    for (const auto& u : blocked_users)
      if (u == protocols::auth_user_key(user)) return auth_block::user;
    return auth_block::none;
  }
  void failed(std::string_view user) override { failures.emplace_back(user); }
  void succeeded(std::string_view user) override { successes.emplace_back(user); }
  std::chrono::milliseconds tarpit() const override { return std::chrono::milliseconds(1000); }
  bool records_user() const override { return true; }
};

// Gives `m` the gate and starts it; the greeting is taken.
void start_gated(protocols::session_machine& m, fake_gate& gate, machine_harness& h) {
  m.set_auth_gate(&gate);
  h.start();
  h.take_client();
}

bool has_event(protocols::session_machine& m, const char* name) {
  for (auto& e : m.take_audit_events())
    if (e.at("event").as_string() == name) return true;
  return false;
}

}  // namespace

TEST_CASE("pop3: -ERR to PASS is a failure after a tarpit; a blocked user's PASS stays here",
          "[pop3][auth]") {
  protocols::pop3::machine_settings s;
  s.front = config::front_tls::implicit;
  protocols::pop3::pop3_machine m(s, "+OK ready\r\n");
  fake_gate gate;
  machine_harness h(m, false);
  start_gated(m, gate, h);
  h.client("USER Alice@contoso.com\r\n");
  h.backend("+OK\r\n");
  h.client("PASS wrong\r\n");
  CHECK(h.take_backend() == "USER Alice@contoso.com\r\nPASS wrong\r\n");
  h.take_marks();
  h.take_client();
  h.backend("-ERR [AUTH] Authentication failed.\r\n");
  CHECK(h.take_marks() == std::vector<std::string>{"delay_client"});
  CHECK(h.take_client() == "-ERR [AUTH] Authentication failed.\r\n");
  CHECK(gate.failures == std::vector<std::string>{"Alice@contoso.com"});
  CHECK(has_event(m, "auth.failure"));

  gate.blocked_users = {"alice"};
  h.client("PASS secret\r\n");
  CHECK(h.take_backend().empty());
  CHECK(h.take_client() == "-ERR [SYS/TEMP] Too many failed logins, try later\r\n");
  CHECK(has_event(m, "auth.blocked"));

  gate.blocked_users.clear();
  h.client("PASS right\r\n");
  CHECK(h.take_backend() == "PASS right\r\n");
  h.backend("+OK Logged in.\r\n");
  CHECK(h.take_marks().empty());
  CHECK(gate.successes == std::vector<std::string>{"Alice@contoso.com"});
}

TEST_CASE("imap: NO to LOGIN is a failure after a tarpit; a blocked LOGIN is NO [UNAVAILABLE]",
          "[imap][auth]") {
  protocols::imap::machine_settings s;
  s.front = config::front_tls::implicit;
  protocols::imap::imap_machine m(s, "* OK ready\r\n");
  fake_gate gate;
  machine_harness h(m, false);
  start_gated(m, gate, h);
  h.client("a1 LOGIN \"CONTOSO\\\\bob\" wrong\r\n");
  CHECK(h.take_backend() == "a1 LOGIN \"CONTOSO\\\\bob\" wrong\r\n");
  h.backend("a1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n");
  CHECK(h.take_marks() == std::vector<std::string>{"delay_client"});
  CHECK(h.take_client() == "a1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n");
  REQUIRE(gate.failures.size() == 1);
  CHECK(protocols::auth_user_key(gate.failures[0]) == "bob");

  gate.blocked_users = {"bob"};
  h.client("a2 LOGIN bob {6}\r\n");
  CHECK(h.take_backend().empty());  // no "+": the password is never sent
  CHECK(h.take_client() == "a2 NO [UNAVAILABLE] Too many failed logins, try later\r\n");

  gate.blocked_users.clear();
  gate.ip_blocked = true;
  h.client("a3 AUTHENTICATE PLAIN\r\n");
  CHECK(h.take_backend().empty());
  CHECK(h.take_client() == "a3 NO [UNAVAILABLE] Too many failed logins, try later\r\n");
}

TEST_CASE("smtp: 535 to AUTH is a failure after a tarpit; a blocked AUTH is 454 4.7.0",
          "[smtp][auth]") {
  protocols::smtp::machine_settings s;
  s.front = config::front_tls::implicit;
  protocols::smtp::smtp_machine m(s, "220 backend ESMTP\r\n");
  fake_gate gate;
  machine_harness h(m, false);
  start_gated(m, gate, h);
  h.client("EHLO c\r\n");
  h.backend("250-backend\r\n250 AUTH PLAIN LOGIN\r\n");
  h.take_client();
  h.take_backend();
  // PLAIN "\0carol\0wrong"
  h.client("AUTH PLAIN AGNhcm9sAHdyb25n\r\n");
  CHECK(h.take_backend() == "AUTH PLAIN AGNhcm9sAHdyb25n\r\n");
  h.backend("535 5.7.8 Authentication credentials invalid\r\n");
  CHECK(h.take_marks() == std::vector<std::string>{"delay_client"});
  CHECK(h.take_client() == "535 5.7.8 Authentication credentials invalid\r\n");
  CHECK(gate.failures == std::vector<std::string>{"carol"});

  gate.blocked_users = {"carol"};
  h.client("AUTH PLAIN AGNhcm9sAHdyb25n\r\n");
  CHECK(h.take_backend().empty());
  CHECK(h.take_client() ==
        "454 4.7.0 Too many failed authentication attempts, try again later\r\n");
  // LOGIN: the user comes in the first response; blocked, the exchange is cancelled there.
  h.client("AUTH LOGIN\r\n");
  CHECK(h.take_backend() == "AUTH LOGIN\r\n");
  h.backend("334 VXNlcm5hbWU6\r\n");
  h.take_client();
  h.client("Y2Fyb2w=\r\n");  // "carol"
  CHECK(h.take_backend() == "*\r\n");
  h.backend("501 5.7.0 Authentication aborted\r\n");
  CHECK(h.take_client() ==
        "454 4.7.0 Too many failed authentication attempts, try again later\r\n");
  CHECK(gate.failures.size() == 1);  // the cancelled exchange is no verdict
}

TEST_CASE("https: 401 to Basic is a failure after a tarpit; a blocked user gets 429",
          "[http][auth]") {
  protocols::http::machine_settings s;
  protocols::http::https_machine m(s);
  fake_gate gate;
  machine_harness h(m, false);
  start_gated(m, gate, h);
  // "CONTOSO\dave:wrong"
  const std::string request =
      "GET /owa/ HTTP/1.1\r\nHost: x\r\nAuthorization: Basic Q09OVE9TT1xkYXZlOndyb25n\r\n\r\n";
  h.client(request);
  CHECK(h.take_backend().find("GET /owa/") == 0);
  h.take_marks();
  h.backend("HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n");
  CHECK(h.take_marks() == std::vector<std::string>{"delay_client"});
  CHECK(h.take_client().find("HTTP/1.1 401") == 0);
  REQUIRE(gate.failures.size() == 1);
  CHECK(protocols::auth_user_key(gate.failures[0]) == "dave");

  gate.blocked_users = {"dave"};
  h.client(request);
  CHECK(h.take_backend().empty());
  CHECK(h.take_client().find("HTTP/1.1 429 Too Many Requests") == 0);
}

TEST_CASE("imap: a blocked user named in a LOGIN literal ends the session before the password",
          "[imap][auth]") {
  protocols::imap::machine_settings s;
  s.front = config::front_tls::implicit;
  protocols::imap::imap_machine m(s, "* OK ready\r\n");
  fake_gate gate;
  gate.blocked_users = {"bob"};
  machine_harness h(m, false);
  start_gated(m, gate, h);
  h.client("a1 LOGIN {3}\r\n");
  CHECK(h.take_backend() == "a1 LOGIN {3}\r\n");  // no name yet: the address alone was asked
  h.backend("+ go ahead\r\n");
  h.take_client();
  h.client("bob {6}\r\n");
  CHECK(h.take_backend() == "bob");  // the literal went on as it came; the password never does
  CHECK(h.take_client() ==
        "a1 NO [UNAVAILABLE] Too many failed logins, try later\r\n"
        "* BYE localhost too many failed logins\r\n");
  CHECK(h.take_marks() == std::vector<std::string>{"abort_backend", "close"});
  CHECK(has_event(m, "auth.blocked"));
}

// One SASL exchange per mail protocol whose machine reads the user from the client's response.
struct sasl_cancel_case {
  const char* protocol;
  std::function<std::unique_ptr<protocols::session_machine>()> make;
  std::string command;        // starts the exchange; relayed as it is
  std::string backend_abort;  // the backend's answer to the "*" that cancels it
  std::string refusal;        // what the client is told instead
  std::string next;           // a later command, relayed: the session goes on
};

TEST_CASE("pop3 and imap: a blocked user in a SASL PLAIN response cancels the exchange",
          "[pop3][imap][auth]") {
  const std::string plain_bob = "AGJvYgBndWVzcw==";  // "\0bob\0guess"
  const std::vector<sasl_cancel_case> cases = {
      {"pop3",  // RFC 5034 §4
       [] {
         protocols::pop3::machine_settings s;
         s.front = config::front_tls::implicit;
         return std::make_unique<protocols::pop3::pop3_machine>(s, "+OK ready\r\n");
       },
       "AUTH PLAIN\r\n", "-ERR Authentication aborted\r\n",
       "-ERR [SYS/TEMP] Too many failed logins, try later\r\n", "CAPA\r\n"},
      {"imap",  // RFC 9051 §6.2.2
       [] {
         protocols::imap::machine_settings s;
         s.front = config::front_tls::implicit;
         return std::make_unique<protocols::imap::imap_machine>(s, "* OK ready\r\n");
       },
       "a1 AUTHENTICATE PLAIN\r\n", "a1 BAD Authentication aborted\r\n",
       "a1 NO [UNAVAILABLE] Too many failed logins, try later\r\n", "a2 NOOP\r\n"},
  };
  for (const auto& c : cases) {
    DYNAMIC_SECTION(c.protocol) {
      auto m = c.make();
      fake_gate gate;
      gate.blocked_users = {"bob"};
      machine_harness h(*m, false);
      start_gated(*m, gate, h);
      h.client(c.command);
      CHECK(h.take_backend() == c.command);
      h.backend("+ \r\n");
      h.take_client();
      h.client(plain_bob + "\r\n");
      CHECK(h.take_backend() == "*\r\n");  // cancelled, the response kept here
      h.backend(c.backend_abort);
      CHECK(h.take_client() == c.refusal);
      CHECK(gate.failures.empty());
      h.client(c.next);
      CHECK(h.take_backend() == c.next);
    }
  }
}
