#include "certs/chain_collector.hpp"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <ctime>
#include <memory>

#include "common/ascii_case.hpp"

namespace tlsbridge::certs {
namespace {

// RFC 2253 one-line form, but UTF-8 kept as UTF-8 (strict RFC 2253 would print "M\C3\BCller");
// control characters are still escaped, and the audit log's JSON escapes the rest.
std::string name_text(const X509_NAME* name) {
  if (name == nullptr) return {};
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), &BIO_free);
  if (!bio) return {};
  X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  return len > 0 ? std::string(data, static_cast<std::size_t>(len)) : std::string();
}

std::string object_text(const ASN1_OBJECT* obj) {
  char buf[128];
  const int len = OBJ_obj2txt(buf, sizeof buf, obj, 0);  // long name, else the dotted OID
  return len > 0 ? std::string(buf, std::min<std::size_t>(len, sizeof buf - 1)) : std::string();
}

// The hash inside RSASSA-PSS parameters (RFC 4055 §3.1: absent means SHA-1).
std::string pss_hash(const X509_ALGOR* alg) {
  const ASN1_OBJECT* obj = nullptr;
  int ptype = 0;
  const void* pval = nullptr;
  X509_ALGOR_get0(&obj, &ptype, &pval, alg);
  if (ptype != V_ASN1_SEQUENCE || pval == nullptr) return "sha1";
  const auto* seq = static_cast<const ASN1_STRING*>(pval);
  const unsigned char* p = ASN1_STRING_get0_data(seq);
  RSA_PSS_PARAMS* params = d2i_RSA_PSS_PARAMS(nullptr, &p, ASN1_STRING_length(seq));
  if (params == nullptr) return "";
  std::string hash = "sha1";
  if (params->hashAlgorithm != nullptr) {
    const int nid = OBJ_obj2nid(params->hashAlgorithm->algorithm);
    hash = nid == NID_undef ? std::string() : ascii::lower(OBJ_nid2sn(nid));
  }
  RSA_PSS_PARAMS_free(params);
  return hash;
}

std::string key_type_name(EVP_PKEY* key) {
  switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_RSA:
      return "rsa";
    case EVP_PKEY_RSA_PSS:
      return "rsa-pss";
    case EVP_PKEY_EC:
      return "ec";
    case EVP_PKEY_ED25519:
      return "ed25519";
    case EVP_PKEY_ED448:
      return "ed448";
    case EVP_PKEY_DSA:
      return "dsa";
    case EVP_PKEY_DH:
      return "dh";
    default:
      break;
  }
  const char* name = EVP_PKEY_get0_type_name(key);
  return name != nullptr ? ascii::lower(name) : "unknown";
}

std::int64_t epoch_of(const ASN1_TIME* t) {
  std::tm tm{};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return 0;
  return static_cast<std::int64_t>(timegm(&tm));
}

std::string hex(const unsigned char* p, unsigned len) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned i = 0; i < len; ++i) {
    out += digits[p[i] >> 4];
    out += digits[p[i] & 0xf];
  }
  return out;
}

}  // namespace

policy::cert_evidence describe_certificate(X509* cert, int depth) {
  policy::cert_evidence ev;
  ev.depth = depth;
  if (cert == nullptr) return ev;
  ev.subject = name_text(X509_get_subject_name(cert));
  ev.issuer = name_text(X509_get_issuer_name(cert));

  const ASN1_BIT_STRING* sig = nullptr;
  const X509_ALGOR* alg = nullptr;
  X509_get0_signature(&sig, &alg, cert);
  const ASN1_OBJECT* alg_obj = nullptr;
  X509_ALGOR_get0(&alg_obj, nullptr, nullptr, alg);
  ev.sig_alg = object_text(alg_obj);
  // The hash comes from the algorithm's OID through OpenSSL's sigid table, never from computing
  // anything: md2WithRSAEncryption is still in the table although OpenSSL 3 cannot run MD2, which
  // is exactly how MD2 must be detected: no verify result can show it (docs/legacy-peers.md).
  const int sig_nid = OBJ_obj2nid(alg_obj);
  int md_nid = NID_undef;
  int pk_nid = NID_undef;
  if (sig_nid == NID_rsassaPss) {
    ev.sig_hash = pss_hash(alg);
  } else if (OBJ_find_sigid_algs(sig_nid, &md_nid, &pk_nid) == 1 && md_nid != NID_undef) {
    ev.sig_hash = ascii::lower(OBJ_nid2sn(md_nid));
  }  // else Ed25519/Ed448 (no separate hash) or an unknown OID: ""

  if (EVP_PKEY* key = X509_get0_pubkey(cert)) {
    ev.key_type = key_type_name(key);
    ev.key_bits = EVP_PKEY_get_bits(key);
  } else {
    ev.key_type = "unknown";
  }
  ev.not_before = epoch_of(X509_get0_notBefore(cert));
  ev.not_after = epoch_of(X509_get0_notAfter(cert));

  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned md_len = 0;
  if (X509_digest(cert, EVP_sha256(), md, &md_len) == 1) ev.sha256 = hex(md, md_len);

  // Self-signed = issued by itself by name and key identifiers. The signature is deliberately not
  // verified: an MD2-signed anchor cannot be verified by OpenSSL 3 at all, and whether a
  // self-signed anchor's own signature matters is policy's call (check_anchor_signature).
  ev.self_signed = X509_NAME_cmp(X509_get_subject_name(cert), X509_get_issuer_name(cert)) == 0 &&
                   X509_check_issued(cert, cert) == X509_V_OK;
  return ev;
}

policy::chain_evidence collect_chain(X509* leaf, STACK_OF(X509) * untrusted,
                                     const verify_settings& settings) {
  policy::chain_evidence chain;
  if (leaf == nullptr) return chain;

  // What the peer presented, in the order it sent it. A client-side SSL_get_peer_cert_chain
  // repeats the leaf; the server side does not.
  chain.certs.push_back(describe_certificate(leaf, 0));
  int depth = 1;
  for (int i = 0; untrusted != nullptr && i < sk_X509_num(untrusted); ++i) {
    X509* c = sk_X509_value(untrusted, i);
    if (X509_cmp(c, leaf) == 0) continue;
    chain.certs.push_back(describe_certificate(c, depth++));
  }

  if (settings.store != nullptr) {
    chain.verify_attempted = true;
    std::unique_ptr<X509_STORE_CTX, decltype(&X509_STORE_CTX_free)> ctx(X509_STORE_CTX_new(),
                                                                        &X509_STORE_CTX_free);
    if (ctx && X509_STORE_CTX_init(ctx.get(), settings.store, leaf, untrusted) == 1) {
      X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
      // Level 0 so that a SHA-1/MD5 signature or a small key does not turn into "untrusted"
      // (error 68/66): those are weak_signature/weak_key findings, judged on their own.
      X509_VERIFY_PARAM_set_auth_level(param, 0);
      // Validity dates are likewise judged from the evidence (expired / not_yet_valid), so that
      // an on_expired = "log" rule is not overridden by on_untrusted.
      X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_NO_CHECK_TIME);
      X509_STORE_CTX_set_purpose(ctx.get(), settings.purpose);
      // The host name is deliberately not a verification parameter: a mismatch would stop the
      // verification before the signatures are checked and report a trusted chain as untrusted.
      // The name is checked on its own below.
      if (X509_verify_cert(ctx.get()) == 1) {
        chain.trusted = true;
      } else {
        const int err = X509_STORE_CTX_get_error(ctx.get());
        chain.verify_error = X509_verify_cert_error_string(err);
        chain.verify_error_depth = X509_STORE_CTX_get_error_depth(ctx.get());
      }
    } else {
      chain.verify_error = "cannot initialise certificate verification";
    }
  }

  if (!settings.server_name.empty()) {
    chain.name_checked = true;
    chain.expected_name = settings.server_name;
    const std::string& name = settings.server_name;
    int r = X509_check_ip_asc(leaf, name.c_str(), 0);  // -2: not an IP literal
    if (r == -2) {
      r = X509_check_host(leaf, name.data(), name.size(), X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS,
                          nullptr);
    }
    chain.name_matches = r == 1;
  }
  return chain;
}

policy::chain_evidence collect_peer_chain(SSL* ssl, const verify_settings& settings) {
  if (ssl == nullptr) return {};
  std::unique_ptr<X509, decltype(&X509_free)> leaf(SSL_get1_peer_certificate(ssl), &X509_free);
  return collect_chain(leaf.get(), SSL_get_peer_cert_chain(ssl), settings);
}

}  // namespace tlsbridge::certs
