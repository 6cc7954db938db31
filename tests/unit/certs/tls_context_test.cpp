#include "certs/tls_context.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <tuple>

#include "certs/chain_collector.hpp"
#include "certs/sni_store.hpp"
#include "test_pki.hpp"

using namespace tlsbridge;
using test::legacy_profile;
using test::modern_profile;

namespace {

struct ssl_deleter {
  void operator()(SSL* s) const { SSL_free(s); }
};
using ssl_ptr = std::unique_ptr<SSL, ssl_deleter>;

// Two SSL objects joined by an in-memory BIO pair: a real handshake without sockets.
struct tls_pair {
  ssl_ptr client;
  ssl_ptr server;

  tls_pair(SSL_CTX* client_ctx, SSL_CTX* server_ctx)
      : client(SSL_new(client_ctx)), server(SSL_new(server_ctx)) {
    BIO* client_bio = nullptr;
    BIO* server_bio = nullptr;
    REQUIRE(BIO_new_bio_pair(&client_bio, 0, &server_bio, 0) == 1);
    SSL_set_bio(client.get(), client_bio, client_bio);
    SSL_set_bio(server.get(), server_bio, server_bio);
    SSL_set_connect_state(client.get());
    SSL_set_accept_state(server.get());
  }

  // true when both sides completed; `error` holds OpenSSL's reason otherwise.
  bool handshake(std::string& error) {
    for (int round = 0; round < 50; ++round) {
      const int rc = SSL_do_handshake(client.get());
      const int rs = SSL_do_handshake(server.get());
      if (rc == 1 && rs == 1) return true;
      for (auto [ssl, r] : {std::pair{client.get(), rc}, std::pair{server.get(), rs}}) {
        if (r == 1) continue;
        const int e = SSL_get_error(ssl, r);
        if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
          error = (ssl == client.get() ? "client: " : "server: ") + certs::last_openssl_error();
          return false;
        }
      }
    }
    error = "handshake did not finish";
    return false;
  }
};

std::string peer_cn(SSL* ssl) {
  const auto chain = certs::collect_peer_chain(ssl, {});
  return chain.certs.empty() ? std::string() : chain.certs.front().subject;
}

}  // namespace

TEST_CASE("make_server_context: certificate loading per security level", "[certs][tls]") {
  const auto& pki = test::test_pki::get();
  SECTION("modern profile loads the sha256 chain") {
    CHECK(certs::make_server_context(modern_profile(), pki.entry("server")));
  }
  SECTION("modern profile (default level 2) refuses SHA-1, MD5 and RSA-1024 with the reason") {
    using Catch::Matchers::Contains;
    CHECK_THROWS_WITH(certs::make_server_context(modern_profile(), pki.entry("sha1")),
                      Contains("sha1.chain.pem") && Contains("ca md too weak"));
    CHECK_THROWS_WITH(certs::make_server_context(modern_profile(), pki.entry("md5leaf")),
                      Contains("md5leaf.chain.pem") && Contains("ca md too weak"));
    CHECK_THROWS_WITH(certs::make_server_context(modern_profile(), pki.entry("rsa1024")),
                      Contains("rsa1024.chain.pem") && Contains("ee key too small"));
  }
  SECTION("legacy profile (level 0 set before loading) takes all of them") {
    for (const char* base : {"server", "sha1", "md5leaf", "rsa1024", "expired"}) {
      INFO(base);
      auto ctx = certs::make_server_context(legacy_profile(), pki.entry(base));
      REQUIRE(ctx);
      CHECK(SSL_CTX_get_security_level(ctx.get()) == 0);
      CHECK(SSL_CTX_get_min_proto_version(ctx.get()) == TLS1_VERSION);
    }
  }
  SECTION("@SECLEVEL=0 in the cipher string alone is enough") {
    auto profile = modern_profile();
    profile.ciphers = "DEFAULT:@SECLEVEL=0";
    CHECK(certs::make_server_context(profile, pki.entry("sha1")));
  }
  SECTION("options: no renegotiation, server preference, no compression, release buffers") {
    auto ctx = certs::make_server_context(modern_profile(), pki.entry("server"));
    const auto opts = SSL_CTX_get_options(ctx.get());
    CHECK((opts & SSL_OP_NO_RENEGOTIATION) != 0);
    CHECK((opts & SSL_OP_CIPHER_SERVER_PREFERENCE) != 0);
    CHECK((opts & SSL_OP_NO_COMPRESSION) != 0);
    CHECK((SSL_CTX_get_mode(ctx.get()) & SSL_MODE_RELEASE_BUFFERS) != 0);
    CHECK(SSL_CTX_get_security_level(ctx.get()) == 2);  // modern keeps OpenSSL's default
  }
  SECTION("key mismatch, missing files and bad profiles throw precise messages") {
    using Catch::Matchers::Contains;
    config::cert_entry mismatched{pki.file("server.chain.pem"), pki.file("sni-a.key"), {}, {}};
    CHECK_THROWS_WITH(certs::make_server_context(modern_profile(), mismatched),
                      Contains("sni-a.key") && Contains("does not match certificate"));
    config::cert_entry missing{pki.file("nope.pem"), pki.file("server.key"), {}, {}};
    CHECK_THROWS_WITH(certs::make_server_context(modern_profile(), missing),
                      Contains("nope.pem") && Contains("OpenSSL: "));
    auto bad = modern_profile();
    bad.ciphers = "NOT-A-CIPHER";
    CHECK_THROWS_WITH(certs::make_server_context(bad, pki.entry("server")),
                      Contains("NOT-A-CIPHER") && Contains("no cipher match"));
    bad = modern_profile();
    bad.groups = "P-999";
    CHECK_THROWS_WITH(certs::make_client_context(bad), Contains("P-999"));
  }
}

TEST_CASE("make_trust_store and last_openssl_error", "[certs][tls]") {
  CHECK(certs::make_trust_store(test::test_pki::get().file("ca.crt")));
  CHECK(certs::make_trust_store({}));  // system default paths
  CHECK_THROWS_WITH(certs::make_trust_store("/nonexistent/ca.pem"),
                    Catch::Matchers::Contains("/nonexistent/ca.pem"));
  ERR_clear_error();
  CHECK(certs::last_openssl_error("nothing") == "nothing");
}

TEST_CASE("handshake: modern server, client collects depth 0 and 1", "[certs][tls][handshake]") {
  const auto& pki = test::test_pki::get();
  auto server_ctx = certs::make_server_context(modern_profile(), pki.entry("server"));
  auto client_ctx = certs::make_client_context(modern_profile());
  tls_pair pair(client_ctx.get(), server_ctx.get());
  SSL_set_tlsext_host_name(pair.client.get(), "localhost");
  std::string error;
  REQUIRE(pair.handshake(error));
  CHECK(SSL_version(pair.client.get()) == TLS1_3_VERSION);

  auto store = certs::make_trust_store(pki.file("ca.crt"));
  const auto chain = certs::collect_peer_chain(pair.client.get(), {store.get(), "localhost"});
  REQUIRE(chain.certs.size() == 2);
  CHECK(chain.certs[0].depth == 0);
  CHECK(chain.certs[0].subject == "CN=localhost,O=tlsbridge test");
  CHECK(chain.certs[1].depth == 1);
  CHECK(chain.trusted);
  CHECK(chain.name_matches);

  // No client certificate was asked for: the server side has nothing to judge.
  CHECK(certs::collect_peer_chain(pair.server.get(), {store.get(), ""}).certs.empty());
}

TEST_CASE("handshake: server side collects a client chain (leaf not repeated)",
          "[certs][tls][handshake]") {
  const auto& pki = test::test_pki::get();
  auto server_ctx = certs::make_server_context(modern_profile(), pki.entry("server"));
  auto client_ctx = certs::make_client_context(modern_profile());
  tls_pair pair(client_ctx.get(), server_ctx.get());
  // Request the certificate, accept anything: judging is collect_chain's and policy's job.
  SSL_set_verify(pair.server.get(), SSL_VERIFY_PEER, [](int, X509_STORE_CTX*) { return 1; });
  REQUIRE(SSL_use_certificate_chain_file(pair.client.get(),
                                         pki.file("client.chain.pem").string().c_str()) == 1);
  REQUIRE(SSL_use_PrivateKey_file(pair.client.get(), pki.file("client.key").string().c_str(),
                                  SSL_FILETYPE_PEM) == 1);
  std::string error;
  REQUIRE(pair.handshake(error));
  auto store = certs::make_trust_store(pki.file("ca.crt"));
  const auto chain = certs::collect_peer_chain(pair.server.get(), {store.get(), ""});
  REQUIRE(chain.certs.size() == 2);
  CHECK(chain.certs[0].subject == "CN=client.test,O=tlsbridge test");
  CHECK(chain.certs[1].depth == 1);
  CHECK(chain.trusted);
}

TEST_CASE("handshake: legacy TLS 1.0 with a SHA-1 certificate", "[certs][tls][handshake]") {
  const auto& pki = test::test_pki::get();
  auto backend = legacy_profile();
  backend.max_version = config::tls1_0;  // what the 2008-era host speaks
  auto server_ctx = certs::make_server_context(backend, pki.entry("sha1"));
  auto store = certs::make_trust_store(pki.file("ca.crt"));

  SECTION("the legacy client profile gets through and sees the SHA-1 leaf") {
    auto client_ctx = certs::make_client_context(legacy_profile());
    tls_pair pair(client_ctx.get(), server_ctx.get());
    std::string error;
    REQUIRE(pair.handshake(error));
    CHECK(SSL_version(pair.client.get()) == TLS1_VERSION);
    const auto chain = certs::collect_peer_chain(pair.client.get(), {store.get(), "localhost"});
    REQUIRE(chain.certs.size() == 1);
    CHECK(chain.certs[0].sig_hash == "sha1");
    CHECK(chain.trusted);
  }
  SECTION("the modern client profile cannot talk to it") {
    auto client_ctx = certs::make_client_context(modern_profile());
    tls_pair pair(client_ctx.get(), server_ctx.get());
    std::string error;
    CHECK_FALSE(pair.handshake(error));
    CHECK_THAT(error, Catch::Matchers::Contains("client: OpenSSL: unsupported protocol"));
  }
}

TEST_CASE("handshake: modern client, TLS 1.2 server with weak certificates",
          "[certs][tls][handshake]") {
  // SSL_VERIFY_NONE: the client's level 2 does not refuse the SHA-1/MD5 chain during the
  // handshake (OpenSSL records X509 error 68 as the verify result and goes on); the evidence is
  // there for policy to judge.
  const auto& pki = test::test_pki::get();
  auto server_profile = legacy_profile();  // TLS 1.0..1.2, level 0 so the certificates load
  auto client_ctx = certs::make_client_context(modern_profile());
  REQUIRE(SSL_CTX_load_verify_locations(client_ctx.get(), pki.file("ca.crt").string().c_str(),
                                        nullptr) == 1);
  for (auto [base, depth, hash] :
       {std::tuple{"sha1", 0, "sha1"}, std::tuple{"md5leaf", 1, "md5"}}) {
    INFO(base);
    auto server_ctx = certs::make_server_context(server_profile, pki.entry(base));
    tls_pair pair(client_ctx.get(), server_ctx.get());
    std::string error;
    REQUIRE(pair.handshake(error));
    CHECK(SSL_version(pair.client.get()) == TLS1_2_VERSION);
    CHECK(SSL_get_verify_result(pair.client.get()) == X509_V_ERR_CA_MD_TOO_WEAK);
    const auto chain = certs::collect_peer_chain(pair.client.get(), {});
    REQUIRE(chain.certs.size() == static_cast<std::size_t>(depth + 1));
    CHECK(chain.certs[depth].sig_hash == hash);
  }
}

TEST_CASE("handshake: ALPN picks http/1.1 from the client's list", "[certs][tls][handshake]") {
  const auto& pki = test::test_pki::get();
  auto server_ctx = certs::make_server_context(modern_profile(), pki.entry("server"),
                                               std::string("\x08http/1.1"));
  auto client_ctx = certs::make_client_context(modern_profile());
  static const unsigned char offer[] = "\x02h2\x08http/1.1";
  SECTION("overlap") {
    tls_pair pair(client_ctx.get(), server_ctx.get());
    REQUIRE(SSL_set_alpn_protos(pair.client.get(), offer, sizeof offer - 1) == 0);
    std::string error;
    REQUIRE(pair.handshake(error));
    const unsigned char* proto = nullptr;
    unsigned len = 0;
    SSL_get0_alpn_selected(pair.client.get(), &proto, &len);
    CHECK(std::string(reinterpret_cast<const char*>(proto), len) == "http/1.1");
  }
  SECTION("no overlap: the handshake goes on without ALPN") {
    static const unsigned char h2_only[] = "\x02h2";
    tls_pair pair(client_ctx.get(), server_ctx.get());
    REQUIRE(SSL_set_alpn_protos(pair.client.get(), h2_only, sizeof h2_only - 1) == 0);
    std::string error;
    REQUIRE(pair.handshake(error));
    const unsigned char* proto = nullptr;
    unsigned len = 0;
    SSL_get0_alpn_selected(pair.client.get(), &proto, &len);
    CHECK(len == 0);
  }
}

TEST_CASE("sni_store: names and selection", "[certs][sni]") {
  const auto& pki = test::test_pki::get();
  auto wild = pki.entry("sni-b");
  wild.names = {"*.Wild.Test"};
  const auto store = certs::sni_store::build(
      modern_profile(), {pki.entry("server"), pki.entry("sni-a"), pki.entry("sni-b"), wild});
  CHECK(store->names_of(0) == std::vector<std::string>{"localhost", "mail.test"});
  CHECK(store->names_of(1) == std::vector<std::string>{"a.test"});
  CHECK(store->names_of(3) == std::vector<std::string>{"*.wild.test"});

  SSL_CTX* def = store->default_context();
  CHECK(store->select("localhost") == def);
  CHECK(store->select("A.TEST") != def);
  CHECK(store->select("A.TEST") == store->select("a.test."));
  CHECK(store->select("b.test") != store->select("a.test"));
  CHECK(store->select("x.wild.test") != def);
  CHECK(store->select("x.wild.test") != store->select("b.test"));  // its own context
  CHECK(store->select("a.b.wild.test") == def);                    // one label only
  CHECK(store->select("wild.test") == def);
  CHECK(store->select("unknown.example") == def);
  CHECK(store->select("") == def);

  SECTION("the servername callback switches certificates during the handshake") {
    auto client_ctx = certs::make_client_context(modern_profile());
    for (auto [sni, cn] : {std::pair{"b.test", "CN=b.test,O=tlsbridge test"},
                           std::pair{"A.test", "CN=a.test,O=tlsbridge test"},
                           std::pair{"nobody.test", "CN=localhost,O=tlsbridge test"},
                           std::pair{"", "CN=localhost,O=tlsbridge test"}}) {
      INFO("SNI " << sni);
      tls_pair pair(client_ctx.get(), store->default_context());
      if (*sni != '\0') SSL_set_tlsext_host_name(pair.client.get(), sni);
      std::string error;
      REQUIRE(pair.handshake(error));
      CHECK(peer_cn(pair.client.get()) == cn);
    }
  }
  SECTION("an empty [[certs]] list is an error") {
    CHECK_THROWS(certs::sni_store::build(modern_profile(), {}));
  }
}
