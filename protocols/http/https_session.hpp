// The HTTPS proxy machine (SPEC §4 HTTPS), sans I/O: HTTP/1.1 between a client whose front TLS the
// driver terminated and one pinned backend connection, opened on the first allowed request
// (connect_backend) and never shared — NTLM and Negotiate authenticate the TCP connection.
//
// Bytes are forwarded as they are parsed, never re-serialised and never buffered whole: a request
// head goes on with X-Forwarded-For/-Proto put in, bodies (Content-Length or chunked, framing
// included) as the parser consumes them; responses the same way. Each request is one `exchange`
// in a queue; responses are matched to exchanges in order (RFC 9112 §9.3.2), which is also how
// pipelined requests work: they are forwarded as they arrive and the proxy's own answers (404, 400)
// wait their turn behind earlier backend responses.
//
// Client side, one mode at a time:
//   head ──allowed──> body (forwarded) ──message end──> head
//     │         └──RPC_IN_DATA/RPC_OUT_DATA──> tunnel (raw both ways)
//     │         └──Upgrade request ends──> held ──101──> tunnel
//     │                                        └──other status──> head (held bytes parsed)
//     ├──path not allowed──> 404 (kept alive if the request had no body, else closed)
//     └──bad framing (smuggling), head > 64 KiB──> 400 / 431, input ignored, closed
// Backend side: message (a parser per response; 1xx pass through; HEAD, 204, 304 have no body)
//   ──101 to an Upgrade, or an RPC exchange's turn──> tunnel.
// Failures: connect failed → 502; backend closed before a response head → 502; no response head
// within request_timeout (the driver's idle watchdog while a request is in flight) → 504. The
// backend closing the pinned connection closes the client's, so a client never finds its
// authenticated connection silently replaced.
//
// Audit: one `http.request` per exchange when both its request and its response are done (a
// tunnel's when its response head arrives, or when the connection ends), in order: method, path
// (as sent, without the query), status (the final one; 1xx are not counted), bytes_in/bytes_out
// (the whole messages on the wire, heads included, as received from the client and as sent to
// it — X-Forwarded-* not counted; interim responses included), duration_ms (first request byte to
// the response's end), origin ("backend" or "proxy" for 404/400/431/502/504), auth {scheme, user,
// domain, ntlm_message}, activesync {form, cmd, user, device_id, device_type, protocol_version},
// and reason / tunnel / incomplete when they apply. User names only with [audit] envelope.
#pragma once

#include <boost/json/object.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "protocols/common/session_machine.hpp"
#include "protocols/http/http_message_parser.hpp"

namespace tlsbridge::protocols::http {

struct session_settings {
  std::vector<std::string> allow_paths{"/Microsoft-Server-ActiveSync",
                                       "/autodiscover",
                                       "/EWS",
                                       "/owa",
                                       "/ecp",
                                       "/mapi",
                                       "/rpc",
                                       "/OAB"};
  std::chrono::milliseconds request_timeout = std::chrono::minutes(65);
  bool forwarded_headers = true;
  bool audit_envelope = true;                // user names in http.request records
  std::size_t max_header_bytes = 64 * 1024;  // SPEC §4: header ≤ 64 KiB (431 beyond)
  std::size_t max_pending_exchanges = 100;   // pipelined requests awaiting responses
  std::size_t max_held_bytes = 64 * 1024;    // client bytes after an Upgrade request, held
  // The clock for duration_ms (tests inject their own).
  std::function<std::chrono::steady_clock::time_point()> clock;
};

class https_session final : public session_machine {
 public:
  explicit https_session(session_settings settings);

  bool backend_first() const override { return false; }
  void on_backend_connected(bool ok, step_list& out) override;
  std::optional<std::chrono::milliseconds> idle_limit() const override;

  void on_start(step_list&) override {}
  void on_client_data(std::string_view data, step_list& out) override;
  void on_backend_data(std::string_view data, step_list& out) override;
  void on_front_tls_established(step_list&) override {}
  void on_client_eof(step_list& out) override;
  void on_backend_eof(step_list& out) override;
  void on_idle_timeout(step_list& out) override;
  void on_shutdown(step_list& out) override;
  bool client_input_paused() const override { return false; }
  std::string service_unavailable() const override;
  std::string over_limit() const override;  // 503: the connection limits (SPEC §3)

 private:
  enum class client_mode { head, body, held, tunnel, ignore };
  enum class backend_mode { message, tunnel };

  struct exchange {
    std::string method;
    std::string path;
    bool local = false;  // answered by the proxy: `local_wire`
    std::string local_wire;
    bool close_after = false;  // local: the connection ends after it
    bool head_request = false;
    bool upgrade = false;  // held bytes wait for its response (101 → tunnel)
    bool tunnel = false;   // RPC_IN_DATA / RPC_OUT_DATA
    bool request_done = false;
    bool response_started = false;  // some of its response reached the client
    bool response_done = false;
    bool recorded = false;
    unsigned status = 0;
    std::uint64_t bytes_in = 0;
    std::uint64_t bytes_out = 0;
    std::chrono::steady_clock::time_point started;
    boost::json::object details;  // auth, activesync, reason
  };

  std::chrono::steady_clock::time_point now() const;
  void process_client(step_list& out);
  // A line of the pending head ends in a bare LF or CR (RFC 9112 §2.2: refused, not guessed at).
  bool bare_line_ending() const;
  void on_request_head(std::string_view raw_head, step_list& out);
  void request_complete(step_list& out);
  void refuse_request(exchange& ex, unsigned status, std::string reason, step_list& out);
  void process_backend(step_list& out);
  void on_response_head(exchange& ex, std::string_view raw_head, step_list& out);
  void response_complete(exchange& ex, step_list& out);
  void bad_backend_response(exchange& ex, std::string reason, step_list& out);
  void snoop_tunnel_head(exchange& ex, std::string_view data);
  void start_tunnel(step_list& out);
  // Sends the proxy's own answers whose turn has come, writes finished records, and closes when
  // the connection is done (client gone, or draining) at an exchange boundary.
  void flush_local(step_list& out);
  void maybe_close(step_list& out);
  void emit_ready_records();
  void emit_record(exchange& ex);
  // Ends the session: records for every exchange left, then a close step. Nothing after.
  void finish(std::string outcome, std::string reason, step_list& out);
  exchange* response_front();

  session_settings settings_;
  client_mode client_mode_ = client_mode::head;
  backend_mode backend_mode_ = backend_mode::message;
  std::deque<exchange> exchanges_;
  std::optional<message_parser> request_;
  std::optional<message_parser> response_;
  std::string client_pending_;   // bytes the request parser has not consumed yet (bounded)
  std::string backend_pending_;  // the same for responses
  std::string request_head_;     // the raw head of the request being parsed
  std::string response_head_;    // the raw head of the response being parsed
  std::string held_;             // client bytes after an Upgrade request, until its answer
  std::optional<message_parser> tunnel_snoop_;  // reads a tunnel's response head for the audit
  std::string tunnel_snoop_pending_;
  std::chrono::steady_clock::time_point request_started_;  // first byte of the current request
  std::string refusal_reason_;  // why a refused request closes the connection
  bool backend_open_ = false;   // connect_backend was asked and not refused
  bool backend_gone_ = false;
  bool client_done_ = false;   // client EOF
  bool draining_ = false;      // on_shutdown: close at the next exchange boundary
  bool closed_ = false;        // a close step was given: nothing more to say
  bool release_held_ = false;  // an Upgrade was declined: parse the held bytes as HTTP
};

}  // namespace tlsbridge::protocols::http
