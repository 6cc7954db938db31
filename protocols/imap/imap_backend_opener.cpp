#include "protocols/imap/imap_backend_opener.hpp"

#include "protocols/imap/imap_syntax.hpp"

namespace tlsbridge::protocols::imap {

using action = backend_opener::action;

action imap_backend_opener::fail(std::string reason) {
  state_ = state::failed;
  return {action::kind::fail, std::move(reason)};
}

action imap_backend_opener::on_read(std::string_view data) {
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

action imap_backend_opener::on_line(const std::string& line) {
  switch (state_) {
    case state::read_greeting: {
      if (istarts_with(line, "* BYE")) return fail("backend greeting: " + line);
      const bool preauth = istarts_with(line, "* PREAUTH");
      if (!istarts_with(line, "* OK") && !preauth) return fail("backend greeting: " + line);
      greeting_ = line + "\r\n";
      if (auto caps = capabilities_in(line)) {
        capabilities_ = *caps;
        have_capabilities_ = true;
      }
      if (tls_ != config::back_tls::starttls) {
        state_ = state::done;
        return {action::kind::done, {}};
      }
      // RFC 9051 §6.2.1: STARTTLS only in the not-authenticated state.
      if (preauth) return fail("backend greeting is PREAUTH: STARTTLS is not possible");
      if (have_capabilities_) return after_capabilities();
      state_ = state::sent_capability;
      return {action::kind::write, "A0 CAPABILITY\r\n"};
    }
    case state::read_capability:
    case state::read_capability_after_tls: {
      if (auto caps = capabilities_in(line); caps && istarts_with(line, "* ")) {
        capabilities_ = *caps;
        have_capabilities_ = true;
        return {action::kind::read, {}};
      }
      const bool after_tls = state_ == state::read_capability_after_tls;
      const std::string tag = after_tls ? "A2 " : "A0 ";
      if (line.starts_with("* ")) return {action::kind::read, {}};  // other untagged data
      if (!line.starts_with(tag)) return fail("backend sent an unexpected line: " + line);
      if (!istarts_with(line.substr(3), "OK")) return fail("backend CAPABILITY: " + line);
      if (auto caps = capabilities_in(line)) {
        capabilities_ = *caps;
        have_capabilities_ = true;
      }
      if (!after_tls) return after_capabilities();
      if (have_capabilities_)
        greeting_ =
            replace_capabilities(greeting_.substr(0, greeting_.size() - 2), capabilities_) + "\r\n";
      state_ = state::done;
      return {action::kind::done, {}};
    }
    case state::read_starttls:
      if (line.starts_with("* ")) return {action::kind::read, {}};
      if (!line.starts_with("A1 ")) return fail("backend sent an unexpected line: " + line);
      if (!istarts_with(line.substr(3), "OK")) return fail("backend STARTTLS: " + line);
      // Mirror of CVE-2011-0411 on our side: bytes after the OK and before the handshake would be
      // plaintext injected into the TLS session.
      if (lines_.buffered() != 0) return fail("backend sent data after its STARTTLS reply");
      state_ = state::handshaking;
      return {action::kind::handshake, {}};
    default:
      return fail("backend sent data out of turn: " + line);
  }
}

action imap_backend_opener::after_capabilities() {
  if (!has_capability(capabilities_, "STARTTLS")) {
    if (require_tls_) return fail("backend does not offer STARTTLS (backend.require_tls)");
    skipped_ = true;
    state_ = state::done;
    return {action::kind::done, {}};
  }
  state_ = state::sent_starttls;
  return {action::kind::write, "A1 STARTTLS\r\n"};
}

action imap_backend_opener::on_written() {
  switch (state_) {
    case state::sent_capability:
      state_ = state::read_capability;
      return {action::kind::read, {}};
    case state::sent_starttls:
      state_ = state::read_starttls;
      return {action::kind::read, {}};
    case state::sent_capability_after_tls:
      state_ = state::read_capability_after_tls;
      return {action::kind::read, {}};
    default:
      return fail("internal: unexpected write completion");
  }
}

action imap_backend_opener::on_handshake_done() {
  if (state_ != state::handshaking) return fail("internal: unexpected handshake completion");
  lines_.clear();
  state_ = state::sent_capability_after_tls;
  return {action::kind::write, "A2 CAPABILITY\r\n"};
}

}  // namespace tlsbridge::protocols::imap
