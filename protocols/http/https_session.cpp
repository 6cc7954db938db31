#include "protocols/http/https_session.hpp"

#include <algorithm>
#include <cctype>

#include "protocols/http/http_request_info.hpp"

namespace tlsbridge::protocols::http {

namespace {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

bool istarts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

constexpr std::string_view activesync_path = "/Microsoft-Server-ActiveSync";

}  // namespace

https_session::https_session(session_settings settings) : settings_(std::move(settings)) {
  if (!settings_.clock) settings_.clock = [] { return std::chrono::steady_clock::now(); };
}

std::chrono::steady_clock::time_point https_session::now() const {
  return settings_.clock();
}

std::optional<std::chrono::milliseconds> https_session::idle_limit() const {
  // A request in flight may be held by the backend (ActiveSync Ping up to its heartbeat, RPC
  // channels half-duplex for long): request_timeout. Between requests: the listener's idle.
  if (client_mode_ == client_mode::tunnel || backend_mode_ == backend_mode::tunnel ||
      !exchanges_.empty())
    return settings_.request_timeout;
  return std::nullopt;
}

std::string https_session::service_unavailable() const {
  return proxy_response(502, true);
}

std::string https_session::over_limit() const {
  return proxy_response(503, true);
}

https_session::exchange* https_session::response_front() {
  for (auto& ex : exchanges_)
    if (!ex.response_done) return &ex;
  return nullptr;
}

// ---------------------------------------------------------------------------------------------
// Client side

void https_session::on_client_data(std::string_view data, step_list& out) {
  if (closed_) return;
  switch (client_mode_) {
    case client_mode::tunnel:
      if (!exchanges_.empty() && !exchanges_.back().recorded)
        exchanges_.back().bytes_in += data.size();
      out.send_backend(std::string(data));
      return;
    case client_mode::held:
      held_.append(data);
      if (held_.size() > settings_.max_held_bytes)
        finish("limit",
               "more than " + std::to_string(settings_.max_held_bytes) +
                   " bytes sent before the answer to an Upgrade request",
               out);
      return;
    case client_mode::ignore:
      return;
    case client_mode::head:
    case client_mode::body:
      client_pending_.append(data);
      process_client(out);
      // An idle connection holds no read buffer (STYLE.md §8): what was parsed is released.
      if (client_pending_.empty()) std::string().swap(client_pending_);
      return;
  }
}

void https_session::process_client(step_list& out) {
  while (!closed_ && !client_pending_.empty()) {
    if (client_mode_ == client_mode::head) {
      if (!request_) {
        // RFC 9112 §2.2: empty lines before a request line are ignored.
        if (client_pending_.front() == '\r' || client_pending_.front() == '\n') {
          const auto skip = client_pending_.find_first_not_of("\r\n");
          client_pending_.erase(0, skip);
          continue;
        }
        if (exchanges_.size() >= settings_.max_pending_exchanges) {
          finish("limit",
                 "more than " + std::to_string(settings_.max_pending_exchanges) +
                     " pipelined requests awaiting responses",
                 out);
          return;
        }
        request_.emplace(message_parser::kind::request, settings_.max_header_bytes);
        request_started_ = now();
      }
      std::error_code ec;
      std::size_t n = 0;
      if (bare_line_ending()) {
        ec = parse_errc::malformed;  // Beast would wait for a CRLF CRLF that never comes
      } else {
        n = request_->put(client_pending_, ec);
        request_head_.append(client_pending_, 0, n);
        client_pending_.erase(0, n);
      }
      if (ec) {
        exchanges_.emplace_back();
        exchange& ex = exchanges_.back();
        ex.method = request_->head().method;
        ex.path = raw_path(request_->head().target);
        ex.started = request_started_;
        ex.bytes_in = request_head_.size() + client_pending_.size();
        const bool too_large = ec == parse_errc::header_too_large;
        refuse_request(
            ex, too_large ? 431 : 400,
            too_large ? "request head over " + std::to_string(settings_.max_header_bytes) + " bytes"
                      : "bad request: " + ec.message(),
            out);
        return;
      }
      if (!request_->header_done()) return;  // need more
      std::string raw = std::move(request_head_);
      request_head_.clear();
      on_request_head(raw, out);
      if (!closed_ && request_ && request_->done()) request_complete(out);
      continue;
    }
    if (client_mode_ == client_mode::body) {
      exchange& ex = exchanges_.back();
      std::error_code ec;
      const std::size_t n = request_->put(client_pending_, ec);
      if (n) {
        ex.bytes_in += n;
        out.send_backend(client_pending_.substr(0, n));
        client_pending_.erase(0, n);
      }
      if (!ec && n == 0 && !request_->done() && client_pending_.size() > settings_.max_header_bytes)
        ec = parse_errc::bad_chunk;  // a chunk-size line that never ends
      if (ec) {
        // Part of this request is at the backend already: drop the back leg (it must not take
        // the rest as a new request), answer 400 if no response has begun, and close.
        ex.request_done = true;
        ex.details["reason"] = "bad request body: " + ec.message();
        out.abort_backend();
        if (response_front() == &ex && !ex.response_started) {
          std::string wire = proxy_response(400, true);
          ex.bytes_out += wire.size();
          out.send_client(std::move(wire));
          ex.status = 400;
          ex.response_started = ex.response_done = true;
          ex.details["origin"] = "proxy";
        }
        finish("", "bad request body: " + ec.message(), out);
        return;
      }
      if (request_->done()) {
        request_complete(out);
        continue;
      }
      if (n == 0) return;  // need more
      continue;
    }
    if (client_mode_ == client_mode::held) {
      held_ += client_pending_;
      client_pending_.clear();
      if (held_.size() > settings_.max_held_bytes)
        finish("limit",
               "more than " + std::to_string(settings_.max_held_bytes) +
                   " bytes sent before the answer to an Upgrade request",
               out);
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

bool https_session::bare_line_ending() const {
  // Only the head is looked at: a body may hold any bytes.
  const std::size_t end = std::min(client_pending_.find("\r\n\r\n"), client_pending_.size());
  for (std::size_t i = 0; i < end; ++i) {
    const char c = client_pending_[i];
    const char before =
        i ? client_pending_[i - 1] : (request_head_.empty() ? '\0' : request_head_.back());
    if (c == '\n' && before != '\r') return true;
    if (c == '\r' && i + 1 < client_pending_.size() && client_pending_[i + 1] != '\n') return true;
  }
  return false;
}

void https_session::on_request_head(std::string_view raw_head, step_list& out) {
  const message_head& h = request_->head();
  exchanges_.emplace_back();
  exchange& ex = exchanges_.back();
  ex.method = h.method;
  ex.path = raw_path(h.target);
  ex.started = request_started_;
  ex.bytes_in = raw_head.size();
  ex.head_request = iequals(h.method, "HEAD");

  if (const std::string* authorization = h.find("Authorization")) {
    auth_info auth = parse_authorization(*authorization);
    boost::json::object a;
    a["scheme"] = auth.scheme;
    if (auth.ntlm_type) a["ntlm_message"] = auth.ntlm_type;
    if (settings_.audit_envelope && !auth.user.empty()) a["user"] = auth.user;
    if (settings_.audit_envelope && !auth.domain.empty()) a["domain"] = auth.domain;
    ex.details["auth"] = std::move(a);
  }

  if (auto refused = check_request(h, raw_head)) {
    refuse_request(ex, refused->status, refused->reason, out);
    return;
  }

  const auto normalized = normalized_path(h.target);
  if (normalized && istarts_with(*normalized, activesync_path)) {
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

  if (!normalized || !path_allowed(*normalized, settings_.allow_paths)) {
    // Never reaches the backend, and no backend connection is opened for it. A body that
    // follows is not read through: the 404 closes the connection instead.
    const bool has_body = !request_->done();
    ex.local = true;
    ex.status = 404;
    ex.close_after = has_body || !h.keep_alive;
    ex.local_wire = proxy_response(404, ex.close_after);
    ex.details["reason"] = "path not in allow_paths";
    if (has_body) {
      ex.request_done = true;
      request_.reset();
      client_mode_ = client_mode::ignore;
      client_pending_.clear();
    }
    flush_local(out);
    return;
  }

  // Outlook Anywhere's channels are long-lived byte streams after their head (MS-RPCH §2.1.2.1).
  ex.tunnel = iequals(h.method, "RPC_IN_DATA") || iequals(h.method, "RPC_OUT_DATA");
  ex.upgrade = !ex.tunnel && h.find("Upgrade") != nullptr;
  if (!backend_open_) {
    backend_open_ = true;
    out.connect_backend();
  }
  out.send_backend(settings_.forwarded_headers
                       ? forwarded_head(raw_head, connection_.client_ip,
                                        connection_.front_tls ? "https" : "http")
                       : std::string(raw_head));
  if (ex.tunnel) {
    ex.request_done = true;
    ex.details["tunnel"] = true;
    request_.reset();
    client_mode_ = client_mode::tunnel;
    if (!client_pending_.empty()) {
      ex.bytes_in += client_pending_.size();
      out.send_backend(std::move(client_pending_));
      client_pending_.clear();
    }
    return;
  }
  client_mode_ = client_mode::body;
}

void https_session::request_complete(step_list& out) {
  if (closed_ || exchanges_.empty()) return;
  exchange& ex = exchanges_.back();
  ex.request_done = true;
  request_.reset();
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

void https_session::refuse_request(exchange& ex, unsigned status, std::string reason,
                                   step_list& out) {
  ex.local = true;
  ex.status = status;
  ex.close_after = true;
  ex.request_done = true;
  ex.local_wire = proxy_response(status, true);
  ex.details["reason"] = reason;
  request_.reset();
  request_head_.clear();
  client_pending_.clear();
  client_mode_ = client_mode::ignore;
  refusal_reason_ = std::move(reason);
  flush_local(out);
}

// ---------------------------------------------------------------------------------------------
// Backend side

void https_session::on_backend_data(std::string_view data, step_list& out) {
  if (closed_) return;
  backend_pending_.append(data);
  process_backend(out);
  if (backend_pending_.empty()) std::string().swap(backend_pending_);
}

void https_session::process_backend(step_list& out) {
  while (!closed_ && !backend_pending_.empty()) {
    if (backend_mode_ == backend_mode::tunnel) {
      exchange* t = exchanges_.empty() ? nullptr : &exchanges_.back();
      if (t && !t->recorded) {
        t->bytes_out += backend_pending_.size();
        snoop_tunnel_head(*t, backend_pending_);
      }
      out.send_client(std::move(backend_pending_));
      backend_pending_.clear();
      break;
    }
    exchange* ex = response_front();
    if (!ex || ex->local) {
      finish("", "the backend sent bytes with no request awaiting them", out);
      return;
    }
    if (ex->tunnel) {
      // The RPC channel's turn: from here every backend byte is the channel's; its head is
      // read on the side for the audit record.
      backend_mode_ = backend_mode::tunnel;
      tunnel_snoop_.emplace(message_parser::kind::response, settings_.max_header_bytes);
      continue;
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

void https_session::on_response_head(exchange& ex, std::string_view raw_head, step_list& out) {
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
    ex.request_done = ex.response_done = true;
    ex.details["tunnel"] = true;
    response_.reset();
    start_tunnel(out);
    emit_ready_records();
    return;
  }
  out.send_client(std::string(raw_head));
  if (h.status / 100 == 1) {
    // Interim (100 Continue, 102, 103): passed on; the final response follows (RFC 9110 §15.2).
    response_.reset();
    return;
  }
  ex.status = h.status;
  if (ex.upgrade && client_mode_ == client_mode::held) release_held_ = true;
}

void https_session::response_complete(exchange& ex, step_list& out) {
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

void https_session::bad_backend_response(exchange& ex, std::string reason, step_list& out) {
  if (!ex.response_started) {
    std::string wire = proxy_response(502, true);
    ex.bytes_out += wire.size();
    out.send_client(std::move(wire));
    ex.status = 502;
    ex.response_started = ex.response_done = true;
    ex.details["origin"] = "proxy";
  }
  ex.details["reason"] = "malformed backend " + reason;
  finish("", "malformed backend " + reason, out);
}

void https_session::snoop_tunnel_head(exchange& ex, std::string_view data) {
  if (!tunnel_snoop_ || ex.tunnel == false) return;
  tunnel_snoop_pending_.append(data);
  while (tunnel_snoop_ && !tunnel_snoop_pending_.empty()) {
    std::error_code ec;
    const std::size_t n = tunnel_snoop_->put(tunnel_snoop_pending_, ec);
    tunnel_snoop_pending_.erase(0, n);
    if (ec) {
      ex.details["reason"] = "tunnel response head: " + ec.message();
      tunnel_snoop_.reset();
      break;
    }
    if (!tunnel_snoop_->header_done()) return;  // need more
    const unsigned status = tunnel_snoop_->head().status;
    if (status / 100 == 1 && status != 101) {
      tunnel_snoop_.emplace(message_parser::kind::response, settings_.max_header_bytes);
      continue;
    }
    ex.status = status;
    ex.response_started = true;
    tunnel_snoop_.reset();
  }
  tunnel_snoop_pending_.clear();
  tunnel_snoop_pending_.shrink_to_fit();
  emit_record(ex);
}

void https_session::start_tunnel(step_list& out) {
  client_mode_ = client_mode::tunnel;
  backend_mode_ = backend_mode::tunnel;
  request_.reset();
  std::string early = std::move(held_);
  held_.clear();
  early += client_pending_;
  client_pending_.clear();
  if (!early.empty()) out.send_backend(std::move(early));
}

void https_session::on_backend_connected(bool ok, step_list& out) {
  if (ok || closed_) return;
  backend_open_ = false;
  exchange* ex = response_front();
  if (ex && !ex->local) {
    std::string wire = proxy_response(502, true);
    ex->bytes_out += wire.size();
    out.send_client(std::move(wire));
    ex->status = 502;
    ex->response_started = ex->response_done = true;
    ex->details["origin"] = "proxy";
    ex->details["reason"] = "backend unreachable";
  }
  // The driver's reason (which addresses failed, or the policy verdict) stays the record's.
  finish("backend_unavailable", "", out);
}

void https_session::on_backend_eof(step_list& out) {
  if (closed_) return;
  backend_gone_ = true;
  if (backend_mode_ == backend_mode::tunnel) {
    out.shutdown_client_send();
    if (client_done_) finish("", "", out);
    return;
  }
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
    std::string wire = proxy_response(502, true);
    ex->bytes_out += wire.size();
    out.send_client(std::move(wire));
    ex->status = 502;
    ex->response_started = ex->response_done = true;
    ex->details["origin"] = "proxy";
    ex->details["reason"] = "the backend closed the connection without a response";
  }
  // The pinned connection is gone: so is the client's (its authentication went with it).
  finish("", "the backend closed the connection", out);
}

// ---------------------------------------------------------------------------------------------
// Both sides

void https_session::on_client_eof(step_list& out) {
  if (closed_) return;
  client_done_ = true;
  if (client_mode_ == client_mode::tunnel) {
    out.shutdown_backend_send();
    if (backend_gone_) finish("", "", out);
    return;
  }
  const bool inside_request =
      request_.has_value() || !client_pending_.empty() || client_mode_ == client_mode::body;
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

void https_session::on_idle_timeout(step_list& out) {
  if (closed_) return;
  exchange* ex = response_front();
  if (ex && !ex->local && !ex->tunnel && !ex->response_started &&
      backend_mode_ == backend_mode::message) {
    std::string wire = proxy_response(504, true);
    ex->bytes_out += wire.size();
    out.send_client(std::move(wire));
    ex->status = 504;
    ex->response_started = ex->response_done = true;
    ex->details["origin"] = "proxy";
    ex->details["reason"] = "no response head within request_timeout";
    finish("timeout", "no response from the backend within request_timeout", out);
    return;
  }
  finish(
      "timeout",
      exchanges_.empty() ? "idle timeout between requests" : "no progress within request_timeout",
      out);
}

void https_session::on_shutdown(step_list& out) {
  if (closed_) return;
  draining_ = true;
  // A tunnel has no boundary to stop at: it runs until the grace period ends.
  if (client_mode_ == client_mode::tunnel || backend_mode_ == backend_mode::tunnel) return;
  maybe_close(out);
}

void https_session::flush_local(step_list& out) {
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

void https_session::maybe_close(step_list& out) {
  if (closed_ || !exchanges_.empty() || client_mode_ != client_mode::head) return;
  if (draining_) {
    finish("shutdown", "shutting down", out);
  } else if (client_done_ && !request_ && client_pending_.empty()) {
    finish("", "", out);
  }
}

void https_session::emit_ready_records() {
  while (!exchanges_.empty() && exchanges_.front().request_done &&
         exchanges_.front().response_done) {
    emit_record(exchanges_.front());
    exchanges_.pop_front();
  }
}

void https_session::emit_record(exchange& ex) {
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
  if (!ex.details.contains("origin")) e["origin"] = "backend";
  for (auto& kv : ex.details) e[kv.key()] = kv.value();
  if (!ex.response_done && !ex.tunnel) e["incomplete"] = true;
  events_.push_back(std::move(e));
}

void https_session::finish(std::string outcome, std::string reason, step_list& out) {
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
