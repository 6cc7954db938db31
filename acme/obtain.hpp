// The seam between the ACME client (acme/, RFC 8555) and the proxy that serves what it obtains
// (proxy/acme_service). The proxy calls obtain() on a thread of its own; obtain() runs one whole
// order for a set of names and answers the key and chain, or the step that failed and why.
#pragma once

#include <chrono>
#include <stop_token>
#include <string>
#include <vector>

namespace tlsbridge::acme {

// What the proxy must serve for one tls-alpn-01 challenge (RFC 8737): to a handshake whose
// ClientHello offers the "acme-tls/1" ALPN protocol for this server name, this self-signed
// certificate (with the critical acmeIdentifier extension) and its key, both PEM.
struct alpn_challenge {
  std::string name;  // lower-case DNS name
  std::string cert_pem;
  std::string key_pem;
};

// Implemented by the proxy (certs/acme_challenges): publish() before the challenge is answered
// to the CA, withdraw() once the authorization is decided, either way.
class challenge_responder {
 public:
  virtual ~challenge_responder() = default;
  virtual void publish(const alpn_challenge& challenge) = 0;
  virtual void withdraw(const std::string& name) = 0;
};

struct order_request {
  std::string directory_url;
  std::string ca_file;          // trust for the ACME server's HTTPS; "" = the system store
  std::string email;            // the account's contact; "" = none
  std::string account_key_pem;  // ES256: a P-256 private key
  std::vector<std::string> names;             // the first is the CSR's subject; all are in the SAN
  std::chrono::seconds timeout{300};          // the whole order, polls included
};

struct order_result {
  bool ok = false;
  // On failure: the step that failed ("directory", "nonce", "account", "order", "authorization",
  // "challenge", "finalize", "certificate", "chain_check", ...) and what went wrong, with the
  // server's problem document (type and detail) when it sent one.
  std::string step;
  std::string error;
  std::vector<std::string> failed_names;  // names whose authorization the CA found invalid
  // On success: the new certificate's private key (P-256) and its chain, leaf first, both PEM.
  // The chain has been checked: its leaf matches the key and covers every requested name.
  std::string key_pem;
  std::string chain_pem;
};

// Blocking; never throws. Returns early (step "stopped") when stop is requested.
order_result obtain(const order_request& request, challenge_responder& responder,
                    std::stop_token stop);

// A new ES256 account key (P-256), PEM.
std::string generate_account_key_pem();

}  // namespace tlsbridge::acme
