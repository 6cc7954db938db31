#include "acme/csr.hpp"

#include <openssl/x509v3.h>

#include <catch2/catch.hpp>

#include "acme/chain_check.hpp"
#include "acme_test_util.hpp"

using namespace tlsbridge::acme;

TEST_CASE("csr: signed by the certificate key, first name the subject, every name in the SAN",
          "[acme]") {
  pkey_ptr key = new_p256_key();
  const std::vector<std::string> names{"mail.example.org", "autodiscover.example.org",
                                       "owa.example.org"};
  const std::string der = make_csr_der(key.get(), names);
  REQUIRE_FALSE(der.empty());
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  X509_REQ* req = d2i_X509_REQ(nullptr, &p, static_cast<long>(der.size()));
  REQUIRE(req);
  CHECK(X509_REQ_verify(req, key.get()) == 1);
  CHECK(EVP_PKEY_eq(X509_REQ_get0_pubkey(req), key.get()) == 1);
  char cn[256] = {};
  X509_NAME_get_text_by_NID(X509_REQ_get_subject_name(req), NID_commonName, cn, sizeof cn);
  CHECK(std::string(cn) == "mail.example.org");
  STACK_OF(X509_EXTENSION)* exts = X509_REQ_get_extensions(req);
  auto* san =
      static_cast<GENERAL_NAMES*>(X509V3_get_d2i(exts, NID_subject_alt_name, nullptr, nullptr));
  REQUIRE(san);
  CHECK(test::san_names(san) == names);
  GENERAL_NAMES_free(san);
  sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
  X509_REQ_free(req);

  CHECK(make_csr_der(key.get(), {}).empty());
  CHECK(make_csr_der(key.get(), {"a.example,DNS:evil.example"}).empty());
}

TEST_CASE("chain check: the leaf must hold the request's key and cover every name", "[acme]") {
  pkey_ptr key = new_p256_key();
  pkey_ptr other = new_p256_key();
  pkey_ptr ca = new_p256_key();
  const std::vector<std::string> names{"mail.example.org", "owa.example.org"};
  CHECK(check_chain(test::issue_chain(key.get(), names, ca.get()), key.get(), names) == "");
  CHECK(check_chain(test::issue_chain(other.get(), names, ca.get()), key.get(), names)
            .find("public key") != std::string::npos);
  CHECK(check_chain(test::issue_chain(key.get(), {"mail.example.org"}, ca.get()), key.get(),
                    names) == "the leaf certificate does not cover owa.example.org");
  CHECK(check_chain("<html>not a chain</html>", key.get(), names).find("no PEM") !=
        std::string::npos);
}
