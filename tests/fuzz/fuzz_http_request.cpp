// Fuzz target for protocols/http: the HTTPS machine (https_machine) with the message parser and
// the request checks it uses (http_message_parser, http_request_info). The input is a script: three
// bytes of settings (X-Forwarded-* on or off, allow_paths, audit envelope, whether the backend
// connect succeeds, limits), then events, each chosen by one byte — client bytes (raw, or picked
// from real and hostile requests: Exchange paths, CL+TE and duplicated CL smuggling, dot-segment
// and %2f/backslash traversal, obs-fold, bare LF, Upgrade, RPC_IN_DATA, pipelining), backend bytes
// (raw, or real responses: 100/101/401/204/304, chunked, EOF-delimited), client EOF, backend EOF,
// idle timeout, shutdown, requests carrying an NTLM Authorization or a base64 ActiveSync query
// built from the fuzzer's bytes, and direct checks of the pure functions. The driver is modelled as
// proxy/session does: connect_backend is answered at once by on_backend_connected, backend events
// come only over a connected back leg, nothing is performed after a close.
//
// Invariants:
//  * No step after close, at most one close; no send_backend after abort_backend; connect_backend
//    at most once, and every send_backend after a successful one.
//  * Relay: the backend stream, with the proxy's own X-Forwarded-For/-Proto lines taken out, is a
//    subsequence of the client stream — the proxy forwards the client's bytes in order, it never
//    invents or reorders any.
//  * Smuggling: the backend stream, parsed as the backend parses it, is a sequence of requests each
//    of which passes check_request (one Host, at most one Content-Length, no CL with TE, TE exactly
//    "chunked", no obs-fold, a path target) and whose normalised path is in allow_paths, with
//    exactly the proxy's X-Forwarded-For and X-Forwarded-Proto when those are on. It stops at an
//    Upgrade (a 101 makes a tunnel; RPC_IN_DATA/RPC_OUT_DATA bodies are framed, issue 12) and when
//    the back leg is aborted; it never fails to parse otherwise.
//  * Audit: every http.request record has method, path, status, bytes, origin; no user name in it
//    without audit_envelope.
//  * Pure functions: normalized_path never yields "//", "\", control characters or a segment of
//    dots and spaces (a ".." IIS would climb with); path_allowed only on a segment boundary;
//    base64_decode inverts base64 (both alphabets, padding optional); NTLM type 3 decoding gives
//    back what was encoded and always valid UTF-8; ActiveSync's base64 query gives the protocol
//    version and command of its first bytes; the message parser never consumes more than offered.
#include <array>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "protocols/http/http_message_parser.hpp"
#include "protocols/http/http_request_info.hpp"
#include "protocols/http/https_machine.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using namespace tlsbridge::protocols;
using namespace tlsbridge::protocols::http;

namespace {

constexpr std::string_view client_ip = "203.0.113.77";
constexpr std::string_view our_forwarded = "X-Forwarded-For: 203.0.113.77\r\nX-Forwarded-Proto: https\r\n";

constexpr std::array<std::string_view, 36> client_pieces{
    "GET /EWS/Exchange.asmx HTTP/1.1\r\nHost: mail\r\n\r\n",
    "POST /EWS/Exchange.asmx HTTP/1.1\r\nHost: mail\r\nContent-Length: 5\r\n\r\nhello",
    "POST /EWS/x HTTP/1.1\r\nHost: mail\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    "POST /EWS/x HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
    "0\r\n\r\nGET /admin HTTP/1.1\r\nHost: a\r\n\r\n",
    "POST /EWS/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n"
    "0\r\n\r\n",
    "POST /EWS/x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    "POST /EWS/x HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello",
    "POST /EWS/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
    "POST /EWS/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
    "POST /EWS/x HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "GET /EWS/../ecp/x HTTP/1.1\r\nHost: a\r\n\r\n",
    "GET /EWS/..%2f..%2fadmin HTTP/1.1\r\nHost: a\r\n\r\n",
    "GET /EWS/%2e%2e/secret HTTP/1.1\r\nHost: a\r\n\r\n",
    "GET /EWS\\..\\admin HTTP/1.1\r\nHost: a\r\n\r\n",
    "GET /owa/.. ./x HTTP/1.1\r\nHost: a\r\n\r\n",
    "GET //EWS//x/./y HTTP/1.1\r\nHost: a\r\n\r\n",
    "GET /EWSadmin HTTP/1.1\r\nHost: a\r\n\r\n",
    "GET https://mail/EWS/x?a=b HTTP/1.1\r\nHost: mail\r\n\r\n",
    "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
    "GET /EWS/x HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.2.3.4\r\nx-forwarded-proto: http\r\n\r\n",
    "GET /EWS/x HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n",
    "GET /EWS/x HTTP/1.1\r\n\r\n",
    "GET /EWS/x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    "GET /EWS/x HTTP/1.1\nHost: a\n\n",
    "RPC_IN_DATA /rpc/rpcproxy.dll?mail:6001 HTTP/1.1\r\nHost: a\r\n"
    "Content-Length: 1073741824\r\n\r\nrpc bytes",
    "GET /mapi/x HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
    "HEAD /EWS/x HTTP/1.1\r\nHost: a\r\n\r\n",
    "GET /owa/ HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    "GET /EWS/x HTTP/1.0\r\n\r\n",
    "POST /EWS/x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n",
    "abc",
    "\r\n\r\n",
    "POST /EWS/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    "POST /Microsoft-Server-ActiveSync?Cmd=Sync&User=alice&DeviceId=ABC&DeviceType=iPhone "
    "HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
    "GET /EWS/x HTTP/1.1\r\nHost: a\r\nAuthorization: Basic YWxpY2U6c2VjcmV0\r\n\r\n",
    "POST /secret HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
};

constexpr std::array<std::string_view, 14> backend_pieces{
    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    "HTTP/1.1 100 Continue\r\n\r\n",
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
    "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: NTLM TlRMTVNTUAACAAAA\r\n"
    "Content-Length: 0\r\n\r\n",
    "HTTP/1.1 204 No Content\r\n\r\n",
    "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
    "HTTP/1.0 200 OK\r\n\r\nbody until close",
    "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
    "garbage\r\n\r\n",
    "HTTP/1.1 200 Success\r\nContent-Type: application/rpc\r\nContent-Length: 1073741824\r\n\r\n",
    "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nda",
};

std::string base64(std::string_view in, bool url_safe = false, bool pad = true) {
  const char* alphabet = url_safe
                             ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                             : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    acc = (acc << 8) | static_cast<unsigned char>(c);
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += alphabet[(acc >> bits) & 63];
    }
  }
  if (bits > 0) out += alphabet[(acc << (6 - bits)) & 63];
  while (pad && out.size() % 4 != 0) out += '=';
  return out;
}

std::string percent_encode(std::string_view s) {
  static constexpr char digits[] = "0123456789ABCDEF";
  std::string out;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if ((u >= 'A' && u <= 'Z') || (u >= 'a' && u <= 'z') || (u >= '0' && u <= '9') || u == '-' ||
        u == '_' || u == '.') {
      out += c;
    } else {
      out += '%';
      out += digits[u >> 4];
      out += digits[u & 15];
    }
  }
  return out;
}

bool valid_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const std::size_t n = c < 0x80             ? 0
                          : (c & 0xe0) == 0xc0 ? 1
                          : (c & 0xf0) == 0xe0 ? 2
                          : (c & 0xf8) == 0xf0 ? 3
                                               : 4;
    if (n == 4 || i + n >= s.size()) return false;
    for (std::size_t k = 1; k <= n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return false;
    i += n + 1;
  }
  return true;
}

std::string latin1_to_utf8(std::string_view s) {
  std::string out;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x80) {
      out += c;
    } else {
      out += static_cast<char>(0xc0 | (u >> 6));
      out += static_cast<char>(0x80 | (u & 0x3f));
    }
  }
  return out;
}

void put_le16(std::string& b, std::size_t at, std::uint32_t v) {
  b[at] = static_cast<char>(v & 0xff);
  b[at + 1] = static_cast<char>((v >> 8) & 0xff);
}
void put_le32(std::string& b, std::size_t at, std::uint32_t v) {
  put_le16(b, at, v & 0xffff);
  put_le16(b, at + 2, v >> 16);
}

// An NTLM AUTHENTICATE_MESSAGE (MS-NLMP §2.2.1.3) with the given (already encoded) strings.
std::string ntlm_type3(std::string_view domain, std::string_view user, std::string_view ws,
                       bool unicode) {
  std::string b(72, '\0');
  b.replace(0, 8, std::string("NTLMSSP\0", 8));
  put_le32(b, 8, 3);
  auto add = [&](std::size_t field, std::string_view bytes) {
    put_le16(b, field, static_cast<std::uint32_t>(bytes.size()));
    put_le16(b, field + 2, static_cast<std::uint32_t>(bytes.size()));
    put_le32(b, field + 4, static_cast<std::uint32_t>(b.size()));
    b += bytes;
  };
  add(28, domain);
  add(36, user);
  add(44, ws);
  add(12, std::string(24, '\x11'));
  add(20, std::string(24, '\x22'));
  put_le32(b, 60, unicode ? 0xa2888205u : 0xa2888206u);
  return b;
}

// ------------------------------------------------------------------------------------------------
// Pure functions

void check_target(std::string_view target) {
  (void)raw_path(target);
  if (auto n = normalized_path(target)) {
    FUZZ_CHECK(!n->empty() && n->front() == '/');
    FUZZ_CHECK(n->find("//") == std::string::npos);
    FUZZ_CHECK(n->find('\\') == std::string::npos);
    for (char c : *n) FUZZ_CHECK(static_cast<unsigned char>(c) >= 0x20 && c != 0x7f);
    // No segment IIS could read as "." or ".." (Windows drops trailing dots and spaces).
    std::string_view rest(*n);
    while (!rest.empty()) {
      const auto slash = rest.find('/');
      const std::string_view seg = rest.substr(0, slash);
      if (!seg.empty()) FUZZ_CHECK(seg.find_first_not_of(". ") != std::string_view::npos);
      rest = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);
    }
    // allow_paths on a segment boundary only.
    if (path_allowed(*n, {"/EWS"})) {
      FUZZ_CHECK(n->size() >= 4);
      const std::string_view first = std::string_view(*n).substr(1, 3);
      FUZZ_CHECK((first[0] | 0x20) == 'e' && (first[1] | 0x20) == 'w' && (first[2] | 0x20) == 's');
      FUZZ_CHECK(n->size() == 4 || (*n)[4] == '/');
    }
  }
  if (auto as = decode_activesync_query(target)) {
    FUZZ_CHECK(as->form == "plain" || as->form == "base64");
    if (as->form == "base64") {
      FUZZ_CHECK(!as->protocol_version.empty());
      FUZZ_CHECK(as->device_id.size() % 2 == 0);
      FUZZ_CHECK(as->device_id.find_first_not_of("0123456789ABCDEF") == std::string::npos);
      FUZZ_CHECK(valid_utf8(as->user) && valid_utf8(as->device_type));
    }
  }
}

void check_pure(std::uint8_t which, std::string_view data) {
  switch (which % 6) {
    case 0:
      check_target(data);
      check_target("/" + std::string(data));
      check_target("/Microsoft-Server-ActiveSync?" + std::string(data));
      break;
    case 1: {
      // Both alphabets, with and without padding, decode to the original bytes.
      for (int form = 0; form < 4; ++form) {
        const auto decoded = base64_decode(base64(data, form & 1, form & 2));
        FUZZ_CHECK(decoded && *decoded == data);
      }
      (void)base64_decode(data);
      break;
    }
    case 2: {
      if (auto id = decode_ntlm_authenticate(data))
        FUZZ_CHECK(valid_utf8(id->domain) && valid_utf8(id->user) && valid_utf8(id->workstation));
      const auto auth = parse_authorization(data);
      FUZZ_CHECK(valid_utf8(auth.domain));
      if (auth.ntlm_type == 3) FUZZ_CHECK(valid_utf8(auth.user));
      break;
    }
    case 3: {
      // A type 3 message built from the fuzzer's strings decodes back to them.
      const std::size_t a = data.empty() ? 0 : static_cast<unsigned char>(data[0]) % (data.size());
      const std::size_t b = a + (data.size() - a) / 2;
      const std::string_view domain = data.substr(0, a), user = data.substr(a, b - a),
                             ws = data.substr(b);
      const auto id = decode_ntlm_authenticate(ntlm_type3(domain, user, ws, false));
      FUZZ_CHECK(id && id->domain == latin1_to_utf8(domain) && id->user == latin1_to_utf8(user) &&
                 id->workstation == latin1_to_utf8(ws));
      const auto auth = parse_authorization("NTLM " + base64(ntlm_type3(domain, user, ws, false)));
      FUZZ_CHECK(auth.scheme == "NTLM" && auth.ntlm_type == 3 &&
                 auth.user == latin1_to_utf8(user) && auth.domain == latin1_to_utf8(domain));
      const auto wide = decode_ntlm_authenticate(ntlm_type3(domain, user, ws, true));
      FUZZ_CHECK(wide && valid_utf8(wide->user) && valid_utf8(wide->domain) &&
                 valid_utf8(wide->workstation));
      break;
    }
    case 4: {
      // MS-ASHTTP's base64 query: version and command come from its first two bytes.
      const auto as = decode_activesync_query("/Microsoft-Server-ActiveSync?" +
                                              percent_encode(base64(data)));
      if (data.size() < 5) {
        FUZZ_CHECK(!as);
        break;
      }
      FUZZ_CHECK(as && as->form == "base64");
      const unsigned v = static_cast<unsigned char>(data[0]);
      FUZZ_CHECK(as->protocol_version == std::to_string(v / 10) + "." + std::to_string(v % 10));
      const unsigned code = static_cast<unsigned char>(data[1]);
      const std::string_view name = activesync_command_name(code);
      FUZZ_CHECK(as->cmd == (name.empty() ? std::to_string(code) : std::string(name)));
      break;
    }
    case 5: {
      // The parser consumes no more than offered, whatever the pieces.
      message_parser p(which & 0x80 ? message_parser::kind::response : message_parser::kind::request,
                       256);
      std::string pending;
      std::size_t total = 0;
      for (std::size_t at = 0; at < data.size(); at += 7) {
        pending += data.substr(at, 7);
        std::error_code ec;
        const std::size_t n = p.put(pending, ec);
        FUZZ_CHECK(n <= pending.size());
        total += n;
        pending.erase(0, n);
        if (ec || p.done()) break;
      }
      FUZZ_CHECK(total <= data.size());
      break;
    }
  }
}

// ------------------------------------------------------------------------------------------------
// The machine

class harness {
 public:
  harness(machine_settings s, bool connect_ok)
      : forwarded_(s.forwarded_headers),
        envelope_(s.audit_envelope),
        allow_(s.allow_paths),
        mirror_limit_(s.max_header_bytes + 4096),
        machine_(std::move(s)),
        connect_ok_(connect_ok) {
    tlsbridge::protocols::connection_info info;
    info.client = std::string(client_ip) + ":40000";
    info.client_ip = std::string(client_ip);
    info.front_tls = true;
    machine_.set_connection(info);
  }

  void client_data(std::string_view data) {
    if (client_eof_) return;
    client_in_ += data;
    run([&](step_list& out) { machine_.on_client_data(data, out); });
  }
  void client_eof() {
    if (client_eof_) return;
    client_eof_ = true;
    run([&](step_list& out) { machine_.on_client_eof(out); });
  }
  bool backend_usable() const { return backend_connected_ && !backend_eof_ && !backend_aborted_; }
  void backend_data(std::string_view data) {
    if (!backend_usable()) return;
    run([&](step_list& out) { machine_.on_backend_data(data, out); });
  }
  void backend_eof() {
    if (!backend_usable()) return;
    backend_eof_ = true;
    run([&](step_list& out) { machine_.on_backend_eof(out); });
  }
  template <typename Event>
  void event(Event e) {
    run([&](step_list& out) { (machine_.*e)(out); });
  }
  void touch() { (void)machine_.idle_limit(); }

 private:
  template <typename F>
  void run(F&& f) {
    step_list out;
    f(out);
    apply(out);
    if (connect_failed_) FUZZ_CHECK(closed_);  // a failed connect always ends the session
    check_records();
    // Bytes that did not parse at the backend are a finding unless the back leg was aborted
    // right after them (a bad chunk the machine caught while forwarding the body).
    if (mirror_failed_) FUZZ_CHECK(backend_aborted_);
  }

  void apply(const step_list& out) {
    for (const step& s : out.steps()) {
      if (closed_) {
        FUZZ_CHECK(false);  // no step after close
      }
      switch (s.what) {
        case step::kind::send_client:
          break;
        case step::kind::send_backend:
          FUZZ_CHECK(!backend_aborted_);
          FUZZ_CHECK(connects_ == 1);
          if (connect_failed_) break;  // never performed
          FUZZ_CHECK(backend_connected_);
          relay(s.data);
          break;
        case step::kind::connect_backend: {
          FUZZ_CHECK(connects_ == 0);
          ++connects_;
          // proxy/session connects at once and answers before performing the next step.
          backend_connected_ = connect_ok_;
          step_list more;
          machine_.on_backend_connected(connect_ok_, more);
          apply(more);
          if (!connect_ok_) {
            // Either the answer closed the session (the driver has finished: the rest of the
            // steps are not performed), or the event had already ended it and the close is
            // still to come in this list; the driver drops its send_backend steps (no back leg).
            if (closed_) return;
            connect_failed_ = true;
          }
          break;
        }
        case step::kind::abort_backend:
          backend_aborted_ = true;
          break;
        case step::kind::delay_client:  // only with an auth gate, which is not set here
          break;
        case step::kind::close:
          closed_ = true;
          break;
        case step::kind::start_front_tls:
          FUZZ_CHECK(false);  // the HTTPS front is implicit TLS
          break;
        case step::kind::shutdown_client_send:
        case step::kind::shutdown_backend_send:
          break;
      }
    }
  }

  void relay(std::string data) {
    mirror(data);
    // Take our own X-Forwarded-* lines out: the rest must be the client's bytes, in order.
    for (auto at = data.find(our_forwarded); at != std::string::npos; at = data.find(our_forwarded))
      data.erase(at, our_forwarded.size());
    for (char c : data) {
      while (client_pos_ < client_in_.size() && client_in_[client_pos_] != c) ++client_pos_;
      FUZZ_CHECK(client_pos_ < client_in_.size());  // a byte the client never sent (here)
      ++client_pos_;
    }
  }

  // Parses the backend stream as the backend would.
  void mirror(std::string_view data) {
    if (mirror_stopped_ || mirror_failed_) return;
    mirror_pending_ += data;
    while (!mirror_pending_.empty()) {
      if (!mirror_parser_) {
        mirror_parser_.emplace(message_parser::kind::request, mirror_limit_);
        mirror_head_.clear();
      }
      const bool in_head = !mirror_parser_->header_done();
      std::error_code ec;
      const std::size_t n = mirror_parser_->put(mirror_pending_, ec);
      FUZZ_CHECK(n <= mirror_pending_.size());
      if (in_head) mirror_head_.append(mirror_pending_, 0, n);
      mirror_pending_.erase(0, n);
      if (ec) {
        mirror_failed_ = true;
        return;
      }
      if (in_head && mirror_parser_->header_done()) {
        const message_head& h = mirror_parser_->head();
        FUZZ_CHECK(!check_request(h, mirror_head_));  // no smuggling reaches the backend
        const auto normalized = normalized_path(h.target);
        FUZZ_CHECK(normalized && path_allowed(*normalized, allow_));
        if (forwarded_) {
          const auto xff = h.values("X-Forwarded-For");
          const auto xfp = h.values("X-Forwarded-Proto");
          FUZZ_CHECK(xff.size() == 1 && xff.front() == client_ip);
          FUZZ_CHECK(xfp.size() == 1 && xfp.front() == "https");
        }
        if (h.find("Upgrade")) {
          mirror_stopped_ = true;  // may become a tunnel (101): raw bytes from here
          return;
        }
      }
      if (mirror_parser_->done()) {
        mirror_parser_.reset();
        continue;
      }
      if (n == 0) return;  // need more
    }
  }

  void check_records() {
    for (const auto& e : machine_.take_audit_events()) {
      FUZZ_CHECK(e.contains("event") && e.at("event").is_string() &&
                 e.at("event").as_string() == "http.request");
      for (const char* key : {"method", "path", "status", "bytes_in", "bytes_out", "duration_ms"})
        FUZZ_CHECK(e.contains(key));
      FUZZ_CHECK(e.contains("origin"));
      if (!envelope_) {
        for (const char* sub : {"auth", "activesync"})
          if (auto* o = e.if_contains(sub))
            FUZZ_CHECK(!o->is_object() || !o->as_object().contains("user"));
      }
    }
  }

  bool forwarded_;
  bool envelope_;
  std::vector<std::string> allow_;
  std::size_t mirror_limit_;
  https_machine machine_;
  bool connect_ok_;
  int connects_ = 0;
  bool backend_connected_ = false;
  bool connect_failed_ = false;
  bool backend_eof_ = false;
  bool backend_aborted_ = false;
  bool client_eof_ = false;
  bool closed_ = false;
  std::string client_in_;
  std::size_t client_pos_ = 0;
  std::optional<message_parser> mirror_parser_;
  std::string mirror_pending_;
  std::string mirror_head_;
  bool mirror_stopped_ = false;
  bool mirror_failed_ = false;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  tlsbridge::fuzz::fuzz_input in(data, size);
  machine_settings s;
  const std::uint8_t mode = in.byte();
  s.forwarded_headers = (mode & 0x01) == 0;
  if (mode & 0x02) s.allow_paths = {"/EWS", "/Microsoft-Server-ActiveSync/", "/rpc"};
  if (mode & 0x04) s.allow_paths.push_back("/");
  s.audit_envelope = (mode & 0x08) == 0;
  const bool connect_ok = (mode & 0x10) == 0;
  const std::uint8_t limits = in.byte();
  s.max_header_bytes = 128 + std::size_t{limits} * 64;
  const std::uint8_t more = in.byte();
  s.max_pending_exchanges = 1 + more % 8;
  s.max_held_bytes = 16 + static_cast<std::size_t>(more >> 3) * 16;
  // A clock that moves only with the script: the records are reproducible.
  auto ticks = std::make_shared<std::int64_t>(0);
  s.clock = [ticks] {
    return std::chrono::steady_clock::time_point(std::chrono::milliseconds(++*ticks));
  };

  harness h(s, connect_ok);
  while (!in.empty()) {
    switch (in.byte() % 12) {
      case 0:
        h.client_data(in.chunk());
        break;
      case 1:
        h.client_data(client_pieces[in.byte() % client_pieces.size()]);
        break;
      case 2:
        h.backend_data(in.chunk());
        break;
      case 3:
        h.backend_data(backend_pieces[in.byte() % backend_pieces.size()]);
        break;
      case 4:
        h.client_eof();
        break;
      case 5:
        h.backend_eof();
        break;
      case 6:
        h.event(&https_machine::on_idle_timeout);
        break;
      case 7:
        h.event(&https_machine::on_shutdown);
        break;
      case 8: {
        const std::uint8_t which = in.byte();
        check_pure(which, in.chunk());
        break;
      }
      case 9: {
        // A request with an NTLM (or Negotiate) AUTHENTICATE built from the fuzzer's bytes.
        const std::uint8_t how = in.byte();
        const std::string_view blob = in.chunk();
        const std::string token =
            (how & 1) ? std::string(blob)
                      : ntlm_type3("DOMAIN", blob.substr(0, blob.size() / 2),
                                   blob.substr(blob.size() / 2), (how & 2) != 0);
        h.client_data(std::string("GET /EWS/Exchange.asmx HTTP/1.1\r\nHost: mail\r\nAuthorization: ") +
                      ((how & 4) ? "Negotiate " : "NTLM ") + base64(token) + "\r\n\r\n");
        break;
      }
      case 10:
        // An ActiveSync request with the base64 query form built from the fuzzer's bytes.
        h.client_data("POST /Microsoft-Server-ActiveSync?" + percent_encode(base64(in.chunk())) +
                      " HTTP/1.1\r\nHost: mail\r\nContent-Length: 0\r\n\r\n");
        break;
      case 11:
        h.touch();
        break;
    }
  }
  return 0;
}
