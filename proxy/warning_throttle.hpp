// How often one kind of trouble may reach the operational log. A backend that is down fails every
// connection, and a partner whose chain the policy refuses retries for days: a line per
// connection would bury everything else. Under each key the first failure is written at once;
// after it at most one line per `interval`, which says how many were held back since the line
// before; a key that recovers is written once ("reachable again") and forgotten. The caller
// passes the time, so the rules are tested without waiting (tests/unit/proxy).
// Thread-safe: the worker threads share one throttle.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <map>
#include <mutex>
#include <optional>
#include <string>

namespace tlsbridge::proxy {

class warning_throttle {
 public:
  using clock = std::chrono::steady_clock;
  // Keys are listener names and refusal kinds; past `max_keys` new ones share one entry, so a
  // key built from peer input can never grow the table without bound.
  static constexpr std::size_t max_keys = 1024;

  explicit warning_throttle(clock::duration interval) : interval_(interval) {}

  // A failure under `key` at `now`. nullopt: hold the line back (it is counted). Else write it,
  // saying how many failures were held back since the last written line (0 for the first).
  std::optional<std::size_t> failure(const std::string& key, clock::time_point now);

  // A success under `key`. When the key was failing: the number of failures held back since the
  // last written line (the key is forgotten, so its next failure is written at once); else nullopt.
  // Cheap while nothing fails: no lock is taken.
  std::optional<std::size_t> success(const std::string& key);

 private:
  struct state {
    clock::time_point last_written;
    std::size_t held_back = 0;
  };

  clock::duration interval_;
  std::mutex mutex_;
  std::map<std::string, state> failing_;
  std::atomic<std::size_t> failing_count_{0};
};

}  // namespace tlsbridge::proxy
