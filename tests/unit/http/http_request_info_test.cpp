#include "protocols/http/http_request_info.hpp"

#include <catch2/catch.hpp>

#include "tests/unit/http/http_test_support.hpp"

using namespace tlsbridge::protocols::http;
using tlsbridge::test::http::base64;
using tlsbridge::test::http::ntlm_type1;
using tlsbridge::test::http::ntlm_type3;

namespace {

const std::vector<std::string> exchange_paths{"/Microsoft-Server-ActiveSync",
                                              "/autodiscover",
                                              "/EWS",
                                              "/owa",
                                              "/ecp",
                                              "/mapi",
                                              "/rpc",
                                              "/OAB"};

bool allowed(std::string_view target) {
  auto p = normalized_path(target);
  return p && path_allowed(*p, exchange_paths);
}

// Parses a head with the real parser, then runs the checks on it.
std::optional<refusal> check(std::string_view raw) {
  message_parser p(message_parser::kind::request, 64 * 1024);
  std::error_code ec;
  const auto n = p.put(raw, ec);
  if (ec) return refusal{400, "parser: " + ec.message()};
  REQUIRE(p.header_done());
  return check_request(p.head(), raw.substr(0, n));
}

}  // namespace

TEST_CASE("normalized_path: decoding, dot segments, separators", "[http][path]") {
  struct row {
    const char* target;
    std::optional<std::string> path;
  };
  const row rows[] = {
      {"/EWS/Exchange.asmx", "/EWS/Exchange.asmx"},
      {"/ews", "/ews"},
      {"/EWS/../admin", "/admin"},
      {"/EWS/./Exchange.asmx", "/EWS/Exchange.asmx"},
      {"/EWS/%2e%2e/admin", "/admin"},
      {"/EWS/%2E%2E/admin", "/admin"},
      {"/EWS/.%2e/admin", "/admin"},
      {"/EWS%2f..%2fadmin", "/admin"},
      {"/EWS%5c..%5cadmin", "/admin"},
      {"/EWS\\..\\admin", std::nullopt},  // not a valid target: the checks refuse it (400)
      {"/EWS//../admin", "/admin"},
      {"/EWS/.../admin", "/admin"},
      {"/EWS/..%20/admin", "/admin"},
      {"/a/b/../../EWS/x", "/EWS/x"},
      {"/../../EWS", "/EWS"},
      {"/owa/", "/owa/"},
      {"/EWS/x?Cmd=../../admin", "/EWS/x"},
      {"/", "/"},
      {"https://mail.contoso.com/EWS/Exchange.asmx", "/EWS/Exchange.asmx"},
      {"/EWS/%00", std::nullopt},
      {"/EWS/%0d%0a", std::nullopt},
      {"*", std::nullopt},
      {"mail.contoso.com:443", std::nullopt},
  };
  for (const auto& r : rows) {
    INFO(r.target);
    CHECK(normalized_path(r.target) == r.path);
  }
}

TEST_CASE("allow_paths: case-insensitive prefix on a segment boundary", "[http][path]") {
  CHECK(allowed("/EWS/Exchange.asmx"));
  CHECK(allowed("/ews"));
  CHECK(allowed("/ews/exchange.asmx"));
  CHECK(allowed("/Microsoft-Server-ActiveSync?Cmd=Ping&User=a&DeviceId=b&DeviceType=c"));
  CHECK(allowed("/microsoft-server-activesync/default.eas"));
  CHECK(allowed("/Autodiscover/Autodiscover.xml"));
  CHECK(allowed("/rpc/rpcproxy.dll?mail:6001"));
  CHECK(allowed("/EWS/x/../Exchange.asmx"));
  CHECK_FALSE(allowed("/foo"));
  CHECK_FALSE(allowed("/"));
  CHECK_FALSE(allowed("/EWSadmin"));
  CHECK_FALSE(allowed("/EWS/../admin"));
  CHECK_FALSE(allowed("/EWS/%2e%2e/admin"));
  CHECK_FALSE(allowed("/EWS/%2E%2e/%2e%2E/ecp2"));
  CHECK_FALSE(allowed("/EWS%2f%2e%2e%2fadmin"));
  CHECK_FALSE(allowed("/owa/..%5c..%5cadmin"));
  CHECK_FALSE(allowed("/%45WS/../admin"));
  CHECK(allowed("/%45WS/Exchange.asmx"));  // %45 is 'E'
  CHECK_FALSE(allowed("*"));
  CHECK(path_allowed("/anything", {"/"}));
  CHECK(path_allowed("/owa/auth", {"/owa/"}));
}

TEST_CASE("raw_path keeps the path as sent, without the query", "[http][path]") {
  CHECK(raw_path("/EWS/Exchange.asmx?x=1") == "/EWS/Exchange.asmx");
  CHECK(raw_path("/EWS/%2e%2e/admin") == "/EWS/%2e%2e/admin");
  CHECK(raw_path("https://h/owa/") == "/owa/");
}

TEST_CASE("request checks: smuggling and framing", "[http][checks]") {
  struct row {
    const char* name;
    std::string head;
    bool refused;
  };
  const row rows[] = {
      {"plain GET", "GET /EWS HTTP/1.1\r\nHost: a\r\n\r\n", false},
      {"POST with length", "POST /EWS HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n", false},
      {"chunked", "POST /EWS HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", false},
      {"chunked any case", "POST /EWS HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n",
       false},
      {"HTTP/1.0 without Host", "GET /EWS HTTP/1.0\r\n\r\n", false},
      {"CL and TE",
       "POST /EWS HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
       true},
      {"TE and CL",
       "POST /EWS HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
       true},
      {"two equal CL",
       "POST /EWS HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", true},
      {"two different CL",
       "POST /EWS HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", true},
      {"CL list", "POST /EWS HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", true},
      {"CL not a number", "POST /EWS HTTP/1.1\r\nHost: a\r\nContent-Length: 5x\r\n\r\n", true},
      {"TE gzip", "POST /EWS HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", true},
      {"TE chunked twice",
       "POST /EWS HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", true},
      {"TE two fields",
       "POST /EWS HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
       "chunked\r\n\r\n",
       true},
      {"TE xchunked", "POST /EWS HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n", true},
      {"TE on HTTP/1.0", "POST /EWS HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", true},
      {"obs-fold", "GET /EWS HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", true},
      {"obs-fold tab", "GET /EWS HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\tc\r\n\r\n", true},
      {"two Host", "GET /EWS HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", true},
      {"no Host", "GET /EWS HTTP/1.1\r\nX: y\r\n\r\n", true},
      {"space before colon", "GET /EWS HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\n", true},
      {"asterisk", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", true},
      {"authority form", "CONNECT mail:443 HTTP/1.1\r\nHost: a\r\n\r\n", true},
  };
  for (const auto& r : rows) {
    INFO(r.name);
    auto result = check(r.head);
    CHECK(result.has_value() == r.refused);
    if (result) CHECK(result->status == 400);
  }
}

TEST_CASE("forwarded_head replaces client X-Forwarded-* and adds ours", "[http][forwarded]") {
  const std::string head =
      "GET /EWS HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 10.6.6.6\r\nx-forwarded-proto: http\r\n"
      "Accept: */*\r\n\r\n";
  CHECK(forwarded_head(head, "203.0.113.9", "https") ==
        "GET /EWS HTTP/1.1\r\nHost: a\r\nAccept: */*\r\nX-Forwarded-For: 203.0.113.9\r\n"
        "X-Forwarded-Proto: https\r\n\r\n");
}

TEST_CASE("base64 decoding", "[http][base64]") {
  CHECK(base64_decode("dXNlcjpwYXNz") == std::optional<std::string>("user:pass"));
  CHECK(base64_decode("YQ==") == std::optional<std::string>("a"));
  CHECK(base64_decode("YQ") == std::optional<std::string>("a"));
  CHECK(base64_decode("-_8=") == base64_decode("+/8="));
  CHECK_FALSE(base64_decode("a b").has_value());
  CHECK_FALSE(base64_decode("YWJjZ").has_value());  // a lone 6-bit group
}

TEST_CASE("Basic credentials: the user, never the password", "[http][auth]") {
  auto a = parse_authorization("Basic " + base64("CONTOSO\\jdoe:s3cr:et"));
  CHECK(a.scheme == "Basic");
  CHECK(a.user == "CONTOSO\\jdoe");
  CHECK(parse_authorization("basic " + base64("jdoe@contoso.com:x")).user == "jdoe@contoso.com");
  CHECK(parse_authorization("Basic !!!").user.empty());
  CHECK(parse_authorization("Bearer eyJhbGciOi").scheme == "Bearer");
  CHECK(parse_authorization("Bearer eyJhbGciOi").user.empty());
}

TEST_CASE("NTLM AUTHENTICATE message: user and domain", "[http][ntlm]") {
  SECTION("unicode") {
    auto id = decode_ntlm_authenticate(ntlm_type3("CONTOSO", "jdoe", "PHONE1"));
    REQUIRE(id);
    CHECK(id->domain == "CONTOSO");
    CHECK(id->user == "jdoe");
    CHECK(id->workstation == "PHONE1");
  }
  SECTION("non-ASCII unicode becomes UTF-8") {
    const std::string user("J\0\xf6\0r\0g\0", 8);  // "Jörg" in UTF-16LE
    std::string b = ntlm_type3("", "", "");
    tlsbridge::test::http::put_le16(b, 36, static_cast<std::uint32_t>(user.size()));
    tlsbridge::test::http::put_le32(b, 40, static_cast<std::uint32_t>(b.size()));
    b += user;
    auto id = decode_ntlm_authenticate(b);
    REQUIRE(id);
    CHECK(id->user == "J\xc3\xb6rg");
  }
  SECTION("OEM strings when NEGOTIATE_UNICODE is not set") {
    auto id = decode_ntlm_authenticate(ntlm_type3("CONTOSO", "jdoe", "WS", false));
    REQUIRE(id);
    CHECK(id->domain == "CONTOSO");
    CHECK(id->user == "jdoe");
  }
  SECTION("through the Authorization field, NTLM and Negotiate") {
    auto a = parse_authorization("NTLM " + base64(ntlm_type3("CONTOSO", "jdoe", "WS")));
    CHECK(a.scheme == "NTLM");
    CHECK(a.ntlm_type == 3);
    CHECK(a.user == "jdoe");
    CHECK(a.domain == "CONTOSO");
    // SPNEGO-wrapped NTLMSSP: some DER bytes first.
    auto n = parse_authorization("Negotiate " +
                                 base64("\xa1\x81\x90\x30\x81\x8d\xa2\x81\x8a\x04\x81\x87" +
                                        ntlm_type3("FABRIKAM", "ann", "WS")));
    CHECK(n.scheme == "Negotiate");
    CHECK(n.user == "ann");
    CHECK(n.domain == "FABRIKAM");
    auto t1 = parse_authorization("NTLM " + base64(ntlm_type1()));
    CHECK(t1.ntlm_type == 1);
    CHECK(t1.user.empty());
    auto kerberos = parse_authorization("Negotiate YIIHJgYGKwYBBQUCoIIHGjCCBxagMDAuBgkqhkiC");
    CHECK(kerberos.ntlm_type == 0);
    CHECK(kerberos.user.empty());
  }
  SECTION("truncated and out-of-bounds messages decode to nothing") {
    const std::string good = ntlm_type3("CONTOSO", "jdoe", "WS");
    for (std::size_t len = 0; len < good.size(); ++len) {
      INFO(len);
      auto id = decode_ntlm_authenticate(good.substr(0, len));
      // The header alone is 64 bytes; past it, any cut that leaves a buffer outside fails.
      if (len < 64) CHECK_FALSE(id);
    }
    CHECK_FALSE(decode_ntlm_authenticate(good.substr(0, good.size() - 49)));  // NT response cut
    std::string bad = good;
    tlsbridge::test::http::put_le32(bad, 40, 0xfffffff0u);  // user offset far outside
    CHECK_FALSE(decode_ntlm_authenticate(bad));
    bad = good;
    tlsbridge::test::http::put_le16(bad, 36, 0xffff);  // user length beyond the blob
    CHECK_FALSE(decode_ntlm_authenticate(bad));
    bad = good;
    bad[8] = 2;  // a CHALLENGE message
    CHECK_FALSE(decode_ntlm_authenticate(bad));
    CHECK_FALSE(decode_ntlm_authenticate(std::string("NTLMSSP\0\3\0\0\0", 12)));
    CHECK(parse_authorization("NTLM " + base64(good.substr(0, 40))).user.empty());
    CHECK(parse_authorization("NTLM").user.empty());
  }
}

namespace {

std::string activesync_blob(unsigned version, unsigned cmd, std::string_view device_id,
                            std::string_view policy_key, std::string_view device_type,
                            std::string_view params) {
  std::string b;
  b += static_cast<char>(version);
  b += static_cast<char>(cmd);
  b += "\x09\x04";  // locale 0x0409, little-endian
  b += static_cast<char>(device_id.size());
  b += device_id;
  b += static_cast<char>(policy_key.size());
  b += policy_key;
  b += static_cast<char>(device_type.size());
  b += device_type;
  b += params;
  return b;
}

std::string url_encoded(std::string_view b64) {
  std::string out;
  for (char c : b64) {
    if (c == '+')
      out += "%2B";
    else if (c == '/')
      out += "%2F";
    else if (c == '=')
      out += "%3D";
    else
      out += c;
  }
  return out;
}

}  // namespace

TEST_CASE("ActiveSync query: plain form", "[http][activesync]") {
  auto as = decode_activesync_query(
      "/Microsoft-Server-ActiveSync?Cmd=Ping&User=CONTOSO%5Cjdoe&DeviceId=ABC123&DeviceType="
      "iPhone");
  REQUIRE(as);
  CHECK(as->form == "plain");
  CHECK(as->cmd == "Ping");
  CHECK(as->user == "CONTOSO\\jdoe");
  CHECK(as->device_id == "ABC123");
  CHECK(as->device_type == "iPhone");
  auto partial = decode_activesync_query("/Microsoft-Server-ActiveSync?Cmd=Sync");
  REQUIRE(partial);
  CHECK(partial->cmd == "Sync");
  CHECK(partial->user.empty());
  CHECK_FALSE(decode_activesync_query("/Microsoft-Server-ActiveSync"));
  CHECK_FALSE(decode_activesync_query("/Microsoft-Server-ActiveSync?not base64!"));
}

TEST_CASE("ActiveSync query: base64 form (MS-ASHTTP)", "[http][activesync]") {
  const std::string device_id("\x01\x23\x45\x67\x89\xab\xcd\xef\x01\x23\x45\x67\x89\xab\xcd\xef",
                              16);
  const std::string params = std::string("\x07\x01\x01", 3) +               // Options
                             std::string("\x08\x0c", 2) + "jdoe@contoso" +  // User
                             std::string("\x01\x02", 2) + "xy";             // CollectionId
  const std::string blob =
      activesync_blob(141, 18, device_id, std::string("\x01\x02\x03\x04", 4), "Android", params);
  auto as = decode_activesync_query("/Microsoft-Server-ActiveSync?" + url_encoded(base64(blob)));
  REQUIRE(as);
  CHECK(as->form == "base64");
  CHECK(as->protocol_version == "14.1");
  CHECK(as->cmd == "Ping");
  CHECK(as->device_id == "0123456789ABCDEF0123456789ABCDEF");
  CHECK(as->device_type == "Android");
  CHECK(as->user == "jdoe@contoso");

  SECTION("command codes") {
    CHECK(activesync_command_name(0) == "Sync");
    CHECK(activesync_command_name(9) == "FolderSync");
    CHECK(activesync_command_name(17) == "Settings");
    CHECK(activesync_command_name(20) == "Provision");
    CHECK(activesync_command_name(22) == "ValidateCert");
    CHECK(activesync_command_name(23).empty());
    auto unknown =
        decode_activesync_query("/Microsoft-Server-ActiveSync?" +
                                url_encoded(base64(activesync_blob(140, 99, "d", "", "t", ""))));
    REQUIRE(unknown);
    CHECK(unknown->cmd == "99");
  }
  SECTION("no policy key") {
    auto no_key = decode_activesync_query(
        "/Microsoft-Server-ActiveSync?" +
        url_encoded(base64(activesync_blob(121, 0, "AB", "", "SmartPhone", ""))));
    REQUIRE(no_key);
    CHECK(no_key->cmd == "Sync");
    CHECK(no_key->protocol_version == "12.1");
    CHECK(no_key->device_id == "4142");
    CHECK(no_key->device_type == "SmartPhone");
  }
  SECTION("truncations keep what decoded and never read outside") {
    for (std::size_t len = 0; len <= blob.size(); ++len) {
      INFO(len);
      std::string cut = blob.substr(0, len);
      auto r = decode_activesync_query("/Microsoft-Server-ActiveSync?" + url_encoded(base64(cut)));
      if (len < 5) {
        CHECK_FALSE(r);
        continue;
      }
      REQUIRE(r);
      CHECK(r->cmd == "Ping");
      if (len < 5 + 16) CHECK(r->device_id.empty());
      if (len < blob.size() - 2) CHECK(r->user.size() <= 12);
    }
    // A length byte that claims more than is there.
    std::string lying = activesync_blob(141, 0, "abc", "", "t", "");
    lying[4] = static_cast<char>(200);
    auto r = decode_activesync_query("/Microsoft-Server-ActiveSync?" + url_encoded(base64(lying)));
    REQUIRE(r);
    CHECK(r->device_id.empty());
  }
}

TEST_CASE("proxy responses are small, complete HTTP/1.1 messages", "[http][response]") {
  const std::string r = proxy_response(404, false);
  CHECK(r.rfind("HTTP/1.1 404 Not Found\r\n", 0) == 0);
  CHECK(r.find("Connection: close") == std::string::npos);
  CHECK(proxy_response(502, true).find("Connection: close\r\n") != std::string::npos);
  message_parser p(message_parser::kind::response, 65536);
  std::error_code ec;
  const std::string wire = proxy_response(504, true);
  std::size_t used = p.put(wire, ec);
  used += p.put(std::string_view(wire).substr(used), ec);
  CHECK_FALSE(ec);
  CHECK(p.done());
  CHECK(used == wire.size());
  CHECK(p.head().status == 504);
}
