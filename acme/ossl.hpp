// Owning pointers for the OpenSSL objects the ACME client makes, and the last OpenSSL error as
// text.
#pragma once

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <memory>
#include <string>

namespace tlsbridge::acme {

struct pkey_free {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct x509_free {
  void operator()(X509* p) const { X509_free(p); }
};
struct bio_free {
  void operator()(BIO* p) const { BIO_free_all(p); }
};
using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_free>;
using x509_ptr = std::unique_ptr<X509, x509_free>;
using bio_ptr = std::unique_ptr<BIO, bio_free>;

// The oldest queued OpenSSL error (the queue is then cleared), or `fallback` when there is none.
std::string openssl_error(const std::string& fallback);

// A new P-256 key, or null.
pkey_ptr new_p256_key();

// PEM (PKCS#8, unencrypted) of a private key; "" on failure.
std::string private_key_pem(EVP_PKEY* key);

// PEM of a certificate; "" on failure.
std::string cert_pem(X509* cert);

}  // namespace tlsbridge::acme
