#include "certs/client_hello_capture.hpp"

#include <algorithm>
#include <cstdio>
#include <string_view>

#include "certs/acme_challenges.hpp"

namespace tlsbridge::certs {

namespace {

namespace hello = protocols::tls_hello;

// The raw fields, copied in the callback (the ClientHello is gone when the handshake fails).
struct captured_hello {
  std::uint16_t max_version = 0;
  std::string sni;
  std::string cipher_bytes;  // two bytes per suite, as sent
};

// More than any real client sends (OpenSSL offers ~60); a longer list is cut for the record.
constexpr std::size_t max_ciphers = 128;

void free_captured(void* /*parent*/, void* ptr, CRYPTO_EX_DATA* /*ad*/, int /*idx*/, long /*argl*/,
                   void* /*argp*/) {
  delete static_cast<captured_hello*>(ptr);
}

int captured_index() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, free_captured);
  return index;
}

std::string_view extension(SSL* ssl, unsigned type) {
  const unsigned char* data = nullptr;
  std::size_t len = 0;
  if (SSL_client_hello_get0_ext(ssl, type, &data, &len) != 1 || data == nullptr) return {};
  return {reinterpret_cast<const char*>(data), len};
}

int on_client_hello(SSL* ssl, int* alert, void* /*arg*/) {
  auto* captured = static_cast<captured_hello*>(SSL_get_ex_data(ssl, captured_index()));
  if (captured == nullptr) {
    captured = new captured_hello;
    if (SSL_set_ex_data(ssl, captured_index(), captured) != 1) {
      delete captured;
      return SSL_CLIENT_HELLO_SUCCESS;  // the record goes without; the handshake goes on
    }
  }
  captured->max_version = hello::max_offered_version(
      static_cast<std::uint16_t>(SSL_client_hello_get0_legacy_version(ssl)),
      extension(ssl, TLSEXT_TYPE_supported_versions));
  captured->sni = hello::server_name(extension(ssl, TLSEXT_TYPE_server_name));
  const unsigned char* ciphers = nullptr;
  const std::size_t len = SSL_client_hello_get0_ciphers(ssl, &ciphers);
  captured->cipher_bytes.assign(reinterpret_cast<const char*>(ciphers),
                                ciphers ? std::min(len, 2 * max_ciphers) : 0);
  // tls-alpn-01: a validation handshake gets the challenge certificate (certs/acme_challenges).
  const auto answer =
      answer_acme_hello(ssl, extension(ssl, TLSEXT_TYPE_application_layer_protocol_negotiation),
                        captured->sni, alert);
  if (answer == acme_hello::refused) return SSL_CLIENT_HELLO_ERROR;
  return SSL_CLIENT_HELLO_SUCCESS;
}

}  // namespace

void capture_client_hello(SSL_CTX* ctx) {
  SSL_CTX_set_client_hello_cb(ctx, on_client_hello, nullptr);
}

std::optional<client_hello_offer> client_hello_of(SSL* ssl) {
  if (ssl == nullptr) return std::nullopt;
  const auto* captured = static_cast<captured_hello*>(SSL_get_ex_data(ssl, captured_index()));
  if (captured == nullptr) return std::nullopt;
  client_hello_offer offer;
  offer.max_version = hello::version_name(captured->max_version);
  offer.sni = captured->sni;
  const std::string& bytes = captured->cipher_bytes;
  for (std::size_t i = 0; i + 1 < bytes.size(); i += 2) {
    const auto* id = reinterpret_cast<const unsigned char*>(bytes.data() + i);
    const auto value = static_cast<std::uint16_t>(id[0] << 8 | id[1]);
    if (hello::is_grease(value)) continue;
    if (const SSL_CIPHER* c = SSL_CIPHER_find(ssl, id)) {
      offer.ciphers.emplace_back(SSL_CIPHER_get_name(c));
    } else {
      char text[8];
      std::snprintf(text, sizeof text, "0x%04x", value);
      offer.ciphers.emplace_back(text);
    }
  }
  return offer;
}

void forget_client_hello(SSL* ssl) {
  if (ssl == nullptr) return;
  auto* captured = static_cast<captured_hello*>(SSL_get_ex_data(ssl, captured_index()));
  if (captured == nullptr) return;
  SSL_set_ex_data(ssl, captured_index(), nullptr);
  delete captured;
}

}  // namespace tlsbridge::certs
