#include "certs/own_cert_check.hpp"

#include <algorithm>
#include <catch2/catch.hpp>
#include <string>

#include "test_pki.hpp"

using namespace tlsbridge;

namespace {

config::config config_with(std::vector<config::cert_entry> certs) {
  config::config cfg;
  cfg.source = "/etc/tlsbridge/tlsbridge.toml";
  cfg.certs = std::move(certs);
  return cfg;
}

bool any_contains(const std::vector<std::string>& lines, const std::string& needle) {
  return std::any_of(lines.begin(), lines.end(),
                     [&](const std::string& l) { return l.find(needle) != std::string::npos; });
}

}  // namespace

TEST_CASE("own certificates: a good chain passes silently", "[certs][own]") {
  const auto& pki = test::test_pki::get();
  const auto report = certs::check_own_certificates(config_with({pki.entry("server")}));
  CHECK(report.errors.empty());
  CHECK(report.warnings.empty());
}

TEST_CASE("own certificates: key mismatch is an error naming both files", "[certs][own]") {
  const auto& pki = test::test_pki::get();
  const auto cfg =
      config_with({pki.entry("server"), {pki.file("server.chain.pem"), pki.file("sni-a.key"), {}, {}}});
  const auto report = certs::check_own_certificates(cfg);
  REQUIRE(report.errors.size() == 1);
  const auto& e = report.errors[0];
  CHECK(e.file == "/etc/tlsbridge/tlsbridge.toml");
  CHECK(e.line == 0);
  CHECK(e.column == 0);
  CHECK(e.key == "certs[1].key");
  CHECK(e.message == "key " + pki.file("sni-a.key").string() + " does not match certificate " +
                         pki.file("server.chain.pem").string());
}

TEST_CASE("own certificates: expired refuses unless allowed", "[certs][own]") {
  const auto& pki = test::test_pki::get();
  auto cfg = config_with({pki.entry("expired")});
  auto report = certs::check_own_certificates(cfg);
  REQUIRE(report.errors.size() == 1);
  CHECK(report.errors[0].key == "certs[0].cert");
  CHECK(report.errors[0].message ==
        "certificate " + pki.file("expired.chain.pem").string() + " expired on 2021-01-01");

  cfg.policy.allow_expired_own_cert = true;
  report = certs::check_own_certificates(cfg);
  CHECK(report.errors.empty());
  CHECK(any_contains(report.warnings, "expired on 2021-01-01"));
}

TEST_CASE("own certificates: unreadable and unparsable files", "[certs][own]") {
  const auto& pki = test::test_pki::get();
  SECTION("missing certificate and key") {
    const auto report = certs::check_own_certificates(
        config_with({{"/nonexistent/mail.pem", "/nonexistent/mail.key", {}, {}}}));
    REQUIRE(report.errors.size() == 2);
    CHECK(report.errors[0].key == "certs[0].cert");
    CHECK(report.errors[0].message ==
          "cannot read certificate /nonexistent/mail.pem: No such file or directory");
    CHECK(report.errors[1].key == "certs[0].key");
  }
  SECTION("a key where the certificate should be, and vice versa") {
    const auto report = certs::check_own_certificates(
        config_with({{pki.file("server.key"), pki.file("server.crt"), {}, {}}}));
    REQUIRE(report.errors.size() == 2);
    CHECK(report.errors[0].message == "no PEM certificate in " + pki.file("server.key").string());
    CHECK(report.errors[1].key == "certs[0].key");
    CHECK(report.errors[1].message.find("no usable PEM private key in " +
                                        pki.file("server.crt").string()) == 0);
  }
}

TEST_CASE("own certificates: weak hashes and keys warn", "[certs][own]") {
  const auto& pki = test::test_pki::get();
  const auto report = certs::check_own_certificates(
      config_with({pki.entry("sha1"), pki.entry("md5leaf"), pki.entry("rsa1024")}));
  CHECK(report.errors.empty());
  CHECK(any_contains(report.warnings, "certs[0]: certificate " +
                                          pki.file("sha1.chain.pem").string() +
                                          " is signed with a weak hash (sha1WithRSAEncryption)"));
  CHECK(any_contains(report.warnings, "certs[1]: certificate " +
                                          pki.file("md5leaf.chain.pem").string() +
                                          " (chain depth 1, CN=tlsbridge test MD5 intermediate "
                                          "CA,O=tlsbridge test) is signed with a weak hash "
                                          "(md5WithRSAEncryption)"));
  CHECK(any_contains(report.warnings, "certs[2]: certificate " +
                                          pki.file("rsa1024.chain.pem").string() +
                                          " has a weak key (rsa:1024, policy minimum 2048)"));
  CHECK(report.warnings.size() == 3);
}

TEST_CASE("own certificates: policy settings shape the warnings", "[certs][own]") {
  const auto& pki = test::test_pki::get();
  auto cfg = config_with({pki.entry("sha1"), pki.entry("rsa1024")});
  cfg.policy.weak_signatures = {"md5"};
  cfg.policy.min_rsa_bits = 1024;
  CHECK(certs::check_own_certificates(cfg).warnings.empty());
}
