// The certificate request of an order (RFC 8555 §7.4): a new P-256 key for the certificate and a
// CSR whose subject is the first name and whose subjectAltName holds every name.
#include "acme/csr.hpp"

#include <openssl/x509v3.h>

namespace tlsbridge::acme {

namespace {
struct req_free {
  void operator()(X509_REQ* p) const { X509_REQ_free(p); }
};
}  // namespace

std::string make_csr_der(EVP_PKEY* cert_key, const std::vector<std::string>& names) {
  if (names.empty()) return {};
  std::unique_ptr<X509_REQ, req_free> req(X509_REQ_new());
  if (!req || X509_REQ_set_version(req.get(), 0) != 1 ||
      X509_REQ_set_pubkey(req.get(), cert_key) != 1)
    return {};
  // A commonName holds at most 64 characters (RFC 5280 ub-common-name); the SAN is what counts.
  if (names.front().size() <= 64) {
    X509_NAME* subject = X509_REQ_get_subject_name(req.get());
    if (X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC,
                                   reinterpret_cast<const unsigned char*>(names.front().c_str()),
                                   -1, -1, 0) != 1)
      return {};
  }
  std::string san;
  for (const auto& name : names) {
    if (name.empty() || name.find_first_of(",\r\n") != std::string::npos) return {};
    san += (san.empty() ? "DNS:" : ",DNS:") + name;
  }
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, nullptr, NID_subject_alt_name, san.c_str());
  if (!ext) return {};
  STACK_OF(X509_EXTENSION)* exts = sk_X509_EXTENSION_new_null();
  sk_X509_EXTENSION_push(exts, ext);
  const int added = X509_REQ_add_extensions(req.get(), exts);
  sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
  if (added != 1 || X509_REQ_sign(req.get(), cert_key, EVP_sha256()) <= 0) return {};
  unsigned char* der = nullptr;
  const int len = i2d_X509_REQ(req.get(), &der);
  if (len <= 0) return {};
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  return out;
}

}  // namespace tlsbridge::acme
