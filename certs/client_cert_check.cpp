#include "certs/client_cert_check.hpp"

#include <algorithm>
#include <ctime>
#include <stdexcept>

#include "certs/chain_collector.hpp"
#include "policy/chain_findings.hpp"

namespace tlsbridge::certs {

namespace {

int check_index() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

// OpenSSL's whole-chain verification hook (SSL_CTX_set_cert_verify_callback): evidence first,
// then the policy decides. Returning 0 makes OpenSSL end the handshake with an alert.
int verify_with_policy(X509_STORE_CTX* store_ctx, void*) {
  auto* ssl = static_cast<SSL*>(
      X509_STORE_CTX_get_ex_data(store_ctx, SSL_get_ex_data_X509_STORE_CTX_idx()));
  auto* check =
      ssl ? static_cast<client_chain_check*>(SSL_get_ex_data(ssl, check_index())) : nullptr;
  if (!check || !check->policy) {
    // No policy context (a handshake the session did not prepare): fail closed.
    X509_STORE_CTX_set_error(store_ctx, X509_V_ERR_APPLICATION_VERIFICATION);
    return 0;
  }
  judge_client_chain(*check, X509_STORE_CTX_get0_cert(store_ctx),
                     X509_STORE_CTX_get0_untrusted(store_ctx), std::time(nullptr));
  if (check->decision->result == policy::verdict::refused) {
    X509_STORE_CTX_set_error(store_ctx, X509_V_ERR_CERT_REJECTED);
    return 0;
  }
  return 1;
}

}  // namespace

void judge_client_chain(client_chain_check& check, X509* leaf, STACK_OF(X509) * presented,
                        std::int64_t now) {
  verify_settings settings;
  // Path building only from client_ca's store: OpenSSL never takes a presented certificate as an
  // anchor (no X509_V_FLAG_PARTIAL_CHAIN, no self-signed leaf accepted: RFC 5280 §6.1 takes the
  // trust anchor from the relying party, not from the peer). A missing store verifies against an
  // empty one, so every chain is untrusted: fail closed.
  static X509_STORE* const empty_store = X509_STORE_new();
  settings.store = check.trust ? check.trust : empty_store;
  // A client chain must be fit for client authentication (RFC 5280 §4.2.1.12: a leaf whose
  // extendedKeyUsage lacks clientAuth is not for this purpose).
  settings.purpose = X509_PURPOSE_SSL_CLIENT;
  check.evidence = collect_chain(leaf, presented, settings);
  check.decision = policy::judge_chain(*check.evidence, *check.policy, check.peer,
                                       /*trusted_by_configuration=*/false, now);
  if (leaf == nullptr || check.evidence->trusted) return;

  // SECURITY.md, "What it trusts": the chain does not end in client_ca. Refused whatever
  // on_untrusted (or a rule) says, and recorded as such: the untrusted finding carries the action
  // refuse.
  policy::decision& d = *check.decision;
  const std::string detail = check.evidence->verify_error.empty() ? std::string("not verified")
                                                                  : check.evidence->verify_error;
  const int depth = std::max(check.evidence->verify_error_depth, 0);
  bool recorded = false;
  for (std::size_t i = 0; i < d.findings.size(); ++i) {
    if (d.findings[i].kind != policy::kind_untrusted) continue;
    d.actions[i] = config::policy_action::refuse;
    recorded = true;
  }
  if (!recorded) {
    d.findings.push_back({policy::kind_untrusted, depth, detail});
    d.actions.push_back(config::policy_action::refuse);
  }
  // The trust rule is named first: it is why the handshake ended, whatever else was found.
  d.reason = std::string(client_trust_rule) + ": untrusted at depth " + std::to_string(depth) +
             ": " + detail + (d.result == policy::verdict::refused ? "; also " + d.reason : "");
  d.result = policy::verdict::refused;
}

void enable_client_certificates(SSL_CTX* ctx, config::client_cert_mode mode,
                                const std::filesystem::path& ca_names) {
  if (mode == config::client_cert_mode::none) return;
  int verify = SSL_VERIFY_PEER;
  if (mode == config::client_cert_mode::required) verify |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
  SSL_CTX_set_verify(ctx, verify, nullptr);
  SSL_CTX_set_cert_verify_callback(ctx, verify_with_policy, nullptr);
  if (!ca_names.empty()) {
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(ca_names.c_str());
    if (!names)
      throw std::runtime_error("cannot read client_ca " + ca_names.string() + ": " +
                               last_openssl_error());
    SSL_CTX_set_client_CA_list(ctx, names);
  }
}

void attach_client_check(SSL* ssl, client_chain_check* check) {
  SSL_set_ex_data(ssl, check_index(), check);
}

}  // namespace tlsbridge::certs
