#include "proxy/back_leg_source.hpp"

#include <linux/capability.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "config/config_loader.hpp"
#include "proxy/privileges.hpp"

namespace tlsbridge::proxy {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

asio::ip::address unmapped(const std::array<std::uint8_t, 16>& bytes) {
  const auto v6 = asio::ip::make_address_v6(bytes);
  if (v6.is_v4_mapped()) return asio::ip::make_address_v4(asio::ip::v4_mapped, v6);
  return v6;
}

const char* family_name(const asio::ip::address& a) {
  return a.is_v4() ? "IPv4" : "IPv6";
}

bool set_flag(tcp::socket& sock, int level, int name) {
  const int on = 1;
  return ::setsockopt(sock.native_handle(), level, name, &on, sizeof on) == 0;
}

}  // namespace

std::string bind_back_leg_source(tcp::socket& sock, const tcp::endpoint& target,
                                 const std::string& source,
                                 const std::array<std::uint8_t, 16>& client_ip) {
  if (source.empty()) return {};
  const bool transparent = source == "client";
  asio::ip::address own;
  if (transparent) {
    own = unmapped(client_ip);
  } else {
    boost::system::error_code ec;
    own = asio::ip::make_address(source, ec);
    if (ec) return "source " + source + ": not an IP address";
  }
  const std::string what =
      transparent ? "source = client (" + own.to_string() + ")" : "source " + own.to_string();
  // A host name may resolve to both families: the other one is skipped, not an error of the leg.
  if (own.is_v4() != target.address().is_v4())
    return what + " is " + family_name(own) + ", the backend " + target.address().to_string() +
           " " + family_name(target.address());
  boost::system::error_code ec;
  sock.open(target.protocol(), ec);
  if (ec) return what + ": socket: " + ec.message();
  if (transparent) {
    const bool v4 = own.is_v4();
    if (!set_flag(sock, v4 ? SOL_IP : SOL_IPV6, v4 ? IP_TRANSPARENT : IPV6_TRANSPARENT)) {
      const int err = errno;
      return what + ": " + (v4 ? "IP_TRANSPARENT" : "IPV6_TRANSPARENT") + ": " +
             std::strerror(err) +
             (err == EPERM ? " (needs CAP_NET_ADMIN: run as root, or keep it; see "
                             "docs/configuration.md)"
                           : "");
    }
  }
  // Best effort: without it (kernels before 4.2) the port is chosen at bind, as usual.
  (void)set_flag(sock, SOL_IP, IP_BIND_ADDRESS_NO_PORT);
  sock.bind(tcp::endpoint(own, 0), ec);
  if (ec) return what + ": bind: " + ec.message();
  return {};
}

bool uses_transparent_source(const config::config& cfg) {
  for (const auto& l : cfg.listeners)
    if (l.backend.source_is_client()) return true;
  return false;
}

std::vector<std::string> check_back_leg_sources(const config::config& cfg) {
  std::vector<std::string> errors;
  const bool capable = has_effective_capability(CAP_NET_ADMIN);
  for (std::size_t i = 0; i < cfg.listeners.size(); ++i) {
    const auto& l = cfg.listeners[i];
    const std::string key = "listener[" + std::to_string(i) + "].backend.source";
    const auto& source = l.backend.source;
    if (source.empty()) continue;
    if (l.backend.source_is_client()) {
      if (!capable)
        errors.push_back(
            config::error_at_key(
                cfg, key,
                "source = \"client\" binds the back leg to the client's address (IP_TRANSPARENT), "
                "which needs CAP_NET_ADMIN, and this process does not have it: run as root "
                "(systemd: add CAP_NET_ADMIN to CapabilityBoundingSet=); after the privilege drop "
                "only a process started with source = \"client\" keeps it, so restart")
                .to_string());
      continue;
    }
    // An address this host does not have fails every connect: say so now, not per connection.
    boost::system::error_code ec;
    const auto own = asio::ip::make_address(source, ec);
    if (ec) continue;  // the loader reported it
    asio::io_context io;
    tcp::socket probe(io);
    probe.open(own.is_v4() ? tcp::v4() : tcp::v6(), ec);
    if (!ec) probe.bind(tcp::endpoint(own, 0), ec);
    if (ec)
      errors.push_back(config::error_at_key(cfg, key,
                                            "source \"" + source + "\" cannot be bound (" +
                                                ec.message() +
                                                "): the back leg needs an address of this host")
                           .to_string());
  }
  return errors;
}

}  // namespace tlsbridge::proxy
