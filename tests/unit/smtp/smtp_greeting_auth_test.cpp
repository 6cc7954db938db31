// smtp_machine: [listener.smtp] greeting (the backend's 220 and EHLO host replaced), auth_user in
// smtp.message (SASL PLAIN and LOGIN), pretls_auth_attempts in the session facts.
#include <boost/json/serialize.hpp>
#include <catch2/catch.hpp>
#include <string>

#include "protocols/smtp/smtp_machine.hpp"
#include "session_script.hpp"

using namespace tlsbridge::protocols::smtp;
using namespace tlsbridge::test;
namespace config = tlsbridge::config;

namespace {

const std::string greeting = "220-internal.contoso.local ESMTP\r\n220 second line\r\n";
const std::string backend_ehlo =
    "250-internal.contoso.local Hello [10.0.0.1]\r\n"
    "250-REQUIRETLS\r\n"
    "250-AUTH PLAIN LOGIN\r\n"
    "250 8BITMIME\r\n";

machine_settings settings(std::string greeting_text) {
  machine_settings s;
  s.front = config::front_tls::starttls;
  s.require_tls = true;
  s.hostname = "proxy.example";
  s.greeting = std::move(greeting_text);
  return s;
}

void open_tls(session_script& s, const std::string& client_greeting, const std::string& ehlo_tls) {
  s.start({expect_client(client_greeting)});
  s.client("STARTTLS\r\n",
           {expect_client("220 2.0.0 Ready to start TLS\r\n"), expect_start_front_tls()});
  s.front_tls_established({});
  s.client("EHLO c\r\n", {expect_backend("EHLO c\r\n")});
  s.backend(backend_ehlo, {expect_client(ehlo_tls)});
}

// MAIL, RCPT, DATA, a body and its final reply; returns the smtp.message event.
boost::json::object send_message(session_script& s, smtp_machine& m) {
  s.client("MAIL FROM:<a@x>\r\n", {expect_backend("MAIL FROM:<a@x>\r\n")});
  s.backend("250 ok\r\n", {expect_client("250 ok\r\n")});
  s.client("RCPT TO:<b@y>\r\n", {expect_backend("RCPT TO:<b@y>\r\n")});
  s.backend("250 ok\r\n", {expect_client("250 ok\r\n")});
  s.client("DATA\r\n", {expect_backend("DATA\r\n")});
  s.backend("354 go\r\n", {expect_client("354 go\r\n")});
  s.client("hi\r\n.\r\n", {expect_backend("hi\r\n.\r\n")});
  s.backend("250 queued\r\n", {expect_client("250 queued\r\n")});
  for (auto& e : m.take_audit_events())
    if (e.at("event").as_string() == "smtp.message") return e;
  FAIL("no smtp.message event");
  return {};
}

}  // namespace

TEST_CASE("smtp_machine: greeting replaces the backend's 220 and EHLO host; REQUIRETLS dropped",
          "[smtp][session]") {
  smtp_machine m(settings("mx.contoso.com ESMTP"), greeting);
  session_script s(m, feed::whole);
  open_tls(s, "220 mx.contoso.com ESMTP\r\n",
           "250-mx.contoso.com Hello [10.0.0.1]\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n");
  CHECK(s.client_bytes().find("internal.contoso.local") == std::string::npos);
}

TEST_CASE("smtp_machine: without greeting the backend's own words pass", "[smtp][session]") {
  smtp_machine m(settings(""), greeting);
  session_script s(m, feed::whole);
  open_tls(s, greeting,
           "250-internal.contoso.local Hello [10.0.0.1]\r\n250-AUTH PLAIN LOGIN\r\n"
           "250 8BITMIME\r\n");
}

TEST_CASE("smtp_machine: auth_user from AUTH PLAIN, pretls attempts counted", "[smtp][session]") {
  smtp_machine m(settings(""), greeting);
  session_script s(m, feed::whole);
  s.start({expect_client(greeting)});
  s.client(
      "AUTH PLAIN AGVhcmx5AHB3\r\n",
      {expect_client("538 5.7.11 Encryption required for requested authentication mechanism\r\n")});
  CHECK(m.facts().pretls_auth_attempts == 1);
  s.client("STARTTLS\r\n",
           {expect_client("220 2.0.0 Ready to start TLS\r\n"), expect_start_front_tls()});
  s.front_tls_established({});
  s.client("EHLO c\r\n", {expect_backend("EHLO c\r\n")});
  s.backend(backend_ehlo, {expect_client("250-internal.contoso.local Hello [10.0.0.1]\r\n"
                                         "250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n")});
  // "\0alice\0secret", without initial response (RFC 4954 §4: the 334 asks for it)
  s.client("AUTH PLAIN\r\n", {expect_backend("AUTH PLAIN\r\n")});
  s.backend("334 \r\n", {expect_client("334 \r\n")});
  s.client("AGFsaWNlAHNlY3JldA==\r\n", {expect_backend("AGFsaWNlAHNlY3JldA==\r\n")});
  s.backend("235 2.7.0 ok\r\n", {expect_client("235 2.7.0 ok\r\n")});
  CHECK(m.facts().pretls_auth_attempts == 1);
  const auto e = send_message(s, m);
  CHECK(e.at("auth_user").as_string() == "alice");
}

TEST_CASE("smtp_machine: auth_user from AUTH LOGIN; a failed AUTH records none",
          "[smtp][session]") {
  smtp_machine m(settings(""), greeting);
  session_script s(m, feed::whole);
  open_tls(s, greeting,
           "250-internal.contoso.local Hello [10.0.0.1]\r\n250-AUTH PLAIN LOGIN\r\n"
           "250 8BITMIME\r\n");
  // "mallory" refused first: no auth_user from a 535.
  s.client("AUTH LOGIN bWFsbG9yeQ==\r\n", {expect_backend("AUTH LOGIN bWFsbG9yeQ==\r\n")});
  s.backend("334 UGFzc3dvcmQ6\r\n", {expect_client("334 UGFzc3dvcmQ6\r\n")});
  s.client("eA==\r\n", {expect_backend("eA==\r\n")});
  s.backend("535 5.7.8 no\r\n", {expect_client("535 5.7.8 no\r\n")});
  CHECK(send_message(s, m).contains("auth_user") == false);
  s.client("AUTH LOGIN\r\n", {expect_backend("AUTH LOGIN\r\n")});
  s.backend("334 VXNlcm5hbWU6\r\n", {expect_client("334 VXNlcm5hbWU6\r\n")});
  s.client("Ym9i\r\n", {expect_backend("Ym9i\r\n")});
  s.backend("334 UGFzc3dvcmQ6\r\n", {expect_client("334 UGFzc3dvcmQ6\r\n")});
  s.client("cHc=\r\n", {expect_backend("cHc=\r\n")});
  s.backend("235 ok\r\n", {expect_client("235 ok\r\n")});
  CHECK(send_message(s, m).at("auth_user").as_string() == "bob");
  CHECK(m.facts().pretls_auth_attempts == 0);
}
