// Active health checks of the backend addresses of each listener with [listener.backend]
// health_check: one timer loop per address on the server's main io_context. Every `interval`
// the loop connects and speaks the protocol far enough to know the backend serves — implicit TLS
// first when the back leg is implicit; then the greeting: SMTP `220` (RFC 5321 §4.2), IMAP
// `* OK` (RFC 3501 §7.1.1), POP3 `+OK` (RFC 1939 §4); HTTPS: the TLS handshake, plus
// `GET health_path` answered with anything but 5xx (RFC 9110 §15.6) when it is set — the whole
// check bounded by `timeout`. Results go to the listener's backend_health.
#pragma once

#include <boost/asio/io_context.hpp>
#include <map>
#include <memory>
#include <string>

#include "proxy/listener.hpp"

namespace tlsbridge::proxy {

// Starts the loops of every runtime with health checks on; they end once the runtime's health
// is retired (a reload replaced the listener, or the server stops).
void start_health_checks(boost::asio::io_context& io,
                         const std::map<std::string, std::shared_ptr<listener_runtime>>& runtimes);
// Retires `runtimes` in favour of `next` (a reload's generation): the addresses and listeners
// `next` no longer has lose their tlsbridge_backend_up gauge.
void retire_health_checks(const std::map<std::string, std::shared_ptr<listener_runtime>>& runtimes,
                          const std::map<std::string, std::shared_ptr<listener_runtime>>& next);

}  // namespace tlsbridge::proxy
