// Issue 12 ("The shield holds"), HTTPS: the grammar the machine tokenises by (http_grammar) and
// the machine's refusals — tunnels only on /rpc/ after the checks, strict chunk framing
// re-serialised, bare CR/LF, the exact head limit however split, the method set, fields IIS
// folds, and timeouts.request_head. Each refusal: the proxy's status, nothing (more) at the
// backend, a record whose reason names the rule.
#include <catch2/catch.hpp>
#include <memory>

#include "protocols/http/http_grammar.hpp"
#include "protocols/http/http_request_info.hpp"
#include "tests/unit/http/http_test_support.hpp"

using namespace tlsbridge::protocols::http;
using tlsbridge::test::http::harness;

namespace {

const std::string xff = "X-Forwarded-For: 203.0.113.9\r\nX-Forwarded-Proto: https\r\n\r\n";

machine_settings settings() {
  machine_settings s;
  s.request_timeout = std::chrono::seconds(30);
  return s;
}

std::string reason_of(const harness& h) {
  REQUIRE_FALSE(h.t.records.empty());
  const auto* r = h.t.records.back().if_contains("reason");
  return r && r->is_string() ? std::string(r->as_string()) : std::string();
}

std::string status_line(const std::string& wire) {
  return wire.substr(0, wire.find("\r\n"));
}

}  // namespace

TEST_CASE("grammar: scan_head frames on CRLF only and counts exactly", "[http][grammar]") {
  using r = head_scan::result;
  CHECK(scan_head("GET / HTTP/1.1\r\n\r\n", 0, 100).what == r::complete);
  CHECK(scan_head("GET / HTTP/1.1\r\n\r\n", 0, 100).length == 18);
  CHECK(scan_head("GET / HTTP/1.1\r\n\r\nrest", 0, 100).length == 18);
  CHECK(scan_head("GET / HTTP/1.1\r\n", 0, 100).what == r::need_more);
  CHECK(scan_head("GET / HTTP/1.1\r", 0, 100).what == r::need_more);
  CHECK(scan_head("GET / HTTP/1.1\n\n", 0, 100).what == r::bare_line_ending);
  CHECK(scan_head("GET / HTTP/1.1\r\nA: b\n\r\n", 0, 100).what == r::bare_line_ending);
  CHECK(scan_head("GET / HTTP/1.1\r\nA: b\rc\r\n\r\n", 0, 100).what == r::bare_line_ending);
  CHECK(scan_head("GET / HTTP/1.1\r\n\r\n", 0, 18).what == r::complete);
  CHECK(scan_head("GET / HTTP/1.1\r\n\r\n", 0, 17).what == r::too_large);
  CHECK(scan_head(std::string(18, 'x'), 0, 18).what == r::too_large);
  CHECK(scan_head(std::string(17, 'x'), 0, 18).what == r::need_more);
  // Resumed scans agree with one scan, whatever the split.
  const std::string head = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
  for (std::size_t cut = 0; cut < head.size(); ++cut) {
    auto first = scan_head(head.substr(0, cut), 0, 100);
    REQUIRE(first.what == r::need_more);
    auto second = scan_head(head, first.scanned, 100);
    CHECK(second.what == r::complete);
    CHECK(second.length == head.size());
  }
}

TEST_CASE("grammar: request head", "[http][grammar]") {
  CHECK_FALSE(check_head_grammar("GET /owa/ HTTP/1.1\r\nHost: a\r\nX: \x80\t y\r\n\r\n"));
  CHECK_FALSE(check_head_grammar("PROPFIND /EWS/ HTTP/1.0\r\nHost: a\r\n\r\n"));
  struct bad {
    const char* head;
    unsigned status;
  };
  for (const auto& b : std::initializer_list<bad>{
           {"get /owa/ HTTP/1.1\r\nHost: a\r\n\r\n", 501},
           {"Get /owa/ HTTP/1.1\r\nHost: a\r\n\r\n", 501},
           {"TRACE /owa/ HTTP/1.1\r\nHost: a\r\n\r\n", 501},
           {"CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n", 501},
           {"rpc_in_data /rpc/ HTTP/1.1\r\nHost: a\r\n\r\n", 501},
           {"GET  /owa/ HTTP/1.1\r\nHost: a\r\n\r\n", 400},
           {"GET /owa/  HTTP/1.1\r\nHost: a\r\n\r\n", 400},
           {"GET\t/owa/ HTTP/1.1\r\nHost: a\r\n\r\n", 400},
           {" GET /owa/ HTTP/1.1\r\nHost: a\r\n\r\n", 400},
           {"GET /owa/ HTTP/1.2\r\nHost: a\r\n\r\n", 400},
           {"GET /owa/ http/1.1\r\nHost: a\r\n\r\n", 400},
           {"GET /o\x01wa/ HTTP/1.1\r\nHost: a\r\n\r\n", 400},
           {"GET /o\xc3\xa9/ HTTP/1.1\r\nHost: a\r\n\r\n", 400},
           {"GET /owa/ HTTP/1.1\r\nHost: a\r\nX-Forwarded-For : 1.2.3.4\r\n\r\n", 400},
           {"GET /owa/ HTTP/1.1\r\nHost: a\r\nX-Forwarded-For\t: 1.2.3.4\r\n\r\n", 400},
           {"GET /owa/ HTTP/1.1\r\nHost: a\r\nX(y): z\r\n\r\n", 400},
           {"GET /owa/ HTTP/1.1\r\nHost: a\r\n: z\r\n\r\n", 400},
           {"GET /owa/ HTTP/1.1\r\nHost: a\r\nnocolon\r\n\r\n", 400},
           {"GET /owa/ HTTP/1.1\r\nHost: a\r\nX: a\x7fz\r\n\r\n", 400},
           {"GET /owa/ HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", 400},
       }) {
    INFO(b.head);
    // Built with an explicit size: one case holds a NUL.
    const std::string_view head(b.head, std::string_view(b.head).find("\r\n\r\n") + 4);
    auto refused = check_head_grammar(std::string(head));
    REQUIRE(refused);
    CHECK(refused->status == b.status);
  }
  const std::string nul("GET /owa/ HTTP/1.1\r\nHost: a\r\nX: a\0z\r\n\r\n", 37);
  CHECK(check_head_grammar(nul));
  for (const char* m :
       {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "RPC_IN_DATA", "RPC_OUT_DATA",
        "PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK", "SEARCH"})
    CHECK(method_relayed(m));
  for (const char* m : {"get", "TRACE", "CONNECT", "TRACK", "DEBUG", "BPROPFIND", "Rpc_In_Data"})
    CHECK_FALSE(method_relayed(m));
}

TEST_CASE("grammar: chunk extensions (RFC 9112 §7.1.1)", "[http][grammar]") {
  for (const char* ok : {"", ";a", ";a=b", " ; a = b", ";a=\"x y\"", ";a=\"q\\\"x\"", ";a;b=c",
                         "\t;a\t=\t\"\"", ";a=\"\xe9\""})
    CHECK(valid_chunk_ext(ok));
  for (const char* bad :
       {" ", ";", ";=b", ";a=", ";a=\"x", ";a=\"x\ny\"", ";a=\"x\ry\"", ";a=\"x\x01y\"", ";a=b c",
        "a", ";a=b;", ";a=\"x\\\ny\"", ";a=\"x\"y", ";a=\"\x7f\"", ";a b"})
    CHECK_FALSE(valid_chunk_ext(bad));
}

TEST_CASE("grammar: chunked_decoder validates and re-serialises", "[http][grammar]") {
  auto run = [](std::string_view body, bool bytewise) {
    chunked_decoder d(4096);
    std::string out;
    std::size_t used = 0;
    if (bytewise) {
      for (std::size_t i = 0; i < body.size() && !d.done() && d.error().empty(); ++i)
        used += d.put(body.substr(i, 1), out);
    } else {
      used = d.put(body, out);
    }
    return std::tuple{d.done(), d.error(), out, used};
  };
  for (bool bytewise : {false, true}) {
    INFO("bytewise " << bytewise);
    auto [done, error, out, used] =
        run("004;a=\"b\"\r\nabcd\r\nA\r\n0123456789\r\n000;x\r\nT: v\r\n\r\nGET", bytewise);
    CHECK(done);
    CHECK(error.empty());
    CHECK(out == "4\r\nabcd\r\nA\r\n0123456789\r\n0\r\n\r\n");
    CHECK(
        used ==
        std::string_view("004;a=\"b\"\r\nabcd\r\nA\r\n0123456789\r\n000;x\r\nT: v\r\n\r\n").size());
    for (const char* bad :
         {"2;a=\"\nXX\n0\n\nGET /PowerShell/ HTTP/1.1\nHost: a\n\n\"\r\nab\r\n0\r\n\r\n",
          "2\nab\r\n0\r\n\r\n", "2\r\nab\n0\r\n\r\n", "2\rab\r\n0\r\n\r\n", "2\r\nabX\r\n",
          "2 \r\nab\r\n0\r\n\r\n", "0x2\r\nab\r\n", "-2\r\nab\r\n", "+2\r\nab\r\n", "\r\n",
          "11111111111111111\r\n", "2;a=\"\x01\"\r\nab\r\n", "2;a\x01\r\n", "0\r\nT: a\nX\r\n\r\n",
          "0\r\nT: a\x01\r\n\r\n", "0\r\nT : a\r\n\r\n", "0\r\n a\r\n\r\n", "0\n\r\n"}) {
      INFO(bad);
      auto [d, e, o, u] = run(bad, bytewise);
      CHECK_FALSE(d);
      CHECK_FALSE(e.empty());
      // Nothing past the framing error is passed on.
      CHECK(o.find("PowerShell") == std::string::npos);
    }
  }
  // The largest size that fits in 64 bits, leading zeros aside, is a size.
  chunked_decoder big(4096);
  std::string out;
  big.put("0000FFFFFFFFFFFFFFFF\r\nab", out);
  CHECK(big.error().empty());
  CHECK(out == "FFFFFFFFFFFFFFFF\r\nab");
}

TEST_CASE("https: RPC_IN_DATA off /rpc/ is refused and what follows never arrives",
          "[http][session][shield]") {
  // Issue 12 item 1, as reproduced: three requests in one write.
  for (bool bytewise : {false, true}) {
    INFO("bytewise " << bytewise);
    harness h(settings(), bytewise);
    h.client(
        "RPC_IN_DATA /owa/ HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nX-Forwarded-For: "
        "6.6.6.6\r\n\r\n"
        "GET /PowerShell/ HTTP/1.1\r\nHost: a\r\n\r\n"
        "POST /ecp/DDI/DDIService.svc/GetList HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n");
    CHECK(h.t.connects == 0);
    CHECK(h.t.to_backend.empty());
    CHECK(status_line(h.t.to_client) == "HTTP/1.1 400 Bad Request");
    CHECK(h.t.closes == 1);
    REQUIRE(h.t.records.size() == 1);
    CHECK(reason_of(h).find("outside /rpc/") != std::string::npos);
  }
  for (const char* path : {"/ecp/", "/rpcx/", "/rpc/../owa/", "/owa/rpc/", "/rpc%2f..%2fowa/"}) {
    INFO(path);
    harness h(settings());
    h.client("RPC_OUT_DATA " + std::string(path) +
             " HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n");
    CHECK(h.t.connects == 0);
    CHECK(h.t.to_backend.empty());
    CHECK(h.t.to_client.rfind("HTTP/1.1 4", 0) == 0);
  }
  SECTION("lowercase is an unknown method, not RPC") {
    harness h(settings());
    h.client("rpc_in_data /rpc/rpcproxy.dll HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n");
    CHECK(status_line(h.t.to_client) == "HTTP/1.1 501 Not Implemented");
    CHECK(h.t.to_backend.empty());
  }
  SECTION("on /rpc/ the body is framed and the next request checked") {
    harness h(settings());
    h.client(
        "RPC_IN_DATA /rpc/rpcproxy.dll?mail:6001 HTTP/1.1\r\nHost: a\r\nContent-Length: "
        "0\r\n\r\nPOST /ecp/DDI/x HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 6.6.6.6\r\n"
        "Content-Length: 0\r\n\r\nGET /PowerShell/ HTTP/1.1\r\nHost: a\r\n\r\n");
    CHECK(h.t.take_backend() ==
          "RPC_IN_DATA /rpc/rpcproxy.dll?mail:6001 HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n" +
              xff + "POST /ecp/DDI/x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n" + xff);
  }
}

TEST_CASE("https: Upgrade bytes stay held until a 101", "[http][session][shield]") {
  harness h(settings());
  h.client(
      "GET /mapi/ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
      "GET /PowerShell/ HTTP/1.1\r\nHost: a\r\n\r\n");
  h.t.take_backend();
  h.backend("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  CHECK(h.t.to_backend.empty());  // declined: the held bytes are a request, and refused
  CHECK(h.t.take_client().find("HTTP/1.1 404 Not Found") != std::string::npos);
}

TEST_CASE("https: chunk-extension smuggling is refused, the back leg dropped",
          "[http][session][shield]") {
  const std::string head = "POST /owa/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (bool bytewise : {false, true}) {
    INFO("bytewise " << bytewise);
    harness h(settings(), bytewise);
    h.client(head +
             "2;a=\"\nXX\n0\n\nGET /PowerShell/ HTTP/1.1\nHost: a\n\n\"\r\nab\r\n0\r\n\r\n"
             "GET /owa/ HTTP/1.1\r\nHost: a\r\n\r\n");
    const std::string at_backend = h.t.take_backend();
    CHECK(at_backend.find("PowerShell") == std::string::npos);
    CHECK(at_backend.find("GET /owa/") == std::string::npos);
    CHECK(h.t.aborts == 1);
    CHECK(status_line(h.t.to_client) == "HTTP/1.1 400 Bad Request");
    CHECK(h.t.closes == 1);
    CHECK(reason_of(h).find("RFC 9112") != std::string::npos);
  }
  SECTION("valid extensions are dropped, trailers too") {
    harness h(settings());
    h.client(head + "2;name=\"v\"\r\nab\r\n0\r\nX-Trailer: 1\r\n\r\n");
    CHECK(h.t.take_backend() ==
          "POST /owa/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n" + xff +
              "2\r\nab\r\n0\r\n\r\n");
    CHECK(h.t.aborts == 0);
  }
}

TEST_CASE("https: bare CR or LF in a request head is refused", "[http][session][shield]") {
  for (const char* wire :
       {"GET /owa/ HTTP/1.1\nHost: a\r\n\r\n", "GET /owa/ HTTP/1.1\r\nHost: a\n\n",
        "GET /owa/ HTTP/1.1\r\nHost: a\rX: y\r\n\r\n", "\nGET /owa/ HTTP/1.1\r\nHost: a\r\n\r\n",
        "\r\rGET /owa/ HTTP/1.1\r\nHost: a\r\n\r\n"}) {
    for (bool bytewise : {false, true}) {
      INFO(wire << " bytewise " << bytewise);
      harness h(settings(), bytewise);
      h.client(wire);
      CHECK(h.t.to_backend.empty());
      CHECK(status_line(h.t.to_client) == "HTTP/1.1 400 Bad Request");
      CHECK(h.t.closes == 1);
    }
  }
  harness h(settings());
  h.client("\r\n\r\nGET /owa/ HTTP/1.1\r\nHost: a\r\n\r\n");  // RFC 9112 §2.2: ignored
  CHECK(h.t.take_backend() == "GET /owa/ HTTP/1.1\r\nHost: a\r\n" + xff);
}

TEST_CASE("https: the head limit is exact however the head is split", "[http][session][shield]") {
  auto head_of = [](std::size_t size) {
    std::string h = "GET /owa/ HTTP/1.1\r\nHost: a\r\n";
    while (size - 2 - h.size() > 1010) h += "X: " + std::string(1000, 'x') + "\r\n";
    const std::size_t room = size - 2 - h.size();  // 5 to 1010: one last field fills it
    h += "X: " + std::string(room - 5, 'x') + "\r\n";
    return h + "\r\n";
  };
  for (std::size_t piece : {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{4096}}) {
    for (std::size_t size :
         {std::size_t{64 * 1024}, std::size_t{64 * 1024 + 1}, std::size_t{88921}}) {
      INFO("piece " << piece << " size " << size);
      const std::string head = head_of(size);
      REQUIRE(head.size() == size);
      harness h(settings(), piece == 1);
      if (piece <= 1) {
        h.client(head);
      } else {
        for (std::size_t at = 0; at < head.size(); at += piece) h.client(head.substr(at, piece));
      }
      if (size <= 64 * 1024) {
        CHECK(h.t.to_backend.size() == size - 2 + xff.size());
      } else {
        CHECK(h.t.to_backend.empty());
        CHECK(status_line(h.t.to_client) == "HTTP/1.1 431 Request Header Fields Too Large");
        CHECK(h.t.closes == 1);
      }
    }
  }
}

TEST_CASE("https: empty lines before a head count toward its limit and its clock",
          "[http][session][shield]") {
  const std::string head = "GET /owa/ HTTP/1.1\r\nHost: a\r\n\r\n";
  SECTION("a run of CRLFs is part of the head's 64 KiB") {
    std::string prefix;
    for (int i = 0; i < 20000; ++i) prefix += "\r\n";
    harness h(settings());
    h.client(prefix + prefix + head);
    CHECK(h.t.to_backend.empty());
    CHECK(status_line(h.t.to_client) == "HTTP/1.1 431 Request Header Fields Too Large");
    harness ok(settings());
    ok.client(prefix + head);  // 40,000 + the head: within the limit, the CRLFs not passed on
    CHECK(ok.t.take_backend() == "GET /owa/ HTTP/1.1\r\nHost: a\r\n" + xff);
  }
  SECTION("a trickle of CRLFs runs the request_head clock") {
    auto clock = std::make_shared<std::chrono::steady_clock::time_point>();
    auto s = settings();
    s.request_head_timeout = std::chrono::seconds(10);
    s.clock = [clock] { return *clock; };
    harness h(s);
    h.client("\r\n");
    CHECK(h.machine.idle_limit() == std::chrono::milliseconds(10000));
    *clock += std::chrono::seconds(5);
    h.client("\r\n");
    CHECK(h.machine.idle_limit() == std::chrono::milliseconds(5000));
    *clock += std::chrono::seconds(5);
    h.idle_timeout();
    CHECK(status_line(h.t.to_client) == "HTTP/1.1 408 Request Timeout");
  }
}

TEST_CASE("https: unknown and lowercase methods get 501 from the proxy",
          "[http][session][shield]") {
  for (const char* method : {"get", "Get", "post", "TRACE", "CONNECT", "FOO", "BPROPFIND"}) {
    INFO(method);
    harness h(settings());
    h.client(std::string(method) + " /owa/ HTTP/1.1\r\nHost: a\r\n\r\n");
    CHECK(h.t.connects == 0);
    CHECK(h.t.to_backend.empty());
    CHECK(status_line(h.t.to_client) == "HTTP/1.1 501 Not Implemented");
    CHECK(reason_of(h).find("method not relayed") != std::string::npos);
  }
  for (const char* method : {"PROPFIND", "OPTIONS", "PATCH", "SEARCH"}) {
    INFO(method);
    harness h(settings());
    h.client(std::string(method) + " /owa/ HTTP/1.1\r\nHost: a\r\n\r\n");
    CHECK(h.t.take_backend() == std::string(method) + " /owa/ HTTP/1.1\r\nHost: a\r\n" + xff);
  }
}

TEST_CASE("https: fields IIS folds are stripped; our X-Forwarded-For is the only one",
          "[http][session][shield]") {
  for (bool forwarded : {true, false}) {
    INFO("forwarded " << forwarded);
    auto s = settings();
    s.forwarded_headers = forwarded;
    harness h(s);
    h.client(
        "GET /owa/ HTTP/1.1\r\nHost: a\r\nX_Forwarded_For: 6.6.6.6\r\nx-forwarded_for: 7.7.7.7\r\n"
        "X-Forwarded-For: 8.8.8.8\r\nContent_Length: 5\r\nAccept: */*\r\n\r\n");
    const std::string at_backend = h.t.take_backend();
    CHECK(at_backend.find('_') == std::string::npos);
    CHECK(at_backend.find("6.6.6.6") == std::string::npos);
    CHECK(at_backend.find("7.7.7.7") == std::string::npos);
    CHECK(at_backend.find("Accept: */*\r\n") != std::string::npos);
    if (forwarded) CHECK(at_backend.find("8.8.8.8") == std::string::npos);
    h.backend("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    REQUIRE(h.t.records.size() == 1);
    CHECK(h.t.records[0].at("stripped_fields").as_array().size() == 3);
  }
  harness h(settings());
  h.client("GET /owa/ HTTP/1.1\r\nHost: a\r\nX-Forwarded-For : 6.6.6.6\r\n\r\n");
  CHECK(h.t.to_backend.empty());
  CHECK(status_line(h.t.to_client) == "HTTP/1.1 400 Bad Request");
}

TEST_CASE("https: timeouts.request_head bounds a trickling head", "[http][session][shield]") {
  auto clock = std::make_shared<std::chrono::steady_clock::time_point>();
  auto s = settings();
  s.request_head_timeout = std::chrono::seconds(10);
  s.clock = [clock] { return *clock; };
  using std::chrono::milliseconds;
  using std::chrono::seconds;
  SECTION("one byte every few seconds: 408 at the deadline") {
    harness h(s);
    CHECK_FALSE(h.machine.idle_limit());  // no head yet: the listener's idle timeout
    const std::string wire = "GET /owa/ HTTP/1.1\r\nHost: a\r\n\r\n";
    h.client(wire.substr(0, 1));
    CHECK(h.machine.idle_limit() == milliseconds(10000));
    *clock += seconds(3);
    h.client(wire.substr(1, 1));
    CHECK(h.machine.idle_limit() == milliseconds(7000));  // measured from the first byte
    *clock += seconds(7);
    h.idle_timeout();
    CHECK(status_line(h.t.to_client) == "HTTP/1.1 408 Request Timeout");
    CHECK(h.t.closes == 1);
    CHECK(h.t.to_backend.empty());
    CHECK(h.machine.facts().outcome == "timeout");
    CHECK(reason_of(h).find("timeouts.request_head") != std::string::npos);
  }
  SECTION("a complete head ends the deadline; the next head has its own") {
    harness h(s);
    h.client("GET /owa/ HTTP/1.1\r\nHost: a\r\n\r\n");
    CHECK(h.machine.idle_limit() == milliseconds(30000));  // request_timeout: awaiting a response
    h.backend("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    CHECK_FALSE(h.machine.idle_limit());
    *clock += seconds(60);
    h.client("GET /owa/ HTTP/1.1\r\n");
    CHECK(h.machine.idle_limit() == milliseconds(10000));
    *clock += seconds(4);
    h.backend("");
    CHECK(h.machine.idle_limit() == milliseconds(6000));
  }
  SECTION("a head behind a response in flight: the nearer deadline, closed without 408") {
    harness h(s);
    h.client("GET /owa/ HTTP/1.1\r\nHost: a\r\n\r\nGET /owa/x HTTP/1.1\r\n");
    CHECK(h.machine.idle_limit() == milliseconds(10000));
    *clock += seconds(10);
    h.idle_timeout();
    CHECK(h.t.closes == 1);
    CHECK(h.machine.facts().outcome == "timeout");
    CHECK(h.machine.facts().reason.find("timeouts.request_head") != std::string::npos);
  }
}

TEST_CASE("https: a refusal still queued when the session ends is recorded as the proxy's",
          "[http][session][shield]") {
  // Found by fuzz_http_differential (corpus regression-refusal-behind-pending-response): the
  // 400 waited behind a request the backend never answered; the session ended on the 504, and
  // the record of the refused request said origin "backend" though nothing of it was relayed.
  harness h(settings());
  h.client("POST /EWS/a HTTP/1.1\r\nHost: a\r\n\r\nabcPOST /EWS/b HTTP/1.1\r\nHost: a\rX\r\n\r\n");
  h.idle_timeout();
  REQUIRE(h.t.records.size() == 2);
  CHECK(h.t.records[0].at("status") == 504);
  CHECK(h.t.records[1].at("origin") == "proxy");
  CHECK(h.t.take_backend().find("/EWS/b") == std::string::npos);
}

TEST_CASE("https: an empty line after a request, then EOF, ends the session normally",
          "[http][session][shield]") {
  harness h(settings());
  h.client("POST /owa/ HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\nx\r\n");
  h.client_eof();
  CHECK(h.t.closes == 0);  // the response is still owed
  h.backend("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  CHECK(h.t.closes == 1);
  CHECK(h.machine.facts().outcome.empty());
}
