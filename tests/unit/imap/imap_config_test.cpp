#include <catch2/catch.hpp>

#include "config/config_loader.hpp"

using namespace tlsbridge::config;

TEST_CASE("imap listeners default to a 30-minute idle timeout (RFC 9051 §5.4)", "[imap]") {
  const auto cfg = load_config_from_string(R"([[listener]]
name = "imap-in"
protocol = "imap"
listen = "127.0.0.1:1143"
tls = "none"
[listener.backend]
address = "127.0.0.1:143"

[[listener]]
name = "imap-short"
protocol = "imap"
listen = "127.0.0.1:1144"
tls = "none"
timeouts = { idle = "10m" }
[listener.backend]
address = "127.0.0.1:143"

[[listener]]
name = "pop3-in"
protocol = "pop3"
listen = "127.0.0.1:1110"
tls = "none"
[listener.backend]
address = "127.0.0.1:110"
)",
                                           "/tmp/tlsbridge-imap-config-test.toml");
  REQUIRE(cfg->listeners.size() == 3);
  CHECK(cfg->listeners[0].timeouts.idle == std::chrono::minutes(30));
  CHECK(cfg->listeners[1].timeouts.idle == std::chrono::minutes(10));  // explicit wins
  CHECK(cfg->listeners[2].timeouts.idle == std::chrono::minutes(5));   // the default
}
