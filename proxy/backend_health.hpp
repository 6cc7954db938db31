// The health of one listener's backend addresses in this process, shared by the listener's
// workers and its checker (proxy/backend_health_checker.hpp). Each address has an `up` flag and a
// count of the sessions it carries, both atomics read by every back leg without a lock; the
// consecutive-result tally behind `up` (HAProxy's fall/rise) sits under a mutex that is taken
// only by the checker's results and by a back leg's failed connect — never by a connect that
// works and never per byte. A change of state
// is one log line (warn down, info up) and the gauge tlsbridge_backend_up{listener,address}.
// The state is per process: several instances behind a load balancer each learn it themselves.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace tlsbridge::proxy {

class metrics;

// fall consecutive failures take an up address down; rise consecutive successes bring it back.
struct health_tally {
  bool up = true;
  unsigned failures = 0;   // consecutive, while up
  unsigned successes = 0;  // consecutive, while down
  // Counts one result; answers the new state when it changed.
  std::optional<bool> record(bool ok, unsigned fall, unsigned rise);
};

// The order a back leg tries the addresses in: the healthy ones by `mode` (first: configured
// order; round_robin: starting at `turn` modulo their count; least_conn: fewest active sessions,
// ties in configured order), then — only when none is healthy — all of them in configured order,
// so an outage recovers at the first connect that works without waiting for a check.
std::vector<std::size_t> backend_order(config::balance_mode mode, const std::vector<bool>& up,
                                       const std::vector<std::size_t>& active, std::size_t turn);

class backend_health {
 public:
  struct address_state {
    std::string address;  // as configured, "host:port"
    std::atomic<bool> up{true};
    std::atomic<std::size_t> active{0};  // sessions whose back leg is connected here
    std::atomic<bool> pending{false};    // tally not clean: a success must be counted
    std::mutex mutex;
    health_tally tally;
    bool withdrawn = false;  // under mutex: no generation has it any more, its gauge is gone
  };

  backend_health(const config::listener_config& listener, proxy::metrics* metrics);

  // Takes over the state of every address `previous` also had (a reload keeping the listener).
  void adopt(const backend_health& previous);

  std::vector<std::size_t> order();
  std::size_t size() const { return states_.size(); }
  std::shared_ptr<address_state> state(std::size_t i) const { return states_[i]; }

  // A connect or check result for address i; `reason` says why it failed (or how it passed).
  // Ignored without health_check: the checker is what brings a failed address back.
  void record(std::size_t i, bool ok, const std::string& reason);

  // The checker of a replaced (or stopped) listener generation ends at its next step.
  void retire() { retired_.store(true); }
  // After a reload: the gauge of every address `successor` (the listener's next generation, null
  // when the reload removed the listener) does not have is removed, and stays so even if a
  // session of this generation still reports a result for it.
  void withdraw(const backend_health* successor);
  bool retired() const { return retired_.load(); }

 private:
  std::string listener_;
  config::balance_mode mode_;
  unsigned fall_, rise_;
  bool checked_;  // health_check on: without it, results are not kept (balance alone applies)
  proxy::metrics* metrics_;
  std::atomic<std::size_t> turn_{0};
  std::atomic<bool> retired_{false};
  std::vector<std::shared_ptr<address_state>> states_;
};

}  // namespace tlsbridge::proxy
