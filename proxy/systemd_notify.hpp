// sd_notify(3) without libsystemd: one datagram to $NOTIFY_SOCKET. Lets the unit be Type=notify,
// so systemd (and `systemctl start`) knows the proxy is ready only once every port is bound, and
// sees reloads and the drain. A no-op when not started by systemd.
#pragma once

#include <string_view>

namespace tlsbridge::proxy {

void systemd_notify(std::string_view state);  // e.g. "READY=1", "RELOADING=1", "STOPPING=1"

}  // namespace tlsbridge::proxy
