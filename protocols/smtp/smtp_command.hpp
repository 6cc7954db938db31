// SMTP commands from the client (RFC 5321 §4.1): the verb, its argument, and the envelope
// addresses the audit log wants (MAIL FROM:<a> / RCPT TO:<b>, RFC 5321 §4.1.2 paths; also the
// lenient forms real clients send: no angle brackets, a space after the colon). BDAT's chunk size
// and LAST flag (RFC 3030 §2) are parsed here too: they frame binary data the session must never
// read as commands.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tlsbridge::protocols::smtp {

enum class verb {
  ehlo, helo, starttls, auth, mail, rcpt, data, bdat, rset, noop, quit, vrfy, expn, help,
  // Exchange extensions (SPEC §4): X-EXPS is Exchange's AUTH; the others are refused.
  x_exps, x_anonymoustls, xexch50, xshadow, xshadowrequest, xrdst,
  other
};

struct command {
  verb what = verb::other;
  std::string name;      // the verb as sent, upper-cased
  std::string argument;  // the rest of the line after one space, as sent
};

command parse_command(std::string_view line);

// "FROM:<a@b> SIZE=10" -> "a@b"; "TO:<x>" -> "x". nullopt when the prefix does not match.
std::optional<std::string> envelope_address(std::string_view argument, std::string_view prefix);

struct bdat_header {
  std::uint64_t size = 0;
  bool last = false;
};
// "1234", "1234 LAST" (case-insensitive); nullopt when malformed.
std::optional<bdat_header> parse_bdat(std::string_view argument);

}  // namespace tlsbridge::protocols::smtp
