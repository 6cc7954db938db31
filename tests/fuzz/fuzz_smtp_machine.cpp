// Fuzz target for protocols/smtp/smtp_machine, the SMTP proxy machine. The input is a script: four
// bytes of settings (front TLS mode, require_tls, bare-LF mode, limits), then events, each chosen
// by one byte — client bytes, backend bytes (raw, length-prefixed, or picked from real dialogue
// pieces), front TLS established, client EOF, backend EOF, idle timeout, shutdown. The driver is
// modelled as proxy/session does: "front TLS established" only follows a start_front_tls step.
//
// Invariants:
//  * STARTTLS injection (RFC 3207 §4.2, CVE-2011-0411): bytes the client sent while its input was
//    paused, or behind an accepted STARTTLS line in the same read, never reach the backend. They
//    carry a marker byte (0x01) the fuzzer's own bytes never contain.
//  * start_front_tls follows the proxy's own 220 and happens once, on an unencrypted front.
//  * No step after close; no send_backend after abort_backend.
//  * What the client gets parses as well-formed replies, and every 250 in it was the backend's
//    (the proxy never invents a 250: its local replies are refusals, 220 for STARTTLS and 421s).
//  * With require_tls on a STARTTLS front, nothing but EHLO/HELO/NOOP/RSET/QUIT reaches the
//    backend before the front handshake.
//  * reject/normalize: the backend never gets a bare LF (unless BDAT, whose chunks are binary).
#include <array>
#include <cstdint>
#include <set>
#include <string>

#include "protocols/smtp/smtp_command.hpp"
#include "protocols/smtp/smtp_reply.hpp"
#include "protocols/smtp/smtp_machine.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using namespace tlsbridge::protocols;
using namespace tlsbridge::protocols::smtp;
namespace config = tlsbridge::config;

namespace {

constexpr char marker_byte = '\x01';
constexpr std::string_view marker = "\x01INJECTED-MARKER\x01\r\nMAIL FROM:<injected@evil>\r\n";

constexpr std::array<std::string_view, 24> client_pieces{
    "EHLO client.example\r\n",
    "HELO client.example\r\n",
    "STARTTLS\r\n",
    "EHLO client.example\r\nSTARTTLS\r\n",
    "MAIL FROM:<alice@example.org> SIZE=42\r\n",
    "RCPT TO:<bob@example.net>\r\n",
    "DATA\r\n",
    "Subject: hi\r\n\r\nbody\r\n.\r\n",
    "smuggled\n.\nMAIL FROM:<x@y>\n",
    "bare cr\r.\r\n",
    "..stuffed\r\n.\r\n",
    "BDAT 6\r\nabcdef",
    "BDAT 0 LAST\r\n",
    "BDAT 5 LAST\r\nx\n.\r\n",
    "RSET\r\n",
    "NOOP\r\n",
    "QUIT\r\n",
    "AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n",
    "X-EXPS GSSAPI\r\n",
    "XEXCH50 10 2\r\n",
    "EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n",
    ".\r\n",
    "\r\n",
    "STARTTLS\r\nEHLO x\r\n",
};

constexpr std::array<std::string_view, 14> backend_pieces{
    "250 2.0.0 OK\r\n",
    // Exchange 2010's EHLO reply, everything the rewriter must hide included.
    "250-mx.legacy.example Hello [127.0.0.1]\r\n250-SIZE 37748736\r\n250-PIPELINING\r\n"
    "250-DSN\r\n250-ENHANCEDSTATUSCODES\r\n250-STARTTLS\r\n250-X-ANONYMOUSTLS\r\n"
    "250-AUTH NTLM LOGIN\r\n250-X-EXPS GSSAPI NTLM\r\n250-8BITMIME\r\n250-BINARYMIME\r\n"
    "250-CHUNKING\r\n250-XEXCH50\r\n250-XRDST\r\n250 XSHADOW\r\n",
    "250 mx.legacy.example\r\n",
    "354 Start mail input; end with <CRLF>.<CRLF>\r\n",
    "250 2.6.0 <queue-id@mx> Queued mail for delivery\r\n",
    "220 2.0.0 Ready\r\n",
    "221 2.0.0 Bye\r\n",
    "421 4.3.2 Service not available\r\n",
    "550 5.1.1 User unknown\r\n",
    "503 5.5.1 Bad sequence of commands\r\n",
    "451 4.7.0 Temporary failure\r\n",
    "250-a\r\n",
    "250 b\r\n",
    "garbage\r\n",
};

class harness {
 public:
  explicit harness(machine_settings s)
      : settings_(s),
        machine_(std::move(s), "220 mx.legacy.example Microsoft ESMTP MAIL Service ready\r\n"),
        front_encrypted_(settings_.front == config::front_tls::implicit) {}

  void start() {
    step_list out;
    machine_.on_start(out);
    apply(out, true);
  }

  void client_data(std::string data, bool starttls_marker) {
    const bool paused_before = machine_.client_input_paused();
    // While paused every byte is the client's TLS handshake, never plaintext to act on.
    if (paused_before || starttls_marker) data += marker;
    for (std::size_t i = 0; i + 3 < data.size(); ++i)
      if ((data[i] | 0x20) == 'b' && (data[i + 1] | 0x20) == 'd' && (data[i + 2] | 0x20) == 'a' &&
          (data[i + 3] | 0x20) == 't')
        saw_bdat_ = true;
    step_list out;
    machine_.on_client_data(data, out);
    bool marker_must_not_leak = true;
    if (starttls_marker && !paused_before && !machine_.client_input_paused()) {
      // The STARTTLS line was not taken as STARTTLS (message data, refused, not offered): the
      // marker is ordinary client data now and may be relayed; stop checking for it.
      marker_must_not_leak = false;
      marker_tainted_ = true;
    }
    apply(out, marker_must_not_leak);
  }

  void backend_data(std::string_view data) {
    if (!backend_mirror_failed_) {
      backend_mirror_.append(data);
      reply r;
      for (;;) {
        const auto st = backend_mirror_.next(r);
        if (st == reply_parser::status::need_more) break;
        if (st == reply_parser::status::error) {
          backend_mirror_failed_ = true;
          break;
        }
        if (r.code == 250) {
          ++backend_250_;
          backend_250_texts_.insert(text_of(r.lines.front()));
        }
      }
    }
    step_list out;
    machine_.on_backend_data(data, out);
    apply(out, true);
  }

  void front_tls_established() {
    // proxy/session calls this only after performing a start_front_tls step; it may do so after
    // the machine said close (a backend event closed it during the handshake).
    if (!tls_pending_) return;
    tls_pending_ = false;
    front_encrypted_ = true;
    step_list out;
    machine_.on_front_tls_established(out);
    apply(out, true);
  }

  template <typename Event>
  void event(Event e) {
    step_list out;
    (machine_.*e)(out);
    apply(out, true);
  }

 private:
  static std::string text_of(const std::string& line) {
    return line.size() > 4 ? line.substr(4) : std::string();
  }

  void apply(const step_list& out, bool marker_must_not_leak) {
    for (const step& s : out.steps()) {
      FUZZ_CHECK(!closed_);  // no step after close
      switch (s.what) {
        case step::kind::send_client:
          client_out_ += s.data;
          check_client_replies(s.data);
          break;
        case step::kind::send_backend:
          FUZZ_CHECK(!backend_aborted_);
          if (marker_must_not_leak && !marker_tainted_)
            FUZZ_CHECK(s.data.find(marker_byte) == std::string::npos);
          if (!front_encrypted_) pre_tls_backend_ += s.data;
          backend_out_ += s.data;
          break;
        case step::kind::start_front_tls:
          FUZZ_CHECK(settings_.front == config::front_tls::starttls);
          FUZZ_CHECK(!front_encrypted_ && !tls_pending_);
          FUZZ_CHECK(client_out_.ends_with("220 2.0.0 Ready to start TLS\r\n"));
          tls_pending_ = true;
          break;
        case step::kind::abort_backend:
          backend_aborted_ = true;
          break;
        case step::kind::delay_client:  // only with an auth gate, which is not set here
          break;
        case step::kind::close:
          closed_ = true;
          break;
        case step::kind::connect_backend:
          FUZZ_CHECK(false);  // SMTP is backend_first(): its back leg is open before on_start
          break;
        case step::kind::shutdown_client_send:
        case step::kind::shutdown_backend_send:
          break;
      }
    }
    check_backend_stream();
  }

  void check_client_replies(std::string_view data) {
    if (client_mirror_failed_) return;
    client_mirror_.append(data);
    reply r;
    for (;;) {
      const auto st = client_mirror_.next(r);
      if (st == reply_parser::status::error) {
        // The client only ever gets replies. The one limit of our own parser a relayed reply may
        // pass: a 512-line EHLO reply gains the proxy's STARTTLS line (clients have no such cap).
        FUZZ_CHECK(client_mirror_.error() == "backend reply has too many lines");
        client_mirror_failed_ = true;
        return;
      }
      if (st == reply_parser::status::need_more) return;
      if (r.code == 250) {
        // The proxy never invents a 250; the EHLO rewriter keeps the backend's first line text.
        ++client_250_;
        FUZZ_CHECK(client_250_ <= backend_250_);
        FUZZ_CHECK(backend_250_texts_.count(text_of(r.lines.front())) == 1);
      }
    }
  }

  void check_backend_stream() {
    if (settings_.front == config::front_tls::starttls && settings_.require_tls) {
      // Whole command lines sent before the front handshake: only the permitted verbs.
      std::size_t start = 0;
      for (;;) {
        const auto end = pre_tls_backend_.find("\r\n", start);
        if (end == std::string::npos) break;
        const command c =
            parse_command(std::string_view(pre_tls_backend_).substr(start, end - start));
        FUZZ_CHECK(c.what == verb::ehlo || c.what == verb::helo || c.what == verb::noop ||
                   c.what == verb::rset || c.what == verb::quit);
        start = end + 2;
      }
      pre_tls_backend_.erase(0, start);
    }
    if (settings_.bare_lf != config::bare_lf_mode::pass && !saw_bdat_) {
      for (std::size_t i = checked_lf_; i < backend_out_.size(); ++i)
        if (backend_out_[i] == '\n') FUZZ_CHECK(i > 0 && backend_out_[i - 1] == '\r');
      checked_lf_ = backend_out_.size();
    }
  }

  machine_settings settings_;
  smtp_machine machine_;
  bool front_encrypted_;
  bool tls_pending_ = false;
  bool closed_ = false;
  bool backend_aborted_ = false;
  bool marker_tainted_ = false;
  bool saw_bdat_ = false;
  std::string client_out_;
  std::string backend_out_;
  std::string pre_tls_backend_;
  std::size_t checked_lf_ = 0;
  reply_parser backend_mirror_;
  bool backend_mirror_failed_ = false;
  std::size_t backend_250_ = 0;
  std::set<std::string> backend_250_texts_;
  reply_parser client_mirror_;
  bool client_mirror_failed_ = false;
  std::size_t client_250_ = 0;
};

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
  s.bare_lf = static_cast<config::bare_lf_mode>((mode >> 3) % 3);
  s.hostname = "proxy.example";
  s.max_command_line = 32 + std::size_t{in.byte()} * 16;
  s.max_held_bytes = 64 + std::size_t{in.byte()} * 8;
  s.max_pending_commands = 1 + in.byte() % 64;

  harness h(s);
  h.start();
  while (!in.empty()) {
    switch (in.byte() % 9) {
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
      case 4:
        h.front_tls_established();
        break;
      case 5:
        h.event(&smtp_machine::on_client_eof);
        break;
      case 6:
        h.event(&smtp_machine::on_backend_eof);
        break;
      case 7:
        h.event(&smtp_machine::on_idle_timeout);
        break;
      case 8:
        h.event(&smtp_machine::on_shutdown);
        break;
    }
  }
  return 0;
}
