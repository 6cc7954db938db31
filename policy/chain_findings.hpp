// The inspector of README's "Certificate evidence and policy": turns one chain's evidence into
// findings (weak_signature, weak_key, expired, not_yet_valid, untrusted, name_mismatch,
// self_signed), each with a depth and a detail. It knows nothing of actions or peers —
// policy_decision.hpp decides what a finding means for a given leg — so own certificates, back-leg
// chains and client chains all go through the same code.
#pragma once

#include <cstdint>
#include <vector>

#include "config/config.hpp"
#include "policy/chain_evidence.hpp"

namespace tlsbridge::policy {

// Finding kinds, as they appear in the audit log and in metrics.
inline constexpr const char* kind_weak_signature = "weak_signature";
inline constexpr const char* kind_weak_key = "weak_key";
inline constexpr const char* kind_expired = "expired";
inline constexpr const char* kind_not_yet_valid = "not_yet_valid";
inline constexpr const char* kind_untrusted = "untrusted";
inline constexpr const char* kind_name_mismatch = "name_mismatch";
inline constexpr const char* kind_self_signed = "self_signed";
// A verify = "pin" back leg whose leaf matches none of its pin_sha256 (policy_decision.hpp): not a
// property of the chain alone, so chain_findings() never yields it; judge_chain() adds it.
inline constexpr const char* kind_pin_mismatch = "pin_mismatch";

// Smallest EC key that is not weak: P-224 (NIST SP 800-57 pt. 1 rev. 5, 112-bit security); P-192
// and smaller curves are findings. Not configurable: min_rsa_bits is about RSA/DSA sizes only.
inline constexpr int min_ec_bits = 224;

// Every finding in `chain`, independent of actions: per certificate in depth order (self_signed,
// weak_signature, weak_key, expired / not_yet_valid), then untrusted, then name_mismatch.
// `now` is seconds since the epoch (UTC).
std::vector<finding> chain_findings(const chain_evidence& chain,
                                    const config::policy_config& policy, std::int64_t now);

}  // namespace tlsbridge::policy
