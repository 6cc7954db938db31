// Placeholder until the RFC 8555 client lands: every order fails at its first step.
#include "acme/obtain.hpp"

namespace tlsbridge::acme {

order_result obtain(const order_request&, challenge_responder&, std::stop_token) {
  order_result result;
  result.step = "directory";
  result.error = "the ACME client is not built yet";
  return result;
}

std::string generate_account_key_pem() { return {}; }

}  // namespace tlsbridge::acme
