// A one-thread condition variable for coroutines: `co_await wait()` suspends until `notify()`.
// Waiters re-check their condition in a loop, so a notify with nobody waiting is never lost in
// effect. Built on a steady_timer that never expires by itself; notify cancels it.
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace tlsbridge::proxy {

class async_event {
 public:
  explicit async_event(const boost::asio::any_io_executor& ex) : timer_(ex) {
    timer_.expires_at(boost::asio::steady_timer::time_point::max());
  }
  // The expiry stays at "never": cancel() wakes every current waiter and leaves later waits
  // unaffected, so several coroutines may wait on one event.
  boost::asio::awaitable<void> wait() {
    co_await timer_.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
  }
  void notify() { timer_.cancel(); }

 private:
  boost::asio::steady_timer timer_;
};

}  // namespace tlsbridge::proxy
