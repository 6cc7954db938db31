// The one generic session driver: it owns the two legs of a connection and runs any protocol
// machine (protocols/common/session_machine.hpp), in this order:
//
//   admission (PROXY header, allow, limits) ─> [front implicit TLS]
//          ─> back leg (proxy/back_leg.hpp: connect with failover, back TLS, opener, judgement)
//          ─> the machine, built once (with the backend's greeting) ─> machine.on_start
//          ─> client loop ║ backend loop ║ idle watchdog
//          ─> one `conn` audit record (proxy/connection_record.hpp)
//
// A client refused before its machine exists gets protocol_factory's refusal_text(). HTTPS opens
// its back leg later, per request, and again after the backend closed: each time a new back_leg.
//
// Each side has one reader task: it reads into a per-thread scratch buffer, feeds the machine and
// performs the steps it answers, and when the side has nothing more to read it *parks* — a
// readiness callback is armed and the coroutine ends — so an idle connection holds no buffer and
// no coroutine frame, only OpenSSL's state and two reactor waits (issue 8: idle memory). The idle
// watchdog is an entry in the worker's timing wheel. Writes to one side are serialised by a gate,
// so replies keep the machine's order; a reader awaits its writes before reading again, which is
// the relay's backpressure. When both readers and the watchdog have ended, the `conn` record is
// written. A session lives on one io_context thread: no locks inside.
#pragma once

#include <algorithm>
#include <array>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/object.hpp>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "certs/client_cert_check.hpp"
#include "policy/chain_evidence.hpp"
#include "policy/policy_decision.hpp"
#include "protocols/common/session_machine.hpp"
#include "proxy/async_event.hpp"
#include "proxy/back_leg.hpp"
#include "proxy/connection_record.hpp"
#include "proxy/idle_watchdogs.hpp"
#include "proxy/listener.hpp"
#include "proxy/outcome.hpp"
#include "proxy/protocol_factory.hpp"
#include "proxy/tls_stream.hpp"

namespace tlsbridge::proxy {

// A connection id held inline: next_connection_id()'s 16 characters fit without an allocation
// (a std::string's own buffer holds 15); a longer one is cut at 23.
class connection_id {
 public:
  connection_id(std::string_view id) {
    len_ = static_cast<unsigned char>(std::min(id.size(), sizeof chars_));
    std::memcpy(chars_, id.data(), len_);
  }
  operator std::string_view() const { return {chars_, len_}; }
  std::string str() const { return std::string(chars_, len_); }

 private:
  char chars_[23];
  unsigned char len_;
};

class session : public std::enable_shared_from_this<session> {
 public:
  // `peer`: the client's address as accept() returned it (no getpeername per connection).
  session(std::shared_ptr<listener_runtime> runtime, asio::ip::tcp::socket socket,
          const asio::ip::tcp::endpoint& peer, std::string_view id);
  ~session();

  asio::awaitable<void> run();
  // SIGTERM: let the machine end at its next safe point.
  void request_shutdown();
  // Grace over: end now.
  void force_close();
  std::string_view id() const { return id_; }
  // Runs with `arg` and the session when it is destroyed (the server forgets it). A plain
  // function and its argument: two words, not a std::function's four.
  void on_destroy(void (*hook)(void* arg, const session* gone), void* arg) {
    on_destroy_ = hook;
    on_destroy_arg_ = arg;
  }

 private:
  enum class side { client, backend };
  struct write_gate {
    bool busy = false;
  };

  // Admission: the PROXY header, `allow`, the connection limits. nullopt: refused (the outcome is
  // set); "" admitted; else the limit the connection is over (it still gets its refusal).
  asio::awaitable<std::optional<std::string>> admit();
  early_refusal admit_refusal_ = early_refusal::over_limit;  // how admit()'s refusal is worded
  asio::awaitable<bool> read_proxy_header();
  asio::awaitable<bool> open_front_tls();
  // Front handshake (implicit or after STARTTLS) with client-certificate policy; sets the outcome
  // on failure.
  asio::awaitable<bool> front_handshake(const char* what);
  // A new back leg (the old one, if any, is closed): true when it is up; a failure is kept in
  // back_failure_.
  asio::awaitable<bool> open_backend();
  tls_stream* backend() { return backend_ ? backend_->stream() : nullptr; }
  // The relay: two reader tasks and the idle watchdog; the last to end writes the audit record.
  void start_relay();
  void task_done();
  // Arms a readiness callback for `from` that starts the next reader activation.
  void park(side from);
  // One reader activation: from a wake-up until the side has nothing more to read (it parks
  // again) or is over (task_done). `woken` carries the wait's result, nullopt at the start.
  asio::awaitable<void> client_reader(std::optional<error_code> woken);
  asio::awaitable<void> backend_reader(std::optional<error_code> woken);
  void arm_watchdog();
  // Ends the watchdog's wait early (it re-checks at once, on a posted call): finish() and a
  // changed idle limit.
  void wake_watchdog();
  void on_watchdog();
  asio::awaitable<void> idle_goodbye();
  asio::awaitable<void> execute(protocols::step_list steps);
  // `data` is a step of the list execute() holds until the send is done (no copy per write).
  asio::awaitable<bool> send(side to, const std::string& data);
  // A verbatim relay's data event (session_machine::relays_verbatim): `data` (the thread's read
  // buffer) is written to `to` straight away; only what the socket does not take at once is
  // copied, before anything can suspend, and finished from the copy. False when the session ends.
  asio::awaitable<bool> relay(side to, std::string_view data);
  // After a failed write to `to`: the session ends (client) or the machine hears of the EOF.
  asio::awaitable<void> on_write_failed(side to, const error_code& ec);
  asio::awaitable<void> acquire(write_gate& gate);
  void release(write_gate& gate);
  asio::awaitable<void> refuse_client(std::string wire);
  void touch() { last_activity_ = std::chrono::steady_clock::now(); }
  // The one place the outcome and reason are set; the first call wins. An empty reason falls back
  // to the last back-leg failure's.
  void finish(outcome what, std::string reason = {});
  // The facts of the connection so far, for the `conn` record and the metrics.
  connection_record record() const;
  void write_audit();
  void write_machine_events();

  std::shared_ptr<listener_runtime> rt_;
  const config::listener_config& cfg_;
  connection_id id_;
  tls_stream client_;
  std::optional<back_leg> backend_;
  // The last back leg that failed to open; out of line, as most connections have none.
  std::unique_ptr<back_leg_failure> back_failure_;
  std::unique_ptr<protocols::session_machine> machine_;
  std::unique_ptr<session_auth_gate> auth_gate_;  // [listener.auth_guard]; null when off
  write_gate client_gate_;
  write_gate backend_gate_;
  // One event for every state a coroutine may wait for — a write gate freed, the front TLS up
  // after STARTTLS, a back leg opened on demand, the session finished. Waiters re-check their own
  // condition, so sharing it costs a spurious wake-up now and then and saves a timer per
  // condition in every connection.
  async_event state_changed_;
  // The idle watchdog: an entry in the worker's timing wheel (proxy/idle_watchdogs), not a timer.
  watchdog_entry watchdog_;
  std::chrono::milliseconds armed_idle_limit_{0};  // the limit the watchdog was last armed for

  std::chrono::steady_clock::time_point started_;
  std::chrono::steady_clock::time_point last_activity_;
  std::string client_addr_;
  std::string proxy_addr_;  // with PROXY protocol: the proxy's own address
  bool ip_counted_ = false;
  std::array<std::uint8_t, 16> client_ip_{};
  // The front leg's client chain check, only on listeners with client_certs.
  std::unique_ptr<certs::client_chain_check> client_check_;
  std::uint64_t bytes_in_ = 0;
  std::uint64_t bytes_out_ = 0;
  bool finished_ = false;
  bool backend_aborted_ = false;
  bool backend_eof_ = false;
  bool shutdown_requested_ = false;
  int relay_tasks_ = 0;  // reader tasks and watchdog still running
  void (*on_destroy_)(void*, const session*) = nullptr;
  void* on_destroy_arg_ = nullptr;
  outcome outcome_ = outcome::ok;
  std::string reason_;
  const char* refused_by_ = "";  // admission's refusal (proxy/refusal_reason.hpp), "" if none
};

// A connection id unique across restarts and instances: a per-process random prefix + a counter.
std::string next_connection_id();

}  // namespace tlsbridge::proxy
