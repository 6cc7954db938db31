// probe() against an in-process server on 127.0.0.1 (a thread with blocking sockets): an SMTP
// STARTTLS server that speaks only TLS 1.2, and a port where nothing listens. The real-peer
// cases (Postfix at TLS 1.0, the MD5 chain) are in tests/integration/test_probe.py.
#include "certs/probe.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <string>
#include <thread>

#include "../certs/test_pki.hpp"
#include "certs/tls_context.hpp"

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

// Serves `connections` SMTP sessions: greeting, EHLO, STARTTLS, then a TLS 1.2-only handshake.
void smtp_tls12_server(int listen_fd, int connections) {
  config::tls_profile profile = test::modern_profile();
  profile.min_version = profile.max_version = config::tls1_2;
  auto ctx = certs::make_server_context(profile, test::test_pki::get().entry("server"));
  for (int i = 0; i < connections; ++i) {
    const int fd = ::accept(listen_fd, nullptr, nullptr);
    if (fd < 0) return;
    std::string line;
    send_text(fd, "220-lab ESMTP\r\n220 ready\r\n");
    if (read_line(fd, line)) {
      send_text(fd, "250-lab\r\n250 STARTTLS\r\n");
      if (read_line(fd, line) && line.rfind("STARTTLS", 0) == 0) {
        send_text(fd, "220 go ahead\r\n");
        SSL* ssl = SSL_new(ctx.get());
        SSL_set_fd(ssl, fd);
        if (SSL_accept(ssl) == 1) SSL_shutdown(ssl);
        SSL_free(ssl);
      }
    }
    ::close(fd);
  }
}

}  // namespace

TEST_CASE("probe: STARTTLS server that speaks only TLS 1.2", "[probe][network]") {
  std::uint16_t port = 0;
  const int listen_fd = listen_loopback(port);
  std::thread server(smtp_tls12_server, listen_fd, 4);

  certs::probe_options o;
  o.host = "127.0.0.1";
  o.port = port;
  o.starttls = certs::starttls_protocol::smtp;
  o.ca_file = test::test_pki::get().file("ca.crt");
  o.step_timeout = std::chrono::seconds(5);
  const auto report = certs::probe(o);
  server.join();
  ::close(listen_fd);

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
