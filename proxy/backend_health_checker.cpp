#include "proxy/backend_health_checker.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <string_view>

#include "proxy/back_leg_source.hpp"
#include "proxy/backend_health.hpp"
#include "proxy/coro_util.hpp"
#include "proxy/tls_stream.hpp"

namespace tlsbridge::proxy {

namespace {

constexpr std::size_t max_reply_line = 512;

// The first line the peer sends, or "" with `error` set.
asio::awaitable<std::string> read_line(tls_stream& stream, std::string& error) {
  std::string line;
  char buffer[256];
  while (line.find('\n') == std::string::npos && line.size() < max_reply_line) {
    auto wec = co_await stream.wait_readable();
    if (wec) {
      error = wec.message();
      co_return std::string{};
    }
    error_code rec;
    std::size_t n = stream.read_some(buffer, sizeof buffer, rec);
    if (rec == asio::error::would_block) continue;
    if (rec) {
      error = "closed: " + rec.message();
      co_return std::string{};
    }
    line.append(buffer, n);
  }
  if (auto end = line.find_first_of("\r\n"); end != std::string::npos) line.resize(end);
  co_return line;
}

// "" when the address serves; otherwise why not.
asio::awaitable<std::string> probe(std::shared_ptr<listener_runtime> rt, config::endpoint target) {
  const auto& cfg = *rt->settings;
  auto ex = co_await asio::this_coro::executor;
  asio::ip::tcp::socket sock(ex);
  error_code parse_ec;
  auto literal = asio::ip::make_address(target.host, parse_ec);
  asio::ip::tcp::endpoint endpoint;
  if (!parse_ec) {
    endpoint = {literal, target.port};
  } else {
    asio::ip::tcp::resolver resolver(ex);
    auto [rec, results] =
        co_await resolver.async_resolve(target.host, std::to_string(target.port),
                                        asio::ip::resolver_base::numeric_service, use_nothrow);
    if (rec || results.empty()) co_return "resolve: " + rec.message();
    endpoint = results.begin()->endpoint();
  }
  // A fixed source is this host's own: checks come from where clients' back legs come from
  // (a transparent leg's client address is no one's to check with: the kernel chooses).
  if (!cfg.backend.source_is_client())
    if (auto why = bind_back_leg_source(sock, endpoint, cfg.backend.source, {}); !why.empty())
      co_return why;
  auto [cec] = co_await sock.async_connect(endpoint, use_nothrow);
  if (cec) co_return "connect: " + cec.message();
  tls_stream stream(std::move(sock));
  const bool implicit = cfg.backend.tls == config::back_tls::implicit;
  if (implicit) {
    auto hec = co_await stream.handshake_client(rt->back_ctx.get(), cfg.backend.server_name);
    if (hec)
      co_return "TLS handshake: " +
          (stream.tls_error().empty() ? hec.message() : stream.tls_error());
  }
  std::string_view expect, bye;
  switch (cfg.protocol) {
    case config::protocol::smtp:
      expect = "220", bye = "QUIT\r\n";
      break;
    case config::protocol::imap:
      expect = "* OK", bye = "a LOGOUT\r\n";
      break;
    case config::protocol::pop3:
      expect = "+OK", bye = "QUIT\r\n";
      break;
    case config::protocol::https:
    case config::protocol::tls:
      break;
  }
  std::string error;
  if (cfg.protocol == config::protocol::https && !cfg.backend.health_path.empty()) {
    const std::string& host =
        cfg.backend.server_name.empty() ? target.host : cfg.backend.server_name;
    auto wec =
        co_await stream.write_all("GET " + cfg.backend.health_path + " HTTP/1.1\r\nHost: " + host +
                                  "\r\nConnection: close\r\n\r\n");
    if (wec) co_return "write: " + wec.message();
    std::string status = co_await read_line(stream, error);
    if (!error.empty()) co_return "GET " + cfg.backend.health_path + ": " + error;
    // "HTTP/1.1 200 OK": the code after the first space.
    auto space = status.find(' ');
    if (status.rfind("HTTP/", 0) != 0 || space == std::string::npos || status.size() < space + 4)
      co_return "GET " + cfg.backend.health_path + ": not an HTTP status line";
    if (status[space + 1] == '5')
      co_return "GET " + cfg.backend.health_path + ": " + status.substr(space + 1);
  } else if (!expect.empty()) {
    std::string greeting = co_await read_line(stream, error);
    if (!error.empty()) co_return "greeting: " + error;
    if (greeting.rfind(expect, 0) != 0)
      co_return "greeting " + greeting.substr(0, 80) + " is not " + std::string(expect);
    auto ignored = co_await stream.write_all(bye);
    (void)ignored;
  }
  stream.close();
  co_return std::string{};
}

asio::awaitable<void> check_loop(std::shared_ptr<listener_runtime> rt, std::size_t index) {
  auto health = rt->health;
  const auto& hc = rt->settings->backend.health_check;
  const auto target = rt->settings->backend.addresses[index];
  asio::steady_timer timer(co_await asio::this_coro::executor);
  while (!health->retired()) {
    auto result = co_await with_timeout(probe(rt, target), hc.timeout);
    if (health->retired()) break;
    if (!result)
      health->record(index, false,
                     "check timed out after " + std::to_string(hc.timeout.count()) + "ms");
    else if (!result->empty())
      health->record(index, false, "check failed: " + *result);
    else
      health->record(index, true, "check passed");
    timer.expires_after(hc.interval);
    auto [ignored] = co_await timer.async_wait(use_nothrow);
    (void)ignored;
  }
}

}  // namespace

void start_health_checks(asio::io_context& io,
                         const std::map<std::string, std::shared_ptr<listener_runtime>>& runtimes) {
  for (const auto& [name, rt] : runtimes) {
    if (!rt->health || rt->settings->backend.health_check.interval.count() == 0) continue;
    for (std::size_t i = 0; i < rt->settings->backend.addresses.size(); ++i)
      asio::co_spawn(io, check_loop(rt, i), asio::detached);
  }
}

void retire_health_checks(const std::map<std::string, std::shared_ptr<listener_runtime>>& runtimes,
                          const std::map<std::string, std::shared_ptr<listener_runtime>>& next) {
  for (const auto& [name, rt] : runtimes) {
    if (!rt->health) continue;
    rt->health->retire();
    const auto successor = next.find(name);
    rt->health->withdraw(successor == next.end() ? nullptr : successor->second->health.get());
  }
}

}  // namespace tlsbridge::proxy
