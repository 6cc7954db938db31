// SMTP commands from the client (RFC 5321 §4.1), tokenised by the grammar and nothing looser: the
// verb, its argument, and the envelope addresses the audit log wants (MAIL FROM:<a> / RCPT TO:<b>,
// RFC 5321 §4.1.2 paths; also the lenient forms real clients send: no angle brackets, a space after
// the colon). A line the grammar does not read as exactly one command (`XEXCH50<TAB>…`, a leading
// SP, a control character anywhere) is `verb::malformed`: the backend is unpatchable and tolerant,
// so what the proxy cannot read unambiguously is refused, never relayed (the shield). BDAT's chunk
// size and LAST flag (RFC 3030 §2) and SASL responses (RFC 4954 §4) are read here too: they frame
// data the session must never read as commands.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tlsbridge::protocols::smtp {

enum class verb {
  ehlo,
  helo,
  starttls,
  auth,
  mail,
  rcpt,
  data,
  bdat,
  rset,
  noop,
  quit,
  vrfy,
  expn,
  help,
  // Exchange extensions: X-EXPS is Exchange's AUTH; the others are refused.
  x_exps,
  x_anonymoustls,
  xexch50,
  xshadow,
  xshadowrequest,
  xrdst,
  other,      // well formed, not one the proxy knows: relayed as policy allows
  malformed,  // not a command by the grammar: refused with 500 5.5.2, never relayed
};

struct command {
  verb what = verb::malformed;
  std::string name;          // the verb as sent, upper-cased ("" when malformed)
  std::string argument;      // the rest of the line after one space, as sent ("" when malformed)
  std::string_view problem;  // malformed: the rule the line breaks, for the refusal's audit reason
};

// RFC 5321 §4.1.1 / §2.2.2: command = verb [SP argument], verb = ALPHA *(ALPHA / DIGIT / "-")
// ending in a letter or digit (an ehlo-keyword, which covers XEXCH50 and X-EXPS). Exactly one SP
// separates verb and argument, the argument does not start with SP, and no control character
// (0x00-0x1F, 0x7F: TAB, NUL, VT, FF, CR...) appears anywhere in the line. 8-bit bytes may appear
// in the argument (SMTPUTF8 addresses, RFC 6531), never in the verb.
command parse_command(std::string_view line);

// One short name for a malformed line's verb-like start, safe for the audit log: the leading
// letters/digits/'-' upper-cased, at most 32 of them (never the argument: it may hold credentials).
std::string verb_prefix(std::string_view line);

// RFC 4954 §4: a client's answer to a 334 challenge is one line of base64 (possibly empty) or "*"
// to cancel. Anything else cannot be relayed as a response without the backend reading it some
// other way.
bool is_sasl_response(std::string_view line);

// "FROM:<a@b> SIZE=10" -> "a@b"; "TO:<x>" -> "x". nullopt when the prefix does not match.
std::optional<std::string> envelope_address(std::string_view argument, std::string_view prefix);

struct bdat_header {
  std::uint64_t size = 0;
  bool last = false;
};
// The largest chunk size the proxy frames. Backends parse the size into different integer types
// (Postfix: off_t, rejecting with 501 what does not fit, and then not reading the chunk); a size
// one backend takes as a chunk and another as a syntax error would turn the chunk into commands.
// 2^31-1 fits every one of them and is far above any real chunk.
inline constexpr std::uint64_t max_bdat_chunk = 2147483647;
// "1234", "1234 LAST" (LAST case-insensitive): RFC 3030 §2 bdat-cmd = "BDAT" SP chunk-size
// [SP end-marker], chunk-size = 1*DIGIT. nullopt when malformed, including a leading "+", a
// leading zero (a backend using strtol base 0 would read "010" as 8), sizes over max_bdat_chunk
// and extra spaces.
std::optional<bdat_header> parse_bdat(std::string_view argument);

}  // namespace tlsbridge::protocols::smtp
