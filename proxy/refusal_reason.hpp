// What the proxy refused in one connection, by a short stable reason: the one classification
// behind tlsbridge_refusals_total{listener,reason}, tlsbridge_certificate_refusals_total and the
// status page's last refusals (proxy/status_board.hpp). A connection is refused at admission
// (`deny`, `allow`, `untrusted_proxy`, `proxy_header`, `connection_rate`,
// `max_connections_per_ip`, `max_connections`, `server_max_connections`: the session names it,
// connection_record::refused_by), at the front handshake for its TLS version or ciphers
// (`tls_version`, `tls_cipher`: OpenSSL's reason), or for a certificate chain the policy refused
// (`backend_certificate`, `client_certificate`); inside a session the shield refuses requests by
// rule (`smtp.verb_syntax`, `http.allow_paths`, ...: connection_record::refusals). A handshake
// that failed for any other reason (a client that went away, plaintext on a TLS port) is a
// failure, not a refusal: tlsbridge_handshake_failures_total counts it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "proxy/connection_record.hpp"

namespace tlsbridge::proxy {

struct refusal {
  std::string reason;  // the stable name above
  std::string detail;  // in words (the record's reason, or "3 requests")
  std::uint64_t count = 1;
  bool certificate = false;  // a chain refused by policy (counted apart from the others)
};

// Every refusal the connection's record shows: at most one for the connection itself, then one
// per shield rule with its count.
std::vector<refusal> refusals_of(const connection_record& r);

}  // namespace tlsbridge::proxy
