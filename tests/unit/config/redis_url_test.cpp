// [server] shared_state: the Redis URL's yes/no table, and the loader's positioned error.
#include "config/redis_url.hpp"

#include <catch2/catch.hpp>
#include <string>

#include "config/config_loader.hpp"
#include "tests/unit/config/temp_config_dir.hpp"

using namespace tlsbridge::config;

TEST_CASE("parse_redis_url reads host, port, password, user and database", "[config][shared]") {
  struct row {
    const char* text;
    const char* host;
    unsigned port;
    const char* user;
    const char* password;
    unsigned database;
    const char* label;
  };
  const row good[] = {
      {"redis://127.0.0.1:6379", "127.0.0.1", 6379, "", "", 0, "redis://127.0.0.1:6379"},
      {"redis://10.0.0.9", "10.0.0.9", 6379, "", "", 0, "redis://10.0.0.9:6379"},
      {"REDIS://cache.example.net:7000/", "cache.example.net", 7000, "", "", 0,
       "redis://cache.example.net:7000"},
      {"redis://:s3cret@127.0.0.1:6380", "127.0.0.1", 6380, "", "s3cret", 0,
       "redis://127.0.0.1:6380"},
      {"redis://proxy:p%40ss@127.0.0.1:6380/2", "127.0.0.1", 6380, "proxy", "p@ss", 2,
       "redis://127.0.0.1:6380/2"},
      {"redis://[::1]:6379", "::1", 6379, "", "", 0, "redis://[::1]:6379"},
  };
  for (const auto& r : good) {
    INFO(r.text);
    const auto parsed = parse_redis_url(r.text);
    REQUIRE(parsed.url);
    CHECK(parsed.error.empty());
    CHECK(parsed.url->host == r.host);
    CHECK(parsed.url->port == r.port);
    CHECK(parsed.url->user == r.user);
    CHECK(parsed.url->password == r.password);
    CHECK(parsed.url->database == r.database);
    CHECK(parsed.url->to_string() == r.label);  // never the password
  }
}

TEST_CASE("parse_redis_url refuses what it cannot connect to as written", "[config][shared]") {
  const std::pair<const char*, const char*> bad[] = {
      {"", "not a URL"},
      {"127.0.0.1:6379", "redis://"},
      {"redis:127.0.0.1", "no host"},
      {"redis://", "no host"},
      {"http://127.0.0.1:6379", "redis://"},
      {"rediss://127.0.0.1:6379", "not supported"},
      {"unix:///run/redis.sock", "redis://"},
      {"redis://127.0.0.1:0", "bad port"},
      {"redis://127.0.0.1:65536", "bad port"},
      {"redis://127.0.0.1:99999999", "bad port"},
      {"redis://127.0.0.1:", "bad port"},
      {"redis://user@127.0.0.1", "no password"},
      {"redis://127.0.0.1/x", "database"},
      {"redis://127.0.0.1/1/2", "database"},
      {"redis://127.0.0.1/?db=1", "query"},
      {"redis://127.0.0.1#x", "fragment"},
      {"redis://host name", "not a URL"},
  };
  for (const auto& [text, why] : bad) {
    INFO(text);
    const auto parsed = parse_redis_url(text);
    CHECK_FALSE(parsed.url);
    CHECK_THAT(parsed.error, Catch::Contains(why));
  }
}

TEST_CASE("[server] shared_state is read; a bad URL is a positioned error", "[config][shared]") {
  test::temp_config_dir dir;
  dir.write("cert.pem", "dummy\n");
  dir.write("key.pem", "dummy\n");
  const auto load = [&](const std::string& value) -> std::string {
    const auto file =
        dir.write("tlsbridge.toml",
                  "[server]\nshared_state = \"" + value +
                      "\"\n\n[[certs]]\ncert = \"cert.pem\"\nkey = \"key.pem\"\n\n[[listener]]\n"
                      "name = \"smtp-in\"\nlisten = \"127.0.0.1:2525\"\n"
                      "[listener.backend]\naddress = \"127.0.0.1:25\"\n");
    try {
      return load_config(file)->server.shared_state;
    } catch (const config_load_error& e) {
      return std::string("error: ") + e.what();
    }
  };
  CHECK(load("redis://127.0.0.1:6379") == "redis://127.0.0.1:6379");
  CHECK(load("") == "");
  CHECK_THAT(load("rediss://127.0.0.1:6379"),
             Catch::StartsWith("error: ") && Catch::Contains("server.shared_state") &&
                 Catch::Contains("tlsbridge.toml:2:") && Catch::Contains("not supported"));
}
