// What a chain's findings mean for one leg ([policy] / [[policy.rule]] in conf/tlsbridge.toml;
// README, "Certificate evidence and policy"): each finding kind gets an action — from the first
// [[policy.rule]] that matches the peer, else from [policy] — and the actions give the chain's
// verdict (clean, logged, refused). Pure: the session passes who the peer is (peer_context);
// nothing here touches a socket.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "policy/chain_evidence.hpp"
#include "policy/host_glob.hpp"

namespace tlsbridge::policy {

// Who is on the other end, as far as [[policy.rule]] selectors care.
struct peer_context {
  std::string listener;                                   // listener name
  std::optional<std::array<std::uint8_t, 16>> client_ip;  // v4-mapped v6 bytes; the client (after
                                                          // PROXY), for front and back legs alike
  std::string backend_host;  // back leg: configured host name or IP text; "" on a front leg
  // back leg: the address reached (v4-mapped v6 bytes); none on a front leg
  std::optional<std::array<std::uint8_t, 16>> backend_ip;
  // A verify = "ca" back leg: untrusted, self_signed and name_mismatch are refused whatever
  // [policy] says, unless the matching [[policy.rule]] sets on_untrusted / on_name_mismatch.
  bool strict_trust = false;
};

struct decision {
  std::vector<finding> findings;  // all findings except those whose action is ignore
  // actions[i] is what was done about findings[i]: the configured action, except that refuse
  // becomes log on a leg trusted by configuration. For the "findings by kind and action" metric.
  std::vector<config::policy_action> actions;
  verdict result = verdict::clean;  // clean (no findings left), logged, refused
  std::string reason;  // for refused: "weak_signature at depth 1: md5WithRSAEncryption (refuse)"
  // The [[policy.rule]] consulted (index in file order, from 0): the first one matching the
  // peer; none = only [policy] (and strict_trust) decided. The audit `chain`'s "rule".
  std::optional<std::size_t> rule;
};

// The whole judgement of one chain. trusted_by_configuration: back legs with verify = "none" or
// "pin" — their findings are recorded, never refused (verdict logged at most). `pins` (a verify =
// "pin" leg's pin_sha256, lower-case hex): a leaf whose SHA-256 is none of them adds the finding
// pin_mismatch, which is always refused — the pin is what such a leg trusts instead of the chain.
decision judge_chain(const chain_evidence& chain, const config::policy_config& policy,
                     const peer_context& peer, bool trusted_by_configuration, std::int64_t now,
                     const std::vector<std::string>* pins = nullptr);

// The effective action for a finding kind. The first rule that matches `peer` is the only rule
// consulted: the actions it sets override [policy], the ones it leaves out come from [policy]
// (a later matching rule does not fill them in — first match, as in a firewall). expired and
// not_yet_valid share on_expired; untrusted and self_signed share on_untrusted. On a strict_trust
// peer, [policy]'s on_untrusted / on_name_mismatch are not consulted: without a rule setting them,
// those kinds are refused. An unknown kind is refused: a finding nobody configured must not pass
// silently.
config::policy_action action_for(const std::string& kind, const config::policy_config& policy,
                                 const peer_context& peer);

// A rule matches when every selector it has matches; a rule without selectors matches everyone.
// listener: equal to peer.listener. peer: if it parses as a CIDR (or bare address), it matches
// when peer.client_ip or peer.backend_ip is inside it; otherwise it is a host glob
// (host_glob_matches) matched against peer.backend_host (empty: no match).
bool rule_matches(const config::policy_rule& rule, const peer_context& peer);

// The index of the first rule that matches `peer`, the only one action_for consults.
std::optional<std::size_t> matching_rule(const config::policy_config& policy,
                                         const peer_context& peer);

const char* to_string(config::policy_action action);

}  // namespace tlsbridge::policy
