// The line a successful reload writes (proxy/reload_report.hpp): what changed.
#include <catch2/catch.hpp>

#include "proxy/reload_report.hpp"

using tlsbridge::proxy::describe_reload;

TEST_CASE("reload report: listeners added and removed, files changed", "[proxy][reload]") {
  CHECK(describe_reload({"a", "b"}, {"a", "c"}, {"/etc/tlsbridge/tlsbridge.toml"}) ==
        "2 listener(s); added c; removed b; changed /etc/tlsbridge/tlsbridge.toml");
  CHECK(describe_reload({"a"}, {"a"}, {"/k/cert.pem", "/k/key.pem"}) ==
        "1 listener(s); changed /k/cert.pem, /k/key.pem");
  CHECK(describe_reload({"a"}, {"a"}, {}) == "1 listener(s); no file changed");
}
