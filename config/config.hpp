// The typed, validated configuration of tlsbridge (every key annotated in conf/tlsbridge.toml). The
// loader (config_loader.hpp) turns a TOML file into one immutable `config`; the rest of the program
// shares it as `std::shared_ptr<const config>` and never sees TOML. Defaults here are the
// documented ones.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace tlsbridge::config {

using duration = std::chrono::milliseconds;
using namespace std::chrono_literals;

enum class protocol { smtp, imap, pop3, https, tls };
enum class front_tls { starttls, implicit, none };
enum class back_tls { none, starttls, implicit };
enum class verify_mode { none, ca, pin };
enum class policy_action { refuse, log, ignore };
enum class balance_mode { first, round_robin, least_conn };
enum class client_cert_mode { none, optional, required };
enum class bare_lf_mode { reject, normalize, pass };

// OpenSSL protocol version numbers (TLS1_VERSION = 0x0301 ... TLS1_3_VERSION = 0x0304), kept as
// plain ints so this header does not pull OpenSSL in.
inline constexpr int tls1_0 = 0x0301;
inline constexpr int tls1_1 = 0x0302;
inline constexpr int tls1_2 = 0x0303;
inline constexpr int tls1_3 = 0x0304;

struct tls_profile {
  std::string name;
  int min_version = tls1_2;
  int max_version = tls1_3;
  std::string ciphers;       // TLS <= 1.2 cipher list, OpenSSL syntax ("" = OpenSSL default)
  std::string ciphersuites;  // TLS 1.3 suites ("" = OpenSSL default)
  std::string groups;        // "" = OpenSSL default
};

struct cert_entry {
  std::filesystem::path cert;  // leaf + intermediates, PEM; absolute after loading
  std::filesystem::path key;
  std::vector<std::string> names;  // empty = the certificate's SAN DNS names
  // `acme = [names]`: obtained by the proxy itself (proxy/acme_service); cert and key are then the
  // files in [acme] state_dir (acme_cert_path) and `names` are these names, lower-case.
  std::vector<std::string> acme;
  bool is_acme() const { return !acme.empty(); }
};

// [acme]: the CA the `acme` entries of [[certs]] are obtained from (RFC 8555, tls-alpn-01).
struct acme_config {
  std::string directory;          // the directory URL (https)
  std::string email;              // the account's contact; "" = none
  std::filesystem::path ca_file;  // trust for the directory's HTTPS; empty = the system store
  std::filesystem::path state_dir = "/var/lib/tlsbridge/acme";
  duration renew_before = std::chrono::hours(24 * 30);
  std::string challenge = "tls-alpn-01";  // the only one
};

// Where the certificate and key of an `acme` entry live: <state_dir>/<first name>.crt|.key.
std::filesystem::path acme_cert_path(const acme_config& acme, const std::string& first_name);
std::filesystem::path acme_key_path(const acme_config& acme, const std::string& first_name);

struct policy_actions {
  std::optional<policy_action> on_weak_signature;
  std::optional<policy_action> on_weak_key;
  std::optional<policy_action> on_expired;
  std::optional<policy_action> on_untrusted;
  std::optional<policy_action> on_name_mismatch;
};

struct policy_rule {
  std::optional<std::string> listener;
  std::optional<std::string> peer;  // client CIDR or backend host name glob
  policy_actions actions;
};

struct policy_config {
  std::vector<std::string> weak_signatures{"md2", "md4", "md5", "sha1"};
  int min_rsa_bits = 2048;
  bool check_anchor_signature = false;
  bool allow_expired_own_cert = false;
  policy_action on_weak_signature = policy_action::refuse;
  policy_action on_weak_key = policy_action::refuse;
  policy_action on_expired = policy_action::refuse;
  policy_action on_untrusted = policy_action::log;
  policy_action on_name_mismatch = policy_action::log;
  std::vector<policy_rule> rules;
};

// "host:port", "[v6]:port". host is kept literal (an IP or a name resolved at connect time).
struct endpoint {
  std::string host;
  std::uint16_t port = 0;
  std::string to_string() const;
};

struct timeouts_config {
  duration handshake = 15s;
  duration idle = 5min;
  duration connect = 10s;
  // HTTPS: a request head must be complete this long after its first byte, however it trickles
  // (SECURITY.md, "The shield"; 408 beyond). Other protocols ignore it.
  duration request_head = 30s;
};

struct backend_config {
  std::vector<endpoint> addresses;  // tried in order; next on connect failure
  back_tls tls = back_tls::none;
  std::string tls_profile = "legacy";
  verify_mode verify = verify_mode::none;
  std::filesystem::path ca_file;        // absolute after loading, empty = none
  std::vector<std::string> pin_sha256;  // lower-case hex, 64 chars each
  std::string server_name;
  bool require_tls = true;
  bool resume_sessions = true;  // offer the last TLS session to the backend (tlsbridge addition)
  balance_mode balance = balance_mode::first;  // over the addresses that are up
  // Active health checks (proxy/backend_health_checker.hpp); interval 0 = off.
  struct health_check_config {
    duration interval{0};
    duration timeout = std::chrono::seconds(3);
    unsigned fall = 3;  // consecutive failures before an address is down
    unsigned rise = 2;  // consecutive successes before it is up again
  } health_check;
  std::string health_path;  // https: GET this, any answer but 5xx is healthy; "" = TLS only
  // The back leg's own address (proxy/back_leg_source.hpp): "" = the kernel's choice, an IP
  // address of this host, or "client" (transparent: the client's own address, IP_TRANSPARENT).
  std::string source;
  bool source_is_client() const { return source == "client"; }
};

struct http_config {
  std::vector<std::string> allow_paths{"/Microsoft-Server-ActiveSync", "/autodiscover", "/EWS",
                                       "/owa", "/ecp", "/mapi", "/rpc", "/OAB"};
  duration request_timeout = 65min;
  bool forwarded_headers = true;
  // Strict-Transport-Security added to backend responses that carry none (RFC 6797); "" = off.
  std::string hsts = "max-age=31536000";
};

// [listener.limits]: refusals before the back leg opens (outcome "limit").
struct limits_config {
  std::vector<std::string> deny;  // CIDRs refused before `allow` is consulted
  // connection_rate = "N/window": new connections per client (IPv6 per /64); count 0 = off.
  std::size_t rate_count = 0;
  duration rate_window{};
};

// [listener.auth_guard]: counts the backend's authentication verdicts per client address and per
// user name (proxy/auth_guard.hpp); over a threshold the proxy answers the attempt itself.
struct auth_guard_config {
  bool enabled = true;
  unsigned failures_per_ip = 10;   // failures in `window`, then blocked for `block`
  unsigned failures_per_user = 5;  // across all addresses; keep below the AD lockout threshold
  duration window = 10min;
  duration block = 15min;
  duration tarpit = 1s;  // added before every failed-authentication reply; 0 = none
  // A (user, address) pair the backend accepted stays exempt from that user's block this long.
  duration remember_success = 24h;
};

// [listener.smtp]
struct smtp_config {
  // Replaces the text of the backend's 220 greeting and the host name in EHLO's first line;
  // "" = the backend's own words.
  std::string greeting;
};

struct listener_config {
  std::string name;
  config::protocol protocol = protocol::smtp;
  endpoint listen;
  front_tls tls = front_tls::starttls;
  std::string tls_profile = "modern";
  bool require_tls = true;
  bare_lf_mode smtp_bare_lf = bare_lf_mode::reject;
  client_cert_mode client_certs = client_cert_mode::none;
  std::filesystem::path client_ca;
  std::vector<std::string> allow{"0.0.0.0/0", "::/0"};
  bool proxy_protocol = false;
  std::vector<std::string> trusted_proxies;
  std::size_t max_connections = 10000;
  std::size_t max_connections_per_ip = 100;
  // TLS session tickets sent per full front handshake (tlsbridge addition); 0 = no resumption.
  // Listeners with client_certs send none (a resumed session would skip the client-chain policy).
  unsigned session_tickets = 1;
  timeouts_config timeouts;
  backend_config backend;
  http_config http;
  limits_config limits;
  auth_guard_config auth_guard;
  smtp_config smtp;
};

struct server_config {
  unsigned threads = 0;  // 0 = one per core
  std::string user;
  duration shutdown_grace = 30s;
  std::size_t max_connections = 100000;  // all listeners together (each also has its own cap)
  std::string hostname = "localhost";
  // Reload by itself when a certificate, key or CA file it reads changes (proxy/cert_watch.hpp).
  bool watch_certs = true;
  std::filesystem::path pid_file;  // empty = none; locked while running (proxy/pid_file.hpp)
  // "redis://host:port" (config/redis_url.hpp): counters shared by several instances
  // (proxy/shared_state.hpp); "" = each process counts alone.
  std::string shared_state;
};

struct log_config {
  std::string level = "info";  // trace|debug|info|warn|error
  std::filesystem::path file;  // empty = stderr
};

struct audit_config {
  std::string path = "audit.jsonl";  // "-" = stdout, "syslog" = syslog(3); else absolute file path
  bool envelope = true;
};

struct admin_config {
  std::string listen = "127.0.0.1:9900";  // "" = off
};

// Where a key was written in the file (1-based; 0 = not written).
struct source_position {
  int line = 0;
  int column = 0;
};

struct config {
  std::filesystem::path source;  // the file it was loaded from (absolute)
  // Where each dotted key ("audit.path", "tls.profiles.NAME.ciphers") was written, so that checks
  // made after loading (OpenSSL, the file system: proxy/config_validation.cpp) name the line too.
  std::map<std::string, source_position> positions;
  server_config server;
  log_config log;
  audit_config audit;
  admin_config admin;
  std::map<std::string, tls_profile> tls_profiles;  // always holds "modern" and "legacy"
  std::vector<cert_entry> certs;
  std::optional<acme_config> acme;  // present when the file has an [acme] table
  policy_config policy;
  std::vector<listener_config> listeners;

  const tls_profile* find_profile(const std::string& name) const;
  // Every certificate, key and CA file this config reads ([[certs]], client_ca, ca_file), each
  // once, in config order: what a reload re-reads and what the certificate watch follows.
  std::vector<std::filesystem::path> tls_files() const;
};

}  // namespace tlsbridge::config
