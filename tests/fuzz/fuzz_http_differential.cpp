// Differential fuzz target for the HTTPS machine (issue 12): the proxy and the backend
// must agree about where every request ends. The input is one client byte stream, fed to
// https_machine in pieces; whatever the machine sends to the backend is read by a reference
// reader written here, independently of the machine's parsers (no Beast, no http_grammar), and
// as tolerant as a backend may be (RFC 9112 §2.2): lines end at LF with or without CR, empty
// lines before a request line are skipped, field names are compared case-insensitively with '_'
// read as '-' (IIS), Transfer-Encoding containing "chunked" frames the body (else the first
// Content-Length), chunk sizes are the hex digits before anything else on their line.
//
// Input: [flags][piece pattern][client stream...]. flags bit 0: X-Forwarded-* off; bit 1: the
// backend answers each request the reference reader completes (so pipelines drain and 404s get
// their turn); bit 2: end with on_idle_timeout instead of client EOF. The stream is cut into
// pieces whose sizes cycle through 1 + pattern's nibbles (x 1 or x 37).
//
// Invariants, at the end (the machine's records are all written once the session is closed):
//  * Boundaries: the request heads the reference reader finds at the backend, as (method, path),
//    are exactly the requests the machine audited as relayed (origin backend, or refused after
//    their head went on: a bad body), in order. Only the last may be cut short, and only when
//    the back leg was aborted or the stream ended inside its body.
//  * Nothing else: the backend stream holds no bytes the reader cannot place (a garbled request
//    line, a stray byte between messages).
//  * At the backend every request has a method of the relayed set (case-sensitive), no field
//    name with '_', and with X-Forwarded-* on exactly one X-Forwarded-For: the client's address.
//  * The machine never sends after abort_backend or close.
#include <algorithm>
#include <array>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "protocols/http/https_machine.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using namespace tlsbridge::protocols;
using namespace tlsbridge::protocols::http;

namespace {

constexpr std::string_view client_ip = "198.51.100.7";

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string fold(std::string_view name) {
  while (!name.empty() && (name.front() == ' ' || name.front() == '\t')) name.remove_prefix(1);
  while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) name.remove_suffix(1);
  std::string out;
  for (char c : name) out += c == '_' ? '-' : lower(c);
  return out;
}

std::string_view trim(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

// The path the audit record names: origin-form up to '?', absolute-form's path.
std::string path_of(std::string_view target) {
  for (std::string_view scheme : {"http://", "https://"}) {
    if (target.size() >= scheme.size()) {
      bool same = true;
      for (std::size_t i = 0; i < scheme.size(); ++i) same = same && lower(target[i]) == scheme[i];
      if (same) {
        target.remove_prefix(scheme.size());
        const auto slash = target.find_first_of("/?#");
        target = slash == std::string_view::npos || target[slash] != '/' ? std::string_view{}
                                                                         : target.substr(slash);
        break;
      }
    }
  }
  return std::string(target.substr(0, target.find_first_of("?#")));
}

struct seen_request {
  std::string method;
  std::string path;
  std::vector<std::pair<std::string, std::string>> fields;  // folded name, value
  std::vector<std::string> raw_names;                       // as they arrived
  bool complete = false;                                    // its body too
};

// The tolerant reader. Returns false when it meets bytes it cannot place.
bool read_backend(std::string_view data, std::vector<seen_request>& out) {
  std::size_t pos = 0;
  auto line = [&](std::string_view& l) {
    const auto lf = data.find('\n', pos);
    if (lf == std::string_view::npos) return false;
    l = data.substr(pos, lf - pos);
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    pos = lf + 1;
    return true;
  };
  while (pos < data.size()) {
    std::string_view l;
    if (!line(l)) return false;  // heads are relayed whole: a partial one is stray bytes
    if (l.empty()) continue;
    seen_request r;
    const auto sp1 = l.find(' ');
    const auto sp2 = sp1 == std::string_view::npos ? sp1 : l.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos) return false;
    r.method = std::string(l.substr(0, sp1));
    r.path = path_of(l.substr(sp1 + 1, sp2 - sp1 - 1));
    bool head_done = false;
    while (line(l)) {
      if (l.empty()) {
        head_done = true;
        break;
      }
      const auto colon = l.find(':');
      if (colon == std::string_view::npos) return false;
      r.raw_names.emplace_back(l.substr(0, colon));
      r.fields.emplace_back(fold(l.substr(0, colon)), std::string(trim(l.substr(colon + 1))));
    }
    if (!head_done) return false;
    bool chunked = false;
    std::optional<std::uint64_t> length;
    for (const auto& [name, value] : r.fields) {
      std::string v;
      for (char c : value) v += lower(c);
      if (name == "transfer-encoding" && v.find("chunked") != std::string::npos) chunked = true;
      if (name == "content-length" && !length) {
        std::uint64_t n = 0;
        for (char c : value) {
          if (c < '0' || c > '9' || n > (UINT64_MAX - 9) / 10) break;
          n = n * 10 + static_cast<unsigned>(c - '0');
        }
        length = n;
      }
    }
    out.push_back(std::move(r));
    seen_request& req = out.back();
    if (chunked) {
      for (;;) {
        if (!line(l)) return true;  // cut short
        std::uint64_t size = 0;
        for (char c : l) {
          const char d = lower(c);
          unsigned v;
          if (d >= '0' && d <= '9')
            v = static_cast<unsigned>(d - '0');
          else if (d >= 'a' && d <= 'f')
            v = static_cast<unsigned>(d - 'a' + 10);
          else
            break;
          if (size >> 60) return false;  // the machine never relays a size this reader overflows
          size = size * 16 + v;
        }
        if (size == 0) {
          for (;;) {
            if (!line(l)) return true;
            if (l.empty()) break;
          }
          break;
        }
        if (data.size() - pos < size) return true;
        pos += static_cast<std::size_t>(size);
        if (!line(l)) return true;
        if (!l.empty()) return false;  // data not followed by a line end
      }
    } else if (length && *length) {
      if (data.size() - pos < *length) return true;
      pos += static_cast<std::size_t>(*length);
    }
    req.complete = true;
  }
  return true;
}

constexpr std::array<std::string_view, 17> relayed_methods{
    "GET",   "HEAD",        "POST",         "PUT",      "DELETE",    "OPTIONS",
    "PATCH", "RPC_IN_DATA", "RPC_OUT_DATA", "PROPFIND", "PROPPATCH", "MKCOL",
    "COPY",  "MOVE",        "LOCK",         "UNLOCK",   "SEARCH"};

class harness {
 public:
  explicit harness(machine_settings s) : forwarded_(s.forwarded_headers), machine_(std::move(s)) {
    connection_info info;
    info.client = std::string(client_ip) + ":40000";
    info.client_ip = std::string(client_ip);
    info.front_tls = true;
    machine_.set_connection(info);
  }

  void client(std::string_view data) {
    run([&](step_list& out) { machine_.on_client_data(data, out); });
  }
  void answer_new_requests() {
    if (!backend_live()) return;
    std::vector<seen_request> seen;
    read_backend(backend_, seen);
    std::size_t complete = 0;
    for (const auto& r : seen) complete += r.complete ? 1 : 0;
    while (answered_ < complete && backend_live()) {
      ++answered_;
      run([&](step_list& out) {
        machine_.on_backend_data("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", out);
      });
    }
  }
  void end(bool by_timeout) {
    if (by_timeout)
      run([&](step_list& out) { machine_.on_idle_timeout(out); });
    else
      run([&](step_list& out) { machine_.on_client_eof(out); });
    if (!closed_) run([&](step_list& out) { machine_.on_idle_timeout(out); });
    FUZZ_CHECK(closed_);
    check();
  }

 private:
  bool backend_live() const { return connected_ && !aborted_ && !closed_; }

  template <typename F>
  void run(F&& f) {
    if (closed_) return;
    step_list out;
    f(out);
    for (const step& s : out.steps()) {
      FUZZ_CHECK(!closed_);  // nothing after close
      switch (s.what) {
        case step::kind::connect_backend: {
          connected_ = true;
          step_list more;
          machine_.on_backend_connected(true, more);
          FUZZ_CHECK(more.steps().empty());
          break;
        }
        case step::kind::send_backend:
          FUZZ_CHECK(!aborted_ && connected_);
          backend_ += s.data;
          break;
        case step::kind::abort_backend:
          aborted_ = true;
          break;
        case step::kind::close:
          closed_ = true;
          break;
        default:
          break;
      }
    }
    for (auto& e : machine_.take_audit_events()) records_.push_back(std::move(e));
  }

  static std::string str(const boost::json::object& o, const char* key) {
    const auto* v = o.if_contains(key);
    return v && v->is_string() ? std::string(v->as_string()) : std::string();
  }

  void check() {
    std::vector<std::pair<std::string, std::string>> relayed;
    for (const auto& r : records_) {
      const std::string origin = str(r, "origin");
      const std::string reason = str(r, "reason");
      if (origin == "backend" || reason.rfind("bad request body", 0) == 0 ||
          reason.rfind("the backend closed", 0) == 0 || reason.rfind("no response head", 0) == 0 ||
          reason.rfind("malformed backend", 0) == 0)
        relayed.emplace_back(str(r, "method"), str(r, "path"));
    }
    std::vector<seen_request> seen;
    FUZZ_CHECK(read_backend(backend_, seen));  // every byte at the backend has its place
    FUZZ_CHECK(seen.size() == relayed.size());
    for (std::size_t i = 0; i < seen.size(); ++i) {
      FUZZ_CHECK(seen[i].method == relayed[i].first);
      FUZZ_CHECK(seen[i].path == relayed[i].second);
      // Only the last request may be cut short (its body in flight, or the leg aborted).
      if (i + 1 < seen.size()) FUZZ_CHECK(seen[i].complete);
      FUZZ_CHECK(std::find(relayed_methods.begin(), relayed_methods.end(), seen[i].method) !=
                 relayed_methods.end());
      int xff = 0;
      for (const auto& [name, value] : seen[i].fields) {
        if (name == "x-forwarded-for") {
          ++xff;
          if (forwarded_) FUZZ_CHECK(value == client_ip);
        }
      }
      if (forwarded_) FUZZ_CHECK(xff == 1);
    }
    // No field name with '_' went on (IIS folds it onto '-': X_Forwarded_For would shadow ours).
    for (const auto& r : seen)
      for (const auto& f : r.raw_names) FUZZ_CHECK(f.find('_') == std::string::npos);
  }

  bool forwarded_;
  https_machine machine_;
  bool connected_ = false;
  bool aborted_ = false;
  bool closed_ = false;
  std::string backend_;
  std::size_t answered_ = 0;
  std::vector<boost::json::object> records_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  tlsbridge::fuzz::fuzz_input in(data, size);
  const std::uint8_t flags = in.byte();
  const std::uint8_t pattern = in.byte();
  machine_settings s;
  s.forwarded_headers = (flags & 0x01) == 0;
  s.max_header_bytes = 2048;  // small enough for the fuzzer to cross
  s.max_pending_exchanges = 16;
  auto ticks = std::make_shared<std::int64_t>(0);
  s.clock = [ticks] {
    return std::chrono::steady_clock::time_point(std::chrono::milliseconds(++*ticks));
  };
  const bool answer = (flags & 0x02) != 0;
  harness h(std::move(s));
  const std::string_view stream = in.rest();
  const std::size_t scale = (flags & 0x08) ? 37 : 1;
  std::size_t pos = 0;
  for (unsigned turn = 0; pos < stream.size(); ++turn) {
    const unsigned nibble = (turn & 1) ? (pattern >> 4) : (pattern & 0x0f);
    const std::size_t n = std::min<std::size_t>(stream.size() - pos, (1 + nibble) * scale);
    h.client(stream.substr(pos, n));
    pos += n;
    if (answer) h.answer_new_requests();
  }
  h.end((flags & 0x04) != 0);
  return 0;
}
