#include "acme/challenge_cert.hpp"

#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include <catch2/catch.hpp>

#include "acme_test_util.hpp"

using namespace tlsbridge::acme;

TEST_CASE(
    "challenge certificate: RFC 8737 acmeIdentifier, critical, SHA-256 of the key authorization",
    "[acme]") {
  const std::string key_auth = key_authorization("evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA",
                                                 "oKIywvGUpTVTyxMQ3bwIIeQUudfr_CkLMjCE19ECD-U");
  CHECK(key_auth ==
        "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.oKIywvGUpTVTyxMQ3bwIIeQUudfr_CkLMjCE19ECD-U");
  std::string error;
  const auto challenge = make_challenge_cert("mail.example.org", key_auth, error);
  REQUIRE(challenge);
  CHECK(challenge->name == "mail.example.org");
  auto cert = test::parse_cert(challenge->cert_pem);
  auto key = test::parse_key(challenge->key_pem);
  REQUIRE(cert);
  REQUIRE(key);
  CHECK(X509_check_private_key(cert.get(), key.get()) == 1);
  CHECK(X509_verify(cert.get(), key.get()) == 1);  // self-signed

  auto* san = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert.get(), NID_subject_alt_name, nullptr, nullptr));
  REQUIRE(san);
  CHECK(test::san_names(san) == std::vector<std::string>{"mail.example.org"});
  GENERAL_NAMES_free(san);

  ASN1_OBJECT* oid = OBJ_txt2obj("1.3.6.1.5.5.7.1.31", 1);
  const int index = X509_get_ext_by_OBJ(cert.get(), oid, -1);
  ASN1_OBJECT_free(oid);
  REQUIRE(index >= 0);
  X509_EXTENSION* ext = X509_get_ext(cert.get(), index);
  CHECK(X509_EXTENSION_get_critical(ext) == 1);
  const ASN1_OCTET_STRING* value = X509_EXTENSION_get_data(ext);
  const std::string bytes(reinterpret_cast<const char*>(ASN1_STRING_get0_data(value)),
                          static_cast<size_t>(ASN1_STRING_length(value)));
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(key_auth.data()), key_auth.size(), digest);
  CHECK(bytes == std::string("\x04\x20", 2) + std::string(reinterpret_cast<char*>(digest), 32));

  CHECK_FALSE(make_challenge_cert("a.example,DNS:b.example", key_auth, error));
}
