// report/record_scanner: the fields read from a line's bytes by the SAX scanner equal those read
// from the parsed object (fields_of), for every example record of docs/audit-records.md and for
// lines with escapes, unknown members and nesting; anything but one JSON object is refused.
#include "report/record_scanner.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <catch2/catch.hpp>
#include <fstream>
#include <string>
#include <vector>

#include "report/audit_summary.hpp"

using namespace tlsbridge::report;
namespace json = boost::json;

namespace {

std::vector<std::string> reference_examples() {
  std::ifstream in(std::string(TLSBRIDGE_SOURCE_DIR) + "/docs/audit-records.md");
  std::vector<std::string> lines;
  std::string line;
  bool in_json = false;
  while (std::getline(in, line)) {
    if (line == "```json")
      in_json = true;
    else if (line == "```")
      in_json = false;
    else if (in_json && !line.empty())
      lines.push_back(line);
  }
  return lines;
}

// Both readers fed to an aggregator each: the summaries must be equal.
void same_summary(const std::vector<std::string>& lines) {
  audit_summary scanned, parsed;
  record_scanner scanner;
  for (const auto& line : lines) {
    const auto* fields = scanner.scan(line);
    REQUIRE(fields != nullptr);
    scanned.add(*fields);
    parsed.add(json::parse(line).as_object());
  }
  CHECK(json::serialize(scanned.to_json()) == json::serialize(parsed.to_json()));
}

}  // namespace

TEST_CASE("record scanner: the reference examples read as their parsed objects", "[report]") {
  const auto lines = reference_examples();
  REQUIRE(lines.size() >= 10);
  same_summary(lines);
}

TEST_CASE("record scanner: fields of a conn line", "[report]") {
  record_scanner scanner;
  const auto* f = scanner.scan(
      R"({"ts":"2026-12-02T10:00:00.000Z","v":1,"event":"conn","client":"192.0.2.1:5",)"
      R"("x":{"front":{"tls":"no"}},"front":{"tls":"TLSv1.3","cipher":"C","chain":null},)"
      R"("backend":{"tls":"TLSv1","addr":"10.0.0.5:25","chain":{"verdict":"logged","findings":)"
      R"([{"kind":"weak_signature","depth":0,"detail":"sha1"},{"kind":"untrusted","detail":"u"}],)"
      R"("certs":[{"subject":"CN=a","sha256":"00"}]}},"outcome":"ok","refusals":{"smtp.a":2,"smtp.b":1},)"
      R"("client_hello":{"max_version":"TLSv1","sni":null,"ciphers":["A","B"]}})");
  REQUIRE(f != nullptr);
  CHECK(f->ts == "2026-12-02T10:00:00.000Z");
  CHECK(f->v == 1);
  CHECK(f->front.tls == "TLSv1.3");
  CHECK_FALSE(f->front.chain);
  CHECK(f->backend.present);
  CHECK(f->backend.verdict == "logged");
  REQUIRE(f->backend.findings_used == 2);
  CHECK(f->backend.findings[0].detail == "sha1");
  CHECK(f->backend.findings[1].kind == "untrusted");
  REQUIRE(f->refusals_used == 2);
  CHECK(f->refusals[1].first == "smtp.b");
  CHECK(f->max_version == "TLSv1");
  // The fields are reused: a second line starts from nothing.
  f = scanner.scan(R"({"event":"conn","backend":null,"user":"a\"b\u00e9"})");
  REQUIRE(f != nullptr);
  CHECK_FALSE(f->backend.present);
  CHECK(f->backend.findings_used == 0);
  CHECK(f->refusals_used == 0);
  CHECK(f->ts.empty());
  CHECK(f->user == "a\"b\xc3\xa9");
}

TEST_CASE("record scanner: escaped keys and deep unknown members", "[report]") {
  same_summary({R"({"ev\u0065nt":"auth.failure","us\u0065r":"al\nice","client":"[::1]:1"})",
                R"({"event":"conn","outcome":"ok","zz":[[[[[1]]]]],"front":{"tls":"TLSv1.2"}})"});
}

TEST_CASE("record scanner: only one JSON object is a record", "[report]") {
  record_scanner scanner;
  for (const char* bad : {"", "not json", "[1,2]", "\"text\"", "7", R"({"a":1} {"b":2})",
                          R"({"a":)", R"({"a":[[[[[[[[[[1]]]]]]]]]]})"})
    CHECK(scanner.scan(bad) == nullptr);
  CHECK(scanner.scan(R"({"event":"conn"})") != nullptr);
}
