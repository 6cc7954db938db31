#include "proxy/shared_connection_rate.hpp"

namespace tlsbridge::proxy {

boost::asio::awaitable<bool> admit_connection_rate(const listener_runtime& rt,
                                                   std::array<std::uint8_t, 16> ip) {
  const auto& limits = rt.settings->limits;
  if (limits.rate_count == 0) co_return true;
  const std::uint64_t local = rt.counters->count_rate(ip, limits.rate_window);
  // Over the limit here alone: refused without asking (a flood costs Redis nothing).
  if (local > limits.rate_count || !rt.shared) co_return local <= limits.rate_count;
  const std::string subject = client_subject(per_ip_key(ip));
  const auto total =
      co_await rt.shared->count({"rate", rt.settings->name, subject}, limits.rate_window, local);
  co_return total <= limits.rate_count;
}

}  // namespace tlsbridge::proxy
