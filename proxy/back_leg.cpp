#include "proxy/back_leg.hpp"

#include <sys/socket.h>

#include <boost/asio/ip/tcp.hpp>
#include <cerrno>
#include <ctime>
#include <memory>
#include <tuple>
#include <vector>

#include "certs/chain_collector.hpp"
#include "config/value_parsers.hpp"
#include "proxy/back_leg_source.hpp"
#include "proxy/coro_util.hpp"
#include "proxy/protocol_factory.hpp"

namespace tlsbridge::proxy {

namespace {

back_leg_failure unavailable(std::string reason) {
  return {outcome::backend_unavailable, std::move(reason)};
}

error_code errno_code(int e) {
  return error_code(e, asio::error::get_system_category());
}

// A non-blocking connect, finished by one wait for writability and SO_ERROR. The socket is made
// non-blocking once, here, as the relay needs it (OpenSSL reads the descriptor itself); Asio's
// async_connect would set its own flag by a further ioctl and poll the socket once more before
// reading SO_ERROR — two syscalls per back leg that this saves (bench/kernel).
asio::awaitable<std::tuple<error_code>> connect_socket(asio::ip::tcp::socket& sock,
                                                       const asio::ip::tcp::endpoint& endpoint) {
  error_code ec;
  if (!sock.is_open()) sock.open(endpoint.protocol(), ec);
  if (!ec) sock.non_blocking(true, ec);
  if (ec) co_return ec;
  if (::connect(sock.native_handle(), endpoint.data(), endpoint.size()) == 0)
    co_return error_code{};
  // EINTR: the connect goes on asynchronously, as with EINPROGRESS.
  if (errno != EINPROGRESS && errno != EINTR) co_return errno_code(errno);
  auto [wait_ec] = co_await sock.async_wait(asio::socket_base::wait_write, use_nothrow);
  if (wait_ec) co_return wait_ec;
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(sock.native_handle(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  co_return err ? errno_code(err) : error_code{};
}

}  // namespace

back_leg::back_leg(std::shared_ptr<listener_runtime> runtime,
                   std::array<std::uint8_t, 16> client_ip)
    : rt_(std::move(runtime)),
      cfg_(*rt_->settings),
      client_ip_(client_ip),
      opener_(make_backend_opener(*rt_->root, cfg_)) {}

back_leg::~back_leg() {
  close();
}

void back_leg::close() {
  if (counted_) {
    --counted_->active;
    counted_.reset();
  }
  if (!stream_) return;
  remember_session();  // a TLS 1.3 backend's ticket arrives after the handshake
  stream_->close();
}

asio::awaitable<std::optional<back_leg_failure>> back_leg::open() {
  if (auto failed = co_await connect()) co_return failed;
  // The result in a named local: GCC 12 miscompiled both `implicit && !co_await f()` and
  // `if (implicit) { if (!co_await f()) ... }` in the session driver (the frame was resumed after
  // it had finished: SIGILL at -O0, a wild `this` at -O2).
  if (cfg_.backend.tls == config::back_tls::implicit) {
    auto failed = co_await handshake();
    if (failed) co_return failed;
  }
  co_return co_await run_opener();
}

asio::awaitable<std::optional<back_leg_failure>> back_leg::connect() {
  auto ex = co_await asio::this_coro::executor;
  asio::ip::tcp::resolver resolver(ex);
  std::string failures;
  backend_health* health = rt_->health.get();
  std::vector<std::size_t> order;
  if (health) {
    order = health->order();
  } else {
    for (std::size_t i = 0; i < cfg_.backend.addresses.size(); ++i) order.push_back(i);
  }
  for (std::size_t index : order) {
    const auto& target = cfg_.backend.addresses[index];
    const std::size_t failures_before = failures.size();
    // An IP literal needs no resolver: Asio's resolver runs on its own thread, which costs two
    // thread switches per connection (measured in bench/).
    std::vector<asio::ip::tcp::endpoint> endpoints;
    error_code parse_ec;
    auto literal = asio::ip::make_address(target.host, parse_ec);
    if (!parse_ec) {
      endpoints.emplace_back(literal, target.port);
    } else {
      auto [rec, results] =
          co_await resolver.async_resolve(target.host, std::to_string(target.port),
                                          asio::ip::resolver_base::numeric_service, use_nothrow);
      if (rec) {
        failures += (failures.empty() ? "" : "; ") + target.to_string() + ": " + rec.message();
        continue;
      }
      for (const auto& entry : results) endpoints.push_back(entry.endpoint());
    }
    bool attempted = false;  // a connect was tried (not only a source bind that failed here)
    for (const auto& endpoint : endpoints) {
      asio::ip::tcp::socket sock(ex);
      if (auto why = bind_back_leg_source(sock, endpoint, cfg_.backend.source, client_ip_);
          !why.empty()) {
        failures += (failures.empty() ? "" : "; ") + endpoint_text(endpoint) + ": " + why;
        continue;
      }
      attempted = true;
      const auto connect_started = std::chrono::steady_clock::now();
      auto connected = co_await with_timeout(connect_socket(sock, endpoint), cfg_.timeouts.connect);
      error_code cec = connected ? std::get<0>(*connected) : asio::error::timed_out;
      if (cec) {
        failures += (failures.empty() ? "" : "; ") + endpoint_text(endpoint) + ": " + cec.message();
        continue;
      }
      facts_.connect_latency = std::chrono::steady_clock::now() - connect_started;
      if (rt_->metrics)
        rt_->metrics->observe("tlsbridge_backend_connect_seconds", {{"listener", cfg_.name}},
                              std::chrono::duration<double>(facts_.connect_latency).count());
      error_code ec;
      facts_.address = endpoint_text(endpoint);
      auto local = sock.local_endpoint(ec);
      if (!ec) facts_.local = endpoint_text(local);
      facts_.host = target.host;
      stream_.emplace(std::move(sock));
      // Only a check proves an address up again: a backend that accepts and never greets
      // connects fine.
      if (health) {
        counted_ = health->state(index);
        ++counted_->active;
      }
      co_return std::nullopt;
    }
    // Passive check: a target none of whose endpoints connected counts one failure.
    if (health && attempted) {
      std::string reason = failures.substr(failures_before);
      if (reason.rfind("; ", 0) == 0) reason.erase(0, 2);
      health->record(index, false, "connect failed: " + reason);
    }
  }
  co_return unavailable("no backend reachable: " + failures);
}

asio::awaitable<std::optional<back_leg_failure>> back_leg::run_opener() {
  using kind = protocols::backend_opener::action::kind;
  // Setup replies are short (a greeting, a capability list); this buffer lives only while the
  // opener runs. Not zero-filled: only the n bytes a read returns are ever looked at (filling
  // 16 KiB was 16 k instructions per back leg, 0.4 % of an SMTP transaction).
  constexpr std::size_t buffer_size = 16 * 1024;
  const auto buffer = std::make_unique_for_overwrite<char[]>(buffer_size);
  auto act = opener_->start();
  for (;;) {
    switch (act.what) {
      case kind::done:
        co_return std::nullopt;
      case kind::fail:
        co_return unavailable(act.data);
      case kind::write: {
        auto ec = co_await with_timeout(stream_->write_all(act.data), cfg_.timeouts.handshake);
        if (!ec || *ec) co_return unavailable("backend write failed during setup");
        act = opener_->on_written();
        break;
      }
      case kind::read: {
        auto ec = co_await with_timeout(stream_->wait_readable(), cfg_.timeouts.handshake);
        if (!ec) co_return unavailable("backend timed out during setup");
        if (*ec) co_return unavailable("backend setup: " + ec->message());
        error_code rec;
        std::size_t n = stream_->read_some(buffer.get(), buffer_size, rec);
        if (rec == asio::error::would_block) break;
        if (rec) co_return unavailable("backend closed during setup: " + rec.message());
        act = opener_->on_read(std::string_view(buffer.get(), n));
        break;
      }
      case kind::handshake: {
        auto failed = co_await handshake();
        if (failed) co_return failed;
        act = opener_->on_handshake_done();
        break;
      }
    }
  }
}

asio::awaitable<std::optional<back_leg_failure>> back_leg::handshake() {
  backend_session_cache* cache = rt_->back_sessions.get();
  std::optional<backend_session_cache::hit> cached;
  if (cache) cached = cache->find(facts_.address);
  SSL_SESSION* offer = cached ? cached->session : nullptr;
  auto ec = co_await with_timeout(
      stream_->handshake_client(rt_->back_ctx.get(), cfg_.backend.server_name, offer),
      cfg_.timeouts.handshake);
  if (!ec || *ec) {
    if (cache) cache->forget(facts_.address);  // perhaps our offer upset it: start afresh
    co_return unavailable("backend TLS handshake: " + (!ec ? std::string("timed out")
                                                       : stream_->tls_error().empty()
                                                           ? ec->message()
                                                           : stream_->tls_error()));
  }
  if (offer) SSL_SESSION_free(offer);
  std::optional<policy::chain_evidence> evidence;
  if (cached && stream_->resumed()) {
    facts_.resumed = true;
    evidence = std::move(cached->chain);
  }
  if (auto refused = judge(std::move(evidence))) {
    if (cache) cache->forget(facts_.address);
    co_return refused;
  }
  remember_session();
  co_return std::nullopt;
}

std::optional<back_leg_failure> back_leg::judge(std::optional<policy::chain_evidence> cached) {
  // `cached`: the evidence of the full handshake a resumed session came from.
  const auto& b = cfg_.backend;
  if (cached) {
    facts_.chain = std::make_unique<policy::chain_evidence>(std::move(*cached));
  } else {
    certs::verify_settings vs;
    vs.store = rt_->trust_store.get();
    vs.server_name = b.server_name;
    facts_.chain =
        std::make_unique<policy::chain_evidence>(certs::collect_peer_chain(stream_->ssl(), vs));
  }
  // verify = "none"/"pin": the legacy host is trusted by configuration — its chain is inspected
  // and its findings recorded, never refused for them; a "pin" leg is refused only when its leaf
  // matches no pin. "ca" judges the chain in full.
  const bool trusted_by_configuration = b.verify != config::verify_mode::ca;
  const bool pinned = b.verify == config::verify_mode::pin;
  const auto reached = config::parse_endpoint(facts_.address);
  policy::peer_context peer{cfg_.name, client_ip_, facts_.host,
                            reached ? config::parse_ip(reached->host) : std::nullopt,
                            /*strict_trust=*/b.verify == config::verify_mode::ca};
  facts_.decision = std::make_unique<policy::decision>(
      policy::judge_chain(*facts_.chain, rt_->root->policy, peer, trusted_by_configuration,
                          std::time(nullptr), pinned ? &b.pin_sha256 : nullptr));
  if (facts_.decision->result != policy::verdict::refused) return std::nullopt;
  return back_leg_failure{outcome::refused_policy,
                          "backend chain refused by policy: " + facts_.decision->reason};
}

void back_leg::remember_session() {
  // A resumed leg stores too: the backend may have issued a fresh ticket.
  if (!rt_->back_sessions || session_stored_ || !stream_ || !stream_->tls_active() ||
      !facts_.chain || !facts_.decision || facts_.decision->result == policy::verdict::refused)
    return;
  session_stored_ = rt_->back_sessions->store(facts_.address, stream_->ssl(), *facts_.chain);
}

}  // namespace tlsbridge::proxy
