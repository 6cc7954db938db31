// The check of a downloaded certificate chain before anything is handed out as a certificate.
#include "acme/chain_check.hpp"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "acme/ossl.hpp"

namespace tlsbridge::acme {

std::string check_chain(const std::string& chain_pem, EVP_PKEY* cert_key,
                        const std::vector<std::string>& names) {
  bio_ptr bio(BIO_new_mem_buf(chain_pem.data(), static_cast<int>(chain_pem.size())));
  if (!bio) return "out of memory";
  x509_ptr leaf(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!leaf) {
    ERR_clear_error();
    return "the certificate chain holds no PEM certificate";
  }
  EVP_PKEY* leaf_key = X509_get0_pubkey(leaf.get());
  if (!leaf_key || EVP_PKEY_eq(leaf_key, cert_key) != 1)
    return "the leaf certificate's public key is not the key of the request";
  for (const auto& name : names) {
    if (X509_check_host(leaf.get(), name.data(), name.size(), X509_CHECK_FLAG_NEVER_CHECK_SUBJECT,
                        nullptr) != 1)
      return "the leaf certificate does not cover " + name;
  }
  return {};
}

}  // namespace tlsbridge::acme
