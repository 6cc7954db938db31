// Differential fuzz target for the SMTP machine (issue 12). The bug class: the proxy
// and the backend disagree about where a command, a SASL response or a message ends. The machine
// (protocols/smtp/smtp_machine) is driven with fuzzed client bytes; everything it sends to the
// backend is read by an independent reference backend written here from RFC 5321/3030/4954 and
// the habits of lenient servers, not from the machine's parser:
//  * lines end at CRLF, a bare LF or a bare CR; a command's verb is its first word after any
//    leading blanks, cut at any blank or control character, NUL bytes ignored (Postfix splits at
//    TAB and stops at NUL; a lenient server may do the rest);
//  * after its own 354 it reads message data up to "." alone on such a line (in smtp_bare_lf =
//    "pass" only at <CRLF>.<CRLF>: the operator chose to pass bare LFs, and check-config warns);
//  * BDAT's size is read as lenient servers do (all digits, any length, a leading zero as octal,
//    wrapping at 2^32); without CHUNKING it
//    answers 502 and does not read the chunk (Postfix says 521 and hangs up; Exchange can refuse);
//  * after its own 334 the next line is a SASL response ("*" cancels);
//  * after QUIT it reads nothing.
// It answers like a backend (replies chosen by a seeded generator: EHLO with or without CHUNKING,
// DATA accepted or refused, AUTH with 0-3 challenges...), and the machine gets those replies when
// the script says so. The machine reports what it decided through relay_observer. After every
// event the reference's list — each command with its verb and line, each SASL response, each end
// of message — must equal the machine's: the backend never sees a command the machine did not
// decide to relay as that command (a refused verb, AUTH before TLS, a chunk the machine dropped),
// never misses one, and ends each message exactly where the machine did.
//
// Input: [mode][line limit][seed x4] then events (see LLVMFuzzerTestOneInput). mode: front % 3
// (0 starttls, 1 implicit, 2 none) | 0x04 require_tls off | bare-LF mode << 3 | CHUNKING << 6
// (0 decided per EHLO, 1 never offered, 2 always). Seeds in
// tests/fuzz/corpus/smtp_differential/ hold every attack of issue 12 item 4.
#include <array>
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "protocols/smtp/smtp_machine.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using namespace tlsbridge::protocols;
using namespace tlsbridge::protocols::smtp;
namespace config = tlsbridge::config;

namespace {

constexpr std::array<std::string_view, 48> client_pieces{
    "EHLO client.example\r\n",
    "STARTTLS\r\n",
    "MAIL FROM:<alice@example.org>\r\n",
    "RCPT TO:<bob@example.net>\r\n",
    "DATA\r\n",
    "Subject: hi\r\n\r\nbody\r\n.\r\n",
    "smuggled\n.\nMAIL FROM:<x@y>\n",
    "smuggled\r.\rRCPT TO:<x@y>\r",
    "..stuffed\r\n.\r\n",
    "BDAT 6\r\nabcdef",
    "BDAT 5 LAST\r\nQUIT\r\n",
    "BDAT 0 LAST\r\n",
    "RSET\r\n",
    "NOOP\r\n",
    "QUIT\r\n",
    "QUIT\r\nNOOP\r\nMAIL FROM:<late@x>\r\n",
    "AUTH LOGIN\r\n",
    "AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n",
    "X-EXPS GSSAPI\r\n",
    "dXNlcg==\r\n",
    "*\r\n",
    "MAIL FROM:<in-sasl@x>\r\n",
    // Issue 12 item 4 and variants.
    "XEXCH50\t1 2\r\n",
    " XEXCH50 1 2\r\n",
    "X-ANONYMOUSTLS\t\r\n",
    "XSHADOW\tx\r\n",
    "XRDST\t\r\n",
    "AUTH\tPLAIN AGFsaWNlAHNlY3JldA==\r\n",
    "DATA\t\r\n",
    "MAIL\tFROM:<evil@x>\r\n",
    "RCPT  TO:<evil@x>\r\n",
    " DATA\r\n",
    "DA\0TA\r\n",
    "\0DATA\r\n",
    "DATA\x0b\r\n",
    "DATA\x0c\r\n",
    "NOOP\rDATA\r\n",
    "NOOP\nDATA\r\n",
    "\r\n",
    "BDAT\t5 LAST\r\nRSET\r\n",
    "BDAT 010 LAST\r\nRSET\r\n",
    "BDAT +5 LAST\r\nRSET\r\n",
    "BDAT 99999999999999999999 LAST\r\nRSET\r\n",
    "BDAT 4294967301 LAST\r\nRSET\r\n",
    "BDAT 5  LAST\r\nRSET\r\n",
    "BDAT 3\r\nRSET\r\nBDAT 0 LAST\r\n",
    "MAIL FROM:<a@b>\0RCPT TO:<c@d>\r\n",
    "EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n",
};

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  return out;
}

bool blank_or_control(unsigned char c) {
  return c <= 0x20 || c == 0x7f;
}

// The verb a lenient server reads: NULs dropped, leading blanks skipped, up to a blank/control.
std::string tolerant_verb(std::string_view line) {
  std::string clean;
  for (char c : line)
    if (c != '\0') clean += c;
  std::size_t i = 0;
  while (i < clean.size() && blank_or_control(static_cast<unsigned char>(clean[i]))) ++i;
  std::size_t j = i;
  while (j < clean.size() && !blank_or_control(static_cast<unsigned char>(clean[j]))) ++j;
  return upper(std::string_view(clean).substr(i, j - i));
}

std::vector<std::string> words(std::string_view line) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : line) {
    if (c == '\0') continue;
    if (blank_or_control(static_cast<unsigned char>(c))) {
      if (!cur.empty()) out.push_back(std::move(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

class rng {
 public:
  explicit rng(std::uint32_t seed) : s_(seed | 1) {}
  std::uint32_t next() {
    s_ ^= s_ << 13;
    s_ ^= s_ >> 17;
    s_ ^= s_ << 5;
    return s_;
  }
  bool chance(unsigned in_four) { return next() % 4 < in_four; }

 private:
  std::uint32_t s_;
};

// The reference backend: reads the machine's back-leg bytes, keeps its own state, answers.
class reference_backend {
 public:
  // chunking: 0 = decided per EHLO by the generator, 1 = never offered, 2 = always offered.
  reference_backend(std::uint32_t seed, bool strict_data_end, int chunking)
      : rng_(seed), strict_data_end_(strict_data_end), chunking_mode_(chunking) {}

  void receive(std::string_view bytes) {
    if (mode_ == mode::gone) return;
    buffer_ += bytes;
    while (step()) {
    }
  }
  void connection_dropped() { mode_ = mode::gone; }

  const std::vector<std::string>& events() const { return events_; }
  bool has_reply() const { return !replies_.empty(); }
  std::string take_reply() {
    std::string r = std::move(replies_.front());
    replies_.pop_front();
    return r;
  }

 private:
  enum class mode { command, data, bdat, sasl, quit, gone };

  // One line ended by CRLF, LF or CR; false when incomplete (a CR at the end may be a CRLF).
  bool next_line(std::string& line, bool strict) {
    for (std::size_t i = 0; i < buffer_.size(); ++i) {
      const char c = buffer_[i];
      if (strict) {
        if (c == '\n' && i > 0 && buffer_[i - 1] == '\r') {
          line = buffer_.substr(0, i - 1);
          buffer_.erase(0, i + 1);
          return true;
        }
        continue;
      }
      if (c == '\n') {
        line = buffer_.substr(0, i);
        buffer_.erase(0, i + 1);
        return true;
      }
      if (c == '\r') {
        if (i + 1 == buffer_.size()) return false;
        line = buffer_.substr(0, i);
        buffer_.erase(0, buffer_[i + 1] == '\n' ? i + 2 : i + 1);
        return true;
      }
    }
    return false;
  }

  bool step() {
    std::string line;
    switch (mode_) {
      case mode::gone:
      case mode::quit:
        buffer_.clear();
        return false;
      case mode::bdat: {
        const std::size_t n = std::min<std::uint64_t>(bdat_left_, buffer_.size());
        buffer_.erase(0, n);
        bdat_left_ -= n;
        if (bdat_left_ > 0) return false;
        replies_.push_back(bdat_last_ ? "250 2.6.0 <q@ref> queued\r\n" : "250 2.0.0 ok\r\n");
        mode_ = mode::command;
        return true;
      }
      case mode::data:
        if (!next_line(line, strict_data_end_)) return false;
        if (line == ".") {
          events_.emplace_back("E");
          replies_.push_back(rng_.chance(3) ? "250 2.6.0 <q@ref> queued\r\n"
                                            : "554 5.6.0 rejected\r\n");
          mode_ = mode::command;
        }
        return true;
      case mode::sasl:
        if (!next_line(line, false)) return false;
        events_.push_back("S " + line);
        if (line == "*") {
          replies_.push_back("501 5.7.0 Authentication aborted\r\n");
          mode_ = mode::command;
        } else if (sasl_rounds_ > 0) {
          --sasl_rounds_;
          replies_.push_back("334 UGFzc3dvcmQ6\r\n");
        } else {
          replies_.push_back(rng_.chance(3) ? "235 2.7.0 ok\r\n" : "535 5.7.8 no\r\n");
          mode_ = mode::command;
        }
        return true;
      case mode::command:
        if (!next_line(line, false)) return false;
        command(line);
        return true;
    }
    return false;
  }

  void command(const std::string& line) {
    const std::string verb = tolerant_verb(line);
    events_.push_back("C " + verb + "|" + line);
    const auto w = words(line);
    if (verb == "EHLO") {
      chunking_ = chunking_mode_ == 0 ? rng_.chance(2) : chunking_mode_ == 2;
      replies_.push_back(
          std::string("250-ref.example\r\n250-PIPELINING\r\n250-AUTH PLAIN LOGIN\r\n") +
          (chunking_ ? "250-CHUNKING\r\n" : "") + "250 8BITMIME\r\n");
    } else if (verb == "HELO") {
      chunking_ = false;
      replies_.push_back("250 ref.example\r\n");
    } else if (verb == "DATA") {
      if (rng_.chance(3)) {
        replies_.push_back("354 go ahead\r\n");
        mode_ = mode::data;
      } else {
        replies_.push_back("554 5.5.1 no valid recipients\r\n");
      }
    } else if (verb == "AUTH" || verb == "X-EXPS") {
      if (w.size() > 2 || rng_.chance(1)) {
        replies_.push_back(rng_.chance(2) ? "235 2.7.0 ok\r\n" : "535 5.7.8 no\r\n");
      } else {
        sasl_rounds_ = rng_.next() % 3;
        replies_.push_back("334 VXNlcm5hbWU6\r\n");
        mode_ = mode::sasl;
      }
    } else if (verb == "BDAT") {
      if (!chunking_) {
        replies_.push_back("502 5.5.1 command not implemented\r\n");
        return;
      }
      bool digits = w.size() >= 2 && !w[1].empty();
      for (char c : digits ? w[1] : std::string())
        if (c < '0' || c > '9') digits = false;
      if (!digits || w.size() > 3) {
        replies_.push_back("501 5.5.4 Syntax: BDAT count [LAST]\r\n");
        return;
      }
      // Lenient: like an unchecked strtoul(s, nullptr, 0) into a 32-bit unsigned: a leading
      // zero means octal (up to the first 8 or 9), and big values wrap.
      std::uint32_t size = 0;
      const bool octal = w[1].size() > 1 && w[1][0] == '0';
      for (char c : w[1]) {
        if (octal && c > '7') break;
        size = size * (octal ? 8u : 10u) + static_cast<std::uint32_t>(c - '0');
      }
      bdat_left_ = size;
      bdat_last_ = w.size() == 3;
      if (bdat_left_ == 0) {
        replies_.push_back(bdat_last_ ? "250 2.6.0 <q@ref> queued\r\n" : "250 2.0.0 ok\r\n");
      } else {
        mode_ = mode::bdat;
      }
    } else if (verb == "QUIT") {
      replies_.push_back("221 2.0.0 bye\r\n");
      mode_ = mode::quit;
    } else if (verb == "MAIL" || verb == "RCPT" || verb == "RSET" || verb == "NOOP" ||
               verb == "VRFY") {
      replies_.push_back(rng_.chance(3) ? "250 2.0.0 ok\r\n" : "550 5.1.1 no\r\n");
    } else {
      replies_.push_back("502 5.5.2 command not recognized\r\n");
    }
  }

  rng rng_;
  bool strict_data_end_;
  int chunking_mode_;
  mode mode_ = mode::command;
  std::string buffer_;
  std::deque<std::string> replies_;
  std::vector<std::string> events_;
  bool chunking_ = false;
  unsigned sasl_rounds_ = 0;
  std::uint64_t bdat_left_ = 0;
  bool bdat_last_ = false;
};

class machine_log final : public relay_observer {
 public:
  void command(const tlsbridge::protocols::smtp::command& c, std::string_view line) override {
    events.push_back("C " + c.name + "|" + std::string(line));
  }
  void sasl_response(std::string_view line) override { events.push_back("S " + std::string(line)); }
  void message_end() override { events.emplace_back("E"); }
  std::vector<std::string> events;
};

class harness {
 public:
  harness(const machine_settings& s, std::uint32_t seed, int chunking)
      : machine_(s, "220 ref.example ESMTP\r\n"),
        reference_(seed, s.bare_lf == config::bare_lf_mode::pass, chunking),
        front_encrypted_(s.front == config::front_tls::implicit) {
    machine_.set_observer(&log_);
  }

  template <typename Event>
  void event(Event e) {
    if (closed_) return;
    step_list out;
    e(out);
    apply(out);
  }

  void start() {
    event([&](step_list& o) { machine_.on_start(o); });
  }
  void client(std::string_view data) {
    // The driver stops reading while the machine waits for the front handshake (RFC 3207 §4.2).
    if (machine_.client_input_paused()) return;
    event([&](step_list& o) { machine_.on_client_data(data, o); });
  }
  void deliver_replies(bool all) {
    std::string bytes;
    while (reference_.has_reply()) {
      bytes += reference_.take_reply();
      if (!all) break;
    }
    if (bytes.empty()) return;
    event([&](step_list& o) { machine_.on_backend_data(bytes, o); });
  }
  void front_tls() {
    if (!tls_pending_) return;
    tls_pending_ = false;
    front_encrypted_ = true;
    event([&](step_list& o) { machine_.on_front_tls_established(o); });
  }
  smtp_machine& machine() { return machine_; }

 private:
  void apply(const step_list& out) {
    for (const step& s : out.steps()) {
      FUZZ_CHECK(!closed_);
      switch (s.what) {
        case step::kind::send_backend:
          FUZZ_CHECK(!aborted_);
          reference_.receive(s.data);
          break;
        case step::kind::abort_backend:
          aborted_ = true;
          reference_.connection_dropped();
          break;
        case step::kind::start_front_tls:
          tls_pending_ = true;
          break;
        case step::kind::close:
          closed_ = true;
          break;
        default:
          break;
      }
    }
    // The differential: what the backend read is what the machine decided, event for event.
    const auto& ref = reference_.events();
    const auto& mine = log_.events;
    if (ref != mine) {
      std::fprintf(stderr, "reference backend vs machine diverge:\n");
      for (std::size_t i = 0; i < std::max(ref.size(), mine.size()); ++i)
        std::fprintf(stderr, "  %-40s | %s\n", i < ref.size() ? ref[i].c_str() : "-",
                     i < mine.size() ? mine[i].c_str() : "-");
    }
    FUZZ_CHECK(ref == mine);
  }

  smtp_machine machine_;
  machine_log log_;
  reference_backend reference_;
  bool front_encrypted_;
  bool tls_pending_ = false;
  bool closed_ = false;
  bool aborted_ = false;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  tlsbridge::fuzz::fuzz_input in(data, size);
  machine_settings s;
  const std::uint8_t mode = in.byte();
  s.front = static_cast<config::front_tls>((mode & 0x03) % 3);
  s.require_tls = (mode & 0x04) == 0;
  s.bare_lf = static_cast<config::bare_lf_mode>(((mode >> 3) & 0x03) % 3);
  s.hostname = "proxy.example";
  s.max_command_line = 32 + std::size_t{in.byte()} * 16;
  std::uint32_t seed = 0;
  for (int i = 0; i < 4; ++i) seed = (seed << 8) | in.byte();

  harness h(s, seed, (mode >> 6) % 3);
  h.start();
  // Events: 0 client raw (length byte + bytes), 1 client piece (index byte), 2 one backend reply,
  // 3 every pending backend reply, 4 front TLS established, 5 a piece split in two (index, cut),
  // 6 client EOF, 7 idle timeout, 8 shutdown.
  while (!in.empty()) {
    switch (in.byte() % 9) {
      case 0:
        h.client(in.chunk());
        break;
      case 1:
        h.client(client_pieces[in.byte() % client_pieces.size()]);
        break;
      case 2:
        h.deliver_replies(false);
        break;
      case 3:
        h.deliver_replies(true);
        break;
      case 4:
        h.front_tls();
        break;
      case 5: {
        const std::string_view piece = client_pieces[in.byte() % client_pieces.size()];
        const std::size_t cut = in.byte() % (piece.size() + 1);
        h.client(piece.substr(0, cut));
        h.client(piece.substr(cut));
        break;
      }
      case 6:
        h.event([&](step_list& o) { h.machine().on_client_eof(o); });
        break;
      case 7:
        h.event([&](step_list& o) { h.machine().on_idle_timeout(o); });
        break;
      case 8:
        h.event([&](step_list& o) { h.machine().on_shutdown(o); });
        break;
    }
  }
  return 0;
}
