// proxy/protocol_factory: what a client refused before its machine exists is told, in its
// protocol's own words, and which protocols open the back leg first.
#include "proxy/protocol_factory.hpp"

#include <catch2/catch.hpp>

using namespace tlsbridge;
using proxy::early_refusal;

namespace {

std::string refusal(config::protocol p, early_refusal why) {
  config::config root;
  root.server.hostname = "mx.example";
  config::listener_config l;
  l.protocol = p;
  return proxy::refusal_text(root, l, why);
}

}  // namespace

TEST_CASE("refusal_text speaks each protocol", "[protocol_factory]") {
  using config::protocol;
  // RFC 5321 §3.8: 421 and close; RFC 3463 4.7.0 for a policy limit.
  CHECK(refusal(protocol::smtp, early_refusal::service_unavailable) ==
        "421 4.3.0 mx.example Service not available\r\n");
  CHECK(refusal(protocol::smtp, early_refusal::over_limit) ==
        "421 4.7.0 mx.example too many connections\r\n");
  // RFC 9051 §7.1.5 BYE, RFC 5530 UNAVAILABLE ("try later").
  CHECK(refusal(protocol::imap, early_refusal::service_unavailable) ==
        "* BYE mx.example Service not available\r\n");
  CHECK(refusal(protocol::imap, early_refusal::over_limit) ==
        "* BYE [UNAVAILABLE] mx.example too many connections\r\n");
  // RFC 3206 SYS/TEMP.
  CHECK(refusal(protocol::pop3, early_refusal::service_unavailable) ==
        "-ERR mx.example Service not available\r\n");
  CHECK(refusal(protocol::pop3, early_refusal::over_limit) ==
        "-ERR [SYS/TEMP] mx.example too many connections\r\n");
  CHECK(refusal(protocol::https, early_refusal::service_unavailable)
            .starts_with("HTTP/1.1 502 Bad Gateway\r\n"));
  CHECK(refusal(protocol::https, early_refusal::over_limit)
            .starts_with("HTTP/1.1 503 Service Unavailable\r\n"));
  // One client over its own limits, or denied: RFC 6585 §4, 429.
  CHECK(refusal(protocol::https, early_refusal::client_limit)
            .starts_with("HTTP/1.1 429 Too Many Requests\r\n"));
  CHECK(refusal(protocol::https, early_refusal::denied)
            .starts_with("HTTP/1.1 429 Too Many Requests\r\n"));
  CHECK(refusal(protocol::smtp, early_refusal::client_limit) ==
        "421 4.7.0 mx.example too many connections\r\n");
  CHECK(refusal(protocol::smtp, early_refusal::denied) == "421 4.7.0 mx.example access denied\r\n");
  CHECK(refusal(protocol::imap, early_refusal::denied) ==
        "* BYE [UNAVAILABLE] mx.example access denied\r\n");
  CHECK(refusal(protocol::pop3, early_refusal::denied) ==
        "-ERR [SYS/TEMP] mx.example access denied\r\n");
  // Raw TLS has no words of its own: the connection is just closed.
  CHECK(refusal(protocol::tls, early_refusal::service_unavailable).empty());
  CHECK(refusal(protocol::tls, early_refusal::over_limit).empty());
}

TEST_CASE("opens_backend_first is what each machine expects", "[protocol_factory]") {
  config::config root;
  for (const auto p : {config::protocol::smtp, config::protocol::imap, config::protocol::pop3,
                       config::protocol::https, config::protocol::tls}) {
    config::listener_config l;
    l.protocol = p;
    const auto opener = proxy::make_backend_opener(root, l);
    const auto machine = proxy::make_session_machine(root, l, *opener);
    CAPTURE(static_cast<int>(p));
    CHECK(proxy::opens_backend_first(p) == machine->backend_first());
  }
}
