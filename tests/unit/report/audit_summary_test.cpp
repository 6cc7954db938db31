// report/audit_summary: the aggregator fed parsed records one at a time — per client network and
// backend, failed handshakes by the version offered, refusals, authentication failures,
// ActiveSync devices, the weakest finding, --since, and the caps that keep memory bounded.
#include "report/audit_summary.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <catch2/catch.hpp>
#include <string>

#include "report/report_render.hpp"

using namespace tlsbridge::report;
namespace json = boost::json;

namespace {

void feed(audit_summary& s, const std::string& line) {
  s.add(json::parse(line).as_object());
}

std::string conn(const std::string& client, const std::string& outcome,
                 const std::string& front_tls = "null", const std::string& backend = "null",
                 const std::string& extra = "") {
  return R"({"ts":"2026-12-02T10:00:00.000Z","v":1,"event":"conn","conn":"00000000000000aa",)"
         R"("listener":"smtp-in","client":")" +
         client + R"(","front":{"tls":)" + front_tls +
         R"(,"cipher":null,"sni":null,"alpn":null,"chain":null},"backend":)" + backend +
         R"(,"outcome":")" + outcome + "\"" + extra + "}";
}

std::string backend(const std::string& addr, const std::string& findings) {
  return R"({"tls":"TLSv1","cipher":"ECDHE-RSA-AES256-SHA","addr":")" + addr +
         R"(","local":"10.0.0.2:1","resumed":false,"chain":{"verdict":"logged","rule":"default",)"
         R"("findings":)" +
         findings + R"(,"certs":[]}})";
}

const json::value& at(const json::object& o, std::initializer_list<const char*> path) {
  const json::value* v = nullptr;
  const json::object* cur = &o;
  for (const char* key : path) {
    v = &cur->at(key);
    if (v->is_object()) cur = &v->get_object();
  }
  return *v;
}

}  // namespace

TEST_CASE("report: client networks are IPv4 /24 and IPv6 /64", "[report]") {
  CHECK(client_network("192.0.2.7:51234") == "192.0.2.0/24");
  CHECK(client_network("192.0.2.7") == "192.0.2.0/24");
  CHECK(client_network("[2001:db8:1:2:3:4:5:6]:25") == "2001:db8:1:2::/64");
  CHECK(client_network("[::ffff:198.51.100.9]:25") == "198.51.100.0/24");
  CHECK(client_network("not an address") == "unknown");
  CHECK(client_network("") == "unknown");
  CHECK(endpoint_host("[2001:db8::7]:1") == "2001:db8::7");
  CHECK(endpoint_host("2001:db8::7") == "2001:db8::7");
  CHECK(endpoint_host("192.0.2.1:25") == "192.0.2.1");
}

TEST_CASE("report: conn records tallied per network and backend", "[report]") {
  audit_summary s;
  const std::string sha1 =
      R"([{"kind":"weak_signature","depth":0,"detail":"sha1WithRSAEncryption"}])";
  const std::string md5 = R"([{"kind":"untrusted","depth":0,"detail":"x"},)"
                          R"({"kind":"weak_signature","depth":1,"detail":"md5WithRSAEncryption"}])";
  feed(s, conn("192.0.2.7:1", "ok", "\"TLSv1.3\"", backend("10.0.0.5:25", sha1)));
  feed(s, conn("192.0.2.8:1", "ok", "\"TLSv1.2\"", backend("10.0.0.5:25", md5),
               R"(,"refusals":{"smtp.require_tls":2})"));
  feed(s, conn("192.0.2.9:1", "tls_failed", "null", "null",
               R"(,"client_hello":{"max_version":"TLSv1","sni":"a","ciphers":[]})"));
  feed(s, conn("[2001:db8::1]:1", "tls_failed", "null", "null",
               R"(,"client_hello":{"max_version":"TLSv1.2","sni":null,"ciphers":[]})"));
  feed(s, conn("198.51.100.1:1", "tls_failed"));  // written before client_hello existed
  feed(s, conn("198.51.100.2:1", "denied"));
  feed(s, conn("198.51.100.3:1", "refused_policy", "\"TLSv1.3\"", backend("10.0.0.6:25", sha1)));
  const auto j = s.to_json();

  CHECK(json::serialize(at(j, {"connections", "outcomes"})) ==
        R"({"tls_failed":3,"ok":2,"denied":1,"refused_policy":1})");
  CHECK(json::serialize(at(j, {"connections", "front_tls"})) ==
        R"({"none":4,"TLSv1.3":2,"TLSv1.2":1})");
  CHECK(
      json::serialize(at(j, {"failed_handshakes"})) ==
      R"({"total":3,"too_old_for_tls12":1,"by_max_version":{"TLSv1":1,"TLSv1.2":1,"unknown":1}})");
  CHECK(json::serialize(at(j, {"refusals"})) ==
        R"({"smtp.require_tls":2,"denied":1,"refused_policy":1})");
  const auto& net = at(j, {"client_networks", "192.0.2.0/24"}).as_object();
  CHECK(net.at("connections") == 3);
  CHECK(json::serialize(net.at("failed_handshakes")) == R"({"TLSv1":1})");
  CHECK(json::serialize(net.at("refusals")) == R"({"smtp.require_tls":2})");
  CHECK(at(j, {"client_networks", "2001:db8::/64", "connections"}) == 1);
  const auto& b = at(j, {"backends", "10.0.0.5:25"}).as_object();
  CHECK(b.at("connections") == 2);
  CHECK(json::serialize(b.at("weakest_finding")) ==
        R"({"kind":"weak_signature","detail":"md5WithRSAEncryption","chains_with_findings":2})");
  CHECK(json::serialize(b.at("verdicts")) == R"({"logged":2})");
  CHECK(json::serialize(at(j, {"backends", "10.0.0.6:25", "refusals"})) ==
        R"({"refused_policy":1})");
}

TEST_CASE("report: the weakest finding ranks breakage and forgeable crypto first", "[report]") {
  CHECK(finding_severity("expired", "") > finding_severity("weak_key", "rsa:1024"));
  CHECK(finding_severity("weak_key", "rsa:1024") >
        finding_severity("weak_signature", "md5WithRSAEncryption"));
  CHECK(finding_severity("weak_signature", "md5WithRSAEncryption") >
        finding_severity("weak_signature", "sha1WithRSAEncryption"));
  CHECK(finding_severity("weak_signature", "sha1WithRSAEncryption") >
        finding_severity("untrusted", ""));
  CHECK(finding_severity("no_such_kind", "") == 0);
}

TEST_CASE("report: authentication failures and ActiveSync devices", "[report]") {
  audit_summary s;
  const std::string head = R"({"ts":"2026-12-02T10:00:00.000Z","v":1,"conn":"aa","listener":"l",)";
  for (int i = 0; i < 3; ++i)
    feed(s, head + R"("event":"auth.failure","user":"alice","client":"[2001:db8::9]:4000"})");
  feed(s, head + R"("event":"auth.failure","user":"bob","client_ip":"192.0.2.1"})");
  auto sync = [&](const char* type, const char* id) {
    feed(s, head +
                R"("event":"http.request","method":"POST","path":"/Microsoft-Server-ActiveSync",)"
                R"("activesync":{"form":"plain","cmd":"Sync","device_id":")" +
                id + R"(","device_type":")" + type + R"("}})");
  };
  sync("iPhone", "a");
  sync("iPhone", "a");
  sync("iPhone", "b");
  sync("Android", "c");
  feed(s, head + R"("event":"http.request","method":"GET","path":"/owa/"})");
  const auto j = s.to_json();
  CHECK(json::serialize(at(j, {"auth_failures"})) ==
        R"({"total":4,"by_user":{"alice":3,"bob":1},"by_ip":{"2001:db8::9":3,"192.0.2.1":1}})");
  CHECK(json::serialize(at(j, {"activesync"})) ==
        R"({"requests":4,"by_device_type":{"iPhone":{"requests":3,"devices":2},)"
        R"("Android":{"requests":1,"devices":1}}})");
  CHECK(json::serialize(at(j, {"records", "events"})) == R"({"http.request":5,"auth.failure":4})");
}

TEST_CASE("report: maps are capped and the rest is counted as other", "[report]") {
  summary_limits caps;
  caps.networks = 2;
  caps.users = 1;
  audit_summary s({}, caps);
  for (int i = 0; i < 10; ++i) feed(s, conn("10.0." + std::to_string(i) + ".1:1", "ok"));
  const std::string head = R"({"ts":"2026-12-02T10:00:00.000Z","event":"auth.failure",)";
  feed(s, head + R"("user":"u1","client":"192.0.2.1:1"})");
  feed(s, head + R"("user":"u2","client":"192.0.2.1:1"})");
  feed(s, head + R"("user":"u3","client":"192.0.2.1:1"})");
  const auto j = s.to_json();
  const auto& nets = at(j, {"client_networks"}).as_object();
  CHECK(nets.size() == 3);
  CHECK(nets.at("other").at("connections") == 8);
  CHECK(json::serialize(at(j, {"auth_failures", "by_user"})) == R"({"u1":1,"other":2})");
  CHECK(at(j, {"records", "schema_versions", "none"}) == 3);
}

TEST_CASE("report: --since skips older records, unreadable lines are counted", "[report]") {
  audit_summary s("2026-12-02T10:00:00.000Z");
  CHECK(s.before_since("2026-12-02T09:59:59.999Z"));
  CHECK_FALSE(s.before_since("2026-12-02T10:00:00.000Z"));
  feed(s, R"({"ts":"2026-12-01T00:00:00.000Z","event":"conn","outcome":"ok"})");
  feed(s, R"({"ts":"2026-12-03T00:00:00.000Z","event":"conn","outcome":"ok"})");
  s.add_unreadable();
  const auto j = s.to_json();
  CHECK(at(j, {"connections", "total"}) == 1);
  CHECK(at(j, {"records", "skipped_before_since"}) == 1);
  CHECK(at(j, {"records", "unreadable"}) == 1);
  CHECK(at(j, {"period", "first_ts"}) == "2026-12-03T00:00:00.000Z");
}

TEST_CASE("report: records with wrong types read as absent, never throw", "[report]") {
  audit_summary s;
  feed(s, R"({"event":"conn","client":7,"front":"x","backend":[1],"outcome":null,)"
          R"("refusals":{"smtp.x":"many"},"client_hello":{"max_version":3}})");
  feed(s, R"({"event":"http.request","activesync":{"device_type":1}})");
  feed(s, R"({"event":"auth.failure","user":[],"client":{}})");
  feed(s, R"({})");
  const auto j = s.to_json();
  CHECK(at(j, {"connections", "total"}) == 1);
  CHECK(at(j, {"client_networks", "unknown", "connections"}) == 1);
  CHECK(at(j, {"failed_handshakes", "total"}) == 0);
  CHECK(at(j, {"activesync", "by_device_type", "unknown", "requests"}) == 1);
  // The renderings of any summary: text and a page with its charts.
  CHECK(render_text(j).find("Client networks") != std::string::npos);
  const auto page = render_html(j);
  CHECK(page.find("<svg") != std::string::npos);
  CHECK(page.rfind("</html>\n") == page.size() - 8);
}

TEST_CASE("report: HTML escapes what peers control", "[report]") {
  audit_summary s;
  s.add(json::parse(R"({"event":"auth.failure","user":"<script>alert(1)</script>&","client":"x"})")
            .as_object());
  const auto page = render_html(s.to_json());
  CHECK(page.find("<script>") == std::string::npos);
  CHECK(page.find("&lt;script&gt;alert(1)&lt;/script&gt;&amp;") != std::string::npos);
}
