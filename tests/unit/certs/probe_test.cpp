// probe() against an in-process server on 127.0.0.1 (a thread with blocking sockets): SMTP, IMAP
// and POP3 STARTTLS servers that speak only TLS 1.2 (the opening is the proxy's own opener), and
// a port where nothing listens. The real-peer
// cases (Postfix at TLS 1.0, the MD5 chain) are in tests/integration/test_probe.py.
#include "certs/probe.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <string>
#include <thread>
#include <vector>

#include "certs/tls_context.hpp"
#include "test_pki.hpp"

using namespace tlsbridge;

namespace {

int listen_loopback(std::uint16_t& port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::listen(fd, 8) == 0);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  port = ntohs(addr.sin_port);
  return fd;
}

void send_text(int fd, const std::string& s) {
  (void)!::send(fd, s.data(), s.size(), MSG_NOSIGNAL);
}

// Reads one line (up to LF); false on EOF.
bool read_line(int fd, std::string& line) {
  line.clear();
  char c = 0;
  while (::recv(fd, &c, 1, 0) == 1) {
    if (c == '\n') return true;
    line += c;
  }
  return false;
}

// One scripted server exchange: wait for a client line starting with `expect` ("" = none, the
// server speaks first), then send `reply`.
struct exchange {
  std::string expect;
  std::string reply;
};

// Serves `connections` STARTTLS sessions: the plaintext `before` script, a TLS 1.2-only
// handshake, then the `after` script over TLS (each entry answers one read). Every client line
// is recorded in `seen`. `handshake` false: close after `before`.
void scripted_tls12_server(int listen_fd, int connections, std::vector<exchange> before,
                           std::vector<exchange> after, std::vector<std::string>& seen,
                           bool handshake = true) {
  config::tls_profile profile = test::modern_profile();
  profile.min_version = profile.max_version = config::tls1_2;
  auto ctx = certs::make_server_context(profile, test::test_pki::get().entry("server"));
  for (int i = 0; i < connections; ++i) {
    const int fd = ::accept(listen_fd, nullptr, nullptr);
    if (fd < 0) return;
    bool ok = handshake;
    for (const auto& e : before) {
      std::string line;
      if (!e.expect.empty()) {
        const bool read = read_line(fd, line) && line.rfind(e.expect, 0) == 0;
        seen.push_back(line);
        if (!read) {
          ok = false;
          break;
        }
      }
      send_text(fd, e.reply);
    }
    SSL* ssl = SSL_new(ctx.get());
    SSL_set_fd(ssl, fd);
    if (ok && SSL_accept(ssl) == 1) {
      for (const auto& e : after) {
        char buf[512];
        const int n = SSL_read(ssl, buf, sizeof buf);
        if (n <= 0) break;
        seen.emplace_back(buf, static_cast<std::size_t>(n));
        SSL_write(ssl, e.reply.data(), static_cast<int>(e.reply.size()));
      }
      SSL_shutdown(ssl);
    }
    SSL_free(ssl);
    ::close(fd);
  }
}

// A scripted STARTTLS server on a loopback port and one probe() against it.
struct scripted_probe {
  certs::starttls_protocol protocol;
  std::vector<exchange> before;
  std::vector<exchange> after = {};
  int connections = 4;  // one per version; 1 when the opening fails for all of them
  bool handshake = true;
  std::string ehlo_name = {};  // "" = the probe's default

  struct result {
    certs::probe_report report;
    std::vector<std::string> seen;  // the probe's lines, as the server read them
    std::uint16_t port = 0;
  };

  result run() const {
    result r;
    const int listen_fd = listen_loopback(r.port);
    std::thread server(
        [&] { scripted_tls12_server(listen_fd, connections, before, after, r.seen, handshake); });
    certs::probe_options o;
    o.host = "127.0.0.1";
    o.port = r.port;
    o.starttls = protocol;
    if (!ehlo_name.empty()) o.ehlo_name = ehlo_name;
    o.ca_file = test::test_pki::get().file("ca.crt");
    o.step_timeout = std::chrono::seconds(5);
    r.report = certs::probe(o);
    server.join();
    ::close(listen_fd);
    return r;
  }
};

std::vector<std::string> accepted(const certs::probe_report& report) {
  std::vector<std::string> out;
  for (const auto& v : report.versions)
    if (v.accepted) out.push_back(v.name);
  return out;
}

}  // namespace

TEST_CASE("probe: STARTTLS server that speaks only TLS 1.2", "[probe][network]") {
  const auto [report, seen, port] = scripted_probe{
      certs::starttls_protocol::smtp,
      {{"", "220-lab ESMTP\r\n220 ready\r\n"},
       {"EHLO", "250-lab\r\n250 STARTTLS\r\n"},
       {"STARTTLS",
        "220 go ahead\r\n"}}}.run();

  REQUIRE(report.versions.size() == 4);
  CHECK(report.target == "127.0.0.1:" + std::to_string(port));
  CHECK(report.sni.empty());  // an IP literal is never sent as SNI
  CHECK(report.connect_error.empty());
  for (const auto& v : report.versions) {
    CAPTURE(v.name, v.reason);
    CHECK(v.tried);
    CHECK(v.accepted == (v.version == config::tls1_2));
    if (!v.accepted) CHECK_FALSE(v.reason.empty());
  }
  CHECK_FALSE(report.versions[2].cipher.empty());
  REQUIRE(report.chain_version == config::tls1_2);
  REQUIRE(report.chain.certs.size() == 2);
  CHECK(report.chain.trusted);
  CHECK(report.chain.name_checked);
  CHECK(report.chain.name_matches);  // the leaf has IP:127.0.0.1
}

TEST_CASE("probe: nothing listening is a connect error, later versions not tried",
          "[probe][network]") {
  std::uint16_t port = 0;
  const int fd = listen_loopback(port);
  ::close(fd);  // the port is now (almost certainly) closed
  certs::probe_options o;
  o.host = "127.0.0.1";
  o.port = port;
  const auto report = certs::probe(o);
  CHECK_FALSE(report.any_accepted());
  CHECK_THAT(report.connect_error, Catch::Contains("connect"));
  REQUIRE(report.versions.size() == 4);
  CHECK(report.versions[0].tried);
  CHECK_FALSE(report.versions[3].tried);
}

TEST_CASE("probe: unresolvable host", "[probe][network]") {
  certs::probe_options o;
  o.host = "no-such-host.invalid";
  o.port = 25;
  const auto report = certs::probe(o);
  CHECK_FALSE(report.any_accepted());
  CHECK_THAT(report.connect_error, Catch::Contains("resolve"));
  CHECK(report.sni == "no-such-host.invalid");
}

TEST_CASE("probe: the SMTP opening is the proxy's opener, EHLO names the proxy",
          "[probe][network]") {
  for (const std::string name : {"", "mx.proxy.example"}) {
    CAPTURE(name);
    scripted_probe script{certs::starttls_protocol::smtp,
                          {{"", "220 ready\r\n"},
                           {"EHLO ", "250-lab\r\n250 STARTTLS\r\n"},
                           {"STARTTLS", "220 go ahead\r\n"}}};
    script.ehlo_name = name;
    const auto r = script.run();
    CHECK(accepted(r.report) == std::vector<std::string>{"TLSv1.2"});
    REQUIRE(r.seen.size() == 8);
    // Without a name, the default of `[server] hostname`, as the proxy would send.
    CHECK(r.seen[0] == "EHLO " + (name.empty() ? std::string("localhost") : name) + "\r");
  }
}

TEST_CASE("probe: IMAP asks CAPABILITY again over TLS, as the proxy does", "[probe][network]") {
  const auto r =
      scripted_probe{certs::starttls_protocol::imap,
                     {{"", "* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] ready\r\n"},
                      {"A1 STARTTLS", "A1 OK Begin TLS negotiation now\r\n"}},
                     {{"", "* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\nA2 OK done\r\n"}}}
          .run();
  CHECK(r.report.connect_error.empty());
  CHECK(accepted(r.report) == std::vector<std::string>{"TLSv1.2"});
  CHECK(r.report.chain_version == config::tls1_2);
  CHECK(std::find(r.seen.begin(), r.seen.end(), "A2 CAPABILITY\r\n") != r.seen.end());
}

TEST_CASE("probe: a failure after the handshake is not an accepted version", "[probe][network]") {
  const auto r = scripted_probe{certs::starttls_protocol::imap,
                                {{"", "* OK [CAPABILITY IMAP4rev1 STARTTLS] ready\r\n"},
                                 {"A1 STARTTLS", "A1 OK go\r\n"}},
                                {{"", "A2 NO not now\r\n"}}}
                     .run();
  CHECK(r.report.connect_error.empty());  // TLS was reached: every version was tried
  CHECK_FALSE(r.report.any_accepted());
  REQUIRE(r.report.versions.size() == 4);
  CHECK_THAT(r.report.versions[2].reason,
             Catch::Contains("then the opening failed") && Catch::Contains("A2 NO not now"));
}

TEST_CASE("probe: POP3 asks CAPA, then STLS", "[probe][network]") {
  const auto r = scripted_probe{certs::starttls_protocol::pop3,
                                {{"", "+OK POP3 ready <1.2@lab>\r\n"},
                                 {"CAPA", "+OK\r\nUSER\r\nSTLS\r\n.\r\n"},
                                 {"STLS", "+OK Begin TLS\r\n"}}}
                     .run();
  CHECK(accepted(r.report) == std::vector<std::string>{"TLSv1.2"});
}

TEST_CASE("probe: the opening's failure is the connect error, in printable text",
          "[probe][network]") {
  SECTION("a refusing greeting with control characters") {
    const auto r =
        scripted_probe{certs::starttls_protocol::smtp, {{"", "554 \x1b[31mred\r\n"}}, {}, 1}.run();
    CHECK_FALSE(r.report.any_accepted());
    CHECK_THAT(r.report.connect_error, Catch::Contains("554"));
    CHECK(r.report.connect_error.find('\x1b') == std::string::npos);
    CHECK_FALSE(r.report.versions[1].tried);
  }
  SECTION("the server closes during the opening") {
    const auto r =
        scripted_probe{
            certs::starttls_protocol::smtp, {{"", "220 hi\r\n"}, {"EHLO", ""}}, {}, 1, false}
            .run();
    CHECK_THAT(r.report.connect_error, Catch::Contains("closed the connection during the smtp"));
  }
}
