#include "proxy/server.hpp"

#include <csignal>
#include <atomic>
#include <functional>
#include <list>
#include <thread>
#include <unordered_map>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <openssl/pem.h>
#include <spdlog/spdlog.h>

#include "certs/chain_collector.hpp"
#include "config/value_parsers.hpp"
#include "proxy/admin_server.hpp"
#include "proxy/listener.hpp"
#include "proxy/metrics.hpp"
#include "proxy/session.hpp"

namespace tlsbridge::proxy {

namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);
using reuse_port = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

// One worker thread: its io_context, its acceptors and the sessions it runs. Only its own thread
// touches `sessions` and `acceptors`.
struct worker {
  asio::io_context io{1};
  std::list<tcp::acceptor> acceptors;
  std::unordered_map<std::string, std::weak_ptr<session>> sessions;
  std::thread thread;
};

tcp::endpoint resolve_listen(asio::io_context& io, const config::endpoint& ep) {
  tcp::resolver resolver(io);
  auto results = resolver.resolve(ep.host, std::to_string(ep.port),
                                  tcp::resolver::passive | tcp::resolver::numeric_service);
  return results.begin()->endpoint();
}

asio::awaitable<void> accept_loop(worker& w, tcp::acceptor& acceptor,
                                  std::shared_ptr<listener_runtime> rt) {
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(use_nothrow);
    if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
    if (ec) {
      // EMFILE/ENFILE and friends: do not spin; the next accept may succeed once fds free up.
      spdlog::warn("listener {}: accept failed: {}", rt->settings->name, ec.message());
      asio::steady_timer pause(acceptor.get_executor(), std::chrono::milliseconds(100));
      co_await pause.async_wait(use_nothrow);
      continue;
    }
    auto s = std::make_shared<session>(rt, std::move(socket), next_connection_id());
    w.sessions.emplace(s->id(), s);
    asio::co_spawn(w.io, [s, &w]() -> asio::awaitable<void> {
      co_await s->run();
      w.sessions.erase(s->id());
    }, asio::detached);
  }
}

// Own certificates' notAfter as gauges, so an expiry is seen coming (SPEC §4, §5).
void record_certificate_expiry(const config::config& cfg, proxy::metrics& m) {
  for (const auto& entry : cfg.certs) {
    std::FILE* f = std::fopen(entry.cert.c_str(), "r");
    if (!f) continue;
    X509* cert = PEM_read_X509(f, nullptr, nullptr, nullptr);
    std::fclose(f);
    if (!cert) continue;
    auto evidence = certs::describe_certificate(cert, 0);
    X509_free(cert);
    m.set("tlsbridge_certificate_expiry_seconds",
          {{"file", entry.cert.string()}, {"subject", evidence.subject}},
          static_cast<double>(evidence.not_after));
  }
}

}  // namespace

int run_server(std::shared_ptr<const config::config> cfg) {
  audit_log audit(cfg->audit.path);
  proxy::metrics metrics;
  std::atomic<std::size_t> process_active{0};
  std::vector<std::shared_ptr<listener_runtime>> runtimes;
  for (const auto& l : cfg->listeners) {
    runtimes.push_back(make_listener_runtime(cfg, l, &audit));
    runtimes.back()->metrics = &metrics;
    runtimes.back()->process_active = &process_active;
  }
  record_certificate_expiry(*cfg, metrics);

  unsigned threads = cfg->server.threads ? cfg->server.threads
                                         : std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::unique_ptr<worker>> workers;
  for (unsigned i = 0; i < threads; ++i) workers.push_back(std::make_unique<worker>());

  // Bind everything before anything runs: a port in use stops the start with a clear reason.
  for (auto& w : workers) {
    for (const auto& rt : runtimes) {
      const auto& l = *rt->settings;
      tcp::endpoint ep = resolve_listen(w->io, l.listen);
      auto& acc = w->acceptors.emplace_back(w->io);
      boost::system::error_code ec;
      acc.open(ep.protocol(), ec);
      if (!ec) acc.set_option(tcp::acceptor::reuse_address(true), ec);
      if (!ec) acc.set_option(reuse_port(true), ec);
      if (!ec && ep.address().is_v6()) acc.set_option(asio::ip::v6_only(true), ec);
      if (!ec) acc.bind(ep, ec);
      if (!ec) acc.listen(asio::socket_base::max_listen_connections, ec);
      if (ec)
        throw std::runtime_error("listener " + l.name + ": cannot listen on " +
                                 l.listen.to_string() + ": " + ec.message());
    }
  }
  for (auto& w : workers) {
    auto acc = w->acceptors.begin();
    for (const auto& rt : runtimes) {
      asio::co_spawn(w->io, accept_loop(*w, *acc, rt), asio::detached);
      ++acc;
    }
  }
  for (const auto& rt : runtimes)
    spdlog::info("listener {} ({}) on {}", rt->settings->name,
                 rt->settings->protocol == config::protocol::smtp ? "smtp" : "tls",
                 rt->settings->listen.to_string());

  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
  for (auto& w : workers) {
    guards.push_back(asio::make_work_guard(w->io));
    w->thread = std::thread([&io = w->io] { io.run(); });
  }

  // Main thread: signals, the admin endpoint and the shutdown sequence (SPEC §5).
  asio::io_context main_io;
  bool draining = false;
  admin_server admin(
      main_io, metrics, [&] { return !draining; },
      [&] {
        for (const auto& rt : runtimes)
          metrics.set("tlsbridge_active_connections", {{"listener", rt->settings->name}},
                      static_cast<double>(rt->active.load()));
      });
  if (!cfg->admin.listen.empty()) {
    auto ep = config::parse_endpoint(cfg->admin.listen);
    if (!ep) throw std::runtime_error("[admin] listen: bad endpoint " + cfg->admin.listen);
    admin.start(*ep);
    spdlog::info("admin endpoint on {}", cfg->admin.listen);
  }
  asio::signal_set signals(main_io, SIGTERM, SIGINT);
  asio::steady_timer grace(main_io);
  auto active = [&] {
    std::size_t n = 0;
    for (const auto& rt : runtimes) n += rt->active.load();
    return n;
  };
  std::signal(SIGPIPE, SIG_IGN);
  std::function<void()> check;  // the drain poll, re-armed every 50 ms
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    draining = true;
    spdlog::info("signal {}: stop accepting, draining {} session(s) for up to {} ms", sig, active(),
                 cfg->server.shutdown_grace.count());
    for (auto& w : workers) {
      asio::post(w->io, [&w = *w] {
        for (auto& a : w.acceptors) {
          boost::system::error_code ignored;
          a.close(ignored);
        }
        for (auto& [id, weak] : w.sessions)
          if (auto s = weak.lock()) s->request_shutdown();
      });
    }
    auto deadline = std::chrono::steady_clock::now() + cfg->server.shutdown_grace;
    // Poll for the drain to finish; at the deadline, force the rest closed.
    check = [&, deadline] {
      if (active() == 0) {
        main_io.stop();
        return;
      }
      if (std::chrono::steady_clock::now() >= deadline) {
        for (auto& w : workers)
          asio::post(w->io, [&w = *w] {
            for (auto& [id, weak] : w.sessions)
              if (auto s = weak.lock()) s->force_close();
          });
        grace.expires_after(std::chrono::milliseconds(2000));
        grace.async_wait([&](const boost::system::error_code&) { main_io.stop(); });
        return;
      }
      grace.expires_after(std::chrono::milliseconds(50));
      grace.async_wait([&](const boost::system::error_code& e) {
        if (!e) check();
      });
    };
    check();
  });
  main_io.run();

  guards.clear();
  for (auto& w : workers) w->io.stop();
  for (auto& w : workers)
    if (w->thread.joinable()) w->thread.join();
  spdlog::info("stopped");
  return 0;
}

}  // namespace tlsbridge::proxy
