#include "policy/chain_findings.hpp"

#include <algorithm>

namespace tlsbridge::policy {
namespace {

bool is_weak_hash(const std::string& hash, const config::policy_config& policy) {
  // "" is Ed25519/Ed448 (no separate hash) or an OID the collector could not map: nothing to judge.
  if (hash.empty()) return false;
  return std::find(policy.weak_signatures.begin(), policy.weak_signatures.end(), hash) !=
         policy.weak_signatures.end();
}

bool is_weak_key(const cert_evidence& cert, const config::policy_config& policy) {
  const std::string& type = cert.key_type;
  // DSA's strength is its modulus size, like RSA's (NIST SP 800-57 table 2), so one threshold.
  if (type == "rsa" || type == "rsa-pss" || type == "dsa")
    return cert.key_bits < policy.min_rsa_bits;
  if (type == "ec") return cert.key_bits < min_ec_bits;
  // Ed25519/Ed448 have fixed, adequate sizes; other types (dh, unknown) have no threshold here.
  return false;
}

}  // namespace

std::vector<finding> chain_findings(const chain_evidence& chain,
                                    const config::policy_config& policy, std::int64_t now) {
  std::vector<finding> out;
  for (std::size_t i = 0; i < chain.certs.size(); ++i) {
    const cert_evidence& cert = chain.certs[i];

    // A self-signed leaf is its own issuer: nobody vouches for it. It is not reported when the
    // chain verified, because then the operator put this very certificate into the trust store
    // (ca_file / client_ca) — explicitly trusted, and refusing it under on_untrusted would
    // contradict that configuration.
    if (cert.depth == 0 && cert.self_signed && !(chain.verify_attempted && chain.trusted))
      out.push_back({kind_self_signed, cert.depth, cert.subject});

    // The self-signed certificate at the top of the chain is the trust anchor: it is trusted
    // because it is in a trust store, not because of its signature, which proves nothing an
    // attacker could not forge by signing a copy himself (RFC 5280 §6.1: the anchor's signature
    // is not part of path validation). So its hash is not judged unless check_anchor_signature.
    // But a self-signed certificate is an anchor only when a trust store made it one: when the
    // chain was checked against a store and did not verify, nothing anchors it, and its signature
    // is judged like any other (a lone self-signed MD5 client certificate is weak_signature).
    const bool is_anchor = i + 1 == chain.certs.size() && cert.self_signed &&
                           (!chain.verify_attempted || chain.trusted);
    if ((!is_anchor || policy.check_anchor_signature) && is_weak_hash(cert.sig_hash, policy))
      out.push_back({kind_weak_signature, cert.depth, cert.sig_alg});

    // The anchor's key is judged regardless: a factorable root key forges every chain below it.
    if (is_weak_key(cert, policy)) out.push_back({kind_weak_key, cert.depth, cert.key_text()});

    if (now > cert.not_after)
      out.push_back({kind_expired, cert.depth, format_rfc3339_seconds(cert.not_after)});
    else if (now < cert.not_before)
      out.push_back({kind_not_yet_valid, cert.depth, format_rfc3339_seconds(cert.not_before)});
  }

  // The collector verifies without dates and without the host name, so untrusted never repeats an
  // expired or name_mismatch finding (certs/chain_collector.cpp).
  if (chain.verify_attempted && !chain.trusted) {
    out.push_back({kind_untrusted, std::max(chain.verify_error_depth, 0),
                   chain.verify_error.empty() ? std::string("not verified") : chain.verify_error});
  }

  if (chain.name_checked && !chain.name_matches)
    out.push_back({kind_name_mismatch, 0, "expected " + chain.expected_name});

  return out;
}

}  // namespace tlsbridge::policy
