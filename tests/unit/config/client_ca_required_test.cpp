// client_certs needs client_ca (SECURITY.md, "What it trusts": client chains are trusted only from
// client_ca): without it the system store would make every publicly trusted certificate a valid
// client identity.
#include <catch2/catch.hpp>
#include <string>

#include "config/config_loader.hpp"
#include "temp_config_dir.hpp"

using namespace tlsbridge::config;

namespace {
std::vector<config_error> errors_of(const test::temp_config_dir& dir, const std::string& extra) {
  dir.write("cert.pem", "dummy\n");
  dir.write("key.pem", "dummy\n");
  dir.write("ca.pem", "dummy\n");
  const auto file = dir.write("tlsbridge.toml",
                              "[[certs]]\ncert = \"cert.pem\"\nkey = \"key.pem\"\n"
                              "[[listener]]\nname = \"mtls\"\nlisten = "
                              "\"127.0.0.1:4650\"\ntls = \"implicit\"\n" +
                                  extra +
                                  "[listener.backend]\naddress = "
                                  "\"127.0.0.1:25\"\n");
  try {
    load_config(file);
  } catch (const config_load_error& e) {
    return e.errors();
  }
  return {};
}
}  // namespace

TEST_CASE("client_certs without client_ca is an error", "[config][loader][client_certs]") {
  test::temp_config_dir dir;
  for (const char* mode : {"required", "optional"}) {
    const auto errors = errors_of(dir, std::string("client_certs = \"") + mode + "\"\n");
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].key == "listener[0].client_certs");
    CHECK(errors[0].message.find("needs client_ca") != std::string::npos);
    CHECK(errors_of(dir, std::string("client_certs = \"") + mode + "\"\nclient_ca = \"ca.pem\"\n")
              .empty());
  }
  CHECK(errors_of(dir, "client_certs = \"none\"\n").empty());
}
