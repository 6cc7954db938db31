// A one-thread condition variable for coroutines: `co_await wait()` suspends until `notify()`.
// Waiters re-check their condition in a loop, so a notify with nobody waiting is never lost in
// effect. Built on a steady_timer that never expires by itself; notify cancels it. The timer is
// made at the first wait: most connections never wait on their event (a relay that only idles),
// and an idle connection then carries one pointer instead of a timer.
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <memory>

namespace tlsbridge::proxy {

class async_event {
 public:
  // The expiry stays at "never": cancel() wakes every current waiter and leaves later waits
  // unaffected, so several coroutines may wait on one event.
  boost::asio::awaitable<void> wait() {
    if (!timer_) {
      timer_ = std::make_unique<boost::asio::steady_timer>(
          co_await boost::asio::this_coro::executor, boost::asio::steady_timer::time_point::max());
    }
    co_await timer_->async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
  }
  // Nobody has waited yet: nobody to wake.
  void notify() {
    if (timer_) timer_->cancel();
  }

 private:
  std::unique_ptr<boost::asio::steady_timer> timer_;
};

}  // namespace tlsbridge::proxy
