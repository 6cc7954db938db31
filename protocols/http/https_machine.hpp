// The HTTPS proxy machine, sans I/O: HTTP/1.1 between a client whose front TLS the
// driver terminated and one pinned backend connection, opened on the first allowed request
// (connect_backend) and never shared — NTLM and Negotiate authenticate the TCP connection.
//
// Requests are tokenised by the RFC grammar (http_grammar): the head is framed here
// (CRLF only, at most max_header_bytes however split, complete within request_head_timeout of its
// first byte), checked (grammar, method set, smuggling, allow_paths, RPC methods only under /rpc/)
// and goes on with X-Forwarded-For/-Proto put in and fields IIS would fold (`_`) stripped; a body
// is framed by that head, never buffered whole: Content-Length bytes as they come, chunked bodies
// re-serialised from what the strict decoder validated (no extensions, no trailers). Responses
// are forwarded as Beast's parser consumes them. Each request is one `exchange`
// in a queue; responses are matched to exchanges in order (RFC 9112 §9.3.2), which is also how
// pipelined requests work: they are forwarded as they arrive and the proxy's own answers (404, 400)
// wait their turn behind earlier backend responses.
//
// Client side, one mode at a time:
//   head ──checked and allowed──> body (framed by the head, also RPC_IN_DATA) ──body end──> head
//     │         └──Upgrade request ends──> held ──101──> tunnel (raw both ways)
//     │                                        └──other status──> head (held bytes parsed)
//     ├──path not allowed──> 404 (kept alive if the request had no body, else closed)
//     ├──grammar (bare CR/LF, CTL, field name, version), smuggling, RPC method outside /rpc/
//     │  ──> 400; unknown or lowercase method──> 501; head (empty lines before it included)
//     │  > max_header_bytes──> 431; not complete within request_head_timeout of its first byte
//     │  ──> 408 (or, behind a response still owed, a close): input ignored, closed
//     └──(body) bad chunk framing──> back leg aborted, 400 if no response began, closed
// Backend side: message (a parser per response; 1xx pass through; HEAD, 204, 304 have no body)
//   ──101 to an Upgrade──> tunnel. RPC_OUT_DATA's long response is an ordinary message.
// Failures: connect failed → 502; backend closed before a response head → 502; no response head
// within request_timeout (the driver's idle watchdog while a request is in flight) → 504. The
// backend closing the pinned connection closes the client's, so a client never finds its
// authenticated connection silently replaced.
//
// Audit: one `http.request` per exchange when both its request and its response are done (an
// Upgrade's at its 101, or when the connection ends), in order: method, path
// (as sent, without the query), status (the final one; 1xx are not counted), bytes_in/bytes_out
// (the whole messages on the wire, heads included, as received from the client and as sent to
// it — X-Forwarded-* not counted; interim responses included), duration_ms (first request byte to
// the response's end), origin ("backend" or "proxy" for 400/404/408/431/501/502/504), auth {scheme,
// user, domain, ntlm_message}, activesync {form, cmd, user, device_id, device_type,
// protocol_version}, and reason / tunnel / incomplete / stripped_fields when they apply. User names
// only with [audit] envelope.
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
#include "protocols/http/http_grammar.hpp"
#include "protocols/http/http_message_parser.hpp"

namespace tlsbridge::protocols::http {

struct machine_settings {
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
  // [listener.http] hsts (its default is set by the config): added to final responses without one.
  std::string hsts;
  bool audit_envelope = true;                // user names in http.request records
  std::size_t max_header_bytes = 64 * 1024;  // a head ≤ 64 KiB (431 beyond)
  std::size_t max_pending_exchanges = 100;   // pipelined requests awaiting responses
  std::size_t max_held_bytes = 64 * 1024;    // client bytes after an Upgrade request, held
  // timeouts.request_head: a request head must be complete this long after its first byte.
  std::chrono::milliseconds request_head_timeout = std::chrono::seconds(30);
  // The clock for duration_ms (tests inject their own).
  std::function<std::chrono::steady_clock::time_point()> clock;
};

class https_machine final : public session_machine {
 public:
  explicit https_machine(machine_settings settings);

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
    bool tunnel = false;   // switched protocols (101): raw both ways
    bool request_done = false;
    bool response_started = false;  // some of its response reached the client
    bool response_done = false;
    bool recorded = false;
    unsigned status = 0;
    std::uint64_t bytes_in = 0;
    std::uint64_t bytes_out = 0;
    std::chrono::steady_clock::time_point started;
    boost::json::object details;  // auth, activesync, reason
    // Basic credentials or an NTLM AUTHENTICATE (type 3) went to the backend: its 401 is a
    // failed authentication for the auth guard, a 2xx/3xx a success. The scheme and the user.
    std::string auth_scheme;
    std::string auth_user;
  };

  std::chrono::steady_clock::time_point now() const;
  void process_client(step_list& out);
  // How long the head being received has left, or nullopt when none is.
  std::optional<std::chrono::milliseconds> head_time_left() const;
  // Refuses the head being received (bare line end, too large, too slow) before it was parsed.
  void refuse_head(unsigned status, std::string reason, step_list& out);
  void on_request_head(std::string_view raw_head, step_list& out);
  void request_complete(step_list& out);
  void refuse_request(exchange& ex, unsigned status, std::string reason, step_list& out);
  void process_backend(step_list& out);
  void on_response_head(exchange& ex, std::string_view raw_head, step_list& out);
  void response_complete(exchange& ex, step_list& out);
  void hold(std::string_view bytes, step_list& out);
  exchange& open_exchange(std::string_view request_line, std::size_t bytes_in);
  void answer_now(exchange& ex, unsigned status, std::string reason, step_list& out);
  // The proxy answers a well-formed request itself in its turn (404 off allow_paths, 429 from the
  // auth guard); a body that follows is not read through: the answer closes the connection.
  void answer_locally(exchange& ex, unsigned status, std::string reason, bool has_body,
                      bool keep_alive, step_list& out);
  bool side_ended(bool client_side, step_list& out);
  void bad_backend_response(exchange& ex, std::string reason, step_list& out);
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

  machine_settings settings_;
  client_mode client_mode_ = client_mode::head;
  backend_mode backend_mode_ = backend_mode::message;
  std::deque<exchange> exchanges_;
  std::optional<message_parser> response_;
  std::optional<chunked_decoder> chunked_;  // the request body being read, when chunked
  std::uint64_t body_left_ = 0;             // the request body being read, Content-Length
  std::string client_pending_;    // client bytes not consumed yet (a head: ≤ max_header_bytes)
  std::string backend_pending_;   // the same for responses
  std::string response_head_;     // the raw head of the response being parsed
  std::string held_;              // client bytes after an Upgrade request, until its answer
  bool head_started_ = false;     // a request head is being received (request_started_ is set)
  std::size_t head_scanned_ = 0;  // how far scan_head has looked into client_pending_
  std::size_t head_prefix_ = 0;   // empty lines skipped before the head (counted in its limit)
  std::chrono::steady_clock::time_point request_started_;  // first byte of the current request
  std::chrono::steady_clock::time_point last_event_;       // last bytes from either side
  std::string refusal_reason_;  // why a refused request closes the connection
  bool backend_open_ = false;   // connect_backend was asked and not refused
  bool backend_gone_ = false;
  bool client_done_ = false;   // client EOF
  bool draining_ = false;      // on_shutdown: close at the next exchange boundary
  bool closed_ = false;        // a close step was given: nothing more to say
  bool release_held_ = false;  // an Upgrade was declined: parse the held bytes as HTTP
};

}  // namespace tlsbridge::protocols::http
