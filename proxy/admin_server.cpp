#include "proxy/admin_server.hpp"

#include <unistd.h>

#include <stdexcept>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/serialize.hpp>

#include "proxy/status_page.hpp"

namespace tlsbridge::proxy {

namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

struct routes {
  proxy::metrics& m;
  std::function<bool()> ready;
  std::function<void()> refresh;
  std::function<boost::json::object()> status;
};

asio::awaitable<void> serve(tcp::socket socket, std::shared_ptr<const routes> r) {
  boost::beast::flat_buffer buffer(8192);
  http::request_parser<http::empty_body> parser;
  parser.header_limit(8192);
  // A scraper that stalls must not hold the socket forever.
  asio::steady_timer deadline(socket.get_executor(), std::chrono::seconds(10));
  deadline.async_wait([&socket](const boost::system::error_code& ec) {
    if (!ec) {
      boost::system::error_code ignored;
      socket.close(ignored);
    }
  });
  auto [ec, n] = co_await http::async_read(socket, buffer, parser, use_nothrow);
  if (ec) co_return;
  const auto& req = parser.get();
  http::response<http::string_body> res;
  res.version(11);
  res.keep_alive(false);
  res.set(http::field::server, "tlsbridge");
  std::string target(req.target());
  if (req.method() != http::verb::get && req.method() != http::verb::head) {
    res.result(http::status::method_not_allowed);
    res.body() = "GET only\n";
  } else if (target == "/" || target == "/status.json") {
    res.result(http::status::ok);
    res.set(http::field::cache_control, "no-store");
    res.set("X-Content-Type-Options", "nosniff");
    if (target == "/") {
      res.set(http::field::content_type, "text/html; charset=utf-8");
      res.set("Content-Security-Policy", status_page_security_policy);
      res.body() = status_page_html(r->status());
    } else {
      res.set(http::field::content_type, "application/json");
      res.body() = boost::json::serialize(r->status()) + "\n";
    }
  } else if (target == "/metrics") {
    r->refresh();
    res.result(http::status::ok);
    res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
    res.body() = r->m.render();
  } else if (target == "/healthz") {
    res.result(http::status::ok);
    res.body() = "ok\n";
  } else if (target == "/readyz") {
    bool is_ready = r->ready();
    res.result(is_ready ? http::status::ok : http::status::service_unavailable);
    res.body() = is_ready ? "ready\n" : "not ready\n";
  } else {
    res.result(http::status::not_found);
    res.body() = "not found\n";
  }
  res.prepare_payload();
  co_await http::async_write(socket, res, use_nothrow);
  boost::system::error_code ignored;
  socket.shutdown(tcp::socket::shutdown_send, ignored);
  deadline.cancel();
}

asio::awaitable<void> accept_loop(std::shared_ptr<tcp::acceptor> acceptor,
                                  std::shared_ptr<const routes> r) {
  for (;;) {
    auto [ec, socket] = co_await acceptor->async_accept(use_nothrow);
    if (!acceptor->is_open()) co_return;
    if (ec) continue;
    asio::co_spawn(acceptor->get_executor(), serve(std::move(socket), r), asio::detached);
  }
}

}  // namespace

admin_server::admin_server(asio::io_context& io, proxy::metrics& m, std::function<bool()> ready,
                           std::function<void()> refresh,
                           std::function<boost::json::object()> status)
    : io_(io),
      metrics_(m),
      ready_(std::move(ready)),
      refresh_(std::move(refresh)),
      status_(std::move(status)) {}

void admin_server::start(const config::endpoint& listen, upgrade_handoff* handoff) {
  boost::system::error_code ec;
  auto address = asio::ip::make_address(listen.host, ec);
  if (ec) throw std::runtime_error("[admin] listen: bad address " + listen.host);
  tcp::endpoint ep(address, listen.port);
  auto r = std::make_shared<const routes>(routes{metrics_, ready_, refresh_, status_});
  acceptor_ = std::make_shared<tcp::acceptor>(io_);
  if (auto handed = handoff ? handoff->take_listeners(ep) : std::vector<int>{}; !handed.empty()) {
    acceptor_->assign(ep.protocol(), handed.front());
    for (std::size_t i = 1; i < handed.size(); ++i) ::close(handed[i]);
    asio::co_spawn(io_, accept_loop(acceptor_, r), asio::detached);
    return;
  }
  acceptor_->open(ep.protocol(), ec);
  if (!ec) acceptor_->set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor_->bind(ep, ec);
  if (!ec) acceptor_->listen(64, ec);
  if (ec)
    throw std::runtime_error("[admin] cannot listen on " + listen.to_string() + ": " +
                             ec.message());
  asio::co_spawn(io_, accept_loop(acceptor_, r), asio::detached);
}

void admin_server::stop() {
  if (!acceptor_) return;
  boost::system::error_code ignored;
  acceptor_->close(ignored);
}

}  // namespace tlsbridge::proxy
