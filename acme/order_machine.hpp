// One RFC 8555 order as a next-action machine, free of I/O: fed the HTTP responses to the requests
// it asked for, it answers the next thing to do — a request, a wait, publish or withdraw a
// tls-alpn-01 challenge certificate, done (key and checked chain) or failed {step, error}.
// directory → newNonce → newAccount → newOrder → each authorization → its tls-alpn-01 challenge
// (published, answered, the authorization polled) → finalize with the CSR → the order polled →
// the certificate downloaded and checked against the key and the names.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "acme/account_key.hpp"
#include "acme/obtain.hpp"

namespace tlsbridge::acme {

struct http_request {
  std::string method;  // "GET", "HEAD" or "POST" (a JWS body, application/jose+json)
  std::string url;
  std::string body;
};

struct http_response {
  int status = 0;
  std::string content_type;
  std::string replay_nonce;
  std::string location;
  std::string retry_after;
  std::string body;
};

struct order_action {
  enum class kind { request, wait, publish, withdraw, done, failed };
  kind what = kind::failed;
  http_request request;           // request
  std::chrono::seconds delay{0};  // wait
  alpn_challenge challenge;       // publish
  std::string name;               // withdraw
  order_result result;            // done, failed
};

struct order_limits {
  size_t max_body = 1024 * 1024;
  int max_polls = 30;             // per authorization and for the order
  int max_bad_nonce_retries = 5;  // per request
  std::chrono::seconds default_wait{1};
  std::chrono::seconds max_wait{10};  // a larger Retry-After is cut to this
};

struct order_settings {
  std::string directory_url;
  std::string email;
  std::vector<std::string> names;
  order_limits limits;
};

class order_machine {
 public:
  // `cert_key` is the new certificate's key (its PEM is handed out with the chain).
  order_machine(order_settings settings, account_key account, pkey_ptr cert_key);

  order_action start();
  // After a `request`: its response.
  order_action on_response(const http_response& response);
  // After a `request` that got no response (connect, TLS, timeout, too large): what went wrong.
  order_action on_transport_error(const std::string& error);
  // After a `wait`, `publish` or `withdraw` was carried out.
  order_action resume();

  // The step the machine is at ("directory", "nonce", "account", ...).
  const char* step() const;

 private:
  enum class stage {
    directory,
    nonce,
    account,
    order,
    authorization,
    publish,
    challenge,
    poll_authorization,
    finalize,
    poll_order,
    certificate,
    finished
  };
  struct post {
    std::string url;
    std::string payload;
    bool with_jwk = false;
  };

  order_action send(stage at, post p);
  order_action send_pending();
  order_action fail(const std::string& error);
  order_action fail_at(const char* step, const std::string& error);
  // A failure that names the authorization's identifier in failed_names.
  order_action fail_invalid(const std::string& error);
  order_action wait(const http_response& response);
  order_action next_authorization();
  order_action finalize();
  order_action on_directory(const http_response& r);
  order_action on_account(const http_response& r);
  order_action on_order(const http_response& r);
  order_action on_authorization(const http_response& r);
  order_action on_challenge(const http_response& r);
  order_action on_poll_authorization(const http_response& r);
  order_action on_finalize_or_poll(const http_response& r);
  order_action on_certificate(const http_response& r);
  order_action withdraw_then(order_action after);
  bool url_ok(const std::string& url) const;

  order_settings settings_;
  account_key account_;
  pkey_ptr cert_key_;
  stage stage_ = stage::directory;
  stage resume_stage_ = stage::directory;  // what resume() continues with
  bool fetching_nonce_ = false;
  std::string nonce_;
  post pending_;
  int bad_nonce_retries_ = 0;
  int polls_ = 0;
  std::string new_nonce_url_, new_account_url_, new_order_url_;
  std::string kid_;
  std::string order_url_, finalize_url_, certificate_url_;
  std::vector<std::string> authorizations_;
  size_t next_authz_ = 0;
  std::string authz_url_, authz_name_, challenge_url_;
  std::optional<alpn_challenge> published_;
  std::optional<order_action> after_withdraw_;
};

}  // namespace tlsbridge::acme
