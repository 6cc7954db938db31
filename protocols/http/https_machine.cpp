#include "protocols/http/https_machine.hpp"

#include <algorithm>
#include <boost/json/array.hpp>

#include "common/ascii_case.hpp"
#include "protocols/http/hsts.hpp"
#include "protocols/http/http_grammar.hpp"
#include "protocols/http/http_request_info.hpp"

namespace tlsbridge::protocols::http {

namespace {

// The short, stable name of the rule behind a refusal (tlsbridge_refusals_total{reason}, the conn
// record's `refusals`); the request's own record keeps the full reason.
std::string_view refusal_rule(unsigned status, std::string_view reason) {
  if (reason.find("RPC_") != std::string_view::npos) return "http.rpc_outside_rpc";
  switch (status) {
    case 408:
      return "http.request_head_timeout";
    case 431:
      return "http.head_too_large";
    case 501:
      return "http.method";
    default:
      return "http.request_syntax";
  }
}

constexpr std::string_view activesync_path = "/Microsoft-Server-ActiveSync";

}  // namespace

https_machine::https_machine(machine_settings settings) : settings_(std::move(settings)) {
  if (!settings_.clock) settings_.clock = [] { return std::chrono::steady_clock::now(); };
}

std::chrono::steady_clock::time_point https_machine::now() const {
  return settings_.clock();
}

std::optional<std::chrono::milliseconds> https_machine::idle_limit() const {
  // A request in flight may be held by the backend (ActiveSync Ping up to its heartbeat, RPC
  // channels half-duplex for long): request_timeout. Between requests: the listener's idle.
  std::optional<std::chrono::milliseconds> limit;
  if (client_mode_ == client_mode::tunnel || backend_mode_ == backend_mode::tunnel ||
      !exchanges_.empty())
    limit = settings_.request_timeout;
  // A request head must complete within request_head from its first byte, however it trickles
  // (the shield). The driver measures from the last activity, which is when this machine last
  // heard from either side: the limit it is given shrinks by what has passed since.
  if (const auto left = head_time_left(); left && (!limit || *left <= *limit)) limit = left;
  return limit;
}

std::optional<std::chrono::milliseconds> https_machine::head_time_left() const {
  if (client_mode_ != client_mode::head || !head_started_) return std::nullopt;
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      request_started_ + settings_.request_head_timeout - last_event_);
  return std::max(left, std::chrono::milliseconds(1));
}

https_machine::exchange* https_machine::response_front() {
  for (auto& ex : exchanges_)
    if (!ex.response_done) return &ex;
  return nullptr;
}

// ---------------------------------------------------------------------------------------------
// Client side

void https_machine::on_client_data(std::string_view data, step_list& out) {
  if (closed_) return;
  last_event_ = now();
  switch (client_mode_) {
    case client_mode::tunnel:
      if (!exchanges_.empty() && !exchanges_.back().recorded)
        exchanges_.back().bytes_in += data.size();
      out.send_backend(std::string(data));
      return;
    case client_mode::held:
      hold(data, out);
      return;
    case client_mode::ignore:
      return;
    case client_mode::head:
    case client_mode::body:
      client_pending_.append(data);
      process_client(out);
      // An idle connection holds no read buffer (proxy/tls_stream holds none either): what was
      // parsed is released.
      if (client_pending_.empty()) std::string().swap(client_pending_);
      return;
  }
}

void https_machine::process_client(step_list& out) {
  while (!closed_ && !client_pending_.empty()) {
    if (client_mode_ == client_mode::head) {
      if (!head_started_) {
        if (exchanges_.size() >= settings_.max_pending_exchanges) {
          finish("limit",
                 "more than " + std::to_string(settings_.max_pending_exchanges) +
                     " pipelined requests awaiting responses",
                 out);
          return;
        }
        // The head's clock and its byte count start at its first byte, empty lines included:
        // neither a trickle of CRLFs nor a run of them gets around request_head or the limit.
        head_started_ = true;
        head_prefix_ = 0;
        head_scanned_ = 0;
        request_started_ = now();
      }
      if (head_scanned_ == 0) {
        // RFC 9112 §2.2: empty lines (CRLF) before a request line are ignored and not passed on;
        // a bare CR or LF there is refused like one inside the head.
        std::size_t skip = 0;
        while (skip + 1 < client_pending_.size() && client_pending_[skip] == '\r' &&
               client_pending_[skip + 1] == '\n')
          skip += 2;
        client_pending_.erase(0, skip);
        head_prefix_ += skip;
        if (head_prefix_ >= settings_.max_header_bytes) {
          refuse_head(431,
                      "request head over " + std::to_string(settings_.max_header_bytes) +
                          " bytes (RFC 6585 §5), empty lines before it included",
                      out);
          return;
        }
        if (client_pending_.empty() || client_pending_ == "\r") return;  // need more
      }
      // The head is framed here, not by Beast: CRLF only, and its size counted exactly over
      // everything received since its first byte, however the client split it.
      const head_scan scan =
          scan_head(client_pending_, head_scanned_, settings_.max_header_bytes - head_prefix_);
      switch (scan.what) {
        case head_scan::result::need_more:
          head_scanned_ = scan.scanned;
          return;
        case head_scan::result::bare_line_ending:
          refuse_head(400, "a bare CR or LF in the request head (RFC 9112 §2.2)", out);
          return;
        case head_scan::result::too_large:
          refuse_head(431,
                      "request head over " + std::to_string(settings_.max_header_bytes) +
                          " bytes (RFC 6585 §5)",
                      out);
          return;
        case head_scan::result::complete:
          break;
      }
      std::string raw = client_pending_.substr(0, scan.length);
      client_pending_.erase(0, scan.length);
      head_started_ = false;
      on_request_head(raw, out);
      continue;
    }
    if (client_mode_ == client_mode::body) {
      exchange& ex = exchanges_.back();
      std::string forward;
      std::size_t n = 0;
      bool done = false;
      std::string error;
      if (chunked_) {
        // Re-serialised: only framing the decoder validated reaches the backend.
        n = chunked_->put(client_pending_, forward);
        done = chunked_->done();
        error = chunked_->error();
      } else {
        n = static_cast<std::size_t>(std::min<std::uint64_t>(body_left_, client_pending_.size()));
        forward.assign(client_pending_, 0, n);
        body_left_ -= n;
        done = body_left_ == 0;
      }
      ex.bytes_in += n;
      client_pending_.erase(0, n);
      if (!forward.empty()) out.send_backend(std::move(forward));
      if (!error.empty()) {
        // Part of this request is at the backend already: drop the back leg (it must not take
        // the rest as a new request), answer 400 if no response has begun, and close.
        const std::string why = "bad request body: " + error;
        ex.request_done = true;
        ex.details["reason"] = why;
        out.abort_backend();
        if (response_front() == &ex && !ex.response_started) answer_now(ex, 400, why, out);
        finish("", why, out);
        return;
      }
      if (done) {
        chunked_.reset();
        request_complete(out);
        continue;
      }
      return;  // need more
    }
    if (client_mode_ == client_mode::held) {
      hold(client_pending_, out);
      client_pending_.clear();
      return;
    }
    if (client_mode_ == client_mode::tunnel) {
      if (!exchanges_.empty() && !exchanges_.back().recorded)
        exchanges_.back().bytes_in += client_pending_.size();
      out.send_backend(std::move(client_pending_));
      client_pending_.clear();
      return;
    }
    client_pending_.clear();  // ignore
  }
}

// Client bytes after an Upgrade request, before its answer says what they are (RFC 9110 §7.8):
// kept, bounded.
void https_machine::hold(std::string_view bytes, step_list& out) {
  held_.append(bytes);
  if (held_.size() > settings_.max_held_bytes)
    finish("limit",
           "more than " + std::to_string(settings_.max_held_bytes) +
               " bytes sent before the answer to an Upgrade request",
           out);
}

void https_machine::refuse_head(unsigned status, std::string reason, step_list& out) {
  // The head never became a request: the record names what its first line says, bounded.
  const std::string_view pending(client_pending_);
  exchange& ex =
      open_exchange(pending.substr(0, std::min<std::size_t>(pending.find_first_of("\r\n"), 512)),
                    client_pending_.size());
  head_started_ = false;
  refuse_request(ex, status, std::move(reason), out);
}

// A new exchange record, named by its request line: the method (bounded) and the raw path.
https_machine::exchange& https_machine::open_exchange(std::string_view request_line,
                                                      std::size_t bytes_in) {
  exchanges_.emplace_back();
  exchange& ex = exchanges_.back();
  const auto sp = request_line.find(' ');
  ex.method = std::string(request_line.substr(0, std::min<std::size_t>(sp, 64)));
  if (sp != std::string_view::npos) {
    const std::string_view rest = request_line.substr(sp + 1);
    ex.path = raw_path(rest.substr(0, rest.find(' ')));
  }
  ex.started = request_started_;
  ex.bytes_in = bytes_in;
  return ex;
}

void https_machine::on_request_head(std::string_view raw_head, step_list& out) {
  exchange& ex = open_exchange(raw_head.substr(0, raw_head.find("\r\n")), raw_head.size());

  // Tokenised by the RFC grammar first; Beast then reads the fields of a head that
  // is known to be well-formed, and the smuggling checks judge its framing.
  if (auto bad = check_head_grammar(raw_head)) {
    refuse_request(ex, bad->status, bad->reason, out);
    return;
  }
  message_parser parser(message_parser::kind::request, raw_head.size() + 1);
  std::error_code ec;
  const std::size_t used = parser.put(raw_head, ec);
  if (ec || used != raw_head.size() || !parser.header_done()) {
    refuse_request(ex, ec == parse_errc::header_too_large ? 431 : 400,
                   "bad request: " + (ec ? ec.message() : std::string("head not understood")), out);
    return;
  }
  const message_head& h = parser.head();
  ex.head_request = h.method == "HEAD";

  if (const std::string* authorization = h.find("Authorization")) {
    auth_info auth = parse_authorization(*authorization);
    boost::json::object a;
    a["scheme"] = auth.scheme;
    if (auth.ntlm_type) a["ntlm_message"] = auth.ntlm_type;
    if (settings_.audit_envelope && !auth.user.empty()) a["user"] = auth.user;
    if (settings_.audit_envelope && !auth.domain.empty()) a["domain"] = auth.domain;
    ex.details["auth"] = std::move(a);
    if (ascii::iequals(auth.scheme, "Basic") || auth.ntlm_type == 3) {
      ex.auth_scheme = auth.ntlm_type == 3 ? "NTLM" : "Basic";
      ex.auth_user = auth.user;
    }
  }

  if (auto refused = check_request(h, raw_head)) {
    refuse_request(ex, refused->status, refused->reason, out);
    return;
  }

  const auto normalized = normalized_path(h.target);
  if (normalized && ascii::istarts_with(*normalized, activesync_path)) {
    if (auto as = decode_activesync_query(h.target)) {
      boost::json::object a;
      a["form"] = as->form;
      a["cmd"] = as->cmd;
      if (settings_.audit_envelope && !as->user.empty()) a["user"] = as->user;
      a["device_id"] = as->device_id;
      a["device_type"] = as->device_type;
      if (!as->protocol_version.empty()) a["protocol_version"] = as->protocol_version;
      ex.details["activesync"] = std::move(a);
    }
  }

  const bool has_body = h.chunked || h.content_length.value_or(0) > 0;
  if (normalized && path_allowed(*normalized, settings_.allow_paths) && rpc_method(h.method) &&
      !path_allowed(*normalized, {"/rpc"})) {
    // Outlook Anywhere's channels live under /rpc/ (MS-RPCH §2.1.2.1); elsewhere the method
    // means nothing to Exchange but could still reach IIS modules on an allowed path.
    refuse_request(ex, 400, "RPC_IN_DATA/RPC_OUT_DATA outside /rpc/ (MS-RPCH §2.1.2.1)", out);
    return;
  }
  if (!normalized || !path_allowed(*normalized, settings_.allow_paths)) {
    // Never reaches the backend, and no backend connection is opened for it.
    count_refusal("http.allow_paths");
    answer_locally(ex, 404, "path not in allow_paths", has_body, h.keep_alive, out);
    return;
  }
  if (!ex.auth_scheme.empty() && auth_check(ex.auth_user, ex.auth_scheme) != auth_block::none) {
    // The auth guard: these credentials never reach the backend (RFC 6585 §4: 429).
    answer_locally(ex, 429, "auth guard: too many failed logins", has_body, h.keep_alive, out);
    return;
  }

  // Fields whose names IIS folds onto others (X_Forwarded_For → X-Forwarded-For) are dropped,
  // as nginx does with underscores_in_headers off: stripping cannot widen what reaches the
  // backend, and clients that send them (older device firmware) keep working.
  boost::json::array stripped;
  for (const auto& f : h.fields)
    if (folded_field_name(f.name) && stripped.size() < 16) stripped.emplace_back(f.name);
  if (!stripped.empty()) ex.details["stripped_fields"] = std::move(stripped);

  ex.upgrade = h.find("Upgrade") != nullptr;
  if (!backend_open_) {
    backend_open_ = true;
    out.connect_backend();
  }
  out.send_backend(settings_.forwarded_headers
                       ? forwarded_head(raw_head, connection_.client_ip,
                                        connection_.front_tls ? "https" : "http")
                       : strip_folded_fields(raw_head));
  // The body is framed by the head the proxy checked, also for RPC_IN_DATA (its Content-Length
  // bounds the channel, MS-RPCH §2.1.2.1.1): what follows it is a new request, checked again.
  if (h.chunked) {
    chunked_.emplace(settings_.max_header_bytes);
    client_mode_ = client_mode::body;
  } else if (has_body) {
    body_left_ = *h.content_length;
    client_mode_ = client_mode::body;
  } else {
    request_complete(out);
  }
}

void https_machine::answer_locally(exchange& ex, unsigned status, std::string reason, bool has_body,
                                   bool keep_alive, step_list& out) {
  ex.local = true;
  ex.status = status;
  ex.close_after = has_body || !keep_alive;
  ex.local_wire = proxy_response(status, ex.close_after);
  ex.details["reason"] = std::move(reason);
  if (!has_body) {
    request_complete(out);
    return;
  }
  ex.request_done = true;
  client_mode_ = client_mode::ignore;
  client_pending_.clear();
  flush_local(out);
}

void https_machine::request_complete(step_list& out) {
  if (closed_ || exchanges_.empty()) return;
  exchange& ex = exchanges_.back();
  ex.request_done = true;
  if (ex.upgrade && !ex.response_done) {
    // What follows may be the new protocol (RFC 9110 §7.8): hold it until the answer says.
    client_mode_ = client_mode::held;
    held_ += client_pending_;
    client_pending_.clear();
  } else {
    client_mode_ = client_mode::head;
  }
  flush_local(out);
}

void https_machine::refuse_request(exchange& ex, unsigned status, std::string reason,
                                   step_list& out) {
  ex.local = true;
  ex.status = status;
  ex.close_after = true;
  ex.request_done = true;
  ex.local_wire = proxy_response(status, true);
  ex.details["reason"] = reason;
  count_refusal(refusal_rule(status, reason));
  head_started_ = false;
  chunked_.reset();
  client_pending_.clear();
  client_mode_ = client_mode::ignore;
  refusal_reason_ = std::move(reason);
  flush_local(out);
}

// ---------------------------------------------------------------------------------------------
// Backend side

void https_machine::on_backend_data(std::string_view data, step_list& out) {
  if (closed_) return;
  last_event_ = now();
  backend_pending_.append(data);
  process_backend(out);
  if (backend_pending_.empty()) std::string().swap(backend_pending_);
}

void https_machine::process_backend(step_list& out) {
  while (!closed_ && !backend_pending_.empty()) {
    if (backend_mode_ == backend_mode::tunnel) {
      exchange* t = exchanges_.empty() ? nullptr : &exchanges_.back();
      if (t && !t->recorded) t->bytes_out += backend_pending_.size();
      out.send_client(std::move(backend_pending_));
      backend_pending_.clear();
      break;
    }
    exchange* ex = response_front();
    if (!ex || ex->local) {
      finish("", "the backend sent bytes with no request awaiting them", out);
      return;
    }
    if (!response_)
      response_.emplace(message_parser::kind::response, settings_.max_header_bytes,
                        ex->head_request);
    const bool in_head = !response_->header_done();
    std::error_code ec;
    const std::size_t n = response_->put(backend_pending_, ec);
    if (in_head) {
      response_head_.append(backend_pending_, 0, n);
      backend_pending_.erase(0, n);
      if (ec) {
        bad_backend_response(*ex, "response head: " + ec.message(), out);
        return;
      }
      if (!response_->header_done()) break;  // need more
      std::string raw = std::move(response_head_);
      response_head_.clear();
      on_response_head(*ex, raw, out);
      if (!closed_ && response_ && response_->done()) response_complete(*ex, out);
      continue;
    }
    if (n) {
      ex->bytes_out += n;
      out.send_client(backend_pending_.substr(0, n));
      backend_pending_.erase(0, n);
    }
    if (!ec && n == 0 && !response_->done() && backend_pending_.size() > settings_.max_header_bytes)
      ec = parse_errc::bad_chunk;
    if (ec) {
      bad_backend_response(*ex, "response body: " + ec.message(), out);
      return;
    }
    if (response_->done()) {
      response_complete(*ex, out);
      continue;
    }
    if (n == 0) break;  // need more
  }
  if (release_held_ && !closed_) {
    // The Upgrade was declined: what the client sent after it is HTTP after all.
    release_held_ = false;
    client_mode_ = client_mode::head;
    client_pending_ = std::move(held_);
    held_.clear();
    process_client(out);
  }
}

void https_machine::on_response_head(exchange& ex, std::string_view raw_head, step_list& out) {
  const message_head& h = response_->head();
  ex.bytes_out += raw_head.size();
  ex.response_started = true;
  if (h.status == 101) {
    if (!ex.upgrade) {
      finish("", "the backend switched protocols without an Upgrade request", out);
      return;
    }
    out.send_client(std::string(raw_head));
    ex.status = 101;
    ex.tunnel = true;
    ex.request_done = ex.response_done = true;
    ex.details["tunnel"] = true;
    response_.reset();
    start_tunnel(out);
    emit_ready_records();
    return;
  }
  if (h.status / 100 == 1) {
    // Interim (100 Continue, 102, 103): passed on; the final response follows (RFC 9110 §15.2).
    out.send_client(std::string(raw_head));
    response_.reset();
    return;
  }
  if (!ex.auth_scheme.empty() && (h.status == 401 || h.status / 100 == 2 || h.status / 100 == 3))
    auth_verdict(ex.auth_user, h.status != 401, ex.auth_scheme, out);  // a 401 waits the tarpit
  std::string head = with_hsts(raw_head, h, settings_.hsts);
  ex.bytes_out += head.size() - raw_head.size();
  out.send_client(std::move(head));
  ex.status = h.status;
  if (ex.upgrade && client_mode_ == client_mode::held) release_held_ = true;
}

void https_machine::response_complete(exchange& ex, step_list& out) {
  ex.response_done = true;
  const bool keep_alive = response_->head().keep_alive;
  response_.reset();
  if (!keep_alive) {
    // The backend ends the pinned connection after this response: so does the proxy, and the
    // client (told by Connection: close or HTTP/1.0) opens a new one.
    finish("", "the backend closed the connection after a response", out);
    return;
  }
  flush_local(out);
}

// The proxy answers `ex` itself at once (its response is the one the client reads next), and its
// record says so and why; the session closes after it, so the answer says Connection: close.
void https_machine::answer_now(exchange& ex, unsigned status, std::string reason, step_list& out) {
  std::string wire = proxy_response(status, true);
  ex.bytes_out += wire.size();
  out.send_client(std::move(wire));
  ex.status = status;
  ex.response_started = ex.response_done = true;
  ex.details["origin"] = "proxy";
  ex.details["reason"] = std::move(reason);
}

void https_machine::bad_backend_response(exchange& ex, std::string reason, step_list& out) {
  const std::string why = "malformed backend " + reason;
  if (!ex.response_started)
    answer_now(ex, 502, why, out);
  else
    ex.details["reason"] = why;
  finish("", why, out);
}

void https_machine::start_tunnel(step_list& out) {
  client_mode_ = client_mode::tunnel;
  backend_mode_ = backend_mode::tunnel;
  std::string early = std::move(held_);
  held_.clear();
  early += client_pending_;
  client_pending_.clear();
  if (!early.empty()) out.send_backend(std::move(early));
}

// One side's EOF. In a tunnel (after 101) each direction runs until its own EOF: it becomes a
// half-close towards the other side, and the session ends when both are done. True: handled.
bool https_machine::side_ended(bool client_side, step_list& out) {
  (client_side ? client_done_ : backend_gone_) = true;
  const bool tunnel =
      client_side ? client_mode_ == client_mode::tunnel : backend_mode_ == backend_mode::tunnel;
  if (!tunnel) return false;
  if (client_side)
    out.shutdown_backend_send();
  else
    out.shutdown_client_send();
  if (client_done_ && backend_gone_) finish("", "", out);
  return true;
}

void https_machine::on_backend_connected(bool ok, step_list& out) {
  if (ok || closed_) return;
  backend_open_ = false;
  exchange* ex = response_front();
  if (ex && !ex->local) answer_now(*ex, 502, "backend unreachable", out);
  // The driver's reason (which addresses failed, or the policy verdict) stays the record's.
  finish("backend_unavailable", "", out);
}

void https_machine::on_backend_eof(step_list& out) {
  if (closed_ || side_ended(/*client_side=*/false, out)) return;
  exchange* ex = response_front();
  if (response_ && response_->header_done()) {
    std::error_code ec;
    response_->put_eof(ec);
    if (!ec && response_->done() && ex) {
      response_complete(*ex, out);  // a body delimited by the close (RFC 9112 §6.3 rule 8)
      if (closed_) return;
    }
  } else if (ex && !ex->local && !ex->response_started) {
    // Closed before answering (e.g. its keep-alive timeout raced the request).
    answer_now(*ex, 502, "the backend closed the connection without a response", out);
  }
  // The pinned connection is gone: so is the client's (its authentication went with it).
  finish("", "the backend closed the connection", out);
}

// ---------------------------------------------------------------------------------------------
// Both sides

void https_machine::on_client_eof(step_list& out) {
  if (closed_ || side_ended(/*client_side=*/true, out)) return;
  const bool inside_request =
      !client_pending_.empty() || client_mode_ == client_mode::body;  // empty lines are not
  if (inside_request) {
    finish("client_closed", "the client closed the connection inside a request", out);
    return;
  }
  if (exchanges_.empty()) {
    finish("", "", out);
    return;
  }
  // Requests complete, responses outstanding: they are delivered, then the session ends.
}

void https_machine::on_idle_timeout(step_list& out) {
  if (closed_) return;
  const auto head_left = head_time_left();
  if (head_left && (exchanges_.empty() || *head_left <= settings_.request_timeout)) {
    // The head deadline is what fired (idle_limit gave the driver the nearer of the two).
    const std::string reason = "request head not complete within timeouts.request_head (" +
                               std::to_string(settings_.request_head_timeout.count()) + " ms)";
    if (!response_front()) {
      facts_.outcome = "timeout";
      refuse_head(408, reason, out);  // its turn: answer 408 (RFC 9110 §15.5.9) and close
      return;
    }
    finish("timeout", reason, out);
    return;
  }
  exchange* ex = response_front();
  if (ex && !ex->local && !ex->tunnel && !ex->response_started &&
      backend_mode_ == backend_mode::message) {
    answer_now(*ex, 504, "no response head within request_timeout", out);
    finish("timeout", "no response from the backend within request_timeout", out);
    return;
  }
  finish(
      "timeout",
      exchanges_.empty() ? "idle timeout between requests" : "no progress within request_timeout",
      out);
}

void https_machine::on_shutdown(step_list& out) {
  if (closed_) return;
  draining_ = true;
  // A tunnel has no boundary to stop at: it runs until the grace period ends.
  if (client_mode_ == client_mode::tunnel || backend_mode_ == backend_mode::tunnel) return;
  maybe_close(out);
}

void https_machine::flush_local(step_list& out) {
  while (!closed_) {
    exchange* ex = response_front();
    if (!ex || !ex->local) break;
    out.send_client(ex->local_wire);
    ex->bytes_out += ex->local_wire.size();
    ex->response_started = ex->response_done = true;
    ex->details["origin"] = "proxy";
    if (ex->close_after) {
      finish("", refusal_reason_, out);
      return;
    }
  }
  emit_ready_records();
  maybe_close(out);
}

void https_machine::maybe_close(step_list& out) {
  if (closed_ || !exchanges_.empty() || client_mode_ != client_mode::head) return;
  if (draining_) {
    finish("shutdown", "shutting down", out);
  } else if (client_done_ && client_pending_.empty()) {
    finish("", "", out);
  }
}

void https_machine::emit_ready_records() {
  while (!exchanges_.empty() && exchanges_.front().request_done &&
         exchanges_.front().response_done) {
    emit_record(exchanges_.front());
    exchanges_.pop_front();
  }
}

void https_machine::emit_record(exchange& ex) {
  if (ex.recorded) return;
  ex.recorded = true;
  boost::json::object e;
  e["event"] = "http.request";
  e["method"] = ex.method;
  e["path"] = ex.path;
  e["status"] = ex.status ? boost::json::value(ex.status) : boost::json::value(nullptr);
  e["bytes_in"] = ex.bytes_in;
  e["bytes_out"] = ex.bytes_out;
  e["duration_ms"] =
      std::chrono::duration_cast<std::chrono::milliseconds>(now() - ex.started).count();
  // A refusal still waiting for its turn when the session ended was never relayed either.
  if (!ex.details.contains("origin")) e["origin"] = ex.local ? "proxy" : "backend";
  for (auto& kv : ex.details) e[kv.key()] = kv.value();
  if (!ex.response_done && !ex.tunnel) e["incomplete"] = true;
  events_.push_back(std::move(e));
}

void https_machine::finish(std::string outcome, std::string reason, step_list& out) {
  if (closed_) return;
  closed_ = true;
  if (!outcome.empty()) facts_.outcome = std::move(outcome);
  if (!reason.empty()) facts_.reason = std::move(reason);
  for (auto& ex : exchanges_) emit_record(ex);
  exchanges_.clear();
  client_mode_ = client_mode::ignore;
  out.close();
}

}  // namespace tlsbridge::protocols::http
