#include "proxy/auth_counters.hpp"

#include <algorithm>
#include <random>

namespace tlsbridge::proxy {

namespace {

std::uint64_t seeded_fnv1a(std::string_view key, std::uint64_t seed) {
  std::uint64_t h = 1469598103934665603ull ^ seed;
  for (unsigned char b : key) h = (h ^ b) * 1099511628211ull;
  // A final mix, so the low bits (the group) depend on every byte.
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return h;
}

std::size_t group_start(std::uint64_t h, std::size_t slots, std::size_t group) {
  return static_cast<std::size_t>(h % (slots / group)) * group;
}

}  // namespace

local_auth_counters::local_auth_counters(std::size_t failure_slots, std::size_t success_slots)
    : failures_(failure_slots < group ? group : failure_slots),
      successes_(success_slots < group ? group : success_slots) {
  std::random_device rd;
  for (auto& s : seed_) s = (std::uint64_t{rd()} << 32) ^ rd();
}

local_auth_counters::digest local_auth_counters::digest_of(std::string_view key) const {
  digest d{seeded_fnv1a(key, seed_[0]), seeded_fnv1a(key, seed_[1])};
  if (d[0] == 0 && d[1] == 0) d[1] = 1;  // {0,0} marks a free slot
  return d;
}

local_auth_counters::failure_slot& local_auth_counters::failure_slot_for(const digest& d,
                                                                         clock::time_point now,
                                                                         bool& found) {
  const std::size_t first = group_start(d[0], failures_.size(), group);
  failure_slot* victim = nullptr;
  // Lower rank is evicted first: free or expired 0, live by its count, blocked last (by the end
  // of its block).
  auto rank = [now](const failure_slot& s) -> std::uint64_t {
    if (s.key == digest{}) return 0;
    const bool blocked = s.blocked_until > now;
    const bool counting = now - s.window_start < s.window;
    if (blocked)
      return (std::uint64_t{1} << 40) +
             static_cast<std::uint64_t>(
                 std::chrono::duration_cast<std::chrono::seconds>(s.blocked_until - now).count());
    return counting ? s.count : 0;
  };
  for (std::size_t i = first; i < first + group; ++i) {
    failure_slot& s = failures_[i];
    if (s.key == d) {
      found = true;
      return s;
    }
    if (victim == nullptr || rank(s) < rank(*victim)) victim = &s;
  }
  found = false;
  return *victim;
}

local_auth_counters::failure_slot& local_auth_counters::claim_failure_slot(const digest& d,
                                                                           clock::time_point now) {
  bool found = false;
  failure_slot& s = failure_slot_for(d, now, found);
  if (!found) s = failure_slot{.key = d};
  return s;
}

std::uint32_t local_auth_counters::count_failure(std::string_view key, const failure_limit& limit,
                                                 clock::time_point now) {
  const digest d = digest_of(key);
  std::lock_guard lock(mutex_);
  failure_slot& s = claim_failure_slot(d, now);
  if (s.count == 0 || now - s.window_start >= limit.window) {  // a new window from this failure
    s.window_start = now;
    s.count = 0;
  }
  s.window = limit.window;
  if (s.count < UINT32_MAX) ++s.count;
  if (s.count >= limit.threshold) s.blocked_until = now + limit.block;
  return s.count;
}

void local_auth_counters::block(std::string_view key, clock::duration how_long,
                                clock::time_point now) {
  const digest d = digest_of(key);
  std::lock_guard lock(mutex_);
  failure_slot& s = claim_failure_slot(d, now);
  s.blocked_until = std::max(s.blocked_until, now + how_long);
}

bool local_auth_counters::blocked(std::string_view key, clock::time_point now) {
  const digest d = digest_of(key);
  std::lock_guard lock(mutex_);
  const std::size_t first = group_start(d[0], failures_.size(), group);
  for (std::size_t i = first; i < first + group; ++i)
    if (failures_[i].key == d) return failures_[i].blocked_until > now;
  return false;
}

void local_auth_counters::remember_success(std::string_view key, clock::time_point now) {
  const digest d = digest_of(key);
  std::lock_guard lock(mutex_);
  const std::size_t first = group_start(d[0], successes_.size(), group);
  success_slot* victim = &successes_[first];  // else the oldest success gives way
  for (std::size_t i = first; i < first + group; ++i) {
    success_slot& s = successes_[i];
    if (s.key == d) {
      victim = &s;
      break;
    }
    if (s.last < victim->last) victim = &s;
  }
  victim->key = d;
  victim->last = now;
}

bool local_auth_counters::succeeded_within(std::string_view key, clock::duration within,
                                           clock::time_point now) {
  const digest d = digest_of(key);
  const clock::time_point since = now - within;
  std::lock_guard lock(mutex_);
  const std::size_t first = group_start(d[0], successes_.size(), group);
  for (std::size_t i = first; i < first + group; ++i)
    if (successes_[i].key == d) return successes_[i].last >= since;
  return false;
}

std::size_t local_auth_counters::table_bytes() const {
  return failures_.capacity() * sizeof(failure_slot) + successes_.capacity() * sizeof(success_slot);
}

}  // namespace tlsbridge::proxy
