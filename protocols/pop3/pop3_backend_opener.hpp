// Opens a POP3 back leg (SPEC §4 "IMAP and POP3"): reads the +OK greeting and, for
// `backend.tls = "starttls"`, asks CAPA whether STLS is offered (RFC 2449, RFC 2595 §4), sends
// STLS and asks the driver for the handshake. The greeting (with its APOP timestamp) is what the
// client will see.
//
//   read_greeting ──+OK──> (none/implicit: done)
//     │ -ERR: fail   └───> CAPA -> read_capa ──STLS listed, or CAPA unknown──> STLS -> read_stls
//     │                                      └─not listed: require_tls ? fail : done (plaintext)
//     └ read_stls ──+OK──> handshake -> done;  -ERR: require_tls ? fail : done (plaintext)
#pragma once

#include <string>

#include "config/config.hpp"
#include "protocols/common/line_framer.hpp"
#include "protocols/common/session_machine.hpp"

namespace tlsbridge::protocols::pop3 {

class pop3_backend_opener final : public backend_opener {
 public:
  pop3_backend_opener(config::back_tls tls, bool require_tls)
      : tls_(tls), require_tls_(require_tls) {}

  action start() override { return {action::kind::read, {}}; }
  action on_read(std::string_view data) override;
  action on_written() override;
  action on_handshake_done() override;
  const std::string& greeting() const override { return greeting_; }
  bool upgrade_skipped() const { return skipped_; }

  static constexpr std::size_t max_line = 64 * 1024;

 private:
  enum class state {
    read_greeting,
    sent_capa,
    read_capa_status,
    read_capa_body,
    sent_stls,
    read_stls,
    handshaking,
    done,
    failed
  };
  action fail(std::string reason);
  action on_line(const std::string& line);
  action skip_or_fail(std::string reason);

  config::back_tls tls_;
  bool require_tls_;
  state state_ = state::read_greeting;
  line_framer lines_{max_line};
  std::string greeting_;
  bool stls_listed_ = false;
  bool capa_known_ = false;
  bool skipped_ = false;
};

}  // namespace tlsbridge::protocols::pop3
