#include "proxy/session.hpp"

#include <spdlog/spdlog.h>

#include <array>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <ctime>
#include <random>

#include "certs/acme_challenges.hpp"
#include "certs/client_hello_capture.hpp"
#include "protocols/proxy_header/proxy_header.hpp"
#include "proxy/coro_util.hpp"
#include "proxy/protocol_factory.hpp"
#include "proxy/shared_connection_rate.hpp"

namespace tlsbridge::proxy {

namespace {

// Reads land here and are handed to the machine at once, which copies what it forwards: an idle
// connection holds no read buffer (proxy/tls_stream.hpp). One per io_context thread.
thread_local std::array<char, 64 * 1024> scratch;

std::array<std::uint8_t, 16> mapped_bytes(const asio::ip::address& a) {
  if (a.is_v4()) return asio::ip::make_address_v6(asio::ip::v4_mapped, a.to_v4()).to_bytes();
  return a.to_v6().to_bytes();
}

}  // namespace

std::string next_connection_id() {
  static const std::uint32_t prefix = std::random_device{}();
  static std::atomic<std::uint64_t> counter{0};
  char buf[32];
  std::snprintf(buf, sizeof buf, "%08x%08llx", prefix, static_cast<unsigned long long>(++counter));
  return buf;
}

session::session(std::shared_ptr<listener_runtime> runtime, asio::ip::tcp::socket socket,
                 const asio::ip::tcp::endpoint& peer, std::string_view id)
    : rt_(std::move(runtime)), cfg_(*rt_->settings), id_(id), client_(std::move(socket)) {
  client_addr_ = endpoint_text(peer);
  client_ip_ = mapped_bytes(peer.address());
  if (rt_->client_trust) {
    client_check_ = std::make_unique<certs::client_chain_check>();
    client_check_->policy = &rt_->root->policy;
    client_check_->peer.listener = cfg_.name;
    client_check_->trust = rt_->client_trust.get();
    client_.on_ssl_created(
        [](SSL* ssl, void* check) {
          certs::attach_client_check(ssl, static_cast<certs::client_chain_check*>(check));
        },
        client_check_.get());
  }
  started_ = last_activity_ = std::chrono::steady_clock::now();
  ++rt_->counters->active;
  if (rt_->process_active) ++*rt_->process_active;
}

session::~session() {
  if (on_destroy_) on_destroy_(on_destroy_arg_, this);
  --rt_->counters->active;
  if (rt_->process_active) --*rt_->process_active;
  if (ip_counted_) rt_->counters->release_ip(client_ip_);
}

asio::awaitable<bool> session::read_proxy_header() {
  // PROXY v1/v2 (protocols/proxy_header/proxy_header.hpp). The header is peeked, parsed, and only
  // then exactly its bytes are consumed: whatever follows (a TLS ClientHello, an SMTP command)
  // stays in the socket for the protocol.
  namespace pp = protocols::proxy_header;
  const auto deadline = std::chrono::steady_clock::now() + cfg_.timeouts.handshake;
  std::array<char, pp::v2_max_header> peek{};
  asio::steady_timer pause(co_await asio::this_coro::executor);
  for (;;) {
    auto ready = co_await with_timeout(client_.wait_readable(), cfg_.timeouts.handshake);
    if (!ready || *ready) {
      finish(!ready ? outcome::timeout : outcome::client_closed, "no PROXY protocol header");
      co_return false;
    }
    error_code ec;
    std::size_t n =
        client_.socket().receive(asio::buffer(peek), asio::socket_base::message_peek, ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) continue;
    if (ec || n == 0) {
      finish(outcome::client_closed, "connection closed before the PROXY protocol header");
      co_return false;
    }
    auto r = pp::parse(std::string_view(peek.data(), n));
    if (r.what == pp::result::status::error ||
        (r.what == pp::result::status::need_more && n == peek.size())) {
      refused_by_ = "proxy_header";
      finish(outcome::denied,
             "bad PROXY protocol header: " + (r.error.empty() ? "too long" : r.error));
      co_return false;
    }
    if (r.what == pp::result::status::need_more) {
      // The rest of the header is still in flight; the socket stays readable (we only peeked),
      // so wait a little instead of spinning.
      if (std::chrono::steady_clock::now() >= deadline) {
        finish(outcome::timeout, "incomplete PROXY protocol header");
        co_return false;
      }
      pause.expires_after(std::chrono::milliseconds(5));
      co_await pause.async_wait(use_nothrow);
      continue;
    }
    std::size_t left = r.consumed;
    while (left > 0) {
      std::size_t got = client_.socket().receive(asio::buffer(peek.data(), left), 0, ec);
      if (ec) {
        finish(outcome::client_closed, "connection lost inside the PROXY protocol header");
        co_return false;
      }
      left -= got;
    }
    proxy_addr_ = client_addr_;
    if (r.source) {  // LOCAL / UNKNOWN: the proxy's own health check, keep the real endpoints
      client_addr_ = r.source->to_string();
      client_ip_ = r.source->ip;
    }
    co_return true;
  }
}

asio::awaitable<void> session::run() {
  auto self = shared_from_this();

  // Admission → front TLS → back leg → machine → relay; every way out writes the one record.
  const auto admitted = co_await admit();
  if (!admitted) {
    write_audit();
    co_return;
  }
  if (cfg_.tls == config::front_tls::implicit) {  // a named result: see proxy/back_leg.cpp
    const bool opened = co_await open_front_tls();
    if (!opened) {
      write_audit();
      co_return;
    }
  }
  if (!admitted->empty()) {  // over a limit: the client still gets its protocol's refusal
    std::string refusal = refusal_text(*rt_->root, cfg_, admit_refusal_);
    co_await refuse_client(std::move(refusal));
    finish(outcome::limit, *admitted);
    write_audit();
    co_return;
  }
  if (opens_backend_first(cfg_.protocol)) {
    const bool up = co_await open_backend();
    if (!up) {
      if (!finished_) {
        // A named local, not a temporary: GCC 12 destroys temporaries of a conditional
        // expression inside co_await twice.
        std::string refusal = refusal_text(*rt_->root, cfg_, early_refusal::service_unavailable);
        co_await refuse_client(std::move(refusal));
        finish(back_failure_->what);
      }
      write_audit();
      co_return;
    }
    // The machine is built once, here: mail machines with the greeting the opener has read.
    machine_ = make_session_machine(*rt_->root, cfg_, backend_->opener());
  } else {
    machine_ = make_session_machine(*rt_->root, cfg_, *make_backend_opener(*rt_->root, cfg_));
  }
  protocols::connection_info info;
  info.client = client_addr_;
  info.client_ip = client_addr_.substr(0, client_addr_.rfind(':'));
  if (info.client_ip.size() > 2 && info.client_ip.front() == '[')
    info.client_ip = info.client_ip.substr(1, info.client_ip.size() - 2);
  info.front_tls = cfg_.tls != config::front_tls::none;
  machine_->set_connection(info);
  // A raw `tls` relay reads no credentials: its machine never asks the gate, so none is made.
  if (cfg_.auth_guard.enabled && cfg_.protocol != config::protocol::tls) {
    auth_gate_ =
        std::make_unique<session_auth_gate>(rt_->counters->auth, cfg_.auth_guard, client_ip_,
                                            cfg_.name, rt_->metrics, rt_->root->audit.envelope);
    machine_->set_auth_gate(auth_gate_.get());
  }

  protocols::step_list steps;
  machine_->on_start(steps);
  // SIGTERM while the back leg was opening found no machine yet: it drains from its start.
  if (shutdown_requested_) machine_->on_shutdown(steps);
  co_await execute(std::move(steps));
  if (finished_) {
    write_audit();
    co_return;
  }
  start_relay();  // the relay's last task writes the audit record
}

asio::awaitable<std::optional<std::string>> session::admit() {
  if (cfg_.proxy_protocol) {
    bool trusted = false;
    for (const auto& block : rt_->trusted_proxies) trusted = trusted || block.contains(client_ip_);
    if (!trusted) {
      refused_by_ = "untrusted_proxy";
      finish(outcome::denied,
             "PROXY protocol listener: " + client_addr_ + " is not a trusted proxy");
      co_return std::nullopt;
    }
    const bool read = co_await read_proxy_header();
    if (!read) co_return std::nullopt;
  }
  if (client_check_) client_check_->peer.client_ip = client_ip_;

  // [listener.limits] deny: refused before `allow`, in the protocol's words.
  admit_refusal_ = early_refusal::denied;
  refused_by_ = "deny";
  for (const auto& block : rt_->deny) {
    if (block.contains(client_ip_)) co_return "client address in [listener.limits] deny";
  }
  admit_refusal_ = early_refusal::client_limit;

  // `allow`: who may connect at all (the real client, after PROXY).
  bool allowed = false;
  for (const auto& block : rt_->allow) allowed = allowed || block.contains(client_ip_);
  refused_by_ = "allow";
  if (!allowed) {
    finish(outcome::denied, "client address not in allow");
    co_return std::nullopt;
  }

  refused_by_ = "connection_rate";
  if (!co_await admit_connection_rate(*rt_, client_ip_))
    co_return "over [listener.limits] connection_rate (" + std::to_string(cfg_.limits.rate_count) +
        " per " + std::to_string(cfg_.limits.rate_window.count()) + "ms)";

  // Limits (config/config.hpp: a listener's max_connections and max_connections_per_ip, [server]
  // max_connections).
  ip_counted_ = true;
  const std::size_t from_ip = rt_->counters->acquire_ip(client_ip_);
  refused_by_ = "max_connections_per_ip";
  if (from_ip > cfg_.max_connections_per_ip)
    co_return "over max_connections_per_ip (" + std::to_string(cfg_.max_connections_per_ip) + ")";
  admit_refusal_ = early_refusal::over_limit;
  refused_by_ = "max_connections";
  if (rt_->counters->active > cfg_.max_connections)
    co_return "over listener max_connections (" + std::to_string(cfg_.max_connections) + ")";
  refused_by_ = "server_max_connections";
  if (rt_->process_active && *rt_->process_active > rt_->root->server.max_connections)
    co_return "over [server] max_connections (" +
        std::to_string(rt_->root->server.max_connections) + ")";
  refused_by_ = "";
  co_return std::string();
}

asio::awaitable<bool> session::open_front_tls() {
  co_return co_await front_handshake("front TLS");
}

asio::awaitable<bool> session::front_handshake(const char* what) {
  auto ec = co_await with_timeout(client_.handshake_server(rt_->front_certs->default_context()),
                                  cfg_.timeouts.handshake);
  if (!ec) {
    finish(outcome::timeout, std::string(what) + " handshake timed out");
    co_return false;
  }
  if (*ec) {
    if (client_check_ && client_check_->decision &&
        client_check_->decision->result == policy::verdict::refused) {
      finish(outcome::refused_policy,
             "client certificate refused by policy: " + client_check_->decision->reason);
    } else {
      finish(outcome::tls_failed,
             std::string(what) + " handshake: " +
                 (client_.tls_error().empty() ? ec->message() : client_.tls_error()));
    }
    co_return false;
  }
  certs::forget_client_hello(client_.ssl());  // kept only for a failed handshake's record
  // tls-alpn-01: the CA's validation handshake is over once it is done; it never reaches a
  // backend (RFC 8737 §3).
  if (certs::negotiated_acme_alpn(client_.ssl())) {
    const char* name = SSL_get_servername(client_.ssl(), TLSEXT_NAMETYPE_host_name);
    finish(outcome::acme_challenge,
           std::string("tls-alpn-01 validation handshake for ") + (name ? name : "(no SNI)"));
    co_return false;
  }
  touch();
  co_return true;
}

asio::awaitable<bool> session::open_backend() {
  backend_eof_ = backend_aborted_ = false;
  backend_.emplace(rt_, client_ip_);  // the old leg, if any, caches its session and closes
  if (auto failed = co_await backend_->open())
    back_failure_ = std::make_unique<back_leg_failure>(std::move(*failed));
  else
    back_failure_.reset();
  if (rt_->warnings)
    rt_->warnings->back_leg_opened(cfg_, backend_->facts().address, back_failure_.get());
  if (back_failure_) co_return false;
  touch();
  co_return true;
}

asio::awaitable<void> session::refuse_client(std::string wire) {
  if (wire.empty()) co_return;
  // The client may have stopped reading: bound the write.
  co_await with_timeout(client_.write_all(wire), std::chrono::milliseconds(5000));
  bytes_out_ += wire.size();
  co_await client_.shutdown_send();
}

void session::start_relay() {
  relay_tasks_ = 3;
  auto ex = client_.socket().get_executor();
  auto self = shared_from_this();
  asio::co_spawn(
      ex, [self] { return self->client_reader(std::nullopt); }, asio::detached);
  asio::co_spawn(
      ex, [self] { return self->backend_reader(std::nullopt); }, asio::detached);
  arm_watchdog();
}

void session::task_done() {
  if (--relay_tasks_ == 0) write_audit();
}

void session::park(side from) {
  tls_stream& leg = from == side::client ? client_ : *backend();
  leg.async_wait_readable([self = shared_from_this(), from](error_code ec) {
    if (self->finished_) {
      self->task_done();
      return;
    }
    auto ex = self->client_.socket().get_executor();
    if (from == side::client)
      asio::co_spawn(
          ex, [self, ec] { return self->client_reader(ec); }, asio::detached);
    else
      asio::co_spawn(
          ex, [self, ec] { return self->backend_reader(ec); }, asio::detached);
  });
}

// Reads are eager while data flows (each read is tried at once, so a busy leg needs no reactor
// round trip) and park on the first would_block, or at once after a read the socket could not
// fill (tls_stream::drained: no recv that would only return EAGAIN). Every few reads the activation
// yields, so one busy connection cannot starve the others on its thread.
constexpr int reads_before_yield = 16;

asio::awaitable<void> session::client_reader(std::optional<error_code> woken) {
  bool try_read = woken.has_value();
  error_code wait_ec = woken.value_or(error_code{});
  for (int reads = 0; !finished_;) {
    if (machine_->client_input_paused()) {
      // STARTTLS accepted: the bytes now waiting are the client's TLS handshake, for the
      // handshake code, not for us (RFC 3207 §4.2).
      co_await state_changed_.wait();
      try_read = false;
      wait_ec = {};
      continue;
    }
    if (wait_ec) {
      finish(outcome::client_closed, wait_ec.message());
      break;
    }
    if (!try_read && !client_.has_buffered()) {
      park(side::client);
      co_return;
    }
    if (++reads > reads_before_yield) {
      co_await asio::post(client_.socket().get_executor(), asio::use_awaitable);
      reads = 0;
      continue;  // the machine may have paused the client meanwhile
    }
    error_code rec;
    std::size_t n = client_.read_some(scratch.data(), scratch.size(), rec);
    if (rec == asio::error::would_block) {
      park(side::client);
      co_return;
    }
    protocols::step_list steps;
    if (rec) {
      machine_->on_client_eof(steps);
      co_await execute(std::move(steps));
      break;
    }
    bytes_in_ += n;
    touch();
    // A short read with nothing left in OpenSSL: the next read would get EAGAIN, wait instead.
    const bool drained = client_.drained();
    if (machine_->relays_verbatim()) {
      co_await relay(side::backend, std::string_view(scratch.data(), n));
    } else {
      machine_->on_client_data(std::string_view(scratch.data(), n), steps);
      co_await execute(std::move(steps));
    }
    try_read = !drained;
  }
  task_done();
}

asio::awaitable<void> session::backend_reader(std::optional<error_code> woken) {
  // Machines that open the back leg on demand (HTTPS) may also open it again after the backend
  // closed (keep-alive ends): the task waits for a live leg, reads it to EOF, and repeats.
  bool try_read = woken.has_value();
  error_code wait_ec = woken.value_or(error_code{});
  for (int reads = 0; !finished_;) {
    if (!backend() || backend_eof_ || backend_aborted_) {
      if (machine_->backend_first()) break;
      co_await state_changed_.wait();
      try_read = false;
      wait_ec = {};
      continue;
    }
    error_code rec = wait_ec;
    wait_ec = {};
    std::size_t n = 0;
    if (!rec) {
      if (!try_read && !backend()->has_buffered()) {
        park(side::backend);
        co_return;
      }
      if (++reads > reads_before_yield) {
        co_await asio::post(client_.socket().get_executor(), asio::use_awaitable);
        reads = 0;
        continue;  // the leg may have changed meanwhile
      }
      n = backend()->read_some(scratch.data(), scratch.size(), rec);
      if (rec == asio::error::would_block) {
        park(side::backend);
        co_return;
      }
    }
    protocols::step_list steps;
    if (rec) {
      backend_eof_ = true;
      machine_->on_backend_eof(steps);
      co_await execute(std::move(steps));
      try_read = false;
      continue;
    }
    touch();
    const bool drained = backend()->drained();
    if (machine_->relays_verbatim()) {
      co_await relay(side::client, std::string_view(scratch.data(), n));
    } else {
      machine_->on_backend_data(std::string_view(scratch.data(), n), steps);
      co_await execute(std::move(steps));
    }
    try_read = !drained;
  }
  task_done();
}

void session::arm_watchdog() {
  armed_idle_limit_ = machine_->idle_limit().value_or(cfg_.timeouts.idle);
  watchdog_.expired = [](std::shared_ptr<void> owner) {
    std::static_pointer_cast<session>(owner)->on_watchdog();
  };
  const auto& ex = client_.socket().get_executor();
  idle_watchdogs::of(ex).arm(ex, watchdog_, last_activity_ + armed_idle_limit_, shared_from_this());
}

void session::wake_watchdog() {
  // Like a cancelled timer: the handler runs once more, posted, and decides.
  const auto& ex = client_.socket().get_executor();
  auto owner = idle_watchdogs::of(ex).disarm(watchdog_);
  if (!owner) return;  // not armed: it already fired, or the relay never started
  asio::post(ex,
             [self = std::static_pointer_cast<session>(std::move(owner))] { self->on_watchdog(); });
}

void session::on_watchdog() {
  if (finished_) {
    task_done();
    return;
  }
  // Woken early (activity moved the deadline, or the machine's limit changed): re-arm.
  auto limit = machine_->idle_limit().value_or(cfg_.timeouts.idle);
  if (std::chrono::steady_clock::now() < last_activity_ + limit) {
    arm_watchdog();
    return;
  }
  asio::co_spawn(
      client_.socket().get_executor(), [self = shared_from_this()] { return self->idle_goodbye(); },
      asio::detached);
}

asio::awaitable<void> session::idle_goodbye() {
  protocols::step_list steps;
  machine_->on_idle_timeout(steps);
  // A write that has not moved for the whole idle time will not move for a goodbye either.
  if (client_gate_.busy)
    finish(outcome::timeout, "idle timeout (peer not reading)");
  else
    co_await with_timeout(execute(std::move(steps)), std::chrono::milliseconds(5000));
  finish(outcome::timeout, "idle timeout");
  task_done();
}

asio::awaitable<void> session::execute(protocols::step_list steps) {
  using kind = protocols::step::kind;
  // Records are written as they happen: a long HTTPS or SMTP connection must not hold them.
  write_machine_events();
  // The event just fed may have changed the machine's idle limit (HTTPS: a request began, with
  // its request_timeout, or ended, back to the idle timeout): wake the watchdog to re-arm.
  if (machine_ && machine_->idle_limit().value_or(cfg_.timeouts.idle) != armed_idle_limit_)
    wake_watchdog();
  for (const auto& s : steps.steps()) {
    if (finished_) co_return;
    switch (s.what) {
      case kind::send_client:
        if (!co_await send(side::client, s.data)) co_return;
        break;
      case kind::send_backend:
        if (backend_aborted_ || !backend()) break;
        if (!co_await send(side::backend, s.data)) co_return;
        break;
      case kind::start_front_tls: {
        co_await acquire(client_gate_);
        bool ok = co_await front_handshake("front STARTTLS");
        release(client_gate_);
        if (!ok) co_return;
        protocols::step_list more;
        machine_->on_front_tls_established(more);
        state_changed_.notify();
        co_await execute(std::move(more));
        break;
      }
      case kind::shutdown_client_send:
        co_await acquire(client_gate_);
        co_await client_.shutdown_send();
        release(client_gate_);
        break;
      case kind::shutdown_backend_send:
        if (!backend()) break;
        co_await acquire(backend_gate_);
        co_await backend()->shutdown_send();
        release(backend_gate_);
        break;
      case kind::abort_backend:
        backend_aborted_ = true;
        if (backend_) backend_->close();
        break;
      case kind::connect_backend: {
        bool ok = true;
        if (!backend() || backend_eof_ || backend_aborted_) {
          ok = co_await open_backend();
          if (!ok && backend()) {
            backend_->close();
            backend_aborted_ = true;
          }
        }
        if (finished_) co_return;
        protocols::step_list more;
        machine_->on_backend_connected(ok, more);
        state_changed_.notify();
        co_await execute(std::move(more));
        break;
      }
      case kind::delay_client: {
        // The auth guard's tarpit: the next client write waits, in reply order; this coroutine
        // awaits a timer, so the thread serves other sessions meanwhile.
        co_await acquire(client_gate_);
        asio::steady_timer tarpit(client_.socket().get_executor(), s.delay);
        co_await tarpit.async_wait(use_nothrow);
        release(client_gate_);
        break;
      }
      case kind::close: {
        co_await acquire(client_gate_);
        co_await client_.shutdown_send();
        release(client_gate_);
        outcome said = outcome_of_machine(machine_->facts().outcome);
        // A machine that asked for its back leg knows only that it failed; the driver knows
        // whether the policy refused it (as run() says for legs opened before the machine).
        if (said == outcome::backend_unavailable && back_failure_) said = back_failure_->what;
        finish(said, machine_->facts().reason);
        co_return;
      }
    }
  }
}

asio::awaitable<bool> session::send(side to, const std::string& data) {
  write_gate& gate = to == side::client ? client_gate_ : backend_gate_;
  tls_stream& stream = to == side::client ? client_ : *backend();
  co_await acquire(gate);
  if (finished_) {
    release(gate);
    co_return false;
  }
  auto ec = co_await stream.write_all(data);
  release(gate);
  if (ec) {
    co_await on_write_failed(to, ec);
    co_return false;
  }
  if (to == side::client) bytes_out_ += data.size();
  touch();
  co_return true;
}

asio::awaitable<bool> session::relay(side to, std::string_view data) {
  // Nothing may suspend before `data` is either written or copied: the read buffer is the
  // thread's, and the next reader on this thread overwrites it.
  if (finished_) co_return false;
  if (to == side::backend && (backend_aborted_ || !backend())) co_return true;
  write_gate& gate = to == side::client ? client_gate_ : backend_gate_;
  tls_stream& stream = to == side::client ? client_ : *backend();
  error_code ec;
  std::string rest;  // what the socket did not take at once: bounded by one read
  if (!gate.busy) {
    std::size_t n = stream.write_now(data, ec);
    if (ec && ec != asio::error::would_block) {
      co_await on_write_failed(to, ec);
      co_return false;
    }
    rest.assign(data.substr(n));
  } else {
    rest.assign(data);
  }
  if (!rest.empty()) {
    co_await acquire(gate);
    if (finished_) {
      release(gate);
      co_return false;
    }
    ec = co_await stream.write_all(rest);
    release(gate);
    if (ec) {
      co_await on_write_failed(to, ec);
      co_return false;
    }
  }
  if (to == side::client) bytes_out_ += data.size();
  touch();
  co_return true;
}

asio::awaitable<void> session::on_write_failed(side to, const error_code& ec) {
  if (finished_) co_return;
  if (to == side::client) {
    finish(outcome::client_closed, "write to client failed: " + ec.message());
  } else {
    protocols::step_list steps;
    machine_->on_backend_eof(steps);
    co_await execute(std::move(steps));
  }
}

asio::awaitable<void> session::acquire(write_gate& gate) {
  while (gate.busy && !finished_) co_await state_changed_.wait();
  gate.busy = true;
}

void session::release(write_gate& gate) {
  gate.busy = false;
  state_changed_.notify();
}

void session::request_shutdown() {
  if (finished_ || shutdown_requested_) return;
  shutdown_requested_ = true;
  if (!machine_) return;
  protocols::step_list steps;
  machine_->on_shutdown(steps);
  if (steps.empty()) return;
  asio::co_spawn(
      client_.socket().get_executor(),
      [self = shared_from_this(), steps = std::move(steps)]() mutable {
        return self->execute(std::move(steps));
      },
      asio::detached);
}

void session::force_close() {
  finish(outcome::shutdown, "shutdown grace period ended");
}

void session::finish(outcome what, std::string reason) {
  if (finished_) return;
  finished_ = true;
  outcome_ = what;
  if (!reason.empty())
    reason_ = std::move(reason);
  else if (back_failure_)
    reason_ = back_failure_->reason;
  if (what == outcome::refused_policy && rt_->warnings)
    rt_->warnings->refused_by_policy(cfg_.name, reason_,
                                     back_failure_ && back_failure_->what == outcome::refused_policy
                                         ? "backend " + backend_->facts().address
                                         : "client " + client_addr_);
  client_.close();
  if (backend_) backend_->close();
  wake_watchdog();
  state_changed_.notify();
}

connection_record session::record() const {
  auto tls_of = [](const tls_stream& leg, leg_record& out) {
    out.tls = leg.tls_active();
    if (out.tls) {
      out.version = SSL_get_version(leg.ssl());
      out.cipher = SSL_get_cipher_name(leg.ssl());
    }
    out.tls_error = leg.tls_error();
  };
  connection_record r;
  r.id = id_.str();
  r.listener = cfg_.name;
  r.client = client_addr_;
  r.proxy = proxy_addr_;
  tls_of(client_, r.front);
  if (r.front.tls) {
    if (const char* sni = SSL_get_servername(client_.ssl(), TLSEXT_NAMETYPE_host_name))
      r.front.sni = sni;
    const unsigned char* alpn = nullptr;
    unsigned alpn_len = 0;
    SSL_get0_alpn_selected(client_.ssl(), &alpn, &alpn_len);
    if (alpn_len) r.front.alpn = std::string(reinterpret_cast<const char*>(alpn), alpn_len);
  }
  if (client_check_) {
    if (client_check_->evidence) r.front.chain = &*client_check_->evidence;
    if (client_check_->decision) r.front.decision = &*client_check_->decision;
  }
  if (const tls_stream* leg = backend_ ? backend_->stream() : nullptr) {
    const back_leg_facts& f = backend_->facts();
    auto& b = r.back.emplace();
    tls_of(*leg, b);
    b.addr = f.address;
    b.local = f.local;
    b.resumed = f.resumed;
    if (f.chain) b.chain = &*f.chain;
    if (f.decision) b.decision = &*f.decision;
  }
  r.bytes_in = bytes_in_;
  r.bytes_out = bytes_out_;
  r.duration_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - started_)
                      .count();
  r.what = outcome_;
  r.reason = reason_;
  r.refused_by = refused_by_;
  if (outcome_ == outcome::tls_failed) r.client_hello = certs::client_hello_of(client_.ssl());
  if (machine_) {
    r.starttls_injection = machine_->facts().starttls_injection;
    r.injected_bytes = machine_->facts().injected_bytes;
    r.pretls_auth_attempts = machine_->facts().pretls_auth_attempts;
    r.refusals = machine_->facts().refusals;
  }
  return r;
}

void session::write_machine_events() {
  if (!rt_->audit || !machine_) return;
  for (auto& e : machine_->take_audit_events()) {
    boost::json::object rec;
    rec["event"] = e["event"];
    rec["conn"] = std::string_view(id_);
    rec["listener"] = cfg_.name;
    for (auto& kv : e)
      if (kv.key() != "event") rec[kv.key()] = kv.value();
    if (rt_->metrics) count_event(rec, cfg_.name, *rt_->metrics);
    rt_->audit->write(std::move(rec));
  }
}

void session::write_audit() {
  if (backend_) backend_->remember_session();  // a TLS 1.3 ticket arrives after the handshake
  const connection_record r = record();
  if (rt_->metrics) count_connection(r, *rt_->metrics);
  if (rt_->status) rt_->status->record(r);
  if (!rt_->audit) return;
  write_machine_events();
  rt_->audit->write(conn_json(r));
  spdlog::debug("conn {} {} {} {}", std::string_view(id_), cfg_.name, to_string(outcome_), reason_);
}

}  // namespace tlsbridge::proxy
