// judge_chain, action_for, rule_matches and host_glob_matches on hand-made evidence and peers.
#include "policy/policy_decision.hpp"

#include <catch2/catch.hpp>

#include "config/value_parsers.hpp"

using namespace tlsbridge;
using config::policy_action;
using config::policy_rule;
using policy::peer_context;
using policy::verdict;

namespace {

constexpr std::int64_t now = 1'700'000'000;

policy::cert_evidence cert(int depth, const char* sig_alg, const char* hash, const char* key_type,
                           int bits) {
  policy::cert_evidence c;
  c.depth = depth;
  c.subject = "CN=c" + std::to_string(depth);
  c.issuer = "CN=c" + std::to_string(depth + 1);
  c.sig_alg = sig_alg;
  c.sig_hash = hash;
  c.key_type = key_type;
  c.key_bits = bits;
  c.not_before = now - 1000;
  c.not_after = now + 1000;
  return c;
}

// Leaf (sha256, rsa:2048) <- intermediate signed with MD5; no trust store, no name check.
policy::chain_evidence md5_chain() {
  policy::chain_evidence chain;
  chain.certs.push_back(cert(0, "sha256WithRSAEncryption", "sha256", "rsa", 2048));
  chain.certs.push_back(cert(1, "md5WithRSAEncryption", "md5", "rsa", 2048));
  return chain;
}

std::array<std::uint8_t, 16> ip(const char* text) {
  const auto a = config::parse_ip(text);
  REQUIRE(a);
  return *a;
}

peer_context client(const char* listener, const char* address) {
  return peer_context{listener, ip(address), "", std::nullopt, false};
}

peer_context backend(const char* listener, const char* host) {
  return peer_context{listener, std::nullopt, host, std::nullopt, false};
}

policy_rule rule(std::optional<std::string> listener, std::optional<std::string> peer) {
  policy_rule r;
  r.listener = std::move(listener);
  r.peer = std::move(peer);
  return r;
}

}  // namespace

TEST_CASE("host_glob_matches", "[policy][rules]") {
  using policy::host_glob_matches;
  CHECK(host_glob_matches("*.partner.example", "mx1.partner.example"));
  CHECK(host_glob_matches("*.partner.example", "a.b.partner.example"));   // one or more labels
  CHECK(host_glob_matches("*.Partner.Example", "MX1.partner.EXAMPLE"));   // case-insensitive
  CHECK(host_glob_matches("*.partner.example", "mx1.partner.example."));  // FQDN dot
  CHECK(host_glob_matches("mx.partner.example", "MX.Partner.Example"));
  CHECK(host_glob_matches("*", "anything.example"));

  CHECK_FALSE(host_glob_matches("*.partner.example", "partner.example"));
  CHECK_FALSE(host_glob_matches("*.partner.example", "xpartner.example"));
  CHECK_FALSE(host_glob_matches("*.partner.example", ".partner.example"));
  CHECK_FALSE(host_glob_matches("*.partner.example", "a..partner.example"));
  CHECK_FALSE(host_glob_matches("*.partner.example", "mx1.partner.example.evil"));
  CHECK_FALSE(host_glob_matches("*.partner.example", "mx1.other.example"));
  CHECK_FALSE(host_glob_matches("mx.partner.example", "mx1.partner.example"));
  CHECK_FALSE(host_glob_matches("mx.partner.example", "a.mx.partner.example"));
  CHECK(host_glob_matches("mx*.partner.example", "mx1.partner.example"));  // '*' inside a label
  CHECK(host_glob_matches("mx*.partner.example", "MX.partner.example"));   // zero characters
  CHECK(host_glob_matches("*mx.partner.example", "edge-mx.partner.example"));
  CHECK(host_glob_matches("m*x*1.partner.example", "mail-exch1.partner.example"));
  CHECK(host_glob_matches("mail.*.example", "mail.eu.example"));
  CHECK_FALSE(host_glob_matches("mx*.partner.example", "mx1.a.partner.example"));  // one label
  CHECK_FALSE(host_glob_matches("mx*.partner.example", "smx1.partner.example"));
  CHECK_FALSE(host_glob_matches("mail.*.example", "mail.a.b.example"));
  CHECK_FALSE(host_glob_matches("m*x*1.partner.example", "mail-exch2.partner.example"));
  CHECK_FALSE(host_glob_matches("*.partner.example", ""));
  CHECK_FALSE(host_glob_matches("", "mx.example"));
  CHECK_FALSE(host_glob_matches("*", ""));
}

TEST_CASE("rule_matches: listener and peer selectors", "[policy][rules]") {
  using policy::rule_matches;
  CHECK(rule_matches(rule(std::nullopt, std::nullopt), client("smtp-in", "192.0.2.1")));
  CHECK(rule_matches(rule(std::nullopt, std::nullopt), peer_context{}));

  SECTION("listener") {
    CHECK(rule_matches(rule("smtp-out", std::nullopt), backend("smtp-out", "mx.example")));
    CHECK_FALSE(rule_matches(rule("smtp-out", std::nullopt), backend("smtp-in", "mx.example")));
    CHECK_FALSE(rule_matches(rule("smtp-out", std::nullopt), backend("SMTP-OUT", "mx.example")));
  }
  SECTION("IPv4 CIDR against the client address") {
    const auto r = rule(std::nullopt, "10.0.0.0/8");
    CHECK(rule_matches(r, client("smtp-in", "10.1.2.3")));
    CHECK(rule_matches(r, client("smtp-in", "10.255.255.255")));
    CHECK_FALSE(rule_matches(r, client("smtp-in", "11.0.0.1")));
    CHECK_FALSE(rule_matches(r, client("smtp-in", "2001:db8::1")));
    CHECK(rule_matches(rule(std::nullopt, "192.0.2.7"), client("x", "192.0.2.7")));  // bare IP
    CHECK_FALSE(rule_matches(rule(std::nullopt, "192.0.2.7"), client("x", "192.0.2.8")));
  }
  SECTION("IPv6 CIDR") {
    const auto r = rule(std::nullopt, "2001:db8::/32");
    CHECK(rule_matches(r, client("imap", "2001:db8:1::5")));
    CHECK_FALSE(rule_matches(r, client("imap", "2001:db9::5")));
    CHECK_FALSE(rule_matches(r, client("imap", "10.0.0.1")));
  }
  SECTION("a CIDR is compared with the client and backend addresses, never the host text") {
    CHECK_FALSE(rule_matches(rule(std::nullopt, "10.0.0.0/8"), backend("smtp-out", "10.0.0.5")));
    auto back = backend("smtp-out", "mx.example");
    back.backend_ip = ip("127.0.0.1");
    CHECK(rule_matches(rule(std::nullopt, "127.0.0.1"), back));
    CHECK(rule_matches(rule(std::nullopt, "127.0.0.0/8"), back));
    CHECK_FALSE(rule_matches(rule(std::nullopt, "10.0.0.0/8"), back));
    back.client_ip = ip("10.1.1.1");  // the client (after PROXY) still counts on the back leg
    CHECK(rule_matches(rule(std::nullopt, "10.0.0.0/8"), back));
  }
  SECTION("host glob against the backend host") {
    const auto r = rule(std::nullopt, "*.partner.example");
    CHECK(rule_matches(r, backend("smtp-out", "mx1.Partner.example")));
    CHECK_FALSE(rule_matches(r, backend("smtp-out", "mx1.other.example")));
    CHECK_FALSE(rule_matches(r, client("smtp-in", "10.0.0.1")));  // front leg: no backend host
  }
  SECTION("all present selectors must match") {
    const auto r = rule("smtp-out", "*.partner.example");
    CHECK(rule_matches(r, backend("smtp-out", "mx.partner.example")));
    CHECK_FALSE(rule_matches(r, backend("smtp-in", "mx.partner.example")));
    CHECK_FALSE(rule_matches(r, backend("smtp-out", "mx.other.example")));
  }
}

TEST_CASE("action_for: [policy] defaults and kind mapping", "[policy][rules]") {
  using policy::action_for;
  config::policy_config p;
  p.on_weak_signature = policy_action::refuse;
  p.on_weak_key = policy_action::log;
  p.on_expired = policy_action::ignore;
  p.on_untrusted = policy_action::log;
  p.on_name_mismatch = policy_action::refuse;
  const peer_context peer = client("smtp-in", "192.0.2.1");
  CHECK(action_for("weak_signature", p, peer) == policy_action::refuse);
  CHECK(action_for("weak_key", p, peer) == policy_action::log);
  CHECK(action_for("expired", p, peer) == policy_action::ignore);
  CHECK(action_for("not_yet_valid", p, peer) == policy_action::ignore);
  CHECK(action_for("untrusted", p, peer) == policy_action::log);
  CHECK(action_for("self_signed", p, peer) == policy_action::log);
  CHECK(action_for("name_mismatch", p, peer) == policy_action::refuse);
  CHECK(action_for("something_new", p, peer) == policy_action::refuse);

  p.on_untrusted = policy_action::refuse;
  CHECK(action_for("self_signed", p, peer) == policy_action::refuse);
}

TEST_CASE("action_for: the first matching rule wins, overriding only what it sets",
          "[policy][rules]") {
  using policy::action_for;
  config::policy_config p;  // defaults: weak_signature refuse, expired refuse, untrusted log
  auto r1 = rule("smtp-out", "*.partner.example");
  r1.actions.on_weak_signature = policy_action::log;
  auto r2 = rule(std::nullopt, "*.example");
  r2.actions.on_weak_signature = policy_action::ignore;
  r2.actions.on_expired = policy_action::log;
  auto r3 = rule(std::nullopt, "10.0.0.0/8");
  r3.actions.on_untrusted = policy_action::refuse;
  p.rules = {r1, r2, r3};

  const auto partner = backend("smtp-out", "mx.partner.example");
  CHECK(action_for("weak_signature", p, partner) == policy_action::log);  // r1
  // r1 is the match: r2 (which also matches) does not fill in on_expired.
  CHECK(action_for("expired", p, partner) == policy_action::refuse);
  CHECK(action_for("untrusted", p, partner) == policy_action::log);

  const auto other = backend("smtp-out", "mx.other.example");  // r2
  CHECK(action_for("weak_signature", p, other) == policy_action::ignore);
  CHECK(action_for("expired", p, other) == policy_action::log);
  CHECK(action_for("not_yet_valid", p, other) == policy_action::log);

  const auto partner_elsewhere = backend("smtp-in", "mx.partner.example");  // r1 misses: r2
  CHECK(action_for("weak_signature", p, partner_elsewhere) == policy_action::ignore);

  const auto internal = client("submission", "10.9.8.7");  // r3
  CHECK(action_for("untrusted", p, internal) == policy_action::refuse);
  CHECK(action_for("self_signed", p, internal) == policy_action::refuse);
  CHECK(action_for("weak_signature", p, internal) == policy_action::refuse);

  const auto nobody = client("submission", "192.0.2.1");  // no rule
  CHECK(action_for("untrusted", p, nobody) == policy_action::log);
}

TEST_CASE("judge_chain: verdicts", "[policy][decision]") {
  config::policy_config p;
  const auto peer = backend("smtp-out", "mx.example");

  SECTION("clean with no findings") {
    auto chain = md5_chain();
    chain.certs[1] = cert(1, "sha384WithRSAEncryption", "sha384", "rsa", 4096);
    const auto d = policy::judge_chain(chain, p, peer, false, now);
    CHECK(d.result == verdict::clean);
    CHECK(d.findings.empty());
    CHECK(d.actions.empty());
    CHECK(d.reason.empty());
  }
  SECTION("refuse gives refused, with the reason") {
    const auto d = policy::judge_chain(md5_chain(), p, peer, false, now);
    CHECK(d.result == verdict::refused);
    REQUIRE(d.findings.size() == 1);
    CHECK(d.actions == std::vector<policy_action>{policy_action::refuse});
    CHECK(d.reason == "weak_signature at depth 1: md5WithRSAEncryption (refuse)");
  }
  SECTION("log gives logged") {
    p.on_weak_signature = policy_action::log;
    const auto d = policy::judge_chain(md5_chain(), p, peer, false, now);
    CHECK(d.result == verdict::logged);
    REQUIRE(d.findings.size() == 1);
    CHECK(d.findings[0].kind == "weak_signature");
    CHECK(d.reason.empty());
  }
  SECTION("ignore drops the finding entirely") {
    p.on_weak_signature = policy_action::ignore;
    const auto d = policy::judge_chain(md5_chain(), p, peer, false, now);
    CHECK(d.result == verdict::clean);
    CHECK(d.findings.empty());
  }
  SECTION("ignore drops one finding, the others stay") {
    auto chain = md5_chain();
    chain.name_checked = true;
    chain.expected_name = "mx.example";
    p.on_weak_signature = policy_action::ignore;  // on_name_mismatch defaults to log
    const auto d = policy::judge_chain(chain, p, peer, false, now);
    CHECK(d.result == verdict::logged);
    REQUIRE(d.findings.size() == 1);
    CHECK(d.findings[0].kind == "name_mismatch");
    CHECK(d.findings[0].detail == "expected mx.example");
  }
  SECTION("one refuse among logs refuses; the reason is the first refused finding") {
    auto chain = md5_chain();
    chain.verify_attempted = true;
    chain.verify_error = "unable to get local issuer certificate";
    chain.verify_error_depth = 1;
    chain.certs[0].not_after = now - 10;  // expired: refuse by default
    const auto d = policy::judge_chain(chain, p, peer, false, now);
    CHECK(d.result == verdict::refused);
    REQUIRE(d.findings.size() == 3);
    CHECK(d.actions == std::vector<policy_action>{policy_action::refuse, policy_action::refuse,
                                                  policy_action::log});
    CHECK(d.reason.rfind("expired at depth 0: ", 0) == 0);
  }
  SECTION("a rule for this peer turns refused into logged") {
    auto r = rule("smtp-out", "*.example");
    r.actions.on_weak_signature = policy_action::log;
    p.rules.push_back(r);
    CHECK(policy::judge_chain(md5_chain(), p, peer, false, now).result == verdict::logged);
    CHECK(
        policy::judge_chain(md5_chain(), p, backend("smtp-in", "mx.example"), false, now).result ==
        verdict::refused);
  }
}

TEST_CASE("judge_chain: trusted by configuration is logged, never refused", "[policy][decision]") {
  config::policy_config p;
  p.on_untrusted = policy_action::refuse;
  p.on_name_mismatch = policy_action::refuse;
  auto chain = md5_chain();
  chain.certs[0].key_bits = 1024;
  chain.certs[0].not_after = now - 1;
  chain.verify_attempted = true;
  chain.verify_error = "unable to get local issuer certificate";
  chain.name_checked = true;
  chain.expected_name = "legacy.local";
  const auto peer = backend("smtp-in", "legacy.local");

  const auto d = policy::judge_chain(chain, p, peer, true, now);
  CHECK(d.result == verdict::logged);
  CHECK(d.reason.empty());
  REQUIRE(d.findings.size() == 5);  // weak_key, expired, weak_signature, untrusted, name_mismatch
  for (const auto a : d.actions) CHECK(a == policy_action::log);

  SECTION("ignore still drops findings on such a leg") {
    p.on_weak_signature = policy_action::ignore;
    p.on_weak_key = policy_action::ignore;
    p.on_expired = policy_action::ignore;
    p.on_untrusted = policy_action::ignore;
    p.on_name_mismatch = policy_action::ignore;
    const auto e = policy::judge_chain(chain, p, peer, true, now);
    CHECK(e.result == verdict::clean);
    CHECK(e.findings.empty());
  }
  SECTION("the same chain is refused when it must establish identity") {
    CHECK(policy::judge_chain(chain, p, peer, false, now).result == verdict::refused);
  }
}

TEST_CASE("judge_chain: a pinned leg is refused when its leaf matches no pin",
          "[policy][decision]") {
  config::policy_config p;
  auto chain = md5_chain();
  chain.certs[0].sha256 = std::string(64, 'a');
  const auto peer = backend("smtp-in", "legacy.local");

  SECTION("a matching pin: the chain's findings are logged, nothing is refused") {
    const std::vector<std::string> pins{std::string(64, 'b'), std::string(64, 'a')};
    const auto d = policy::judge_chain(chain, p, peer, true, now, &pins);
    CHECK(d.result == verdict::logged);
    REQUIRE(d.findings.size() == 1);
    CHECK(d.findings[0].kind == "weak_signature");
  }
  SECTION("no matching pin: the finding pin_mismatch, refused although trusted by configuration") {
    const std::vector<std::string> pins{std::string(64, 'b')};
    const auto d = policy::judge_chain(chain, p, peer, true, now, &pins);
    CHECK(d.result == verdict::refused);
    REQUIRE(d.findings.size() == 2);
    CHECK(d.findings[1].kind == "pin_mismatch");
    CHECK(d.findings[1].depth == 0);
    CHECK(d.actions == std::vector<policy_action>{policy_action::log, policy_action::refuse});
    CHECK(d.reason ==
          "pin_mismatch at depth 0: " + std::string(64, 'a') + " matches no pin_sha256 (refuse)");
  }
  SECTION("no leaf at all matches no pin") {
    const std::vector<std::string> pins{std::string(64, 'b')};
    CHECK(policy::judge_chain({}, p, peer, true, now, &pins).result == verdict::refused);
  }
}

TEST_CASE("action names", "[policy][decision]") {
  CHECK(std::string(policy::to_string(policy_action::refuse)) == "refuse");
  CHECK(std::string(policy::to_string(policy_action::log)) == "log");
  CHECK(std::string(policy::to_string(policy_action::ignore)) == "ignore");
}
