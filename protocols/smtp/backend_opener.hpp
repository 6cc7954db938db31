// Opens an SMTP back leg (before the client is answered): reads the backend's greeting and, for
// `backend.tls = "starttls"`, sends `EHLO <server.hostname>` and `STARTTLS` and asks the driver
// for the client-side handshake (RFC 3207). The greeting read here is what the client will see.
//
//   read_greeting ──220──> (none/implicit: done)
//                  └─────> send_ehlo -> read_ehlo ──STARTTLS offered──> send_starttls
//                                          │                            -> read_220 -> handshake -> done
//                                          └─not offered: require_tls ? fail : done (plaintext)
#pragma once

#include <string>

#include "config/config.hpp"
#include "protocols/common/session_machine.hpp"
#include "protocols/smtp/smtp_reply.hpp"

namespace tlsbridge::protocols::smtp {

class smtp_backend_opener final : public backend_opener {
 public:
  smtp_backend_opener(config::back_tls tls, std::string hostname, bool require_tls)
      : tls_(tls), hostname_(std::move(hostname)), require_tls_(require_tls) {}

  action start() override;
  action on_read(std::string_view data) override;
  action on_written() override;
  action on_handshake_done() override;
  const std::string& greeting() const override { return greeting_; }
  // True when the back leg stayed plaintext because the backend offered no STARTTLS.
  bool upgraded_skipped() const { return skipped_; }

 private:
  enum class state { read_greeting, sent_ehlo, read_ehlo, sent_starttls, read_starttls,
                     handshaking, done, failed };
  action fail(std::string reason);

  config::back_tls tls_;
  std::string hostname_;
  bool require_tls_;
  state state_ = state::read_greeting;
  reply_parser parser_;
  std::string greeting_;
  bool skipped_ = false;
};

}  // namespace tlsbridge::protocols::smtp
