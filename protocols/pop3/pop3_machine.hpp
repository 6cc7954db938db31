// The POP3 proxy machine, sans I/O. The back leg is open
// (pop3_backend_opener); this machine relays commands and replies in order (RFC 2449 PIPELINING),
// frames multi-line replies by their terminating "." line without buffering them (dot-stuffed
// lines are data), rewrites CAPA for the front leg's state, answers STLS itself and refuses
// USER/PASS/APOP/AUTH before front TLS under require_tls.
//
// Client side (each line read by the RFC 1939 grammar first, pop3_syntax's parse_command; what it
// cannot read is answered -ERR by the proxy and never relayed):
//   command ──AUTH mech relayed──> exchange: one client line per backend "+ "; held otherwise
//      │                              └──the AUTH's +OK/-ERR──> command
//      ├──STLS accepted──> awaiting_front_tls ──handshake──> command
//      └──QUIT's reply / error──> closed
// Backend side:
//   status ──+OK to RETR/TOP/LIST/UIDL/CAPA/AUTH──> body (streamed to the final ".") ──> status
//          └─ CAPA: collected (bounded), rewritten, sent whole
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "protocols/common/line_framer.hpp"
#include "protocols/common/mail_machine.hpp"
#include "protocols/common/mail_settings.hpp"
#include "protocols/pop3/pop3_syntax.hpp"

namespace tlsbridge::protocols::pop3 {

struct machine_settings : mail_settings {
  std::size_t max_command_line = 64 * 1024;   // RFC 2449 says 255; SASL responses run longer
  std::size_t max_response_line = 64 * 1024;  // a status line or a CAPA line
  std::size_t max_capa_bytes = 64 * 1024;     // a CAPA reply is held whole to be rewritten
  std::size_t max_held_bytes = 256 * 1024;    // client bytes held while AUTH awaits a "+"
};

enum class pop3_kind { other, user, pass, apop, auth, quit, capa };

// What a relayed command keeps until its reply (reply_queue holds the order).
struct pop3_pending {
  pop3_kind what = pop3_kind::other;
  bool multiline = false;  // a +OK reply carries a body
  std::string user;
  // The auth guard blocked the user of an AUTH PLAIN exchange: the exchange was cancelled ("*",
  // RFC 5034 §4) and this, not the backend's -ERR, is the client's reply.
  std::string blocked_reply;
};

class pop3_machine final : public mail_machine<machine_settings, pop3_pending> {
 public:
  pop3_machine(machine_settings settings, std::string backend_greeting_wire);

  void on_start(step_list& out) override;

 private:
  enum class mode { command, exchange };
  enum class backend_state { status, body, capa_body };
  using kind = pop3_kind;
  using pending = pop3_pending;

  void read_client(step_list& out) override;
  void read_backend(std::string_view data, step_list& out) override;
  void end(ending why, step_list& out) override;
  void forget_before_tls() override;
  void maybe_finish_drain(step_list& out) override;
  void handle_command(const std::string& line, step_list& out);
  void handle_exchange_line(const std::string& line, step_list& out);
  void refuse(std::string reply, const std::string& keyword, std::string rule, step_list& out);
  bool handle_status_line(const std::string& line, step_list& out);
  void complete(const std::string& status_line, step_list& out);
  bool at_boundary() const;
  bool guard_blocks(std::string_view user, std::string_view command);

  mode mode_ = mode::command;
  backend_state backend_state_ = backend_state::status;
  bool authenticated_ = false;
  line_framer backend_;
  multiline_scanner scanner_;
  std::string user_;                 // the last USER argument
  unsigned continuations_owed_ = 0;  // backend "+ " not yet answered by a client line
  bool sasl_plain_ = false;          // AUTH PLAIN without initial response: next line holds it
  std::string capa_status_;
  std::vector<std::string> capa_lines_;
  std::size_t capa_bytes_ = 0;

 public:
  // Test and fuzz hook (tests/fuzz/fuzz_imap_differential.cpp): called with the upper-cased
  // keyword of every command the machine decides to relay, before its bytes are sent.
  void set_relay_observer(std::function<void(std::string_view)> f) {
    relay_observer_ = std::move(f);
  }

 private:
  std::function<void(std::string_view)> relay_observer_;
};

}  // namespace tlsbridge::protocols::pop3
