// RFC 7515 JWS in the flattened JSON serialization, signed ES256, as every ACME POST carries it
// (RFC 8555 §6.2): the protected header holds alg, nonce, url and either the account's jwk (for
// newAccount) or its kid (the account URL).
#pragma once

#include <string>

#include "acme/account_key.hpp"

namespace tlsbridge::acme {

struct jws_header {
  std::string nonce;
  std::string url;
  std::string kid;  // "" = put the jwk in the header instead
};

// {"protected":…,"payload":…,"signature":…}; `payload` is the JSON text to sign, "" for a
// POST-as-GET. The signature is R||S, 64 bytes (RFC 7518 §3.4). "" when signing fails.
std::string jws_sign(const account_key& key, const jws_header& header, const std::string& payload);

// OpenSSL's DER ECDSA-Sig-Value → R||S, each padded to 32 bytes; "" if it does not parse.
std::string ecdsa_der_to_raw(const std::string& der);

}  // namespace tlsbridge::acme
