// The ACME account key (ES256: P-256): generated or loaded from PEM, its JWK (RFC 7517) and the
// JWK's RFC 7638 thumbprint, which the key authorization of every challenge ends with.
#include "acme/account_key.hpp"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

#include "acme/base64url.hpp"

namespace tlsbridge::acme {

namespace {

// A public coordinate as 32 big-endian bytes (RFC 7518 §6.2.1.2: full length, leading zeros).
std::string coordinate(EVP_PKEY* key, const char* param) {
  BIGNUM* bn = nullptr;
  if (EVP_PKEY_get_bn_param(key, param, &bn) != 1) return {};
  unsigned char bytes[32];
  const int ok = BN_bn2binpad(bn, bytes, sizeof bytes);
  BN_free(bn);
  return ok == 32 ? std::string(reinterpret_cast<char*>(bytes), 32) : std::string();
}

bool is_p256(EVP_PKEY* key) {
  if (EVP_PKEY_get_base_id(key) != EVP_PKEY_EC) return false;
  char group[64] = {};
  size_t len = 0;
  if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &len) !=
      1)
    return false;
  return std::string(group, len) == "prime256v1" || std::string(group, len) == "P-256";
}

}  // namespace

std::string sha256(const std::string& bytes) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), digest);
  return std::string(reinterpret_cast<char*>(digest), sizeof digest);
}

account_key::account_key(pkey_ptr key) : key_(key.release(), EVP_PKEY_free) {
  const std::string x = coordinate(key_.get(), OSSL_PKEY_PARAM_EC_PUB_X);
  const std::string y = coordinate(key_.get(), OSSL_PKEY_PARAM_EC_PUB_Y);
  jwk_ =
      R"({"crv":"P-256","kty":"EC","x":")" + base64url(x) + R"(","y":")" + base64url(y) + R"("})";
  thumbprint_ = base64url(sha256(jwk_));
}

std::optional<account_key> account_key::load(const std::string& pem, std::string& error) {
  bio_ptr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  pkey_ptr key(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!key) {
    error = openssl_error("the account key is not a PEM private key");
    return std::nullopt;
  }
  if (!is_p256(key.get())) {
    error = "the account key is not a P-256 (ES256) key";
    return std::nullopt;
  }
  return account_key(std::move(key));
}

std::optional<account_key> account_key::generate() {
  pkey_ptr key = new_p256_key();
  if (!key) return std::nullopt;
  return account_key(std::move(key));
}

}  // namespace tlsbridge::acme
