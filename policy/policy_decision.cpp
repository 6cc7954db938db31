#include "policy/policy_decision.hpp"

#include <algorithm>

#include "config/value_parsers.hpp"
#include "policy/chain_findings.hpp"

namespace tlsbridge::policy {
namespace {

// The [policy] default and the per-rule override for one kind.
struct action_slot {
  config::policy_action config::policy_config::*base;
  std::optional<config::policy_action> config::policy_actions::*override;
  bool trust_question = false;  // untrusted, self_signed, name_mismatch: strict_trust refuses
};

std::optional<action_slot> slot_for(const std::string& kind) {
  using config::policy_actions;
  using config::policy_config;
  if (kind == kind_weak_signature)
    return action_slot{&policy_config::on_weak_signature, &policy_actions::on_weak_signature};
  if (kind == kind_weak_key)
    return action_slot{&policy_config::on_weak_key, &policy_actions::on_weak_key};
  if (kind == kind_expired || kind == kind_not_yet_valid)
    return action_slot{&policy_config::on_expired, &policy_actions::on_expired};
  // A self-signed leaf is a trust question — nobody but itself vouches for it — so it follows
  // on_untrusted rather than having a switch of its own.
  if (kind == kind_untrusted || kind == kind_self_signed)
    return action_slot{&policy_config::on_untrusted, &policy_actions::on_untrusted, true};
  if (kind == kind_name_mismatch)
    return action_slot{&policy_config::on_name_mismatch, &policy_actions::on_name_mismatch, true};
  return std::nullopt;
}

}  // namespace

const char* to_string(config::policy_action action) {
  switch (action) {
    case config::policy_action::refuse:
      return "refuse";
    case config::policy_action::log:
      return "log";
    case config::policy_action::ignore:
      return "ignore";
  }
  return "refuse";
}

bool rule_matches(const config::policy_rule& rule, const peer_context& peer) {
  if (rule.listener && *rule.listener != peer.listener) return false;
  if (rule.peer) {
    // Parsed on every call: rules are few and a chain is judged once per handshake.
    if (const auto block = config::parse_cidr(*rule.peer))
      return (peer.client_ip && block->contains(*peer.client_ip)) ||
             (peer.backend_ip && block->contains(*peer.backend_ip));
    return !peer.backend_host.empty() && host_glob_matches(*rule.peer, peer.backend_host);
  }
  return true;
}

config::policy_action action_for(const std::string& kind, const config::policy_config& policy,
                                 const peer_context& peer) {
  const auto slot = slot_for(kind);
  if (!slot) return config::policy_action::refuse;
  if (const auto rule = matching_rule(policy, peer))
    if (const auto set = policy.rules[*rule].actions.*(slot->override)) return *set;
  if (peer.strict_trust && slot->trust_question) return config::policy_action::refuse;
  return policy.*(slot->base);
}

std::optional<std::size_t> matching_rule(const config::policy_config& policy,
                                         const peer_context& peer) {
  for (std::size_t i = 0; i < policy.rules.size(); ++i)
    if (rule_matches(policy.rules[i], peer)) return i;
  return std::nullopt;
}

decision judge_chain(const chain_evidence& chain, const config::policy_config& policy,
                     const peer_context& peer, bool trusted_by_configuration, std::int64_t now,
                     const std::vector<std::string>* pins) {
  decision out;
  out.rule = matching_rule(policy, peer);
  for (auto& f : chain_findings(chain, policy, now)) {
    auto action = action_for(f.kind, policy, peer);
    if (action == config::policy_action::ignore) continue;
    if (action == config::policy_action::refuse) {
      if (trusted_by_configuration) {
        // README, "What works today": a verify = "none"/"pin" back leg (the legacy host with its
        // SHA-1 certificate) is inspected and recorded, never refused for what it presents.
        action = config::policy_action::log;
      } else if (out.result != verdict::refused) {
        out.result = verdict::refused;
        out.reason = f.kind + " at depth " + std::to_string(f.depth) + ": " + f.detail + " (" +
                     to_string(config::policy_action::refuse) + ")";
      }
    }
    if (out.result == verdict::clean) out.result = verdict::logged;
    out.findings.push_back(std::move(f));
    out.actions.push_back(action);
  }
  if (pins) {
    const std::string leaf = chain.certs.empty() ? "" : chain.certs[0].sha256;
    if (std::find(pins->begin(), pins->end(), leaf) == pins->end()) {
      finding f{kind_pin_mismatch, 0, leaf + " matches no pin_sha256"};
      if (out.result != verdict::refused)
        out.reason = f.kind + " at depth 0: " + f.detail + " (" +
                     to_string(config::policy_action::refuse) + ")";
      out.result = verdict::refused;
      out.findings.push_back(std::move(f));
      out.actions.push_back(config::policy_action::refuse);
    }
  }
  return out;
}

}  // namespace tlsbridge::policy
