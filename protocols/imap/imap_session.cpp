#include "protocols/imap/imap_session.hpp"

#include <algorithm>

#include "protocols/common/sasl_plain.hpp"

namespace tlsbridge::protocols::imap {

namespace {

constexpr std::size_t max_user_bytes = 1024;

std::string first_word(std::string_view s) {
  return std::string(s.substr(0, s.find(' ')));
}

// "OK [CAPABILITY ...] Logged in" -> "OK Logged in": the audit record wants the outcome, not the
// capability list.
std::string login_result(std::string_view after_tag) {
  auto sp = after_tag.find(' ');
  if (sp == std::string_view::npos) return std::string(after_tag);
  std::string_view text = after_tag.substr(sp + 1);
  if (istarts_with(text, "[CAPABILITY")) {
    auto close = text.find(']');
    text = close == std::string_view::npos ? std::string_view{} : text.substr(close + 1);
    while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  }
  std::string out(after_tag.substr(0, sp));
  if (!text.empty()) out += " " + std::string(text);
  return out;
}

}  // namespace

imap_session::imap_session(session_settings settings, std::string backend_greeting_wire)
    : settings_(std::move(settings)),
      greeting_(std::move(backend_greeting_wire)),
      front_encrypted_(settings_.front == config::front_tls::implicit),
      client_(settings_.max_command_line),
      backend_(settings_.max_response_line) {}

// Over a connection limit (SPEC §3); the response code says "try later" (RFC 5530 / RFC 3206).
std::string imap_session::over_limit() const {
  return "* BYE [UNAVAILABLE] " + settings_.hostname + " too many connections\r\n";
}

std::string imap_session::service_unavailable() const {
  return "* BYE " + settings_.hostname + " Service not available\r\n";
}

bool imap_session::before_tls() const {
  return settings_.front == config::front_tls::starttls && !front_encrypted_;
}

capability_view imap_session::view() const {
  // SPEC §4: the proxy's STARTTLS and LOGINDISABLED, and no AUTH=, before front TLS.
  return capability_view{.offer_starttls = before_tls(),
                         .hide_auth = before_tls(),
                         .login_disabled = before_tls() && settings_.require_tls};
}

void imap_session::on_start(step_list& out) {
  if (greeting_.empty()) return;
  std::string_view line(greeting_);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  // The greeting came from the backend, whose leg may already be TLS: it is shown with the
  // capabilities of the FRONT leg's state.
  out.send_client(rewrite_response(line, view()) + "\r\n");
}

// ---------------------------------------------------------------------------------------------
// Client side

void imap_session::on_client_data(std::string_view data, step_list& out) {
  if (mode_ == mode::closed) return;
  if (mode_ == mode::awaiting_front_tls) {
    // RFC 9051 §6.2.1 / CVE-2011-0411: nothing sent after STARTTLS, before the handshake, counts.
    discard_injected(data.size());
    return;
  }
  client_.append(data);
  process_client(out);
}

void imap_session::process_client(step_list& out) {
  std::string line;
  for (;;) {
    switch (mode_) {
      case mode::closed:
        return;
      case mode::awaiting_front_tls:
        discard_injected(client_.buffered());
        client_.clear();
        return;
      case mode::await_plus:
        // A synchronizing literal: the client must wait for "+" (RFC 9051 §7.5). Hold what it
        // sent early, bounded.
        if (client_.buffered() > settings_.max_held_bytes)
          close_with("* BYE " + settings_.hostname + " too much data before continuation\r\n",
                     "limit", "client sent a literal before the server's continuation", out);
        return;
      case mode::literal: {
        if (client_literal_ == 0) {
          if (cmd_.user_from_literal) {
            cmd_.user_from_literal = false;
            for (auto& p : pending_)
              if (!p.local && p.tag == cmd_.tag) p.user = literal_user_;
          }
          mode_ = mode::fragment;
          break;
        }
        std::string_view in = client_.peek();
        if (in.empty()) return;
        std::size_t n =
            static_cast<std::size_t>(std::min<std::uint64_t>(client_literal_, in.size()));
        // Literal bytes are data, never commands: relayed (or dropped) as they are.
        if (cmd_.relayed) out.send_backend(std::string(in.substr(0, n)));
        if (cmd_.user_from_literal && literal_user_.size() < max_user_bytes)
          literal_user_.append(in.substr(0, std::min(n, max_user_bytes - literal_user_.size())));
        client_.consume(n);
        client_literal_ -= n;
        break;
      }
      case mode::exchange:
        if (continuations_owed_ == 0) {
          if (client_.buffered() > settings_.max_held_bytes)
            close_with("* BYE " + settings_.hostname + " too much data before continuation\r\n",
                       "limit", "client sent data before the server's continuation", out);
          return;
        }
        [[fallthrough]];
      case mode::command:
      case mode::fragment:
        switch (client_.next_line(line)) {
          case line_framer::status::need_more:
            if (mode_ == mode::command) maybe_finish_drain(out);
            return;
          case line_framer::status::too_long:
            // Its tail (and a literal marker there) is lost: the framing cannot be trusted again.
            close_with("* BYE " + settings_.hostname + " command line too long\r\n", "limit",
                       "client line over " + std::to_string(settings_.max_command_line) + " bytes",
                       out);
            return;
          case line_framer::status::line:
            break;
        }
        if (mode_ == mode::command)
          handle_command_start(line, out);
        else if (mode_ == mode::fragment)
          handle_fragment_end(line, out);
        else
          handle_exchange_line(line, out);
        break;
    }
  }
}

void imap_session::handle_command_start(const std::string& line, step_list& out) {
  if (line.empty()) return;  // tolerated between commands, never relayed
  if (pending_.size() >= settings_.max_pending_commands) {
    close_with("* BYE " + settings_.hostname + " too many pipelined commands\r\n", "limit",
               "pipelining limit", out);
    return;
  }
  cmd_ = current_command{};
  literal_user_.clear();
  auto head = parse_command_head(line);
  cmd_.tag = head ? head->tag : first_word(line);
  const std::string name = head ? head->name : std::string{};
  const std::string& tag = cmd_.tag;

  if (name == "STARTTLS") {
    if (before_tls()) {
      // RFC 9051 §6.2.1 and RFC 2595 §3.1 (CVE-2011-0411): whatever the client pipelined after
      // STARTTLS is plaintext an attacker may have injected; it is discarded, never relayed.
      discard_injected(client_.buffered());
      client_.clear();
      mode_ = mode::awaiting_front_tls;
      answer_locally(tag, tag + " OK Begin TLS negotiation now\r\n", out, /*starttls=*/true);
      return;
    }
    cmd_.refusal = tag + (front_encrypted_ ? " BAD TLS is already active\r\n"
                                           : " BAD STARTTLS is not available\r\n");
  } else if ((name == "LOGIN" || name == "AUTHENTICATE") && settings_.require_tls && before_tls()) {
    // SPEC §4, RFC 9051 §6.2.3 (LOGINDISABLED): no credentials in the clear.
    cmd_.refusal = tag + " NO [PRIVACYREQUIRED] Use STARTTLS before authenticating\r\n";
  } else if (name == "COMPRESS") {
    // RFC 4978: a compressed stream could not be framed; the capability is never shown.
    cmd_.refusal = tag + " NO COMPRESS is not available through this proxy\r\n";
  } else {
    cmd_.relayed = true;
  }

  if (name == "LOGIN")
    cmd_.what = kind::login;
  else if (name == "AUTHENTICATE")
    cmd_.what = kind::authenticate;
  else if (name == "IDLE")
    cmd_.what = kind::idle;
  else if (name == "LOGOUT")
    cmd_.what = kind::logout;

  if (cmd_.relayed) {
    pending p;
    p.tag = tag;
    p.what = cmd_.what;
    if (head && cmd_.what == kind::login) {
      if (auto user = login_user(head->rest))
        p.user = *user;
      else if (trailing_literal(head->rest))
        cmd_.user_from_literal = head->rest.starts_with('{');
    } else if (head && cmd_.what == kind::authenticate) {
      std::string_view rest = head->rest;
      auto sp = rest.find(' ');
      if (iequals(rest.substr(0, sp), "PLAIN")) {
        if (sp == std::string_view::npos)
          cmd_.sasl_plain = true;  // RFC 4959: the response follows the server's "+"
        else
          p.user = sasl_plain_user(rest.substr(sp + 1)).value_or("");
      }
    }
    pending_.push_back(std::move(p));
  }
  handle_fragment_end(line, out);
}

void imap_session::handle_fragment_end(std::string_view line, step_list& out) {
  const bool first = mode_ == mode::command;
  auto lit = trailing_literal(line);
  if (lit && lit->size > settings_.max_literal) {
    if (first && lit->synchronizing) {
      // Nothing of this command was sent: refuse it instead of sending "+" (RFC 9051 §7.5).
      if (cmd_.relayed) pending_.pop_back();
      cmd_.relayed = false;
      cmd_.refusal = cmd_.tag + " NO [TOOBIG] Literal too large\r\n";
      mode_ = mode::command;
      end_command(out);
      return;
    }
    // Part of the command is at the backend, or the client sends the bytes unasked ({n+}):
    // the session cannot continue in step.
    close_with("* BYE " + settings_.hostname + " literal too large\r\n", "limit",
               "client literal of " + std::to_string(lit->size) + " bytes over " +
                   std::to_string(settings_.max_literal),
               out);
    return;
  }
  if (cmd_.relayed) {
    std::string wire(line);
    wire += "\r\n";
    out.send_backend(std::move(wire));
  }
  if (!lit) {
    end_command(out);
    return;
  }
  client_literal_ = lit->size;
  if (!lit->synchronizing) {
    mode_ = mode::literal;
    return;
  }
  if (cmd_.relayed) {
    mode_ = mode::await_plus;
    return;
  }
  // A refused command with a synchronizing literal: the tagged reply takes the place of "+", and
  // the client sends no literal (RFC 9051 §7.5).
  client_literal_ = 0;
  end_command(out);
}

void imap_session::end_command(step_list& out) {
  mode_ = mode::command;
  if (!cmd_.relayed) {
    answer_locally(cmd_.tag, cmd_.refusal, out);
    return;
  }
  if (cmd_.what == kind::authenticate || cmd_.what == kind::idle) {
    // Client lines are now answers to the server's "+" requests (SASL data, IDLE's DONE), not
    // commands (RFC 9051 §6.2.2, RFC 2177).
    mode_ = mode::exchange;
    exchange_tag_ = cmd_.tag;
    exchange_kind_ = cmd_.what;
    continuations_owed_ = 0;
  }
}

void imap_session::handle_exchange_line(const std::string& line, step_list& out) {
  --continuations_owed_;
  out.send_backend(line + "\r\n");
  if (exchange_kind_ == kind::idle && iequals(line, "DONE")) idling_ = false;
  if (exchange_kind_ == kind::authenticate && cmd_.sasl_plain) {
    cmd_.sasl_plain = false;
    for (auto& p : pending_)
      if (!p.local && p.tag == exchange_tag_) p.user = sasl_plain_user(line).value_or("");
  }
}

void imap_session::answer_locally(std::string tag, std::string wire, step_list& out,
                                  bool starttls) {
  pending p;
  p.tag = std::move(tag);
  p.local = true;
  p.wire = std::move(wire);
  p.starttls = starttls;
  pending_.push_back(std::move(p));
  flush_local_replies(out);
}

void imap_session::flush_local_replies(step_list& out) {
  while (!pending_.empty() && pending_.front().local && mode_ != mode::closed) {
    pending p = std::move(pending_.front());
    pending_.pop_front();
    out.send_client(std::move(p.wire));
    if (p.starttls) {
      out.start_front_tls();
      return;
    }
  }
}

void imap_session::on_front_tls_established(step_list& out) {
  (void)out;
  // The driver finishes a handshake it started even if a backend event closed the machine in the
  // meantime (proxy/session.cpp runs both loops): a closed machine must stay closed.
  if (mode_ == mode::closed) return;
  // RFC 9051 §6.2.1: the client must discard what it knew (capabilities); so does the proxy.
  front_encrypted_ = true;
  client_.clear();
  cmd_ = current_command{};
  mode_ = mode::command;
}

// ---------------------------------------------------------------------------------------------
// Backend side

void imap_session::on_backend_data(std::string_view data, step_list& out) {
  if (mode_ == mode::closed) return;
  backend_.append(data);
  process_backend(out);
}

void imap_session::process_backend(step_list& out) {
  std::string line;
  while (mode_ != mode::closed) {
    if (backend_literal_ > 0) {
      // FETCH BODY[] {n} and the like: message bytes, streamed untouched — a message containing
      // "A1 OK" or "* CAPABILITY" is never taken for a response or rewritten.
      std::string_view in = backend_.peek();
      if (in.empty()) return;
      std::size_t n =
          static_cast<std::size_t>(std::min<std::uint64_t>(backend_literal_, in.size()));
      out.send_client(std::string(in.substr(0, n)));
      backend_.consume(n);
      backend_literal_ -= n;
      continue;
    }
    switch (backend_.next_line(line)) {
      case line_framer::status::need_more:
        maybe_finish_drain(out);
        return;
      case line_framer::status::too_long:
        close_with(
            "* BYE " + settings_.hostname + " backend protocol error\r\n", "backend_unavailable",
            "backend line over " + std::to_string(settings_.max_response_line) + " bytes", out);
        return;
      case line_framer::status::line:
        handle_response_line(line, out);
        break;
    }
  }
}

void imap_session::handle_response_line(const std::string& line, step_list& out) {
  auto lit = trailing_literal(line);
  if (!backend_at_response_start_) {
    // The rest of a response after a literal: data, relayed as it is.
    out.send_client(line + "\r\n");
    if (lit)
      backend_literal_ = lit->size;
    else
      backend_at_response_start_ = true;
    return;
  }
  if (line.starts_with('+')) {
    // A continuation request: the client may now send its literal or its next SASL/IDLE line.
    out.send_client(line + "\r\n");
    if (mode_ == mode::await_plus) {
      mode_ = mode::literal;
    } else if (mode_ == mode::exchange) {
      ++continuations_owed_;
      if (exchange_kind_ == kind::idle) idling_ = true;
    }
    process_client(out);
    return;
  }
  out.send_client(rewrite_response(line, view()) + "\r\n");
  if (lit) {
    backend_literal_ = lit->size;
    backend_at_response_start_ = false;
  }
  if (line.starts_with("* ") || line == "*") {
    if (istarts_with(line, "* BYE")) bye_relayed_ = true;
    return;
  }
  complete(first_word(line), line, out);
}

void imap_session::complete(const std::string& tag, const std::string& line, step_list& out) {
  auto it = std::find_if(pending_.begin(), pending_.end(),
                         [&](const pending& p) { return !p.local && p.tag == tag; });
  if (it != pending_.end()) {
    pending p = std::move(*it);
    pending_.erase(it);
    std::string_view after_tag =
        line.size() > tag.size() ? std::string_view(line).substr(tag.size() + 1) : "";
    if (p.what == kind::login || p.what == kind::authenticate) emit_login_event(p, after_tag);
    if (p.what == kind::logout) {
      facts_.outcome = "ok";
      mode_ = mode::closed;
      out.close();
      return;
    }
  }
  if (mode_ == mode::await_plus && cmd_.tag == tag) {
    // The synchronizing literal was refused: the client will not send it.
    client_literal_ = 0;
    mode_ = mode::command;
  }
  if (mode_ == mode::exchange && exchange_tag_ == tag) {
    mode_ = mode::command;
    continuations_owed_ = 0;
    idling_ = false;
  }
  flush_local_replies(out);
  process_client(out);
}

void imap_session::emit_login_event(const pending& p, std::string_view after_tag) {
  boost::json::object e;
  e["event"] = "imap.login";
  if (settings_.audit_envelope) e["user"] = p.user;
  e["result"] = login_result(after_tag);
  events_.push_back(std::move(e));
}

// ---------------------------------------------------------------------------------------------
// Endings

void imap_session::on_client_eof(step_list& out) {
  if (mode_ == mode::closed) return;
  mode_ = mode::closed;
  facts_.outcome = "client_closed";
  out.close();
}

void imap_session::on_backend_eof(step_list& out) {
  if (mode_ == mode::closed) return;
  if (bye_relayed_ || backend_literal_ > 0 || !backend_at_response_start_) {
    // The backend said goodbye itself (its own autologout), or a BYE now would land inside a
    // response the client is reading.
    mode_ = mode::closed;
    facts_.outcome = bye_relayed_ ? "ok" : "backend_unavailable";
    facts_.reason = "backend closed the connection";
    out.close();
    return;
  }
  close_with("* BYE " + settings_.hostname + " connection to backend lost\r\n",
             "backend_unavailable", "backend closed the connection", out);
}

void imap_session::on_idle_timeout(step_list& out) {
  if (mode_ == mode::closed) return;
  if (backend_literal_ > 0 || !backend_at_response_start_) {
    mode_ = mode::closed;
    facts_.outcome = "timeout";
    facts_.reason = "idle timeout";
    out.close();
    return;
  }
  close_with("* BYE " + settings_.hostname + " Autologout; idle timeout\r\n", "timeout",
             "idle timeout", out);
}

void imap_session::on_shutdown(step_list& out) {
  draining_ = true;
  maybe_finish_drain(out);
}

void imap_session::maybe_finish_drain(step_list& out) {
  if (!draining_ || mode_ == mode::closed) return;
  if (client_.buffered() != 0 || backend_literal_ > 0 || !backend_at_response_start_) return;
  // Safe points: no command in flight, or an IDLE the client is just waiting in (RFC 2177: the
  // server may end it; a BYE is what a client in IDLE expects from a server going away).
  const bool idle_only = mode_ == mode::exchange && idling_ && pending_.size() == 1;
  if (!(mode_ == mode::command && pending_.empty()) && !idle_only) return;
  close_with("* BYE " + settings_.hostname + " shutting down\r\n", "shutdown",
             "proxy shutting down", out);
}

void imap_session::close_with(std::string wire, std::string outcome, std::string reason,
                              step_list& out) {
  if (mode_ == mode::closed) return;
  out.send_client(std::move(wire));
  mode_ = mode::closed;
  if (!outcome.empty()) facts_.outcome = std::move(outcome);
  if (!reason.empty()) facts_.reason = std::move(reason);
  out.close();
}

}  // namespace tlsbridge::protocols::imap
