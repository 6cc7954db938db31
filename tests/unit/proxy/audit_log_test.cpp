// proxy/audit_log: every line starts with `ts` and `v` (the schema version,
// docs/audit-record.schema.json), then the record's own fields in their order.
#include "proxy/audit_log.hpp"

#include <boost/json/parse.hpp>
#include <catch2/catch.hpp>
#include <string>

#include "temp_dir.hpp"

using namespace tlsbridge;

TEST_CASE("audit log: ts and the schema version v lead every record", "[audit_log]") {
  test::temp_dir dir;
  const auto path = (dir.path / "audit.jsonl").string();
  {
    proxy::audit_log log(path, proxy::owners_for(""));
    log.write({{"event", "conn"}, {"conn", "c1"}});
  }
  const std::string line = test::read(path);
  REQUIRE(line.back() == '\n');
  CHECK(line.rfind(R"({"ts":")", 0) == 0);
  CHECK(line.find(R"(Z","v":1,"event":"conn","conn":"c1"})") != std::string::npos);
  CHECK(boost::json::parse(line).at("v") == proxy::audit_schema_version);
}

TEST_CASE("audit log: invalid UTF-8 becomes U+FFFD, valid text is kept as it is", "[audit_log]") {
  CHECK(proxy::valid_utf8_prefix("plain ascii") == 11);
  CHECK(proxy::valid_utf8_prefix("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x93\xA7") == 14);
  CHECK(proxy::valid_utf8_prefix("ok\xC0\xAFno") == 2);        // overlong '/'
  CHECK(proxy::valid_utf8_prefix("ok\xED\xA0\x80") == 2);      // a surrogate
  CHECK(proxy::valid_utf8_prefix("ok\xF4\x90\x80\x80") == 2);  // above U+10FFFF
  CHECK(proxy::valid_utf8_prefix("ok\xE2\x82") == 2);          // cut short
  CHECK(proxy::sanitize_utf8("caf\xC3\xA9") == "caf\xC3\xA9");
  CHECK(proxy::sanitize_utf8("a\xFF"
                             "b\xC3\xA9\x80") ==
        "a\xEF\xBF\xBD"
        "b\xC3\xA9\xEF\xBF\xBD");
  CHECK(proxy::sanitize_utf8("\xE2\x82") == "\xEF\xBF\xBD\xEF\xBF\xBD");

  boost::json::value v = {{"helo", "a\xFFz"}, {"list", {"ok", "\xC0\xAF"}}, {"n", 3}};
  proxy::sanitize_json(v);
  CHECK(v.at("helo") == "a\xEF\xBF\xBDz");
  CHECK(v.at("list").as_array()[0] == "ok");
  CHECK(v.at("list").as_array()[1] == "\xEF\xBF\xBD\xEF\xBF\xBD");
  CHECK(v.at("n") == 3);
}

TEST_CASE("audit log: rfc3339_ms, within a second and across seconds, days and years",
          "[audit_log]") {
  using namespace std::chrono;
  const auto at = [](std::int64_t ms) { return system_clock::time_point(milliseconds(ms)); };
  CHECK(proxy::rfc3339_ms(at(0)) == "1970-01-01T00:00:00.000Z");
  // The same second twice (the per-thread cache), then the next millisecond and second.
  CHECK(proxy::rfc3339_ms(at(1764691199007)) == "2025-12-02T15:59:59.007Z");
  CHECK(proxy::rfc3339_ms(at(1764691199999)) == "2025-12-02T15:59:59.999Z");
  CHECK(proxy::rfc3339_ms(at(1764691200000)) == "2025-12-02T16:00:00.000Z");
  CHECK(proxy::rfc3339_ms(at(1767225599120)) == "2025-12-31T23:59:59.120Z");
  CHECK(proxy::rfc3339_ms(at(1767225600045)) == "2026-01-01T00:00:00.045Z");
  CHECK(proxy::rfc3339_ms(at(951782400000)) == "2000-02-29T00:00:00.000Z");
  CHECK(proxy::rfc3339_ms(at(-1)) == "1969-12-31T23:59:59.999Z");
  // Back to an earlier second after a later one.
  CHECK(proxy::rfc3339_ms(at(1764691199500)) == "2025-12-02T15:59:59.500Z");
}
