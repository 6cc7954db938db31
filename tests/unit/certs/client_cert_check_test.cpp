// client_certs trust rule (SECURITY.md, "What it trusts"; issue 12 item 5): a client chain is
// accepted only when its path ends in client_ca, whatever [policy] on_untrusted says, and a chain
// that does not is still inspected in full (a self-signed MD5 leaf is a weak_signature finding, not
// an exempt anchor).
#include "certs/client_cert_check.hpp"

#include <catch2/catch.hpp>
#include <ctime>

#include "certs/tls_context.hpp"
#include "test_pki.hpp"

using namespace tlsbridge;
using test::load_cert;
using test::make_stack;

namespace {

struct judged {
  policy::verdict result;
  std::string reason;
  std::vector<std::pair<std::string, config::policy_action>> findings;
  bool has(const std::string& kind, config::policy_action action) const {
    for (const auto& f : findings)
      if (f.first == kind && f.second == action) return true;
    return false;
  }
  bool has_kind(const std::string& kind) const {
    for (const auto& f : findings)
      if (f.first == kind) return true;
    return false;
  }
};

judged judge(const char* leaf_name, std::initializer_list<const char*> presented,
             const config::policy_config& policy = {}) {
  auto store = certs::make_trust_store(test::test_pki::get().file("ca.crt"));
  certs::client_chain_check check;
  check.policy = &policy;
  check.peer.listener = "smtps-mtls";
  check.trust = store.get();
  auto leaf = load_cert(leaf_name);
  auto chain = make_stack(presented);
  certs::judge_client_chain(check, leaf.get(), chain.get(), std::time(nullptr));
  REQUIRE(check.decision);
  judged out{check.decision->result, check.decision->reason, {}};
  for (std::size_t i = 0; i < check.decision->findings.size(); ++i)
    out.findings.emplace_back(check.decision->findings[i].kind, check.decision->actions[i]);
  return out;
}

config::policy_config lenient() {
  config::policy_config p;  // the default on_untrusted is log; ignore is the most lenient
  p.on_untrusted = config::policy_action::ignore;
  return p;
}

}  // namespace

TEST_CASE("client chains from client_ca are accepted", "[certs][client_certs]") {
  const auto j = judge("client.crt", {"inter.crt"});
  CHECK(j.result == policy::verdict::clean);
  CHECK(j.findings.empty());
}

TEST_CASE("client chains that do not end in client_ca are refused whatever on_untrusted says",
          "[certs][client_certs]") {
  for (const auto& policy : {config::policy_config{}, lenient()}) {
    SECTION("self-signed MD5 leaf: refused, and its MD5 signature is a finding") {
      const auto j = judge("client-md5self.crt", {}, policy);
      CHECK(j.result == policy::verdict::refused);
      CHECK(j.has("untrusted", config::policy_action::refuse));
      CHECK(j.has_kind("weak_signature"));
      CHECK(j.reason.find("client_certs") != std::string::npos);
    }
    SECTION("self-signed MD5 leaf with clientAuth EKU") {
      const auto j = judge("client-md5self-eku.crt", {}, policy);
      CHECK(j.result == policy::verdict::refused);
      CHECK(j.has("untrusted", config::policy_action::refuse));
      CHECK(j.has_kind("weak_signature"));
    }
    SECTION("leaf issued by another CA, that CA presented") {
      const auto j = judge("client-other.crt", {"otherca.crt"}, policy);
      CHECK(j.result == policy::verdict::refused);
      CHECK(j.has("untrusted", config::policy_action::refuse));
    }
    SECTION("leaf issued by a CA that has client_ca's subject name but its own key") {
      const auto j = judge("client-impostor.crt", {"impostorca.crt"}, policy);
      CHECK(j.result == policy::verdict::refused);
      CHECK(j.has("untrusted", config::policy_action::refuse));
    }
    SECTION("a chain that carries client_ca's own certificate but is rooted elsewhere") {
      const auto j = judge("client-other.crt", {"otherca.crt", "ca.crt"}, policy);
      CHECK(j.result == policy::verdict::refused);
      CHECK(j.has("untrusted", config::policy_action::refuse));
    }
    SECTION("a trusted certificate that is not for client authentication (EKU serverAuth)") {
      const auto j = judge("server.crt", {"inter.crt"}, policy);
      CHECK(j.result == policy::verdict::refused);
      CHECK(j.has("untrusted", config::policy_action::refuse));
    }
  }
}

TEST_CASE("a trusted client chain is still judged by policy", "[certs][client_certs]") {
  const auto j = judge("client-sha1.crt", {});
  CHECK(j.result == policy::verdict::refused);
  CHECK(j.has("weak_signature", config::policy_action::refuse));
  CHECK_FALSE(j.has_kind("untrusted"));
  CHECK(j.reason.find("client_certs") == std::string::npos);
}

TEST_CASE("no trust store refuses every client chain (fail closed)", "[certs][client_certs]") {
  config::policy_config policy = lenient();
  certs::client_chain_check check;
  check.policy = &policy;
  auto leaf = load_cert("client.crt");
  auto chain = make_stack({"inter.crt"});
  certs::judge_client_chain(check, leaf.get(), chain.get(), std::time(nullptr));
  REQUIRE(check.decision);
  CHECK(check.decision->result == policy::verdict::refused);
}
