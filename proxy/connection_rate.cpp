#include "proxy/connection_rate.hpp"

#include <random>

namespace tlsbridge::proxy {

connection_rate_table::connection_rate_table(std::size_t slots)
    : slots_(slots < group ? group : slots), seed_(std::random_device{}()) {
  seed_ = (seed_ << 32) ^ std::random_device{}();
}

std::size_t connection_rate_table::count(const std::array<std::uint8_t, 16>& key,
                                         clock::duration window, clock::time_point now) {
  std::uint64_t h = 1469598103934665603ull ^ seed_;  // FNV-1a, seeded
  for (auto b : key) h = (h ^ b) * 1099511628211ull;
  const std::size_t first = static_cast<std::size_t>(h % (slots_.size() / group)) * group;

  slot* victim = nullptr;  // a free or expired slot, else the live one with the oldest window
  bool victim_live = true;
  for (std::size_t i = first; i < first + group; ++i) {
    slot& s = slots_[i];
    const bool live = s.count != 0 && now - s.start < window;
    if (live && s.key == key) {
      if (s.count != static_cast<std::size_t>(-1)) ++s.count;
      return s.count;
    }
    if (victim == nullptr || (victim_live && (!live || s.start < victim->start))) {
      victim = &s;
      victim_live = live;
    }
  }
  // Not counted yet (or its window is over): a new window from this connection.
  victim->key = key;
  victim->start = now;
  victim->count = 1;
  return 1;
}

}  // namespace tlsbridge::proxy
