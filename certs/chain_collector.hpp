// Turns what OpenSSL received into policy::chain_evidence: per certificate the subject, issuer,
// signature algorithm and its hash (MD2 recognised by OID, since OpenSSL 3 cannot compute it),
// key type and bits, validity, SHA-256 fingerprint, self-signedness; for the chain, OpenSSL's own
// verification at auth level 0 against a trust store (so weak hashes do not mask the trust result)
// and the host name check. Evidence only: deciding is policy/'s job.
#pragma once

#include <string>
#include <vector>

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "policy/chain_evidence.hpp"

namespace tlsbridge::certs {

struct verify_settings {
  X509_STORE* store = nullptr;  // nullptr = do not check trust
  std::string server_name;      // "" = do not check the name
  // X509_PURPOSE_* the chain must serve: ANY for server chains (the legacy hosts' certificates
  // often lack EKU), SSL_CLIENT for front-leg client chains.
  int purpose = X509_PURPOSE_ANY;
};

// leaf may be nullptr (no certificate presented: empty evidence). untrusted may be nullptr.
policy::chain_evidence collect_chain(X509* leaf, STACK_OF(X509) * untrusted,
                                     const verify_settings& settings);

// After a handshake: the peer's chain (works for both client and server side SSL objects).
policy::chain_evidence collect_peer_chain(SSL* ssl, const verify_settings& settings);

// Evidence for one certificate (depth is set by the caller).
policy::cert_evidence describe_certificate(X509* cert, int depth);

}  // namespace tlsbridge::certs
