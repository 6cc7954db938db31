// The tls-alpn-01 challenge certificate (RFC 8737 §3).
#include "acme/challenge_cert.hpp"

#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "acme/account_key.hpp"
#include "acme/ossl.hpp"

namespace tlsbridge::acme {

namespace {

struct ext_free {
  void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); }
};

bool add_acme_identifier(X509* cert, const std::string& digest) {
  // The extension's extnValue is an OCTET STRING wrapping the DER of Authorization ::= OCTET
  // STRING (SIZE (32)): 04 20 <digest>.
  std::string inner = std::string("\x04\x20", 2) + digest;
  std::unique_ptr<ASN1_OCTET_STRING, decltype(&ASN1_OCTET_STRING_free)> value(
      ASN1_OCTET_STRING_new(), ASN1_OCTET_STRING_free);
  std::unique_ptr<ASN1_OBJECT, decltype(&ASN1_OBJECT_free)> oid(OBJ_txt2obj(acme_identifier_oid, 1),
                                                                ASN1_OBJECT_free);
  if (!value || !oid ||
      ASN1_OCTET_STRING_set(value.get(), reinterpret_cast<const unsigned char*>(inner.data()),
                            static_cast<int>(inner.size())) != 1)
    return false;
  std::unique_ptr<X509_EXTENSION, ext_free> ext(
      X509_EXTENSION_create_by_OBJ(nullptr, oid.get(), 1, value.get()));
  return ext && X509_add_ext(cert, ext.get(), -1) == 1;
}

bool add_san(X509* cert, const std::string& name) {
  const std::string san = "DNS:" + name;
  std::unique_ptr<X509_EXTENSION, ext_free> ext(
      X509V3_EXT_conf_nid(nullptr, nullptr, NID_subject_alt_name, san.c_str()));
  return ext && X509_add_ext(cert, ext.get(), -1) == 1;
}

}  // namespace

std::string key_authorization(const std::string& token, const std::string& thumbprint) {
  return token + "." + thumbprint;
}

std::optional<alpn_challenge> make_challenge_cert(const std::string& name,
                                                  const std::string& key_authorization,
                                                  std::string& error) {
  if (name.empty() || name.find_first_of(",\r\n") != std::string::npos) {
    error = "the identifier is not a DNS name: " + name;
    return std::nullopt;
  }
  pkey_ptr key = new_p256_key();
  x509_ptr cert(X509_new());
  unsigned char serial[16];
  if (!key || !cert || RAND_bytes(serial, sizeof serial) != 1) {
    error = openssl_error("cannot make the challenge key");
    return std::nullopt;
  }
  serial[0] &= 0x7f;  // a positive INTEGER
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  ASN1_INTEGER* sn = bn ? BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get())) : nullptr;
  BN_free(bn);
  X509_NAME* subject = X509_get_subject_name(cert.get());
  const bool ok = sn && X509_set_version(cert.get(), 2) == 1 &&
                  X509_NAME_add_entry_by_txt(
                      subject, "CN", MBSTRING_ASC,
                      reinterpret_cast<const unsigned char*>("ACME tls-alpn-01"), -1, -1, 0) == 1 &&
                  X509_set_issuer_name(cert.get(), subject) == 1 &&
                  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) &&
                  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 7 * 24 * 3600) &&
                  X509_set_pubkey(cert.get(), key.get()) == 1 && add_san(cert.get(), name) &&
                  add_acme_identifier(cert.get(), sha256(key_authorization)) &&
                  X509_sign(cert.get(), key.get(), EVP_sha256()) > 0;
  if (!ok) {
    error = openssl_error("cannot make the challenge certificate for " + name);
    return std::nullopt;
  }
  alpn_challenge out;
  out.name = name;
  out.cert_pem = cert_pem(cert.get());
  out.key_pem = private_key_pem(key.get());
  return out;
}

}  // namespace tlsbridge::acme
