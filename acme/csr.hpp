// The certificate request of an order (RFC 8555 §7.4): a new P-256 key for the certificate and a
// CSR whose subject is the first name and whose subjectAltName holds every name.
#pragma once

#include <string>
#include <vector>

#include "acme/ossl.hpp"

namespace tlsbridge::acme {

// The CSR, DER; "" on failure (an empty name list, a name OpenSSL refuses).
std::string make_csr_der(EVP_PKEY* cert_key, const std::vector<std::string>& names);

}  // namespace tlsbridge::acme
