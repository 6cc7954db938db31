// Pure readers of the ClientHello fields the audit records when a front handshake fails (the
// `conn` record's `client_hello`, docs/audit-records.md): the highest protocol version the client
// offered and the server name it asked for. They read the raw extension bodies OpenSSL's
// client-hello callback hands over (certs/client_hello_capture); peer-controlled bytes, so every
// length is checked and a malformed body reads as "absent", never as an error.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tlsbridge::protocols::tls_hello {

// What the client offered, as the `conn` record's `client_hello` shows it.
struct client_hello_offer {
  std::string max_version;           // version_name(): "TLSv1", ...
  std::string sni;                   // "" without
  std::vector<std::string> ciphers;  // OpenSSL's names in the client's order; unknown as "0x1301"
};

// RFC 8701: GREASE values (0x0a0a, 0x1a1a, ... 0xfafa) are offered to be ignored.
constexpr bool is_grease(std::uint16_t v) {
  return (v & 0x0f0f) == 0x0a0a && (v >> 8) == (v & 0xff);
}

// The highest version in a supported_versions extension body (RFC 8446 §4.2.1: a one-byte
// length, then two-byte versions), GREASE ignored; 0 if absent or malformed.
std::uint16_t max_supported_version(std::string_view extension_body);
// The client's highest version: supported_versions' when present, else legacy_version (the
// ClientHello's own field, RFC 5246 §7.4.1.2).
std::uint16_t max_offered_version(std::uint16_t legacy_version,
                                  std::string_view supported_versions);
// The host_name of a server_name extension body (RFC 6066 §3); "" if absent or malformed.
std::string server_name(std::string_view extension_body);
// OpenSSL's name of a protocol version: "SSLv3", "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"; other
// values as "0x0305".
std::string version_name(std::uint16_t version);

}  // namespace tlsbridge::protocols::tls_hello
