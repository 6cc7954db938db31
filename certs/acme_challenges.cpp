#include "certs/acme_challenges.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include <algorithm>

#include "common/ascii_case.hpp"

namespace tlsbridge::certs {

namespace {

int challenge_index() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

// The challenge context's ALPN: "acme-tls/1" when offered (it always is: the context is chosen
// only for such a hello), otherwise the handshake fails.
int select_acme(SSL* /*ssl*/, const unsigned char** out, unsigned char* outlen,
                const unsigned char* in, unsigned int inlen, void* /*arg*/) {
  static const unsigned char wire[] =
      "\x0a"
      "acme-tls/1";
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, outlen, wire, sizeof wire - 1, in, inlen) !=
      OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

std::shared_ptr<SSL_CTX> make_challenge_context(const acme::alpn_challenge& c, std::string& error) {
  std::shared_ptr<SSL_CTX> ctx(SSL_CTX_new(TLS_server_method()), SSL_CTX_free);
  if (!ctx) {
    error = last_openssl_error("SSL_CTX_new failed");
    return nullptr;
  }
  // RFC 8737 §4: the validation handshake is TLS 1.2 or later.
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  std::unique_ptr<BIO, decltype(&BIO_free)> cert_bio(
      BIO_new_mem_buf(c.cert_pem.data(), static_cast<int>(c.cert_pem.size())), BIO_free);
  std::unique_ptr<BIO, decltype(&BIO_free)> key_bio(
      BIO_new_mem_buf(c.key_pem.data(), static_cast<int>(c.key_pem.size())), BIO_free);
  std::unique_ptr<X509, decltype(&X509_free)> cert(
      cert_bio ? PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr) : nullptr, X509_free);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      key_bio ? PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr) : nullptr,
      EVP_PKEY_free);
  if (!cert || !key || SSL_CTX_use_certificate(ctx.get(), cert.get()) != 1 ||
      SSL_CTX_use_PrivateKey(ctx.get(), key.get()) != 1 ||
      SSL_CTX_check_private_key(ctx.get()) != 1) {
    error = last_openssl_error("unreadable challenge certificate or key");
    return nullptr;
  }
  SSL_CTX_set_alpn_select_cb(ctx.get(), select_acme, nullptr);
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
  SSL_CTX_set_num_tickets(ctx.get(), 0);
  return ctx;
}

}  // namespace

bool offers_acme_alpn(std::string_view ext) {
  if (ext.size() < 2) return false;
  const std::size_t list_len = static_cast<std::size_t>(static_cast<unsigned char>(ext[0])) << 8 |
                               static_cast<unsigned char>(ext[1]);
  if (list_len != ext.size() - 2) return false;
  std::size_t i = 2;
  while (i < ext.size()) {
    const std::size_t len = static_cast<unsigned char>(ext[i]);
    if (len == 0 || i + 1 + len > ext.size()) return false;
    if (ext.substr(i + 1, len) == acme_alpn) return true;
    i += 1 + len;
  }
  return false;
}

acme_challenges& acme_challenges::instance() {
  static acme_challenges registry;
  return registry;
}

void acme_challenges::publish(const acme::alpn_challenge& challenge) {
  std::string error;
  auto ctx = make_challenge_context(challenge, error);
  std::lock_guard lock(mutex_);
  if (!ctx) {
    last_error_ = challenge.name + ": " + error;
    return;
  }
  contexts_[ascii::lower(challenge.name)] = std::move(ctx);
}

void acme_challenges::withdraw(const std::string& name) {
  std::lock_guard lock(mutex_);
  contexts_.erase(ascii::lower(name));
}

std::size_t acme_challenges::size() const {
  std::lock_guard lock(mutex_);
  return contexts_.size();
}

std::string acme_challenges::last_error() const {
  std::lock_guard lock(mutex_);
  return last_error_;
}

std::shared_ptr<SSL_CTX> acme_challenges::lookup(std::string_view name) const {
  const std::string key = ascii::lower(name);
  std::lock_guard lock(mutex_);
  const auto it = contexts_.find(key);
  return it == contexts_.end() ? nullptr : it->second;
}

acme_hello answer_acme_hello(SSL* ssl, std::string_view alpn_extension, std::string_view sni,
                             int* alert) {
  if (!offers_acme_alpn(alpn_extension)) return acme_hello::ordinary;
  auto ctx = sni.empty() ? nullptr : acme_challenges::instance().lookup(sni);
  if (!ctx) {
    if (alert) *alert = SSL_AD_NO_APPLICATION_PROTOCOL;
    return acme_hello::refused;
  }
  // The SSL takes its own reference on the context; the mark keeps the SNI callback off it.
  SSL_set_SSL_CTX(ssl, ctx.get());
  SSL_set_ex_data(ssl, challenge_index(), reinterpret_cast<void*>(1));
  return acme_hello::challenge;
}

bool is_acme_challenge(SSL* ssl) {
  return ssl != nullptr && SSL_get_ex_data(ssl, challenge_index()) != nullptr;
}

bool negotiated_acme_alpn(SSL* ssl) {
  if (ssl == nullptr) return false;
  const unsigned char* data = nullptr;
  unsigned int len = 0;
  SSL_get0_alpn_selected(ssl, &data, &len);
  return data != nullptr && std::string_view(reinterpret_cast<const char*>(data), len) == acme_alpn;
}

}  // namespace tlsbridge::certs
