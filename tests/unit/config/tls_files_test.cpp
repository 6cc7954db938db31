// config::tls_files — the certificate, key and CA files a reload re-reads and the certificate
// watch follows — and the [server] watch_certs switch.
#include <catch2/catch.hpp>

#include "config/config_loader.hpp"
#include "tests/unit/config/temp_config_dir.hpp"

using namespace tlsbridge::config;
using tlsbridge::config::test::temp_config_dir;

TEST_CASE("tls_files lists every certificate, key and CA file once, in config order",
          "[config][cert_watch]") {
  temp_config_dir dir;
  for (const char* name : {"a.pem", "a.key", "b.pem", "b.key", "clients.pem", "backend-ca.pem"})
    dir.write(name, "dummy\n");
  const auto cfg = load_config(dir.write("tlsbridge.toml", R"(
[server]
watch_certs = false
[[certs]]
cert = "a.pem"
key = "a.key"
[[certs]]
cert = "b.pem"
key = "b.key"
[[listener]]
name = "in"
listen = "127.0.0.1:2525"
client_certs = "optional"
client_ca = "clients.pem"
[listener.backend]
address = "127.0.0.1:25"
tls = "starttls"
verify = "ca"
ca_file = "backend-ca.pem"
[[listener]]
name = "again"
listen = "127.0.0.1:2526"
client_certs = "optional"
client_ca = "clients.pem"
[listener.backend]
address = "127.0.0.1:25"
)"));
  CHECK_FALSE(cfg->server.watch_certs);
  const auto base = dir.path().lexically_normal();
  CHECK(cfg->tls_files() == std::vector<std::filesystem::path>{
                                base / "a.pem", base / "a.key", base / "b.pem", base / "b.key",
                                base / "clients.pem", base / "backend-ca.pem"});
}

TEST_CASE("watch_certs must be a boolean", "[config][cert_watch]") {
  temp_config_dir dir;
  dir.write("c.pem", "dummy\n");
  dir.write("c.key", "dummy\n");
  const auto file = dir.write("tlsbridge.toml", R"(
[server]
watch_certs = "yes"
[[certs]]
cert = "c.pem"
key = "c.key"
[[listener]]
name = "in"
listen = "127.0.0.1:2525"
[listener.backend]
address = "127.0.0.1:25"
)");
  try {
    load_config(file);
    FAIL("loaded");
  } catch (const config_load_error& e) {
    REQUIRE(e.errors().size() == 1);
    CHECK_THAT(e.errors()[0].to_string(), Catch::Contains("server.watch_certs"));
    CHECK_THAT(e.errors()[0].to_string(), Catch::Contains("boolean"));
  }
}
