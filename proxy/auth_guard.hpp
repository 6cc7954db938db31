// `[listener.auth_guard]`: the brute-force defence that spares Active Directory. The machines
// report the BACKEND's verdicts (protocols/common/auth_gate.hpp); the guard counts the failures
// per client address (proxy/listener.hpp per_ip_key: IPv6 per /64) and per user name
// (auth_user_key: the sAMAccountName Active Directory locks) in `window`, and past
// `failures_per_ip` or `failures_per_user` blocks the address or the name for `block`: the proxy
// then answers the attempt itself and the credentials never reach the backend. A user blocked
// by a spray may still log in from an address the backend accepted that user from within
// `remember_success`. One guard per listener, kept across reloads and shared by the worker
// threads; the counting is behind proxy/auth_counters.hpp's seam.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "protocols/common/auth_gate.hpp"
#include "proxy/auth_counters.hpp"

namespace tlsbridge::proxy {

class metrics;

class auth_guard {
 public:
  using clock = std::chrono::steady_clock;
  using ip_key = std::array<std::uint8_t, 16>;  // already per_ip_key'd

  explicit auth_guard(
      std::unique_ptr<auth_counters> counters = std::make_unique<local_auth_counters>());

  // `user` is an auth_user_key ("" = not known).
  protocols::auth_block may_try(const ip_key& ip, std::string_view user,
                                const config::auth_guard_config& cfg, clock::time_point now);
  void failed(const ip_key& ip, std::string_view user, const config::auth_guard_config& cfg,
              clock::time_point now);
  void succeeded(const ip_key& ip, std::string_view user, clock::time_point now);

  auth_counters& counters() { return *counters_; }

 private:
  std::unique_ptr<auth_counters> counters_;
};

// One connection's gate: the listener's guard bound to the client's address, with the metrics
// tlsbridge_auth_failures_total{listener} and tlsbridge_auth_blocked_total{listener,scope}.
class session_auth_gate final : public protocols::auth_gate {
 public:
  session_auth_gate(auth_guard& guard, const config::auth_guard_config& cfg,
                    const std::array<std::uint8_t, 16>& client_ip, std::string listener,
                    proxy::metrics* metrics, bool records_user);

  protocols::auth_block may_try(std::string_view user) override;
  void failed(std::string_view user) override;
  void succeeded(std::string_view user) override;
  std::chrono::milliseconds tarpit() const override { return cfg_.tarpit; }
  bool records_user() const override { return records_user_; }

 private:
  auth_guard& guard_;
  const config::auth_guard_config& cfg_;
  auth_guard::ip_key ip_;
  std::string listener_;
  proxy::metrics* metrics_;
  bool records_user_;
};

}  // namespace tlsbridge::proxy
