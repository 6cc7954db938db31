#include "certs/inspect.hpp"

#include <catch2/catch.hpp>
#include <ctime>
#include <sstream>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "policy/policy_decision.hpp"
#include "proxy/cli_tools.hpp"
#include "test_pki.hpp"

using namespace tlsbridge;

namespace {

policy::decision judge(const policy::chain_evidence& chain, const config::policy_config& p = {}) {
  return policy::judge_chain(chain, p, {}, false, static_cast<std::int64_t>(std::time(nullptr)));
}

certs::inspect_options files(std::initializer_list<const char*> names) {
  certs::inspect_options o;
  for (const char* n : names) o.files.push_back(test::test_pki::get().file(n));
  return o;
}

struct cli_result {
  int code;
  std::string out, err;
};

cli_result inspect_cli(std::vector<std::string> args) {
  args.insert(args.begin(), "inspect-cert");
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  std::ostringstream out, err;
  const int code =
      proxy::inspect_cert_command(static_cast<int>(argv.size()), argv.data(), out, err);
  return {code, out.str(), err.str()};
}

std::string pki(const char* name) {
  return test::test_pki::get().file(name).string();
}

}  // namespace

TEST_CASE("inspect: a good chain is only untrusted against the system store", "[probe][inspect]") {
  auto chain = certs::inspect(files({"server.chain.pem"}));
  REQUIRE(chain.certs.size() == 2);
  CHECK(chain.certs[0].subject.find("CN=localhost") != std::string::npos);
  CHECK(chain.certs[1].depth == 1);
  CHECK(chain.verify_attempted);
  CHECK_FALSE(chain.trusted);  // the test CA is not in the system store
  auto d = judge(chain);
  CHECK(d.result == policy::verdict::logged);
  REQUIRE(d.findings.size() == 1);
  CHECK(d.findings[0].kind == "untrusted");
}

TEST_CASE("inspect: with the test CA as trust store the good chain is clean", "[probe][inspect]") {
  auto o = files({"server.chain.pem"});
  o.ca_file = test::test_pki::get().file("ca.crt");
  auto chain = certs::inspect(o);
  CHECK(chain.trusted);
  CHECK(judge(chain).result == policy::verdict::clean);
}

TEST_CASE("inspect: certificates from several files, leaf first", "[probe][inspect]") {
  auto chain = certs::inspect(files({"md5leaf.crt", "md5inter.crt"}));
  REQUIRE(chain.certs.size() == 2);
  CHECK(chain.certs[1].sig_alg == "md5WithRSAEncryption");
}

TEST_CASE("inspect: MD5 intermediate is a weak_signature at depth 1", "[probe][inspect]") {
  auto d = judge(certs::inspect(files({"md5leaf.chain.pem"})));
  CHECK(d.result == policy::verdict::refused);
  REQUIRE_FALSE(d.findings.empty());
  CHECK(d.findings[0].kind == "weak_signature");
  CHECK(d.findings[0].depth == 1);
  CHECK(d.findings[0].detail == "md5WithRSAEncryption");
  config::policy_config lenient;
  lenient.on_weak_signature = config::policy_action::log;
  CHECK(judge(certs::inspect(files({"md5leaf.chain.pem"})), lenient).result ==
        policy::verdict::logged);
}

TEST_CASE("inspect: expired, RSA-1024 and SHA-1 leaves are refused by default",
          "[probe][inspect]") {
  for (const char* name : {"expired.chain.pem", "rsa1024.chain.pem", "sha1.chain.pem"}) {
    CAPTURE(name);
    CHECK(judge(certs::inspect(files({name}))).result == policy::verdict::refused);
  }
}

TEST_CASE("inspect: unreadable and certificate-less files are errors", "[probe][inspect]") {
  certs::inspect_options o;
  o.files = {"/nonexistent/tlsbridge.pem"};
  CHECK_THROWS_AS(certs::inspect(o), certs::inspect_error);
  CHECK_THROWS_AS(certs::inspect(files({"server.key"})), certs::inspect_error);
  o.files = {};
  CHECK_THROWS_AS(certs::inspect(o), certs::inspect_error);
}

TEST_CASE("inspect-cert command: exit codes and JSON", "[probe][inspect][cli]") {
  auto good = inspect_cli({pki("server.chain.pem")});
  CHECK(good.code == proxy::exit_pass);
  CHECK_THAT(good.out, Catch::Contains("verdict: logged"));

  auto md5 = inspect_cli({"--json", pki("md5leaf.chain.pem")});
  CHECK(md5.code == proxy::exit_refused);
  CHECK_THAT(md5.out, Catch::StartsWith("{\"files\":[") &&
                          Catch::Contains("\"verdict\":\"refused\"") &&
                          Catch::Contains("\"action\":\"refuse\""));

  auto missing = inspect_cli({"/nonexistent/x.pem"});
  CHECK(missing.code == proxy::exit_failure);
  CHECK_THAT(missing.err, Catch::Contains("/nonexistent/x.pem"));

  CHECK(inspect_cli({}).code == proxy::exit_failure);
  CHECK(inspect_cli({"--bogus", pki("server.chain.pem")}).code == proxy::exit_failure);
  CHECK(inspect_cli({"--config", "/nonexistent/tlsbridge.toml", pki("server.chain.pem")}).code ==
        proxy::exit_failure);
}
