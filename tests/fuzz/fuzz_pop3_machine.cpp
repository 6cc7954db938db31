// Fuzz target for protocols/pop3/pop3_machine (and pop3_syntax, which it uses), the POP3 proxy
// machine. The input is a script, as for fuzz_smtp_machine: four bytes of settings (front TLS mode,
// require_tls, limits), then events, each chosen by one byte — client bytes (raw, or picked from
// real dialogue pieces: USER/PASS, APOP, AUTH PLAIN, CAPA, RETR, STLS pipelined), backend bytes
// (raw, pieces: +OK, -ERR, CAPA with STLS/SASL, multi-line bodies with dot-stuffing, "+ "
// challenges), front TLS established, client EOF, backend EOF, idle timeout, shutdown, and a RETR
// probe. The driver is modelled as proxy/session does: "front TLS established" only follows a
// start_front_tls step, and may follow a close (the driver finishes a handshake it started).
//
// Invariants:
//  * STLS injection (RFC 2595 §4, CVE-2011-0411): bytes the client sent while its input was
//    paused, or behind an accepted STLS line in the same read, never reach the backend. They
//    carry a marker byte (0x01) the fuzzer's own bytes never contain; once discarded, the machine
//    has counted them (facts().starttls_injection).
//  * start_front_tls: only on a STARTTLS front, never encrypted yet, at most once, right after the
//    proxy's own "+OK Begin TLS negotiation"; the client is no longer paused after the handshake.
//  * No step after close (a closed machine stays closed), and every close has an outcome; no
//    send_backend after abort_backend; no connect_backend (POP3 is backend_first()).
//  * require_tls on a STARTTLS front: before the front handshake no USER, PASS, APOP, AUTH or STLS
//    line reaches the backend (POP3 has no literals, and no AUTH exchange can start then, so every
//    line the backend gets is a command).
//  * RETR probe (a fresh machine): a multi-line body holding the fuzzer's lines (dot-stuffed,
//    "." and ".." lines included) reaches the client byte for byte, fed in fuzzer-chosen pieces,
//    and the pipelined command's reply after it is matched to it.
#include <array>
#include <cstdint>
#include <string>

#include "protocols/pop3/pop3_machine.hpp"
#include "common/ascii_case.hpp"
#include "protocols/pop3/pop3_syntax.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using namespace tlsbridge::protocols;
using namespace tlsbridge::protocols::pop3;
namespace config = tlsbridge::config;

namespace {

constexpr char marker_byte = '\x01';
// No STLS in it: the marker must not be able to start a handshake of its own.
constexpr std::string_view marker = "\x01INJECTED-MARKER\x01\r\nUSER injected\r\nPASS secret\r\n";

const std::string greeting = "+OK Dovecot ready. <1896.697170952@dbc.mtview.ca.us>\r\n";

constexpr std::array<std::string_view, 24> client_pieces{
    "CAPA\r\n",
    "STLS\r\n",
    "USER alice\r\n",
    "PASS secret\r\n",
    "USER alice\r\nPASS secret\r\n",
    "APOP alice c4c9334bac560ecc979e58001b3e22fb\r\n",
    "AUTH PLAIN\r\n",
    "AGFsaWNlAHNlY3JldA==\r\n",
    "AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n",
    "AUTH\r\n",
    "STAT\r\n",
    "LIST\r\n",
    "LIST 1\r\n",
    "UIDL\r\n",
    "RETR 1\r\n",
    "TOP 1 10\r\n",
    "DELE 1\r\n",
    "NOOP\r\n",
    "QUIT\r\n",
    "NOOP\r\nSTLS\r\n",
    "CAPA\r\nSTLS\r\n",
    "*\r\n",
    "user alice\npass secret\n",
    "\r\n",
};

constexpr std::array<std::string_view, 16> backend_pieces{
    "+OK\r\n",
    "+OK done\r\n",
    "-ERR no such message\r\n",
    "-ERR [AUTH] Authentication failed.\r\n",
    "+OK Capability list follows\r\nTOP\r\nUSER\r\nSTLS\r\nSASL PLAIN LOGIN\r\nUIDL\r\n"
    "PIPELINING\r\nIMPLEMENTATION Dovecot\r\n.\r\n",
    "+OK 120 octets\r\nSubject: x\r\n\r\n..stuffed\r\n+OK not a reply\r\n.\r\n",
    "+OK 2 messages\r\n1 120\r\n2 200\r\n.\r\n",
    "+OK\r\nPLAIN\r\nLOGIN\r\n.\r\n",
    "+ \r\n",
    "+\r\n",
    ".\r\n",
    "..\r\n",
    "line of a body\r\n",
    "+OK Logged in.\r\n",
    "-ERR Disconnected for inactivity.\r\n",
    "+OK Logging out.\r\n",
};

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

  void client_data(std::string data, bool stls_marker) {
    const bool paused_before = machine_.client_input_paused();
    if (paused_before || stls_marker) data += marker;
    step_list out;
    machine_.on_client_data(data, out);
    bool marker_must_not_leak = true;
    const bool paused_after = machine_.client_input_paused();
    if (stls_marker && !paused_before && !paused_after) {
      // The STLS line was not taken as STLS (a SASL response, refused, after TLS, closed): the
      // marker is ordinary client data now and may be relayed; stop checking for it.
      marker_must_not_leak = false;
      marker_tainted_ = true;
    }
    apply(out, marker_must_not_leak);
    if (paused_before || (stls_marker && paused_after))
      FUZZ_CHECK(machine_.facts().starttls_injection && machine_.facts().injected_bytes > 0);
  }

  void backend_data(std::string_view data) {
    step_list out;
    machine_.on_backend_data(data, out);
    apply(out, true);
  }

  void front_tls_established() {
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
          FUZZ_CHECK(client_out_.ends_with("+OK Begin TLS negotiation\r\n"));
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
          FUZZ_CHECK(false);  // POP3 is backend_first(): its back leg is open before on_start
          break;
        case step::kind::shutdown_client_send:
        case step::kind::shutdown_backend_send:
          break;
      }
    }
  }

  void check_pre_tls_stream() {
    std::size_t start = 0;
    for (;;) {
      const auto end = pre_tls_backend_.find("\r\n", start);
      if (end == std::string::npos) break;
      const std::string_view line = std::string_view(pre_tls_backend_).substr(start, end - start);
      const std::string verb = tlsbridge::ascii::upper(line.substr(0, line.find(' ')));
      // No credentials in the clear under require_tls; STLS is the proxy's own.
      FUZZ_CHECK(verb != "USER" && verb != "PASS" && verb != "APOP" && verb != "AUTH" &&
                 verb != "STLS");
      start = end + 2;
    }
    pre_tls_backend_.erase(0, start);
  }

  machine_settings settings_;
  pop3_machine machine_;
  bool front_encrypted_;
  bool check_pre_tls_;
  bool tls_pending_ = false;
  bool tls_started_ = false;
  bool closed_ = false;
  bool backend_aborted_ = false;
  bool marker_tainted_ = false;
  std::string client_out_;  // the tail of what the client got
  std::string pre_tls_backend_;
};

// A fresh machine: RETR's body (the fuzzer's lines, dot-stuffed) reaches the client untouched and
// the pipelined NOOP's reply after it is still a reply.
void retr_probe(std::string_view lines, std::string_view split_at) {
  machine_settings s;
  s.front = config::front_tls::implicit;
  s.hostname = "proxy.example";
  pop3_machine m(s, greeting);
  std::string to_client, to_backend;
  bool closed = false;
  auto run = [&](auto&& event) {
    step_list out;
    event(out);
    for (const step& st : out.steps()) {
      FUZZ_CHECK(!closed);
      if (st.what == step::kind::send_client) to_client += st.data;
      if (st.what == step::kind::send_backend) to_backend += st.data;
      if (st.what == step::kind::close) closed = true;
    }
  };
  run([&](step_list& out) { m.on_start(out); });
  FUZZ_CHECK(to_client == greeting);
  to_client.clear();
  run([&](step_list& out) { m.on_client_data("RETR 1\r\nNOOP\r\n", out); });
  FUZZ_CHECK(to_backend == "RETR 1\r\nNOOP\r\n");

  // The body: each line of the fuzzer's bytes (CR and LF are line ends here), dot-stuffed.
  std::string body = "+OK 42 octets\r\n";
  std::string line;
  auto end_line = [&] {
    if (line.starts_with('.')) body += '.';
    body += line + "\r\n";
    line.clear();
  };
  for (char c : lines) {
    if (c == '\n')
      end_line();
    else if (c != '\r')
      line += c;
  }
  if (!line.empty()) end_line();
  body += ".\r\n";
  const std::string wire = body + "+OK noop\r\n";
  std::size_t at = 0;
  for (char c : split_at) {
    const std::size_t n = std::min<std::size_t>(static_cast<unsigned char>(c) % 32, wire.size() - at);
    run([&](step_list& out) { m.on_backend_data(std::string_view(wire).substr(at, n), out); });
    at += n;
  }
  run([&](step_list& out) { m.on_backend_data(std::string_view(wire).substr(at), out); });
  FUZZ_CHECK(to_client == wire);
  FUZZ_CHECK(!closed);
  // Both replies matched: a QUIT now is answered and ends the session.
  to_backend.clear();
  run([&](step_list& out) { m.on_client_data("QUIT\r\n", out); });
  FUZZ_CHECK(to_backend == "QUIT\r\n");
  run([&](step_list& out) { m.on_backend_data("+OK Logging out.\r\n", out); });
  FUZZ_CHECK(closed);
  FUZZ_CHECK(m.facts().outcome == "ok");
}

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
  s.max_command_line = 16 + std::size_t{limits} * 8;
  s.max_response_line = 32 + std::size_t{limits} * 16;
  s.max_capa_bytes = 32 + std::size_t{in.byte()} * 8;
  const std::uint8_t held = in.byte();
  s.max_held_bytes = 16 + static_cast<std::size_t>(held & 0x3f) * 16;
  s.max_pending_commands = 1 + (held >> 6) * 20;

  harness h(s);
  h.start();
  while (!in.empty()) {
    switch (in.byte() % 10) {
      case 0:
        h.client_data(without_marker(in.chunk()), false);
        break;
      case 1:
        h.backend_data(without_marker(in.chunk()));
        break;
      case 2: {
        const std::uint8_t pick = in.byte();
        const std::string_view piece = client_pieces[(pick & 0x7f) % client_pieces.size()];
        h.client_data(std::string(piece), (pick & 0x80) != 0 && piece.ends_with("STLS\r\n"));
        break;
      }
      case 3:
        h.backend_data(backend_pieces[in.byte() % backend_pieces.size()]);
        break;
      case 4:
        h.front_tls_established();
        break;
      case 5:
        h.event(&pop3_machine::on_client_eof);
        break;
      case 6:
        h.event(&pop3_machine::on_backend_eof);
        break;
      case 7:
        h.event(&pop3_machine::on_idle_timeout);
        break;
      case 8:
        h.event(&pop3_machine::on_shutdown);
        break;
      case 9: {
        const std::string_view split = in.bytes(in.byte() % 8);
        retr_probe(in.chunk(), split);
        break;
      }
    }
  }
  return 0;
}
