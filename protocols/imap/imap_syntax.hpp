// The pieces of IMAP syntax (RFC 3501 §9, RFC 9051 §9) the proxy must understand to frame a session
// without ever mistaking data for commands: the grammar-first tokeniser of client command lines
// (command_scanner: tag, name, quoted strings, literal markers {n}/{n+}/~{n} only where a token may
// start; RFC 7888, RFC 3516), a response line's trailing literal marker, and the capability lists
// the proxy rewrites (the shield). Everything else passes through as bytes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/ascii_case.hpp"

namespace tlsbridge::protocols::imap {

// A line (without CRLF) that ends in something shaped like a literal marker, wherever its "{"
// stands. Used for backend responses (the proxy trusts the backend's framing) and, for a client
// line the proxy refuses, to guess how the client will go on; never to decide what is relayed.
// A line (without CRLF) that ends in a literal marker announces `size` raw bytes after its CRLF.
// Synchronizing literals ({n}) wait for the server's "+" continuation (RFC 9051 §7.5); non-
// synchronizing ones ({n+}, RFC 7888) follow at once. `~{n}` is a literal8 (RFC 3516), framed
// alike.
struct literal_marker {
  std::uint64_t size = 0;
  bool synchronizing = true;
  bool literal8 = false;  // ~{n}: RFC 3516 BINARY
};
std::optional<literal_marker> trailing_literal(std::string_view line);

// The literal a backend response line (without CRLF) announces, read by the grammar (RFC 3501 §7,
// §9): a continuation request ("+ ...") and a status response (tagged, or "* OK/NO/BAD/BYE/
// PREAUTH") end in text, never in a literal, so a mailbox name or message text the server echoes
// there ("NO Mailbox doesn't exist: x{30}") is not taken for one; elsewhere the marker must start
// an argument (after SP or "("). `response_start`: the line begins a response (not the rest of
// one after a literal).
std::optional<literal_marker> response_literal(std::string_view line, bool response_start);

// Grammar-first tokenising of one client command (RFC 3501 §9, RFC 9051 §9), fragment by
// fragment: the first fragment is the command line up to its CRLF; when a fragment ends in a
// literal marker the literal's bytes follow (fed to literal_data) and then the next fragment.
//
//   command  = tag SP name [SP arguments]          tag: ASTRING-CHAR except "+"; name: ATOM-CHAR
//   argument = atom | quoted | literal | "(" [arguments] ")"   one SP between arguments
//   quoted   = DQUOTE *(any CHAR but CTL, "\" and DQUOTE | "\" ("\" | DQUOTE)) DQUOTE
//   literal  = ["~"] "{" 1*DIGIT ["+"] "}" CRLF     only where an argument starts, last on the line
//
// The backend recognises a literal only where an argument starts (after SP or "("); a marker
// anywhere else ("x{22+}", "\"{22+}" unterminated) is text to the backend but would be a literal
// to a looser reader. So the scanner accepts exactly the lines whose reading is the same either
// way and refuses everything else with the rule it broke: a CTL (TAB, NUL, bare CR) outside a
// literal, 8-bit outside a quoted string before front TLS, a leading/double/trailing SP, a quote or
// "{" inside an atom, an unterminated quoted string, a bad escape, a malformed marker, text after a
// marker, unbalanced parentheses. 8-bit inside a quoted string is allowed (RFC 6855 UTF8).
class command_scanner {
 public:
  enum class result { complete, literal, refused };
  struct outcome {
    result what = result::refused;
    literal_marker literal;  // result::literal
    std::string rule;        // result::refused: the rule broken, for the BAD text and the audit
  };

  // `allow_8bit`: bytes >= 0x80 outside quoted strings (after front TLS only).
  outcome first(std::string_view line, bool allow_8bit);
  // The fragment after a literal: it goes on with SP, ")" or ends the command.
  outcome next(std::string_view fragment, bool allow_8bit);
  // Bytes of the literal just announced; the first few arguments are kept (bounded) so LOGIN's and
  // AUTHENTICATE's arguments are known however they are spelled.
  void literal_data(std::string_view bytes);
  void literal_end();

  // Valid once first() got past them ("" otherwise); the name is upper-cased.
  const std::string& tag() const { return tag_; }
  const std::string& name() const { return name_; }
  // Top-level arguments, decoded (atom text, unescaped quoted string, literal bytes), the first
  // max_kept_arguments of them, each cut at max_kept_bytes.
  const std::vector<std::string>& arguments() const { return args_; }
  std::size_t argument_count() const { return arg_count_; }
  // No quoted string, literal or parenthesised list among the arguments so far.
  bool atoms_only() const { return atoms_only_; }

  static constexpr std::size_t max_kept_arguments = 3;
  static constexpr std::size_t max_kept_bytes = 1024;

 private:
  enum class state { token_start, after_open, in_atom, after_token };
  outcome scan(std::string_view s, bool allow_8bit);
  outcome refuse(std::string rule);
  void begin_argument();
  void keep(std::string_view bytes);

  std::string tag_;
  std::string name_;
  std::vector<std::string> args_;
  std::size_t arg_count_ = 0;
  bool keeping_ = false;  // the argument being read is a kept top-level one
  unsigned depth_ = 0;
  state state_ = state::token_start;
  bool atoms_only_ = true;
};

// Whether the grammar of a command (upper-cased name; for UID the sub-command) has an argument
// that may be a literal: astring, string, nstring, append data (RFC 3501 §9 and the extensions
// whose commands carry mailbox names or strings). Everywhere else a literal is refused.
bool literal_allowed_in(std::string_view name, std::string_view uid_subcommand);

// Tag rules alone (RFC 3501 §9 tag), for the "* BAD" versus "<tag> BAD" choice.
bool valid_tag(std::string_view tag);

// "A1 LOGIN ..." -> tag "A1", name "LOGIN" (upper-cased), rest "..." (without the separator).
struct command_head {
  std::string tag;
  std::string name;
  std::string_view rest;
};
std::optional<command_head> parse_command_head(std::string_view line);

// LOGIN's first argument (RFC 9051 §6.2.3): an atom or a quoted string; nullopt when it is a
// literal (the caller takes the user from the literal's bytes) or missing.
std::optional<std::string> login_user(std::string_view login_arguments);

// How the capability lists are shown to the client, for the front leg's state.
struct capability_view {
  bool offer_starttls = false;  // front leg is "starttls" and not yet encrypted
  bool hide_auth = false;       // no AUTH=... before front TLS (RFC 2595 §4)
  bool login_disabled =
      false;  // LOGINDISABLED: require_tls and not yet encrypted (RFC 9051 §6.2.3)
};

// Rewrites a space-separated capability list: the backend's STARTTLS and LOGINDISABLED go (they
// describe the back leg), COMPRESS=... goes (a compressed stream could not be framed, RFC 4978),
// AUTH=... goes when hidden; the proxy's STARTTLS/LOGINDISABLED are added for the front leg.
std::string rewrite_capability_list(std::string_view list, const capability_view& view);

// A response line (without CRLF) with its capability list rewritten, if it carries one: untagged
// "* CAPABILITY ..." and a status response's "[CAPABILITY ...]" code ("* OK [CAPABILITY ...]",
// "A1 OK [CAPABILITY ...] Logged in"). Other lines come back unchanged.
std::string rewrite_response(std::string_view line, const capability_view& view);

// The capability list a response line carries (as above), or nullopt.
std::optional<std::string> capabilities_in(std::string_view line);
bool has_capability(std::string_view list, std::string_view capability);

// The line with the list of its capability carrier replaced by `list` (used to show the greeting
// with the capabilities the backend announced after the back leg's STARTTLS).
std::string replace_capabilities(std::string_view line, std::string_view list);

// The IMAP code compares words and prefixes without regard to ASCII case.
using ascii::iequals;
using ascii::istarts_with;

}  // namespace tlsbridge::protocols::imap
