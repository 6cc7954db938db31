// proxy/status_json and proxy/status_page: the fields docs/status-json.md lists, days to expiry,
// and data that can never become markup in the page.
#include "proxy/status_json.hpp"

#include <boost/json/serialize.hpp>
#include <catch2/catch.hpp>

#include "proxy/connection_record.hpp"
#include "proxy/status_page.hpp"

using namespace tlsbridge;
using namespace std::chrono_literals;

TEST_CASE("status json: refusals, certificates and TLS versions", "[status_json]") {
  proxy::status_board board;
  const auto now = proxy::status_board::clock::time_point(std::chrono::seconds(1798329600));
  proxy::connection_record r;
  r.listener = "smtp-in";
  r.client = "192.0.2.9:4000";
  r.what = proxy::outcome::tls_failed;
  r.front.tls_error = "unsupported protocol";
  r.reason = "front TLS handshake: unsupported protocol";
  board.record(r, now - 5s);

  std::vector<proxy::own_certificate> certs{
      {"/etc/ssl/mail.pem", "CN=<mail>", 1798329600 + 10 * 86400 + 5}};
  std::map<std::string, std::shared_ptr<proxy::listener_runtime>> none;
  proxy::status_sources s{&none,      &board, &certs, {"0.1.0", "abc123", "OpenSSL 3"},
                          1798329000, false,  nullptr};
  const auto j = proxy::status_json(s, now);
  CHECK(j.at("generated") == "2026-12-27T00:00:00Z");
  CHECK(j.at("uptime_seconds") == 600);
  CHECK(j.at("commit") == "abc123");
  CHECK(j.at("sessions").as_object().at("smtp") == 0);
  const auto& refusal = j.at("refusals").as_array().at(0).as_object();
  CHECK(refusal.at("reason") == "tls_version");
  CHECK(refusal.at("client") == "192.0.2.9:4000");
  CHECK(refusal.at("listener") == "smtp-in");
  CHECK(refusal.at("time") == "2026-12-26T23:59:55Z");
  const auto& cert = j.at("certificates").as_array().at(0).as_object();
  CHECK(cert.at("days_left") == 10);
  CHECK(cert.at("not_after") == "2027-01-06T00:00:05Z");
  CHECK(j.at("tls_versions").at("front").at("TLSv1.3") == 0);

  const std::string page = proxy::status_page_html(j);
  CHECK(page.find("CN=\\u003cmail>") != std::string::npos);
  CHECK(page.find("CN=<mail>") == std::string::npos);
  CHECK(page.find("<table id=\"refusals\">") != std::string::npos);
}

TEST_CASE("own certificates: whole days left, negative once expired", "[status_json]") {
  proxy::own_certificate c{"f", "s", 1000000};
  CHECK(proxy::days_left(c, 1000000 - 86400) == 1);
  CHECK(proxy::days_left(c, 1000000 - 86399) == 0);
  CHECK(proxy::days_left(c, 1000001) == -1);
}

TEST_CASE("own certificates: a reload withdraws the notAfter gauge of a certificate it removed",
          "[status_json]") {
  proxy::metrics m;
  const std::vector<proxy::own_certificate> before{{"/etc/a.pem", "CN=a", 100},
                                                   {"/etc/b.pem", "CN=b", 200}};
  const std::vector<proxy::own_certificate> after{{"/etc/b.pem", "CN=b", 300}};
  proxy::record_certificate_expiry(before, m);
  CHECK(m.render().find("file=\"/etc/a.pem\"") != std::string::npos);
  proxy::record_certificate_expiry(before, after, m);
  const auto text = m.render();
  CHECK(text.find("file=\"/etc/a.pem\"") == std::string::npos);
  CHECK(text.find("{file=\"/etc/b.pem\",subject=\"CN=b\"} 300") != std::string::npos);
}
