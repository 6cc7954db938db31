// The tls-alpn-01 challenge certificate (RFC 8737 §3): self-signed, its only SAN the name being
// validated, with the critical acmeIdentifier extension (1.3.6.1.5.5.7.1.31) whose value is the
// DER OCTET STRING of SHA-256(key authorization); key authorization = token "." thumbprint.
#pragma once

#include <optional>
#include <string>

#include "acme/obtain.hpp"

namespace tlsbridge::acme {

inline constexpr const char* acme_identifier_oid = "1.3.6.1.5.5.7.1.31";

std::string key_authorization(const std::string& token, const std::string& thumbprint);

// A certificate and its new P-256 key for `name`, or nullopt (`error` says why).
std::optional<alpn_challenge> make_challenge_cert(const std::string& name,
                                                  const std::string& key_authorization,
                                                  std::string& error);

}  // namespace tlsbridge::acme
