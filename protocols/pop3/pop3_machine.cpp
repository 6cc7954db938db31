#include "protocols/pop3/pop3_machine.hpp"

#include "common/ascii_case.hpp"
#include "protocols/common/sasl_plain.hpp"

namespace tlsbridge::protocols::pop3 {

namespace {

// The proxy's answer to an attempt the auth guard blocked (RFC 3206 §4: try again later).
constexpr std::string_view blocked_reply = "-ERR [SYS/TEMP] Too many failed logins, try later\r\n";

// -ERR to PASS/APOP/AUTH is a refusal of the credentials unless it says the server could not
// judge them now (RFC 3206: [SYS/TEMP], [SYS/PERM], [IN-USE]).
bool credentials_refused(std::string_view status_line) {
  return status_line.starts_with("-ERR") && status_line.find("[SYS/") == std::string_view::npos &&
         status_line.find("[IN-USE]") == std::string_view::npos;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

}  // namespace

pop3_machine::pop3_machine(machine_settings settings, std::string backend_greeting_wire)
    : mail_machine(std::move(settings), std::move(backend_greeting_wire)),
      backend_(settings_.max_response_line) {}

void pop3_machine::on_start(step_list& out) {
  if (!greeting_.empty()) out.send_client(greeting_);
}

// ---------------------------------------------------------------------------------------------
// Client side

void pop3_machine::read_client(step_list& out) {
  std::string line;
  while (may_read_client()) {
    switch (mode_) {
      case mode::exchange:
        if (continuations_owed_ == 0) {
          if (client_.buffered() > settings_.max_held_bytes)
            close_with("-ERR " + settings_.hostname + " too much data before continuation\r\n",
                       "limit", "client sent data before the server's continuation", out);
          return;
        }
        [[fallthrough]];
      case mode::command:
        switch (client_.next_line(line)) {
          case line_framer::status::need_more:
            maybe_finish_drain(out);
            return;
          case line_framer::status::too_long:
            // POP3 has no literals: the framer finds the next line, the session goes on.
            if (mode_ == mode::exchange) {
              close_with("-ERR " + settings_.hostname + " line too long\r\n", "limit",
                         "client line over limit during AUTH", out);
              return;
            }
            refuse("-ERR Line too long\r\n", "",
                   "pop3.limit: command line over " + std::to_string(settings_.max_command_line) +
                       " bytes",
                   out);
            break;
          case line_framer::status::line:
            if (mode_ == mode::exchange)
              handle_exchange_line(line, out);
            else
              handle_command(line, out);
            break;
        }
        break;
    }
  }
}

void pop3_machine::handle_command(const std::string& line, step_list& out) {
  if (pending_.size() >= settings_.max_pending_commands) {
    close_with("-ERR " + settings_.hostname + " too many pipelined commands\r\n", "limit",
               "pipelining limit", out);
    return;
  }
  // The keyword by the RFC 1939 grammar, or a refusal from the proxy; never relayed.
  const command_line cmd = parse_command(line, !before_tls());
  if (!cmd.ok) {
    refuse("-ERR Refused by proxy: " + cmd.rule + "\r\n", "", "pop3.syntax: " + cmd.rule, out);
    return;
  }
  const std::string& verb = cmd.keyword;
  // RFC 1939 §7: PASS's argument is the rest of the line, spaces included; others are trimmed.
  const std::string_view argument = verb == "PASS" ? cmd.argument : trim(cmd.argument);

  if (verb == "STLS") {
    if (before_tls() && !authenticated_) {
      // RFC 2595 §4 and CVE-2011-0411: pipelined plaintext after STLS is discarded, never relayed.
      accept_starttls("+OK Begin TLS negotiation\r\n", out);
      return;
    }
    refuse(front_encrypted_ ? "-ERR TLS is already active\r\n" : "-ERR STLS is not available\r\n",
           verb, "pop3.stls: STLS not available in this state (RFC 2595 §4)", out);
    return;
  }
  if ((verb == "USER" || verb == "PASS" || verb == "APOP" || verb == "AUTH") &&
      settings_.require_tls && before_tls()) {
    // No credentials in the clear under require_tls (RFC 2595 §4 leaves this to server policy).
    refuse("-ERR Plaintext authentication is not allowed: use STLS first\r\n", verb,
           "pop3.require_tls: " + verb + " before STLS (RFC 2595 §4)", out);
    return;
  }

  pending p;
  p.multiline = has_multiline_reply(verb, argument);
  if (verb == "PASS" || verb == "APOP" || verb == "AUTH") {
    // The auth guard: a blocked address or user is answered here; nothing reaches the backend.
    std::string_view user = verb == "PASS"   ? std::string_view(user_)
                            : verb == "APOP" ? argument.substr(0, argument.find(' '))
                                             : std::string_view{};
    std::string plain_user;
    if (verb == "AUTH") {
      auto msp = argument.find(' ');
      if (msp != std::string_view::npos && ascii::upper(argument.substr(0, msp)) == "PLAIN")
        user = plain_user = sasl_plain_user(trim(argument.substr(msp + 1))).value_or("");
    }
    if (guard_blocks(user, verb)) {
      pending_.answer(std::string(blocked_reply), out);
      return;
    }
  }
  if (verb == "USER") {
    p.what = kind::user;
    user_ = std::string(argument);
  } else if (verb == "PASS") {
    p.what = kind::pass;
    p.user = user_;
  } else if (verb == "APOP") {
    p.what = kind::apop;
    p.user = std::string(argument.substr(0, argument.find(' ')));
  } else if (verb == "AUTH" && !argument.empty()) {
    p.what = kind::auth;
    auto msp = argument.find(' ');
    if (ascii::upper(argument.substr(0, msp)) == "PLAIN") {
      if (msp == std::string_view::npos)
        sasl_plain_ = true;
      else
        p.user = sasl_plain_user(trim(argument.substr(msp + 1))).value_or("");
    }
    // RFC 5034: client lines are now SASL responses to the server's "+ " requests.
    mode_ = mode::exchange;
    continuations_owed_ = 0;
  } else if (verb == "QUIT") {
    p.what = kind::quit;
  } else if (verb == "CAPA") {
    p.what = kind::capa;
  }
  pending_.expect(std::move(p));
  if (relay_observer_) relay_observer_(verb);
  out.send_backend(line + "\r\n");
}

// A command the proxy answers itself, never relayed; audited with the rule it broke.
void pop3_machine::refuse(std::string reply, const std::string& keyword, std::string rule,
                          step_list& out) {
  record_refusal(std::move(rule), {{"event", "pop3.refused"}, {"command", keyword}});
  pending_.answer(std::move(reply), out);
}

void pop3_machine::handle_exchange_line(const std::string& line, step_list& out) {
  --continuations_owed_;
  if (sasl_plain_) {
    sasl_plain_ = false;
    const std::string user = sasl_plain_user(line).value_or("");
    for (auto& p : pending_) {
      if (p.local || p.relayed.what != kind::auth) continue;
      p.relayed.user = user;
      if (guard_blocks(user, "AUTH")) {
        // The credentials stay here: the exchange is cancelled (RFC 5034 §4).
        p.relayed.blocked_reply = blocked_reply;
        out.send_backend("*\r\n");
        return;
      }
    }
  }
  out.send_backend(line + "\r\n");
}

bool pop3_machine::guard_blocks(std::string_view user, std::string_view command) {
  return auth_check(user, command) != auth_block::none;
}

void pop3_machine::forget_before_tls() {
  mode_ = mode::command;
}

// ---------------------------------------------------------------------------------------------
// Backend side

void pop3_machine::read_backend(std::string_view data, step_list& out) {
  backend_.append(data);
  std::string line;
  while (!closed()) {
    if (backend_state_ == backend_state::body) {
      // A message or listing: streamed as it comes, only its end is looked for.
      std::string_view in = backend_.peek();
      if (in.empty()) return;
      auto r = scanner_.scan(in);
      out.send_client(std::string(in.substr(0, r.consumed)));
      backend_.consume(r.consumed);
      if (r.done) {
        backend_state_ = backend_state::status;
        complete({}, out);
      }
      continue;
    }
    if (!next_backend_line(backend_, line, "-ERR ", out)) return;
    if (backend_state_ == backend_state::capa_body) {
      if (line != ".") {
        capa_bytes_ += line.size() + 2;
        if (capa_bytes_ > settings_.max_capa_bytes) {
          close_with("-ERR " + settings_.hostname + " backend protocol error\r\n",
                     "backend_unavailable", "backend CAPA reply over limit", out);
          return;
        }
        capa_lines_.push_back(line);
        continue;
      }
      std::string wire = capa_status_ + "\r\n";
      for (const auto& l :
           rewrite_capa(capa_lines_, capa_view{.offer_stls = before_tls(),
                                     .hide_sasl = before_tls(),
                                     .hide_user = before_tls() && settings_.require_tls}))
        wire += l + "\r\n";
      wire += ".\r\n";
      out.send_client(std::move(wire));
      capa_lines_.clear();
      capa_bytes_ = 0;
      backend_state_ = backend_state::status;
      complete(capa_status_, out);
      continue;
    }
    handle_status_line(line, out);
  }
}

bool pop3_machine::handle_status_line(const std::string& line, step_list& out) {
  if (mode_ == mode::exchange && (line == "+" || line.starts_with("+ "))) {
    // A SASL challenge (RFC 5034): the client may send one line.
    out.send_client(line + "\r\n");
    ++continuations_owed_;
    process_client(out);
    return true;
  }
  if (!pending_.backend_turn()) {
    // Unasked (a server's "-ERR ... inactivity" before it closes): passed on as it is.
    out.send_client(line + "\r\n");
    return true;
  }
  pending& p = pending_.front().relayed;
  const bool ok = line.starts_with("+OK");
  if (ok && p.multiline) {
    if (p.what == kind::capa) {
      capa_status_ = line;
      backend_state_ = backend_state::capa_body;
      return true;
    }
    out.send_client(line + "\r\n");
    scanner_.reset();
    backend_state_ = backend_state::body;
    return true;
  }
  if (p.what == kind::pass || p.what == kind::apop || p.what == kind::auth) {
    if (!p.blocked_reply.empty()) {
      out.send_client(std::move(p.blocked_reply));
      complete(line, out);
      return true;
    }
    // The backend's verdict for the auth guard (a failure's reply waits for the tarpit); a
    // server that could not judge the credentials now gave none.
    if (ok || credentials_refused(line))
      auth_verdict(p.user, ok,
                   p.what == kind::pass   ? "PASS"
                   : p.what == kind::apop ? "APOP"
                                          : "AUTH",
                   out);
  }
  out.send_client(line + "\r\n");
  complete(line, out);
  return true;
}

// The front relayed command has its full reply; `status_line` is its first line ("" after a body).
void pop3_machine::complete(const std::string& status_line, step_list& out) {
  if (pending_.empty()) return;
  pending p = std::move(pending_.take_front().relayed);
  if (p.what == kind::pass || p.what == kind::apop || p.what == kind::auth) {
    if (status_line.starts_with("+OK")) authenticated_ = true;
    boost::json::object e;
    e["event"] = "pop3.login";
    if (settings_.audit_envelope) e["user"] = p.user;
    e["result"] = status_line;
    events_.push_back(std::move(e));
  }
  if (p.what == kind::auth && mode_ == mode::exchange) {
    mode_ = mode::command;
    continuations_owed_ = 0;
    sasl_plain_ = false;
  }
  if (p.what == kind::quit) {
    close_with({}, "ok", {}, out);
    return;
  }
  pending_.flush(out);
  process_client(out);
}

// ---------------------------------------------------------------------------------------------
// Endings. Without QUIT a POP3 server never enters the UPDATE state (RFC 1939 §6), so messages
// marked for deletion stay: the proxy never sends QUIT on the client's behalf.

void pop3_machine::end(ending why, step_list& out) {
  // No reply in the middle of a body; after the backend is lost, none to a client that asked
  // nothing.
  const bool in_body = backend_state_ != backend_state::status;
  switch (why) {
    case ending::client_closed:
      close_with({}, "client_closed", {}, out);
      return;
    case ending::backend_lost:
      close_with(!in_body && !pending_.empty()
                     ? "-ERR " + settings_.hostname + " connection to backend lost\r\n"
                     : "",
                 "backend_unavailable", "backend closed the connection", out);
      return;
    case ending::idle_timeout:
      close_with(in_body ? "" : "-ERR " + settings_.hostname + " autologout; idle timeout\r\n",
                 "timeout", "idle timeout", out);
      return;
  }
}

bool pop3_machine::at_boundary() const {
  return mode_ == mode::command && pending_.empty() && client_.buffered() == 0 &&
         backend_state_ == backend_state::status;
}

void pop3_machine::maybe_finish_drain(step_list& out) {
  if (!pending_.draining() || closed() || !at_boundary()) return;
  close_with("-ERR " + settings_.hostname + " shutting down\r\n", "shutdown", "proxy shutting down",
             out);
}

}  // namespace tlsbridge::protocols::pop3
