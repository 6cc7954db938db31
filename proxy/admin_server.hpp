// The admin endpoint ([admin]): GET / (the status page, proxy/status_page.hpp), /status.json
// (its data, proxy/status_json.hpp), /metrics (Prometheus text), /healthz (the process answers),
// /readyz (every listener is bound and the proxy is not draining). Plain HTTP/1.1 with
// Beast, on the main thread's io_context, one request per connection; loopback by default.
#pragma once

#include <functional>
#include <memory>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/json/object.hpp>

#include "config/config.hpp"
#include "proxy/binary_upgrade.hpp"
#include "proxy/metrics.hpp"

namespace tlsbridge::proxy {

class admin_server {
 public:
  // refresh: called before /metrics renders (gauges that are read, not counted); status: the
  // data of /status.json and of the page.
  admin_server(boost::asio::io_context& io, proxy::metrics& m, std::function<bool()> ready,
               std::function<void()> refresh, std::function<boost::json::object()> status);
  // Binds (throws std::runtime_error with the reason), or adopts the socket an upgrading old
  // process handed over for `listen`, and starts accepting.
  void start(const config::endpoint& listen, upgrade_handoff* handoff = nullptr);
  void stop();
  // The listening socket (a binary upgrade hands it over); null before start.
  boost::asio::ip::tcp::acceptor* acceptor() const { return acceptor_.get(); }

 private:
  boost::asio::io_context& io_;
  proxy::metrics& metrics_;
  std::function<bool()> ready_;
  std::function<void()> refresh_;
  std::function<boost::json::object()> status_;
  std::shared_ptr<boost::asio::ip::tcp::acceptor> acceptor_;
};

}  // namespace tlsbridge::proxy
