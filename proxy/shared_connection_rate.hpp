// `[listener.limits] connection_rate` for one new connection: this process's count of the
// client's connections (listener_counters), merged with the other instances' through Redis when
// `[server] shared_state` is set (proxy/shared_state.hpp: the wait is bounded, Redis lost means
// counting alone). The key is "tlsbridge:rate:<listener>:<client>", the client as per_ip_key
// makes it (an IPv4 address, an IPv6 /64).
#pragma once

#include <array>
#include <boost/asio/awaitable.hpp>
#include <cstdint>

#include "proxy/listener.hpp"

namespace tlsbridge::proxy {

// True when the connection is within the listener's connection_rate (or it has none).
boost::asio::awaitable<bool> admit_connection_rate(const listener_runtime& rt,
                                                   std::array<std::uint8_t, 16> ip);

}  // namespace tlsbridge::proxy
