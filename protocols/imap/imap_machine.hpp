// The IMAP proxy machine, sans I/O, run by the same driver as SMTP. The
// back leg is open (imap_backend_opener); this machine frames both directions so that literal bytes
// are never read as commands or responses, rewrites capability lists for the front leg's state,
// answers STARTTLS itself, and refuses LOGIN/AUTHENTICATE before front TLS under require_tls.
//
// Client side, one mode at a time (a command is line fragments joined by literals, each fragment
// tokenised by the grammar, imap_syntax's command_scanner, before a byte of it is relayed):
//   command ──fragment ends {n+}──> literal (n bytes) ──> fragment ──...──> command
//      │    └─fragment ends {n}──> await_plus ──backend "+"──> literal
//      │                               └──this command's tagged reply (literal refused)──> command
//      ├──refused first fragment (syntax, require_tls, {n+} before TLS, ...): nothing relayed; the
//      │    client's own framing is followed to the command's end ({n+} bytes read and dropped,
//      │    no "+" for {n}), then "<tag> BAD/NO" or "* BAD" from the proxy
//      ├──a later fragment of a relayed command refused: the backend is mid-command ──> closed
//      ├──AUTHENTICATE / IDLE relayed──> exchange: one client line per backend "+"; held otherwise
//      │                                   └──the command's tagged reply──> command
//      ├──STARTTLS accepted──> awaiting_front_tls ──handshake──> command
//      └──LOGOUT's tagged reply / error──> closed
//
// A relayed literal must be one the backend reads as one: synchronizing before front
// TLS, {n+} only to a LITERAL+/LITERAL- backend, ~{n} only in APPEND to a BINARY one, and only in
// commands whose grammar has a string (a server may skip NOOP's or an unknown command's line).
//
// Backend side: response lines, each maybe followed by a literal (FETCH BODY[] {n}) whose bytes are
// streamed to the client untouched; only the first fragment of a response is looked at. Status
// responses and "+" lines end in text, never in a literal (imap_syntax's response_literal).
//
// Tagged completions may come in any order (RFC 9051 §5.5), but the proxy's own replies keep the
// client's order: every command leaves an entry in the reply_queue (protocols/common), relayed
// (the backend's tagged reply answers it) or local (sent once every earlier relayed command has
// its reply), as in SMTP.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "config/config.hpp"
#include "protocols/common/line_framer.hpp"
#include "protocols/common/mail_machine.hpp"
#include "protocols/common/mail_settings.hpp"
#include "protocols/imap/imap_syntax.hpp"

namespace tlsbridge::protocols::imap {

struct machine_settings : mail_settings {
  std::size_t max_command_line = 64 * 1024;         // one client line fragment
  std::uint64_t max_literal = 64ull * 1024 * 1024;  // one client literal (APPEND's message)
  std::size_t max_response_line = 4 * 1024 * 1024;  // one backend line (a big SEARCH result)
  std::size_t max_held_bytes = 256 * 1024;          // client bytes held while a "+" is awaited
};

enum class imap_kind { other, login, authenticate, idle, logout };

// What a relayed command keeps until its tagged reply (reply_queue holds the order).
struct imap_pending {
  std::uint64_t id = 0;  // the command's number, to tell commands with the same tag apart
  std::string tag;
  imap_kind what = imap_kind::other;
  std::string user;  // login/authenticate: for the audit record and the auth guard
  // The auth guard blocked the user of an AUTHENTICATE PLAIN exchange: it was cancelled ("*",
  // RFC 9051 §6.2.2) and this, not the backend's tagged reply, is the client's answer.
  std::string blocked_reply;
};

class imap_machine final : public mail_machine<machine_settings, imap_pending> {
 public:
  imap_machine(machine_settings settings, std::string backend_greeting_wire);

  void on_start(step_list& out) override;

 private:
  enum class mode { command, fragment, literal, await_plus, exchange };
  using kind = imap_kind;
  using pending = imap_pending;

  // The command being read from the client, across its fragments and literals.
  struct current_command {
    std::uint64_t id = 0;
    std::string tag;
    std::string name;
    bool relayed = false;  // else discarded and answered locally at its end
    std::string refusal;   // local reply for a discarded command
    kind what = kind::other;
    bool sasl_plain = false;  // AUTHENTICATE PLAIN without initial response
    bool guard_asked = false;  // LOGIN: the auth guard was asked with the user name
  };

  void read_client(step_list& out) override;
  void read_backend(std::string_view data, step_list& out) override;
  void end(ending why, step_list& out) override;
  void forget_before_tls() override;
  void maybe_finish_drain(step_list& out) override;
  void handle_command_start(const std::string& line, step_list& out);
  void handle_fragment_end(std::string_view line, step_list& out);
  void relay_fragment(std::string_view line, std::optional<literal_marker> lit, step_list& out);
  void refuse_command(std::string reply, std::string rule, step_list& out);
  void follow_discarded(std::optional<literal_marker> lit, step_list& out);
  std::optional<std::string> literal_refusal(const literal_marker& lit) const;
  void note_capabilities(std::string_view line);
  void end_command(step_list& out);
  void handle_exchange_line(const std::string& line, step_list& out);
  void handle_response_line(const std::string& line, step_list& out);
  void complete(const std::string& tag, const std::string& line, step_list& out);
  void emit_login_event(const pending& p, std::string_view reply_after_tag);
  std::string guard_reply() const;
  bool guard_login_fragment(step_list& out);
  bool guard_verdict(const std::string& line, step_list& out);
  capability_view view() const;

  mode mode_ = mode::command;
  line_framer backend_;
  current_command cmd_;
  command_scanner scanner_;  // the relayed command being read
  std::uint64_t next_id_ = 0;
  std::uint64_t client_literal_ = 0;   // bytes left of the client literal being read
  std::string backend_caps_;           // the backend's last capability list (LITERAL+, BINARY)
  std::uint64_t backend_literal_ = 0;  // bytes left of the backend literal being relayed
  bool backend_at_response_start_ = true;
  std::string exchange_tag_;  // AUTHENTICATE / IDLE in progress
  kind exchange_kind_ = kind::other;
  unsigned continuations_owed_ = 0;  // backend "+" not yet answered by a client line
  bool idling_ = false;              // IDLE accepted ("+ idling") and DONE not yet sent
  bool bye_relayed_ = false;

 public:
  // Test and fuzz hook (tests/fuzz/fuzz_imap_differential.cpp): called with tag and upper-cased
  // name for every command the machine decides to relay, before its first byte is sent.
  void set_relay_observer(std::function<void(std::string_view, std::string_view)> f) {
    relay_observer_ = std::move(f);
  }

 private:
  std::function<void(std::string_view, std::string_view)> relay_observer_;
};

}  // namespace tlsbridge::protocols::imap
