#include "acme/account_key.hpp"

#include <openssl/core_names.h>
#include <openssl/param_build.h>

#include <catch2/catch.hpp>

#include "acme/base64url.hpp"
#include "acme/obtain.hpp"
#include "acme_test_util.hpp"

using namespace tlsbridge::acme;

namespace {

// The ES256 key of RFC 7515 Appendix A.3 (a published test vector), built from its JWK members.
std::string rfc7515_a3_key_pem() {
  const std::string d = test::unb64("jpsQnnGQmL-YBIffH1136cLWNvBnC_hTRVmjmQ1wkP8");
  const std::string x = test::unb64("f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU");
  const std::string y = test::unb64("x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0");
  const std::string pub = "\x04" + x + y;
  BIGNUM* priv = BN_bin2bn(reinterpret_cast<const unsigned char*>(d.data()), 32, nullptr);
  OSSL_PARAM_BLD* bld = OSSL_PARAM_BLD_new();
  OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0);
  OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, priv);
  OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub.data(), pub.size());
  OSSL_PARAM* params = OSSL_PARAM_BLD_to_param(bld);
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr);
  EVP_PKEY* key = nullptr;
  EVP_PKEY_fromdata_init(ctx);
  EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_KEYPAIR, params);
  std::string pem = key ? private_key_pem(key) : std::string();
  EVP_PKEY_free(key);
  EVP_PKEY_CTX_free(ctx);
  OSSL_PARAM_free(params);
  OSSL_PARAM_BLD_free(bld);
  BN_free(priv);
  return pem;
}

}  // namespace

TEST_CASE("base64url: RFC 4648 test vectors, URL alphabet, no padding", "[acme]") {
  CHECK(base64url("") == "");
  CHECK(base64url("f") == "Zg");
  CHECK(base64url("fo") == "Zm8");
  CHECK(base64url("foo") == "Zm9v");
  CHECK(base64url("foob") == "Zm9vYg");
  CHECK(base64url("fooba") == "Zm9vYmE");
  CHECK(base64url("foobar") == "Zm9vYmFy");
  CHECK(base64url("\xfb\xff\xfe") == "-__-");
}

TEST_CASE("account key: the JWK and RFC 7638 thumbprint of RFC 7515's ES256 key", "[acme]") {
  std::string error;
  const auto key = account_key::load(rfc7515_a3_key_pem(), error);
  REQUIRE(key);
  CHECK(key->jwk_json() ==
        R"({"crv":"P-256","kty":"EC","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",)"
        R"("y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"})");
  // Computed independently: printf '<the JWK above>' | openssl dgst -sha256 -binary | base64url
  CHECK(key->thumbprint() == "oKIywvGUpTVTyxMQ3bwIIeQUudfr_CkLMjCE19ECD-U");
}

TEST_CASE("account key: generated, written and loaded back; other keys refused", "[acme]") {
  const std::string pem = generate_account_key_pem();
  REQUIRE(pem.find("PRIVATE KEY") != std::string::npos);
  std::string error;
  const auto key = account_key::load(pem, error);
  REQUIRE(key);
  CHECK(key->thumbprint().size() == 43);
  CHECK(account_key::load(key->pem(), error)->thumbprint() == key->thumbprint());

  CHECK_FALSE(account_key::load("not a key", error));
  CHECK(error.find("not a PEM private key") != std::string::npos);
  pkey_ptr p384(EVP_EC_gen("P-384"));
  CHECK_FALSE(account_key::load(private_key_pem(p384.get()), error));
  CHECK(error.find("P-256") != std::string::npos);
}

namespace {
struct no_responder : challenge_responder {
  void publish(const alpn_challenge&) override {}
  void withdraw(const std::string&) override {}
};
}  // namespace

TEST_CASE("obtain: a bad account key fails at step account; a stop request at once", "[acme]") {
  no_responder responder;
  order_request request;
  request.directory_url = "https://127.0.0.1:9/dir";
  request.names = {"mail.example.org"};
  request.account_key_pem = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
  auto result = obtain(request, responder, {});
  CHECK_FALSE(result.ok);
  CHECK(result.step == "account");

  request.account_key_pem = generate_account_key_pem();
  std::stop_source stop;
  stop.request_stop();
  result = obtain(request, responder, stop.get_token());
  CHECK(result.step == "stopped");
  CHECK(result.chain_pem.empty());
}
