// connection_rate_table: N per window per key, a new window after it, memory fixed whatever the
// number of distinct clients.
#include "proxy/connection_rate.hpp"

#include <catch2/catch.hpp>
#include <chrono>

#include "mapped_ipv4.hpp"

using tlsbridge::proxy::connection_rate_table;
using namespace std::chrono_literals;

namespace {
std::array<std::uint8_t, 16> key(std::uint32_t n) {
  return tlsbridge::test::mapped_ipv4(n);
}
}  // namespace

TEST_CASE("connection_rate_table: N per window, then a new window", "[proxy][limits]") {
  connection_rate_table t;
  const auto t0 = connection_rate_table::clock::time_point{} + 1h;
  for (int i = 0; i < 3; ++i) CHECK(t.admit(key(1), 3, 10s, t0 + std::chrono::seconds(i)));
  CHECK_FALSE(t.admit(key(1), 3, 10s, t0 + 5s));
  CHECK_FALSE(t.admit(key(1), 3, 10s, t0 + 9s));
  CHECK(t.admit(key(2), 3, 10s, t0 + 9s));   // another client has its own count
  CHECK(t.admit(key(1), 3, 10s, t0 + 10s));  // the window began with the first connection
}

TEST_CASE("connection_rate_table: a flood of sources keeps memory fixed and cannot pin a victim",
          "[proxy][limits]") {
  connection_rate_table t(64);
  const auto t0 = connection_rate_table::clock::time_point{} + 1h;
  CHECK(t.admit(key(7), 1, 60s, t0));
  for (std::uint32_t n = 100; n < 100000; ++n) t.admit(key(n), 1, 60s, t0 + 1s);
  // key(7) may have been evicted (then counted afresh) or kept (then refused): both are bounded
  // behaviours; a fresh key is always admitted once.
  CHECK(t.admit(key(200000), 1, 60s, t0 + 2s));
  CHECK_FALSE(t.admit(key(200000), 1, 60s, t0 + 3s));
}
