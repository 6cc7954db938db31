// proxy/shared_state's pure parts: the local/cluster merge a decision uses when Redis's answer is
// late or missing, the last-answer cache, and the Redis key names (namespaced, bounded).
#include "proxy/shared_state.hpp"

#include <catch2/catch.hpp>
#include <chrono>

using namespace tlsbridge::proxy;
using namespace std::chrono_literals;

TEST_CASE("merged_count: never below the local count, the cluster's when it knows more",
          "[proxy][shared]") {
  struct row {
    std::uint64_t local;
    std::optional<cluster_view> last;
    std::uint64_t expected;
  };
  const row rows[] = {
      {1, std::nullopt, 1},  // nothing from Redis yet: this process alone
      {4, std::nullopt, 4},
      {3, cluster_view{3, 3}, 3},  // a fresh answer that counted this event
      {2, cluster_view{5, 2}, 5},  // a fresh answer: 3 more came through the other instances
      {4, cluster_view{5, 2}, 7},  // two more here since the cluster said 5
      {6, cluster_view{2, 2}, 6},  // Redis forgot (restarted): the local count stands
      {1, cluster_view{9, 4}, 1},  // the local window began again: that view is from before
  };
  for (const auto& r : rows) {
    INFO("local " << r.local);
    CHECK(merged_count(r.local, r.last) == r.expected);
  }
}

TEST_CASE("cluster_view_cache: a view lasts its window, for its own key only", "[proxy][shared]") {
  cluster_view_cache cache(8);
  const auto t0 = cluster_view_cache::clock::time_point{} + 1h;
  cache.remember("tlsbridge:rate:smtp:192.0.2.1", {7, 2}, t0, 60s);
  const auto found = cache.find("tlsbridge:rate:smtp:192.0.2.1", t0 + 59s);
  REQUIRE(found);
  CHECK(found->total == 7);
  CHECK(found->local_then == 2);
  CHECK_FALSE(cache.find("tlsbridge:rate:smtp:192.0.2.1", t0 + 60s));  // its window is over
  CHECK_FALSE(cache.find("tlsbridge:rate:smtp:192.0.2.2", t0 + 1s));
  // A flood of keys keeps the memory fixed; the latest view of a key is found.
  for (int i = 0; i < 10000; ++i)
    cache.remember("tlsbridge:rate:smtp:k" + std::to_string(i), {1, 1}, t0, 60s);
  cache.remember("tlsbridge:rate:smtp:192.0.2.1", {9, 3}, t0 + 1s, 60s);
  CHECK(cache.find("tlsbridge:rate:smtp:192.0.2.1", t0 + 2s)->total == 9);
}

TEST_CASE("redis_key: namespaced by kind and listener, bounded whatever the subject",
          "[proxy][shared]") {
  CHECK(redis_key({"rate", "smtp-in", "192.0.2.7"}) == "tlsbridge:rate:smtp-in:192.0.2.7");
  // A ':' in a listener name cannot make one listener's key another's.
  CHECK(redis_key({"rate", "a:b", "c"}) != redis_key({"rate", "a", "b:c"}));
  CHECK(redis_key({"rate", "a:b%", "c"}) == "tlsbridge:rate:a%3Ab%25:c");
  const std::string long_user(100000, 'x');
  const auto key = redis_key({"auth_user", "owa", long_user});
  CHECK(key.size() < 64);
  CHECK(key != redis_key({"auth_user", "owa", long_user + "y"}));
  CHECK(redis_key({"auth_user", "owa", long_user}) == key);  // the same user, the same key
}

TEST_CASE("client_subject: an IPv4 address, an IPv6 /64", "[proxy][shared]") {
  std::array<std::uint8_t, 16> v4{};
  v4[10] = v4[11] = 0xff;
  v4[12] = 192;
  v4[13] = 0;
  v4[14] = 2;
  v4[15] = 7;
  CHECK(client_subject(v4) == "192.0.2.7");
  std::array<std::uint8_t, 16> v6{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1};
  CHECK(client_subject(v6) == "2001:db8:0:1::/64");
}
