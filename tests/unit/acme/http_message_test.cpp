#include "acme/http_message.hpp"

#include <catch2/catch.hpp>

using namespace tlsbridge::acme;

TEST_CASE("http message: URLs and the request bytes", "[acme]") {
  parsed_url url;
  REQUIRE(parse_https_url("https://127.0.0.1:14000/dir", url));
  CHECK(url.host == "127.0.0.1");
  CHECK(url.port == "14000");
  CHECK(url.target == "/dir");
  REQUIRE(parse_https_url("https://[::1]/a?b", url));
  CHECK(url.host == "::1");
  CHECK(url.port == "443");
  CHECK(url.target == "/a?b");
  CHECK_FALSE(parse_https_url("http://ca.test/dir", url));
  CHECK_FALSE(parse_https_url("https://user@ca.test/", url));
  CHECK_FALSE(parse_https_url("https://ca.test:x/", url));
  REQUIRE(parse_https_url("https://ca.test:8443/new-acct", url));
  CHECK(request_bytes({"POST", "", "{}"}, url) ==
        "POST /new-acct HTTP/1.1\r\nHost: ca.test:8443\r\nUser-Agent: tlsbridge-acme\r\nAccept: "
        "*/*\r\nConnection: close\r\nContent-Type: application/jose+json\r\nContent-Length: "
        "2\r\n\r\n{}");
}

TEST_CASE("http message: Content-Length, chunked and close-delimited bodies, the cap", "[acme]") {
  http_response r;
  std::string error;
  const std::string head = "HTTP/1.1 201 Created\r\nReplay-Nonce: abc\r\nLocation: https://x/1\r\n";
  CHECK(parse_response(head + "Content-Length: 4\r\n\r\nab", false, false, 100, r, error) ==
        parse_state::incomplete);
  REQUIRE(parse_response(head + "Content-Length: 4\r\n\r\nabcd", false, false, 100, r, error) ==
          parse_state::complete);
  CHECK(r.status == 201);
  CHECK(r.replay_nonce == "abc");
  CHECK(r.location == "https://x/1");
  CHECK(r.body == "abcd");
  REQUIRE(parse_response(
              head + "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
              false, false, 100, r, error) == parse_state::complete);
  CHECK(r.body == "abcde");
  CHECK(parse_response(head + "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n", true, false, 100, r,
                       error) == parse_state::error);
  CHECK(parse_response(head + "\r\nuntil close", false, false, 100, r, error) ==
        parse_state::incomplete);
  REQUIRE(parse_response(head + "\r\nuntil close", true, false, 100, r, error) ==
          parse_state::complete);
  CHECK(r.body == "until close");
  CHECK(parse_response(head + "Content-Length: 101\r\n\r\n", false, false, 100, r, error) ==
        parse_state::error);
  CHECK(error == "the response body is over 100 bytes");
  CHECK(parse_response(head + "Transfer-Encoding: chunked\r\n\r\nfff\r\n", false, false, 100, r,
                       error) == parse_state::error);
  REQUIRE(parse_response("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", false, true, 100, r,
                         error) == parse_state::complete);  // HEAD: no body
  CHECK(parse_response("SSH-2.0-OpenSSH\r\n\r\n", false, false, 100, r, error) ==
        parse_state::error);
}
