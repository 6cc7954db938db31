// protocols/tls_hello/client_hello_fields: the versions and server name read from ClientHello
// extension bodies — peer-controlled bytes, so malformed bodies read as absent.
#include "protocols/tls_hello/client_hello_fields.hpp"

#include <catch2/catch.hpp>
#include <string>

using namespace tlsbridge::protocols::tls_hello;

namespace {
std::string bytes(std::initializer_list<int> b) {
  std::string s;
  for (int c : b) s.push_back(static_cast<char>(c));
  return s;
}
}  // namespace

TEST_CASE("client hello: the highest version offered", "[tls_hello]") {
  // A TLS 1.3 client: GREASE, 1.3, 1.2 in supported_versions; legacy_version 1.2.
  CHECK(max_offered_version(0x0303, bytes({6, 0x7a, 0x7a, 3, 4, 3, 3})) == 0x0304);
  // A TLS 1.0 client sends no supported_versions.
  CHECK(max_offered_version(0x0301, "") == 0x0301);
  CHECK(max_offered_version(0x0302, "") == 0x0302);
  // Malformed bodies fall back to legacy_version.
  CHECK(max_offered_version(0x0301, bytes({5, 3, 4, 3, 3})) == 0x0301);  // odd length
  CHECK(max_offered_version(0x0301, bytes({8, 3, 4})) == 0x0301);        // length past the end
  CHECK(max_offered_version(0x0301, bytes({2, 0x1a, 0x1a})) == 0x0301);  // only GREASE
  CHECK(is_grease(0xfafa));
  CHECK_FALSE(is_grease(0x0a1a));
}

TEST_CASE("client hello: version names as OpenSSL prints them", "[tls_hello]") {
  CHECK(version_name(0x0300) == "SSLv3");
  CHECK(version_name(0x0301) == "TLSv1");
  CHECK(version_name(0x0302) == "TLSv1.1");
  CHECK(version_name(0x0303) == "TLSv1.2");
  CHECK(version_name(0x0304) == "TLSv1.3");
  CHECK(version_name(0x7f1c) == "0x7f1c");
}

TEST_CASE("client hello: the server name", "[tls_hello]") {
  const std::string name = "mail.example.com";
  std::string body =
      bytes({0, static_cast<int>(name.size() + 3), 0, 0, static_cast<int>(name.size())}) + name;
  CHECK(server_name(body) == name);
  CHECK(server_name("") == "");
  CHECK(server_name(body.substr(0, body.size() - 1)) == "");  // list length past the end
  std::string long_name = bytes({0, 8, 0, 0, 9}) + "abcde";   // entry longer than the list
  CHECK(server_name(long_name) == "");
  std::string other_type = bytes({0, 4, 1, 0, 1}) + "x";  // not host_name
  CHECK(server_name(other_type) == "");
  // Byte at a time is the same as whole: every prefix is either the name or absent.
  for (std::size_t n = 0; n < body.size(); ++n) CHECK(server_name(body.substr(0, n)).empty());
}
