// What the three mail machines (SMTP, IMAP, POP3) share in their settings: the front leg's TLS
// mode and whether credentials need it, the name the proxy answers with, whether audit records
// carry the envelope, and how many pipelined commands may await their replies (reply_queue). Each
// machine's `machine_settings` adds its own line and buffer limits.
#pragma once

#include <cstddef>
#include <string>

#include "config/config.hpp"

namespace tlsbridge::protocols {

struct mail_settings {
  config::front_tls front = config::front_tls::starttls;
  bool require_tls = true;
  std::string hostname = "localhost";
  bool audit_envelope = true;
  std::size_t max_pending_commands = 1000;  // pipelined commands awaiting replies
};

}  // namespace tlsbridge::protocols
