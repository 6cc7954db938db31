#include "proxy/auth_guard.hpp"

#include "proxy/listener.hpp"
#include "proxy/metrics.hpp"

namespace tlsbridge::proxy {

namespace {

std::string ip_counter_key(const auth_guard::ip_key& ip) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string k = "ip:";
  for (auto b : ip) {
    k += hex[b >> 4];
    k += hex[b & 15];
  }
  return k;
}

std::string user_counter_key(std::string_view user) {
  return "user:" + std::string(user);
}

// The (user, address) pair the backend accepted.
std::string success_key(const auth_guard::ip_key& ip, std::string_view user) {
  return "ok:" + std::string(user) + "/" + ip_counter_key(ip).substr(3);
}

}  // namespace

auth_guard::auth_guard(std::unique_ptr<auth_counters> counters) : counters_(std::move(counters)) {}

protocols::auth_block auth_guard::may_try(const ip_key& ip, std::string_view user,
                                          const config::auth_guard_config& cfg,
                                          clock::time_point now) {
  if (counters_->blocked(ip_counter_key(ip), now)) return protocols::auth_block::ip;
  if (!user.empty() && counters_->blocked(user_counter_key(user), now) &&
      !counters_->succeeded_within(success_key(ip, user), cfg.remember_success, now))
    return protocols::auth_block::user;
  return protocols::auth_block::none;
}

void auth_guard::failed(const ip_key& ip, std::string_view user,
                        const config::auth_guard_config& cfg, clock::time_point now) {
  counters_->count_failure(ip_counter_key(ip), {cfg.failures_per_ip, cfg.window, cfg.block}, now);
  if (!user.empty())
    counters_->count_failure(user_counter_key(user), {cfg.failures_per_user, cfg.window, cfg.block},
                             now);
}

void auth_guard::succeeded(const ip_key& ip, std::string_view user, clock::time_point now) {
  if (!user.empty()) counters_->remember_success(success_key(ip, user), now);
}

session_auth_gate::session_auth_gate(auth_guard& guard, const config::auth_guard_config& cfg,
                                     const std::array<std::uint8_t, 16>& client_ip,
                                     std::string listener, proxy::metrics* metrics,
                                     bool records_user)
    : guard_(guard),
      cfg_(cfg),
      ip_(per_ip_key(client_ip)),
      listener_(std::move(listener)),
      metrics_(metrics),
      records_user_(records_user) {}

protocols::auth_block session_auth_gate::may_try(std::string_view user) {
  const auto b =
      guard_.may_try(ip_, protocols::auth_user_key(user), cfg_, auth_guard::clock::now());
  if (b != protocols::auth_block::none && metrics_)
    metrics_->add("tlsbridge_auth_blocked_total",
                  {{"listener", listener_}, {"scope", protocols::to_string(b)}});
  return b;
}

void session_auth_gate::failed(std::string_view user) {
  guard_.failed(ip_, protocols::auth_user_key(user), cfg_, auth_guard::clock::now());
  if (metrics_) metrics_->add("tlsbridge_auth_failures_total", {{"listener", listener_}});
}

void session_auth_gate::succeeded(std::string_view user) {
  guard_.succeeded(ip_, protocols::auth_user_key(user), auth_guard::clock::now());
}

}  // namespace tlsbridge::proxy
