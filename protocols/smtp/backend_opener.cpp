#include "protocols/smtp/backend_opener.hpp"

#include "protocols/smtp/ehlo_rewriter.hpp"

namespace tlsbridge::protocols::smtp {

using action = backend_opener::action;

action smtp_backend_opener::start() { return {action::kind::read, {}}; }

action smtp_backend_opener::fail(std::string reason) {
  state_ = state::failed;
  return {action::kind::fail, std::move(reason)};
}

action smtp_backend_opener::on_read(std::string_view data) {
  parser_.append(data);
  reply r;
  switch (parser_.next(r)) {
    case reply_parser::status::need_more:
      return {action::kind::read, {}};
    case reply_parser::status::error:
      return fail("backend: " + parser_.error());
    case reply_parser::status::reply_ready:
      break;
  }
  switch (state_) {
    case state::read_greeting:
      if (r.code != 220) return fail("backend greeting: " + r.text());
      greeting_ = r.wire();
      if (tls_ != config::back_tls::starttls) {
        state_ = state::done;
        return {action::kind::done, {}};
      }
      state_ = state::sent_ehlo;
      return {action::kind::write, "EHLO " + hostname_ + "\r\n"};
    case state::read_ehlo:
      if (r.code != 250) return fail("backend EHLO: " + r.text());
      if (!ehlo_has_extension(r, "STARTTLS")) {
        if (require_tls_) return fail("backend does not offer STARTTLS (backend.require_tls)");
        skipped_ = true;
        state_ = state::done;
        return {action::kind::done, {}};
      }
      state_ = state::sent_starttls;
      return {action::kind::write, "STARTTLS\r\n"};
    case state::read_starttls:
      if (r.code != 220) return fail("backend STARTTLS: " + r.text());
      // Mirror of CVE-2011-0411 on our side: a backend that sends bytes after its 220 and before
      // the handshake is not to be trusted with the session.
      if (parser_.buffered() != 0) return fail("backend sent data after its STARTTLS reply");
      state_ = state::handshaking;
      return {action::kind::handshake, {}};
    default:
      return fail("backend sent data out of turn");
  }
}

action smtp_backend_opener::on_written() {
  switch (state_) {
    case state::sent_ehlo:
      state_ = state::read_ehlo;
      return {action::kind::read, {}};
    case state::sent_starttls:
      state_ = state::read_starttls;
      return {action::kind::read, {}};
    default:
      return fail("internal: unexpected write completion");
  }
}

action smtp_backend_opener::on_handshake_done() {
  if (state_ != state::handshaking) return fail("internal: unexpected handshake completion");
  state_ = state::done;
  return {action::kind::done, {}};
}

}  // namespace tlsbridge::protocols::smtp
