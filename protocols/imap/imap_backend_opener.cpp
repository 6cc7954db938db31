#include "protocols/imap/imap_backend_opener.hpp"

#include "protocols/imap/imap_syntax.hpp"

namespace tlsbridge::protocols::imap {

using action = backend_opener::action;

void imap_backend_opener::note_capabilities(const std::string& line) {
  if (auto caps = capabilities_in(line)) {
    capabilities_ = *caps;
    have_capabilities_ = true;
  }
}

action imap_backend_opener::on_greeting(const std::string& line) {
  if (istarts_with(line, "* BYE")) return fail("backend greeting: " + line);
  const bool preauth = istarts_with(line, "* PREAUTH");
  if (!istarts_with(line, "* OK") && !preauth) return fail("backend greeting: " + line);
  greeting_ = line + "\r\n";
  note_capabilities(line);
  if (!starttls_wanted()) return done();
  // RFC 9051 §6.2.1: STARTTLS only in the not-authenticated state.
  if (preauth) return fail("backend greeting is PREAUTH: STARTTLS is not possible");
  if (have_capabilities_) return after_capabilities();
  return query_capabilities("A0 CAPABILITY\r\n", false);
}

action imap_backend_opener::on_capability_line(const std::string& line, bool after_tls) {
  if (auto caps = capabilities_in(line); caps && istarts_with(line, "* ")) {
    capabilities_ = *caps;
    have_capabilities_ = true;
    return read();
  }
  const std::string tag = after_tls ? "A2 " : "A0 ";
  if (line.starts_with("* ")) return read();  // other untagged data
  if (!line.starts_with(tag)) return fail("backend sent an unexpected line: " + line);
  if (!istarts_with(line.substr(3), "OK")) return fail("backend CAPABILITY: " + line);
  note_capabilities(line);
  if (!after_tls) return after_capabilities();
  if (have_capabilities_)
    greeting_ =
        replace_capabilities(greeting_.substr(0, greeting_.size() - 2), capabilities_) + "\r\n";
  return done();
}

action imap_backend_opener::on_starttls_reply(const std::string& line) {
  if (line.starts_with("* ")) return read();
  if (!line.starts_with("A1 ")) return fail("backend sent an unexpected line: " + line);
  if (!istarts_with(line.substr(3), "OK")) return fail("backend STARTTLS: " + line);
  return begin_handshake("STARTTLS");
}

action imap_backend_opener::after_capabilities() {
  if (!has_capability(capabilities_, "STARTTLS"))
    return skip_or_fail("backend does not offer STARTTLS");
  return send_starttls("A1 STARTTLS\r\n");
}

// A server announces a different list over TLS (AUTH=PLAIN appears, LOGINDISABLED goes).
action imap_backend_opener::after_handshake() {
  return query_capabilities("A2 CAPABILITY\r\n", true);
}

}  // namespace tlsbridge::protocols::imap
