// [acme] and the `acme` entries of [[certs]]: where their files are, and every refusal with its
// file:line.
#include <catch2/catch.hpp>

#include "config/config_loader.hpp"
#include "config/value_parsers.hpp"
#include "tests/unit/config/temp_config_dir.hpp"

using namespace tlsbridge::config;
using tlsbridge::config::test::temp_config_dir;

namespace {

constexpr std::string_view listener = R"(
[[listener]]
name = "smtp-in"
protocol = "smtp"
listen = "127.0.0.1:2525"
[listener.backend]
address = ["127.0.0.1:25"]
)";

std::vector<config_error> errors_of(const temp_config_dir& dir, const std::string& text) {
  const auto file = dir.write("tlsbridge.toml", text + std::string(listener));
  try {
    load_config(file);
  } catch (const config_load_error& e) {
    return e.errors();
  }
  return {};
}

std::string all(const std::vector<config_error>& errors) {
  std::string out;
  for (const auto& e : errors) out += e.to_string() + "\n";
  return out;
}

}  // namespace

TEST_CASE("durations accept days", "[config][acme]") {
  CHECK(parse_duration("30d") == std::chrono::hours(24 * 30));
  CHECK(parse_duration("1d") == std::chrono::hours(24));
  CHECK_FALSE(parse_duration("d"));
  CHECK_FALSE(parse_duration("1D"));
}

TEST_CASE("acme entries are served from state_dir", "[config][acme]") {
  temp_config_dir dir;
  const auto file = dir.write("tlsbridge.toml", std::string(R"([acme]
directory = "https://ca.example/dir"
email = "hostmaster@contoso.com"
state_dir = "acme-state"
renew_before = "20d"

[[certs]]
acme = ["Mail.Contoso.com", "autodiscover.contoso.com"]
)") + std::string(listener));
  const auto cfg = load_config(file);
  REQUIRE(cfg->acme);
  CHECK(cfg->acme->state_dir == dir.path() / "acme-state");
  CHECK(cfg->acme->renew_before == std::chrono::hours(24 * 20));
  CHECK(cfg->acme->challenge == "tls-alpn-01");
  REQUIRE(cfg->certs.size() == 1);
  const auto& c = cfg->certs.front();
  CHECK(c.is_acme());
  CHECK(c.acme == std::vector<std::string>{"mail.contoso.com", "autodiscover.contoso.com"});
  CHECK(c.names == c.acme);
  CHECK(c.cert == dir.path() / "acme-state" / "mail.contoso.com.crt");
  CHECK(c.key == dir.path() / "acme-state" / "mail.contoso.com.key");
  // The certificate watch follows them like any other [[certs]] file.
  const auto files = cfg->tls_files();
  CHECK(std::find(files.begin(), files.end(), c.cert) != files.end());
}

TEST_CASE("acme configuration errors name file, line and key", "[config][acme]") {
  temp_config_dir dir;
  dir.write("cert.pem", "dummy\n");
  dir.write("key.pem", "dummy\n");
  const std::string file = (dir.path() / "tlsbridge.toml").string();
  const std::string acme = "[acme]\ndirectory = \"https://ca.example/dir\"\n";

  SECTION("cert/key beside acme") {
    const auto errors = errors_of(dir, acme +
                                           "[[certs]]\nacme = [\"a.example\"]\ncert = "
                                           "\"cert.pem\"\nkey = \"key.pem\"\n");
    INFO(all(errors));
    REQUIRE(errors.size() == 2);
    CHECK(errors[0].to_string().rfind(file + ":5:8: certs[0].cert: a [[certs]] entry has "
                                             "either cert/key or acme, never both",
                                      0) == 0);
    CHECK(errors[1].key == "certs[0].key");
  }
  SECTION("acme entries without [acme]") {
    const auto errors = errors_of(dir, "[[certs]]\nacme = [\"a.example\"]\n");
    INFO(all(errors));
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].to_string() ==
          file +
              ":2:8: certs[0].acme: acme entries need an [acme] table (directory, email, "
              "state_dir)");
  }
  SECTION("wildcards, bare names and duplicates") {
    const auto errors =
        errors_of(dir, acme +
                           "[[certs]]\nacme = [\"*.a.example\", \"localhost\", \"b.example\", "
                           "\"B.example\"]\n");
    INFO(all(errors));
    REQUIRE(errors.size() == 3);
    CHECK(errors[0].key == "certs[0].acme[0]");
    CHECK(errors[1].key == "certs[0].acme[1]");
    CHECK(errors[2].key == "certs[0].acme[3]");
    CHECK(errors[2].message.find("duplicate") != std::string::npos);
  }
  SECTION("[acme] values") {
    const auto errors = errors_of(dir,
                                  "[acme]\ndirectory = \"http://ca.example/dir\"\n"
                                  "renew_before = \"0d\"\nchallenge = \"http-01\"\n"
                                  "[[certs]]\nacme = \"a.example\"\n");
    INFO(all(errors));
    REQUIRE(errors.size() == 3);
    CHECK(errors[0].to_string().rfind(file + ":2:13: acme.directory: must be an https:// URL", 0) ==
          0);
    CHECK(errors[1].to_string() ==
          file + ":3:16: acme.renew_before: must be positive, e.g. \"30d\"");
    CHECK(errors[2].key == "acme.challenge");
  }
  SECTION("directory is required") {
    const auto errors = errors_of(dir, "[acme]\nemail = \"a@b.example\"\n");
    INFO(all(errors));
    REQUIRE(errors.size() == 2);  // and the listener has no [[certs]]
    CHECK(errors[0].key == "acme.directory");
  }
}
