// The address a back leg connects from ([listener.backend] source). "" leaves it to the kernel
// (the route's preferred source). An address of this host is bound (port 0) before the connect,
// so the backend — Exchange's receive connectors pick by the remote address — sees that address.
// "client" is transparent, as HAProxy's `usesrc clientip` and nginx's `proxy_bind $remote_addr
// transparent`: the socket gets IP_TRANSPARENT (IPV6_TRANSPARENT for IPv6; ip(7), ipv6(7)), which
// lets it bind an address that is not this host's, and binds the client's own address (the
// address after a PROXY header). That needs CAP_NET_ADMIN (the kernel also takes CAP_NET_RAW; the
// proxy asks for and keeps the one ip(7) names), and routing that brings the backend's
// replies to the client's address back to this host (docs/configuration.md, "source").
//
// Binding with port 0 and IP_BIND_ADDRESS_NO_PORT (ip(7)) lets the kernel choose the port at
// connect, per destination, so one source address is not limited to one ephemeral port range
// shared by every backend.
#pragma once

#include <array>
#include <boost/asio/ip/tcp.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace tlsbridge::proxy {

// Opens `sock` for `target`'s family and binds it as `source` says ("", an IP address, or
// "client" with `client_ip` — v4 as v4-mapped — the client's address). "" when the socket is ready
// for async_connect (still closed for source ""); otherwise why not, for the back leg's failure.
std::string bind_back_leg_source(boost::asio::ip::tcp::socket& sock,
                                 const boost::asio::ip::tcp::endpoint& target,
                                 const std::string& source,
                                 const std::array<std::uint8_t, 16>& client_ip);

// Whether some listener's back leg is transparent (source = "client"): the privilege drop keeps
// CAP_NET_ADMIN then.
bool uses_transparent_source(const config::config& cfg);

// What start, reload and check-config refuse: a source address this host does not have (the bind
// fails), and source = "client" in a process without CAP_NET_ADMIN.
std::vector<std::string> check_back_leg_sources(const config::config& cfg);

}  // namespace tlsbridge::proxy
