// Every SSL_CTX tlsbridge uses is made here, from a TLS profile ([tls.profiles.*] in
// conf/tlsbridge.toml): version bounds, cipher lists, groups, renegotiation off,
// SSL_MODE_RELEASE_BUFFERS so an idle connection holds no record buffers. Legacy profiles (min <
// TLS 1.2) get security level 0 before any certificate is loaded, because OpenSSL 3 refuses TLS
// 1.0/1.1 signatures and SHA-1/MD5 certificates at its default level (docs/legacy-peers.md).
// Errors throw std::runtime_error carrying OpenSSL's reason: contexts are built at start-up and
// reload only.
#pragma once

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <memory>
#include <optional>
#include <string>

#include "config/config.hpp"

namespace tlsbridge::certs {

struct ssl_ctx_deleter {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
using ssl_ctx_ptr = std::unique_ptr<SSL_CTX, ssl_ctx_deleter>;

struct x509_store_deleter {
  void operator()(X509_STORE* s) const { X509_STORE_free(s); }
};
using x509_store_ptr = std::unique_ptr<X509_STORE, x509_store_deleter>;

// Applies the profile to an existing context (versions, ciphers, suites, groups, security level).
void apply_profile(SSL_CTX* ctx, const config::tls_profile& profile);

// The first setting of a profile OpenSSL refuses: its key in [tls.profiles.NAME] ("ciphers",
// "ciphersuites", "groups", "min_version", "max_version") and "bad KEY \"VALUE\": OpenSSL: …".
struct profile_error {
  std::string key;
  std::string message;
};
std::optional<profile_error> try_apply_profile(SSL_CTX* ctx, const config::tls_profile& profile);

// try_apply_profile on a fresh context: a profile checked once, whoever uses it (check-config).
std::optional<profile_error> check_profile(const config::tls_profile& profile);

// Front leg: server context with one certificate chain and key. `alpn` (wire format, e.g.
// "\x08http/1.1") is selected when the client offers it; empty = no ALPN.
ssl_ctx_ptr make_server_context(const config::tls_profile& profile, const config::cert_entry& cert,
                                const std::string& alpn = {});

// Back leg (and the probe): client context. Certificate verification is NOT enforced in the
// handshake (SSL_VERIFY_NONE): the chain is collected and judged afterwards by policy, the Postfix
// way — the verify step records evidence, the caller decides.
ssl_ctx_ptr make_client_context(const config::tls_profile& profile);

// Trust store for judging chains: ca_file if not empty, else the system default paths.
x509_store_ptr make_trust_store(const std::filesystem::path& ca_file);

// "OpenSSL: <reason>" from the thread's error queue (cleared), or `fallback` when empty.
std::string last_openssl_error(const std::string& fallback = "unknown error");

// Front-leg resumption: `tickets` stateless session tickets per full handshake (TLS 1.2 and 1.3),
// 0 = none and no resumption at all. The server-side session cache stays off either way: tickets
// need no shared, locked, growing table across the worker threads.
void set_session_tickets(SSL_CTX* ctx, unsigned tickets);

}  // namespace tlsbridge::certs
