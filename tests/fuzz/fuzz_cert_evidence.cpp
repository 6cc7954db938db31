// Fuzz target for certs/chain_collector (describe_certificate, collect_chain) and policy's
// judge_chain, fed with DER: the input is one or more concatenated DER certificates, the first the
// leaf, the others what a peer would send after it. What parses is described, verified against an
// empty trust store, name-checked, judged under the default [policy] and rendered as the audit
// `chain` JSON. No crash; findings point at certificates of the chain; a refusal says why.
#include <openssl/x509.h>

#include <cstdint>
#include <ctime>
#include <memory>

#include "certs/chain_collector.hpp"
#include "policy/chain_findings.hpp"
#include "policy/policy_decision.hpp"
#include "tests/fuzz/fuzz_check.hpp"

namespace {

struct stack_free {
  void operator()(STACK_OF(X509) * s) const { sk_X509_pop_free(s, X509_free); }
};

X509_STORE* empty_store() {
  static X509_STORE* store = X509_STORE_new();
  return store;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const unsigned char* p = data;
  const unsigned char* const end = data + size;
  std::unique_ptr<X509, decltype(&X509_free)> leaf(d2i_X509(nullptr, &p, static_cast<long>(size)),
                                                   &X509_free);
  if (!leaf) return 0;
  std::unique_ptr<STACK_OF(X509), stack_free> untrusted(sk_X509_new_null());
  while (p < end && sk_X509_num(untrusted.get()) < 8) {
    X509* c = d2i_X509(nullptr, &p, static_cast<long>(end - p));
    if (c == nullptr) break;
    sk_X509_push(untrusted.get(), c);
  }
  const int presented = 1 + sk_X509_num(untrusted.get());

  const tlsbridge::policy::cert_evidence one =
      tlsbridge::certs::describe_certificate(leaf.get(), 0);
  FUZZ_CHECK(one.depth == 0);
  FUZZ_CHECK(one.sha256.size() == 64);

  // A fixed "now" keeps the run reproducible: 2026-01-01T00:00:00Z.
  constexpr std::int64_t now = 1767225600;
  const tlsbridge::config::policy_config policy;
  for (const char* name : {"", "mail.test", "127.0.0.1"}) {
    tlsbridge::certs::verify_settings settings;
    settings.store = empty_store();
    settings.server_name = name;
    const auto chain = tlsbridge::certs::collect_chain(leaf.get(), untrusted.get(), settings);
    FUZZ_CHECK(!chain.certs.empty() && static_cast<int>(chain.certs.size()) <= presented);
    for (std::size_t i = 0; i < chain.certs.size(); ++i)
      FUZZ_CHECK(chain.certs[i].depth == static_cast<int>(i));
    FUZZ_CHECK(chain.verify_attempted);

    for (const auto& f : tlsbridge::policy::chain_findings(chain, policy, now)) {
      FUZZ_CHECK(f.depth >= 0);
      if (f.kind == tlsbridge::policy::kind_untrusted)
        FUZZ_CHECK(f.depth < presented);  // OpenSSL's error depth, in the chain it built
      else
        FUZZ_CHECK(f.depth < static_cast<int>(chain.certs.size()));
    }
    const tlsbridge::policy::peer_context peer{"fuzz", std::nullopt, "mx.example", std::nullopt,
                                               false};
    for (bool trusted_by_config : {false, true}) {
      const auto d = tlsbridge::policy::judge_chain(chain, policy, peer, trusted_by_config, now);
      FUZZ_CHECK(d.findings.size() == d.actions.size());
      if (d.result == tlsbridge::policy::verdict::refused) {
        FUZZ_CHECK(!trusted_by_config);
        FUZZ_CHECK(!d.reason.empty());
      }
      if (d.findings.empty()) FUZZ_CHECK(d.result == tlsbridge::policy::verdict::clean);
      (void)tlsbridge::policy::chain_to_json(chain, d.findings, d.result, d.rule);
    }
  }
  return 0;
}
