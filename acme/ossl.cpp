// Owning pointers for the OpenSSL objects the ACME client makes, and the last OpenSSL error as
// text.
#include "acme/ossl.hpp"

#include <openssl/err.h>
#include <openssl/pem.h>

namespace tlsbridge::acme {

std::string openssl_error(const std::string& fallback) {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return fallback;
  char text[256];
  ERR_error_string_n(code, text, sizeof text);
  return fallback + ": " + text;
}

pkey_ptr new_p256_key() {
  return pkey_ptr(EVP_EC_gen("P-256"));
}

namespace {
std::string bio_text(BIO* bio) {
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  return len > 0 ? std::string(data, static_cast<size_t>(len)) : std::string();
}
}  // namespace

std::string private_key_pem(EVP_PKEY* key) {
  bio_ptr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1)
    return {};
  return bio_text(bio.get());
}

std::string cert_pem(X509* cert) {
  bio_ptr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) return {};
  return bio_text(bio.get());
}

}  // namespace tlsbridge::acme
