// The key per-client limits count under (README, "Deviations": max_connections_per_ip, IPv6 per
// /64; issue 12): IPv4 and IPv4-mapped IPv6 per address, other IPv6 per /64.
#include <catch2/catch.hpp>

#include "config/value_parsers.hpp"
#include "proxy/listener.hpp"

using namespace tlsbridge;

namespace {
std::array<std::uint8_t, 16> ip(const char* text) {
  auto parsed = config::parse_ip(text);
  REQUIRE(parsed);
  return *parsed;
}
std::array<std::uint8_t, 16> key(const char* text) {
  return proxy::per_ip_key(ip(text));
}
}  // namespace

TEST_CASE("per_ip_key: IPv6 addresses of one /64 share a key", "[proxy][limits]") {
  CHECK(key("2001:db8:1:2::1") == key("2001:db8:1:2:ffff:ffff:ffff:ffff"));
  CHECK(key("2001:db8:1:2::1") == key("2001:db8:1:2:a:b:c:d"));
  CHECK(key("2001:db8:1:2::1") == ip("2001:db8:1:2::"));
  CHECK(key("2001:db8:1:2::1") != key("2001:db8:1:3::1"));
  CHECK(key("2001:db8:1:2::1") != key("2001:db9:1:2::1"));
  CHECK(key("::1") == key("::2"));  // ::/64: loopback and its neighbours, one host
}

TEST_CASE("per_ip_key: IPv4 and IPv4-mapped IPv6 count per address", "[proxy][limits]") {
  CHECK(key("192.0.2.1") == ip("192.0.2.1"));
  CHECK(key("192.0.2.1") != key("192.0.2.2"));
  CHECK(key("::ffff:192.0.2.1") == key("192.0.2.1"));
  CHECK(key("::ffff:192.0.2.2") != key("192.0.2.1"));
  // Not the /64 of ::ffff:0:0 — that would make all of IPv4 one client.
  CHECK(key("10.0.0.1") != key("10.0.0.2"));
}

TEST_CASE("listener_counters count a /64 together and release by the same key", "[proxy][limits]") {
  proxy::listener_counters counters;
  CHECK(counters.acquire_ip(ip("2001:db8::1")) == 1);
  CHECK(counters.acquire_ip(ip("2001:db8::2")) == 2);
  CHECK(counters.acquire_ip(ip("2001:db8:0:1::1")) == 1);
  CHECK(counters.acquire_ip(ip("::ffff:203.0.113.9")) == 1);
  CHECK(counters.acquire_ip(ip("203.0.113.9")) == 2);
  counters.release_ip(ip("2001:db8::1"));
  CHECK(counters.acquire_ip(ip("2001:db8::3")) == 2);
}
