// The idle watchdogs of one io_context (one worker thread): a deadline_wheel ticking every
// `tick` on one steady_timer, instead of a timer and a pending wait in every connection. A
// session arms its watchdog_entry — the wheel's links, a plain function to call and the owner it
// keeps alive while armed, a few words inside the session — for a deadline; the deadline is
// rounded up to the next tick, so a watchdog fires at most one tick late and never early. The
// timer runs only while some watchdog is armed. An Asio service of the io_context: created at
// the first arm on that context, gone with it. Only the context's own thread touches it.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <memory>
#include <optional>

#include "proxy/deadline_wheel.hpp"

namespace tlsbridge::proxy {

namespace asio = boost::asio;

struct watchdog_entry : wheel_entry {
  // Called on the context's thread when the deadline passed, with `owner` handed back (the entry
  // no longer holds it).
  void (*expired)(std::shared_ptr<void> owner) = nullptr;
  std::shared_ptr<void> owner;  // set while armed
};

class idle_watchdogs : public asio::execution_context::service {
 public:
  using key_type = idle_watchdogs;
  static asio::execution_context::id id;
  static constexpr std::chrono::milliseconds tick{250};

  explicit idle_watchdogs(asio::execution_context& ctx);
  // The watchdogs of the context `ex` runs on.
  static idle_watchdogs& of(const asio::any_io_executor& ex);

  // (Re)arms `e` for `deadline`; `owner` is kept until it fires or is disarmed.
  void arm(const asio::any_io_executor& ex, watchdog_entry& e,
           std::chrono::steady_clock::time_point deadline, std::shared_ptr<void> owner);
  // Takes `e` out and hands back its owner (null when it was not armed).
  std::shared_ptr<void> disarm(watchdog_entry& e);
  std::size_t armed() const { return wheel_.size(); }

 private:
  void shutdown() override;
  void start_timer();
  void on_tick();
  static std::uint64_t tick_of(std::chrono::steady_clock::time_point t, bool round_up);

  deadline_wheel wheel_;
  std::optional<asio::steady_timer> timer_;  // made with the first armer's executor
  bool ticking_ = false;
};

}  // namespace tlsbridge::proxy
