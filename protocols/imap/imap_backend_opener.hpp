// Opens an IMAP back leg (SPEC §4 "IMAP and POP3", same shape as SMTP's): reads the greeting and,
// for `backend.tls = "starttls"`, learns the capabilities (from the greeting's [CAPABILITY] code,
// else a CAPABILITY command), sends STARTTLS (RFC 9051 §6.2.1), asks the driver for the handshake,
// and then asks CAPABILITY again: a server announces a different list over TLS (AUTH=PLAIN appears,
// LOGINDISABLED goes), and that list is what the client's greeting must show.
//
//   read_greeting ──* OK──> (none/implicit: done)
//     │  * BYE: fail  └────> [caps unknown: A0 CAPABILITY -> read_caps]
//     │                     ──STARTTLS listed──> A1 STARTTLS -> read_starttls ──A1 OK──> handshake
//     │                     └─not listed: require_tls ? fail : done (plaintext)
//     └ handshake done -> A2 CAPABILITY -> read_caps_after_tls -> done
#pragma once

#include <string>

#include "config/config.hpp"
#include "protocols/common/line_framer.hpp"
#include "protocols/common/session_machine.hpp"

namespace tlsbridge::protocols::imap {

class imap_backend_opener final : public backend_opener {
 public:
  imap_backend_opener(config::back_tls tls, bool require_tls)
      : tls_(tls), require_tls_(require_tls) {}

  action start() override { return {action::kind::read, {}}; }
  action on_read(std::string_view data) override;
  action on_written() override;
  action on_handshake_done() override;
  // The backend's greeting line (with CRLF), its capability code replaced by the list the backend
  // announced last (after the back leg's STARTTLS, if there was one).
  const std::string& greeting() const override { return greeting_; }
  bool upgrade_skipped() const { return skipped_; }

  static constexpr std::size_t max_line = 64 * 1024;

 private:
  enum class state {
    read_greeting,
    sent_capability,
    read_capability,
    sent_starttls,
    read_starttls,
    handshaking,
    sent_capability_after_tls,
    read_capability_after_tls,
    done,
    failed
  };
  action fail(std::string reason);
  action after_capabilities();
  action on_line(const std::string& line);

  config::back_tls tls_;
  bool require_tls_;
  state state_ = state::read_greeting;
  line_framer lines_{max_line};
  std::string greeting_;
  std::string capabilities_;
  bool have_capabilities_ = false;
  bool skipped_ = false;
};

}  // namespace tlsbridge::protocols::imap
