#include "certs/tls_context.hpp"

#include <openssl/err.h>

#include <cstring>
#include <stdexcept>
#include <string_view>

#include "certs/client_hello_capture.hpp"

namespace tlsbridge::certs {
namespace {

// The ALPN list a server context offers lives in the context's ex_data, so it is freed with the
// context (and survives SSL_set_SSL_CTX switches to sibling contexts that carry their own copy).
void free_alpn(void* /*parent*/, void* ptr, CRYPTO_EX_DATA* /*ad*/, int /*idx*/, long /*argl*/,
               void* /*argp*/) {
  delete static_cast<std::string*>(ptr);
}

int alpn_index() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, free_alpn);
  return index;
}

// Server preference order (RFC 7301 §3.2 leaves the choice to the server). No overlap: go on
// without ALPN rather than alert — old clients that send odd lists still get their mail through.
int select_alpn(SSL* /*ssl*/, const unsigned char** out, unsigned char* outlen,
                const unsigned char* in, unsigned int inlen, void* arg) {
  const auto* ours = static_cast<const std::string*>(arg);
  const auto* own = reinterpret_cast<const unsigned char*>(ours->data());
  for (std::size_t i = 0; i < ours->size();) {
    const unsigned len = own[i];
    if (i + 1 + len > ours->size()) break;
    for (unsigned int j = 0; j < inlen;) {
      const unsigned theirs = in[j];
      if (j + 1 + theirs > inlen) break;
      if (theirs == len && std::memcmp(in + j + 1, own + i + 1, len) == 0) {
        *out = own + i + 1;
        *outlen = static_cast<unsigned char>(len);
        return SSL_TLSEXT_ERR_OK;
      }
      j += 1 + theirs;
    }
    i += 1 + len;
  }
  return SSL_TLSEXT_ERR_NOACK;
}

[[noreturn]] void fail(const std::string& what) {
  throw std::runtime_error(what + ": " + last_openssl_error());
}

bool is_legacy(const config::tls_profile& profile) {
  return profile.min_version < config::tls1_2 ||
         profile.ciphers.find("@SECLEVEL=0") != std::string::npos;
}

}  // namespace

std::string last_openssl_error(const std::string& fallback) {
  std::string text;
  const char* data = nullptr;
  int flags = 0;
  while (unsigned long e = ERR_get_error_all(nullptr, nullptr, nullptr, &data, &flags)) {
    std::string one;
    if (const char* reason = ERR_reason_error_string(e)) {
      one = reason;
    } else {
      char buf[256];
      ERR_error_string_n(e, buf, sizeof buf);
      one = buf;
    }
    if (data != nullptr && (flags & ERR_TXT_STRING) != 0 && *data != '\0') {
      one += " (";
      one += data;
      one += ")";
    }
    if (text.find(one) != std::string::npos) continue;
    if (!text.empty()) text += "; ";
    text += one;
  }
  return text.empty() ? fallback : "OpenSSL: " + text;
}

std::optional<profile_error> try_apply_profile(SSL_CTX* ctx, const config::tls_profile& profile) {
  const auto refused = [](std::string key, const std::string& value) {
    return profile_error{key, "bad " + key + (value.empty() ? "" : " \"" + value + "\"") + ": " +
                                  last_openssl_error()};
  };
  // Level 0 first: OpenSSL 3 at its default level 2 refuses TLS 1.0/1.1 signature algorithms and
  // will not even load a SHA-1/MD5-signed certificate or an RSA-1024 key (docs/legacy-peers.md).
  // An explicit @SECLEVEL=n in the cipher string, applied below, still has the last word.
  if (is_legacy(profile)) SSL_CTX_set_security_level(ctx, 0);
  if (SSL_CTX_set_min_proto_version(ctx, profile.min_version) != 1)
    return refused("min_version", "");
  if (SSL_CTX_set_max_proto_version(ctx, profile.max_version) != 1)
    return refused("max_version", "");
  if (!profile.ciphers.empty() && SSL_CTX_set_cipher_list(ctx, profile.ciphers.c_str()) != 1)
    return refused("ciphers", profile.ciphers);
  if (!profile.ciphersuites.empty() &&
      SSL_CTX_set_ciphersuites(ctx, profile.ciphersuites.c_str()) != 1)
    return refused("ciphersuites", profile.ciphersuites);
  if (!profile.groups.empty() && SSL_CTX_set1_groups_list(ctx, profile.groups.c_str()) != 1)
    return refused("groups", profile.groups);
  return std::nullopt;
}

void apply_profile(SSL_CTX* ctx, const config::tls_profile& profile) {
  if (auto error = try_apply_profile(ctx, profile))
    throw std::runtime_error("TLS profile '" + profile.name + "': " + error->message);
}

std::optional<profile_error> check_profile(const config::tls_profile& profile) {
  ERR_clear_error();
  ssl_ctx_ptr ctx(SSL_CTX_new(TLS_method()));
  if (!ctx) return profile_error{"", "SSL_CTX_new: " + last_openssl_error()};
  return try_apply_profile(ctx.get(), profile);
}

ssl_ctx_ptr make_server_context(const config::tls_profile& profile, const config::cert_entry& cert,
                                const std::string& alpn) {
  ERR_clear_error();
  ssl_ctx_ptr ctx(SSL_CTX_new(TLS_server_method()));
  if (!ctx) fail("SSL_CTX_new");
  // Renegotiation off: a client-initiated renegotiation is a cheap CPU DoS and nothing we relay
  // needs it (RFC 7457 §2.2 / CVE-2009-3555 class).
  SSL_CTX_set_options(
      ctx.get(), SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_RELEASE_BUFFERS);
  apply_profile(ctx.get(), profile);  // must precede the certificate: it sets the security level
  capture_client_hello(ctx.get());    // for the audit of a failed handshake

  const std::string cert_file = cert.cert.string();
  const std::string key_file = cert.key.string();
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), cert_file.c_str()) != 1)
    fail("certificate " + cert_file + " (profile '" + profile.name + "')");
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    // OpenSSL checks the pair while loading the key; say so in words a deployer recognises.
    const unsigned long e = ERR_peek_last_error();
    if (ERR_GET_LIB(e) == ERR_LIB_X509 && ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH)
      fail("key " + key_file + " does not match certificate " + cert_file);
    fail("key " + key_file);
  }
  if (SSL_CTX_check_private_key(ctx.get()) != 1)
    fail("key " + key_file + " does not match certificate " + cert_file);

  if (!alpn.empty()) {
    auto* list = new std::string(alpn);
    if (SSL_CTX_set_ex_data(ctx.get(), alpn_index(), list) != 1) {
      delete list;
      fail("SSL_CTX_set_ex_data");
    }
    SSL_CTX_set_alpn_select_cb(ctx.get(), select_alpn, list);
  }
  return ctx;
}

ssl_ctx_ptr make_client_context(const config::tls_profile& profile) {
  ERR_clear_error();
  ssl_ctx_ptr ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) fail("SSL_CTX_new");
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_RELEASE_BUFFERS);
  // Evidence, not enforcement: the chain is collected after the handshake and judged by policy.
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
  apply_profile(ctx.get(), profile);
  return ctx;
}

x509_store_ptr make_trust_store(const std::filesystem::path& ca_file) {
  ERR_clear_error();
  x509_store_ptr store(X509_STORE_new());
  if (!store) fail("X509_STORE_new");
  if (ca_file.empty()) {
    if (X509_STORE_set_default_paths(store.get()) != 1) fail("system trust store");
  } else if (X509_STORE_load_file(store.get(), ca_file.string().c_str()) != 1) {
    fail("CA file " + ca_file.string());
  }
  return store;
}

void set_session_tickets(SSL_CTX* ctx, unsigned tickets) {
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_num_tickets(ctx, tickets);
  if (tickets == 0) SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
}

}  // namespace tlsbridge::certs
