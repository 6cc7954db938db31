// Front-leg client certificates (SPEC §3 `client_certs`, §4 Certificate policy). With `optional`
// or `required`, the listener's server contexts ask for a certificate and replace OpenSSL's chain
// verification with ours: the chain is collected (certs/chain_collector, trust against
// `client_ca`) and judged by policy/ inside the handshake, so a refusal ends it with a TLS alert,
// as the SPEC asks, instead of a connection that is dropped after it was accepted. Client chains
// establish an identity, so they are judged in full (never "trusted by configuration").
//
// The session lends each handshake a `client_chain_check` (SSL ex_data) that carries the policy
// context in and the evidence and decision out, for the `conn` record.
#pragma once

#include <filesystem>
#include <optional>

#include <openssl/ssl.h>

#include "certs/tls_context.hpp"
#include "config/config.hpp"
#include "policy/chain_evidence.hpp"
#include "policy/policy_decision.hpp"

namespace tlsbridge::certs {

struct client_chain_check {
  const config::policy_config* policy = nullptr;
  policy::peer_context peer;
  X509_STORE* trust = nullptr;  // client_ca (or the system store)
  std::optional<policy::chain_evidence> evidence;
  std::optional<policy::decision> decision;
};

// Asks for client certificates on `ctx` (`required`: a handshake without one fails) and installs
// the policy verification. `ca_names` (PEM bundle, may be empty) is advertised to clients.
// Throws std::runtime_error when the bundle cannot be read.
void enable_client_certificates(SSL_CTX* ctx, config::client_cert_mode mode,
                                const std::filesystem::path& ca_names);

// Attaches the per-handshake check to an SSL object before its handshake.
void attach_client_check(SSL* ssl, client_chain_check* check);

}  // namespace tlsbridge::certs
