// peer_pattern_problem, and check-config's "file:line" for a [[policy.rule]] peer that can match
// nothing.
#include "config/peer_pattern.hpp"

#include <catch2/catch.hpp>

#include "config/config_loader.hpp"
#include "tests/unit/config/temp_config_dir.hpp"

using tlsbridge::config::peer_pattern_problem;

TEST_CASE("peer_pattern_problem accepts CIDRs, addresses and host globs", "[config][policy]") {
  const std::string longest_label(63, 'a');
  for (const char* ok :
       {"10.0.0.0/8", "127.0.0.1", "::1", "2001:db8::/32", "*", "localhost", "*.contoso.com",
        "mx*.example.net", "*mx.example.net", "m*x*.example.net", "mail.*.example",
        "MX1.Example.NET.", "a-b.example", "*-*.example", "host.example1", longest_label.c_str()}) {
    INFO(ok);
    CHECK_FALSE(peer_pattern_problem(ok));
  }
}

TEST_CASE("peer_pattern_problem refuses what can match nothing", "[config][policy]") {
  const std::pair<const char*, const char*> bad[] = {
      {"127.0.0.*", "IP address cannot hold a glob"},
      {"10.*", "IP address cannot hold a glob"},
      {"300.1.1.1", "IP address cannot hold a glob"},
      {"1*.2.3.4", "IP address cannot hold a glob"},
      {"10.0.0.0/40", "not a CIDR"},
      {"fe80::/ab", "not a CIDR"},
      {"mx:25", "not a CIDR"},
      {"", "empty"},
      {"a..example", "empty label"},
      {".example", "empty label"},
      {"..", "empty label"},
      {"mx_1.example", "only letters"},
      {"mx .example", "only letters"},
      {"-mx.example", "starts or ends with '-'"},
      {"mx-.example", "starts or ends with '-'"},
      {"host.123", "all-digit label"},
  };
  for (const auto& [text, why] : bad) {
    INFO(text);
    const auto problem = peer_pattern_problem(text);
    REQUIRE(problem);
    CHECK_THAT(*problem, Catch::Contains(why));
  }
  CHECK_THAT(*peer_pattern_problem(std::string(64, 'a') + ".example"),
             Catch::Contains("longer than 63"));
  std::string long_name;
  for (int i = 0; i < 26; ++i) long_name += "abcdefghi.";
  CHECK_THAT(*peer_pattern_problem(long_name + "example"), Catch::Contains("253"));
}

TEST_CASE("check-config names the file and line of a peer that matches nothing",
          "[config][policy]") {
  tlsbridge::config::test::temp_config_dir dir;
  const auto file = dir.write("tlsbridge.toml", R"([[listener]]
name = "smtp-out"
listen = "127.0.0.1:2526"
tls = "none"
[listener.backend]
address = "127.0.0.1:25"
[[policy.rule]]
peer = "127.0.0.1"
on_untrusted = "log"
[[policy.rule]]
peer = "mx*.example.net"
[[policy.rule]]
peer = "127.0.0.*"
)");
  std::vector<tlsbridge::config::config_error> errors;
  try {
    tlsbridge::config::load_config(file);
  } catch (const tlsbridge::config::config_load_error& e) {
    errors = e.errors();
  }
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].key == "policy.rule[2].peer");
  CHECK(errors[0].line == 13);
  CHECK_THAT(errors[0].to_string(), Catch::StartsWith(file.string() + ":13:"));
  CHECK_THAT(errors[0].message, Catch::Contains("\"127.0.0.*\""));
  CHECK_THAT(errors[0].message, Catch::Contains("127.0.0.0/24"));
}
