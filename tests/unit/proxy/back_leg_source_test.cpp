// proxy/back_leg_source: the bind before a back leg's connect, on real sockets. The transparent
// case needs CAP_NET_ADMIN (CI runs as root); without it, it checks the EPERM message instead
// (`setpriv --bounding-set -net_admin,-net_raw unit_tests "[source]"`).
#include "proxy/back_leg_source.hpp"

#include <linux/capability.h>

#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <cerrno>

#include "config/value_parsers.hpp"
#include "proxy/privileges.hpp"

namespace asio = boost::asio;
using asio::ip::tcp;
using tlsbridge::proxy::bind_back_leg_source;

namespace {

std::array<std::uint8_t, 16> ip(const char* text) {
  return *tlsbridge::config::parse_ip(text);
}

const tcp::endpoint v4_backend(asio::ip::make_address("127.0.0.1"), 25);
const tcp::endpoint v6_backend(asio::ip::make_address("::1"), 25);

}  // namespace

TEST_CASE("back_leg_source: \"\" leaves the socket to the kernel", "[proxy][source]") {
  asio::io_context io;
  tcp::socket sock(io);
  CHECK(bind_back_leg_source(sock, v4_backend, "", ip("192.0.2.7")).empty());
  CHECK_FALSE(sock.is_open());
}

TEST_CASE("back_leg_source: an address of this host is bound, port chosen later",
          "[proxy][source]") {
  asio::io_context io;
  tcp::socket sock(io);
  REQUIRE(bind_back_leg_source(sock, v4_backend, "127.0.0.1", {}).empty());
  CHECK(sock.local_endpoint().address().to_string() == "127.0.0.1");
}

TEST_CASE("back_leg_source: the families must match", "[proxy][source]") {
  asio::io_context io;
  tcp::socket a(io), b(io);
  CHECK(bind_back_leg_source(a, v6_backend, "127.0.0.1", {}) ==
        "source 127.0.0.1 is IPv4, the backend ::1 IPv6");
  CHECK(bind_back_leg_source(b, v6_backend, "client", ip("192.0.2.7")) ==
        "source = client (192.0.2.7) is IPv4, the backend ::1 IPv6");
}

TEST_CASE("back_leg_source: client binds the client's own address, transparently",
          "[proxy][source]") {
  asio::io_context io;
  tcp::socket sock(io);
  const auto why = bind_back_leg_source(sock, v4_backend, "client", ip("192.0.2.7"));
  // The kernel accepts CAP_NET_RAW as well as the CAP_NET_ADMIN ip(7) names.
  if (!tlsbridge::proxy::has_effective_capability(CAP_NET_ADMIN) &&
      !tlsbridge::proxy::has_effective_capability(CAP_NET_RAW)) {
    CHECK_THAT(why, Catch::Contains("IP_TRANSPARENT") && Catch::Contains("CAP_NET_ADMIN"));
    return;
  }
  REQUIRE(why.empty());
  // 192.0.2.7 (RFC 5737) is no address of this host: only IP_TRANSPARENT lets it be bound.
  CHECK(sock.local_endpoint().address().to_string() == "192.0.2.7");
  tcp::socket plain(io);
  plain.open(tcp::v4());
  boost::system::error_code ec;
  plain.bind(tcp::endpoint(asio::ip::make_address("192.0.2.7"), 0), ec);
  CHECK(ec.value() == EADDRNOTAVAIL);
}
