// The shared skeleton of the line-based back-leg openers (IMAP, POP3): the next-action loop that
// reads a one-line greeting, sends a capability query, reads its answer (multi-line or tagged),
// sends STARTTLS/STLS, reads its reply, asks the driver for the handshake and, where the protocol
// wants it, queries the capabilities again over TLS. The protocol plugs in what each line means
// (`on_greeting`, `on_capability_line`, `on_starttls_reply`, `after_handshake`) and answers with
// the steps below; framing, write completions, the handshake and failures are handled here once.
//
//   greeting ──query_capabilities──> capabilities ──send_starttls──> starttls ──begin_handshake──>
//   handshake ──after_handshake: query_capabilities(after_tls)──> capabilities_after_tls ──> done
//   (any phase: done, skip_or_fail, fail)
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "protocols/common/line_framer.hpp"
#include "protocols/common/session_machine.hpp"

namespace tlsbridge::protocols {

class line_opener : public backend_opener {
 public:
  action start() override { return read(); }
  action on_read(std::string_view data) final;
  action on_written() final;
  action on_handshake_done() final;
  const std::string& greeting() const override { return greeting_; }
  // The backend offered no upgrade and backend.require_tls is off: the back leg stays plaintext.
  bool upgrade_skipped() const { return skipped_; }

  static constexpr std::size_t max_line = 64 * 1024;

 protected:
  enum class phase { greeting, capabilities, starttls, handshake, capabilities_after_tls, done };

  line_opener(config::back_tls tls, bool require_tls) : tls_(tls), require_tls_(require_tls) {}

  // The protocol's parts: what a line means in each phase.
  virtual action on_greeting(const std::string& line) = 0;
  virtual action on_capability_line(const std::string& line, bool after_tls) = 0;
  virtual action on_starttls_reply(const std::string& line) = 0;
  virtual action after_handshake() = 0;

  // The steps a protocol part answers with.
  static action read() { return {action::kind::read, {}}; }
  action done();
  action fail(std::string reason);
  action skip_or_fail(std::string reason);  // no upgrade: fail under require_tls, else plaintext
  action query_capabilities(std::string command, bool after_tls);
  action send_starttls(std::string command);
  // After the backend's positive STARTTLS/STLS reply; `verb` names it in a failure.
  action begin_handshake(std::string_view verb);

  bool starttls_wanted() const { return tls_ == config::back_tls::starttls; }
  bool require_tls() const { return require_tls_; }

  std::string greeting_;

 private:
  action write(phase next, std::string command);
  action on_line(const std::string& line);

  config::back_tls tls_;
  bool require_tls_;
  phase phase_ = phase::greeting;
  bool writing_ = false;  // a command is being written: its answer is read after on_written
  bool failed_ = false;
  bool skipped_ = false;
  line_framer lines_{max_line};
};

}  // namespace tlsbridge::protocols
