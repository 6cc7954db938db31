// proxy/refusal_reason: one classification of what a connection's record says was refused, for
// tlsbridge_refusals_total{reason}, tlsbridge_certificate_refusals_total and the status page.
#include "proxy/refusal_reason.hpp"

#include <catch2/catch.hpp>

using namespace tlsbridge;
using proxy::connection_record;
using proxy::outcome;

TEST_CASE("refusals: admission names its reason, only when it refused", "[refusal_reason]") {
  connection_record r;
  r.what = outcome::limit;
  r.refused_by = "deny";
  r.reason = "client address in [listener.limits] deny";
  auto out = proxy::refusals_of(r);
  REQUIRE(out.size() == 1);
  CHECK(out[0].reason == "deny");
  CHECK(out[0].detail == r.reason);
  CHECK_FALSE(out[0].certificate);

  // A front handshake that failed before the limit's answer was sent: not a refusal by `deny`.
  r.what = outcome::tls_failed;
  r.front.tls_error = "unexpected eof while reading";
  CHECK(proxy::refusals_of(r).empty());
}

TEST_CASE("refusals: a TLS 1.0 client is refused for its version, a vanished one is not",
          "[refusal_reason]") {
  connection_record r;
  r.what = outcome::tls_failed;
  r.front.tls_error = "unsupported protocol";
  auto out = proxy::refusals_of(r);
  REQUIRE(out.size() == 1);
  CHECK(out[0].reason == "tls_version");
  r.front.tls_error = "no shared cipher";
  CHECK(proxy::refusals_of(r).at(0).reason == "tls_cipher");
  r.front.tls_error = "wrong version number";  // plaintext on a TLS port: a failure
  CHECK(proxy::refusals_of(r).empty());
}

TEST_CASE("refusals: certificates apart from the shield's rules", "[refusal_reason]") {
  policy::decision refused;
  refused.result = policy::verdict::refused;
  connection_record r;
  r.what = outcome::refused_policy;
  r.reason = "backend chain refused by policy: weak_signature";
  auto& b = r.back.emplace();
  b.decision = &refused;
  auto out = proxy::refusals_of(r);
  REQUIRE(out.size() == 1);
  CHECK(out[0].reason == "backend_certificate");
  CHECK(out[0].certificate);

  connection_record c;
  c.what = outcome::refused_policy;
  c.front.decision = &refused;
  CHECK(proxy::refusals_of(c).at(0).reason == "client_certificate");

  // The shield ended an IMAP session (outcome refused_policy, no chain refused): its rule only.
  connection_record s;
  s.what = outcome::refused_policy;
  s.refusals = {{"imap.literal", 1}, {"imap.command_syntax", 3}};
  out = proxy::refusals_of(s);
  REQUIRE(out.size() == 2);
  CHECK(out[0].reason == "imap.literal");
  CHECK(out[1].reason == "imap.command_syntax");
  CHECK(out[1].count == 3);
  CHECK(out[1].detail == "3 requests");
  CHECK_FALSE(out[1].certificate);
}
