// The ACME account key (ES256: P-256): generated or loaded from PEM, its JWK (RFC 7517) and the
// JWK's RFC 7638 thumbprint, which the key authorization of every challenge ends with.
#pragma once

#include <optional>
#include <string>

#include "acme/ossl.hpp"

namespace tlsbridge::acme {

class account_key {
 public:
  // Null when `pem` is not a P-256 private key; `error` says why.
  static std::optional<account_key> load(const std::string& pem, std::string& error);
  static std::optional<account_key> generate();

  EVP_PKEY* key() const { return key_.get(); }
  std::string pem() const { return private_key_pem(key_.get()); }
  // {"crv":"P-256","kty":"EC","x":…,"y":…}: members in lexicographic order, no white space, so
  // it is also the canonical form RFC 7638 §3 hashes.
  const std::string& jwk_json() const { return jwk_; }
  // base64url(SHA-256(jwk_json())).
  const std::string& thumbprint() const { return thumbprint_; }

 private:
  explicit account_key(pkey_ptr key);
  std::shared_ptr<EVP_PKEY> key_;
  std::string jwk_;
  std::string thumbprint_;
};

// base64url(SHA-256(bytes)) and the raw digest.
std::string sha256(const std::string& bytes);

}  // namespace tlsbridge::acme
