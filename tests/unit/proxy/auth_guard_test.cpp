// The auth guard's counting: thresholds per address and per user in a window, the block and its
// end, the (user, address) pairs a success exempts, and memory fixed whatever an attacker sends —
// 100,000 distinct user names and 100,000 distinct addresses cannot push out a sprayed name.
#include "proxy/auth_guard.hpp"

#include <catch2/catch.hpp>
#include <chrono>
#include <string>

#include "mapped_ipv4.hpp"
#include "protocols/common/auth_gate.hpp"

using tlsbridge::config::auth_guard_config;
using tlsbridge::protocols::auth_block;
using tlsbridge::protocols::auth_user_key;
using tlsbridge::proxy::auth_guard;
using tlsbridge::proxy::local_auth_counters;
using namespace std::chrono_literals;

namespace {

auth_guard::ip_key ip(std::uint32_t n) {
  return tlsbridge::test::mapped_ipv4(n);
}

auth_guard_config small_config() {
  auth_guard_config c;
  c.failures_per_ip = 10;
  c.failures_per_user = 5;
  c.window = 10min;
  c.block = 15min;
  c.remember_success = 24h;
  return c;
}

const auto t0 = auth_guard::clock::time_point{} + 48h;

}  // namespace

TEST_CASE("auth_user_key: the sAMAccountName Active Directory locks, lower case", "[proxy][auth]") {
  CHECK(auth_user_key("CONTOSO\\Alice") == "alice");
  CHECK(auth_user_key("alice@Contoso.COM") == "alice");
  CHECK(auth_user_key("ALICE") == "alice");
  CHECK(auth_user_key(" alice ") == "alice");
  CHECK(auth_user_key("contoso.local\\bob@x") == "bob");
  CHECK(auth_user_key("") == "");
  CHECK(auth_user_key(std::string(10000, 'a')).size() == 256);
}

TEST_CASE("auth_guard: a user over failures_per_user is blocked everywhere, then free again",
          "[proxy][auth]") {
  auth_guard g;
  const auto c = small_config();
  for (std::uint32_t i = 0; i < 4; ++i) {
    CHECK(g.may_try(ip(i), "alice", c, t0) == auth_block::none);
    g.failed(ip(i), "alice", c, t0 + std::chrono::seconds(i));
  }
  CHECK(g.may_try(ip(99), "alice", c, t0 + 10s) == auth_block::none);
  g.failed(ip(4), "alice", c, t0 + 10s);  // the fifth, from yet another address
  CHECK(g.may_try(ip(99), "alice", c, t0 + 11s) == auth_block::user);
  CHECK(g.may_try(ip(99), "bob", c, t0 + 11s) == auth_block::none);
  CHECK(g.may_try(ip(99), "", c, t0 + 11s) == auth_block::none);  // the address is not blocked
  CHECK(g.may_try(ip(99), "alice", c, t0 + 10s + 15min - 1s) == auth_block::user);
  CHECK(g.may_try(ip(99), "alice", c, t0 + 10s + 15min) == auth_block::none);
}

TEST_CASE("auth_guard: failures outside the window start a new count", "[proxy][auth]") {
  auth_guard g;
  const auto c = small_config();
  for (int i = 0; i < 4; ++i) g.failed(ip(1), "carol", c, t0 + std::chrono::minutes(i));
  g.failed(ip(1), "carol", c, t0 + 11min);  // the window began at t0: a new one
  CHECK(g.may_try(ip(2), "carol", c, t0 + 11min) == auth_block::none);
}

TEST_CASE("auth_guard: an address over failures_per_ip is blocked for every user",
          "[proxy][auth]") {
  auth_guard g;
  const auto c = small_config();
  for (std::uint32_t i = 0; i < 10; ++i)
    g.failed(ip(7), "user" + std::to_string(i), c, t0 + std::chrono::seconds(i));
  CHECK(g.may_try(ip(7), "", c, t0 + 20s) == auth_block::ip);
  CHECK(g.may_try(ip(7), "someone", c, t0 + 20s) == auth_block::ip);
  CHECK(g.may_try(ip(8), "user1", c, t0 + 20s) == auth_block::none);
}

TEST_CASE("auth_guard: the user blocked by a spray still logs in from an address it succeeded from",
          "[proxy][auth]") {
  auth_guard g;
  const auto c = small_config();
  g.succeeded(ip(50), "dave", t0);
  for (std::uint32_t i = 0; i < 5; ++i) g.failed(ip(100 + i), "dave", c, t0 + 1min);
  CHECK(g.may_try(ip(60), "dave", c, t0 + 2min) == auth_block::user);
  CHECK(g.may_try(ip(50), "dave", c, t0 + 2min) == auth_block::none);
  // Spelled another way, the same account and the same exemption.
  CHECK(g.may_try(ip(50), auth_user_key("CONTOSO\\Dave"), c, t0 + 2min) == auth_block::none);
  // The exemption lasts remember_success.
  CHECK(g.may_try(ip(50), "dave", c, t0 + 25h) == auth_block::none);  // the block is over too
  for (std::uint32_t i = 0; i < 5; ++i) g.failed(ip(100 + i), "dave", c, t0 + 25h);
  CHECK(g.may_try(ip(50), "dave", c, t0 + 25h) == auth_block::user);
}

TEST_CASE("auth_guard: 100,000 names and 100,000 addresses keep memory fixed and the spray blocked",
          "[proxy][auth]") {
  auto counters = std::make_unique<local_auth_counters>();
  const local_auth_counters& tables = *counters;
  const std::size_t bytes_before = tables.table_bytes();
  auth_guard g(std::move(counters));
  const auto c = small_config();
  const auto sprayer = ip(0x0a000001);
  // The spray: the victim's name from many addresses, and one address trying many names.
  for (std::uint32_t i = 0; i < 5; ++i) g.failed(ip(0x0b000000 + i), "victim", c, t0);
  for (std::uint32_t i = 0; i < 10; ++i) g.failed(sprayer, "spray" + std::to_string(i), c, t0);
  REQUIRE(g.may_try(ip(1), "victim", c, t0) == auth_block::user);
  REQUIRE(g.may_try(sprayer, "", c, t0) == auth_block::ip);
  // The flood: one-shot failures, each from a new address with a new name, and more failures of
  // the victim mixed in (which are blocked, so would not reach the backend in the proxy).
  for (std::uint32_t n = 0; n < 100000; ++n) {
    g.failed(ip(0x14000000 + n), "flood" + std::to_string(n), c, t0 + 1s);
    if (n % 1000 == 0) CHECK(g.may_try(ip(1), "victim", c, t0 + 1s) == auth_block::user);
  }
  CHECK(tables.table_bytes() == bytes_before);
  CHECK(bytes_before < 2 * 1024 * 1024);
  CHECK(g.may_try(ip(1), "victim", c, t0 + 2s) == auth_block::user);
  CHECK(g.may_try(sprayer, "", c, t0 + 2s) == auth_block::ip);
  CHECK(g.may_try(ip(2), "someone_else", c, t0 + 2s) == auth_block::none);
}
