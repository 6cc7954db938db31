// proxy/connection_record: the `conn` audit record and the metrics rendered from plain facts,
// with no session, socket or OpenSSL object behind them.
#include "proxy/connection_record.hpp"

#include <boost/json/serialize.hpp>
#include <catch2/catch.hpp>
#include <string>

using namespace tlsbridge;
using proxy::connection_record;
using proxy::outcome;

namespace {

policy::chain_evidence one_cert_chain() {
  policy::chain_evidence chain;
  policy::cert_evidence leaf;
  leaf.subject = "CN=legacy.local";
  leaf.issuer = "CN=legacy.local";
  leaf.sig_alg = "sha1WithRSAEncryption";
  leaf.key_type = "rsa";
  leaf.key_bits = 2048;
  leaf.sha256 = std::string(64, 'a');
  chain.certs.push_back(leaf);
  return chain;
}

}  // namespace

TEST_CASE("conn record: a connection refused before any TLS", "[connection_record]") {
  connection_record r;
  r.id = "c1";
  r.listener = "smtp-in";
  r.client = "192.0.2.7:40000";
  r.what = outcome::denied;
  r.reason = "client address not in allow";
  const auto rec = proxy::conn_json(r);
  CHECK(boost::json::serialize(rec) ==
        R"({"event":"conn","conn":"c1","listener":"smtp-in","client":"192.0.2.7:40000",)"
        R"("front":{"tls":null,"cipher":null,"sni":null,"alpn":null,"chain":null},)"
        R"("backend":null,"bytes_in":0,"bytes_out":0,"duration_ms":0,"outcome":"denied",)"
        R"("reason":"client address not in allow","starttls_injection":false})");
}

TEST_CASE("conn record: a failed handshake carries what the ClientHello offered",
          "[connection_record]") {
  connection_record r;
  r.id = "c3";
  r.listener = "smtps-in";
  r.client = "192.0.2.7:40000";
  r.what = outcome::tls_failed;
  r.client_hello = protocols::tls_hello::client_hello_offer{"TLSv1", "", {"AES128-SHA", "0x00ff"}};
  CHECK(boost::json::serialize(proxy::conn_json(r).at("client_hello")) ==
        R"({"max_version":"TLSv1","sni":null,"ciphers":["AES128-SHA","0x00ff"]})");
  r.client_hello->sni = "mail.example.com";
  CHECK(proxy::conn_json(r).at("client_hello").at("sni") == "mail.example.com");
  r.client_hello.reset();
  CHECK_FALSE(proxy::conn_json(r).contains("client_hello"));
}

TEST_CASE("conn record: both legs, a judged back chain, refusals and injection",
          "[connection_record]") {
  const auto chain = one_cert_chain();
  policy::decision d;
  d.findings.push_back({"pin_mismatch", 0, std::string(64, 'a') + " matches no pin_sha256"});
  d.actions.push_back(config::policy_action::refuse);
  d.result = policy::verdict::refused;

  connection_record r;
  r.id = "c2";
  r.listener = "https";
  r.client = "[2001:db8::1]:5000";
  r.proxy = "10.0.0.1:41000";
  r.front.tls = true;
  r.front.version = "TLSv1.3";
  r.front.cipher = "TLS_AES_256_GCM_SHA384";
  r.front.sni = "mail.example";
  auto& b = r.back.emplace();
  b.addr = "10.1.1.1:443";
  b.local = "10.1.1.2:50000";
  b.chain = &chain;
  b.decision = &d;
  r.bytes_in = 10;
  r.bytes_out = 20;
  r.duration_ms = 30;
  r.what = outcome::refused_policy;
  r.reason = "backend chain refused by policy";
  r.starttls_injection = true;
  r.injected_bytes = 7;
  r.refusals = {{"http.method", 2}};

  const auto rec = proxy::conn_json(r);
  CHECK(rec.at("proxy") == "10.0.0.1:41000");
  const auto& front = rec.at("front").as_object();
  CHECK(front.at("tls") == "TLSv1.3");
  CHECK(front.at("cipher") == "TLS_AES_256_GCM_SHA384");
  CHECK(front.at("sni") == "mail.example");
  CHECK(front.at("alpn").is_null());
  CHECK(front.at("chain").is_null());
  const auto& back = rec.at("backend").as_object();
  CHECK(back.at("tls").is_null());  // the handshake did not complete: no version, no resumption
  CHECK(back.at("resumed").is_null());
  CHECK(back.at("addr") == "10.1.1.1:443");
  CHECK(back.at("local") == "10.1.1.2:50000");
  const auto& judged = back.at("chain").as_object();
  CHECK(judged.at("verdict") == "refused");
  REQUIRE(judged.at("findings").as_array().size() == 1);
  CHECK(judged.at("findings").as_array()[0].as_object().at("kind") == "pin_mismatch");
  CHECK(rec.at("outcome") == "refused_policy");
  CHECK(rec.at("starttls_injection") == true);
  CHECK(rec.at("injected_bytes") == 7);
  CHECK(rec.at("refusals").as_object().at("http.method") == 2);

  SECTION("the same facts counted in the metrics") {
    proxy::metrics m;
    proxy::count_connection(r, m);
    const std::string text = m.render();
    CHECK(
        text.find(R"(tlsbridge_connections_total{listener="https",outcome="refused_policy"} 1)") !=
        std::string::npos);
    CHECK(
        text.find(
            R"(tlsbridge_tls_versions_total{listener="https",side="front",version="TLSv1.3"} 1)") !=
        std::string::npos);
    CHECK(text.find(R"(side="back",version=)") == std::string::npos);
    CHECK(
        text.find(
            R"(tlsbridge_policy_findings_total{listener="https",side="back",kind="pin_mismatch",action="refuse"} 1)") !=
        std::string::npos);
    CHECK(text.find(R"(tlsbridge_refusals_total{listener="https",reason="http.method"} 2)") !=
          std::string::npos);
    // The refused chain is a certificate refusal, counted apart from the shield's refusals.
    CHECK(text.find(R"(tlsbridge_certificate_refusals_total{listener="https",side="back"} 1)") !=
          std::string::npos);
    CHECK(text.find(R"(reason="backend_certificate")") == std::string::npos);
    CHECK(text.find(R"(tlsbridge_starttls_injections_total{listener="https"} 1)") !=
          std::string::npos);
  }
}

TEST_CASE("outcomes: one table, one boundary with the machines", "[connection_record]") {
  CHECK(proxy::to_string(outcome::backend_unavailable) == "backend_unavailable");
  CHECK(proxy::to_string(outcome::shutdown) == "shutdown");
  CHECK(proxy::outcome_of_machine("client_closed") == outcome::client_closed);
  CHECK(proxy::outcome_of_machine("") == outcome::ok);
}
