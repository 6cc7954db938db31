// Front-leg client certificates (`client_certs` in conf/tlsbridge.toml; the certificate policy in
// policy/). With `optional` or `required`, the listener's server contexts ask for a certificate and
// replace OpenSSL's chain verification with ours: the chain is collected (certs/chain_collector,
// trust against `client_ca`) and judged by policy/ inside the handshake, so a refusal ends it with
// a TLS alert, as a TLS client expects (RFC 8446 §6.2), instead of a connection that is dropped
// after it was accepted. Client chains establish an identity, so they are judged in full (never
// "trusted by configuration").
//
// Trust is not a policy choice here (SECURITY.md, "What it trusts"): a presented chain must end in
// a certificate of `client_ca` — never the system store, never a self-signed certificate the client
// brought along — or the handshake is refused whatever `on_untrusted` says. That holds for
// `optional` too: a client may send no certificate, but one it sends is an identity claim, and an
// unverifiable claim is refused as nginx's and Apache's `optional` do (a client without one simply
// sends none).
//
// The session lends each handshake a `client_chain_check` (SSL ex_data) that carries the policy
// context in and the evidence and decision out, for the `conn` record.
#pragma once

#include <openssl/ssl.h>

#include <cstdint>
#include <filesystem>
#include <optional>

#include "certs/tls_context.hpp"
#include "config/config.hpp"
#include "policy/chain_evidence.hpp"
#include "policy/policy_decision.hpp"

namespace tlsbridge::certs {

struct client_chain_check {
  const config::policy_config* policy = nullptr;
  policy::peer_context peer;
  X509_STORE* trust = nullptr;  // client_ca only; nullptr refuses every chain (fail closed)
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

// The audit reason's name for the trust rule, so a refusal names what it broke.
inline constexpr const char* client_trust_rule = "client_certs: the chain must end in client_ca";

// Evidence and policy decision for one presented client chain, with the trust rule applied on
// top of [policy]: an untrusted chain is refused whatever on_untrusted says, and its untrusted
// finding is recorded with the action refuse. Pure apart from OpenSSL's path building; the verify
// callback and the unit tests share it.
void judge_client_chain(client_chain_check& check, X509* leaf, STACK_OF(X509) * presented,
                        std::int64_t now);

}  // namespace tlsbridge::certs
