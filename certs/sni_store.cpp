#include "certs/sni_store.hpp"

#include <openssl/x509v3.h>

#include <algorithm>
#include <stdexcept>

#include "certs/acme_challenges.hpp"
#include "common/ascii_case.hpp"

namespace tlsbridge::certs {
namespace {

std::vector<std::string> san_dns_names(X509* cert) {
  std::vector<std::string> names;
  if (cert == nullptr) return names;
  auto* sans =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (sans == nullptr) return names;
  for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(sans, i);
    if (name->type != GEN_DNS) continue;
    const ASN1_IA5STRING* dns = name->d.dNSName;
    names.push_back(
        ascii::lower(std::string_view(reinterpret_cast<const char*>(ASN1_STRING_get0_data(dns)),
                                      static_cast<std::size_t>(ASN1_STRING_length(dns)))));
  }
  GENERAL_NAMES_free(sans);
  return names;
}

// The servername callback's argument is a weak reference to the store, owned by the context's
// ex_data: an SSL object may outlive the store that made it (it holds its own reference to the
// SSL_CTX), and then a late ClientHello must find "no store" rather than a dangling pointer.
using store_ref = std::weak_ptr<const sni_store>;

void free_store_ref(void* /*parent*/, void* ptr, CRYPTO_EX_DATA* /*ad*/, int /*idx*/, long /*argl*/,
                    void* /*argp*/) {
  delete static_cast<store_ref*>(ptr);
}

int store_ref_index() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, free_store_ref);
  return index;
}

int on_servername(SSL* ssl, int* /*alert*/, void* arg) {
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (name == nullptr || arg == nullptr) return SSL_TLSEXT_ERR_OK;  // no SNI: default certificate
  if (is_acme_challenge(ssl)) return SSL_TLSEXT_ERR_OK;  // tls-alpn-01: keep the challenge's
  const auto store = static_cast<store_ref*>(arg)->lock();
  if (!store) return SSL_TLSEXT_ERR_OK;
  SSL_CTX* chosen = store->select(name);
  // SSL_set_SSL_CTX swaps the certificate and key but keeps the SSL's options and verify mode;
  // every context of a store was built from the same profile, so nothing else differs.
  if (chosen != SSL_get_SSL_CTX(ssl)) SSL_set_SSL_CTX(ssl, chosen);
  return SSL_TLSEXT_ERR_OK;
}

}  // namespace

std::shared_ptr<const sni_store> sni_store::build(const config::tls_profile& profile,
                                                  const std::vector<config::cert_entry>& certs,
                                                  const std::string& alpn) {
  if (certs.empty()) throw std::runtime_error("no [[certs]] entry to build the SNI store from");
  std::shared_ptr<sni_store> store(new sni_store);
  for (const auto& entry : certs) {
    ssl_ctx_ptr ctx = make_server_context(profile, entry, alpn);
    std::vector<std::string> names;
    if (entry.names.empty()) {
      names = san_dns_names(SSL_CTX_get0_certificate(ctx.get()));
    } else {
      for (const auto& n : entry.names) names.push_back(ascii::lower(n));
    }
    store->contexts_.push_back(std::move(ctx));
    store->names_.push_back(std::move(names));
  }
  for (const auto& ctx : store->contexts_) {
    auto* ref = new store_ref(store);
    if (SSL_CTX_set_ex_data(ctx.get(), store_ref_index(), ref) != 1) {
      delete ref;
      throw std::runtime_error("SSL_CTX_set_ex_data: " + last_openssl_error());
    }
    SSL_CTX_set_tlsext_servername_callback(ctx.get(), on_servername);
    SSL_CTX_set_tlsext_servername_arg(ctx.get(), ref);
  }
  return store;
}

SSL_CTX* sni_store::select(std::string_view server_name) const {
  std::string name = ascii::lower(server_name);
  if (!name.empty() && name.back() == '.') name.pop_back();  // absolute form "mail.example."
  if (name.empty()) return default_context();
  for (std::size_t i = 0; i < names_.size(); ++i) {
    if (std::find(names_[i].begin(), names_[i].end(), name) != names_[i].end())
      return contexts_[i].get();
  }
  // "*.example.com" covers exactly one label (RFC 6125 §6.4.3): "a.example.com" but neither
  // "example.com" nor "a.b.example.com".
  const auto dot = name.find('.');
  if (dot != std::string::npos && dot > 0) {
    // Built by append: GCC 12 warns falsely (-Wrestrict) on `"*" + std::string`.
    std::string wildcard(1, '*');
    wildcard.append(name, dot, std::string::npos);
    for (std::size_t i = 0; i < names_.size(); ++i) {
      if (std::find(names_[i].begin(), names_[i].end(), wildcard) != names_[i].end())
        return contexts_[i].get();
    }
  }
  return default_context();
}

}  // namespace tlsbridge::certs
