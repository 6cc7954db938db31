// Opens a POP3 back leg (the protocol parts of a line_opener, protocols/common/line_opener.hpp):
// reads the +OK greeting and, for `backend.tls = "starttls"`, asks CAPA whether STLS is offered
// (RFC 2449, RFC 2595 §4), sends STLS and asks the driver for the handshake. The greeting (with
// its APOP timestamp) is what the client will see. Phases as in line_opener:
//
//   greeting ──+OK──> (none/implicit: done)
//     │ -ERR: fail └───> CAPA -> capabilities ──STLS listed, or CAPA unknown──> STLS -> starttls
//     │                                       └─not listed: require_tls ? fail : done (plaintext)
//     └ starttls ──+OK──> handshake -> done;  -ERR: require_tls ? fail : done (plaintext)
#pragma once

#include <string>

#include "config/config.hpp"
#include "protocols/common/line_opener.hpp"

namespace tlsbridge::protocols::pop3 {

class pop3_backend_opener final : public line_opener {
 public:
  pop3_backend_opener(config::back_tls tls, bool require_tls) : line_opener(tls, require_tls) {}

 private:
  action on_greeting(const std::string& line) override;
  action on_capability_line(const std::string& line, bool after_tls) override;
  action on_starttls_reply(const std::string& line) override;
  action after_handshake() override { return done(); }

  bool capa_known_ = false;  // the backend answered CAPA +OK; its list is being read
  bool stls_listed_ = false;
};

}  // namespace tlsbridge::protocols::pop3
