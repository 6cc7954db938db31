// with_hsts: Strict-Transport-Security inserted before the head's empty line, once.
#include "protocols/http/hsts.hpp"

#include <catch2/catch.hpp>
#include <string>

using namespace tlsbridge::protocols::http;

namespace {
message_head parse(const std::string& raw) {
  message_parser p(message_parser::kind::response, 65536);
  std::error_code ec;
  p.put(raw, ec);
  REQUIRE_FALSE(ec);
  return p.head();
}
}  // namespace

TEST_CASE("with_hsts adds the field to a head without one", "[http][hsts]") {
  const std::string raw = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n";
  CHECK(with_hsts(raw, parse(raw), "max-age=31536000") ==
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nStrict-Transport-Security: max-age=31536000\r\n"
        "\r\n");
}

TEST_CASE("with_hsts keeps the backend's own policy and honours off", "[http][hsts]") {
  const std::string raw =
      "HTTP/1.1 200 OK\r\nstrict-transport-security: max-age=1\r\nContent-Length: 0\r\n\r\n";
  CHECK(with_hsts(raw, parse(raw), "max-age=31536000") == raw);
  const std::string plain = "HTTP/1.1 204 No Content\r\n\r\n";
  CHECK(with_hsts(plain, parse(plain), "") == plain);
}
