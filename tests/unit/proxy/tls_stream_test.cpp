// proxy::tls_stream's drained(): after a read the socket could not fill, with no TLS record left
// in OpenSSL, the relay waits at once instead of paying a recv that returns EAGAIN. Real loopback
// sockets; the TLS peer is a thread with a blocking socket and the test PKI's server context.
#include "proxy/tls_stream.hpp"

#include <openssl/ssl.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <string>
#include <thread>

#include "../certs/test_pki.hpp"
#include "certs/tls_context.hpp"

namespace asio = boost::asio;
using namespace tlsbridge;
using proxy::tls_stream;

namespace {

// Reads once the socket has had time to receive what the peer sent (bounded: 2 s).
std::size_t read_when_ready(tls_stream& s, char* data, std::size_t size) {
  boost::system::error_code ec;
  for (int i = 0; i < 200; ++i) {
    std::size_t n = s.read_some(data, size, ec);
    if (n > 0) return n;
    if (ec != asio::error::would_block) return 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return 0;
}

}  // namespace

TEST_CASE("tls_stream: a plain read shorter than its buffer leaves the stream drained") {
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
  asio::ip::tcp::socket peer(io);
  peer.connect(acceptor.local_endpoint());
  tls_stream s(acceptor.accept());
  char buf[100];

  asio::write(peer, asio::buffer(std::string(10, 'a')));
  REQUIRE(read_when_ready(s, buf, sizeof buf) == 10);
  CHECK(s.drained());  // 10 of 100: the socket had nothing more

  asio::write(peer, asio::buffer(std::string(150, 'b')));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  REQUIRE(read_when_ready(s, buf, sizeof buf) == 100);
  CHECK_FALSE(s.drained());  // the buffer was filled: more may wait, read again
  REQUIRE(read_when_ready(s, buf, sizeof buf) == 50);
  CHECK(s.drained());
}

TEST_CASE("tls_stream: a TLS read is drained only when OpenSSL holds no further record") {
  std::signal(SIGPIPE, SIG_IGN);
  const auto& pki = test::test_pki::get();
  auto server_ctx = certs::make_server_context(test::modern_profile(), pki.entry("server"));
  auto client_ctx = certs::make_client_context(test::modern_profile());
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
  // The peer: handshake, one record of 10 bytes, then (when told) one of 150, then waits.
  std::atomic<int> step{0};
  std::thread peer([&] {
    asio::io_context pio;
    asio::ip::tcp::socket sock(pio);
    acceptor.accept(sock);
    SSL* ssl = SSL_new(server_ctx.get());
    SSL_set_fd(ssl, sock.native_handle());
    if (SSL_accept(ssl) == 1) {
      SSL_write(ssl, std::string(10, 'a').data(), 10);
      for (int i = 0; i < 200 && step < 1; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      SSL_write(ssl, std::string(150, 'b').data(), 150);
      char byte;
      SSL_read(ssl, &byte, 1);  // until the client goes
    }
    SSL_free(ssl);
  });

  asio::ip::tcp::socket sock(io);
  sock.connect(acceptor.local_endpoint());
  tls_stream s(std::move(sock));
  bool shaken = false;
  // A temporary name, awaited after this statement: handshake_client keeps its own copy.
  asio::co_spawn(io, s.handshake_client(client_ctx.get(), "server.test"),
                 [&](std::exception_ptr, boost::system::error_code ec) { shaken = !ec; });
  io.run();
  REQUIRE(shaken);

  char buf[100];
  REQUIRE(read_when_ready(s, buf, sizeof buf) == 10);
  CHECK(s.drained());  // one record, the recv came back short, nothing buffered

  step = 1;
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  REQUIRE(read_when_ready(s, buf, sizeof buf) == 100);
  CHECK_FALSE(s.drained());  // 50 bytes of the record are still in OpenSSL
  REQUIRE(read_when_ready(s, buf, sizeof buf) == 50);
  CHECK(s.drained());

  s.close();
  peer.join();
}
