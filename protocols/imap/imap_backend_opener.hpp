// Opens an IMAP back leg (the protocol parts of a line_opener, protocols/common/line_opener.hpp):
// reads the greeting and, for `backend.tls = "starttls"`, learns the capabilities (from the
// greeting's [CAPABILITY] code, else a CAPABILITY command), sends STARTTLS (RFC 9051 §6.2.1), asks
// the driver for the handshake, and then asks CAPABILITY again: a server announces a different
// list over TLS (AUTH=PLAIN appears, LOGINDISABLED goes), and that list is what the client's
// greeting must show. Phases as in line_opener:
//
//   greeting ──* OK──> (none/implicit: done)
//     │  * BYE: fail └───> [caps unknown: A0 CAPABILITY -> capabilities]
//     │                   ──STARTTLS listed──> A1 STARTTLS -> starttls ──A1 OK──> handshake
//     │                   └─not listed: require_tls ? fail : done (plaintext)
//     └ handshake done -> A2 CAPABILITY -> capabilities_after_tls -> done
#pragma once

#include <string>

#include "config/config.hpp"
#include "protocols/common/line_opener.hpp"

namespace tlsbridge::protocols::imap {

class imap_backend_opener final : public line_opener {
 public:
  imap_backend_opener(config::back_tls tls, bool require_tls) : line_opener(tls, require_tls) {}

  // greeting(): the backend's greeting line (with CRLF), its capability code replaced by the list
  // the backend announced last (after the back leg's STARTTLS, if there was one).

 private:
  action on_greeting(const std::string& line) override;
  action on_capability_line(const std::string& line, bool after_tls) override;
  action on_starttls_reply(const std::string& line) override;
  action after_handshake() override;
  action after_capabilities();
  void note_capabilities(const std::string& line);

  std::string capabilities_;
  bool have_capabilities_ = false;
};

}  // namespace tlsbridge::protocols::imap
