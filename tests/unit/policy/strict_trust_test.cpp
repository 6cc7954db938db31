// A verify = "ca" back leg (peer_context::strict_trust) refuses untrusted, self_signed and
// name_mismatch whatever [policy] says, unless the matching [[policy.rule]] sets the action; the
// decision names the rule that was consulted.
#include <catch2/catch.hpp>

#include "config/value_parsers.hpp"
#include "policy/policy_decision.hpp"

using namespace tlsbridge;
using config::policy_action;
using policy::verdict;

namespace {

constexpr std::int64_t now = 1'700'000'000;

// A self-signed leaf for "localhost" that does not verify against ca_file, checked for the name
// mx.example: findings untrusted, self_signed, name_mismatch.
policy::chain_evidence self_signed_wrong_name() {
  policy::cert_evidence leaf;
  leaf.subject = leaf.issuer = "CN=localhost";
  leaf.self_signed = true;
  leaf.sig_alg = "sha256WithRSAEncryption";
  leaf.sig_hash = "sha256";
  leaf.key_type = "rsa";
  leaf.key_bits = 2048;
  leaf.not_before = now - 1000;
  leaf.not_after = now + 1000;
  policy::chain_evidence chain;
  chain.certs.push_back(leaf);
  chain.verify_attempted = true;
  chain.verify_error = "self-signed certificate";
  chain.verify_error_depth = 0;
  chain.name_checked = true;
  chain.expected_name = "mx.example";
  return chain;
}

policy::peer_context ca_leg(const char* host, const char* backend_ip) {
  return policy::peer_context{"smtp-out", config::parse_ip("192.0.2.9"), host,
                              config::parse_ip(backend_ip), /*strict_trust=*/true};
}

config::policy_rule rule_for(const char* peer) {
  config::policy_rule r;
  r.peer = peer;
  return r;
}

}  // namespace

TEST_CASE("strict trust: [policy]'s log defaults do not let a wrong next hop through",
          "[policy][trust]") {
  config::policy_config p;  // on_untrusted = on_name_mismatch = "log"
  const auto chain = self_signed_wrong_name();
  const auto d = policy::judge_chain(chain, p, ca_leg("mx.example", "127.0.0.1"), false, now);
  CHECK(d.result == verdict::refused);
  CHECK_FALSE(d.rule);
  REQUIRE(d.findings.size() == d.actions.size());
  REQUIRE(d.findings.size() >= 2);
  for (const auto a : d.actions) CHECK(a == policy_action::refuse);
  CHECK(d.reason.find("(refuse)") != std::string::npos);

  SECTION("explicit [policy] log does not loosen it either") {
    p.on_untrusted = policy_action::ignore;
    p.on_name_mismatch = policy_action::log;
    CHECK(policy::judge_chain(chain, p, ca_leg("mx.example", "127.0.0.1"), false, now).result ==
          verdict::refused);
  }
  SECTION("the same chain on a non-strict leg follows [policy] (log)") {
    auto peer = ca_leg("mx.example", "127.0.0.1");
    peer.strict_trust = false;
    CHECK(policy::judge_chain(chain, p, peer, false, now).result == verdict::logged);
  }
  SECTION("verify = none/pin (trusted by configuration) stays log-only") {
    CHECK(policy::judge_chain(chain, p, ca_leg("mx.example", "127.0.0.1"), true, now).result ==
          verdict::logged);
  }
  SECTION("other kinds keep their [policy] action") {
    CHECK(policy::action_for("weak_key", p, ca_leg("mx.example", "127.0.0.1")) ==
          policy_action::refuse);
    p.on_weak_key = policy_action::log;
    CHECK(policy::action_for("weak_key", p, ca_leg("mx.example", "127.0.0.1")) ==
          policy_action::log);
  }
}

TEST_CASE("strict trust: a rule for the peer says otherwise, and is named", "[policy][trust]") {
  config::policy_config p;
  auto unrelated = rule_for("*.nowhere.example");
  unrelated.actions.on_untrusted = policy_action::log;
  auto by_ip = rule_for("127.0.0.1");
  by_ip.actions.on_untrusted = policy_action::log;
  by_ip.actions.on_name_mismatch = policy_action::ignore;
  p.rules = {unrelated, by_ip};
  const auto chain = self_signed_wrong_name();

  const auto d = policy::judge_chain(chain, p, ca_leg("mx.example", "127.0.0.1"), false, now);
  CHECK(d.result == verdict::logged);
  REQUIRE(d.rule);
  CHECK(*d.rule == 1);
  for (const auto& f : d.findings) CHECK(f.kind != "name_mismatch");  // ignored by the rule

  SECTION("another backend address is not the rule's peer: refused, decided by default") {
    const auto e = policy::judge_chain(chain, p, ca_leg("mx.example", "10.0.0.1"), false, now);
    CHECK(e.result == verdict::refused);
    CHECK_FALSE(e.rule);
  }
  SECTION("a matching rule that leaves on_name_mismatch out does not loosen it") {
    p.rules[1].actions.on_name_mismatch.reset();
    const auto e = policy::judge_chain(chain, p, ca_leg("mx.example", "127.0.0.1"), false, now);
    CHECK(e.result == verdict::refused);
    CHECK(e.rule == std::optional<std::size_t>{1});
    CHECK(e.reason.rfind("name_mismatch", 0) == 0);
  }
  SECTION("a host glob with '*' inside a label") {
    auto by_name = rule_for("mx*.example");
    by_name.actions.on_untrusted = policy_action::log;
    by_name.actions.on_name_mismatch = policy_action::log;
    p.rules = {by_name};
    CHECK(policy::judge_chain(chain, p, ca_leg("mx1.example", "10.0.0.1"), false, now).result ==
          verdict::logged);
    CHECK(policy::judge_chain(chain, p, ca_leg("relay.example", "10.0.0.1"), false, now).result ==
          verdict::refused);
  }
}
