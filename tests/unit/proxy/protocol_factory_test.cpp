// proxy/protocol_factory: the refusals the driver sends before a machine exists are byte for byte
// the machines' own, for every protocol.
#include "proxy/protocol_factory.hpp"

#include <catch2/catch.hpp>

using namespace tlsbridge;
using proxy::early_refusal;

TEST_CASE("refusal_text is what each machine would say", "[protocol_factory]") {
  config::config root;
  root.server.hostname = "mx.example";
  for (const auto p : {config::protocol::smtp, config::protocol::imap, config::protocol::pop3,
                       config::protocol::https, config::protocol::tls}) {
    config::listener_config l;
    l.protocol = p;
    const auto opener = proxy::make_backend_opener(root, l);
    const auto machine = proxy::make_session_machine(root, l, *opener);
    CAPTURE(static_cast<int>(p));
    CHECK(proxy::refusal_text(root, l, early_refusal::service_unavailable) ==
          machine->service_unavailable());
    CHECK(proxy::refusal_text(root, l, early_refusal::over_limit) == machine->over_limit());
    CHECK(proxy::opens_backend_first(p) == machine->backend_first());
  }
}
