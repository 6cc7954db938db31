// The session driver end to end on loopback sockets (no fake stream): an SMTP listener in front
// of a backend thread. A backend lost mid-session gives the client the machine's 421 and the
// record outcome backend_unavailable; a drain (SIGTERM's request_shutdown) at a command boundary
// gives 421 4.3.2, QUIT to the backend, outcome shutdown; STARTTLS is ordered: the earlier
// command's reply first, then 220, then the front handshake, and the plaintext pipelined after
// STARTTLS never reaches the backend.
#include "proxy/session.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/write.hpp>
#include <catch2/catch.hpp>
#include <openssl/ssl.h>
#include <chrono>
#include <csignal>
#include <memory>
#include <string>
#include <thread>

#include "../certs/test_pki.hpp"

namespace asio = boost::asio;
using namespace tlsbridge;
using tcp = asio::ip::tcp;

namespace {

const tcp::endpoint loopback{asio::ip::make_address("127.0.0.1"), 0};

// Reads from a blocking socket until `text` has arrived or the peer closed; all that was read.
std::string read_until_text(tcp::socket& s, const std::string& text) {
  std::string got;
  boost::system::error_code ec;
  asio::read_until(s, asio::dynamic_buffer(got), text, ec);
  return got;
}

// One SMTP listener (front and back in plain text) whose backend is `backend_port`, one
// connection from a client thread through a session on this thread's io_context.
struct smtp_through_proxy {
  std::shared_ptr<config::config> root = std::make_shared<config::config>();
  proxy::metrics metrics;
  proxy::status_board status;

  explicit smtp_through_proxy(std::uint16_t backend_port,
                              config::front_tls front = config::front_tls::none) {
    std::signal(SIGPIPE, SIG_IGN);
    root->server.hostname = "mx.test";
    config::tls_profile modern;
    modern.name = "modern";
    root->tls_profiles["modern"] = modern;
    if (front != config::front_tls::none)
      root->certs.push_back(test::test_pki::get().entry("server"));
    config::listener_config l;
    l.name = "smtp";
    l.protocol = config::protocol::smtp;
    l.tls = front;
    l.tls_profile = "modern";
    l.require_tls = false;
    l.backend.addresses = {{"127.0.0.1", backend_port}};
    l.timeouts.handshake = std::chrono::milliseconds(3000);
    root->listeners.push_back(l);
  }

  // Runs the session to its end; `client` talks to it on its own thread meanwhile and may ask
  // for a drain through `drain()`.
  template <typename Client>
  void run(Client client) {
    auto rt = proxy::make_listener_runtime(root, root->listeners[0], nullptr);
    rt->metrics = &metrics;
    rt->status = &status;
    asio::io_context io;
    tcp::acceptor front(io, loopback);
    std::shared_ptr<proxy::session> s;
    std::thread peer([&, port = front.local_endpoint().port()] {
      asio::io_context cio;
      tcp::socket c(cio);
      c.connect({loopback.address(), port});
      client(c, [&] { asio::post(io, [&] { s->request_shutdown(); }); });
    });
    tcp::socket accepted(io);
    tcp::endpoint peer_address;  // as the server's accept loop does: the address accept() gave
    front.accept(accepted, peer_address);
    s = std::make_shared<proxy::session>(rt, std::move(accepted), peer_address, "t1");
    asio::co_spawn(
        io, [s] { return s->run(); }, asio::detached);
    io.run();
    peer.join();
  }

  bool counted(const std::string& outcome) const {
    return metrics.render().find("tlsbridge_connections_total{listener=\"smtp\",outcome=\"" +
                                 outcome + "\"} 1") != std::string::npos;
  }
  bool rendered(const std::string& line) const {
    return metrics.render().find(line) != std::string::npos;
  }
};

// A backend on its own thread: accepts one connection, sends the greeting, then runs `then`.
template <typename Then>
std::thread smtp_backend(tcp::acceptor& a, Then then) {
  return std::thread([&a, then] {
    asio::io_context io;
    tcp::socket s(io);
    boost::system::error_code ec;
    a.accept(s, ec);
    if (ec) return;
    asio::write(s, asio::buffer(std::string("220 backend ESMTP\r\n")), ec);
    then(s);
  });
}

}  // namespace

TEST_CASE("session: the backend lost mid-session", "[session_driver]") {
  asio::io_context io;
  tcp::acceptor backend_acceptor(io, loopback);
  auto backend = smtp_backend(backend_acceptor, [](tcp::socket& s) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    s.close();
  });
  smtp_through_proxy proxy(backend_acceptor.local_endpoint().port());
  std::string seen;
  proxy.run([&](tcp::socket& c, auto) { seen = read_until_text(c, "lost\r\n"); });
  backend.join();
  CHECK(seen.rfind("220 ", 0) == 0);
  CHECK(seen.find("421 4.4.2 mx.test connection to backend lost\r\n") != std::string::npos);
  CHECK(proxy.counted("backend_unavailable"));
}

TEST_CASE("session: a drain at a command boundary", "[session_driver]") {
  asio::io_context io;
  tcp::acceptor backend_acceptor(io, loopback);
  std::string backend_got;
  auto backend = smtp_backend(backend_acceptor, [&backend_got](tcp::socket& s) {
    backend_got = read_until_text(s, "QUIT\r\n");
  });
  smtp_through_proxy proxy(backend_acceptor.local_endpoint().port());
  std::string seen;
  proxy.run([&](tcp::socket& c, auto drain) {
    seen = read_until_text(c, "\r\n");  // the greeting: the session is at a command boundary
    drain();
    seen += read_until_text(c, "shutting down\r\n");
  });
  backend.join();
  CHECK(seen.rfind("220 ", 0) == 0);
  CHECK(seen.find("421 4.3.2 mx.test shutting down\r\n") != std::string::npos);
  CHECK(backend_got == "QUIT\r\n");
  CHECK(proxy.counted("shutdown"));
}

namespace {

// An SMTP backend that answers every line until QUIT (EHLO with a two-line reply) and keeps all
// it was sent.
void answer_until_quit(tcp::socket& s, std::string& got) {
  for (int i = 0; i < 20; ++i) {
    std::string line = read_until_text(s, "\r\n");
    if (line.empty()) return;
    got += line;
    boost::system::error_code ec;
    if (line.rfind("EHLO", 0) == 0)
      asio::write(s, asio::buffer(std::string("250-backend\r\n250 PIPELINING\r\n")), ec);
    else if (line.rfind("QUIT", 0) == 0) {
      asio::write(s, asio::buffer(std::string("221 bye\r\n")), ec);
      return;
    } else
      asio::write(s, asio::buffer(std::string("250 ok\r\n")), ec);
  }
}

// Reads one CRLF line through OpenSSL, byte by byte (small replies only).
std::string ssl_read_line(SSL* ssl) {
  std::string line;
  char c;
  while (line.size() < 4096 && SSL_read(ssl, &c, 1) == 1) {
    line += c;
    if (line.ends_with("\r\n")) break;
  }
  return line;
}

}  // namespace

TEST_CASE("session: STARTTLS is ordered and pipelined plaintext never reaches the backend",
          "[session_driver]") {
  asio::io_context io;
  tcp::acceptor backend_acceptor(io, loopback);
  std::string backend_got;
  auto backend = smtp_backend(backend_acceptor,
                              [&backend_got](tcp::socket& s) { answer_until_quit(s, backend_got); });
  smtp_through_proxy proxy(backend_acceptor.local_endpoint().port(), config::front_tls::starttls);
  std::string plain, after_tls;
  bool handshake_ok = false;
  proxy.run([&](tcp::socket& c, auto) {
    plain = read_until_text(c, "\r\n");  // the greeting
    // NOOP is relayed, STARTTLS answered by the proxy, the MAIL an injection (CVE-2011-0411).
    boost::system::error_code ec;
    asio::write(c, asio::buffer(std::string("NOOP\r\nSTARTTLS\r\nMAIL FROM:<evil@x>\r\n")), ec);
    plain += read_until_text(c, "Ready to start TLS\r\n");
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    SSL* ssl = SSL_new(ctx);
    SSL_set_fd(ssl, c.native_handle());
    handshake_ok = SSL_connect(ssl) == 1;
    if (handshake_ok) {
      const std::string ehlo = "EHLO client.test\r\n";
      SSL_write(ssl, ehlo.data(), static_cast<int>(ehlo.size()));
      for (int i = 0; i < 4 && !after_tls.ends_with("250 PIPELINING\r\n"); ++i)
        after_tls += ssl_read_line(ssl);
      const std::string quit = "QUIT\r\n";
      SSL_write(ssl, quit.data(), static_cast<int>(quit.size()));
      after_tls += ssl_read_line(ssl);
      SSL_shutdown(ssl);
    }
    SSL_free(ssl);
    SSL_CTX_free(ctx);
  });
  backend.join();
  // The relayed NOOP's reply comes before the proxy's own 220, and nothing follows 220 in
  // plaintext: the handshake would fail on a stray byte.
  CHECK(plain.find("250 ok\r\n220 2.0.0 Ready to start TLS\r\n") != std::string::npos);
  CHECK(plain.ends_with("220 2.0.0 Ready to start TLS\r\n"));
  REQUIRE(handshake_ok);
  CHECK(after_tls.find("250 PIPELINING\r\n") != std::string::npos);
  CHECK(after_tls.find("221 bye\r\n") != std::string::npos);
  // The backend saw NOOP, then the EHLO and QUIT sent after the handshake, never the MAIL.
  CHECK(backend_got == "NOOP\r\nEHLO client.test\r\nQUIT\r\n");
  CHECK(proxy.rendered("tlsbridge_starttls_injections_total{listener=\"smtp\"} 1"));
}

TEST_CASE("session: admission refusals are counted and shown by their reason", "[session_driver]") {
  for (const char* reason : {"deny", "allow"}) {
    DYNAMIC_SECTION(reason) {
      smtp_through_proxy proxy(1);  // refused before any back leg
      auto& l = proxy.root->listeners[0];
      if (std::string(reason) == "deny")
        l.limits.deny = {"127.0.0.0/8"};
      else
        l.allow = {"192.0.2.0/24"};
      std::string seen;
      proxy.run([&](tcp::socket& c, auto) { seen = read_until_text(c, "\r\n"); });
      CHECK(proxy.rendered(std::string("tlsbridge_refusals_total{listener=\"smtp\",reason=\"") +
                           reason + "\"} 1"));
      CHECK_FALSE(proxy.rendered("tlsbridge_certificate_refusals_total{"));
      const auto last = proxy.status.last_refusals();
      REQUIRE(last.size() == 1);
      CHECK(last[0].reason == reason);
      CHECK(last[0].listener == "smtp");
      CHECK(last[0].client.rfind("127.0.0.1:", 0) == 0);
    }
  }
}
