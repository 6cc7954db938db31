// The per-io_context idle watchdogs (proxy/idle_watchdogs.hpp).
#include "proxy/idle_watchdogs.hpp"

#include <boost/asio/execution/context.hpp>
#include <boost/asio/query.hpp>
#include <vector>

namespace tlsbridge::proxy {

asio::execution_context::id idle_watchdogs::id;

std::uint64_t idle_watchdogs::tick_of(std::chrono::steady_clock::time_point t, bool round_up) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch());
  const auto n = ms.count() < 0 ? 0 : static_cast<std::uint64_t>(ms.count());
  const auto per = static_cast<std::uint64_t>(tick.count());
  return round_up ? (n + per - 1) / per : n / per;
}

idle_watchdogs::idle_watchdogs(asio::execution_context& ctx)
    : asio::execution_context::service(ctx),
      wheel_(tick_of(std::chrono::steady_clock::now(), false)) {}

idle_watchdogs& idle_watchdogs::of(const asio::any_io_executor& ex) {
  return asio::use_service<idle_watchdogs>(asio::query(ex, asio::execution::context));
}

void idle_watchdogs::arm(const asio::any_io_executor& ex, watchdog_entry& e,
                         std::chrono::steady_clock::time_point deadline,
                         std::shared_ptr<void> owner) {
  e.owner = std::move(owner);
  wheel_.schedule(e, tick_of(deadline, true));
  if (!timer_) timer_.emplace(ex);
  start_timer();
}

std::shared_ptr<void> idle_watchdogs::disarm(watchdog_entry& e) {
  if (!wheel_.cancel(e)) return nullptr;
  return std::move(e.owner);
}

void idle_watchdogs::start_timer() {
  if (ticking_ || wheel_.empty()) return;
  ticking_ = true;
  const auto next = std::chrono::steady_clock::time_point(
      std::chrono::duration_cast<std::chrono::steady_clock::duration>(tick * (wheel_.now() + 1)));
  timer_->expires_at(next);
  timer_->async_wait([this](boost::system::error_code ec) {
    ticking_ = false;
    if (ec) return;  // shut down
    on_tick();
  });
}

void idle_watchdogs::on_tick() {
  wheel_.advance(tick_of(std::chrono::steady_clock::now(), false), [](wheel_entry& w) {
    auto& e = static_cast<watchdog_entry&>(w);
    e.expired(std::move(e.owner));
  });
  start_timer();
}

void idle_watchdogs::shutdown() {
  // The context is going away: let go of every owner (their handlers will never run).
  std::vector<std::shared_ptr<void>> owners;
  wheel_.advance(~std::uint64_t{0} >> 1, [&](wheel_entry& w) {
    owners.push_back(std::move(static_cast<watchdog_entry&>(w).owner));
  });
  if (timer_) timer_->cancel();
  owners.clear();
}

}  // namespace tlsbridge::proxy
