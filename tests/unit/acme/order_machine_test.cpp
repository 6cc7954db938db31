#include "acme/order_machine.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include "acme_test_util.hpp"

using namespace tlsbridge::acme;
namespace json = boost::json;
using kind = order_action::kind;

namespace {

const std::string ca = "https://ca.test";

http_response reply(int status, std::string body, std::string nonce = "", std::string location = "",
                    std::string retry_after = "") {
  http_response r;
  r.status = status;
  r.body = std::move(body);
  r.replay_nonce = std::move(nonce);
  r.location = std::move(location);
  r.retry_after = std::move(retry_after);
  r.content_type = "application/json";
  return r;
}

const std::string directory =
    R"({"newNonce":"https://ca.test/nonce","newAccount":"https://ca.test/acct",
  "newOrder":"https://ca.test/order","meta":{"termsOfService":"https://ca.test/tos"}})";

std::string authz(const std::string& status, const std::string& extra = "") {
  return R"({"identifier":{"type":"dns","value":"mail.example.org"},"status":")" + status +
         R"(","challenges":[{"type":"http-01","url":"https://ca.test/chal/h","token":"AAA"},
         {"type":"tls-alpn-01","url":"https://ca.test/chal/t","token":"tok-1_x")" +
         extra + "}]}";
}

std::string str(const json::value& v) {
  return v.is_string() ? std::string(v.as_string()) : "<not a string>";
}

// The JWS protected header and payload of a POST.
struct posted {
  json::object header;
  std::string payload;
};
posted decode(const order_action& a) {
  const json::object jws = json::parse(a.request.body).as_object();
  return {json::parse(test::unb64(std::string(jws.at("protected").as_string()))).as_object(),
          test::unb64(std::string(jws.at("payload").as_string()))};
}

// A machine for mail.example.org whose certificate key the test keeps a handle on.
struct fixture {
  pkey_ptr cert_key = new_p256_key();
  pkey_ptr ca_key = new_p256_key();
  account_key account = *account_key::generate();
  order_machine machine;
  explicit fixture(order_limits limits = {})
      : machine({ca + "/dir", "ops@example.org", {"Mail.Example.org"}, limits}, account,
                test::share(cert_key.get())) {}

  // directory → newNonce → newAccount → newOrder → the authorization; answers the last action.
  order_action up_to_authorization() {
    auto a = machine.start();
    REQUIRE(a.request.method == "GET");
    REQUIRE(a.request.url == ca + "/dir");
    a = machine.on_response(reply(200, directory));
    REQUIRE(a.request.method == "HEAD");
    REQUIRE(a.request.url == ca + "/nonce");
    a = machine.on_response(reply(200, "", "n1"));
    REQUIRE(a.request.url == ca + "/acct");
    a = machine.on_response(reply(201, R"({"status":"valid"})", "n2", ca + "/acct/1"));
    REQUIRE(a.request.url == ca + "/order");
    a = machine.on_response(
        reply(201,
              R"({"status":"pending","authorizations":["https://ca.test/authz/1"],
                                      "finalize":"https://ca.test/order/1/finalize"})",
              "n3", ca + "/order/1"));
    REQUIRE(a.request.url == ca + "/authz/1");
    return a;
  }
  // Up to the challenge certificate's publication.
  order_action up_to_publish() {
    up_to_authorization();
    return machine.on_response(reply(200, authz("pending"), "n4"));
  }
};

}  // namespace

TEST_CASE("order machine: the happy path from the directory to a checked chain", "[acme]") {
  fixture f;
  auto a = f.machine.start();
  CHECK(a.what == kind::request);
  a = f.machine.on_response(reply(200, directory));
  CHECK(f.machine.step() == std::string("nonce"));
  a = f.machine.on_response(reply(204, "", "n1"));
  REQUIRE(a.request.method == "POST");
  auto p = decode(a);
  CHECK(str(p.header.at("nonce")) == "n1");
  CHECK(p.header.contains("jwk"));
  CHECK(json::parse(p.payload) ==
        json::parse(R"({"termsOfServiceAgreed":true,"contact":["mailto:ops@example.org"]})"));
  // 200 (an existing account) is as good as 201.
  a = f.machine.on_response(reply(200, R"({"status":"valid"})", "n2", ca + "/acct/1"));
  p = decode(a);
  CHECK(str(p.header.at("kid")) == ca + "/acct/1");
  CHECK(str(p.header.at("nonce")) == "n2");
  CHECK(json::parse(p.payload) ==
        json::parse(R"({"identifiers":[{"type":"dns","value":"mail.example.org"}]})"));
  a = f.machine.on_response(
      reply(201,
            R"({"status":"pending","authorizations":["https://ca.test/authz/1"],
                                      "finalize":"https://ca.test/order/1/finalize"})",
            "n3", ca + "/order/1"));
  CHECK(decode(a).payload == "");  // POST-as-GET
  a = f.machine.on_response(reply(200, authz("pending"), "n4"));
  REQUIRE(a.what == kind::publish);
  CHECK(a.challenge.name == "mail.example.org");
  CHECK(f.machine.step() == std::string("challenge"));
  a = f.machine.resume();
  CHECK(a.request.url == ca + "/chal/t");
  CHECK(decode(a).payload == "{}");
  a = f.machine.on_response(reply(200, R"({"type":"tls-alpn-01","status":"processing"})", "n5"));
  CHECK(a.request.url == ca + "/authz/1");
  a = f.machine.on_response(reply(200, authz("pending"), "n6", "", "3"));
  REQUIRE(a.what == kind::wait);
  CHECK(a.delay == std::chrono::seconds(3));  // Retry-After honoured
  a = f.machine.resume();
  CHECK(a.request.url == ca + "/authz/1");
  a = f.machine.on_response(reply(200, authz("valid"), "n7"));
  REQUIRE(a.what == kind::withdraw);
  CHECK(a.name == "mail.example.org");
  a = f.machine.resume();
  CHECK(a.request.url == ca + "/order/1/finalize");
  CHECK(f.machine.step() == std::string("finalize"));
  const std::string csr = json::parse(decode(a).payload).at("csr").as_string().c_str();
  CHECK(csr.find_first_of("+/=") == std::string::npos);
  a = f.machine.on_response(reply(200, R"({"status":"processing"})", "n8", "", "3600"));
  REQUIRE(a.what == kind::wait);
  CHECK(a.delay == std::chrono::seconds(10));  // Retry-After capped
  a = f.machine.resume();
  CHECK(a.request.url == ca + "/order/1");
  a = f.machine.on_response(
      reply(200, R"({"status":"valid","certificate":"https://ca.test/cert/1"})", "n9"));
  CHECK(a.request.url == ca + "/cert/1");
  const std::string chain =
      test::issue_chain(f.cert_key.get(), {"mail.example.org"}, f.ca_key.get());
  a = f.machine.on_response(reply(200, chain, "n10"));
  REQUIRE(a.what == kind::done);
  CHECK(a.result.ok);
  CHECK(a.result.chain_pem == chain);
  auto key = test::parse_key(a.result.key_pem);
  REQUIRE(key);
  CHECK(EVP_PKEY_eq(key.get(), f.cert_key.get()) == 1);
}

TEST_CASE("order machine: badNonce is retried with the new nonce, a bounded number of times",
          "[acme]") {
  fixture f({.max_bad_nonce_retries = 2});
  auto a = f.machine.start();
  a = f.machine.on_response(reply(200, directory));
  a = f.machine.on_response(reply(200, "", "n1"));
  const std::string bad =
      R"({"type":"urn:ietf:params:acme:error:badNonce","detail":"JWS has an invalid anti-replay nonce"})";
  a = f.machine.on_response(reply(400, bad, "n2"));
  REQUIRE(a.request.url == ca + "/acct");
  CHECK(str(decode(a).header.at("nonce")) == "n2");
  a = f.machine.on_response(reply(400, bad, "n3"));
  CHECK(str(decode(a).header.at("nonce")) == "n3");
  a = f.machine.on_response(reply(400, bad, "n4"));
  REQUIRE(a.what == kind::failed);
  CHECK(a.result.step == "account");
  CHECK(a.result.error.find("badNonce") != std::string::npos);

  // Without a new nonce in the refusal, a fresh one is fetched first.
  fixture g;
  a = g.machine.start();
  a = g.machine.on_response(reply(200, directory));
  a = g.machine.on_response(reply(200, "", "n1"));
  a = g.machine.on_response(reply(400, bad));
  CHECK(a.request.method == "HEAD");
  a = g.machine.on_response(reply(200, "", "n9"));
  CHECK(str(decode(a).header.at("nonce")) == "n9");
}

TEST_CASE("order machine: a problem document becomes the error of its step", "[acme]") {
  fixture f;
  auto a = f.machine.start();
  a = f.machine.on_response(reply(200, directory));
  a = f.machine.on_response(reply(200, "", "n1"));
  a = f.machine.on_response(reply(201, "{}", "n2", ca + "/acct/1"));
  a = f.machine.on_response(reply(
      403,
      R"({"type":"urn:ietf:params:acme:error:rejectedIdentifier","detail":"policy forbids mail.example.org"})"));
  REQUIRE(a.what == kind::failed);
  CHECK(a.result.step == "order");
  CHECK(a.result.error ==
        "HTTP 403: urn:ietf:params:acme:error:rejectedIdentifier: policy forbids mail.example.org");
  CHECK_FALSE(a.result.ok);
}

TEST_CASE("order machine: malformed JSON, missing fields, http URLs, big bodies fail their step",
          "[acme]") {
  {
    fixture f;
    f.machine.start();
    auto a = f.machine.on_response(reply(200, "{\"newNonce\": "));
    REQUIRE(a.what == kind::failed);
    CHECK(a.result.step == "directory");
    CHECK(a.result.error.find("not JSON") != std::string::npos);
  }
  {
    fixture f;
    f.machine.start();
    auto a = f.machine.on_response(reply(200, R"({"newNonce":"https://ca.test/nonce"})"));
    REQUIRE(a.what == kind::failed);
    CHECK(a.result.step == "directory");
  }
  {
    fixture f;  // an https directory pointing to http
    f.machine.start();
    auto a = f.machine.on_response(reply(200, R"({"newNonce":"https://ca.test/nonce",
      "newAccount":"https://ca.test/acct","newOrder":"http://ca.test/order"})"));
    REQUIRE(a.what == kind::failed);
    CHECK(a.result.step == "directory");
  }
  {
    fixture f;
    f.up_to_authorization();
    auto a = f.machine.on_response(reply(200, R"({"status":"pending","challenges":[]})", "n"));
    REQUIRE(a.what == kind::failed);
    CHECK(a.result.step == "authorization");
    CHECK(a.result.error.find("no identifier") != std::string::npos);
  }
  {
    fixture f;
    f.up_to_authorization();
    auto a = f.machine.on_response(reply(200, std::string(1024 * 1024 + 1, ' '), "n"));
    REQUIRE(a.what == kind::failed);
    CHECK(a.result.step == "authorization");
    CHECK(a.result.error.find("over 1048576 bytes") != std::string::npos);
  }
  {
    fixture f;
    f.machine.start();
    auto a = f.machine.on_transport_error("cannot connect to ca.test:443: Connection refused");
    REQUIRE(a.what == kind::failed);
    CHECK(a.result.step == "directory");
    CHECK(a.result.error == "cannot connect to ca.test:443: Connection refused");
  }
}

TEST_CASE(
    "order machine: an invalid authorization withdraws the challenge and names the identifier",
    "[acme]") {
  fixture f;
  auto a = f.up_to_publish();
  REQUIRE(a.what == kind::publish);
  a = f.machine.resume();
  a = f.machine.on_response(reply(200, R"({"status":"processing"})", "n5"));
  a = f.machine.on_response(reply(
      200,
      authz(
          "invalid",
          R"(,"status":"invalid","error":{"type":"urn:ietf:params:acme:error:connection","detail":"connection refused"})"),
      "n6"));
  REQUIRE(a.what == kind::withdraw);
  CHECK(a.name == "mail.example.org");
  a = f.machine.resume();
  REQUIRE(a.what == kind::failed);
  CHECK(a.result.step == "authorization");
  CHECK(a.result.failed_names == std::vector<std::string>{"mail.example.org"});
  CHECK(a.result.error.find("urn:ietf:params:acme:error:connection: connection refused") !=
        std::string::npos);
}

TEST_CASE("order machine: polling stops at the cap", "[acme]") {
  fixture f({.max_polls = 3});
  auto a = f.up_to_publish();
  a = f.machine.resume();
  a = f.machine.on_response(reply(200, R"({"status":"pending"})", "n"));
  int waits = 0;
  for (int i = 0; i < 10 && a.what == kind::request; ++i) {
    a = f.machine.on_response(reply(200, authz("pending"), "n"));
    if (a.what == kind::wait) {
      CHECK(a.delay == std::chrono::seconds(1));  // no Retry-After: the default
      ++waits;
      a = f.machine.resume();
    }
  }
  CHECK(waits == 3);
  REQUIRE(a.what == kind::withdraw);
  a = f.machine.resume();
  REQUIRE(a.what == kind::failed);
  CHECK(a.result.step == "authorization");
  CHECK(a.result.error.find("still pending after 3 polls") != std::string::npos);
  CHECK(a.result.failed_names.empty());
}

TEST_CASE("order machine: a chain that does not match the key is not a certificate", "[acme]") {
  fixture f;
  f.up_to_authorization();
  auto a = f.machine.on_response(reply(200, authz("valid"), "n"));  // already valid: no challenge
  CHECK(a.request.url == ca + "/order/1/finalize");
  a = f.machine.on_response(
      reply(200, R"({"status":"valid","certificate":"https://ca.test/cert/1"})", "n"));
  pkey_ptr stranger = new_p256_key();
  a = f.machine.on_response(
      reply(200, test::issue_chain(stranger.get(), {"mail.example.org"}, f.ca_key.get()), "n"));
  REQUIRE(a.what == kind::failed);
  CHECK(a.result.step == "chain_check");
  CHECK(a.result.chain_pem.empty());
  CHECK(a.result.key_pem.empty());
}
