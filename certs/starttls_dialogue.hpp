// The client side of the plaintext opening a probe performs before its TLS handshake on a
// STARTTLS port: SMTP (RFC 3207: greeting, EHLO, STARTTLS, 220), IMAP (RFC 3501 §6.2.1: greeting,
// "a STARTTLS", "a OK") and POP3 (RFC 2595 §4: greeting, STLS, +OK). Pure and I/O-free: the
// driver (certs/probe.cpp) feeds the bytes it read and performs the step it gets back, so the
// dialogue is unit-tested with scripted server replies, split and coalesced any way.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "protocols/common/line_framer.hpp"
#include "protocols/smtp/smtp_reply.hpp"

namespace tlsbridge::certs {

enum class starttls_protocol { none, smtp, imap, pop3 };

const char* to_string(starttls_protocol p);

// What the driver does next. send: write `data`, then read and call on_data. read: read more
// and call on_data. ready: the server said go, start the TLS handshake now. failed: `data` says
// why (the server's own reply text included), no handshake.
struct starttls_step {
  enum class action { send, read, ready, failed };
  action what = action::read;
  std::string data;
};

// States (the expected server reply in each):
//   greeting --(SMTP 220 / IMAP "* OK" / POP3 "+OK")--> send EHLO (SMTP) or STARTTLS/STLS
//   ehlo     --(250)--> send STARTTLS                                             [SMTP only]
//   starttls --(SMTP 220 / IMAP "a OK" / POP3 "+OK"; nothing buffered after it)--> ready
//   anything else --> failed (done and failed are final)
class starttls_dialogue {
 public:
  // Longest server line accepted by the IMAP and POP3 paths (SMTP uses its reply parser's).
  static constexpr std::size_t max_line = 4096;

  explicit starttls_dialogue(starttls_protocol protocol, std::string ehlo_name = "probe.tlsbridge");

  // The first step: always a read (the server speaks first), or ready for `none`.
  starttls_step start();
  // Bytes read from the server.
  starttls_step on_data(std::string_view bytes);
  // The server closed the connection.
  starttls_step on_eof();

 private:
  enum class state { greeting, ehlo, starttls, done, failed };

  starttls_step smtp_step();
  starttls_step line_step();  // IMAP and POP3
  starttls_step fail(std::string why);
  starttls_step after_starttls_reply(std::size_t leftover);
  const char* state_name() const;

  starttls_protocol protocol_;
  std::string ehlo_name_;
  state state_ = state::greeting;
  protocols::smtp::reply_parser smtp_;
  protocols::line_framer lines_{max_line};
};

}  // namespace tlsbridge::certs
