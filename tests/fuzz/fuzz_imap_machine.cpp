// Fuzz target for protocols/imap/imap_machine (and imap_syntax, which it uses), the IMAP proxy
// machine. The input is a script, as for fuzz_smtp_machine: four bytes of settings (front TLS mode,
// require_tls, limits), then events, each chosen by one byte — client bytes (raw, or picked from
// real dialogue pieces: literals {n}/{n+}, APPEND, LOGIN, AUTHENTICATE, IDLE, STARTTLS), backend
// bytes (raw, pieces: capabilities, "+ go ahead", tagged OK/NO/BAD for the pieces' tags, FETCH
// literals), front TLS established, client EOF, backend EOF, idle timeout, shutdown, an APPEND
// with a literal of the right size, and a literal probe. The driver is modelled as proxy/session
// does: "front TLS established" only follows a start_front_tls step.
//
// Invariants:
//  * STARTTLS injection (RFC 9051 §6.2.1, CVE-2011-0411): bytes the client sent while its input
//    was paused, or behind an accepted STARTTLS line in the same read, never reach the backend.
//    They carry a marker byte (0x01) the fuzzer's own bytes never contain; once discarded, the
//    machine has counted them (facts().starttls_injection).
//  * start_front_tls: only on a STARTTLS front, never encrypted yet, at most once, right after the
//    proxy's own tagged "OK Begin TLS negotiation now"; the client is no longer paused once the
//    handshake is done. The driver finishes a handshake it started even if the machine said
//    close meanwhile (as for SMTP): a closed machine must stay closed.
//  * No step after close, and every close has an outcome; no send_backend after abort_backend;
//    no connect_backend (IMAP is backend_first()).
//  * require_tls on a STARTTLS front: no LOGIN, AUTHENTICATE or STARTTLS command line reaches the
//    backend before the front handshake. The backend stream is framed as the backend frames it
//    (command lines, {n+} literals skipped as data); after a synchronizing literal or an IDLE the
//    framing depends on the backend's answers, and the check stops there.
//  * Literal probe (a fresh machine, pre-TLS, require_tls): an APPEND whose synchronizing literal
//    holds the fuzzer's bytes ("b LOGIN x y", "c STARTTLS", anything), fed in fuzzer-chosen
//    pieces, reaches the backend byte for byte and is never refused (a non-synchronizing one is
//    refused with BAD and its bytes dropped); the LOGIN that follows it is refused with
//    PRIVACYREQUIRED once APPEND completes, and the NOOP after it is relayed. A FETCH literal the
//    backend sends reaches the client byte for byte, never rewritten or taken for a response.
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "protocols/imap/imap_machine.hpp"
#include "protocols/imap/imap_syntax.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using namespace tlsbridge::protocols;
using namespace tlsbridge::protocols::imap;
namespace config = tlsbridge::config;

namespace {

constexpr char marker_byte = '\x01';
// No STARTTLS in it: the marker must not be able to start a handshake of its own.
constexpr std::string_view marker = "\x01INJECTED-MARKER\x01\r\nz1 LOGIN injected secret\r\n";

const std::string greeting =
    "* OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL+ IDLE STARTTLS AUTH=PLAIN] Dovecot ready.\r\n";

constexpr std::array<std::string_view, 26> client_pieces{
    "a1 CAPABILITY\r\n",
    "a2 STARTTLS\r\n",
    "a3 LOGIN alice secret\r\n",
    "a4 LOGIN {5}\r\n",
    "a4 LOGIN {5+}\r\nalice {6+}\r\nsecret\r\n",
    "a5 AUTHENTICATE PLAIN\r\n",
    "AGFsaWNlAHNlY3JldA==\r\n",
    "a6 AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==\r\n",
    "a7 IDLE\r\n",
    "DONE\r\n",
    "a8 SELECT INBOX\r\n",
    "a9 FETCH 1 BODY[]\r\n",
    "b1 APPEND INBOX {5}\r\n",
    "hello\r\n",
    "b2 APPEND INBOX {12+}\r\nb3 LOGIN a b\r\n",
    "c1 NOOP\r\nc2 STARTTLS\r\n",
    "c3 COMPRESS DEFLATE\r\n",
    "c4 LOGOUT\r\n",
    "c5 APPEND INBOX {100000000}\r\n",
    "c6 APPEND INBOX {100000000+}\r\n",
    "\r\n",
    "c7 NOOP\r\nc8 STARTTLS\r\nc9 LOGIN evil pw\r\n",
    "d1 APPEND INBOX ~{3+}\r\nabc\r\n",
    "d2 LOGIN \"al ice\" \"pw\"\r\n",
    "d3 STARTTLS\r\n",
    "{3}\r\n",
};

constexpr std::array<std::string_view, 13> backend_pieces{
    "* CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN LOGINDISABLED COMPRESS=DEFLATE IDLE\r\n",
    "+ go ahead\r\n",
    "+ idling\r\n",
    "+ \r\n",
    "* BYE Autologout\r\n",
    "* OK [CAPABILITY IMAP4rev1 STARTTLS] ready\r\n",
    "* 2 EXISTS\r\n",
    "* 1 FETCH (BODY[] {21}\r\na9 OK fake\r\n* BYE x\r\n)\r\n",
    "* 1 FETCH (BODY[] {5}\r\n",
    "abcde FLAGS (\\Seen))\r\n",
    "garbage without tag\r\n",
    "* SEARCH 1 2 3\r\n",
    "*\r\n",
};

constexpr std::array<std::string_view, 19> tags{"a1", "a2", "a3", "a4", "a5", "a6", "a7",
                                                "a8", "a9", "b1", "b2", "c1", "c4", "c5",
                                                "c7", "d1", "d2", "z1", "*"};
constexpr std::array<std::string_view, 5> statuses{
    "OK done", "NO [TRYCREATE] failed", "BAD command unknown",
    "OK [CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN] Logged in", "OK Logout completed."};

// What a client sees of one machine: bytes each way and the other steps, checked as they come.
class harness {
 public:
  explicit harness(machine_settings s)
      : settings_(s),
        machine_(std::move(s), greeting),
        front_encrypted_(settings_.front == config::front_tls::implicit),
        check_pre_tls_(settings_.front == config::front_tls::starttls && settings_.require_tls) {}

  void start() {
    step_list out;
    machine_.on_start(out);
    apply(out, true);
  }

  void client_data(std::string data, bool starttls_marker) {
    const bool paused_before = machine_.client_input_paused();
    if (paused_before || starttls_marker) data += marker;
    step_list out;
    machine_.on_client_data(data, out);
    bool marker_must_not_leak = true;
    const bool paused_after = machine_.client_input_paused();
    if (starttls_marker && !paused_before && !paused_after) {
      // The STARTTLS line was not taken as STARTTLS (literal data, refused, after TLS, closed):
      // the marker is ordinary client data now and may be relayed; stop checking for it.
      marker_must_not_leak = false;
      marker_tainted_ = true;
    }
    apply(out, marker_must_not_leak);
    if (paused_before || (starttls_marker && paused_after))
      FUZZ_CHECK(machine_.facts().starttls_injection && machine_.facts().injected_bytes > 0);
  }

  void backend_data(std::string_view data) {
    step_list out;
    machine_.on_backend_data(data, out);
    apply(out, true);
  }

  void front_tls_established() {
    // proxy/session calls this only after performing a start_front_tls step (maybe after the
    // machine said close: a backend event during the handshake).
    if (!tls_pending_) return;
    tls_pending_ = false;
    front_encrypted_ = true;
    step_list out;
    machine_.on_front_tls_established(out);
    apply(out, true);
    FUZZ_CHECK(!machine_.client_input_paused());
  }

  template <typename Event>
  void event(Event e) {
    step_list out;
    (machine_.*e)(out);
    apply(out, true);
  }

 private:
  void apply(const step_list& out, bool marker_must_not_leak) {
    for (const step& s : out.steps()) {
      FUZZ_CHECK(!closed_);  // no step after close
      switch (s.what) {
        case step::kind::send_client:
          client_out_ += s.data;
          if (client_out_.size() > 256) client_out_.erase(0, client_out_.size() - 256);
          break;
        case step::kind::send_backend:
          FUZZ_CHECK(!backend_aborted_);
          if (marker_must_not_leak && !marker_tainted_)
            FUZZ_CHECK(s.data.find(marker_byte) == std::string::npos);
          if (check_pre_tls_ && !front_encrypted_) {
            pre_tls_backend_ += s.data;
            check_pre_tls_stream();
          }
          break;
        case step::kind::start_front_tls:
          FUZZ_CHECK(settings_.front == config::front_tls::starttls);
          FUZZ_CHECK(!front_encrypted_ && !tls_pending_ && !tls_started_);
          FUZZ_CHECK(client_out_.ends_with(" OK Begin TLS negotiation now\r\n"));
          tls_pending_ = true;
          tls_started_ = true;
          break;
        case step::kind::abort_backend:
          backend_aborted_ = true;
          break;
        case step::kind::delay_client:  // only with an auth gate, which is not set here
          break;
        case step::kind::close:
          FUZZ_CHECK(!machine_.facts().outcome.empty());
          closed_ = true;
          break;
        case step::kind::connect_backend:
          FUZZ_CHECK(false);  // IMAP is backend_first(): its back leg is open before on_start
          break;
        case step::kind::shutdown_client_send:
        case step::kind::shutdown_backend_send:
          break;
      }
    }
  }

  // The backend stream before the front handshake, framed as the backend frames it.
  void check_pre_tls_stream() {
    for (;;) {
      if (pre_tls_uncertain_) {
        pre_tls_backend_.clear();
        return;
      }
      if (literal_left_ > 0) {
        const std::size_t n =
            static_cast<std::size_t>(std::min<std::uint64_t>(literal_left_, pre_tls_backend_.size()));
        pre_tls_backend_.erase(0, n);
        literal_left_ -= n;
        if (literal_left_ > 0) return;
        continue;
      }
      const auto end = pre_tls_backend_.find("\r\n");
      if (end == std::string::npos) return;
      const std::string line = pre_tls_backend_.substr(0, end);
      pre_tls_backend_.erase(0, end + 2);
      if (at_command_start_) {
        if (const auto head = parse_command_head(line)) {
          // require_tls, RFC 9051 §6.2.3: no credentials in the clear; STARTTLS is the proxy's.
          FUZZ_CHECK(head->name != "LOGIN" && head->name != "AUTHENTICATE" &&
                     head->name != "STARTTLS");
          if (head->name == "IDLE") pre_tls_uncertain_ = true;  // lines are DONE, not commands
        }
      }
      const auto lit = trailing_literal(line);
      if (!lit) {
        at_command_start_ = true;
        continue;
      }
      if (lit->synchronizing) {
        // Sent only if the backend answers "+": the framing now depends on the backend.
        pre_tls_uncertain_ = true;
        continue;
      }
      literal_left_ = lit->size;
      at_command_start_ = false;
    }
  }

  machine_settings settings_;
  imap_machine machine_;
  bool front_encrypted_;
  bool check_pre_tls_;
  bool tls_pending_ = false;
  bool tls_started_ = false;
  bool closed_ = false;
  bool backend_aborted_ = false;
  bool marker_tainted_ = false;
  std::string client_out_;  // the tail of what the client got
  std::string pre_tls_backend_;
  bool at_command_start_ = true;
  bool pre_tls_uncertain_ = false;
  std::uint64_t literal_left_ = 0;
};

// A fresh machine, before TLS with require_tls: literals carry the fuzzer's bytes untouched in
// both directions, and the LOGIN after an APPEND is still a command (refused).
void literal_probe(std::string_view content, std::uint8_t how, std::string_view split_at) {
  machine_settings s;
  s.front = config::front_tls::starttls;
  s.require_tls = true;
  s.hostname = "proxy.example";
  imap_machine m(s, greeting);
  std::string to_client, to_backend;
  bool closed = false;
  auto run = [&](auto&& feed) {
    step_list out;
    feed(out);
    for (const step& st : out.steps()) {
      FUZZ_CHECK(!closed);
      if (st.what == step::kind::send_client) to_client += st.data;
      if (st.what == step::kind::send_backend) to_backend += st.data;
      FUZZ_CHECK(st.what == step::kind::send_client || st.what == step::kind::send_backend);
    }
  };
  // Feeds `bytes` in pieces: the split points come from the fuzzer.
  auto feed = [&](std::string_view bytes, bool client) {
    std::size_t at = 0;
    for (char c : split_at) {
      const std::size_t n = std::min<std::size_t>(static_cast<unsigned char>(c) % 32, bytes.size() - at);
      run([&](step_list& out) {
        client ? m.on_client_data(bytes.substr(at, n), out) : m.on_backend_data(bytes.substr(at, n), out);
      });
      at += n;
    }
    run([&](step_list& out) {
      client ? m.on_client_data(bytes.substr(at), out) : m.on_backend_data(bytes.substr(at), out);
    });
  };
  run([&](step_list& out) { m.on_start(out); });
  to_client.clear();

  const bool synchronizing = (how & 1) != 0;
  const std::string append = "t1 APPEND INBOX {" + std::to_string(content.size()) +
                             (synchronizing ? "}" : "+}") + "\r\n";
  const std::string after = "\r\nt2 LOGIN alice secret\r\nt3 NOOP\r\n";
  if (synchronizing) {
    // The client sends it all at once (early): held until the backend's "+".
    feed(append + std::string(content) + after, true);
    FUZZ_CHECK(to_backend == append);
    FUZZ_CHECK(to_client.empty());
    feed("+ Ready for literal data\r\n", false);
    FUZZ_CHECK(to_client == "+ Ready for literal data\r\n");
    to_client.clear();
  } else {
    // Before front TLS a non-synchronizing literal is refused by the proxy and its
    // bytes are read and dropped with the rest of the command; nothing of t1 reaches the backend.
    feed(append + std::string(content) + after, true);
    FUZZ_CHECK(to_backend == "t3 NOOP\r\n");
    FUZZ_CHECK(to_client.starts_with("t1 BAD "));
    FUZZ_CHECK(to_client.ends_with(
        "\r\nt2 NO [PRIVACYREQUIRED] Use STARTTLS before authenticating\r\n"));
    FUZZ_CHECK(!closed);
    return;
  }
  FUZZ_CHECK(to_backend == append + std::string(content) + "\r\nt3 NOOP\r\n");
  feed("t1 OK [APPENDUID 1 2] Append completed.\r\n", false);
  FUZZ_CHECK(to_client == "t1 OK [APPENDUID 1 2] Append completed.\r\n"
                          "t2 NO [PRIVACYREQUIRED] Use STARTTLS before authenticating\r\n");
  to_client.clear();
  to_backend.clear();
  FUZZ_CHECK(!m.facts().starttls_injection);

  // The backend's literal: streamed untouched, its content never read as a response.
  feed("t4 FETCH 1 BODY[]\r\n", true);
  FUZZ_CHECK(to_backend == "t4 FETCH 1 BODY[]\r\n");
  const std::string response = "t3 OK NOOP completed.\r\n* 1 FETCH (BODY[] {" +
                               std::to_string(content.size()) + "}\r\n" + std::string(content) +
                               " FLAGS (\\Seen))\r\nt4 OK Fetch completed.\r\n";
  feed(response, false);
  FUZZ_CHECK(to_client == response);
  FUZZ_CHECK(!closed);
  FUZZ_CHECK(!m.client_input_paused());
}

// The fuzzer's own bytes never carry the marker byte.
std::string without_marker(std::string_view data) {
  std::string s(data);
  for (char& c : s)
    if (c == marker_byte) c = '\x02';
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  tlsbridge::fuzz::fuzz_input in(data, size);
  machine_settings s;
  const std::uint8_t mode = in.byte();
  s.front = static_cast<config::front_tls>(mode % 3);
  s.require_tls = (mode & 0x04) == 0;
  s.audit_envelope = (mode & 0x08) == 0;
  s.hostname = "proxy.example";
  const std::uint8_t limits = in.byte();
  s.max_command_line = 32 + std::size_t{limits} * 16;
  s.max_response_line = 64 + std::size_t{limits} * 32;
  s.max_literal = 1 + std::uint64_t{in.byte()} * 64;
  const std::uint8_t held = in.byte();
  s.max_held_bytes = 32 + static_cast<std::size_t>(held & 0x3f) * 16;
  s.max_pending_commands = 1 + (held >> 6) * 20;

  harness h(s);
  h.start();
  while (!in.empty()) {
    switch (in.byte() % 12) {
      case 0:
        h.client_data(without_marker(in.chunk()), false);
        break;
      case 1:
        h.backend_data(without_marker(in.chunk()));
        break;
      case 2: {
        const std::uint8_t pick = in.byte();
        const std::string_view piece = client_pieces[(pick & 0x7f) % client_pieces.size()];
        h.client_data(std::string(piece), (pick & 0x80) != 0 && piece.ends_with("STARTTLS\r\n"));
        break;
      }
      case 3:
        h.backend_data(backend_pieces[in.byte() % backend_pieces.size()]);
        break;
      case 4: {
        // A tagged completion for one of the pieces' tags.
        const std::uint8_t pick = in.byte();
        h.backend_data(std::string(tags[pick % tags.size()]) + " " +
                       std::string(statuses[(pick / tags.size()) % statuses.size()]) + "\r\n");
        break;
      }
      case 5:
        h.front_tls_established();
        break;
      case 6:
        h.event(&imap_machine::on_client_eof);
        break;
      case 7:
        h.event(&imap_machine::on_backend_eof);
        break;
      case 8:
        h.event(&imap_machine::on_idle_timeout);
        break;
      case 9:
        h.event(&imap_machine::on_shutdown);
        break;
      case 10: {
        // An APPEND with a literal of the right size (synchronizing or not) and its bytes.
        const std::uint8_t how = in.byte();
        const std::string content = without_marker(in.chunk());
        h.client_data("e1 APPEND INBOX {" + std::to_string(content.size()) +
                          ((how & 1) ? "}" : "+}") + "\r\n" + content + "\r\n",
                      false);
        break;
      }
      case 11: {
        const std::uint8_t how = in.byte();
        const std::string_view split = in.bytes(how >> 5);
        literal_probe(in.chunk(), how, split);
        break;
      }
    }
  }
  return 0;
}
