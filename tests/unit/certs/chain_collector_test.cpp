#include "certs/chain_collector.hpp"

#include <openssl/x509.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstring>
#include <vector>

#include "certs/tls_context.hpp"
#include "test_pki.hpp"

using namespace tlsbridge;
using test::load_cert;
using test::make_stack;

namespace {

// A copy of `name` whose signature algorithm OID (both in the TBS and outside it) is rewritten
// from sha1WithRSAEncryption (1.2.840.113549.1.1.5) to 1.2.840.113549.1.1.<last>: 2 = md2, 3 =
// md4. The signature no longer matches, which is the point: detection must go by OID alone.
test::x509_ptr with_rsa_sig_oid(const char* name, unsigned char last) {
  auto cert = load_cert(name);
  unsigned char* der = nullptr;
  const int len = i2d_X509(cert.get(), &der);
  std::vector<unsigned char> bytes(der, der + len);
  OPENSSL_free(der);
  const unsigned char sha1_rsa[] = {0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
                                    0xf7, 0x0d, 0x01, 0x01, 0x05};
  int replaced = 0;
  for (auto it = bytes.begin();
       (it = std::search(it, bytes.end(), std::begin(sha1_rsa), std::end(sha1_rsa))) != bytes.end();
       ++replaced) {
    it += sizeof sha1_rsa;
    *(it - 1) = last;
  }
  REQUIRE(replaced == 2);
  const unsigned char* p = bytes.data();
  test::x509_ptr out(d2i_X509(nullptr, &p, static_cast<long>(bytes.size())));
  REQUIRE(out);
  return out;
}

}  // namespace

TEST_CASE("describe_certificate: a sha256 RSA leaf", "[certs][chain]") {
  auto cert = load_cert("server.crt");
  const auto ev = certs::describe_certificate(cert.get(), 0);
  CHECK(ev.depth == 0);
  CHECK(ev.subject == "CN=localhost,O=tlsbridge test");
  CHECK(ev.issuer == "CN=tlsbridge test intermediate CA,O=tlsbridge test");
  CHECK(ev.sig_alg == "sha256WithRSAEncryption");
  CHECK(ev.sig_hash == "sha256");
  CHECK(ev.key_type == "rsa");
  CHECK(ev.key_text() == "rsa:2048");
  CHECK(ev.sha256.size() == 64);
  CHECK(ev.sha256.find_first_not_of("0123456789abcdef") == std::string::npos);
  CHECK(ev.not_before < ev.not_after);
  CHECK_FALSE(ev.self_signed);
}

TEST_CASE("describe_certificate: weak hashes and keys", "[certs][chain]") {
  SECTION("sha1") {
    auto cert = load_cert("sha1.crt");
    const auto ev = certs::describe_certificate(cert.get(), 0);
    CHECK(ev.sig_alg == "sha1WithRSAEncryption");
    CHECK(ev.sig_hash == "sha1");
    CHECK_FALSE(ev.self_signed);
  }
  SECTION("md5 intermediate") {
    auto cert = load_cert("md5inter.crt");
    const auto ev = certs::describe_certificate(cert.get(), 1);
    CHECK(ev.depth == 1);
    CHECK(ev.sig_alg == "md5WithRSAEncryption");
    CHECK(ev.sig_hash == "md5");
  }
  SECTION("md2, recognised by OID although OpenSSL 3 cannot compute MD2") {
    auto cert = with_rsa_sig_oid("sha1.crt", 0x02);
    const auto ev = certs::describe_certificate(cert.get(), 0);
    CHECK(ev.sig_alg == "md2WithRSAEncryption");
    CHECK(ev.sig_hash == "md2");
  }
  SECTION("md4, by OID") {
    auto cert = with_rsa_sig_oid("sha1.crt", 0x03);
    const auto ev = certs::describe_certificate(cert.get(), 0);
    CHECK(ev.sig_alg == "md4WithRSAEncryption");
    CHECK(ev.sig_hash == "md4");
  }
  SECTION("rsa-1024") {
    auto cert = load_cert("rsa1024.crt");
    const auto ev = certs::describe_certificate(cert.get(), 0);
    CHECK(ev.key_text() == "rsa:1024");
    CHECK(ev.sig_hash == "sha256");
  }
}

TEST_CASE("describe_certificate: dates and self-signedness", "[certs][chain]") {
  auto expired = load_cert("expired.crt");
  const auto ev = certs::describe_certificate(expired.get(), 0);
  CHECK(ev.not_before == 1577836800);  // 2020-01-01T00:00:00Z
  CHECK(ev.not_after == 1609459200);   // 2021-01-01T00:00:00Z

  auto ca = load_cert("ca.crt");
  CHECK(certs::describe_certificate(ca.get(), 1).self_signed);
  auto selfsigned = load_cert("selfsigned.crt");
  CHECK(certs::describe_certificate(selfsigned.get(), 0).self_signed);
  auto inter = load_cert("inter.crt");
  CHECK_FALSE(certs::describe_certificate(inter.get(), 1).self_signed);
}

TEST_CASE("describe_certificate: null certificate gives empty evidence", "[certs][chain]") {
  const auto ev = certs::describe_certificate(nullptr, 3);
  CHECK(ev.depth == 3);
  CHECK(ev.subject.empty());
}

TEST_CASE("collect_chain: good chain against the test CA", "[certs][chain]") {
  auto store = certs::make_trust_store(test::test_pki::get().file("ca.crt"));
  auto leaf = load_cert("server.crt");

  SECTION("client-side stack repeats the leaf: it is listed once") {
    auto stack = make_stack({"server.crt", "inter.crt"});
    const auto chain = certs::collect_chain(leaf.get(), stack.get(), {store.get(), "localhost"});
    REQUIRE(chain.certs.size() == 2);
    CHECK(chain.certs[0].depth == 0);
    CHECK(chain.certs[1].depth == 1);
    CHECK(chain.certs[1].subject == "CN=tlsbridge test intermediate CA,O=tlsbridge test");
    CHECK(chain.verify_attempted);
    CHECK(chain.trusted);
    CHECK(chain.verify_error.empty());
    CHECK(chain.name_checked);
    CHECK(chain.name_matches);
  }
  SECTION("a name mismatch does not make the chain untrusted") {
    auto stack = make_stack({"inter.crt"});
    const auto chain = certs::collect_chain(leaf.get(), stack.get(), {store.get(), "other.test"});
    CHECK(chain.certs.size() == 2);
    CHECK(chain.trusted);
    CHECK(chain.name_checked);
    CHECK_FALSE(chain.name_matches);
  }
  SECTION("SAN DNS and IP names match, case-insensitively") {
    auto stack = make_stack({"inter.crt"});
    CHECK(certs::collect_chain(leaf.get(), stack.get(), {store.get(), "MAIL.test"}).name_matches);
    CHECK(certs::collect_chain(leaf.get(), stack.get(), {store.get(), "127.0.0.1"}).name_matches);
    CHECK_FALSE(
        certs::collect_chain(leaf.get(), stack.get(), {store.get(), "127.0.0.2"}).name_matches);
  }
  SECTION("missing intermediate: untrusted, with OpenSSL's reason and depth") {
    const auto chain = certs::collect_chain(leaf.get(), nullptr, {store.get(), ""});
    CHECK(chain.certs.size() == 1);
    CHECK_FALSE(chain.trusted);
    CHECK(chain.verify_error == "unable to get local issuer certificate");
    CHECK(chain.verify_error_depth == 0);
    CHECK_FALSE(chain.name_checked);
  }
  SECTION("no store, no name: evidence only") {
    auto stack = make_stack({"inter.crt"});
    const auto chain = certs::collect_chain(leaf.get(), stack.get(), {});
    CHECK(chain.certs.size() == 2);
    CHECK_FALSE(chain.verify_attempted);
    CHECK_FALSE(chain.trusted);
    CHECK_FALSE(chain.name_checked);
  }
  SECTION("no leaf: empty evidence") {
    const auto chain = certs::collect_chain(nullptr, nullptr, {store.get(), "localhost"});
    CHECK(chain.certs.empty());
    CHECK_FALSE(chain.verify_attempted);
  }
}

TEST_CASE("collect_chain: weak chains verify at auth level 0", "[certs][chain]") {
  auto store = certs::make_trust_store(test::test_pki::get().file("ca.crt"));

  SECTION("md5 intermediate: evidence at depth 1, and still trusted (MD5 is computable)") {
    auto leaf = load_cert("md5leaf.crt");
    auto stack = make_stack({"md5inter.crt"});
    const auto chain = certs::collect_chain(leaf.get(), stack.get(), {store.get(), "localhost"});
    REQUIRE(chain.certs.size() == 2);
    CHECK(chain.certs[0].sig_hash == "sha256");
    CHECK(chain.certs[1].depth == 1);
    CHECK(chain.certs[1].sig_hash == "md5");
    CHECK(chain.certs[1].sig_alg == "md5WithRSAEncryption");
    CHECK(chain.trusted);
    CHECK(chain.name_matches);
  }
  SECTION("sha1 leaf signed by the root: trusted") {
    auto leaf = load_cert("sha1.crt");
    const auto chain = certs::collect_chain(leaf.get(), nullptr, {store.get(), "localhost"});
    CHECK(chain.certs.at(0).sig_hash == "sha1");
    CHECK(chain.trusted);
    CHECK(chain.name_matches);
  }
  SECTION("md2 signature cannot be verified: untrusted as well as weak") {
    auto leaf = with_rsa_sig_oid("sha1.crt", 0x02);
    const auto chain = certs::collect_chain(leaf.get(), nullptr, {store.get(), ""});
    CHECK(chain.certs.at(0).sig_hash == "md2");
    CHECK_FALSE(chain.trusted);
    CHECK(chain.verify_error == "certificate signature failure");
    CHECK(chain.verify_error_depth == 0);
  }
  SECTION("rsa-1024 leaf: trusted at level 0") {
    auto leaf = load_cert("rsa1024.crt");
    auto stack = make_stack({"inter.crt"});
    CHECK(certs::collect_chain(leaf.get(), stack.get(), {store.get(), ""}).trusted);
  }
  SECTION("expired leaf: dates are evidence, not a trust failure") {
    auto leaf = load_cert("expired.crt");
    auto stack = make_stack({"inter.crt"});
    const auto chain = certs::collect_chain(leaf.get(), stack.get(), {store.get(), ""});
    CHECK(chain.trusted);
    CHECK(chain.certs.at(0).not_after == 1609459200);
  }
  SECTION("self-signed leaf: untrusted") {
    auto leaf = load_cert("selfsigned.crt");
    const auto chain = certs::collect_chain(leaf.get(), nullptr, {store.get(), "localhost"});
    CHECK(chain.certs.at(0).self_signed);
    CHECK_FALSE(chain.trusted);
    CHECK(chain.verify_error == "self-signed certificate");
    CHECK(chain.verify_error_depth == 0);
    CHECK(chain.name_matches);
  }
}
