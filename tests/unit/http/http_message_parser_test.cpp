#include "protocols/http/http_message_parser.hpp"

#include <catch2/catch.hpp>

using namespace tlsbridge::protocols::http;

namespace {

// Feeds `wire` in pieces of `step` bytes the way the machine does (unconsumed bytes are offered
// again with the next piece); returns the raw head and the body bytes consumed, in order.
struct fed {
  std::string head;
  std::string body;
  std::string rest;
  std::error_code ec;
  bool done = false;
};

fed feed(message_parser& p, std::string_view wire, std::size_t step) {
  fed f;
  std::string pending;
  for (std::size_t i = 0; i < wire.size() && !f.done && !f.ec; i += step) {
    pending += wire.substr(i, step);
    for (;;) {
      const bool in_head = !p.header_done();
      const std::size_t n = p.put(pending, f.ec);
      (in_head ? f.head : f.body) += pending.substr(0, n);
      pending.erase(0, n);
      if (f.ec || p.done()) break;
      if (n == 0) break;
    }
    f.done = p.done();
    if (f.done) f.rest = pending + std::string(wire.substr(std::min(wire.size(), i + step)));
  }
  return f;
}

}  // namespace

TEST_CASE("parser: head and Content-Length body, whole and byte at a time", "[http][parser]") {
  const std::string head =
      "POST /EWS/Exchange.asmx HTTP/1.1\r\nHost: mail\r\nContent-Length: 11\r\n\r\n";
  const std::string wire = head + "hello world" + "GET /next HTTP/1.1\r\n";
  for (std::size_t step : {wire.size(), std::size_t{1}, std::size_t{7}}) {
    INFO(step);
    message_parser p(message_parser::kind::request, 65536);
    auto f = feed(p, wire, step);
    CHECK_FALSE(f.ec);
    CHECK(f.done);
    CHECK(f.head == head);
    CHECK(f.body == "hello world");
    CHECK(f.rest == "GET /next HTTP/1.1\r\n");
    CHECK(p.head().method == "POST");
    CHECK(p.head().target == "/EWS/Exchange.asmx");
    CHECK(p.head().content_length == std::optional<std::uint64_t>(11));
    CHECK(p.head().find("host") != nullptr);
  }
}

TEST_CASE("parser: chunked body is consumed raw, framing included", "[http][parser]") {
  const std::string head = "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
  const std::string body = "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: t\r\n\r\n";
  for (std::size_t step : {std::size_t{1}, std::size_t{3}, std::size_t{1000}}) {
    INFO(step);
    message_parser p(message_parser::kind::request, 65536);
    auto f = feed(p, head + body + "NEXT", step);
    CHECK_FALSE(f.ec);
    CHECK(f.done);
    CHECK(f.body == body);
    CHECK(f.rest == "NEXT");
    CHECK(p.head().chunked);
  }
}

TEST_CASE("parser: bad chunk framing is an error", "[http][parser]") {
  message_parser p(message_parser::kind::request, 65536);
  auto f = feed(
      p, "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n", 1000);
  CHECK(f.ec == parse_errc::bad_chunk);
}

TEST_CASE("parser: the head is bounded in total, however it trickles in", "[http][parser]") {
  std::string head = "GET / HTTP/1.1\r\nHost: a\r\n";
  while (head.size() < 70000) head += "X-Filler: " + std::string(100, 'x') + "\r\n";
  for (std::size_t step : {std::size_t{4096}, std::size_t{70000}}) {
    message_parser p(message_parser::kind::request, 65536);
    auto f = feed(p, head, step);
    CHECK(f.ec == parse_errc::header_too_large);
  }
}

TEST_CASE("parser: responses — HEAD, 204, 304, 1xx, EOF-delimited", "[http][parser]") {
  SECTION("HEAD response has no body despite Content-Length") {
    message_parser p(message_parser::kind::response, 65536, true);
    auto f = feed(p, "HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\nHTTP/1.1 200 OK\r\n", 1);
    CHECK(f.done);
    CHECK(f.body.empty());
    CHECK(f.rest == "HTTP/1.1 200 OK\r\n");
  }
  SECTION("204 and 304") {
    for (const char* wire : {"HTTP/1.1 204 No Content\r\n\r\n",
                             "HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n"}) {
      message_parser p(message_parser::kind::response, 65536);
      auto f = feed(p, wire, 1000);
      CHECK(f.done);
      CHECK(f.body.empty());
    }
  }
  SECTION("100 Continue is a message of its own") {
    message_parser p(message_parser::kind::response, 65536);
    auto f = feed(p, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n", 1000);
    CHECK(f.done);
    CHECK(p.head().status == 100);
    CHECK(f.rest == "HTTP/1.1 200 OK\r\n");
  }
  SECTION("a body delimited by the close") {
    message_parser p(message_parser::kind::response, 65536);
    auto f = feed(p, "HTTP/1.0 200 OK\r\n\r\nall of it", 1000);
    CHECK_FALSE(f.done);
    CHECK(f.body == "all of it");
    CHECK(p.head().need_eof);
    CHECK_FALSE(p.head().keep_alive);
    std::error_code ec;
    p.put_eof(ec);
    CHECK_FALSE(ec);
    CHECK(p.done());
  }
  SECTION("EOF inside a Content-Length body") {
    message_parser p(message_parser::kind::response, 65536);
    auto f = feed(p, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 1000);
    std::error_code ec;
    p.put_eof(ec);
    CHECK(ec == parse_errc::partial_message);
  }
  SECTION("Connection: close") {
    message_parser p(message_parser::kind::response, 65536);
    auto f = feed(p, "HTTP/1.1 401 Unauthorized\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
                  1000);
    CHECK(f.done);
    CHECK_FALSE(p.head().keep_alive);
    CHECK(p.head().status == 401);
  }
}
