#include "protocols/imap/imap_machine.hpp"

#include <algorithm>

#include "protocols/common/sasl_plain.hpp"

namespace tlsbridge::protocols::imap {

namespace {

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

// A NO to LOGIN/AUTHENTICATE refuses the credentials unless the server could not judge them now
// (RFC 5530: UNAVAILABLE, SERVERBUG).
bool credentials_refused(std::string_view after_tag) {
  return istarts_with(after_tag, "NO") && !istarts_with(after_tag, "NO [UNAVAILABLE]") &&
         !istarts_with(after_tag, "NO [SERVERBUG]");
}

}  // namespace

imap_machine::imap_machine(machine_settings settings, std::string backend_greeting_wire)
    : mail_machine(std::move(settings), std::move(backend_greeting_wire)),
      backend_(settings_.max_response_line) {
  std::string_view line(greeting_);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  note_capabilities(line);
}

// What the backend can frame: LITERAL+ / LITERAL- (RFC 7888) and BINARY (RFC 3516) decide which
// client literals may be relayed. The greeting's list, then each CAPABILITY the backend sends.
void imap_machine::note_capabilities(std::string_view line) {
  if (auto caps = capabilities_in(line)) backend_caps_ = std::move(*caps);
}

capability_view imap_machine::view() const {
  // Before front TLS: the proxy's STARTTLS and LOGINDISABLED, and no AUTH= (RFC 3501 §6.2.3).
  return capability_view{.offer_starttls = before_tls(),
                         .hide_auth = before_tls(),
                         .login_disabled = before_tls() && settings_.require_tls};
}

void imap_machine::on_start(step_list& out) {
  if (greeting_.empty()) return;
  std::string_view line(greeting_);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  // The greeting came from the backend, whose leg may already be TLS: it is shown with the
  // capabilities of the FRONT leg's state.
  out.send_client(rewrite_response(line, view()) + "\r\n");
}

// ---------------------------------------------------------------------------------------------
// Client side

void imap_machine::read_client(step_list& out) {
  std::string line;
  while (may_read_client()) {
    switch (mode_) {
      case mode::await_plus:
        // A synchronizing literal: the client must wait for "+" (RFC 9051 §7.5). Hold what it
        // sent early, bounded.
        if (client_.buffered() > settings_.max_held_bytes)
          close_with("* BYE " + settings_.hostname + " too much data before continuation\r\n",
                     "limit", "client sent a literal before the server's continuation", out);
        return;
      case mode::literal: {
        if (client_literal_ == 0) {
          if (cmd_.relayed) scanner_.literal_end();
          mode_ = mode::fragment;
          break;
        }
        std::string_view in = client_.peek();
        if (in.empty()) return;
        std::size_t n =
            static_cast<std::size_t>(std::min<std::uint64_t>(client_literal_, in.size()));
        // Literal bytes are data, never commands: relayed (or dropped) as they are.
        // A refused command's literal is read and dropped: the client sends {n+} bytes unasked.
        if (cmd_.relayed) {
          out.send_backend(std::string(in.substr(0, n)));
          scanner_.literal_data(in.substr(0, n));
        }
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

void imap_machine::handle_command_start(const std::string& line, step_list& out) {
  if (line.empty()) return;  // tolerated between commands, never relayed
  if (pending_.size() >= settings_.max_pending_commands) {
    close_with("* BYE " + settings_.hostname + " too many pipelined commands\r\n", "limit",
               "pipelining limit", out);
    return;
  }
  cmd_ = current_command{};
  cmd_.id = ++next_id_;
  // Tokenise by the grammar before anything is relayed (8-bit only in quoted strings
  // before front TLS: nothing the backend might read as a different byte count or charset).
  const auto scan = scanner_.first(line, !before_tls());
  cmd_.tag = scanner_.tag();
  cmd_.name = scanner_.name();
  const std::string& tag = cmd_.tag;
  const std::string& name = cmd_.name;
  const std::string shown_tag = tag.empty() ? "*" : tag;

  if (scan.what == command_scanner::result::refused) {
    // The backend would read this line differently from the proxy, or not at all: refused here,
    // never relayed. How the client goes on is guessed from the line's tail.
    refuse_command(shown_tag + " BAD [CLIENTBUG] Refused by proxy: " + scan.rule + "\r\n",
                   "imap.syntax: " + scan.rule, out);
    follow_discarded(trailing_literal(line), out);
    return;
  }
  const std::optional<literal_marker> lit =
      scan.what == command_scanner::result::literal ? std::optional(scan.literal) : std::nullopt;
  const bool has_arguments = scanner_.argument_count() > 0;

  if (name == "LOGIN")
    cmd_.what = kind::login;
  else if (name == "AUTHENTICATE")
    cmd_.what = kind::authenticate;
  else if (name == "IDLE")
    cmd_.what = kind::idle;
  else if (name == "LOGOUT")
    cmd_.what = kind::logout;

  std::optional<std::pair<std::string, std::string>> refusal;  // reply, audit reason
  if (name == "STARTTLS" && !has_arguments) {
    if (before_tls()) {
      // RFC 9051 §6.2.1 and RFC 2595 §3.1 (CVE-2011-0411): whatever the client pipelined after
      // STARTTLS is plaintext an attacker may have injected; it is discarded, never relayed.
      accept_starttls(tag + " OK Begin TLS negotiation now\r\n", out);
      return;
    }
    refusal = {tag + (front_encrypted_ ? " BAD TLS is already active\r\n"
                                       : " BAD STARTTLS is not available\r\n"),
               "imap.starttls: STARTTLS not available in this state (RFC 3501 §6.2.1)"};
  } else if ((name == "STARTTLS" || name == "IDLE" || name == "LOGOUT") && has_arguments) {
    // These change the session's mode; with arguments the backend would refuse them, but the
    // proxy would have to guess whether it did (RFC 3501 §6.1.3, §6.2.1, RFC 2177).
    refusal = {tag + " BAD [CLIENTBUG] Refused by proxy: " + name + " takes no arguments\r\n",
               "imap.syntax: " + name + " takes no arguments (RFC 3501 §9)"};
  } else if ((name == "LOGIN" || name == "AUTHENTICATE") && settings_.require_tls && before_tls()) {
    // require_tls, RFC 3501 §6.2.3 (LOGINDISABLED): no credentials in the clear, however spelled.
    refusal = {tag + " NO [PRIVACYREQUIRED] Use STARTTLS before authenticating\r\n",
               "imap.require_tls: " + name + " before STARTTLS (RFC 3501 §6.2.3)"};
  } else if (name == "COMPRESS") {
    // RFC 4978: a compressed stream could not be framed; the capability is never shown.
    refusal = {tag + " NO COMPRESS is not available through this proxy\r\n",
               "imap.compress: COMPRESS refused (RFC 4978)"};
  } else if (std::any_of(pending_.begin(), pending_.end(),
                         [&](const auto& p) { return !p.local && p.relayed.tag == tag; })) {
    // Tagged replies may come in any order (RFC 3501 §5.5): with two commands of one tag in
    // flight the proxy could not tell which one ended (nor whether "+" is for a literal).
    refusal = {tag + " BAD [CLIENTBUG] Refused by proxy: tag already in use\r\n",
               "imap.syntax: tag of a command still in progress (RFC 3501 §2.2.1)"};
  } else if (name == "AUTHENTICATE" && !scanner_.atoms_only()) {
    // RFC 3501 §6.2.2 / RFC 4959: the mechanism is an atom, the initial response base64 or "=";
    // a quoted or literal spelling is one the backend may read differently.
    refusal = {tag + " BAD [CLIENTBUG] Refused by proxy: AUTHENTICATE arguments are atoms\r\n",
               "imap.syntax: AUTHENTICATE with a quoted or literal argument (RFC 4959)"};
  } else if (lit) {
    if (auto rule = literal_refusal(*lit))
      refusal = {tag + " BAD [CLIENTBUG] Refused by proxy: " + *rule + "\r\n",
                 "imap.literal: " + *rule};
  }
  if (refusal) {
    refuse_command(std::move(refusal->first), std::move(refusal->second), out);
    follow_discarded(lit, out);
    return;
  }
  if (lit && lit->size > settings_.max_literal) {
    if (lit->synchronizing) {
      // Nothing of this command was sent: refuse it instead of sending "+" (RFC 9051 §7.5).
      refuse_command(tag + " NO [TOOBIG] Literal too large\r\n",
                     "imap.literal: client literal over max_literal", out);
      follow_discarded(lit, out);
      return;
    }
    // The client sends the bytes unasked ({n+}): the session cannot continue in step.
    close_with("* BYE " + settings_.hostname + " literal too large\r\n", "limit",
               "client literal of " + std::to_string(lit->size) + " bytes over " +
                   std::to_string(settings_.max_literal),
               out);
    return;
  }

  if (cmd_.what == kind::login || cmd_.what == kind::authenticate) {
    // The auth guard, before anything of the credentials is relayed: the user when this line
    // already names it (LOGIN's first argument, AUTHENTICATE PLAIN's initial response), else the
    // address alone (a LOGIN user in a literal is asked about at its fragment's end).
    const auto& args = scanner_.arguments();
    std::string user;
    // The user is known unless it is the literal this line announces (its bytes come next).
    if (cmd_.what == kind::login && (args.size() > 1 || (args.size() == 1 && !lit))) {
      user = args[0];
      cmd_.guard_asked = true;
    } else if (cmd_.what == kind::authenticate && args.size() > 1 && iequals(args[0], "PLAIN")) {
      user = sasl_plain_user(args[1]).value_or("");
    }
    if (auth_check(user, name) != auth_block::none) {
      cmd_.refusal = guard_reply();
      follow_discarded(lit, out);
      return;
    }
  }

  cmd_.relayed = true;
  if (relay_observer_) relay_observer_(tag, name);
  pending_.expect(
      pending{.id = cmd_.id, .tag = tag, .what = cmd_.what, .user = {}, .blocked_reply = {}});
  relay_fragment(line, lit, out);
}

// A fragment of the relayed command, tokenised: sent on, then its literal or the command's end.
void imap_machine::relay_fragment(std::string_view line, std::optional<literal_marker> lit,
                                  step_list& out) {
  std::string wire(line);
  wire += "\r\n";
  out.send_backend(std::move(wire));
  if (!lit) {
    end_command(out);
    return;
  }
  client_literal_ = lit->size;
  mode_ = lit->synchronizing ? mode::await_plus : mode::literal;
}

// Why a client literal may not be relayed, if it may not (the backend must read it as one).
std::optional<std::string> imap_machine::literal_refusal(const literal_marker& lit) const {
  // A server reads a literal only where it parses the command's arguments; for a command whose
  // grammar has no string (NOOP, CHECK, an unknown command...) it may skip to the end of the
  // line instead - Dovecot does after login - and then read the literal's bytes as commands.
  if (!literal_allowed_in(
          cmd_.name, scanner_.arguments().empty() ? std::string_view{} : scanner_.arguments()[0]))
    return "literal in a command whose arguments hold no string (RFC 3501 §9)";
  if (lit.literal8 && !(cmd_.name == "APPEND" && has_capability(backend_caps_, "BINARY")))
    return "literal8 only in APPEND to a BINARY server (RFC 3516 §4.2)";
  if (!lit.synchronizing) {
    if (before_tls()) return "non-synchronizing literal before TLS (RFC 7888)";
    // A backend that does not know {n+} reads "{n+}" as text and the literal as commands.
    const bool plus = has_capability(backend_caps_, "LITERAL+");
    const bool minus = has_capability(backend_caps_, "LITERAL-") && lit.size <= 4096;
    if (!plus && !minus) return "non-synchronizing literal not offered by the server (RFC 7888)";
  }
  return std::nullopt;
}

// A command the proxy answers itself: nothing of it reaches the backend; every refusal is audited
// with the rule it broke.
void imap_machine::refuse_command(std::string reply, std::string rule, step_list& out) {
  (void)out;
  cmd_.relayed = false;
  cmd_.refusal = std::move(reply);
  record_refusal(std::move(rule), {{"event", "imap.refused"}, {"command", cmd_.name}});
}

// Follows a refused command's framing as the client sees it, dropping everything: a {n+} literal's
// bytes arrive unasked and are read and dropped (bounded by max_literal); for {n} the proxy sends
// no "+", so the client sends no literal and the refusal ends the command (RFC 3501 §7.5).
void imap_machine::follow_discarded(std::optional<literal_marker> lit, step_list& out) {
  if (!lit || lit->synchronizing) {
    client_literal_ = 0;
    end_command(out);
    return;
  }
  if (lit->size > settings_.max_literal) {
    close_with("* BYE " + settings_.hostname + " literal too large\r\n", "limit",
               "refused command's literal of " + std::to_string(lit->size) + " bytes over " +
                   std::to_string(settings_.max_literal),
               out);
    return;
  }
  client_literal_ = lit->size;
  mode_ = mode::literal;
}

void imap_machine::handle_fragment_end(std::string_view line, step_list& out) {
  if (!cmd_.relayed) {
    follow_discarded(trailing_literal(line), out);
    return;
  }
  const auto scan = scanner_.next(line, !before_tls());
  std::optional<std::string> rule;
  if (scan.what == command_scanner::result::refused) {
    rule = "imap.syntax: " + scan.rule;
  } else if (scan.what == command_scanner::result::literal) {
    if (auto why = literal_refusal(scan.literal))
      rule = "imap.literal: " + *why;
    else if (scan.literal.size > settings_.max_literal)
      rule = "imap.literal: client literal of " + std::to_string(scan.literal.size) +
             " bytes over " + std::to_string(settings_.max_literal);
  }
  if (!rule && guard_login_fragment(out)) return;
  if (rule) {
    // Part of the command is at the backend: it cannot be finished as the client meant nor
    // taken back, so both legs end here (the backend never sees the rest).
    record_refusal(*rule, {{"event", "imap.refused"}, {"command", cmd_.name}});
    close_with("* BYE " + settings_.hostname + " command refused by proxy\r\n", "refused_policy",
               *rule, out);
    return;
  }
  relay_fragment(
      line,
      scan.what == command_scanner::result::literal ? std::optional(scan.literal) : std::nullopt,
      out);
}

// The proxy's answer to an attempt the auth guard blocked (RFC 5530 UNAVAILABLE: try later).
std::string imap_machine::guard_reply() const {
  return cmd_.tag + " NO [UNAVAILABLE] Too many failed logins, try later\r\n";
}

// LOGIN whose user came in a literal: the fragment after it is the first to know the name. Part
// of the command is at the backend and cannot be taken back, so a blocked user ends the session
// here — the password is never sent. True when it did.
bool imap_machine::guard_login_fragment(step_list& out) {
  if (cmd_.what != kind::login || cmd_.guard_asked || scanner_.arguments().size() < 2)
    return false;  // a literal password still to come also completes the user
  cmd_.guard_asked = true;
  if (auth_check(scanner_.arguments()[0], "LOGIN") == auth_block::none) return false;
  out.abort_backend();
  close_with(guard_reply() + "* BYE " + settings_.hostname + " too many failed logins\r\n",
             "refused_policy", "auth guard: LOGIN blocked", out);
  return true;
}

void imap_machine::end_command(step_list& out) {
  mode_ = mode::command;
  if (!cmd_.relayed) {
    pending_.answer(cmd_.refusal, out);
    return;
  }
  // The audit's user name, from the arguments however they were spelled (atom, quoted, literal).
  const auto& args = scanner_.arguments();
  for (auto& entry : pending_) {
    if (entry.local || entry.relayed.id != cmd_.id) continue;
    pending& p = entry.relayed;
    if (cmd_.what == kind::login && !args.empty()) {
      p.user = args[0];
    } else if (cmd_.what == kind::authenticate && !args.empty() && iequals(args[0], "PLAIN")) {
      if (scanner_.argument_count() == 1)
        cmd_.sasl_plain = true;  // RFC 4959: the response follows the server's "+"
      else if (args.size() > 1)
        p.user = sasl_plain_user(args[1]).value_or("");
    }
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

void imap_machine::handle_exchange_line(const std::string& line, step_list& out) {
  --continuations_owed_;
  if (exchange_kind_ == kind::authenticate && cmd_.sasl_plain) {
    cmd_.sasl_plain = false;
    const std::string user = sasl_plain_user(line).value_or("");
    for (auto& p : pending_) {
      if (p.local || p.relayed.id != cmd_.id) continue;
      p.relayed.user = user;
      if (auth_check(user, "AUTHENTICATE") != auth_block::none) {
        // The credentials stay here: the exchange is cancelled (RFC 9051 §6.2.2).
        p.relayed.blocked_reply = guard_reply();
        out.send_backend("*\r\n");
        return;
      }
    }
  }
  out.send_backend(line + "\r\n");
  if (exchange_kind_ == kind::idle && iequals(line, "DONE")) idling_ = false;
}

void imap_machine::forget_before_tls() {
  cmd_ = current_command{};
  mode_ = mode::command;
}

// ---------------------------------------------------------------------------------------------
// Backend side

void imap_machine::read_backend(std::string_view data, step_list& out) {
  backend_.append(data);
  std::string line;
  while (!closed()) {
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
    if (!next_backend_line(backend_, line, "* BYE ", out)) return;
    handle_response_line(line, out);
  }
}

void imap_machine::handle_response_line(const std::string& line, step_list& out) {
  auto lit = response_literal(line, backend_at_response_start_);
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
  note_capabilities(line);
  if (!line.starts_with('*') && guard_verdict(line, out)) {
    complete(first_word(line), line, out);
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

void imap_machine::complete(const std::string& tag, const std::string& line, step_list& out) {
  auto it = std::find_if(pending_.begin(), pending_.end(),
                         [&](const auto& p) { return !p.local && p.relayed.tag == tag; });
  std::uint64_t completed = 0;
  if (it != pending_.end()) {
    pending p = std::move(pending_.take(it).relayed);
    completed = p.id;
    std::string_view after_tag =
        line.size() > tag.size() ? std::string_view(line).substr(tag.size() + 1) : "";
    if (p.what == kind::login || p.what == kind::authenticate) emit_login_event(p, after_tag);
    if (p.what == kind::logout) {
      close_with({}, "ok", {}, out);
      return;
    }
  }
  if (mode_ == mode::await_plus && completed == cmd_.id) {
    // The synchronizing literal was refused: the client will not send it.
    client_literal_ = 0;
    mode_ = mode::command;
  }
  if (mode_ == mode::exchange && completed == cmd_.id) {
    mode_ = mode::command;
    continuations_owed_ = 0;
    idling_ = false;
  }
  pending_.flush(out);
  process_client(out);
}

// A tagged reply to LOGIN/AUTHENTICATE is the backend's verdict for the auth guard (a failure's
// reply waits for the tarpit). True when the proxy's own reply replaced it (a cancelled exchange).
bool imap_machine::guard_verdict(const std::string& line, step_list& out) {
  const std::string tag = first_word(line);
  for (auto& entry : pending_) {
    if (entry.local || entry.relayed.tag != tag) continue;
    pending& p = entry.relayed;
    if (p.what != kind::login && p.what != kind::authenticate) return false;
    if (!p.blocked_reply.empty()) {
      out.send_client(std::move(p.blocked_reply));
      return true;
    }
    const std::string_view after_tag =
        line.size() > tag.size() ? std::string_view(line).substr(tag.size() + 1) : "";
    const bool ok = istarts_with(after_tag, "OK");
    if (ok || credentials_refused(after_tag))
      auth_verdict(p.user, ok, p.what == kind::login ? "LOGIN" : "AUTHENTICATE", out);
    return false;
  }
  return false;
}

void imap_machine::emit_login_event(const pending& p, std::string_view after_tag) {
  boost::json::object e;
  e["event"] = "imap.login";
  if (settings_.audit_envelope) e["user"] = p.user;
  e["result"] = login_result(after_tag);
  events_.push_back(std::move(e));
}

// ---------------------------------------------------------------------------------------------
// Endings

void imap_machine::end(ending why, step_list& out) {
  // No BYE of the proxy's inside a response the client is reading, nor when the backend said
  // goodbye itself (its own autologout).
  const bool mid_response = backend_literal_ > 0 || !backend_at_response_start_;
  switch (why) {
    case ending::client_closed:
      close_with({}, "client_closed", {}, out);
      return;
    case ending::backend_lost:
      close_with(bye_relayed_ || mid_response
                     ? ""
                     : "* BYE " + settings_.hostname + " connection to backend lost\r\n",
                 bye_relayed_ ? "ok" : "backend_unavailable", "backend closed the connection",
                 out);
      return;
    case ending::idle_timeout:
      close_with(
          mid_response ? "" : "* BYE " + settings_.hostname + " Autologout; idle timeout\r\n",
          "timeout", "idle timeout", out);
      return;
  }
}

void imap_machine::maybe_finish_drain(step_list& out) {
  if (!pending_.draining() || closed()) return;
  if (client_.buffered() != 0 || backend_literal_ > 0 || !backend_at_response_start_) return;
  // Safe points: no command in flight, or an IDLE the client is just waiting in (RFC 2177: the
  // server may end it; a BYE is what a client in IDLE expects from a server going away).
  const bool idle_only = mode_ == mode::exchange && idling_ && pending_.size() == 1;
  if (!(mode_ == mode::command && pending_.empty()) && !idle_only) return;
  close_with("* BYE " + settings_.hostname + " shutting down\r\n", "shutdown",
             "proxy shutting down", out);
}

}  // namespace tlsbridge::protocols::imap
