// Yes/no tables for every value syntax of the config file (conf/tlsbridge.toml).
#include <catch2/catch.hpp>

#include "config/value_parsers.hpp"

using namespace tlsbridge::config;

TEST_CASE("parse_duration accepts a number with a unit", "[config][value]") {
  const std::pair<const char*, long long> good[] = {
      {"500ms", 500}, {"10s", 10'000},    {"5m", 300'000},    {"1h", 3'600'000},
      {"0s", 0},      {"65m", 3'900'000}, {"2d", 172'800'000}};
  for (const auto& [text, ms] : good) {
    INFO(text);
    const auto d = parse_duration(text);
    REQUIRE(d);
    CHECK(d->count() == ms);
  }
}

TEST_CASE("parse_duration rejects bare numbers, bad units, signs and overflow", "[config][value]") {
  for (const char* text :
       {"", "10", "10x", "-1s", "+1s", "1.5s", " 10s", "10s ", "10 s", "s", "10S", "1D", "1w",
        "2h30m", "99999999999999999999h", "9999999999999999h"}) {
    INFO(text);
    CHECK_FALSE(parse_duration(text));
  }
}

TEST_CASE("parse_size accepts binary units and bytes", "[config][value]") {
  const std::pair<const char*, std::uint64_t> good[] = {
      {"64KiB", 65'536}, {"10MiB", 10ull << 20}, {"1GiB", 1ull << 30}, {"1024B", 1024}, {"0B", 0}};
  for (const auto& [text, bytes] : good) {
    INFO(text);
    const auto s = parse_size(text);
    REQUIRE(s);
    CHECK(*s == bytes);
  }
}

TEST_CASE("parse_size rejects missing or decimal units and overflow", "[config][value]") {
  for (const char* text : {"", "64", "64KB", "64kib", "64 KiB", "-1KiB", "1.5MiB", "KiB",
                           "18446744073709551616B", "17179869184GiB"}) {
    INFO(text);
    CHECK_FALSE(parse_size(text));
  }
}

TEST_CASE("parse_endpoint accepts IPv4, bracketed IPv6 and host names", "[config][value]") {
  struct row {
    const char* text;
    const char* host;
    std::uint16_t port;
    const char* round_trip;
  };
  const row good[] = {
      {"0.0.0.0:25", "0.0.0.0", 25, "0.0.0.0:25"},
      {"127.0.0.1:0", "127.0.0.1", 0, "127.0.0.1:0"},
      {"[::]:25", "::", 25, "[::]:25"},
      {"[::1]:2525", "::1", 2525, "[::1]:2525"},
      {"[2001:db8::5]:65535", "2001:db8::5", 65535, "[2001:db8::5]:65535"},
      {"mail.example.com:25", "mail.example.com", 25, "mail.example.com:25"},
      {"localhost:993", "localhost", 993, "localhost:993"},
  };
  for (const row& r : good) {
    INFO(r.text);
    const auto ep = parse_endpoint(r.text);
    REQUIRE(ep);
    CHECK(ep->host == r.host);
    CHECK(ep->port == r.port);
    CHECK(ep->to_string() == r.round_trip);
  }
}

TEST_CASE("parse_endpoint rejects missing ports, bad ports and broken brackets",
          "[config][value]") {
  for (const char* text : {"",
                           "127.0.0.1",
                           "127.0.0.1:",
                           "127.0.0.1:65536",
                           "127.0.0.1:123456",
                           "127.0.0.1:-1",
                           "127.0.0.1:+25",
                           "127.0.0.1:2 5",
                           "[::1",
                           "[::1]",
                           "[::1]25",
                           "[::1]:",
                           "::1:25",
                           ":25",
                           "host:port",
                           "a..b:25",
                           ".a:25",
                           "-a.example:25",
                           "256.1.1.1:25",
                           "10.0.0:25",
                           "[mail.example.com]:25",
                           "[127.0.0.1]:25",
                           "mail example:25"}) {
    INFO(text);
    CHECK_FALSE(parse_endpoint(text));
  }
}

TEST_CASE("parse_tls_version knows TLS1.0 to TLS1.3 only", "[config][value]") {
  CHECK(parse_tls_version("TLS1.0") == tls1_0);
  CHECK(parse_tls_version("TLS1.1") == tls1_1);
  CHECK(parse_tls_version("TLS1.2") == tls1_2);
  CHECK(parse_tls_version("TLS1.3") == tls1_3);
  for (const char* text : {"", "TLS1.4", "SSL3.0", "tls1.2", "TLSv1.2", "1.2"}) {
    INFO(text);
    CHECK_FALSE(parse_tls_version(text));
  }
}

TEST_CASE("parse_ip stores IPv4 as v4-mapped IPv6", "[config][value]") {
  const auto v4 = parse_ip("192.0.2.1");
  REQUIRE(v4);
  CHECK(*v4 ==
        std::array<std::uint8_t, 16>{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1});
  CHECK(parse_ip("::ffff:192.0.2.1") == v4);
  const auto v6 = parse_ip("2001:db8::1");
  REQUIRE(v6);
  CHECK((*v6)[0] == 0x20);
  CHECK((*v6)[15] == 1);
  for (const char* text : {"", "1.2.3", "1.2.3.256", "fe80::1%eth0", "::g", "host"}) {
    INFO(text);
    CHECK_FALSE(parse_ip(text));
  }
}

TEST_CASE("parse_cidr accepts v4, v6 and bare addresses", "[config][value]") {
  const std::pair<const char*, unsigned> good[] = {
      {"10.0.0.0/8", 104}, {"0.0.0.0/0", 96},     {"192.0.2.1", 128}, {"192.0.2.1/32", 128},
      {"::/0", 0},         {"2001:db8::/32", 32}, {"::1", 128},       {"::ffff:10.0.0.0/104", 104}};
  for (const auto& [text, prefix] : good) {
    INFO(text);
    const auto c = parse_cidr(text);
    REQUIRE(c);
    CHECK(c->prefix_len == prefix);
  }
  for (const char* text :
       {"", "10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/8/8", "10.0.0/8", "10.0.0.0/-1",
        "10.0.0.0/ 8", "10.0.0.0/0008", "fe80::1%eth0/64", "abc", "/8"}) {
    INFO(text);
    CHECK_FALSE(parse_cidr(text));
  }
}

TEST_CASE("cidr::contains matches v4 and v6 prefixes", "[config][value]") {
  struct row {
    const char* block;
    const char* address;
    bool inside;
  };
  const row rows[] = {
      {"10.0.0.0/8", "10.255.1.2", true},
      {"10.0.0.0/8", "11.0.0.1", false},
      {"10.0.0.0/8", "::a00:1", false},  // a v6 address is not inside a v4 block
      {"10.1.2.3/8", "10.9.9.9", true},  // host bits are ignored
      {"192.168.0.0/23", "192.168.1.255", true},
      {"192.168.0.0/23", "192.168.2.0", false},
      {"192.0.2.1", "192.0.2.1", true},
      {"192.0.2.1", "192.0.2.2", false},
      {"0.0.0.0/0", "203.0.113.9", true},
      {"0.0.0.0/0", "::1", false},
      {"::/0", "::1", true},
      {"::/0", "203.0.113.9", true},  // v4-mapped space is part of ::/0
      {"2001:db8::/32", "2001:db8:ffff::1", true},
      {"2001:db8::/32", "2001:db9::1", false},
      {"2001:db8::/33", "2001:db8:8000::1", false},
      {"::1", "::1", true},
      {"::1", "127.0.0.1", false},
      {"::ffff:10.0.0.0/104", "10.1.1.1", true},
  };
  for (const row& r : rows) {
    INFO(r.block << " contains " << r.address);
    const auto block = parse_cidr(r.block);
    const auto address = parse_ip(r.address);
    REQUIRE(block);
    REQUIRE(address);
    CHECK(block->contains(*address) == r.inside);
  }
}
