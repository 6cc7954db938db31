// POP3 framing and capability rewriting (RFC 1939, RFC 2449, RFC 2595; the shield): the
// grammar-first reading of a client command line, which commands have multi-line replies, a
// streaming scanner for a multi-line body ended by the line "." (dot-stuffed lines such as ".."
// are data), and the CAPA rewriting.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace tlsbridge::protocols::pop3 {

// Finds the end of a multi-line body without buffering it: feed the bytes as they come; each call
// says how many of them belong to the body (terminator included) and whether it is complete.
// The terminator is a line holding a single "." (RFC 1939 §3); a line starting with "." and
// anything else (the byte-stuffed ".." included) is data.
class multiline_scanner {
 public:
  struct result {
    std::size_t consumed = 0;
    bool done = false;
  };
  result scan(std::string_view in);
  void reset() { state_ = state::line_start; }

 private:
  enum class state { line_start, dot, dot_cr, mid_line };
  state state_ = state::line_start;
};

// Whether a +OK reply to this command carries a multi-line body (RFC 1939 §5-7, RFC 2449 §5):
// RETR, TOP, CAPA, LIST and UIDL without an argument, and AUTH without one (the mechanism list).
bool has_multiline_reply(std::string_view verb, std::string_view argument);

// A client command line (without CRLF) read by RFC 1939 §3 / RFC 2449 §3: a keyword of letters,
// then exactly one SP and the arguments, or the line end. Anything else (empty line, leading SP,
// TAB or another CTL anywhere, a keyword ended by something other than SP, SP at the end or twice
// after the keyword, 8-bit before front TLS) is not a command the proxy can read the way every
// backend would: `rule` names what was broken and the proxy answers -ERR itself.
struct command_line {
  bool ok = false;
  std::string keyword;        // upper-cased
  std::string_view argument;  // everything after the one SP (PASS may hold spaces, RFC 1939 §7)
  std::string rule;
};
command_line parse_command(std::string_view line, bool allow_8bit);

struct capa_view {
  bool offer_stls = false;  // front leg is "starttls" and not yet encrypted
  bool hide_sasl = false;   // no SASL mechanisms before front TLS (RFC 2595 §4)
  bool hide_user = false;   // USER refused before front TLS (require_tls)
};

// Rewrites the capability lines of a CAPA reply (between "+OK" and "."): the backend's STLS goes
// (the back leg's business), SASL and USER go while hidden, the proxy's STLS is added.
std::vector<std::string> rewrite_capa(const std::vector<std::string>& lines, const capa_view& view);

}  // namespace tlsbridge::protocols::pop3
