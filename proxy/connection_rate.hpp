// `[listener.limits] connection_rate = "N/window"`: new connections per client key
// (proxy/listener.hpp per_ip_key: IPv4 address, IPv6 /64) counted in a fixed window that starts
// with the client's first connection. The table has a fixed number of slots whatever clients send:
// a key hashes (with a per-table random seed, so nobody can aim collisions) to a small group of
// slots; a client not found there takes the group's expired or oldest slot. Under a flood of
// distinct sources an evicted client starts counting again from zero — the memory stays bounded,
// the limit is then lenient rather than wrong.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <vector>

namespace tlsbridge::proxy {

class connection_rate_table {
 public:
  using clock = std::chrono::steady_clock;
  static constexpr std::size_t default_slots = 8192;
  static constexpr std::size_t group = 8;  // slots probed per key

  explicit connection_rate_table(std::size_t slots = default_slots);

  // Counts one new connection from `key` (already per_ip_key'd) in its `window`; answers the
  // count including this one. Not thread-safe: the caller locks.
  std::size_t count(const std::array<std::uint8_t, 16>& key, clock::duration window,
                    clock::time_point now);
  // count() within `limit` connections per `window`.
  bool admit(const std::array<std::uint8_t, 16>& key, std::size_t limit, clock::duration window,
             clock::time_point now) {
    return count(key, window, now) <= limit;
  }

 private:
  struct slot {
    std::array<std::uint8_t, 16> key{};
    clock::time_point start{};
    std::size_t count = 0;  // 0 = free
  };
  std::vector<slot> slots_;
  std::uint64_t seed_;
};

}  // namespace tlsbridge::proxy
