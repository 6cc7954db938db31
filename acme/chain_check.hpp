// The check of a downloaded certificate chain before anything is handed out as a certificate:
// PEM certificates, leaf first; the leaf's public key is the key the CSR was made with and the
// leaf covers every requested name.
#pragma once

#include <openssl/evp.h>

#include <string>
#include <vector>

namespace tlsbridge::acme {

// "" when the chain passes, else what is wrong.
std::string check_chain(const std::string& chain_pem, EVP_PKEY* cert_key,
                        const std::vector<std::string>& names);

}  // namespace tlsbridge::acme
