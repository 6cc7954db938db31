// The contract between a protocol machine and the one generic session driver (proxy/session).
//
// A protocol (SMTP, IMAP, POP3, raw TLS) is a sans-I/O machine in the style of Boost.MySQL's
// `next_action`: it is fed events — bytes from the client, bytes from the backend, "front TLS is
// up", EOFs, timeouts — and answers, for each event, the ordered list of `step`s the driver must
// perform (write to one side, start TLS on the front, close). The machine never touches a socket,
// a timer or OpenSSL; the driver never parses a protocol. STARTTLS is therefore data: the machine
// says "start_front_tls" and the driver does the handshake.
//
// Two events may not be in flight at once: the driver calls the machine from one thread (the
// session's io_context) and finishes acting on one event's steps before the next is delivered
// from the same side. Steps for one side are written in the order given, across events.
#pragma once

#include <boost/json/object.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "protocols/common/auth_gate.hpp"

namespace tlsbridge::protocols {

struct step {
  enum class kind {
    send_client,            // write `data` to the client
    send_backend,           // write `data` to the backend
    start_front_tls,        // after earlier client writes are flushed: TLS handshake as server
    shutdown_client_send,   // half-close towards the client (TLS close_notify + FIN)
    shutdown_backend_send,  // half-close towards the backend
    abort_backend,          // drop the back leg at once, sending nothing more (e.g. no final dot)
    connect_backend,        // open the back leg now (machines with backend_first() == false);
                            // the answer comes as on_backend_connected
    close,                  // flush client writes, then end the session
    delay_client,           // the next client write waits `delay` (the auth guard's tarpit); the
                            // session's other work and other sessions go on meanwhile
  };
  kind what;
  std::string data;
  std::chrono::milliseconds delay{0};  // delay_client
};

class step_list {
 public:
  void send_client(std::string data) { add(step::kind::send_client, std::move(data)); }
  void send_backend(std::string data) { add(step::kind::send_backend, std::move(data)); }
  void start_front_tls() { add(step::kind::start_front_tls); }
  void shutdown_client_send() { add(step::kind::shutdown_client_send); }
  void shutdown_backend_send() { add(step::kind::shutdown_backend_send); }
  void abort_backend() { add(step::kind::abort_backend); }
  void connect_backend() { add(step::kind::connect_backend); }
  void close() { add(step::kind::close); }
  void delay_client(std::chrono::milliseconds delay) {
    if (delay.count() > 0) steps_.push_back(step{step::kind::delay_client, {}, delay});
  }

  const std::vector<step>& steps() const { return steps_; }
  bool empty() const { return steps_.empty(); }
  void clear() { steps_.clear(); }

 private:
  void add(step::kind k, std::string data = {}) {
    // Coalesce consecutive writes to the same side: one syscall/TLS record instead of several.
    if (!steps_.empty() && steps_.back().what == k &&
        (k == step::kind::send_client || k == step::kind::send_backend)) {
      steps_.back().data += data;
      return;
    }
    steps_.push_back(step{k, std::move(data)});
  }
  std::vector<step> steps_;
};

// Facts a machine reports for the connection's `conn` audit record.
struct session_facts {
  bool starttls_injection = false;  // plaintext followed STARTTLS/STLS and was discarded
  std::size_t injected_bytes = 0;
  // SMTP: AUTH (or X-EXPS) sent before front TLS on a listener that offers STARTTLS (refused 538).
  std::size_t pretls_auth_attempts = 0;
  std::string outcome;  // "" = let the driver decide; else one of the `conn` record's outcomes
  std::string reason;   // free text for the audit record
  // Requests the proxy refused itself without ending the session (a malformed SMTP verb, an IMAP
  // literal where the grammar has none, a lowercase HTTP method...), by the rule that refused
  // them: the `conn` record's `refusals` and tlsbridge_refusals_total{reason}. Few distinct rules
  // per session, so a small vector beats a map.
  std::vector<std::pair<std::string, std::uint64_t>> refusals;
};

// What the driver knows about the connection that a machine may need (X-Forwarded-For, the
// audit's client address).
struct connection_info {
  std::string client;      // "ip:port" (after PROXY protocol)
  std::string client_ip;   // "ip"
  bool front_tls = false;  // the front leg is (or will be, for implicit) encrypted
};

class session_machine {
 public:
  virtual ~session_machine() = default;

  void set_connection(connection_info info) { connection_ = std::move(info); }
  // The auth guard for this connection's client (protocols/common/auth_gate.hpp); null = none.
  void set_auth_gate(auth_gate* gate) { auth_gate_ = gate; }

  // True (the default): the driver opens the back leg before on_start (mail protocols relay the
  // backend's greeting). False: the machine asks with a connect_backend step when it needs one
  // (HTTPS opens its pinned backend connection on the first allowed request).
  virtual bool backend_first() const { return true; }
  // Answer to connect_backend: ok, or not (facts().reason says why; send the protocol's error).
  virtual void on_backend_connected(bool ok, step_list& out) {
    (void)ok;
    (void)out;
  }
  // The idle limit the driver applies right now; nullopt = the listener's `timeouts.idle`.
  // (HTTPS: a request in flight may be held for `request_timeout`, e.g. ActiveSync Ping.)
  virtual std::optional<std::chrono::milliseconds> idle_limit() const { return std::nullopt; }
  // True: every byte from one side goes to the other unchanged and on_client_data /
  // on_backend_data would only queue it as a send step, so the driver relays read data itself,
  // straight from its read buffer, without calling them (no copy of the bytes, no step).
  virtual bool relays_verbatim() const { return false; }

  // The back leg is ready (connected, opened, TLS as configured): begin (e.g. relay the greeting).
  virtual void on_start(step_list& out) = 0;
  virtual void on_client_data(std::string_view data, step_list& out) = 0;
  virtual void on_backend_data(std::string_view data, step_list& out) = 0;
  virtual void on_front_tls_established(step_list& out) = 0;
  virtual void on_client_eof(step_list& out) = 0;
  virtual void on_backend_eof(step_list& out) = 0;
  virtual void on_idle_timeout(step_list& out) = 0;
  // SIGTERM drain: end the session at the next safe point (SMTP: a command boundary).
  virtual void on_shutdown(step_list& out) = 0;

  // True while the driver must not read from the client: after STARTTLS was accepted and before
  // the front handshake, every client byte is a handshake byte, not plaintext (RFC 3207 §4.2).
  virtual bool client_input_paused() const = 0;

  const session_facts& facts() const { return facts_; }
  // How many requests the proxy refused itself so far, whatever the rule.
  std::uint64_t refusals() const {
    std::uint64_t n = 0;
    for (const auto& rule : facts_.refusals) n += rule.second;
    return n;
  }
  // Audit records the machine produced since the last call (smtp.message, imap.login, ...);
  // the driver adds ts/conn/listener.
  std::vector<boost::json::object> take_audit_events() { return std::move(events_); }

 protected:
  // Plaintext that followed STARTTLS/STLS (RFC 3207 §4.2, CVE-2011-0411): dropped by the
  // caller, recorded here for the audit record and the metric.
  void discard_injected(std::size_t bytes) {
    if (bytes == 0) return;
    facts_.starttls_injection = true;
    facts_.injected_bytes += bytes;
  }
  // The same for everything `client` (a line_framer) holds: dropped and recorded.
  template <class Buffer>
  void discard_injected(Buffer& client) {
    discard_injected(client.buffered());
    client.clear();
  }
  // The proxy answered a request itself because `rule` forbids it (never relayed). `rule` is a
  // short stable name ("smtp.verb_syntax", "http.method_case") for metrics and the audit record;
  // the session's `reason` names the last one when nothing else ended it.
  // Text after a ':' explains the rule ("smtp.verb_syntax: ...") and is not part of its name.
  void count_refusal(std::string_view rule) {
    rule = rule.substr(0, rule.find(':'));
    for (auto& [name, n] : facts_.refusals)
      if (name == rule) {
        ++n;
        return;
      }
    facts_.refusals.emplace_back(std::string(rule), 1);
  }
  // A refusal counted and audited: `event` (its "event" name and what was refused) gets the
  // rule, explanation included, as its "reason" (smtp.refused, imap.refused, pop3.refused).
  void record_refusal(std::string rule, boost::json::object event) {
    count_refusal(rule);
    event["reason"] = std::move(rule);
    events_.push_back(std::move(event));
  }

  // The auth guard, before credentials for `user` ("" = not known yet) are relayed: whether the
  // client may try. A block is recorded (`auth.blocked`); the machine then answers in its own
  // words (SMTP 454 4.7.0, IMAP NO [UNAVAILABLE], POP3 -ERR [SYS/TEMP], HTTP 429) and relays
  // nothing of the attempt.
  auth_block auth_check(std::string_view user, std::string_view command) {
    if (auth_gate_ == nullptr) return auth_block::none;
    const auth_block b = auth_gate_->may_try(user);
    if (b != auth_block::none) {
      boost::json::object e = auth_event(user, command);
      e["event"] = "auth.blocked";
      e["scope"] = to_string(b);
      events_.push_back(std::move(e));
    }
    return b;
  }
  // The backend's verdict on an attempt for `user`: a success exempts the pair from a later
  // block of the user; a failure is counted and recorded (`auth.failure`), and the failed reply
  // waits for the tarpit — call this before the reply is sent.
  void auth_verdict(std::string_view user, bool accepted, std::string_view command,
                    step_list& out) {
    if (auth_gate_ == nullptr) return;
    if (accepted) {
      auth_gate_->succeeded(user);
      return;
    }
    auth_gate_->failed(user);
    boost::json::object e = auth_event(user, command);
    e["event"] = "auth.failure";
    events_.push_back(std::move(e));
    out.delay_client(auth_gate_->tarpit());
  }

  session_facts facts_;
  std::vector<boost::json::object> events_;
  connection_info connection_;

 private:
  boost::json::object auth_event(std::string_view user, std::string_view command) const {
    boost::json::object e;
    e["client_ip"] = connection_.client_ip;
    e["command"] = command;
    if (auth_gate_->records_user()) e["user"] = auth_user_key(user);
    return e;
  }

  auth_gate* auth_gate_ = nullptr;
};

// Opens the back leg after TCP (and implicit TLS) is up: reads the greeting, and for STARTTLS
// back legs negotiates the upgrade. A tiny next-action machine the driver runs to completion.
class backend_opener {
 public:
  struct action {
    enum class kind { read, write, handshake, done, fail };
    kind what;
    std::string data;  // write: bytes to send; fail: reason
  };
  virtual ~backend_opener() = default;
  virtual action start() = 0;
  virtual action on_read(std::string_view data) = 0;
  virtual action on_written() = 0;
  virtual action on_handshake_done() = 0;
  // After `done`: whether the back leg ended up encrypted is the driver's knowledge; the opener
  // tells whether a STARTTLS upgrade was skipped because the backend did not offer it.
  virtual const std::string& greeting() const = 0;
};

}  // namespace tlsbridge::protocols
