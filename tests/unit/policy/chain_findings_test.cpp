// chain_findings on hand-made evidence: every kind, the anchor exemption, key types and dates.
#include "policy/chain_findings.hpp"

#include <catch2/catch.hpp>

using namespace tlsbridge;
using policy::cert_evidence;
using policy::chain_evidence;
using policy::finding;

namespace {

constexpr std::int64_t now = 1'700'000'000;  // 2023-11-14
constexpr std::int64_t year = 365 * 24 * 3600;

cert_evidence good_cert(int depth, std::string subject, std::string issuer) {
  cert_evidence c;
  c.depth = depth;
  c.subject = std::move(subject);
  c.issuer = std::move(issuer);
  c.sig_alg = "sha256WithRSAEncryption";
  c.sig_hash = "sha256";
  c.key_type = "rsa";
  c.key_bits = 2048;
  c.not_before = now - year;
  c.not_after = now + year;
  return c;
}

// leaf <- intermediate <- self-signed root, all sound, verified and name-checked.
chain_evidence good_chain() {
  chain_evidence chain;
  chain.certs.push_back(good_cert(0, "CN=mx.example", "CN=Inter"));
  chain.certs.push_back(good_cert(1, "CN=Inter", "CN=Root"));
  auto root = good_cert(2, "CN=Root", "CN=Root");
  root.self_signed = true;
  chain.certs.push_back(root);
  chain.verify_attempted = true;
  chain.trusted = true;
  chain.name_checked = true;
  chain.name_matches = true;
  chain.expected_name = "mx.example";
  return chain;
}

std::vector<finding> findings_of(const chain_evidence& chain, const config::policy_config& p = {}) {
  return policy::chain_findings(chain, p, now);
}

bool same(const finding& f, const char* kind, int depth, const std::string& detail) {
  return f.kind == kind && f.depth == depth && f.detail == detail;
}

}  // namespace

TEST_CASE("a sound chain has no findings", "[policy][findings]") {
  CHECK(findings_of(good_chain()).empty());
  CHECK(findings_of(chain_evidence{}).empty());
}

TEST_CASE("weak_signature: hash in weak_signatures, detail is the algorithm",
          "[policy][findings]") {
  auto chain = good_chain();
  chain.certs[1].sig_alg = "md5WithRSAEncryption";
  chain.certs[1].sig_hash = "md5";
  chain.certs[0].sig_alg = "sha1WithRSAEncryption";
  chain.certs[0].sig_hash = "sha1";
  const auto f = findings_of(chain);
  REQUIRE(f.size() == 2);
  CHECK(same(f[0], "weak_signature", 0, "sha1WithRSAEncryption"));
  CHECK(same(f[1], "weak_signature", 1, "md5WithRSAEncryption"));

  config::policy_config only_md5;
  only_md5.weak_signatures = {"md5"};
  const auto g = findings_of(chain, only_md5);
  REQUIRE(g.size() == 1);
  CHECK(same(g[0], "weak_signature", 1, "md5WithRSAEncryption"));
}

TEST_CASE("the self-signed anchor's signature is judged only with check_anchor_signature",
          "[policy][findings]") {
  auto chain = good_chain();
  chain.certs[2].sig_alg = "md2WithRSAEncryption";
  chain.certs[2].sig_hash = "md2";
  CHECK(findings_of(chain).empty());

  config::policy_config strict;
  strict.check_anchor_signature = true;
  const auto f = findings_of(chain, strict);
  REQUIRE(f.size() == 1);
  CHECK(same(f[0], "weak_signature", 2, "md2WithRSAEncryption"));

  SECTION("a top certificate that is not self-signed is no anchor") {
    chain.certs[2].self_signed = false;
    const auto g = findings_of(chain);
    REQUIRE(g.size() == 1);
    CHECK(same(g[0], "weak_signature", 2, "md2WithRSAEncryption"));
  }
  SECTION("a self-signed certificate that is not at the top is judged") {
    chain.certs[1].self_signed = true;
    chain.certs[1].sig_alg = "sha1WithRSAEncryption";
    chain.certs[1].sig_hash = "sha1";
    const auto g = findings_of(chain);
    REQUIRE(g.size() == 1);
    CHECK(same(g[0], "weak_signature", 1, "sha1WithRSAEncryption"));
  }
  SECTION("the anchor's key is judged regardless") {
    chain.certs[2].key_bits = 1024;
    const auto g = findings_of(chain);
    REQUIRE(g.size() == 1);
    CHECK(same(g[0], "weak_key", 2, "rsa:1024"));
  }
}

TEST_CASE("modern signature algorithms are not flagged unless their hash is weak",
          "[policy][findings]") {
  auto chain = good_chain();
  chain.certs[0].sig_alg = "ecdsa-with-SHA384";
  chain.certs[0].sig_hash = "sha384";
  chain.certs[0].key_type = "ec";
  chain.certs[0].key_bits = 384;
  chain.certs[1].sig_alg = "RSASSA-PSS";
  chain.certs[1].sig_hash = "sha256";
  chain.certs[1].key_type = "rsa-pss";
  chain.certs[1].key_bits = 3072;
  chain.certs[2].sig_alg = "ED25519";
  chain.certs[2].sig_hash = "";
  chain.certs[2].key_type = "ed25519";
  chain.certs[2].key_bits = 253;
  CHECK(findings_of(chain).empty());

  chain.certs[1].sig_hash = "sha1";  // RSA-PSS with SHA-1 inside its parameters
  chain.certs[0].sig_alg = "ecdsa-with-SHA1";
  chain.certs[0].sig_hash = "sha1";
  const auto f = findings_of(chain);
  REQUIRE(f.size() == 2);
  CHECK(same(f[0], "weak_signature", 0, "ecdsa-with-SHA1"));
  CHECK(same(f[1], "weak_signature", 1, "RSASSA-PSS"));
}

TEST_CASE("weak_key by key type", "[policy][findings]") {
  struct row {
    const char* type;
    int bits;
    bool weak;
  };
  const row rows[] = {
      {"rsa", 1024, true},     {"rsa", 2047, true},     {"rsa", 2048, false},
      {"rsa", 4096, false},    {"rsa-pss", 1024, true}, {"rsa-pss", 2048, false},
      {"dsa", 1024, true},     {"dsa", 2048, false},    {"ec", 192, true},
      {"ec", 160, true},       {"ec", 224, false},      {"ec", 256, false},
      {"ed25519", 253, false}, {"ed448", 456, false},   {"ed25519", 0, false},
  };
  for (const auto& r : rows) {
    auto chain = good_chain();
    chain.certs[0].key_type = r.type;
    chain.certs[0].key_bits = r.bits;
    INFO(r.type << ":" << r.bits);
    const auto f = findings_of(chain);
    if (r.weak) {
      REQUIRE(f.size() == 1);
      CHECK(same(f[0], "weak_key", 0, std::string(r.type) + ":" + std::to_string(r.bits)));
    } else {
      CHECK(f.empty());
    }
  }

  config::policy_config p3072;
  p3072.min_rsa_bits = 3072;
  auto chain = good_chain();
  const auto f = findings_of(chain, p3072);
  REQUIRE(f.size() == 3);
  for (int d = 0; d < 3; ++d) CHECK(same(f[d], "weak_key", d, "rsa:2048"));
}

TEST_CASE("expired and not_yet_valid, detail in RFC 3339", "[policy][findings]") {
  auto chain = good_chain();
  chain.certs[0].not_after = 1'600'000'000;   // 2020-09-13T12:26:40Z
  chain.certs[1].not_before = 1'800'000'000;  // 2027-01-15T08:00:00Z
  const auto f = findings_of(chain);
  REQUIRE(f.size() == 2);
  CHECK(same(f[0], "expired", 0, "2020-09-13T12:26:40Z"));
  CHECK(same(f[1], "not_yet_valid", 1, "2027-01-15T08:00:00Z"));

  SECTION("the bounds themselves are valid") {
    auto edge = good_chain();
    edge.certs[0].not_after = now;
    edge.certs[1].not_before = now;
    CHECK(findings_of(edge).empty());
  }
}

TEST_CASE("untrusted carries OpenSSL's error and depth", "[policy][findings]") {
  auto chain = good_chain();
  chain.trusted = false;
  chain.verify_error = "unable to get local issuer certificate";
  chain.verify_error_depth = 1;
  const auto f = findings_of(chain);
  REQUIRE(f.size() == 1);
  CHECK(same(f[0], "untrusted", 1, "unable to get local issuer certificate"));

  SECTION("no trust store, no untrusted finding") {
    chain.verify_attempted = false;
    CHECK(findings_of(chain).empty());
  }
  SECTION("verification that could not start reports depth 0") {
    chain.verify_error = "cannot initialise certificate verification";
    chain.verify_error_depth = -1;
    const auto g = findings_of(chain);
    REQUIRE(g.size() == 1);
    CHECK(same(g[0], "untrusted", 0, "cannot initialise certificate verification"));
  }
}

TEST_CASE("name_mismatch names the expected host", "[policy][findings]") {
  auto chain = good_chain();
  chain.name_matches = false;
  const auto f = findings_of(chain);
  REQUIRE(f.size() == 1);
  CHECK(same(f[0], "name_mismatch", 0, "expected mx.example"));

  chain.name_checked = false;  // no server_name configured
  CHECK(findings_of(chain).empty());
}

TEST_CASE("self_signed leaf", "[policy][findings]") {
  chain_evidence chain;
  auto leaf = good_cert(0, "CN=legacy.local", "CN=legacy.local");
  leaf.self_signed = true;
  leaf.sig_alg = "sha1WithRSAEncryption";
  leaf.sig_hash = "sha1";
  chain.certs.push_back(leaf);

  SECTION("without a trust store: self_signed; its own signature is exempt like any anchor's") {
    const auto f = findings_of(chain);
    REQUIRE(f.size() == 1);
    CHECK(same(f[0], "self_signed", 0, "CN=legacy.local"));
  }
  SECTION("not verified: self_signed, untrusted, and no anchor exemption for its signature") {
    // Nothing anchors a chain that did not verify, so the self-signature is judged (issue 12:
    // a self-signed MD5 client certificate was accepted without a weak_signature finding).
    chain.verify_attempted = true;
    chain.verify_error = "self-signed certificate";
    chain.verify_error_depth = 0;
    const auto f = findings_of(chain);
    REQUIRE(f.size() == 3);
    CHECK(same(f[0], "self_signed", 0, "CN=legacy.local"));
    CHECK(same(f[1], "weak_signature", 0, "sha1WithRSAEncryption"));
    CHECK(same(f[2], "untrusted", 0, "self-signed certificate"));
  }
  SECTION("in the trust store (verified): explicitly trusted, no self_signed") {
    chain.verify_attempted = true;
    chain.trusted = true;
    CHECK(findings_of(chain).empty());
  }
  SECTION("check_anchor_signature judges its signature too") {
    config::policy_config strict;
    strict.check_anchor_signature = true;
    const auto f = findings_of(chain, strict);
    REQUIRE(f.size() == 2);
    CHECK(same(f[0], "self_signed", 0, "CN=legacy.local"));
    CHECK(same(f[1], "weak_signature", 0, "sha1WithRSAEncryption"));
  }
}

TEST_CASE("findings come per certificate in depth order, then chain-level ones",
          "[policy][findings]") {
  auto chain = good_chain();
  chain.certs[0].key_bits = 1024;
  chain.certs[0].not_after = now - 1;
  chain.certs[1].sig_alg = "sha1WithRSAEncryption";
  chain.certs[1].sig_hash = "sha1";
  chain.trusted = false;
  chain.verify_error = "certificate signature failure";
  chain.verify_error_depth = 0;
  chain.name_matches = false;
  const auto f = findings_of(chain);
  REQUIRE(f.size() == 5);
  CHECK(f[0].kind == "weak_key");
  CHECK(f[1].kind == "expired");
  CHECK(f[2].kind == "weak_signature");
  CHECK(f[3].kind == "untrusted");
  CHECK(f[4].kind == "name_mismatch");
}
