// The SMTP proxy machine, sans I/O. It sits between a client and a backend whose
// back leg is already open (protocols/smtp/backend_opener), and decides, per event, what goes
// where.
//
// Client side, one mode at a time:
//   command ──DATA relayed──> awaiting_data_reply ──354──> data ──<CRLF>.<CRLF>──> command
//      │   └─non-354 reply──> command
//      ├──AUTH/X-EXPS relayed──> awaiting_auth_reply ──334──> sasl_response ──one line──┐
//      │   │                          ^────────────────────────────────────────────────┘
//      │   └─final reply (2xx/4xx/5xx)──> command
//      ├──BDAT n relayed, or refused (chunk framed, dropped)──> bdat (n bytes) ──> command
//      ├──STARTTLS accepted──> awaiting_front_tls ──handshake──> command (state reset)
//      ├──QUIT relayed──> quit_sent (client bytes dropped) ──reply──> closed
//      └──error──> closed
// In awaiting_data_reply and awaiting_auth_reply the client's bytes are held (bounded) until the
// backend's reply says what they are: message data, a SASL response, or commands again. Every
// command line is tokenised by the RFC 5321 grammar first (smtp_command.hpp); a line it does not
// read as exactly one command is refused, never relayed. BDAT passes only while the
// backend's latest EHLO reply offered CHUNKING (RFC 3030). Each refusal is audited as an
// `smtp.refused` event naming the rule.
//
// Replies go back in command order (RFC 2920 pipelining): every command leaves an entry in the
// reply_queue (protocols/common), either "relay" (the backend's reply will answer it) or "local"
// (the proxy's own reply, sent once every earlier backend reply has been relayed). The proxy
// answers locally only what it refuses or owns (STARTTLS, 530, 538, 502, 500); every 2xx about mail
// comes from the backend. The envelope observer rides on the same queue: MAIL/RCPT arguments are
// kept with their entries and recorded when the backend's reply accepts them; the final reply to
// the end of data (or BDAT LAST) emits one `smtp.message` audit event with the backend's own words
// (its queue id).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "protocols/common/line_framer.hpp"
#include "protocols/common/mail_machine.hpp"
#include "protocols/common/mail_settings.hpp"
#include "protocols/smtp/data_scanner.hpp"
#include "protocols/smtp/smtp_command.hpp"
#include "protocols/smtp/smtp_reply.hpp"

namespace tlsbridge::protocols::smtp {

struct machine_settings : mail_settings {
  config::bare_lf_mode bare_lf = config::bare_lf_mode::reject;
  std::size_t max_command_line = 4096;       // longer lines are refused: 500 5.5.2
  std::size_t max_held_bytes = 1024 * 1024;  // client bytes held while DATA awaits its reply
  // [listener.smtp] greeting: the client's 220 text (and, its first word, EHLO's host); "" = the
  // backend's own.
  std::string greeting;
};

// What the machine decided to put on the back leg, in order: for unit tests and the differential
// fuzz target (tests/fuzz/fuzz_smtp_differential.cpp), which hold it against an independent reader
// of the backend's side. Production sessions have none.
class relay_observer {
 public:
  virtual ~relay_observer() = default;
  // A command line relayed (or sent by the proxy itself: QUIT at client EOF or drain).
  virtual void command(const command& cmd, std::string_view line) = 0;
  // A line relayed as the answer to a 334 challenge (RFC 4954 §4), "*" when the proxy cancelled.
  virtual void sasl_response(std::string_view line) = 0;
  // The end-of-data dot of a DATA message was relayed.
  virtual void message_end() = 0;
};

// What a relayed command keeps until its reply (reply_queue holds the order).
struct smtp_pending {
  verb cmd = verb::other;
  std::string text;          // helo/ehlo: the name; mail/rcpt: the address
  bool message_end = false;  // the reply to <CRLF>.<CRLF> or BDAT LAST
  std::uint64_t size = 0;    // message_end: the message's size, known on the client side
};

class smtp_machine final : public mail_machine<machine_settings, smtp_pending> {
 public:
  smtp_machine(machine_settings settings, std::string backend_greeting_wire);

  void set_observer(relay_observer* observer) { observer_ = observer; }

  void on_start(step_list& out) override;

 private:
  enum class mode {
    command,
    awaiting_data_reply,
    data,
    bdat,
    awaiting_auth_reply,
    sasl_response,
    quit_sent,
  };
  using pending = smtp_pending;

  static pending expect(verb cmd, std::string text = {}, bool message_end = false);
  void read_client(step_list& out) override;
  void read_backend(std::string_view data, step_list& out) override;
  void end(ending why, step_list& out) override;
  void forget_before_tls() override;
  void maybe_finish_drain(step_list& out) override;
  void handle_command(std::string line, bool bare_lf, step_list& out);
  void handle_sasl_response(const std::string& line, bool bare_lf, step_list& out);
  bool next_line_ends_in_bare_lf() const;
  bool chunking_offered() const;
  void refuse(std::string wire, std::string_view rule, std::string_view name, step_list& out);
  void audit_refusal(std::string_view rule, std::string_view name, std::string_view reply);
  void skip_refused_chunk(const command& cmd);
  void relay(std::string_view line, pending entry, step_list& out);
  void handle_reply(const reply& r, step_list& out);
  void emit_message_event(const reply& final_reply, std::uint64_t size);
  void reset_transaction();
  void send_quit(step_list& out);
  bool at_command_boundary() const;

  mode mode_ = mode::command;
  bool need_ehlo_ = false;  // after STARTTLS the client must say EHLO again (RFC 3207 §4.2)
  reply_parser backend_;
  std::optional<data_scanner> scanner_;
  std::uint64_t bdat_remaining_ = 0;
  bool bdat_discard_ = false;     // the chunk of a BDAT the proxy refused: read, never relayed
  std::uint64_t bdat_total_ = 0;  // client side: chunk sizes of the current BDAT message so far
  // RFC 3030 §2: BDAT only when the backend's most recent EHLO reply listed CHUNKING.
  bool backend_chunking_ = false;
  // Refusals are audited one by one up to max_refusal_events, then only counted.
  static constexpr std::size_t max_refusal_events = 32;
  relay_observer* observer_ = nullptr;

  // Envelope observer state, updated as the backend's replies arrive (the client may have
  // pipelined the next transaction's commands already).
  std::string helo_;
  std::string mail_from_;
  bool in_transaction_ = false;  // MAIL accepted, message not finished or reset
  std::vector<std::string> rcpt_;
  // The AUTH exchange in progress (SASL PLAIN / LOGIN: the user name when it decodes) and the user
  // the backend accepted (235), recorded in smtp.message as auth_user.
  std::string auth_mechanism_;
  std::size_t auth_responses_ = 0;
  std::string auth_candidate_;
  std::string auth_user_;
  // The auth guard blocked the user named in a SASL response: the exchange was cancelled ("*")
  // and the proxy's 454, not the backend's reply, ends it.
  bool auth_blocked_ = false;
  void note_auth_start(std::string_view argument);
  void note_sasl_response(std::string_view line);
};

}  // namespace tlsbridge::protocols::smtp
