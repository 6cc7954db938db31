#include "certs/client_cert_check.hpp"

#include <ctime>
#include <stdexcept>

#include "certs/chain_collector.hpp"

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
  auto* check = ssl ? static_cast<client_chain_check*>(SSL_get_ex_data(ssl, check_index()))
                    : nullptr;
  if (!check || !check->policy) {
    // No policy context (a handshake the session did not prepare): fail closed.
    X509_STORE_CTX_set_error(store_ctx, X509_V_ERR_APPLICATION_VERIFICATION);
    return 0;
  }
  verify_settings settings;
  settings.store = check->trust;
  check->evidence = collect_chain(X509_STORE_CTX_get0_cert(store_ctx),
                                  X509_STORE_CTX_get0_untrusted(store_ctx), settings);
  check->decision = policy::judge_chain(*check->evidence, *check->policy, check->peer,
                                        /*trusted_by_configuration=*/false, std::time(nullptr));
  if (check->decision->result == policy::verdict::refused) {
    X509_STORE_CTX_set_error(store_ctx, X509_V_ERR_CERT_REJECTED);
    return 0;
  }
  return 1;
}

}  // namespace

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
