#include "proxy/backend_health.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <numeric>

#include "proxy/metrics.hpp"

namespace tlsbridge::proxy {

std::optional<bool> health_tally::record(bool ok, unsigned fall, unsigned rise) {
  if (up) {
    successes = 0;
    failures = ok ? 0 : failures + 1;
    if (failures < std::max(fall, 1u)) return std::nullopt;
    up = false;
    failures = 0;
    return false;
  }
  failures = 0;
  successes = ok ? successes + 1 : 0;
  if (successes < std::max(rise, 1u)) return std::nullopt;
  up = true;
  successes = 0;
  return true;
}

std::vector<std::size_t> backend_order(config::balance_mode mode, const std::vector<bool>& up,
                                       const std::vector<std::size_t>& active, std::size_t turn) {
  std::vector<std::size_t> healthy;
  for (std::size_t i = 0; i < up.size(); ++i)
    if (up[i]) healthy.push_back(i);
  if (healthy.empty()) {
    std::vector<std::size_t> all(up.size());
    std::iota(all.begin(), all.end(), std::size_t{0});
    return all;
  }
  switch (mode) {
    case config::balance_mode::first:
      break;
    case config::balance_mode::round_robin:
      std::rotate(healthy.begin(),
                  healthy.begin() + static_cast<std::ptrdiff_t>(turn % healthy.size()),
                  healthy.end());
      break;
    case config::balance_mode::least_conn:
      std::stable_sort(healthy.begin(), healthy.end(),
                       [&](std::size_t a, std::size_t b) { return active[a] < active[b]; });
      break;
  }
  return healthy;
}

backend_health::backend_health(const config::listener_config& listener, proxy::metrics* metrics)
    : listener_(listener.name),
      mode_(listener.backend.balance),
      fall_(listener.backend.health_check.fall),
      rise_(listener.backend.health_check.rise),
      checked_(listener.backend.health_check.interval.count() > 0),
      metrics_(metrics) {
  for (const auto& target : listener.backend.addresses) {
    auto s = std::make_shared<address_state>();
    s->address = target.to_string();
    if (metrics_)
      metrics_->set("tlsbridge_backend_up", {{"listener", listener_}, {"address", s->address}}, 1);
    states_.push_back(std::move(s));
  }
}

void backend_health::adopt(const backend_health& previous) {
  for (auto& s : states_)
    for (const auto& old : previous.states_)
      if (old->address == s->address) {
        s = old;
        if (metrics_)
          metrics_->set("tlsbridge_backend_up", {{"listener", listener_}, {"address", s->address}},
                        s->up.load() ? 1 : 0);
      }
}

std::vector<std::size_t> backend_health::order() {
  std::vector<bool> up;
  std::vector<std::size_t> active;
  for (const auto& s : states_) {
    up.push_back(s->up.load(std::memory_order_relaxed));
    active.push_back(s->active.load(std::memory_order_relaxed));
  }
  const std::size_t turn = mode_ == config::balance_mode::round_robin
                               ? turn_.fetch_add(1, std::memory_order_relaxed)
                               : 0;
  return backend_order(mode_, up, active, turn);
}

void backend_health::record(std::size_t i, bool ok, const std::string& reason) {
  if (!checked_) return;  // nothing would ever bring a passively failed address back
  auto& s = *states_[i];
  // The healthy path takes no lock: up, and no failure counted since the last success.
  if (ok && s.up.load(std::memory_order_relaxed) && !s.pending.load(std::memory_order_relaxed))
    return;
  std::optional<bool> changed;
  bool withdrawn = false;
  {
    std::lock_guard lock(s.mutex);
    changed = s.tally.record(ok, fall_, rise_);
    s.up.store(s.tally.up, std::memory_order_relaxed);
    s.pending.store(!s.tally.up || s.tally.failures > 0, std::memory_order_relaxed);
    withdrawn = s.withdrawn;
    // Under the lock: withdraw() must not be overtaken by this gauge.
    if (changed && !withdrawn && metrics_)
      metrics_->set("tlsbridge_backend_up", {{"listener", listener_}, {"address", s.address}},
                    *changed ? 1 : 0);
  }
  if (!changed || withdrawn) return;
  if (*changed)
    spdlog::info("listener {}: backend {} is up ({})", listener_, s.address, reason);
  else
    spdlog::warn("listener {}: backend {} is down ({})", listener_, s.address, reason);
}

void backend_health::withdraw(const backend_health* successor) {
  for (const auto& s : states_) {
    // adopt() shares the state of an address the next generation keeps.
    if (successor && std::find(successor->states_.begin(), successor->states_.end(), s) !=
                         successor->states_.end())
      continue;
    std::lock_guard lock(s->mutex);
    s->withdrawn = true;
    if (metrics_)
      metrics_->remove("tlsbridge_backend_up", {{"listener", listener_}, {"address", s->address}});
  }
}

}  // namespace tlsbridge::proxy
