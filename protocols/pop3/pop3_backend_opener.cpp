#include "protocols/pop3/pop3_backend_opener.hpp"

#include "protocols/pop3/pop3_syntax.hpp"

namespace tlsbridge::protocols::pop3 {

using action = backend_opener::action;

namespace {
bool positive(std::string_view line) {
  return line.starts_with("+OK");
}
}  // namespace

action pop3_backend_opener::fail(std::string reason) {
  state_ = state::failed;
  return {action::kind::fail, std::move(reason)};
}

action pop3_backend_opener::skip_or_fail(std::string reason) {
  if (require_tls_) return fail(std::move(reason) + " (backend.require_tls)");
  skipped_ = true;
  state_ = state::done;
  return {action::kind::done, {}};
}

action pop3_backend_opener::on_read(std::string_view data) {
  lines_.append(data);
  std::string line;
  for (;;) {
    switch (lines_.next_line(line)) {
      case line_framer::status::need_more:
        return {action::kind::read, {}};
      case line_framer::status::too_long:
        return fail("backend: response line over 64 KiB during setup");
      case line_framer::status::line:
        break;
    }
    action next = on_line(line);
    if (next.what != action::kind::read) return next;
  }
}

action pop3_backend_opener::on_line(const std::string& line) {
  switch (state_) {
    case state::read_greeting:
      if (!positive(line)) return fail("backend greeting: " + line);
      greeting_ = line + "\r\n";
      if (tls_ != config::back_tls::starttls) {
        state_ = state::done;
        return {action::kind::done, {}};
      }
      state_ = state::sent_capa;
      return {action::kind::write, "CAPA\r\n"};
    case state::read_capa_status:
      if (positive(line)) {
        capa_known_ = true;
        state_ = state::read_capa_body;
        return {action::kind::read, {}};
      }
      // No CAPA (RFC 1939-only server): try STLS and let its answer decide.
      state_ = state::sent_stls;
      return {action::kind::write, "STLS\r\n"};
    case state::read_capa_body:
      if (line != ".") {
        if (upper(line) == "STLS") stls_listed_ = true;
        return {action::kind::read, {}};
      }
      if (!stls_listed_) return skip_or_fail("backend does not offer STLS");
      state_ = state::sent_stls;
      return {action::kind::write, "STLS\r\n"};
    case state::read_stls:
      if (!positive(line)) {
        if (capa_known_) return fail("backend STLS: " + line);
        return skip_or_fail("backend STLS: " + line);
      }
      // Mirror of CVE-2011-0411: bytes after the +OK and before the handshake are not trusted.
      if (lines_.buffered() != 0) return fail("backend sent data after its STLS reply");
      state_ = state::handshaking;
      return {action::kind::handshake, {}};
    default:
      return fail("backend sent data out of turn: " + line);
  }
}

action pop3_backend_opener::on_written() {
  switch (state_) {
    case state::sent_capa:
      state_ = state::read_capa_status;
      return {action::kind::read, {}};
    case state::sent_stls:
      state_ = state::read_stls;
      return {action::kind::read, {}};
    default:
      return fail("internal: unexpected write completion");
  }
}

action pop3_backend_opener::on_handshake_done() {
  if (state_ != state::handshaking) return fail("internal: unexpected handshake completion");
  state_ = state::done;
  return {action::kind::done, {}};
}

}  // namespace tlsbridge::protocols::pop3
