// Differential fuzz target for the IMAP machine (issue 12): the bug class is "the proxy
// and the backend disagree about where a command ends". Fuzzed client bytes go through
// protocols/imap/imap_machine; everything it sends to the backend is read by a reference server
// written here, independently of imap_syntax (it shares no code with the machine's tokeniser), that
// frames the stream the way RFC 3501 §4.3 / RFC 7888 / RFC 3516 servers do and answers like one:
// "+" for a synchronizing literal (or a refusal), "+" and one line per round for AUTHENTICATE and
// IDLE, tagged replies when the fuzzer says.
//
// Each line the reference server reads is looked at by two readers of the literal marker at its
// end: a strict one (RFC 3501 §4.3: "{" only where an argument starts, after SP or "("; "~{" only
// in APPEND) and a loose one (any "{digits[+]}" at the end, the reading of a tolerant server or of
// the proxy before issue 12). Invariants:
//  * both readers agree on every line the machine relayed: no relayed line is framed differently
//    by two plausible backends;
//  * every command the reference server reads is the next one the machine decided to relay, with
//    the same tag and name (imap_machine's relay observer): nothing reaches the backend as a
//    command that the machine took for data, or for another command;
//  * before front TLS on a require_tls STARTTLS front, no LOGIN, AUTHENTICATE or STARTTLS reaches
//    the backend, and no non-synchronizing literal at all;
//  * a non-synchronizing literal reaches the backend only if it offered LITERAL+ (or LITERAL- and
//    at most 4096 bytes), literal8 only in APPEND to a BINARY server;
//  * no step after close; a start_front_tls only after the proxy's own OK.
//
// With bit 7 of the mode byte the same is done for protocols/pop3/pop3_machine (RFC 1939, RFC 2449,
// RFC 5034): a reference POP3 server reads each relayed line with a strict keyword reader (up to
// the first SP, as RFC 1939 §3 and Dovecot) and a loose one (leading blanks skipped, ended by SP or
// TAB, as a tolerant server); both must agree with each other and with the keyword the machine
// decided to relay; no USER/PASS/APOP/AUTH/STLS before front TLS under require_tls; AUTH
// responses only after the server's "+ ". (A server's unasked "-ERR" is followed by its close:
// one in the middle of AUTH would otherwise end the exchange for the machine but not for the
// reference server; and once the connection is closed the reference server reads nothing more -
// fuzz corpus crash-79bf3ca3, a harness fault, not the machine's.)
// The seeds (tests/fuzz/corpus/imap_differential/) hold every attack of issue 12 item 3.
#include <array>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <utility>

#include "protocols/imap/imap_machine.hpp"
#include "protocols/pop3/pop3_machine.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using namespace tlsbridge::protocols;
using namespace tlsbridge::protocols::imap;
namespace config = tlsbridge::config;

namespace {

constexpr std::array<std::string_view, 4> greetings{
    "* OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL+ BINARY IDLE STARTTLS AUTH=PLAIN] ready\r\n",
    "* OK [CAPABILITY IMAP4rev1 IDLE STARTTLS AUTH=PLAIN] ready\r\n",
    "* OK [CAPABILITY IMAP4rev1 LITERAL- IDLE STARTTLS] ready\r\n",
    "* OK [CAPABILITY IMAP4rev1 LITERAL+ STARTTLS] ready\r\n",
};

// Issue 12 item 3 and the variants of its item 5; "b LOGIN alice secret\r\n" is 22 bytes.
constexpr std::array<std::string_view, 36> client_pieces{
    "a NOOP x{22+}\r\n",
    "b LOGIN alice secret\r\n",
    "a NOOP ~{22+}\r\n",
    "a NOOP \"{22+}\r\n",
    "a NOOP x~{22+}\r\n",
    "a{22+} NOOP\r\n",
    "{22+}\r\n",
    "a NOOP{22+}\r\n",
    "a NOOP {00000000000000000022+}\r\n",
    "a NOOP {22+}\r\n",
    "a NOOP {22}\r\n",
    "a NOOP {0}\r\n",
    "a NOOP {0+}\r\n",
    "a NOOP {99999999999999999999999}\r\n",
    "a NOOP \"x\"{22+}\r\n",
    "a NOOP  {22+}\r\n",
    "a NOOP\t{22+}\r\n",
    "a\tLOGIN alice secret\r\n",
    " a LOGIN alice secret\r\n",
    "a STARTTLS {22+}\r\n",
    "s STARTTLS\r\n",
    "c LOGIN {5}\r\n",
    "alice {6+}\r\nsecret\r\n",
    "d AUTHENTICATE PLAIN\r\n",
    "AGFsaWNlAHNlY3JldA==\r\n",
    "*\r\n",
    "e IDLE\r\n",
    "DONE\r\n",
    "f APPEND INBOX ~{5+}\r\nhello\r\n",
    "g ID (\"name\" {4+}\r\ntest)\r\n",
    "h NOOP\r\n",
    "i SEARCH \"{5}\" {5+}\r\n",
    "k LOGIN \"al\\\"ice\" pw\r\n",
    "m APPEND INBOX {5}\r\nhello\r\n",
    "n FETCH 1 (BODY[HEADER.FIELDS (FROM {4}\r\n",
    "\r\n",
};

std::string upper(std::string_view s) {
  std::string out;
  for (char c : s) out.push_back(c >= 'a' && c <= 'z' ? static_cast<char>(c - 32) : c);
  return out;
}

struct marker {
  std::uint64_t size = 0;
  bool sync = true;
  bool literal8 = false;
  std::size_t open = 0;  // index of "{" (or of "~")
};

// "{digits[+]}" at the very end of the line, wherever it stands (the loose reading).
std::optional<marker> loose_marker(std::string_view line) {
  if (line.empty() || line.back() != '}') return std::nullopt;
  std::size_t i = line.size() - 1;  // at "}"
  marker m;
  if (i > 0 && line[i - 1] == '+') {
    m.sync = false;
    --i;
  }
  std::size_t digits_end = i;
  while (i > 0 && line[i - 1] >= '0' && line[i - 1] <= '9') --i;
  if (i == digits_end || i == 0 || line[i - 1] != '{') return std::nullopt;
  for (std::size_t k = i; k < digits_end; ++k)
    m.size = m.size > 1'000'000'000'000ull ? m.size : m.size * 10 + (line[k] - '0');
  m.open = i - 1;
  if (m.open > 0 && line[m.open - 1] == '~') {
    m.literal8 = true;
    --m.open;
  }
  return m;
}

// Commands whose arguments a Dovecot-like server parses (and so reads literals in). For the others
// (NOOP, CHECK, CAPABILITY, LOGOUT, CLOSE, EXPUNGE, UNSELECT, NAMESPACE, IDLE, unknown commands)
// Dovecot's imap process, after login, answers and skips to the next LF: a literal announced on
// that line is then read as commands.
bool server_parses_arguments(std::string_view name) {
  static constexpr std::string_view parsed[] = {
      "LOGIN",    "AUTHENTICATE", "SELECT",      "EXAMINE",  "CREATE",      "DELETE",
      "RENAME",   "SUBSCRIBE",    "UNSUBSCRIBE", "LIST",     "LSUB",        "STATUS",
      "APPEND",   "SEARCH",       "FETCH",       "STORE",    "COPY",        "MOVE",
      "UID",      "ID",           "SORT",        "THREAD",   "ENABLE",      "GETQUOTAROOT",
      "GETQUOTA", "SETQUOTA",     "GETACL",      "SETACL",   "GETMETADATA", "SETMETADATA",
      "NOTIFY",   "XLIST",        "ESEARCH",     "MYRIGHTS", "LISTRIGHTS",  "DELETEACL",
      "URLFETCH", "GENURLAUTH",   "RESETKEY"};
  for (auto p : parsed)
    if (name == p) return true;
  return false;
}

// The strict reading (RFC 3501 §4.3, as Dovecot's parser does it): the marker counts only where
// an argument starts, after SP or "(", not inside a quoted string, and only in a command whose
// arguments the server parses; "~{" only in APPEND.
std::optional<marker> strict_marker(std::string_view line, std::string_view command_name,
                                    bool first_fragment) {
  auto m = loose_marker(line);
  if (!m) return std::nullopt;
  if (!server_parses_arguments(command_name)) return std::nullopt;
  if (m->open == 0) {
    // A fragment after a literal may not start with a marker (the literal is an argument);
    // the first fragment's start is the tag.
    return std::nullopt;
  }
  const char before = line[m->open - 1];
  if (before != ' ' && before != '(') return std::nullopt;
  if (first_fragment) {
    // The marker must be past "tag SP name SP".
    const auto sp1 = line.find(' ');
    if (sp1 == std::string_view::npos) return std::nullopt;
    const auto sp2 = line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos || m->open <= sp2) return std::nullopt;
  }
  // Inside a quoted string? Count unescaped quotes before the marker.
  bool quoted = false;
  for (std::size_t k = 0; k < m->open; ++k) {
    if (quoted && line[k] == '\\') {
      ++k;
      continue;
    }
    if (line[k] == '"') quoted = !quoted;
  }
  if (quoted) return std::nullopt;
  if (m->literal8 && command_name != "APPEND") return std::nullopt;
  return m;
}

struct capabilities {
  bool literal_plus = false;
  bool literal_minus = false;
  bool binary = false;
};

class differential {
 public:
  differential(machine_settings s, std::string_view greeting, capabilities caps)
      : settings_(s),
        caps_(caps),
        machine_(std::move(s), std::string(greeting)),
        front_encrypted_(settings_.front == config::front_tls::implicit) {
    machine_.set_relay_observer([this](std::string_view tag, std::string_view name) {
      relayed_.emplace_back(std::string(tag), std::string(name));
      FUZZ_CHECK(relayed_.size() < 100000);
    });
    step_list out;
    machine_.on_start(out);
    apply(out);
  }

  void client(std::string_view data) {
    if (closed_) return;
    step_list out;
    machine_.on_client_data(data, out);
    apply(out);
  }

  void backend(std::string_view data) {
    if (closed_) return;
    step_list out;
    machine_.on_backend_data(data, out);
    apply(out);
  }

  // The reference server answers the oldest complete command, or ends the AUTHENTICATE/IDLE it is
  // in (RFC 3501 §6.2.2: the server may end the exchange at any round).
  void answer(std::uint8_t how) {
    if (closed_) return;  // the server's view stops with the connection
    static constexpr std::array<std::string_view, 3> status{" OK done\r\n", " NO no\r\n",
                                                            " BAD bad\r\n"};
    const std::string_view text = status[how % status.size()];
    if (state_ == state::exchange_wait && ((how & 0x80) != 0 || answers_.empty())) {
      state_ = state::line;
      in_command_ = false;
      backend(tag_ + std::string(text));
      pump();
      return;
    }
    if (answers_.empty()) return;
    std::string tag = answers_.front();
    answers_.pop_front();
    backend(tag + std::string(text));
  }

  // The reference server decides on a synchronizing literal: "+" or a refusal.
  void decide_literal(bool accept) {
    if (closed_ || state_ != state::sync_wait) return;
    if (accept) {
      state_ = state::literal;
      literal_left_ = sync_size_;
      backend("+ go ahead\r\n");
    } else {
      state_ = state::line;
      in_command_ = false;
      backend(tag_ + " NO literal refused\r\n");
    }
    pump();
  }

  // The reference server asks for the next AUTHENTICATE line (any number of rounds) or IDLE's
  // DONE (once).
  void continue_exchange() {
    if (closed_ || state_ != state::exchange_wait || (name_ == "IDLE" && exchange_rounds_ > 0))
      return;
    ++exchange_rounds_;
    state_ = state::exchange_line;
    backend(name_ == "IDLE" ? "+ idling\r\n" : "+ \r\n");
    pump();
  }

  // A "+" nobody asked for (RFC 3501 §7.5 is the server's promise; a confused one breaks it).
  void unsolicited_plus() {
    if (state_ != state::line || in_command_) return;
    backend("+ unsolicited\r\n");
  }

  void front_tls() {
    if (!tls_pending_ || closed_) return;
    tls_pending_ = false;
    front_encrypted_ = true;
    step_list out;
    machine_.on_front_tls_established(out);
    apply(out);
  }

  template <typename Event>
  void event(Event e) {
    if (closed_) return;
    step_list out;
    (machine_.*e)(out);
    apply(out);
  }

 private:
  enum class state { line, literal, sync_wait, exchange_wait, exchange_line };

  bool pre_tls_guarded() const {
    return settings_.front == config::front_tls::starttls && settings_.require_tls &&
           !front_encrypted_;
  }
  bool before_tls() const {
    return settings_.front == config::front_tls::starttls && !front_encrypted_;
  }

  void apply(const step_list& out) {
    for (const step& s : out.steps()) {
      FUZZ_CHECK(!closed_);
      switch (s.what) {
        case step::kind::send_client:
          client_tail_ += s.data;
          if (client_tail_.size() > 256) client_tail_.erase(0, client_tail_.size() - 256);
          break;
        case step::kind::send_backend:
          received_ += s.data;
          pump();
          break;
        case step::kind::start_front_tls:
          FUZZ_CHECK(before_tls() && !tls_pending_);
          FUZZ_CHECK(client_tail_.ends_with(" OK Begin TLS negotiation now\r\n"));
          tls_pending_ = true;
          break;
        case step::kind::delay_client:  // only with an auth gate, which is not set here
          break;
        case step::kind::close:
          FUZZ_CHECK(!machine_.facts().outcome.empty());
          closed_ = true;
          break;
        case step::kind::connect_backend:
          FUZZ_CHECK(false);
          break;
        default:
          break;
      }
    }
  }

  // Reads what the machine sent as an RFC 3501 server would.
  void pump() {
    for (;;) {
      switch (state_) {
        case state::sync_wait:
        case state::exchange_wait:
          return;  // the server speaks first (the fuzzer decides when)
        case state::literal: {
          const std::size_t n =
              static_cast<std::size_t>(std::min<std::uint64_t>(literal_left_, received_.size()));
          received_.erase(0, n);
          literal_left_ -= n;
          if (literal_left_ > 0) return;
          state_ = state::line;
          continue;
        }
        case state::exchange_line: {
          auto lf = received_.find('\n');
          if (lf == std::string::npos) return;
          std::string line = received_.substr(0, lf);
          received_.erase(0, lf + 1);
          if (!line.empty() && line.back() == '\r') line.pop_back();
          // One SASL response (or "*") or IDLE's DONE; the server speaks next.
          state_ = state::exchange_wait;
          continue;
        }
        case state::line: {
          auto lf = received_.find('\n');
          if (lf == std::string::npos) return;
          std::string line = received_.substr(0, lf);
          received_.erase(0, lf + 1);
          // The machine writes CRLF; a bare LF would already be a disagreement with a server
          // that needs CRLF.
          FUZZ_CHECK(!line.empty() && line.back() == '\r');
          line.pop_back();
          FUZZ_CHECK(line.find('\r') == std::string::npos);
          const bool first = !in_command_;
          if (first) {
            const auto sp = line.find(' ');
            tag_ = line.substr(0, sp);
            const std::string_view rest = sp == std::string::npos
                                              ? std::string_view{}
                                              : std::string_view(line).substr(sp + 1);
            name_ = upper(rest.substr(0, rest.find(' ')));
            // The command the server reads is the one the machine decided to relay.
            FUZZ_CHECK(!relayed_.empty());
            FUZZ_CHECK(relayed_.front().first == tag_);
            FUZZ_CHECK(relayed_.front().second == name_);
            relayed_.pop_front();
            if (pre_tls_guarded())
              FUZZ_CHECK(name_ != "LOGIN" && name_ != "AUTHENTICATE" && name_ != "STARTTLS");
            in_command_ = true;
          }
          const auto loose = loose_marker(line);
          const auto strict = strict_marker(line, name_, first);
          FUZZ_CHECK(loose.has_value() == strict.has_value());
          if (strict) {
            FUZZ_CHECK(loose->size == strict->size && loose->sync == strict->sync);
            if (strict->literal8) FUZZ_CHECK(caps_.binary && name_ == "APPEND");
            if (!strict->sync) {
              FUZZ_CHECK(!before_tls());
              FUZZ_CHECK(caps_.literal_plus || (caps_.literal_minus && strict->size <= 4096));
              literal_left_ = strict->size;
              state_ = state::literal;
            } else {
              sync_size_ = strict->size;
              state_ = state::sync_wait;
            }
            continue;
          }
          // The command is complete.
          if (name_ == "AUTHENTICATE" || name_ == "IDLE") {
            state_ = state::exchange_wait;
            exchange_rounds_ = 0;
            continue;
          }
          answers_.push_back(tag_);
          in_command_ = false;
          continue;
        }
      }
    }
  }

  machine_settings settings_;
  capabilities caps_;
  imap_machine machine_;
  bool front_encrypted_;
  bool tls_pending_ = false;
  bool closed_ = false;
  std::string client_tail_;
  std::deque<std::pair<std::string, std::string>> relayed_;  // decided, not yet read
  // The reference server.
  std::string received_;
  state state_ = state::line;
  bool in_command_ = false;
  std::string tag_, name_;
  std::uint64_t literal_left_ = 0;
  std::uint64_t sync_size_ = 0;
  unsigned exchange_rounds_ = 0;
  std::deque<std::string> answers_;
};

// ---------------------------------------------------------------------------------------------
// POP3

constexpr std::array<std::string_view, 24> pop3_pieces{
    "USER\talice\r\n",
    " USER alice\r\n",
    "USER alice\r\n",
    "PASS secret\r\n",
    "\r\n",
    "AUTH PLAIN\r\n",
    "AGFsaWNlAHNlY3JldA==\r\n",
    "STLS\r\n",
    "CAPA\r\n",
    "LIST\r\n",
    "LIST 1\r\n",
    "RETR 1\r\n",
    "NOOP\r\n",
    "STAT\r\n",
    "APOP alice 0123\r\n",
    "user alice\r\n",
    "AUTH\tPLAIN\r\n",
    "NOOP\tUSER alice\r\n",
    "USER alice\rPASS x\r\n",
    "USER alice\nPASS x\r\n",
    "USER  alice\r\n",
    "*\r\n",
    "UIDL\r\n",
    "TOP 1 0\r\n",
};

class pop3_differential {
 public:
  explicit pop3_differential(pop3::machine_settings s)
      : settings_(s),
        machine_(std::move(s), "+OK ready <1.2@x>\r\n"),
        front_encrypted_(settings_.front == config::front_tls::implicit) {
    machine_.set_relay_observer([this](std::string_view keyword) {
      relayed_.emplace_back(keyword);
      FUZZ_CHECK(relayed_.size() < 100000);
    });
    step_list out;
    machine_.on_start(out);
    apply(out);
  }

  void client(std::string_view data) {
    if (closed_) return;
    step_list out;
    machine_.on_client_data(data, out);
    apply(out);
  }

  void backend(std::string_view data) {
    if (closed_) return;
    step_list out;
    machine_.on_backend_data(data, out);
    apply(out);
  }

  // The reference server answers the oldest command (RFC 2449 PIPELINING: in order), or ends the
  // AUTH exchange it is in.
  void answer(std::uint8_t how) {
    if (closed_) return;  // the server's view stops with the connection
    // POP3 has no tags: a server answers in order, so the commands before AUTH come first.
    if (in_auth_ && answers_.empty()) {
      if (!auth_waiting_) return;  // a response line is due first
      in_auth_ = false;
      backend((how & 1) ? "-ERR [AUTH] failed\r\n" : "+OK logged in\r\n");
      pump();
      return;
    }
    if (answers_.empty()) return;
    const auto [keyword, multiline] = answers_.front();
    answers_.pop_front();
    if ((how & 1) != 0) {
      backend("-ERR no\r\n");
    } else if (multiline) {
      backend("+OK follows\r\nline one\r\n..dot\r\n.\r\n");
    } else {
      backend("+OK\r\n");
    }
    pump();
  }

  void continue_auth() {
    if (closed_ || !in_auth_ || !auth_waiting_ || !answers_.empty()) return;
    auth_waiting_ = false;
    backend("+ \r\n");
    pump();
  }

  void front_tls() {
    if (!tls_pending_ || closed_) return;
    tls_pending_ = false;
    front_encrypted_ = true;
    step_list out;
    machine_.on_front_tls_established(out);
    apply(out);
  }

  template <typename Event>
  void event(Event e) {
    if (closed_) return;
    step_list out;
    (machine_.*e)(out);
    apply(out);
  }

 private:
  void apply(const step_list& out) {
    for (const step& s : out.steps()) {
      FUZZ_CHECK(!closed_);
      switch (s.what) {
        case step::kind::send_client:
          client_tail_ += s.data;
          if (client_tail_.size() > 256) client_tail_.erase(0, client_tail_.size() - 256);
          break;
        case step::kind::send_backend:
          received_ += s.data;
          pump();
          break;
        case step::kind::start_front_tls:
          FUZZ_CHECK(settings_.front == config::front_tls::starttls && !front_encrypted_);
          FUZZ_CHECK(client_tail_.ends_with("+OK Begin TLS negotiation\r\n"));
          tls_pending_ = true;
          break;
        case step::kind::delay_client:  // only with an auth gate, which is not set here
          break;
        case step::kind::close:
          FUZZ_CHECK(!machine_.facts().outcome.empty());
          closed_ = true;
          break;
        case step::kind::connect_backend:
          FUZZ_CHECK(false);
          break;
        default:
          break;
      }
    }
  }

  void pump() {
    for (;;) {
      if (in_auth_ && auth_waiting_) return;  // the server speaks next
      const auto lf = received_.find('\n');
      if (lf == std::string::npos) return;
      std::string line = received_.substr(0, lf);
      received_.erase(0, lf + 1);
      FUZZ_CHECK(!line.empty() && line.back() == '\r');
      line.pop_back();
      if (in_auth_) {
        auth_waiting_ = true;  // one SASL response per "+ " (RFC 5034 §4)
        continue;
      }
      // Strict: RFC 1939 §3, the keyword ends at the first SP.
      const std::string strict = upper(std::string_view(line).substr(0, line.find(' ')));
      // Loose: blanks skipped, the keyword ends at SP or TAB.
      std::string_view rest(line);
      while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t')) rest.remove_prefix(1);
      const std::string loose = upper(rest.substr(0, rest.find_first_of(" \t")));
      FUZZ_CHECK(strict == loose);
      FUZZ_CHECK(!relayed_.empty());
      FUZZ_CHECK(relayed_.front() == strict);
      relayed_.pop_front();
      if (settings_.front == config::front_tls::starttls && !front_encrypted_ &&
          settings_.require_tls)
        FUZZ_CHECK(strict != "USER" && strict != "PASS" && strict != "APOP" && strict != "AUTH");
      FUZZ_CHECK(strict != "STLS" || front_encrypted_ ||
                 settings_.front == config::front_tls::implicit);
      const auto sp = line.find(' ');
      const bool has_argument = sp != std::string::npos;
      if (strict == "AUTH" && has_argument) {
        in_auth_ = true;
        auth_waiting_ = true;
        continue;
      }
      const bool multiline =
          strict == "RETR" || strict == "TOP" || strict == "CAPA" ||
          ((strict == "LIST" || strict == "UIDL" || strict == "AUTH") && !has_argument);
      answers_.emplace_back(strict, multiline);
    }
  }

  pop3::machine_settings settings_;
  pop3::pop3_machine machine_;
  bool front_encrypted_;
  bool tls_pending_ = false;
  bool closed_ = false;
  std::string client_tail_;
  std::deque<std::string> relayed_;
  std::string received_;
  bool in_auth_ = false;
  bool auth_waiting_ = false;
  std::deque<std::pair<std::string, bool>> answers_;
};

void run_pop3(std::uint8_t mode, tlsbridge::fuzz::fuzz_input& in) {
  pop3::machine_settings s;
  s.front = (mode & 1) ? config::front_tls::implicit : config::front_tls::starttls;
  s.require_tls = (mode & 2) == 0;
  s.hostname = "proxy.example";
  s.max_command_line = (mode & 8) ? 48 : 64 * 1024;
  s.max_held_bytes = 256;
  pop3_differential d(s);
  while (!in.empty()) {
    switch (in.byte() % 8) {
      case 0:
        d.client(in.chunk());
        break;
      case 1:
      case 2: {
        std::string bytes;
        for (std::uint8_t n = in.byte() % 4 + 1; n > 0; --n)
          bytes += pop3_pieces[in.byte() % pop3_pieces.size()];
        d.client(bytes);
        break;
      }
      case 3:
        d.answer(in.byte());
        break;
      case 4:
        d.continue_auth();
        break;
      case 5:
        d.front_tls();
        break;
      case 6:
        // The one line a POP3 server sends unasked: its last, before it closes (RFC 2449 §8).
        d.backend("-ERR [SYS/TEMP] closing\r\n");
        d.event(&pop3::pop3_machine::on_backend_eof);
        break;
      case 7:
        d.event(in.byte() & 1 ? &pop3::pop3_machine::on_idle_timeout
                              : &pop3::pop3_machine::on_shutdown);
        break;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  tlsbridge::fuzz::fuzz_input in(data, size);
  const std::uint8_t mode = in.byte();
  if ((mode & 0x80) != 0) {
    run_pop3(mode, in);
    return 0;
  }
  machine_settings s;
  s.front = (mode & 1) ? config::front_tls::implicit : config::front_tls::starttls;
  s.require_tls = (mode & 2) == 0;
  s.hostname = "proxy.example";
  s.max_literal = (mode & 4) ? 64 : 64ull * 1024 * 1024;
  s.max_command_line = (mode & 8) ? 48 : 64 * 1024;
  s.max_held_bytes = 256;
  const std::size_t g = (mode >> 4) % greetings.size();
  const capabilities caps{
      .literal_plus = g == 0 || g == 3, .literal_minus = g == 2, .binary = g == 0};
  differential d(s, greetings[g], caps);
  while (!in.empty()) {
    switch (in.byte() % 10) {
      case 0:
        d.client(in.chunk());
        break;
      case 1:
      case 2: {
        // A few pieces back to back, in one write: pipelining.
        std::string bytes;
        for (std::uint8_t n = in.byte() % 4 + 1; n > 0; --n)
          bytes += client_pieces[in.byte() % client_pieces.size()];
        d.client(bytes);
        break;
      }
      case 3:
        d.answer(in.byte());
        break;
      case 4:
        d.decide_literal((in.byte() & 1) == 0);
        break;
      case 5:
        d.continue_exchange();
        break;
      case 6:
        d.front_tls();
        break;
      case 7:
        d.unsolicited_plus();
        break;
      case 8: {
        // Untagged data from the server, a literal among it (FETCH).
        const std::string_view body = in.chunk();
        d.backend("* 1 FETCH (BODY[] {" + std::to_string(body.size()) + "}\r\n" +
                  std::string(body) + ")\r\n");
        break;
      }
      case 9:
        switch (in.byte() % 3) {
          case 0:
            d.event(&imap_machine::on_idle_timeout);
            break;
          case 1:
            d.event(&imap_machine::on_shutdown);
            break;
          default:
            d.event(&imap_machine::on_client_eof);
        }
        break;
    }
  }
  return 0;
}
