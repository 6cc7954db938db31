// Small pieces the session driver and the back leg share: a deadline around an awaitable, the
// non-throwing completion token, and how an endpoint is written in the audit log ("1.2.3.4:25",
// "[::1]:25"; an IPv4-mapped IPv6 address as IPv4). Header-only; nothing here owns state.
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace tlsbridge::proxy {

namespace asio = boost::asio;

inline constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

// Runs `op` with a deadline; nullopt when the deadline won (the op was cancelled).
template <typename T>
asio::awaitable<std::optional<T>> with_timeout(asio::awaitable<T> op,
                                               std::chrono::milliseconds limit) {
  using namespace asio::experimental::awaitable_operators;
  asio::steady_timer timer(co_await asio::this_coro::executor);
  timer.expires_after(limit);
  auto result = co_await (std::move(op) || timer.async_wait(use_nothrow));
  if (result.index() == 0) co_return std::get<0>(std::move(result));
  co_return std::nullopt;
}

// The same for an operation with no result: true when it finished in time.
inline asio::awaitable<bool> with_timeout(asio::awaitable<void> op,
                                          std::chrono::milliseconds limit) {
  using namespace asio::experimental::awaitable_operators;
  asio::steady_timer timer(co_await asio::this_coro::executor);
  timer.expires_after(limit);
  auto result = co_await (std::move(op) || timer.async_wait(use_nothrow));
  co_return result.index() == 0;
}

inline std::string endpoint_text(const asio::ip::tcp::endpoint& ep) {
  auto addr = ep.address();
  if (addr.is_v6() && addr.to_v6().is_v4_mapped())
    addr = asio::ip::make_address_v4(asio::ip::v4_mapped, addr.to_v6());
  if (addr.is_v6()) return "[" + addr.to_string() + "]:" + std::to_string(ep.port());
  return addr.to_string() + ":" + std::to_string(ep.port());
}

}  // namespace tlsbridge::proxy
