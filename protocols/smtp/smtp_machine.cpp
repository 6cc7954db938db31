#include "protocols/smtp/smtp_machine.hpp"

#include <algorithm>
#include <boost/json/array.hpp>
#include <optional>

#include "protocols/common/sasl_plain.hpp"
#include "protocols/smtp/ehlo_rewriter.hpp"

namespace tlsbridge::protocols::smtp {

namespace {

bool allowed_before_tls(verb v) {
  // With require_tls only these pass before front TLS (RFC 3207 §4).
  switch (v) {
    case verb::ehlo:
    case verb::helo:
    case verb::starttls:
    case verb::noop:
    case verb::rset:
    case verb::quit:
      return true;
    default:
      return false;
  }
}

bool exchange_internal(verb v) {
  return v == verb::x_anonymoustls || v == verb::xexch50 || v == verb::xshadow ||
         v == verb::xshadowrequest || v == verb::xrdst;
}

}  // namespace

smtp_machine::pending smtp_machine::expect(verb cmd, std::string text, bool message_end) {
  pending p;
  p.cmd = cmd;
  p.text = std::move(text);
  p.message_end = message_end;
  return p;
}

smtp_machine::smtp_machine(machine_settings settings, std::string backend_greeting_wire)
    : mail_machine(std::move(settings), std::move(backend_greeting_wire)) {
  // The backend's 220 (its internal host name, perhaps over several lines) becomes one line in
  // the proxy's words (RFC 5321 §4.2: "220 <domain> <text>").
  if (!settings_.greeting.empty()) greeting_ = "220 " + settings_.greeting + "\r\n";
}

namespace {

// The proxy's answer to an AUTH the auth guard blocked (RFC 4954 §6: 454 4.7.0, temporary).
constexpr std::string_view auth_blocked_reply =
    "454 4.7.0 Too many failed authentication attempts, try again later\r\n";

}  // namespace

void smtp_machine::note_auth_start(std::string_view argument) {
  // "PLAIN [initial-response]" / "LOGIN [initial-response]" (RFC 4954 §4)
  const auto space = argument.find(' ');
  auth_mechanism_ = std::string(argument.substr(0, space));
  for (auto& c : auth_mechanism_) c = (c >= 'a' && c <= 'z') ? static_cast<char>(c - 32) : c;
  auth_responses_ = 0;
  auth_candidate_.clear();
  if (space != std::string_view::npos) note_sasl_response(argument.substr(space + 1));
}

void smtp_machine::note_sasl_response(std::string_view line) {
  // PLAIN: the one response holds the user (RFC 4616); LOGIN: the first response is the user name,
  // base64 (draft-murchison-sasl-login). Only for the audit record; the password is never kept.
  const std::size_t n = auth_responses_++;
  if (n != 0 || line == "=" || line == "*") return;
  if (auth_mechanism_ == "PLAIN") {
    auth_candidate_ = sasl_plain_user(line).value_or("");
  } else if (auth_mechanism_ == "LOGIN" && line.size() <= 8192) {
    auth_candidate_ = base64_decode(line).value_or("");
  }
}

void smtp_machine::on_start(step_list& out) {
  out.send_client(greeting_);
}

void smtp_machine::read_client(step_list& out) {
  std::string line;
  while (may_read_client()) {
    switch (mode_) {
      case mode::data: {
        std::string_view in = client_.peek();
        if (in.empty()) return;
        std::string forward;
        auto r = scanner_->scan(in, forward);
        client_.consume(r.consumed);
        if (!forward.empty()) out.send_backend(std::move(forward));
        if (r.violation) {
          // SMTP smuggling, smtp_bare_lf = reject: drop the back leg before any final dot, so the
          // backend never commits the message, and tell the client why.
          out.abort_backend();
          count_refusal("smtp.bare_lf");
          close_with(
              "554 5.6.0 Message contains a bare CR or LF, refused (SMTP smuggling)\r\n"
              "421 4.4.2 " +
                  settings_.hostname + " closing connection\r\n",
              "refused_policy", "bare CR/LF in message data (smtp_bare_lf = reject)", out);
          return;
        }
        if (!r.end_of_data) return;
        if (observer_) observer_->message_end();
        pending end = expect(verb::data, {}, true);
        end.size = scanner_->message_bytes();
        if (scanner_->bare_lf_count() + scanner_->bare_cr_count() > 0)
          facts_.reason =
              "bare CR/LF in message data (" +
              std::string(settings_.bare_lf == config::bare_lf_mode::normalize ? "normalized"
                                                                               : "passed") +
              ")";
        scanner_.reset();
        mode_ = mode::command;
        pending_.expect(std::move(end));
        break;
      }
      case mode::bdat: {
        std::string_view in = client_.peek();
        if (in.empty()) return;
        std::size_t n =
            static_cast<std::size_t>(std::min<std::uint64_t>(bdat_remaining_, in.size()));
        if (!bdat_discard_) out.send_backend(std::string(in.substr(0, n)));
        client_.consume(n);
        bdat_remaining_ -= n;
        if (bdat_remaining_ == 0) {
          mode_ = mode::command;
          bdat_discard_ = false;
        }
        break;
      }
      case mode::awaiting_data_reply:
      case mode::awaiting_auth_reply:
        // The client should wait for 354 (RFC 2920 §3.1) or for the 334 challenge (RFC 4954 §4);
        // hold what it sent early, bounded, until the reply says what those bytes are.
        if (client_.buffered() > settings_.max_held_bytes)
          close_with("421 4.7.0 " + settings_.hostname + " too much data before the " +
                         (mode_ == mode::awaiting_data_reply ? "DATA" : "AUTH") + " reply\r\n",
                     "", "client sent data before the DATA or AUTH reply", out);
        return;
      case mode::quit_sent:
        // RFC 5321 §4.1.1.10: QUIT ends the session; the backend reads nothing after it, so
        // neither does the proxy (nothing after QUIT may be relayed or answered).
        client_.clear();
        return;
      case mode::command:
      case mode::sasl_response: {
        const bool bare_lf = next_line_ends_in_bare_lf();
        switch (client_.next_line(line)) {
          case line_framer::status::need_more:
            maybe_finish_drain(out);
            return;
          case line_framer::status::too_long:
            if (mode_ == mode::sasl_response) {
              handle_sasl_response({}, /*bare_lf=*/true, out);
              break;
            }
            refuse("500 5.5.2 Line too long\r\n",
                   "smtp.line_too_long: command lines are at most 4 KiB", {}, out);
            break;
          case line_framer::status::line:
            if (mode_ == mode::sasl_response)
              handle_sasl_response(line, bare_lf, out);
            else
              handle_command(std::move(line), bare_lf, out);
            break;
        }
        break;
      }
    }
  }
}

bool smtp_machine::next_line_ends_in_bare_lf() const {
  // RFC 5321 §2.3.8: a line ends with CRLF. The framer also ends one at a bare LF; whether this
  // one did decides whether it is refused. Skip what the framer is still discarding (the rest of
  // an over-long line) to look at the line it will return.
  std::string_view in = client_.peek();
  std::size_t from = 0;
  if (client_.discarding()) {
    const auto lf = in.find('\n');
    if (lf == std::string_view::npos) return false;
    from = lf + 1;
  }
  const auto lf = in.find('\n', from);
  return lf != std::string_view::npos && (lf == from || in[lf - 1] != '\r');
}

void smtp_machine::handle_command(std::string line, bool bare_lf, step_list& out) {
  if (pending_.size() >= settings_.max_pending_commands) {
    close_with("421 4.7.0 " + settings_.hostname + " too many pipelined commands\r\n", "",
               "pipelining limit", out);
    return;
  }
  // A bare CR inside a command line or a bare LF ending it (RFC 5321 §2.3.8: CR and LF only as
  // CRLF) is refused, never relayed: a backend that took a bare CR for a line end would run a
  // second command the proxy never judged ("NOOP\rMAIL FROM:..." passing require_tls as a NOOP),
  // one that does not end lines at a bare LF would join two — the smuggling class the data
  // scanner stops inside DATA.
  if (line.find('\r') != std::string::npos || bare_lf) {
    refuse("500 5.5.2 Bare CR or LF in command line refused\r\n",
           "smtp.bare_cr_lf: bare CR or LF in a command line (RFC 5321 §2.3.8)", verb_prefix(line),
           out);
    return;
  }
  command cmd = parse_command(line);
  const bool offers_starttls = settings_.front == config::front_tls::starttls;

  if (cmd.what == verb::malformed) {
    // "XEXCH50<TAB>", "<SP>DATA", "AUTH<TAB>PLAIN": what the grammar does not read as
    // one command is the proxy's 500, whatever the backend would have made of it.
    refuse("500 5.5.2 Syntax error, command unrecognized\r\n",
           std::string("smtp.verb_syntax: RFC 5321 command syntax: ") + std::string(cmd.problem),
           verb_prefix(line), out);
    return;
  }
  std::optional<bdat_header> bdat;
  if (cmd.what == verb::bdat) {
    bdat = parse_bdat(cmd.argument);
    if (!bdat) {
      // Without a size every backend reads the same way the chunk cannot be framed: what follows
      // might be read as commands on one side and as data on the other. Refused or not, end here.
      audit_refusal("smtp.bdat_syntax: malformed BDAT (RFC 3030 §2)", cmd.name, "501 5.5.4");
      close_with("501 5.5.4 Malformed BDAT command\r\n421 4.7.0 " + settings_.hostname +
                     " closing connection\r\n",
                 "", "malformed BDAT", out);
      return;
    }
  }
  if (!front_encrypted_ && (cmd.what == verb::auth || cmd.what == verb::x_exps)) {
    if (offers_starttls) ++facts_.pretls_auth_attempts;
    refuse("538 5.7.11 Encryption required for requested authentication mechanism\r\n",
           "smtp.auth_before_tls: AUTH before front TLS", cmd.name, out);
    return;
  }
  if (!front_encrypted_ && offers_starttls && settings_.require_tls &&
      !allowed_before_tls(cmd.what)) {
    refuse("530 5.7.0 Must issue a STARTTLS command first\r\n",
           "smtp.require_tls: command before STARTTLS", cmd.name, out);
    skip_refused_chunk(cmd);
    return;
  }
  if (exchange_internal(cmd.what)) {
    refuse("502 5.5.1 " + cmd.name + " is not available through this proxy\r\n",
           "smtp.exchange_internal: Exchange-internal verb", cmd.name, out);
    return;
  }

  switch (cmd.what) {
    case verb::starttls: {
      if (!offers_starttls) {
        refuse("502 5.5.1 STARTTLS not available\r\n",
               "smtp.starttls_not_offered: STARTTLS not offered on this listener", cmd.name, out);
        return;
      }
      if (front_encrypted_) {
        refuse("503 5.5.1 TLS already active\r\n",
               "smtp.starttls_again: STARTTLS after TLS (RFC 3207 §4.2)", cmd.name, out);
        return;
      }
      // RFC 3207 §4.2 (CVE-2011-0411): "there must not be any pending plaintext" — whatever the
      // client pipelined after STARTTLS is discarded, never relayed after the handshake.
      accept_starttls("220 2.0.0 Ready to start TLS\r\n", out);
      return;
    }
    case verb::ehlo:
    case verb::helo:
      need_ehlo_ = false;
      bdat_total_ = 0;
      relay(line, expect(cmd.what, cmd.argument), out);
      if (observer_) observer_->command(cmd, line);
      return;
    case verb::mail:
    case verb::rcpt:
    case verb::data:
    case verb::bdat:
    case verb::auth:    // the backend still has the EHLO from before the front TLS: without this
    case verb::x_exps:  // it would take AUTH the client may not send yet (RFC 3207 §4.2)
      if (need_ehlo_) {
        refuse("503 5.5.1 Send EHLO first after STARTTLS\r\n",
               "smtp.ehlo_after_starttls: no EHLO after STARTTLS (RFC 3207 §4.2)", cmd.name, out);
        skip_refused_chunk(cmd);
        return;
      }
      break;
    default:
      break;
  }

  switch (cmd.what) {
    case verb::mail:
    case verb::rset:
      bdat_total_ = 0;
      break;
    default:
      break;
  }

  switch (cmd.what) {
    case verb::mail:
      relay(line, expect(verb::mail, envelope_address(cmd.argument, "FROM:").value_or("")), out);
      break;
    case verb::rcpt:
      relay(line, expect(verb::rcpt, envelope_address(cmd.argument, "TO:").value_or("")), out);
      break;
    case verb::data:
      relay(line, expect(verb::data), out);
      mode_ = mode::awaiting_data_reply;
      break;
    case verb::auth:
    case verb::x_exps:
      note_auth_start(cmd.argument);
      // The auth guard: the address, and the user when an initial response names it.
      if (auth_check(auth_candidate_, cmd.name) != auth_block::none) {
        auth_candidate_.clear();
        pending_.answer(std::string(auth_blocked_reply), out);
        return;  // never relayed, so not shown to the observer
      }
      // RFC 4954 §4: until the backend's final reply, the client's lines answer its 334
      // challenges; they are read as SASL responses, never as commands.
      relay(line, expect(cmd.what), out);
      mode_ = mode::awaiting_auth_reply;
      break;
    case verb::quit:
      relay(line, expect(verb::quit), out);
      mode_ = mode::quit_sent;
      break;
    case verb::bdat: {
      if (!chunking_offered()) {
        // RFC 3030 §2: BDAT exists only where CHUNKING was offered. A backend without it (Exchange
        // can switch it off) would read the chunk as commands.
        refuse("502 5.5.1 BDAT not available: the server did not offer CHUNKING\r\n",
               "smtp.bdat_without_chunking: BDAT without CHUNKING (RFC 3030 §2)", cmd.name, out);
        skip_refused_chunk(cmd);
        return;
      }
      pending entry = expect(verb::bdat, {}, bdat->last);
      // The size of a BDAT message is the sum of its declared chunk sizes (RFC 3030 §2), known
      // here; the backend's replies, and so the audit event, may come much later.
      bdat_total_ += bdat->size;
      if (bdat->last) {
        entry.size = bdat_total_;
        bdat_total_ = 0;
      }
      relay(line, std::move(entry), out);
      bdat_remaining_ = bdat->size;
      if (bdat_remaining_ > 0) mode_ = mode::bdat;
      break;
    }
    default:
      relay(line, expect(cmd.what), out);
      break;
  }
  if (observer_) observer_->command(cmd, line);
}

void smtp_machine::handle_sasl_response(const std::string& line, bool bare_lf, step_list& out) {
  mode_ = mode::awaiting_auth_reply;
  if (bare_lf || !is_sasl_response(line)) {
    // The backend is waiting for exactly one response line; what is not one (a command, a
    // control character, an over-long line) would be read by a tolerant backend some other
    // way. Cancel the exchange instead (RFC 4954 §4: "*"): the backend's final reply answers
    // the client's line, and both sides are back in command mode.
    audit_refusal("smtp.sasl_response_syntax: SASL response not base64 (RFC 4954 §4): cancelled",
                  {}, "*");
    out.send_backend("*\r\n");
    if (observer_) observer_->sasl_response("*");
    return;
  }
  const bool names_user = auth_responses_ == 0 && auth_candidate_.empty();
  note_sasl_response(line);
  if (names_user && !auth_candidate_.empty() &&
      auth_check(auth_candidate_, "AUTH") != auth_block::none) {
    // The user is blocked: the credentials stay here, the exchange is cancelled (RFC 4954 §4).
    auth_blocked_ = true;
    out.send_backend("*\r\n");
    if (observer_) observer_->sasl_response("*");
    return;
  }
  out.send_backend(line + "\r\n");
  if (observer_) observer_->sasl_response(line);
}

bool smtp_machine::chunking_offered() const {
  // The decision uses only what the backend has said: while an EHLO/HELO is still unanswered the
  // offer is unknown, and unknown is no.
  if (!backend_chunking_) return false;
  for (const auto& p : pending_)
    if (!p.local && (p.relayed.cmd == verb::ehlo || p.relayed.cmd == verb::helo)) return false;
  return true;
}

void smtp_machine::refuse(std::string wire, std::string_view rule, std::string_view name,
                          step_list& out) {
  audit_refusal(rule, name,
                std::string_view(wire).substr(0, std::min<std::size_t>(9, wire.size())));
  pending_.answer(std::move(wire), out);
}

void smtp_machine::audit_refusal(std::string_view rule, std::string_view name,
                                 std::string_view reply) {
  // Every refusal is counted in the conn record's reason; the first max_refusal_events also get
  // their own audit event, so a client cannot flood the audit log with refused lines.
  if (refusals() >= max_refusal_events)
    count_refusal(rule);
  else
    record_refusal(
        std::string(rule),
        {{"event", "smtp.refused"}, {"verb", std::string(name)}, {"reply", std::string(reply)}});
  facts_.reason = std::to_string(refusals()) + " command(s) refused, last: " + std::string(rule);
}

void smtp_machine::skip_refused_chunk(const command& cmd) {
  // RFC 3030 §2 (and Postfix smtpd's skip_bdat): a refused BDAT still frames its chunk. The chunk
  // is read and dropped; it must never be taken for commands. handle_command has closed the
  // session already when the size did not parse.
  if (cmd.what != verb::bdat) return;
  auto header = parse_bdat(cmd.argument);
  if (!header || header->size == 0) return;
  bdat_remaining_ = header->size;
  bdat_discard_ = true;
  mode_ = mode::bdat;
}

void smtp_machine::relay(std::string_view line, pending entry, step_list& out) {
  std::string wire(line);
  wire += "\r\n";
  out.send_backend(std::move(wire));
  pending_.expect(std::move(entry));
}

void smtp_machine::read_backend(std::string_view data, step_list& out) {
  backend_.append(data);
  reply r;
  for (;;) {
    switch (backend_.next(r)) {
      case reply_parser::status::need_more:
        maybe_finish_drain(out);
        return;
      case reply_parser::status::error:
        if (mode_ == mode::data || mode_ == mode::bdat) out.abort_backend();
        close_with("421 4.4.2 " + settings_.hostname + " backend protocol error\r\n",
                   "backend_unavailable", backend_.error(), out);
        return;
      case reply_parser::status::reply_ready:
        handle_reply(r, out);
        if (closed()) return;
        break;
    }
  }
}

void smtp_machine::handle_reply(const reply& r, step_list& out) {
  if (!pending_.backend_turn()) {
    // Nothing was asked. A 421 is the backend closing on us (RFC 5321 §3.8): pass it on.
    if (r.code == 421) {
      close_with(r.wire(), "backend_unavailable", "backend sent 421: " + r.text(), out);
    } else {
      close_with("421 4.4.2 " + settings_.hostname + " backend protocol error\r\n",
                 "backend_unavailable", "unsolicited backend reply: " + r.text(), out);
    }
    return;
  }
  if (r.intermediate()) {
    // A 3xx puts the backend in a mode where it reads the next client bytes as something other
    // than commands. Only two are known: 354 to DATA (message data) and 334 to AUTH/X-EXPS (a
    // SASL response, RFC 4954 §4). Any other would leave the backend in a state the proxy does
    // not know, so the session ends instead.
    const pending& front = pending_.front().relayed;
    if (front.cmd == verb::data && !front.message_end && r.code == 354 &&
        mode_ == mode::awaiting_data_reply) {
      // handled below, with the entry popped
    } else if ((front.cmd == verb::auth || front.cmd == verb::x_exps) && r.code == 334 &&
               mode_ == mode::awaiting_auth_reply) {
      // The entry stays: the backend's final reply to the exchange answers it.
      mode_ = mode::sasl_response;
      out.send_client(r.wire());
      process_client(out);
      return;
    } else {
      if (mode_ == mode::data || mode_ == mode::bdat) out.abort_backend();
      close_with("421 4.4.2 " + settings_.hostname + " backend protocol error\r\n",
                 "backend_unavailable", "unexpected intermediate backend reply: " + r.text(), out);
      return;
    }
  }
  pending p = std::move(pending_.take_front().relayed);

  switch (p.cmd) {
    case verb::helo:
      if (r.positive_completion()) {
        helo_ = std::move(p.text);
        reset_transaction();
      }
      backend_chunking_ = false;  // HELO offers no extensions (RFC 5321 §4.1.1.1)
      out.send_client(r.wire());
      break;
    case verb::ehlo:
      if (r.positive_completion()) {
        helo_ = std::move(p.text);
        reset_transaction();
      }
      backend_chunking_ = r.positive_completion() && ehlo_has_extension(r, "CHUNKING");
      out.send_client(
          rewrite_ehlo_reply(
              r,
              ehlo_view{.offer_starttls =
                            settings_.front == config::front_tls::starttls && !front_encrypted_,
                        .front_encrypted = front_encrypted_},
              std::string_view(settings_.greeting).substr(0, settings_.greeting.find(' ')))
              .wire());
      break;
    case verb::mail:
      if (r.positive_completion()) {
        mail_from_ = std::move(p.text);
        in_transaction_ = true;
        rcpt_.clear();
      }
      out.send_client(r.wire());
      break;
    case verb::rcpt:
      if (r.positive_completion()) rcpt_.push_back(std::move(p.text));
      out.send_client(r.wire());
      break;
    case verb::data:
      if (!p.message_end) {
        if (r.code == 354) {
          mode_ = mode::data;
          scanner_.emplace(settings_.bare_lf);
        } else if (mode_ == mode::awaiting_data_reply) {
          mode_ = mode::command;
        }
        out.send_client(r.wire());
        // Held bytes are now data (354) or commands again.
        pending_.flush(out);
        process_client(out);
        return;
      }
      [[fallthrough]];
    case verb::bdat:
      out.send_client(r.wire());
      if (p.message_end) {
        emit_message_event(r, p.size);
        reset_transaction();
      }
      break;
    case verb::rset:
      // A refused RSET ("RSET x": 501) leaves the backend's transaction as it was.
      if (r.positive_completion()) reset_transaction();
      out.send_client(r.wire());
      break;
    case verb::auth:
    case verb::x_exps:
      // The exchange is over (RFC 4954 §4 final reply): held bytes are commands again.
      if (mode_ == mode::awaiting_auth_reply || mode_ == mode::sasl_response) mode_ = mode::command;
      if (r.positive_completion()) auth_user_ = auth_candidate_;
      if (auth_blocked_) {
        auth_blocked_ = false;
        out.send_client(std::string(auth_blocked_reply));
      } else {
        // The backend's verdict for the auth guard: 235 accepted, 535 refused (RFC 4954 §6; a
        // 454 is the server's trouble, not the credentials'). A failure's reply waits.
        if (r.code == 235 || r.code == 535)
          auth_verdict(auth_candidate_, r.code == 235, "AUTH", out);
        out.send_client(r.wire());
      }
      auth_candidate_.clear();
      pending_.flush(out);
      process_client(out);
      return;
    case verb::quit:
      out.send_client(r.wire());
      close_with({}, "ok", {}, out);
      return;
    default:
      out.send_client(r.wire());
      break;
  }
  pending_.flush(out);
}

void smtp_machine::emit_message_event(const reply& final_reply, std::uint64_t size) {
  boost::json::object e;
  e["event"] = "smtp.message";
  if (settings_.audit_envelope) {
    e["helo"] = helo_;
    e["mail_from"] = mail_from_;
    boost::json::array rcpt;
    for (const auto& a : rcpt_) rcpt.emplace_back(a);
    e["rcpt"] = std::move(rcpt);
    if (!auth_user_.empty()) e["auth_user"] = auth_user_;
  }
  e["size"] = size;
  e["reply"] = final_reply.text();
  events_.push_back(std::move(e));
}

void smtp_machine::reset_transaction() {
  mail_from_.clear();
  in_transaction_ = false;
  rcpt_.clear();
}

void smtp_machine::forget_before_tls() {
  // RFC 3207 §4.2: the server discards any knowledge obtained from the client before TLS; the
  // client must send EHLO again.
  need_ehlo_ = true;
  helo_.clear();
  auth_user_.clear();
  reset_transaction();
  bdat_total_ = 0;
  mode_ = mode::command;
}

void smtp_machine::end(ending why, step_list& out) {
  switch (why) {
    case ending::client_closed:
      if (mode_ == mode::data || mode_ == mode::bdat) {
        out.abort_backend();  // never let a half message reach a final dot
      } else if (mode_ == mode::awaiting_data_reply || mode_ == mode::sasl_response ||
                 mode_ == mode::awaiting_auth_reply) {
        // The backend may already read message data (its 354 is on the way) or a SASL
        // response: a QUIT would not be read as QUIT there. Just drop the leg.
        out.abort_backend();
      } else if (mode_ != mode::quit_sent) {
        send_quit(out);
      }
      close_with({}, "client_closed", {}, out);
      return;
    case ending::backend_lost:
      close_with("421 4.4.2 " + settings_.hostname + " connection to backend lost\r\n",
                 "backend_unavailable", "backend closed the connection", out);
      return;
    case ending::idle_timeout:
      if (mode_ == mode::data || mode_ == mode::bdat) out.abort_backend();
      close_with("421 4.4.2 " + settings_.hostname + " timeout\r\n", "timeout", "idle timeout",
                 out);
      return;
  }
}

bool smtp_machine::at_command_boundary() const {
  // A transaction the backend has accepted MAIL for is let finish (issue #7: never cut a sender
  // off mid-transaction during a drain); the grace period bounds how long that may take.
  return mode_ == mode::command && pending_.empty() && client_.buffered() == 0 && !in_transaction_;
}

void smtp_machine::maybe_finish_drain(step_list& out) {
  if (!pending_.draining() || closed() || !at_command_boundary()) return;
  send_quit(out);
  close_with("421 4.3.2 " + settings_.hostname + " shutting down\r\n", "shutdown",
             "proxy shutting down", out);
}

void smtp_machine::send_quit(step_list& out) {
  out.send_backend("QUIT\r\n");
  if (observer_) observer_->command(parse_command("QUIT"), "QUIT");
}

}  // namespace tlsbridge::protocols::smtp
