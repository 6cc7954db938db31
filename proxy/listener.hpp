// What every session of one listener shares, built once from the config at start (and, later,
// at reload): the listener's settings, its front certificates (SNI store), the back-leg client
// context and trust store, the audit sink, and its live-connection counter.
#pragma once

#include <array>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "certs/sni_store.hpp"
#include "certs/tls_context.hpp"
#include "config/config.hpp"
#include "config/value_parsers.hpp"
#include "proxy/audit_log.hpp"
#include "proxy/auth_guard.hpp"
#include "proxy/backend_health.hpp"
#include "proxy/backend_session_cache.hpp"
#include "proxy/connection_rate.hpp"
#include "proxy/metrics.hpp"
#include "proxy/operational_warnings.hpp"
#include "proxy/shared_auth_counters.hpp"
#include "proxy/shared_state.hpp"
#include "proxy/status_board.hpp"

namespace tlsbridge::proxy {

// The key per-client limits count under (see below). An IPv6 host is given a
// whole /64 (RFC 4291 §2.5.1 interface identifiers; RFC 8981 temporary addresses rotate inside it),
// so counting each /128 would let one host open max_connections_per_ip from every address it
// owns. IPv4 — and IPv4-mapped IPv6, RFC 4291 §2.5.5.2, which is how an IPv4 client arrives on a
// dual-stack socket and how every address is stored here — counts per address.
std::array<std::uint8_t, 16> per_ip_key(const std::array<std::uint8_t, 16>& ip);

// Live counts of one listener, kept across reloads (a reloaded listener keeps counting the
// connections its previous generation still carries). Shared by the worker threads.
class listener_counters {
 public:
  listener_counters() : listener_counters(std::make_unique<shared_auth_counters>()) {}
  std::atomic<std::size_t> active{0};
  // Connections per client (after PROXY), keyed by per_ip_key. Returns the count including this
  // one.
  std::size_t acquire_ip(const std::array<std::uint8_t, 16>& ip);
  void release_ip(const std::array<std::uint8_t, 16>& ip);
  // [listener.limits] connection_rate: counts one new connection from this client in this
  // process; the count including it (proxy/shared_connection_rate.hpp decides).
  std::size_t count_rate(const std::array<std::uint8_t, 16>& ip, config::duration window);
  // [listener.auth_guard]'s counts (locks inside); shared through Redis once attached
  // (proxy/shared_auth_counters.hpp).
  shared_auth_counters& auth_sharing;
  auth_guard auth;

 private:
  explicit listener_counters(std::unique_ptr<shared_auth_counters> counters)
      : auth_sharing(*counters), auth(std::move(counters)) {}
  std::mutex mutex_;
  connection_rate_table rate_;  // under mutex_
  std::map<std::array<std::uint8_t, 16>, std::size_t> per_ip_;
};

struct listener_runtime {
  std::shared_ptr<const config::config> root;
  const config::listener_config* settings = nullptr;  // points into *root
  std::shared_ptr<const certs::sni_store> front_certs;  // null when the front leg is plaintext
  certs::ssl_ctx_ptr back_ctx;                           // null when the back leg is plaintext
  // Back-leg TLS sessions for resumption; null without a TLS back leg or with resume_sessions off.
  std::unique_ptr<backend_session_cache> back_sessions;
  certs::x509_store_ptr trust_store;                     // verify = "ca"
  certs::x509_store_ptr client_trust;  // client_certs != none: client_ca only
  std::vector<config::cidr> allow;
  std::vector<config::cidr> deny;  // [listener.limits] deny
  std::vector<config::cidr> trusted_proxies;
  audit_log* audit = nullptr;
  proxy::metrics* metrics = nullptr;  // null in check-config
  status_board* status = nullptr;     // the status page's figures; null in check-config
  operational_warnings* warnings = nullptr;  // null in check-config
  std::shared_ptr<listener_counters> counters = std::make_shared<listener_counters>();
  std::atomic<std::size_t>* process_active = nullptr;  // all listeners (null in check-config)
  // Up/down and active sessions per backend address; null in check-config (configured order).
  std::shared_ptr<backend_health> health;
  // [server] shared_state: counters shared with other instances; null = this process alone.
  std::shared_ptr<shared_state> shared;

  bool front_tls_possible() const { return settings->tls != config::front_tls::none; }
};

// Builds the runtime for one listener; throws std::runtime_error with a precise message.
std::shared_ptr<listener_runtime> make_listener_runtime(
    std::shared_ptr<const config::config> root, const config::listener_config& settings,
    audit_log* audit);

}  // namespace tlsbridge::proxy
