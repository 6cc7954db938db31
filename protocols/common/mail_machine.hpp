// What the three command/reply mail machines (SMTP, IMAP, POP3) share, sans I/O: their settings,
// the backend's greeting, whether the front leg is encrypted yet, the client's line framer and the
// reply_queue, and every transition that does not depend on the protocol — client bytes into the
// framer, STARTTLS/STLS accepted (nothing the client sends before the handshake counts), the front
// handshake done (what was learnt before it is forgotten), the SIGTERM drain, and the one ending,
// `close_with`; events after the end are ignored here. A machine adds its grammar (`read_client`,
// `read_backend`), its safe points (`maybe_finish_drain`), its words for an ending (`end`), and
// what it forgets of the plaintext part (`forget_before_tls`).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>

#include "config/config.hpp"
#include "protocols/common/line_framer.hpp"
#include "protocols/common/reply_queue.hpp"
#include "protocols/common/session_machine.hpp"

namespace tlsbridge::protocols {

template <class Settings, class Pending>
class mail_machine : public session_machine {
 public:
  // Why a session ends other than by the protocol's own goodbye or the proxy's refusal.
  enum class ending { client_closed, backend_lost, idle_timeout };

  void on_client_data(std::string_view data, step_list& out) final {
    if (closed()) return;
    client_.append(data);
    process_client(out);
  }

  void on_backend_data(std::string_view data, step_list& out) final {
    if (!closed()) read_backend(data, out);
  }
  void on_client_eof(step_list& out) final {
    if (!closed()) end(ending::client_closed, out);
  }
  void on_backend_eof(step_list& out) final {
    if (!closed()) end(ending::backend_lost, out);
  }
  void on_idle_timeout(step_list& out) final {
    if (!closed()) end(ending::idle_timeout, out);
  }

  void on_front_tls_established(step_list& out) final {
    (void)out;
    // The driver finishes a handshake it started even if a backend event closed the machine in the
    // meantime (proxy/session.cpp runs both loops): a closed machine must stay closed.
    if (closed()) return;
    // RFC 3207 §4.2, RFC 2595 §4, RFC 9051 §6.2.1: both sides forget what they knew before TLS.
    front_encrypted_ = true;
    awaiting_front_tls_ = false;
    client_.clear();
    forget_before_tls();
  }

  void on_shutdown(step_list& out) final {
    pending_.start_drain();
    if (!closed()) maybe_finish_drain(out);
  }

  bool client_input_paused() const final { return awaiting_front_tls_ && !closed(); }

 protected:
  mail_machine(Settings settings, std::string backend_greeting_wire)
      : settings_(std::move(settings)),
        greeting_(std::move(backend_greeting_wire)),
        front_encrypted_(settings_.front == config::front_tls::implicit),
        client_(settings_.max_command_line) {}

  // Reads the client's commands from `client_` as far as the machine's state allows.
  virtual void read_client(step_list& out) = 0;
  // Reads the backend's replies, `data` first.
  virtual void read_backend(std::string_view data, step_list& out) = 0;
  // Ends the open session: what the client is told, and how the backend leg is left.
  virtual void end(ending why, step_list& out) = 0;
  // Ends the draining session if it stands at a safe point (never mid-command or mid-message).
  virtual void maybe_finish_drain(step_list& out) = 0;
  // The front handshake is done: reset what the client said before it.
  virtual void forget_before_tls() = 0;

  // Reads what the client sent, unless the session has ended or the front handshake is due.
  void process_client(step_list& out) {
    if (may_read_client()) read_client(out);
  }

  // False once the session has ended, and while STARTTLS/STLS awaits its handshake: then what
  // the client sent is dropped and recorded (RFC 3207 §4.2, RFC 2595 §4, CVE-2011-0411).
  bool may_read_client() {
    if (closed()) return false;
    if (awaiting_front_tls_) {
      discard_injected(client_);
      return false;
    }
    return true;
  }

  // STARTTLS/STLS accepted: `reply` goes in its turn, then the front handshake; nothing the
  // client pipelined after the command is ever read.
  void accept_starttls(std::string reply, step_list& out) {
    discard_injected(client_);
    awaiting_front_tls_ = true;
    pending_.answer(std::move(reply), out, /*starttls=*/true);
  }

  // The session ends once: `wire` (if any) to the client, the outcome and reason for the audit
  // record (empty: keep what is there), then close.
  void close_with(std::string wire, std::string outcome, std::string reason, step_list& out) {
    pending_.close_with(std::move(wire), std::move(outcome), std::move(reason), facts_, out);
  }

  // The next line of a line-based backend (IMAP, POP3) into `line`. False when none is complete
  // yet (a drain may end the session here) or the line is over the machine's max_response_line
  // (the session ends: `reply_prefix` + "<host> backend protocol error").
  bool next_backend_line(line_framer& backend, std::string& line, std::string_view reply_prefix,
                         step_list& out) {
    switch (backend.next_line(line)) {
      case line_framer::status::line:
        return true;
      case line_framer::status::need_more:
        maybe_finish_drain(out);
        return false;
      case line_framer::status::too_long:
        close_with(std::string(reply_prefix) + settings_.hostname + " backend protocol error\r\n",
                   "backend_unavailable",
                   "backend line over " + std::to_string(settings_.max_response_line) + " bytes",
                   out);
        return false;
    }
    return false;
  }

  bool closed() const { return pending_.closed(); }
  // A STARTTLS front leg still in plaintext.
  bool before_tls() const {
    return settings_.front == config::front_tls::starttls && !front_encrypted_;
  }

  Settings settings_;
  std::string greeting_;
  bool front_encrypted_;
  line_framer client_;
  reply_queue<Pending> pending_;

 private:
  bool awaiting_front_tls_ = false;
};

}  // namespace tlsbridge::protocols
