#include "certs/starttls_dialogue.hpp"

#include <utility>

namespace tlsbridge::certs {
namespace {

bool starts_with_ci(std::string_view line, std::string_view prefix) {
  if (line.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    char a = line[i];
    if (a >= 'a' && a <= 'z') a = static_cast<char>(a - 'a' + 'A');
    if (a != prefix[i]) return false;
  }
  return true;
}

// A status word followed by the end of the line or a space ("+OK", "+OK ready", not "+OKAY").
bool status_is(std::string_view line, std::string_view word) {
  return starts_with_ci(line, word) && (line.size() == word.size() || line[word.size()] == ' ');
}

// Server text quoted in a failure reason, bounded so a hostile server cannot flood the report.
std::string quoted(std::string_view text) {
  constexpr std::size_t limit = 200;
  std::string out = "\"";
  for (char c : text.substr(0, limit)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (text.size() > limit) out += "...";
  return out + "\"";
}

starttls_step send(std::string data) {
  return {starttls_step::action::send, std::move(data)};
}
starttls_step read_more() {
  return {starttls_step::action::read, {}};
}

}  // namespace

const char* to_string(starttls_protocol p) {
  switch (p) {
    case starttls_protocol::none:
      return "none";
    case starttls_protocol::smtp:
      return "smtp";
    case starttls_protocol::imap:
      return "imap";
    case starttls_protocol::pop3:
      return "pop3";
  }
  return "none";
}

starttls_dialogue::starttls_dialogue(starttls_protocol protocol, std::string ehlo_name)
    : protocol_(protocol), ehlo_name_(std::move(ehlo_name)) {}

starttls_step starttls_dialogue::start() {
  if (protocol_ == starttls_protocol::none) {
    state_ = state::done;
    return {starttls_step::action::ready, {}};
  }
  return read_more();
}

starttls_step starttls_dialogue::on_data(std::string_view bytes) {
  if (state_ == state::done || state_ == state::failed)
    return fail("data after the dialogue ended");
  if (protocol_ == starttls_protocol::smtp) {
    smtp_.append(bytes);
    return smtp_step();
  }
  lines_.append(bytes);
  return line_step();
}

starttls_step starttls_dialogue::on_eof() {
  if (state_ == state::failed) return {starttls_step::action::failed, "connection closed"};
  return fail(std::string("server closed the connection while waiting for its ") + state_name());
}

const char* starttls_dialogue::state_name() const {
  switch (state_) {
    case state::greeting:
      return "greeting";
    case state::ehlo:
      return "EHLO reply";
    case state::starttls:
      return protocol_ == starttls_protocol::pop3 ? "STLS reply" : "STARTTLS reply";
    case state::done:
    case state::failed:
      break;
  }
  return "reply";
}

starttls_step starttls_dialogue::fail(std::string why) {
  state_ = state::failed;
  return {starttls_step::action::failed, std::move(why)};
}

// RFC 3207 §4.2 / RFC 2595 §3.1: nothing may follow the "go ahead" in plaintext. A server (or a
// man in the middle) that pipelines bytes after it is injecting data into the TLS session we are
// about to start (the client side of the CVE-2011-0411 class): refuse rather than guess.
starttls_step starttls_dialogue::after_starttls_reply(std::size_t leftover) {
  if (leftover != 0)
    return fail("server sent " + std::to_string(leftover) +
                " plaintext bytes after its STARTTLS go-ahead (response injection)");
  state_ = state::done;
  return {starttls_step::action::ready, {}};
}

starttls_step starttls_dialogue::smtp_step() {
  protocols::smtp::reply r;
  switch (smtp_.next(r)) {
    case protocols::smtp::reply_parser::status::need_more:
      return read_more();
    case protocols::smtp::reply_parser::status::error:
      return fail("SMTP " + std::string(state_name()) + ": " + smtp_.error());
    case protocols::smtp::reply_parser::status::reply_ready:
      break;
  }
  // The server may not pipeline ahead of our commands (RFC 2920 is for clients): one reply per
  // step, and anything extra is a protocol error (or, after STARTTLS, an injection).
  switch (state_) {
    case state::greeting:
      if (r.code != 220) return fail("SMTP greeting is not 220: " + quoted(r.text()));
      if (smtp_.buffered() != 0) return fail("SMTP server sent data after its greeting");
      state_ = state::ehlo;
      return send("EHLO " + ehlo_name_ + "\r\n");
    case state::ehlo:
      if (r.code != 250) return fail("EHLO refused: " + quoted(r.text()));
      if (smtp_.buffered() != 0) return fail("SMTP server sent data after its EHLO reply");
      state_ = state::starttls;
      return send("STARTTLS\r\n");
    case state::starttls:
      if (r.code != 220) return fail("STARTTLS refused: " + quoted(r.text()));
      return after_starttls_reply(smtp_.buffered());
    case state::done:
    case state::failed:
      break;
  }
  return fail("unexpected SMTP reply");
}

starttls_step starttls_dialogue::line_step() {
  const bool imap = protocol_ == starttls_protocol::imap;
  std::string line;
  for (;;) {
    switch (lines_.next_line(line)) {
      case protocols::line_framer::status::need_more:
        return read_more();
      case protocols::line_framer::status::too_long:
        return fail(std::string(imap ? "IMAP" : "POP3") + " server line longer than " +
                    std::to_string(max_line) + " bytes");
      case protocols::line_framer::status::line:
        break;
    }
    switch (state_) {
      case state::greeting:
        if (imap) {
          // RFC 3501 §7.1: OK (login needed) or PREAUTH; BYE means go away.
          if (!status_is(line, "* OK") && !status_is(line, "* PREAUTH"))
            return fail("IMAP greeting is not \"* OK\": " + quoted(line));
        } else if (!status_is(line, "+OK")) {
          return fail("POP3 greeting is not \"+OK\": " + quoted(line));
        }
        if (lines_.buffered() != 0) return fail("server sent data after its greeting");
        state_ = state::starttls;
        return send(imap ? "a STARTTLS\r\n" : "STLS\r\n");
      case state::starttls:
        if (imap) {
          if (starts_with_ci(line, "* ")) continue;  // untagged data (e.g. CAPABILITY) before it
          if (status_is(line, "A OK")) return after_starttls_reply(lines_.buffered());
          return fail("STARTTLS refused: " + quoted(line));
        }
        if (status_is(line, "+OK")) return after_starttls_reply(lines_.buffered());
        return fail("STLS refused: " + quoted(line));
      case state::ehlo:
      case state::done:
      case state::failed:
        break;
    }
    return fail("unexpected server line: " + quoted(line));
  }
}

}  // namespace tlsbridge::certs
