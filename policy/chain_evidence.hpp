// What the proxy learned about one certificate chain a peer presented (or one of its own), as
// plain data: collected from OpenSSL by certs/chain_collector, judged by policy/ (findings and
// verdict), rendered into the audit log's `chain` object (README, "Certificate evidence and
// policy"). No OpenSSL types here, so the policy code stays pure and testable with hand-made
// evidence.
#pragma once

#include <boost/json/value.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace tlsbridge::policy {

struct cert_evidence {
  int depth = 0;        // 0 = leaf
  std::string subject;  // RFC 2253 one-line form
  std::string issuer;
  std::string sig_alg;   // OpenSSL long name, e.g. "sha1WithRSAEncryption"
  std::string sig_hash;  // lower-case short hash name: "md2","md4","md5","sha1","sha256",...;
                         // "" when the algorithm carries no separate hash (Ed25519), or
                         // RSA-PSS's hash
  std::string key_type;  // "rsa", "ec", "ed25519", "ed448", "dsa", ...
  int key_bits = 0;
  std::int64_t not_before = 0;  // seconds since the epoch (UTC)
  std::int64_t not_after = 0;
  std::string sha256;        // lower-case hex fingerprint of the DER
  bool self_signed = false;  // subject == issuer, issued by its own key (names, key ids); the
                             // signature itself is not verified (OpenSSL 3 cannot run MD2)
  std::string key_text() const { return key_type + ":" + std::to_string(key_bits); }  // "rsa:2048"
};

struct finding {
  std::string kind;  // weak_signature | weak_key | expired | not_yet_valid | untrusted |
                     // name_mismatch | self_signed
  int depth = 0;
  std::string detail;  // "md5WithRSAEncryption", "rsa:1024", an OpenSSL verify error string ...
};

struct chain_evidence {
  std::vector<cert_evidence> certs;  // depth order, leaf first
  // OpenSSL's own verification at security level 0 (so weak hashes do not mask trust results):
  bool verify_attempted = false;  // a trust store was configured for this leg
  bool trusted = false;
  std::string verify_error;  // X509_verify_cert_error_string when not trusted
  int verify_error_depth = -1;
  bool name_checked = false;  // a server_name was configured
  bool name_matches = false;
  std::string expected_name;  // the server_name checked, for the name_mismatch detail
};

enum class verdict { clean, logged, refused };
const char* to_string(verdict v);

// {"verdict": ..., "rule": ..., "findings": [{kind, depth, detail}], "certs": [{subject, issuer,
// sig_alg, key, not_after, sha256}]} as docs/audit-records.md shows; not_after in RFC 3339. rule:
// the index of the [[policy.rule]] that decided (decision::rule), or "default" for none.
boost::json::value chain_to_json(const chain_evidence& chain, const std::vector<finding>& findings,
                                 verdict v, std::optional<std::size_t> rule);

std::string format_rfc3339_seconds(std::int64_t epoch_seconds);

}  // namespace tlsbridge::policy
