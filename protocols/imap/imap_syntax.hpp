// The few pieces of IMAP syntax (RFC 9051 §9) the proxy must understand to frame a session without
// ever mistaking data for commands: a line's trailing literal marker ({n}, {n+}, ~{n}; RFC 7888),
// a command's tag and name, LOGIN's user name, and the capability lists the proxy rewrites
// (SPEC §4 "IMAP and POP3"). Everything else passes through as bytes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tlsbridge::protocols::imap {

// A line (without CRLF) that ends in a literal marker announces `size` raw bytes after its CRLF.
// Synchronizing literals ({n}) wait for the server's "+" continuation (RFC 9051 §7.5); non-
// synchronizing ones ({n+}, RFC 7888) follow at once. `~{n}` is a literal8 (RFC 3516), framed
// alike.
struct literal_marker {
  std::uint64_t size = 0;
  bool synchronizing = true;
};
std::optional<literal_marker> trailing_literal(std::string_view line);

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
  bool hide_auth = false;       // no AUTH=... before front TLS (SPEC §4)
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

bool iequals(std::string_view a, std::string_view b);
bool istarts_with(std::string_view s, std::string_view prefix);

}  // namespace tlsbridge::protocols::imap
