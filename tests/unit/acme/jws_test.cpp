#include "acme/jws.hpp"

#include <openssl/bn.h>
#include <openssl/ec.h>

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include "acme_test_util.hpp"

using namespace tlsbridge::acme;
namespace json = boost::json;

namespace {

// Verifies an ES256 JWS with OpenSSL: R||S turned back into DER, checked over protected.payload.
bool verify(const json::object& jws, EVP_PKEY* key) {
  const std::string input = std::string(jws.at("protected").as_string()) + "." +
                            std::string(jws.at("payload").as_string());
  const std::string raw = test::unb64(std::string(jws.at("signature").as_string()));
  if (raw.size() != 64) return false;
  ECDSA_SIG* sig = ECDSA_SIG_new();
  ECDSA_SIG_set0(sig, BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()), 32, nullptr),
                 BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data() + 32), 32, nullptr));
  unsigned char* der = nullptr;
  const int len = i2d_ECDSA_SIG(sig, &der);
  ECDSA_SIG_free(sig);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  const bool ok =
      EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, key) == 1 &&
      EVP_DigestVerify(ctx, der, static_cast<size_t>(len),
                       reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
  EVP_MD_CTX_free(ctx);
  OPENSSL_free(der);
  return ok;
}

}  // namespace

TEST_CASE("jws: newAccount style carries the jwk, verifies with OpenSSL", "[acme]") {
  auto key = account_key::generate();
  REQUIRE(key);
  const std::string text = jws_sign(*key, {"nonce-1", "https://ca.test/new-acct", ""},
                                    R"({"termsOfServiceAgreed":true})");
  const json::object jws = json::parse(text).as_object();
  CHECK(jws.size() == 3);
  const json::object header =
      json::parse(test::unb64(std::string(jws.at("protected").as_string()))).as_object();
  CHECK(header.at("alg") == "ES256");
  CHECK(header.at("nonce") == "nonce-1");
  CHECK(header.at("url") == "https://ca.test/new-acct");
  CHECK_FALSE(header.contains("kid"));
  CHECK(json::serialize(header.at("jwk")) == key->jwk_json());
  CHECK(test::unb64(std::string(jws.at("payload").as_string())) ==
        R"({"termsOfServiceAgreed":true})");
  CHECK(verify(jws, key->key()));

  // Another key does not verify it, nor does a changed payload.
  auto other = account_key::generate();
  CHECK_FALSE(verify(jws, other->key()));
  json::object tampered = jws;
  tampered["payload"] = "e30";
  CHECK_FALSE(verify(tampered, key->key()));
}

TEST_CASE("jws: POST-as-GET has the kid and an empty payload", "[acme]") {
  auto key = account_key::generate();
  const json::object jws =
      json::parse(jws_sign(*key, {"n2", "https://ca.test/authz/1", "https://ca.test/acct/7"}, ""))
          .as_object();
  const json::object header =
      json::parse(test::unb64(std::string(jws.at("protected").as_string()))).as_object();
  CHECK(header.at("kid") == "https://ca.test/acct/7");
  CHECK_FALSE(header.contains("jwk"));
  CHECK(jws.at("payload") == "");
  CHECK(verify(jws, key->key()));
}

TEST_CASE("jws: DER signature to R||S pads short integers", "[acme]") {
  ECDSA_SIG* sig = ECDSA_SIG_new();
  BIGNUM* r = BN_new();
  BIGNUM* s = BN_new();
  BN_set_word(r, 0x0102);
  BN_set_word(s, 0xff);
  ECDSA_SIG_set0(sig, r, s);
  unsigned char* der = nullptr;
  const int len = i2d_ECDSA_SIG(sig, &der);
  const std::string raw = ecdsa_der_to_raw(std::string(reinterpret_cast<char*>(der), len));
  OPENSSL_free(der);
  ECDSA_SIG_free(sig);
  REQUIRE(raw.size() == 64);
  CHECK(raw.substr(0, 30) == std::string(30, '\0'));
  CHECK(raw.substr(30, 2) == "\x01\x02");
  CHECK(raw.substr(32, 31) == std::string(31, '\0'));
  CHECK(raw[63] == '\xff');
  CHECK(ecdsa_der_to_raw("garbage").empty());
}
