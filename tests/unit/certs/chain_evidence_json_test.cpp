#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include "certs/chain_collector.hpp"
#include "policy/chain_evidence.hpp"
#include "test_pki.hpp"

using namespace tlsbridge;

TEST_CASE("format_rfc3339_seconds", "[policy][json]") {
  CHECK(policy::format_rfc3339_seconds(0) == "1970-01-01T00:00:00Z");
  CHECK(policy::format_rfc3339_seconds(1924992000) == "2031-01-01T00:00:00Z");
  CHECK(policy::format_rfc3339_seconds(1609459199) == "2020-12-31T23:59:59Z");
}

TEST_CASE("verdict names", "[policy][json]") {
  CHECK(std::string(policy::to_string(policy::verdict::clean)) == "clean");
  CHECK(std::string(policy::to_string(policy::verdict::logged)) == "logged");
  CHECK(std::string(policy::to_string(policy::verdict::refused)) == "refused");
}

TEST_CASE("chain_to_json has the audit chain shape", "[policy][json]") {
  auto leaf = test::load_cert("md5leaf.crt");
  auto stack = test::make_stack({"md5inter.crt"});
  const auto chain = certs::collect_chain(leaf.get(), stack.get(), {});
  const std::vector<policy::finding> findings{{"weak_signature", 1, "md5WithRSAEncryption"}};
  const auto json = policy::chain_to_json(chain, findings, policy::verdict::refused, 2);

  const auto& obj = json.as_object();
  CHECK(obj.size() == 4);
  CHECK(obj.at("verdict") == "refused");
  CHECK(obj.at("rule") == 2);
  const auto& f = obj.at("findings").as_array();
  REQUIRE(f.size() == 1);
  CHECK(f[0] ==
        boost::json::value(
            {{"kind", "weak_signature"}, {"depth", 1}, {"detail", "md5WithRSAEncryption"}}));
  const auto& certs = obj.at("certs").as_array();
  REQUIRE(certs.size() == 2);
  const auto& c1 = certs[1].as_object();
  CHECK(c1.size() == 6);
  CHECK(c1.at("subject") == "CN=tlsbridge test MD5 intermediate CA,O=tlsbridge test");
  CHECK(c1.at("issuer") == "CN=tlsbridge test root CA,O=tlsbridge test");
  CHECK(c1.at("sig_alg") == "md5WithRSAEncryption");
  CHECK(c1.at("key") == "rsa:2048");
  CHECK(c1.at("not_after").as_string().size() == 20);
  CHECK(c1.at("sha256") == boost::json::value(chain.certs[1].sha256));

  const auto empty = policy::chain_to_json({}, {}, policy::verdict::clean, std::nullopt);
  CHECK(boost::json::serialize(empty) ==
        R"({"verdict":"clean","rule":"default","findings":[],"certs":[]})");
}
