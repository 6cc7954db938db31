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
