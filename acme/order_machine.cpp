// One RFC 8555 order as a next-action machine, free of I/O.
#include "acme/order_machine.hpp"

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>

#include "acme/base64url.hpp"
#include "acme/chain_check.hpp"
#include "acme/challenge_cert.hpp"
#include "acme/csr.hpp"
#include "acme/jws.hpp"
#include "common/ascii_case.hpp"

namespace tlsbridge::acme {

namespace {

namespace json = boost::json;

constexpr const char* bad_nonce = "urn:ietf:params:acme:error:badNonce";

std::optional<json::object> parse_object(const std::string& body, std::string& error) {
  json::error_code ec;
  json::value value = json::parse(body, ec);
  if (ec) {
    error = "the response is not JSON: " + ec.message();
    return std::nullopt;
  }
  if (!value.is_object()) {
    error = "the response is not a JSON object";
    return std::nullopt;
  }
  return std::move(value.as_object());
}

std::string text(const json::object& object, const char* key) {
  const json::value* value = object.if_contains(key);
  if (!value || !value->is_string()) return {};
  return std::string(value->as_string());
}

const json::object* member_object(const json::object& object, const char* key) {
  const json::value* value = object.if_contains(key);
  return value ? value->if_object() : nullptr;
}

// "type: detail" of a problem document (RFC 7807), or "".
std::string problem_text(const json::object& problem) {
  std::string type = text(problem, "type");
  std::string detail = text(problem, "detail");
  if (type.empty() && detail.empty()) return {};
  return detail.empty() ? type : type.empty() ? detail : type + ": " + detail;
}

bool starts_with_ci(const std::string& s, const char* prefix) {
  return ascii::lower(s.substr(0, std::char_traits<char>::length(prefix))) == prefix;
}

bool is_token(const std::string& token) {
  return !token.empty() && token.size() <= 256 &&
         std::all_of(token.begin(), token.end(),
                     [](unsigned char c) { return std::isalnum(c) || c == '-' || c == '_'; });
}

std::string contact_payload(const std::string& email) {
  json::object payload;
  payload["termsOfServiceAgreed"] = true;
  if (!email.empty()) payload["contact"] = json::array{json::value("mailto:" + email)};
  return json::serialize(payload);
}

std::string order_payload(const std::vector<std::string>& names) {
  json::array identifiers;
  for (const auto& name : names)
    identifiers.push_back(json::object{{"type", "dns"}, {"value", name}});
  return json::serialize(json::object{{"identifiers", std::move(identifiers)}});
}

}  // namespace

order_machine::order_machine(order_settings settings, account_key account, pkey_ptr cert_key)
    : settings_(std::move(settings)), account_(std::move(account)), cert_key_(std::move(cert_key)) {
  for (auto& name : settings_.names) name = ascii::lower(name);
}

const char* order_machine::step() const {
  if (fetching_nonce_) return "nonce";
  switch (stage_) {
    case stage::directory:
      return "directory";
    case stage::nonce:
      return "nonce";
    case stage::account:
      return "account";
    case stage::order:
      return "order";
    case stage::authorization:
    case stage::poll_authorization:
      return "authorization";
    case stage::publish:
    case stage::challenge:
      return "challenge";
    case stage::finalize:
    case stage::poll_order:
      return "finalize";
    case stage::certificate:
      return "certificate";
    case stage::finished:
      return "finished";
  }
  return "unknown";
}

bool order_machine::url_ok(const std::string& url) const {
  if (url.empty()) return false;
  if (starts_with_ci(settings_.directory_url, "https://")) return starts_with_ci(url, "https://");
  return starts_with_ci(url, "https://") || starts_with_ci(url, "http://");
}

order_action order_machine::start() {
  if (settings_.names.empty()) return fail_at("order", "no names to order");
  if (!url_ok(settings_.directory_url))
    return fail_at("directory", "the directory URL is not http(s)");
  stage_ = stage::directory;
  order_action action;
  action.what = order_action::kind::request;
  action.request = {"GET", settings_.directory_url, {}};
  return action;
}

order_action order_machine::send(stage at, post p) {
  stage_ = at;
  pending_ = std::move(p);
  bad_nonce_retries_ = 0;
  return send_pending();
}

order_action order_machine::send_pending() {
  order_action action;
  action.what = order_action::kind::request;
  if (nonce_.empty()) {
    fetching_nonce_ = true;
    action.request = {"HEAD", new_nonce_url_, {}};
    return action;
  }
  const std::string body = jws_sign(
      account_, {nonce_, pending_.url, pending_.with_jwk ? std::string() : kid_}, pending_.payload);
  nonce_.clear();  // a nonce is good for one request
  if (body.empty()) return fail("cannot sign the request with the account key");
  action.request = {"POST", pending_.url, body};
  return action;
}

order_action order_machine::fail(const std::string& error) {
  return fail_at(step(), error);
}

order_action order_machine::fail_invalid(const std::string& error) {
  order_action action = fail(error);
  order_action& failed = after_withdraw_ ? *after_withdraw_ : action;
  failed.result.failed_names.push_back(authz_name_);
  return action;
}

order_action order_machine::fail_at(const char* step, const std::string& error) {
  order_action action;
  action.what = order_action::kind::failed;
  action.result.step = step;
  action.result.error = error;
  stage_ = stage::finished;
  fetching_nonce_ = false;
  return withdraw_then(std::move(action));
}

order_action order_machine::withdraw_then(order_action after) {
  if (!published_) return after;
  order_action action;
  action.what = order_action::kind::withdraw;
  action.name = published_->name;
  published_.reset();
  after_withdraw_ = std::move(after);
  return action;
}

order_action order_machine::wait(const http_response& response) {
  std::chrono::seconds delay = settings_.limits.default_wait;
  const std::string& value = response.retry_after;
  if (!value.empty() && value.size() <= 9 &&
      std::all_of(value.begin(), value.end(), [](unsigned char c) { return std::isdigit(c); }))
    delay = std::chrono::seconds(std::stol(value));
  delay = std::clamp(delay, std::chrono::seconds(0), settings_.limits.max_wait);
  order_action action;
  action.what = order_action::kind::wait;
  action.delay = delay;
  return action;
}

order_action order_machine::on_transport_error(const std::string& error) {
  return fail(error);
}

order_action order_machine::resume() {
  if (after_withdraw_) {
    order_action after = std::move(*after_withdraw_);
    after_withdraw_.reset();
    return after;
  }
  switch (resume_stage_) {
    case stage::publish:
      return send(stage::challenge, {challenge_url_, "{}"});
    case stage::poll_authorization:
      return send(stage::poll_authorization, {authz_url_, ""});
    case stage::poll_order:
      return send(stage::poll_order, {order_url_, ""});
    case stage::authorization:
      return next_authorization();
    default:
      return fail("nothing to resume");
  }
}

order_action order_machine::on_response(const http_response& r) {
  if (stage_ == stage::finished) return fail("a response after the order ended");
  if (r.body.size() > settings_.limits.max_body)
    return fail("the response body is over " + std::to_string(settings_.limits.max_body) +
                " bytes");
  if (!r.replay_nonce.empty()) nonce_ = r.replay_nonce;
  if (fetching_nonce_) {
    if (r.status != 200 && r.status != 204)
      return fail("newNonce answered HTTP " + std::to_string(r.status));
    if (nonce_.empty()) return fail("newNonce answered no Replay-Nonce");
    fetching_nonce_ = false;
    return send_pending();
  }
  if (r.status < 200 || r.status > 299) {
    std::string ignored;
    const auto problem = parse_object(r.body, ignored);
    const std::string type = problem ? text(*problem, "type") : std::string();
    if (stage_ != stage::directory && type == bad_nonce &&
        bad_nonce_retries_ < settings_.limits.max_bad_nonce_retries) {
      ++bad_nonce_retries_;
      return send_pending();
    }
    std::string what = problem ? problem_text(*problem) : std::string();
    return fail("HTTP " + std::to_string(r.status) + (what.empty() ? "" : ": " + what));
  }
  switch (stage_) {
    case stage::directory:
      return on_directory(r);
    case stage::account:
      return on_account(r);
    case stage::order:
      return on_order(r);
    case stage::authorization:
      return on_authorization(r);
    case stage::challenge:
      return on_challenge(r);
    case stage::poll_authorization:
      return on_poll_authorization(r);
    case stage::finalize:
    case stage::poll_order:
      return on_finalize_or_poll(r);
    case stage::certificate:
      return on_certificate(r);
    default:
      return fail("an unexpected response");
  }
}

order_action order_machine::on_directory(const http_response& r) {
  std::string error;
  const auto dir = parse_object(r.body, error);
  if (!dir) return fail(error);
  new_nonce_url_ = text(*dir, "newNonce");
  new_account_url_ = text(*dir, "newAccount");
  new_order_url_ = text(*dir, "newOrder");
  for (const auto* url : {&new_nonce_url_, &new_account_url_, &new_order_url_})
    if (!url_ok(*url)) return fail("the directory lacks newNonce, newAccount or newOrder (https)");
  return send(stage::account, {new_account_url_, contact_payload(settings_.email), true});
}

order_action order_machine::on_account(const http_response& r) {
  if (r.status != 200 && r.status != 201)
    return fail("newAccount answered HTTP " + std::to_string(r.status));
  if (!url_ok(r.location)) return fail("newAccount answered no https Location (the account URL)");
  std::string error;
  const auto account = parse_object(r.body, error);
  if (!account) return fail(error);
  const std::string status = text(*account, "status");
  if (!status.empty() && status != "valid") return fail("the account is " + status);
  kid_ = r.location;
  return send(stage::order, {new_order_url_, order_payload(settings_.names)});
}

order_action order_machine::on_order(const http_response& r) {
  std::string error;
  const auto order = parse_object(r.body, error);
  if (!order) return fail(error);
  order_url_ = r.location;
  finalize_url_ = text(*order, "finalize");
  if (!url_ok(order_url_)) return fail("newOrder answered no https Location (the order URL)");
  if (!url_ok(finalize_url_)) return fail("the order has no https finalize URL");
  const std::string status = text(*order, "status");
  if (status == "invalid") return fail("the new order is invalid");
  const json::value* list = order->if_contains("authorizations");
  if (!list || !list->is_array()) return fail("the order has no authorizations");
  authorizations_.clear();
  for (const auto& item : list->as_array()) {
    if (!item.is_string() || !url_ok(std::string(item.as_string())))
      return fail("the order has an authorization that is not an https URL");
    authorizations_.emplace_back(item.as_string());
  }
  if (authorizations_.size() > 100) return fail("the order has over 100 authorizations");
  next_authz_ = 0;
  return next_authorization();
}

order_action order_machine::next_authorization() {
  authz_name_.clear();
  if (next_authz_ >= authorizations_.size()) return finalize();
  authz_url_ = authorizations_[next_authz_++];
  polls_ = 0;
  return send(stage::authorization, {authz_url_, ""});
}

order_action order_machine::on_authorization(const http_response& r) {
  std::string error;
  const auto authz = parse_object(r.body, error);
  if (!authz) return fail(error);
  const json::object* identifier = member_object(*authz, "identifier");
  authz_name_ = identifier ? ascii::lower(text(*identifier, "value")) : std::string();
  if (authz_name_.empty()) return fail("the authorization names no identifier");
  const std::string status = text(*authz, "status");
  if (status == "valid") return next_authorization();
  if (status != "pending")
    return fail_invalid("the authorization for " + authz_name_ + " is " + status);
  const json::value* challenges = authz->if_contains("challenges");
  if (!challenges || !challenges->is_array()) return fail("the authorization has no challenges");
  std::string token;
  challenge_url_.clear();
  for (const auto& item : challenges->as_array()) {
    const json::object* challenge = item.if_object();
    if (challenge && text(*challenge, "type") == "tls-alpn-01") {
      challenge_url_ = text(*challenge, "url");
      token = text(*challenge, "token");
      break;
    }
  }
  if (token.empty() && challenge_url_.empty())
    return fail_invalid("no tls-alpn-01 challenge offered for " + authz_name_);
  if (!url_ok(challenge_url_)) return fail("the tls-alpn-01 challenge has no https URL");
  if (!is_token(token)) return fail("the tls-alpn-01 challenge has no valid token");
  auto cert =
      make_challenge_cert(authz_name_, key_authorization(token, account_.thumbprint()), error);
  if (!cert) return fail(error);
  stage_ = stage::publish;
  published_ = cert;
  resume_stage_ = stage::publish;
  order_action action;
  action.what = order_action::kind::publish;
  action.challenge = std::move(*cert);
  return action;
}

order_action order_machine::on_challenge(const http_response& r) {
  std::string error;
  const auto challenge = parse_object(r.body, error);
  if (!challenge) return fail(error);
  if (text(*challenge, "status") == "invalid") {
    const json::object* problem = member_object(*challenge, "error");
    return fail_invalid("the challenge for " + authz_name_ + " is invalid" +
                        (problem ? ": " + problem_text(*problem) : std::string()));
  }
  polls_ = 0;
  return send(stage::poll_authorization, {authz_url_, ""});
}

order_action order_machine::on_poll_authorization(const http_response& r) {
  std::string error;
  const auto authz = parse_object(r.body, error);
  if (!authz) return fail(error);
  const std::string status = text(*authz, "status");
  if (status == "valid") {
    resume_stage_ = stage::authorization;
    if (!published_) return next_authorization();
    order_action action;
    action.what = order_action::kind::withdraw;
    action.name = published_->name;
    published_.reset();
    return action;
  }
  if (status == "pending") {
    if (++polls_ > settings_.limits.max_polls)
      return fail("the authorization for " + authz_name_ + " is still pending after " +
                  std::to_string(settings_.limits.max_polls) + " polls");
    resume_stage_ = stage::poll_authorization;
    return wait(r);
  }
  std::string why;
  if (const json::value* challenges = authz->if_contains("challenges");
      challenges && challenges->is_array())
    for (const auto& item : challenges->as_array())
      if (const json::object* c = item.if_object(); c && text(*c, "type") == "tls-alpn-01")
        if (const json::object* problem = member_object(*c, "error")) why = problem_text(*problem);
  return fail_invalid("the authorization for " + authz_name_ + " is " +
                      (status.empty() ? std::string("without status") : status) +
                      (why.empty() ? "" : ": " + why));
}

order_action order_machine::finalize() {
  const std::string csr = make_csr_der(cert_key_.get(), settings_.names);
  stage_ = stage::finalize;
  if (csr.empty()) return fail("cannot make the CSR for these names");
  polls_ = 0;
  json::object payload{{"csr", base64url(csr)}};
  return send(stage::finalize, {finalize_url_, json::serialize(payload)});
}

order_action order_machine::on_finalize_or_poll(const http_response& r) {
  std::string error;
  const auto order = parse_object(r.body, error);
  if (!order) return fail(error);
  const std::string status = text(*order, "status");
  if (status == "valid") {
    certificate_url_ = text(*order, "certificate");
    if (!url_ok(certificate_url_)) return fail("the valid order has no https certificate URL");
    return send(stage::certificate, {certificate_url_, ""});
  }
  if (status == "processing" || status == "ready" || status == "pending") {
    if (++polls_ > settings_.limits.max_polls)
      return fail("the order is still " + status + " after " +
                  std::to_string(settings_.limits.max_polls) + " polls");
    resume_stage_ = stage::poll_order;
    stage_ = stage::poll_order;
    return wait(r);
  }
  const json::object* problem = member_object(*order, "error");
  return fail("the order is " + (status.empty() ? std::string("without status") : status) +
              (problem ? ": " + problem_text(*problem) : std::string()));
}

order_action order_machine::on_certificate(const http_response& r) {
  if (r.status != 200)
    return fail("the certificate download answered HTTP " + std::to_string(r.status));
  const std::string problem = check_chain(r.body, cert_key_.get(), settings_.names);
  if (!problem.empty()) return fail_at("chain_check", problem);
  order_action action;
  action.what = order_action::kind::done;
  action.result.ok = true;
  action.result.key_pem = private_key_pem(cert_key_.get());
  action.result.chain_pem = r.body;
  stage_ = stage::finished;
  if (action.result.key_pem.empty()) return fail("cannot write the certificate key");
  return action;
}

}  // namespace tlsbridge::acme
