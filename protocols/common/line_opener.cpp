#include "protocols/common/line_opener.hpp"

namespace tlsbridge::protocols {

using action = backend_opener::action;

action line_opener::done() {
  phase_ = phase::done;
  return {action::kind::done, {}};
}

action line_opener::fail(std::string reason) {
  failed_ = true;
  return {action::kind::fail, std::move(reason)};
}

action line_opener::skip_or_fail(std::string reason) {
  if (require_tls_) return fail(std::move(reason) + " (backend.require_tls)");
  skipped_ = true;
  return done();
}

action line_opener::write(phase next, std::string command) {
  phase_ = next;
  writing_ = true;
  return {action::kind::write, std::move(command)};
}

action line_opener::query_capabilities(std::string command, bool after_tls) {
  return write(after_tls ? phase::capabilities_after_tls : phase::capabilities, std::move(command));
}

action line_opener::send_starttls(std::string command) {
  return write(phase::starttls, std::move(command));
}

action line_opener::begin_handshake(std::string_view verb) {
  // Mirror of CVE-2011-0411 on our side: bytes after the positive reply and before the handshake
  // would be plaintext injected into the TLS session.
  if (lines_.buffered() != 0)
    return fail("backend sent data after its " + std::string(verb) + " reply");
  phase_ = phase::handshake;
  return {action::kind::handshake, {}};
}

action line_opener::on_read(std::string_view data) {
  lines_.append(data);
  std::string line;
  for (;;) {
    switch (lines_.next_line(line)) {
      case line_framer::status::need_more:
        return read();
      case line_framer::status::too_long:
        return fail("backend: response line over 64 KiB during setup");
      case line_framer::status::line:
        break;
    }
    action next = on_line(line);
    if (next.what != action::kind::read) return next;
  }
}

action line_opener::on_line(const std::string& line) {
  if (failed_ || writing_) return fail("backend sent data out of turn: " + line);
  switch (phase_) {
    case phase::greeting:
      return on_greeting(line);
    case phase::capabilities:
      return on_capability_line(line, false);
    case phase::capabilities_after_tls:
      return on_capability_line(line, true);
    case phase::starttls:
      return on_starttls_reply(line);
    case phase::handshake:
    case phase::done:
      break;
  }
  return fail("backend sent data out of turn: " + line);
}

action line_opener::on_written() {
  if (failed_ || !writing_) return fail("internal: unexpected write completion");
  writing_ = false;
  return read();
}

action line_opener::on_handshake_done() {
  if (failed_ || phase_ != phase::handshake)
    return fail("internal: unexpected handshake completion");
  lines_.clear();
  return after_handshake();
}

}  // namespace tlsbridge::protocols
