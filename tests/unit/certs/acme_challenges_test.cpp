// tls-alpn-01 on the listeners' own contexts: a real handshake over a memory BIO pair against an
// SNI store, with and without "acme-tls/1" offered and a challenge published.
#include "certs/acme_challenges.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "certs/sni_store.hpp"
#include "test_pki.hpp"

using namespace tlsbridge;

namespace {

struct ssl_deleter {
  void operator()(SSL* s) const { SSL_free(s); }
};
using ssl_ptr = std::unique_ptr<SSL, ssl_deleter>;

std::string read(const std::filesystem::path& file) {
  std::ifstream in(file);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

struct handshake_result {
  bool ok = false;
  std::string peer_cn;
  std::string alpn;
  bool server_saw_acme = false;
};

// One client hello (server name, ALPN wire list) against a server SSL made from `server_ctx`.
handshake_result handshake(SSL_CTX* server_ctx, const std::string& sni, const std::string& alpn) {
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> client_ctx(SSL_CTX_new(TLS_client_method()),
                                                               SSL_CTX_free);
  ssl_ptr client(SSL_new(client_ctx.get()));
  ssl_ptr server(SSL_new(server_ctx));
  BIO* client_bio = nullptr;
  BIO* server_bio = nullptr;
  REQUIRE(BIO_new_bio_pair(&client_bio, 0, &server_bio, 0) == 1);
  SSL_set_bio(client.get(), client_bio, client_bio);
  SSL_set_bio(server.get(), server_bio, server_bio);
  SSL_set_connect_state(client.get());
  SSL_set_accept_state(server.get());
  if (!sni.empty()) SSL_set_tlsext_host_name(client.get(), sni.c_str());
  if (!alpn.empty())
    SSL_set_alpn_protos(client.get(), reinterpret_cast<const unsigned char*>(alpn.data()),
                        static_cast<unsigned>(alpn.size()));
  handshake_result out;
  for (int round = 0; round < 50 && !out.ok; ++round) {
    const int rc = SSL_do_handshake(client.get());
    const int rs = SSL_do_handshake(server.get());
    if (rc == 1 && rs == 1) out.ok = true;
    const bool client_failed = rc != 1 && SSL_get_error(client.get(), rc) != SSL_ERROR_WANT_READ &&
                               SSL_get_error(client.get(), rc) != SSL_ERROR_WANT_WRITE;
    const bool server_failed = rs != 1 && SSL_get_error(server.get(), rs) != SSL_ERROR_WANT_READ &&
                               SSL_get_error(server.get(), rs) != SSL_ERROR_WANT_WRITE;
    if (client_failed || server_failed) break;
  }
  ERR_clear_error();
  if (!out.ok) return out;
  if (X509* peer = SSL_get0_peer_certificate(client.get())) {
    char cn[256] = {};
    X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, cn, sizeof cn);
    out.peer_cn = cn;
  }
  const unsigned char* data = nullptr;
  unsigned len = 0;
  SSL_get0_alpn_selected(client.get(), &data, &len);
  if (data) out.alpn.assign(reinterpret_cast<const char*>(data), len);
  out.server_saw_acme = certs::negotiated_acme_alpn(server.get());
  return out;
}

const std::string acme_wire = std::string("\x0a") + "acme-tls/1";
const std::string http_wire = std::string("\x02") + "h2" + "\x08" + "http/1.1";

}  // namespace

TEST_CASE("offers_acme_alpn reads the ALPN extension strictly", "[certs][acme]") {
  using certs::offers_acme_alpn;
  CHECK(offers_acme_alpn(std::string("\x00\x0b", 2) + acme_wire));
  CHECK(offers_acme_alpn(std::string("\x00\x17", 2) + http_wire + acme_wire));
  CHECK_FALSE(offers_acme_alpn(std::string("\x00\x0c", 2) + http_wire));
  CHECK_FALSE(offers_acme_alpn(""));
  CHECK_FALSE(offers_acme_alpn(std::string("\x00\x0c", 2) + acme_wire));  // length mismatch
  CHECK_FALSE(offers_acme_alpn(std::string("\x00\x0b", 2) + "\x0b" + "acme-tls/1"));  // overrun
  CHECK_FALSE(offers_acme_alpn(std::string("\x00\x01\x00", 3)));                      // empty name
}

TEST_CASE("tls-alpn-01: the challenge certificate for acme-tls/1, the listener's for the rest",
          "[certs][acme]") {
  const auto& pki = test::test_pki::get();
  auto& registry = certs::acme_challenges::instance();
  const auto store = certs::sni_store::build(test::modern_profile(), {pki.entry("server")},
                                             std::string("\x08") + "http/1.1");
  SSL_CTX* ctx = store->default_context();

  // Before anything is published: acme-tls/1 fails the handshake, an ordinary one is untouched.
  CHECK_FALSE(handshake(ctx, "mail.test", acme_wire).ok);
  auto plain = handshake(ctx, "mail.test", http_wire);
  REQUIRE(plain.ok);
  CHECK(plain.peer_cn == "localhost");
  CHECK(plain.alpn == "http/1.1");
  CHECK_FALSE(plain.server_saw_acme);

  registry.publish({"mail.test", read(pki.file("sni-a.crt")), read(pki.file("sni-a.key"))});
  CHECK(registry.size() == 1);
  const auto challenge = handshake(ctx, "Mail.Test", acme_wire);
  REQUIRE(challenge.ok);
  CHECK(challenge.peer_cn == "a.test");
  CHECK(challenge.alpn == "acme-tls/1");
  CHECK(challenge.server_saw_acme);

  // The same name without acme-tls/1 still gets the listener's certificate and ALPN.
  plain = handshake(ctx, "mail.test", http_wire);
  REQUIRE(plain.ok);
  CHECK(plain.peer_cn == "localhost");
  CHECK(plain.alpn == "http/1.1");
  // acme-tls/1 for another name: refused.
  CHECK_FALSE(handshake(ctx, "other.test", acme_wire).ok);
  CHECK_FALSE(handshake(ctx, "", acme_wire).ok);

  registry.withdraw("mail.test");
  CHECK(registry.size() == 0);
  CHECK_FALSE(handshake(ctx, "mail.test", acme_wire).ok);
}

TEST_CASE("acme_challenges refuses an unreadable challenge", "[certs][acme]") {
  auto& registry = certs::acme_challenges::instance();
  registry.publish({"bad.test", "not a certificate", "not a key"});
  CHECK(registry.size() == 0);
  CHECK(registry.last_error().find("bad.test") != std::string::npos);
}
