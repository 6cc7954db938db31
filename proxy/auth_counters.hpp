// The counting behind `[listener.auth_guard]` (proxy/auth_guard.hpp), behind one narrow seam so a
// store shared by several instances (proxy/shared_auth_counters.hpp) can take the place of the
// process's own tables: count a failure for a key in a window, which blocks the key for a while
// at a threshold, and ask whether it is blocked; remember a success and ask whether one happened
// lately. Keys are short strings the
// guard makes ("ip:<hex>", "user:<name>", "ok:<name>/<hex>"). Times are given as durations from
// `now` (the process's steady clock), so a shared store can keep them as expiries of its own.
//
// `local_auth_counters` keeps them in fixed-size tables, like proxy/connection_rate.hpp: a key
// hashes (seeded per table, so nobody can aim collisions) to a group of 8 slots; a key not found
// there takes a free or expired slot, else the one with the fewest failures, never a blocked one
// while another is left — so a flood of one-shot names cannot push out a name being sprayed. The
// memory is fixed at construction whatever clients send; keys are stored as 128-bit digests.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string_view>
#include <vector>

namespace tlsbridge::proxy {

class auth_counters {
 public:
  using clock = std::chrono::steady_clock;
  virtual ~auth_counters() = default;
  // When failures block a key: `threshold` of them in a window of `window` that starts with the
  // first one block it for `block`.
  struct failure_limit {
    std::uint32_t threshold = 0;
    clock::duration window{};
    clock::duration block{};
  };
  // One more failure for `key`: the failures in the window, this one included; at the threshold
  // the key is blocked.
  virtual std::uint32_t count_failure(std::string_view key, const failure_limit& limit,
                                      clock::time_point now) = 0;
  virtual bool blocked(std::string_view key, clock::time_point now) = 0;
  virtual void remember_success(std::string_view key, clock::time_point now) = 0;
  // A success for `key` less than `within` before `now`.
  virtual bool succeeded_within(std::string_view key, clock::duration within,
                                clock::time_point now) = 0;
};

class local_auth_counters final : public auth_counters {
 public:
  static constexpr std::size_t default_slots = 16384;
  static constexpr std::size_t group = 8;  // slots probed per key

  explicit local_auth_counters(std::size_t failure_slots = default_slots,
                               std::size_t success_slots = default_slots);

  std::uint32_t count_failure(std::string_view key, const failure_limit& limit,
                              clock::time_point now) override;
  // Blocks `key` until now + how_long (or longer, if it already was).
  void block(std::string_view key, clock::duration how_long, clock::time_point now);
  bool blocked(std::string_view key, clock::time_point now) override;
  void remember_success(std::string_view key, clock::time_point now) override;
  bool succeeded_within(std::string_view key, clock::duration within,
                        clock::time_point now) override;

  // The bytes the tables hold, fixed at construction (the memory bound the tests check).
  std::size_t table_bytes() const;

 private:
  using digest = std::array<std::uint64_t, 2>;  // {group hash, check}; {0,0} = free
  struct failure_slot {
    digest key{};
    clock::time_point window_start{};
    clock::time_point blocked_until{};
    clock::duration window{};
    std::uint32_t count = 0;
  };
  struct success_slot {
    digest key{};
    clock::time_point last{};
  };
  digest digest_of(std::string_view key) const;
  // The slot holding `key`, or the one it may take (see the header's comment); `found` says which.
  failure_slot& failure_slot_for(const digest& d, clock::time_point now, bool& found);
  // The slot holding `key`, taken (and emptied) for it when it had none.
  failure_slot& claim_failure_slot(const digest& d, clock::time_point now);

  std::mutex mutex_;  // held for a table lookup only
  std::vector<failure_slot> failures_;
  std::vector<success_slot> successes_;
  std::uint64_t seed_[2];
};

}  // namespace tlsbridge::proxy
