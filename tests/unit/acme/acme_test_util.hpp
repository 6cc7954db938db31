// Helpers shared by the ACME unit tests: keys, certificates issued by a throw-away CA, PEM
// parsing, base64url decoding. Everything is generated at test time.
#pragma once

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <string>
#include <vector>

#include "acme/ossl.hpp"
#include "protocols/common/base64.hpp"

namespace tlsbridge::acme::test {

inline std::string unb64(const std::string& text) {
  return protocols::base64_decode(text).value_or("<not base64url>");
}

inline x509_ptr parse_cert(const std::string& pem) {
  bio_ptr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  return x509_ptr(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
}

inline pkey_ptr parse_key(const std::string& pem) {
  bio_ptr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  return pkey_ptr(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
}

inline pkey_ptr share(EVP_PKEY* key) {
  EVP_PKEY_up_ref(key);
  return pkey_ptr(key);
}

// The DNS names in a certificate's subjectAltName.
inline std::vector<std::string> san_names(const STACK_OF(GENERAL_NAME) * names) {
  std::vector<std::string> out;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    if (name->type != GEN_DNS) continue;
    const ASN1_STRING* s = name->d.dNSName;
    out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                     static_cast<size_t>(ASN1_STRING_length(s)));
  }
  return out;
}

// A leaf for `subject_key` naming `names`, signed by `issuer_key`, then a CA certificate line
// (the issuer, self-signed), both PEM: what an ACME server's certificate URL answers.
inline std::string issue_chain(EVP_PKEY* subject_key, const std::vector<std::string>& names,
                               EVP_PKEY* issuer_key) {
  auto make = [&](EVP_PKEY* key, const char* cn, const std::string& san, long serial) {
    x509_ptr cert(X509_new());
    X509_set_version(cert.get(), 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial);
    X509_NAME* subject = X509_get_subject_name(cert.get());
    X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>(cn), -1, -1, 0);
    X509_NAME* issuer = X509_NAME_new();
    X509_NAME_add_entry_by_txt(issuer, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("test ACME CA"), -1, -1, 0);
    X509_set_issuer_name(cert.get(), issuer);
    X509_NAME_free(issuer);
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -60);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), 86400);
    X509_set_pubkey(cert.get(), key);
    if (!san.empty()) {
      X509_EXTENSION* ext =
          X509V3_EXT_conf_nid(nullptr, nullptr, NID_subject_alt_name, san.c_str());
      X509_add_ext(cert.get(), ext, -1);
      X509_EXTENSION_free(ext);
    }
    X509_sign(cert.get(), issuer_key, EVP_sha256());
    return cert_pem(cert.get());
  };
  std::string san;
  for (const auto& name : names) san += (san.empty() ? "DNS:" : ",DNS:") + name;
  return make(subject_key, names.empty() ? "none" : names.front().c_str(), san, 2) +
         make(issuer_key, "test ACME CA", "", 1);
}

}  // namespace tlsbridge::acme::test
