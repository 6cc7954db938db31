#include "protocols/pop3/pop3_backend_opener.hpp"

#include "common/ascii_case.hpp"
#include "protocols/pop3/pop3_syntax.hpp"

namespace tlsbridge::protocols::pop3 {

using action = backend_opener::action;

namespace {
bool positive(std::string_view line) {
  return line.starts_with("+OK");
}
}  // namespace

action pop3_backend_opener::on_greeting(const std::string& line) {
  if (!positive(line)) return fail("backend greeting: " + line);
  greeting_ = line + "\r\n";
  if (!starttls_wanted()) return done();
  return query_capabilities("CAPA\r\n", false);
}

action pop3_backend_opener::on_capability_line(const std::string& line, bool after_tls) {
  (void)after_tls;  // POP3 keeps the greeting: no second CAPA over TLS
  if (!capa_known_) {
    if (positive(line)) {
      capa_known_ = true;
      return read();
    }
    // No CAPA (RFC 1939-only server): try STLS and let its answer decide.
    return send_starttls("STLS\r\n");
  }
  if (line != ".") {
    if (ascii::upper(line) == "STLS") stls_listed_ = true;
    return read();
  }
  if (!stls_listed_) return skip_or_fail("backend does not offer STLS");
  return send_starttls("STLS\r\n");
}

action pop3_backend_opener::on_starttls_reply(const std::string& line) {
  if (!positive(line)) {
    if (capa_known_) return fail("backend STLS: " + line);
    return skip_or_fail("backend STLS: " + line);
  }
  return begin_handshake("STLS");
}

}  // namespace tlsbridge::protocols::pop3
