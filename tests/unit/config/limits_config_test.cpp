// [listener.limits], [listener.smtp] greeting and [listener.http] hsts as the loader reads them.
#include <catch2/catch.hpp>
#include <string>

#include "config/config_loader.hpp"
#include "tests/unit/config/temp_config_dir.hpp"

using namespace tlsbridge::config;

namespace {

constexpr std::string_view head = R"([[certs]]
cert = "cert.pem"
key = "key.pem"

[[listener]]
name = "smtp-in"
listen = "127.0.0.1:2525"
)";

struct files {
  test::temp_config_dir dir;
  files() {
    dir.write("cert.pem", "dummy\n");
    dir.write("key.pem", "dummy\n");
  }
  // The loaded config, or the errors' text.
  std::string load(const std::string& listener_tail, config* out = nullptr) {
    const auto file =
        dir.write("tlsbridge.toml", std::string(head) + listener_tail +
                                        "[listener.backend]\naddress = \"127.0.0.1:25\"\n");
    try {
      auto cfg = load_config(file);
      if (out) *out = *cfg;
      return {};
    } catch (const config_load_error& e) {
      return e.what();
    }
  }
};

}  // namespace

TEST_CASE("[listener.limits] and [listener.smtp] are read", "[config][limits]") {
  files f;
  config cfg;
  REQUIRE(f.load("limits = { deny = [\"10.0.0.0/8\", \"2001:db8::/32\"], connection_rate = "
                 "\"60/1m\" }\nsmtp = { greeting = \"mx.contoso.com ESMTP\" }\n",
                 &cfg)
              .empty());
  const auto& l = cfg.listeners.at(0);
  CHECK(l.limits.deny.size() == 2);
  CHECK(l.limits.rate_count == 60);
  CHECK(l.limits.rate_window == std::chrono::minutes(1));
  CHECK(l.smtp.greeting == "mx.contoso.com ESMTP");
  CHECK(l.http.hsts == "max-age=31536000");  // the default
}

TEST_CASE("bad limits are refused with the key", "[config][limits]") {
  files f;
  for (const char* rate : {"60", "0/1m", "x/1m", "60/", "60/soon", "/1m"}) {
    INFO(rate);
    CHECK_THAT(f.load(std::string("limits = { connection_rate = \"") + rate + "\" }\n"),
               Catch::Contains("listener[0].limits.connection_rate") &&
                   Catch::Contains("invalid connection_rate"));
  }
  CHECK_THAT(f.load("limits = { deny = [\"10.0.0.0/33\"] }\n"),
             Catch::Contains("listener[0].limits.deny"));
  CHECK_THAT(f.load("smtp = { greeting = \"a\\r\\nb\" }\n"), Catch::Contains("must be one line"));
}

TEST_CASE("[listener.auth_guard]: on by default, read, bad values refused with the key",
          "[config][auth]") {
  files f;
  config cfg;
  REQUIRE(f.load("", &cfg).empty());
  const auto& d = cfg.listeners.at(0).auth_guard;
  CHECK(d.enabled);
  CHECK(d.failures_per_ip == 10);
  CHECK(d.failures_per_user == 5);
  CHECK(d.window == std::chrono::minutes(10));
  CHECK(d.block == std::chrono::minutes(15));
  CHECK(d.tarpit == std::chrono::seconds(1));

  REQUIRE(f.load("auth_guard = { enabled = false, failures_per_ip = 3, failures_per_user = 2, "
                 "window = \"1m\", block = \"2h\", tarpit = \"0s\", remember_success = \"1h\" }\n",
                 &cfg)
              .empty());
  const auto& g = cfg.listeners.at(0).auth_guard;
  CHECK_FALSE(g.enabled);
  CHECK(g.failures_per_ip == 3);
  CHECK(g.failures_per_user == 2);
  CHECK(g.window == std::chrono::minutes(1));
  CHECK(g.block == std::chrono::hours(2));
  CHECK(g.tarpit.count() == 0);
  CHECK(g.remember_success == std::chrono::hours(1));

  CHECK_THAT(f.load("auth_guard = { failures_per_user = 0 }\n"),
             Catch::Contains("listener[0].auth_guard.failures_per_user"));
  CHECK_THAT(f.load("auth_guard = { window = \"0s\" }\n"),
             Catch::Contains("listener[0].auth_guard.window"));
  CHECK_THAT(f.load("auth_guard = { tarpit = \"1m\" }\n"),
             Catch::Contains("listener[0].auth_guard.tarpit"));
  CHECK_THAT(f.load("auth_guard = { treshold = 3 }\n"), Catch::Contains("treshold"));
}
