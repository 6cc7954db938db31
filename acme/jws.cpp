// RFC 7515 JWS in the flattened JSON serialization, signed ES256, as every ACME POST carries it.
#include "acme/jws.hpp"

#include <openssl/bn.h>
#include <openssl/ec.h>

#include <boost/json.hpp>
#include <memory>

#include "acme/base64url.hpp"

namespace tlsbridge::acme {

std::string ecdsa_der_to_raw(const std::string& der) {
  const auto* p = reinterpret_cast<const unsigned char*>(der.data());
  std::unique_ptr<ECDSA_SIG, decltype(&ECDSA_SIG_free)> sig(
      d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size())), ECDSA_SIG_free);
  if (!sig) return {};
  const BIGNUM* r = nullptr;
  const BIGNUM* s = nullptr;
  ECDSA_SIG_get0(sig.get(), &r, &s);
  unsigned char raw[64];
  if (BN_bn2binpad(r, raw, 32) != 32 || BN_bn2binpad(s, raw + 32, 32) != 32) return {};
  return std::string(reinterpret_cast<char*>(raw), sizeof raw);
}

std::string jws_sign(const account_key& key, const jws_header& header, const std::string& payload) {
  boost::json::object protected_header;
  protected_header["alg"] = "ES256";
  if (header.kid.empty()) {
    boost::json::error_code ec;
    protected_header["jwk"] = boost::json::parse(key.jwk_json(), ec);
  } else {
    protected_header["kid"] = header.kid;
  }
  protected_header["nonce"] = header.nonce;
  protected_header["url"] = header.url;
  const std::string protected64 = base64url(boost::json::serialize(protected_header));
  const std::string payload64 = base64url(payload);
  const std::string signing_input = protected64 + "." + payload64;

  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  size_t len = 0;
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.key()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &len,
                     reinterpret_cast<const unsigned char*>(signing_input.data()),
                     signing_input.size()) != 1)
    return {};
  std::string der(len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(der.data()), &len,
                     reinterpret_cast<const unsigned char*>(signing_input.data()),
                     signing_input.size()) != 1)
    return {};
  der.resize(len);
  const std::string raw = ecdsa_der_to_raw(der);
  if (raw.empty()) return {};
  boost::json::object body;
  body["protected"] = protected64;
  body["payload"] = payload64;
  body["signature"] = base64url(raw);
  return boost::json::serialize(body);
}

}  // namespace tlsbridge::acme
