#include "proxy/listener.hpp"

#include <algorithm>
#include <stdexcept>

#include "certs/client_cert_check.hpp"

namespace tlsbridge::proxy {

std::shared_ptr<listener_runtime> make_listener_runtime(
    std::shared_ptr<const config::config> root, const config::listener_config& settings,
    audit_log* audit) {
  auto rt = std::make_shared<listener_runtime>();
  rt->root = root;
  rt->settings = &settings;
  rt->audit = audit;
  if (settings.tls != config::front_tls::none) {
    const auto* profile = root->find_profile(settings.tls_profile);
    if (!profile) throw std::runtime_error("listener " + settings.name + ": unknown tls_profile");
    // HTTPS offers ALPN http/1.1 (README): the proxy speaks HTTP/1.1 only, never h2.
    rt->front_certs = certs::sni_store::build(
        *profile, root->certs,
        settings.protocol == config::protocol::https ? std::string("\x08http/1.1") : std::string());
    // A resumed session would skip the client-chain policy (and OpenSSL refuses to resume one
    // on a verify-peer context without a session id context): no tickets with client_certs.
    const unsigned tickets =
        settings.client_certs == config::client_cert_mode::none ? settings.session_tickets : 0;
    for (std::size_t i = 0; i < rt->front_certs->size(); ++i)
      certs::set_session_tickets(rt->front_certs->context(i), tickets);
    if (settings.client_certs != config::client_cert_mode::none) {
      for (std::size_t i = 0; i < rt->front_certs->size(); ++i)
        certs::enable_client_certificates(rt->front_certs->context(i), settings.client_certs,
                                          settings.client_ca);
      // Only client_ca, never the system store (SECURITY.md; the loader refuses an empty client_ca,
      // and this keeps a config built in code from falling back to the system store).
      if (settings.client_ca.empty())
        throw std::runtime_error("client_certs needs client_ca (never the system store)");
      rt->client_trust = certs::make_trust_store(settings.client_ca);
    }
  }
  if (settings.backend.tls != config::back_tls::none) {
    const auto* profile = root->find_profile(settings.backend.tls_profile);
    if (!profile)
      throw std::runtime_error("listener " + settings.name + ": unknown backend tls_profile");
    rt->back_ctx = certs::make_client_context(*profile);
    if (settings.backend.resume_sessions)
      rt->back_sessions = std::make_unique<backend_session_cache>();
    if (settings.backend.verify == config::verify_mode::ca)
      rt->trust_store = certs::make_trust_store(settings.backend.ca_file);
  }
  for (const auto& text : settings.trusted_proxies) {
    auto block = config::parse_cidr(text);
    if (!block)
      throw std::runtime_error("listener " + settings.name + ": bad trusted_proxies entry " + text);
    rt->trusted_proxies.push_back(*block);
  }
  for (const auto& text : settings.allow) {
    auto block = config::parse_cidr(text);
    if (!block) throw std::runtime_error("listener " + settings.name + ": bad allow entry " + text);
    rt->allow.push_back(*block);
  }
  for (const auto& text : settings.limits.deny) {
    auto block = config::parse_cidr(text);
    if (!block) throw std::runtime_error("listener " + settings.name + ": bad deny entry " + text);
    rt->deny.push_back(*block);
  }
  return rt;
}

std::array<std::uint8_t, 16> per_ip_key(const std::array<std::uint8_t, 16>& ip) {
  // ::ffff:0:0/96 (IPv4-mapped): the IPv4 address itself is the key.
  static constexpr std::array<std::uint8_t, 12> v4_mapped{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::equal(v4_mapped.begin(), v4_mapped.end(), ip.begin())) return ip;
  std::array<std::uint8_t, 16> key = ip;
  std::fill(key.begin() + 8, key.end(), std::uint8_t{0});  // the /64 prefix
  return key;
}

std::size_t listener_counters::acquire_ip(const std::array<std::uint8_t, 16>& ip) {
  std::lock_guard lock(mutex_);
  return ++per_ip_[per_ip_key(ip)];
}

void listener_counters::release_ip(const std::array<std::uint8_t, 16>& ip) {
  std::lock_guard lock(mutex_);
  auto it = per_ip_.find(per_ip_key(ip));
  if (it != per_ip_.end() && --it->second == 0) per_ip_.erase(it);
}

std::size_t listener_counters::count_rate(const std::array<std::uint8_t, 16>& ip,
                                          config::duration window) {
  std::lock_guard lock(mutex_);
  return rate_.count(per_ip_key(ip), window, connection_rate_table::clock::now());
}

}  // namespace tlsbridge::proxy
