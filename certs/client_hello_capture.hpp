// What a client offered, kept from its ClientHello for the audit when the front handshake fails
// (the `conn` record's `client_hello`: a TLS 1.0-only Outlook against a TLS 1.2+ listener fails
// in version negotiation, and only the ClientHello says what it could do). OpenSSL's client-hello
// callback runs before the version is chosen; it copies the few fields into a small object the
// SSL owns (ex_data, freed with it): the version, the server name and the raw cipher list — one
// allocation per handshake, freed by `forget_client_hello` once the handshake succeeded (only a
// failed one is recorded with it), so an established connection keeps none. The names of the
// ciphers are looked up only when the record is written.
#pragma once

#include <openssl/ssl.h>

#include <optional>

#include "protocols/tls_hello/client_hello_fields.hpp"

namespace tlsbridge::certs {

using protocols::tls_hello::client_hello_offer;

// Installs the callback on a server context (certs/tls_context.cpp, make_server_context).
void capture_client_hello(SSL_CTX* ctx);
// What the ClientHello of this SSL offered; nothing if none was read.
std::optional<client_hello_offer> client_hello_of(SSL* ssl);
// Frees what was captured for this SSL (a handshake that succeeded has no use for it).
void forget_client_hello(SSL* ssl);

}  // namespace tlsbridge::certs
