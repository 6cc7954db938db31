// TOML -> typed config (every key annotated in conf/tlsbridge.toml). Two passes: the section
// readers below turn each table into its struct, reporting unknown keys, wrong types and bad values
// where they are written; validate() then checks what spans sections (names, ports, profile
// references, certificates present). Every error is collected and thrown once, so one start-up
// attempt shows every mistake.
#include "config/config_loader.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

#include "common/ascii_case.hpp"
#include "config/peer_pattern.hpp"
#include "config/redis_url.hpp"
#include "config/toml_reader.hpp"
#include "config/value_parsers.hpp"

namespace tlsbridge::config {
namespace fs = std::filesystem;
using detail::error_sink;
using detail::in_quotes;
using detail::table_reader;

std::string config_error::to_string() const {
  std::string out = file;
  if (line > 0) out += ":" + std::to_string(line) + ":" + std::to_string(column);
  if (!key.empty()) out += (out.empty() ? "" : ": ") + key;
  out += (out.empty() ? "" : ": ") + message;
  return out;
}

namespace {
std::string join_lines(const std::vector<config_error>& errors) {
  std::string out;
  for (const config_error& e : errors) out += (out.empty() ? "" : "\n") + e.to_string();
  return out;
}
}  // namespace

config_load_error::config_load_error(std::vector<config_error> errors)
    : std::runtime_error(join_lines(errors)), errors_(std::move(errors)) {}

config_error error_at_key(const config& cfg, const std::string& key, std::string message) {
  config_error e{cfg.source.string(), 0, 0, key, std::move(message)};
  for (std::string at = key;;) {
    if (const auto it = cfg.positions.find(at); it != cfg.positions.end()) {
      e.line = it->second.line;
      e.column = it->second.column;
      return e;
    }
    const auto cut = at.find_last_of(".[");
    if (cut == std::string::npos || cut == 0) return e;
    at.resize(cut);
  }
}

const tls_profile* config::find_profile(const std::string& name) const {
  const auto it = tls_profiles.find(name);
  return it == tls_profiles.end() ? nullptr : &it->second;
}

std::filesystem::path acme_cert_path(const acme_config& acme, const std::string& first_name) {
  return acme.state_dir / (first_name + ".crt");
}
std::filesystem::path acme_key_path(const acme_config& acme, const std::string& first_name) {
  return acme.state_dir / (first_name + ".key");
}

std::vector<std::filesystem::path> config::tls_files() const {
  std::vector<std::filesystem::path> out;
  auto add = [&out](const std::filesystem::path& p) {
    if (!p.empty() && std::find(out.begin(), out.end(), p) == out.end()) out.push_back(p);
  };
  for (const auto& c : certs) {
    add(c.cert);
    add(c.key);
  }
  for (const auto& l : listeners) {
    add(l.client_ca);
    add(l.backend.ca_file);
  }
  return out;
}

namespace {

template <class E>
using names = std::initializer_list<std::pair<std::string_view, E>>;

const names<protocol> protocol_names{{"smtp", protocol::smtp},
                                     {"imap", protocol::imap},
                                     {"pop3", protocol::pop3},
                                     {"https", protocol::https},
                                     {"tls", protocol::tls}};
const names<front_tls> front_tls_names{{"starttls", front_tls::starttls},
                                       {"implicit", front_tls::implicit},
                                       {"none", front_tls::none}};
const names<back_tls> back_tls_names{
    {"none", back_tls::none}, {"starttls", back_tls::starttls}, {"implicit", back_tls::implicit}};
const names<verify_mode> verify_names{
    {"none", verify_mode::none}, {"ca", verify_mode::ca}, {"pin", verify_mode::pin}};
const names<balance_mode> balance_names{{"first", balance_mode::first},
                                        {"round_robin", balance_mode::round_robin},
                                        {"least_conn", balance_mode::least_conn}};
const names<policy_action> action_names{{"refuse", policy_action::refuse},
                                        {"log", policy_action::log},
                                        {"ignore", policy_action::ignore}};
const names<client_cert_mode> client_cert_names{{"none", client_cert_mode::none},
                                                {"optional", client_cert_mode::optional},
                                                {"required", client_cert_mode::required}};
const names<bare_lf_mode> bare_lf_names{{"reject", bare_lf_mode::reject},
                                        {"normalize", bare_lf_mode::normalize},
                                        {"pass", bare_lf_mode::pass}};
const names<std::string_view> log_level_names{
    {"trace", "trace"}, {"debug", "debug"}, {"info", "info"}, {"warn", "warn"}, {"error", "error"}};
const names<std::string_view> tls_version_names{
    {"TLS1.0", "TLS1.0"}, {"TLS1.1", "TLS1.1"}, {"TLS1.2", "TLS1.2"}, {"TLS1.3", "TLS1.3"}};
const names<std::string_view> signature_names{
    {"md2", "md2"}, {"md4", "md4"}, {"md5", "md5"}, {"sha1", "sha1"}, {"sha224", "sha224"}};

std::map<std::string, tls_profile> builtin_profiles() {
  std::map<std::string, tls_profile> out;
  out["modern"] = {"modern",
                   tls1_2,
                   tls1_3,
                   "ECDHE+AESGCM:ECDHE+CHACHA20",
                   "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256",
                   "X25519:P-256:P-384"};
  // What a 2008-era host speaks; SECLEVEL=0 so OpenSSL 3 still offers SHA-1 and small keys.
  out["legacy"] = {"legacy", tls1_0, tls1_2, "DEFAULT:@SECLEVEL=0", "", ""};
  return out;
}

bool is_hex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
}

// [[certs]] names: "*.partner.example", "mx1.example.com".
bool is_host_glob(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '*';
  });
}

void require_file(error_sink& sink, const std::string& key, const fs::path& file) {
  std::error_code ec;
  const auto status = fs::status(file, ec);
  if (!fs::exists(status))
    sink.add_at_key(key, "file not found: " + file.string());
  else if (!fs::is_regular_file(status))
    sink.add_at_key(key, "not a regular file: " + file.string());
}

// Checks each string of `values` (remembered as key[i]) is a CIDR or bare address.
void check_cidrs(error_sink& sink, const std::string& key, const std::vector<std::string>& values) {
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (!parse_cidr(values[i]))
      sink.add_at_key(
          key + "[" + std::to_string(i) + "]",
          "invalid CIDR " + in_quotes(values[i]) + ", expected e.g. \"10.0.0.0/8\", \"::1\"");
  }
}

// A listen address must be a literal IP: binding to a name would depend on resolver state.
std::optional<endpoint> read_listen_endpoint(table_reader& r, std::string_view key) {
  std::string text;
  if (!r.read(key, text)) return std::nullopt;
  const auto ep = parse_endpoint(text);
  // Port 0 would listen on whatever port the kernel picks, which no client could know.
  if (!ep || !parse_ip(ep->host) || ep->port == 0) {
    r.sink().add_at_key(
        r.path_of(key),
        "invalid listen address " + in_quotes(text) +
            ", expected IP:port (port 1-65535) such as \"0.0.0.0:25\" or \"[::]:25\"");
    return std::nullopt;
  }
  return ep;
}

class loader {
 public:
  loader(const toml::table& root, const fs::path& file, error_sink& sink)
      : root_(root, "", sink), base_(file.parent_path()), sink_(sink) {
    cfg_.source = file;
    cfg_.tls_profiles = builtin_profiles();
  }

  config run() {
    if (const auto* t = root_.read_table("server")) read_server(*t);
    if (const auto* t = root_.read_table("log")) read_log(*t);
    read_audit(root_.read_table("audit"));
    if (const auto* t = root_.read_table("admin")) read_admin(*t);
    if (const auto* t = root_.read_table("tls")) read_tls(*t);
    if (const auto* t = root_.read_table("acme")) read_acme(*t);
    for (const auto& [t, path] : root_.read_table_array("certs")) read_cert(*t, path);
    if (const auto* t = root_.read_table("policy")) read_policy(*t);
    for (const auto& [t, path] : root_.read_table_array("listener")) read_listener(*t, path);
    root_.report_unknown_keys();
    validate();
    for (const auto& [key, at] : sink_.positions())
      cfg_.positions[key] = {static_cast<int>(at.line), static_cast<int>(at.column)};
    return std::move(cfg_);
  }

 private:
  void read_server(const toml::table& t) {
    table_reader r(t, "server", sink_);
    r.read_integer("threads", 0, 1024, cfg_.server.threads);
    r.read("user", cfg_.server.user);
    r.read_duration("shutdown_grace", cfg_.server.shutdown_grace);
    r.read_integer("max_connections", 1, 10'000'000, cfg_.server.max_connections);
    r.read("watch_certs", cfg_.server.watch_certs);
    r.read_path("pid_file", base_, cfg_.server.pid_file);
    // The URL's syntax only: an unreachable Redis is never a reason to refuse the start.
    if (r.read("shared_state", cfg_.server.shared_state) && !cfg_.server.shared_state.empty())
      if (auto url = parse_redis_url(cfg_.server.shared_state); !url.url)
        r.error("shared_state", *t.get("shared_state"), url.error);
    // The default stays "localhost" rather than gethostname(): the same file loads the same way on
    // every machine, and an operator who cares about the EHLO name sets it.
    if (r.read("hostname", cfg_.server.hostname) && cfg_.server.hostname.empty())
      r.error("hostname", *t.get("hostname"), "must not be empty");
    r.report_unknown_keys();
  }

  void read_log(const toml::table& t) {
    table_reader r(t, "log", sink_);
    std::string_view level;
    if (r.read_enum("level", log_level_names, level)) cfg_.log.level = std::string(level);
    r.read_path("file", base_, cfg_.log.file);
    r.report_unknown_keys();
  }

  void read_audit(const toml::table* t) {
    if (t) {
      table_reader r(*t, "audit", sink_);
      r.read("path", cfg_.audit.path);
      r.read("envelope", cfg_.audit.envelope);
      r.report_unknown_keys();
    }
    // "-" and "syslog" are sinks, not file names; the default "audit.jsonl" resolves like any path.
    if (cfg_.audit.path.empty())
      sink_.add_at_key("audit.path", "must not be empty (use \"-\" for stdout)");
    else if (cfg_.audit.path != "-" && cfg_.audit.path != "syslog")
      cfg_.audit.path = (base_ / cfg_.audit.path).lexically_normal().string();
  }

  void read_admin(const toml::table& t) {
    table_reader r(t, "admin", sink_);
    std::string listen;
    if (r.read("listen", listen)) {
      if (listen.empty())
        cfg_.admin.listen.clear();
      else if (read_listen_endpoint(r, "listen"))
        cfg_.admin.listen = listen;
    }
    r.report_unknown_keys();
  }

  void read_tls(const toml::table& t) {
    table_reader r(t, "tls", sink_);
    if (const auto* profiles = r.read_table("profiles")) {
      table_reader pr(*profiles, "tls.profiles", sink_);
      for (const auto& [name, node] : *profiles) {
        const std::string key(name.str());
        if (const auto* pt = pr.read_table(key)) read_profile(*pt, key);
      }
    }
    r.report_unknown_keys();
  }

  // A [tls.profiles.NAME] table overrides only the keys it sets on the built-in of that name.
  void read_profile(const toml::table& t, const std::string& name) {
    table_reader r(t, "tls.profiles." + name, sink_);
    tls_profile& p = cfg_.tls_profiles[name];
    p.name = name;
    std::string_view version;
    if (r.read_enum("min_version", tls_version_names, version))
      p.min_version = *parse_tls_version(version);
    if (r.read_enum("max_version", tls_version_names, version))
      p.max_version = *parse_tls_version(version);
    r.read("ciphers", p.ciphers);
    r.read("ciphersuites", p.ciphersuites);
    r.read("groups", p.groups);
    if (p.min_version > p.max_version)
      sink_.add_at_key(r.path_of("min_version"), "min_version is above max_version");
    r.report_unknown_keys();
  }

  void read_acme(const toml::table& t) {
    table_reader r(t, "acme", sink_);
    acme_config a;
    if (r.read("directory", a.directory)) {
      if (a.directory.rfind("https://", 0) != 0)
        r.error("directory", *t.get("directory"),
                "must be an https:// URL (the CA's ACME directory), got " + in_quotes(a.directory));
    } else if (!t.contains("directory")) {
      r.missing("directory");
    }
    r.read("email", a.email);
    if (a.email.find_first_of(" \t\r\n,") != std::string::npos)
      r.error("email", *t.get("email"), "must be one address, got " + in_quotes(a.email));
    if (r.read_path("ca_file", base_, a.ca_file) && !a.ca_file.empty())
      require_file(sink_, r.path_of("ca_file"), a.ca_file);
    fs::path state;
    if (r.read_path("state_dir", base_, state)) {
      if (state.empty())
        r.error("state_dir", *t.get("state_dir"), "must not be empty");
      else
        a.state_dir = state;
    }
    if (r.read_duration("renew_before", a.renew_before) && a.renew_before <= duration::zero())
      r.error("renew_before", *t.get("renew_before"), "must be positive, e.g. \"30d\"");
    if (r.read("challenge", a.challenge) && a.challenge != "tls-alpn-01")
      r.error("challenge", *t.get("challenge"),
              "invalid value " + in_quotes(a.challenge) + ", expected \"tls-alpn-01\"");
    r.report_unknown_keys();
    cfg_.acme = std::move(a);
  }

  // `acme = [...]`: DNS names the CA validates one by one (tls-alpn-01 cannot do wildcards).
  void read_acme_names(table_reader& r, const toml::table& t, cert_entry& c) {
    if (!r.read_strings("acme", c.acme, /*allow_single=*/true)) return;
    if (c.acme.empty()) r.error("acme", *t.get("acme"), "must name at least one DNS name");
    for (std::size_t i = 0; i < c.acme.size(); ++i) {
      auto& name = c.acme[i];
      ascii::lower_in_place(name);
      const std::string key = r.path_of("acme") + "[" + std::to_string(i) + "]";
      if (!is_host_glob(name) || name.find('*') != std::string::npos ||
          name.find('.') == std::string::npos || name.front() == '.' || name.back() == '.')
        sink_.add_at_key(key, "invalid DNS name " + in_quotes(name) +
                                  " (tls-alpn-01 validates exact names, no wildcards)");
      for (std::size_t j = 0; j < i; ++j)
        if (c.acme[j] == name) sink_.add_at_key(key, "duplicate name " + in_quotes(name));
    }
  }

  void read_cert(const toml::table& t, const std::string& path) {
    table_reader r(t, path, sink_);
    cert_entry c;
    if (t.contains("acme")) {
      read_acme_names(r, t, c);
      for (const char* key : {"cert", "key", "names"})
        if (const auto* node = r.get(key))
          r.error(key, *node,
                  std::string("a [[certs]] entry has either cert/key or acme, never both: ") + key +
                      " is not allowed beside acme (the names are acme's)");
      if (!c.acme.empty() && !cfg_.acme)
        r.error("acme", *t.get("acme"),
                "acme entries need an [acme] table (directory, email, state_dir)");
      if (!c.acme.empty() && cfg_.acme) {
        c.cert = acme_cert_path(*cfg_.acme, c.acme.front());
        c.key = acme_key_path(*cfg_.acme, c.acme.front());
        c.names = c.acme;
      }
      r.report_unknown_keys();
      cfg_.certs.push_back(std::move(c));
      return;
    }
    if (r.read_path("cert", base_, c.cert))
      require_file(sink_, r.path_of("cert"), c.cert);
    else if (!t.contains("cert"))
      r.missing("cert");
    if (r.read_path("key", base_, c.key))
      require_file(sink_, r.path_of("key"), c.key);
    else if (!t.contains("key"))
      r.missing("key");
    r.read_strings("names", c.names);
    for (std::size_t i = 0; i < c.names.size(); ++i) {
      if (!is_host_glob(c.names[i]))
        sink_.add_at_key(r.path_of("names") + "[" + std::to_string(i) + "]",
                         "invalid DNS name " + in_quotes(c.names[i]));
    }
    r.report_unknown_keys();
    cfg_.certs.push_back(std::move(c));
  }

  void read_actions(table_reader& r, policy_actions& a) {
    policy_action v{};
    if (r.read_enum("on_weak_signature", action_names, v)) a.on_weak_signature = v;
    if (r.read_enum("on_weak_key", action_names, v)) a.on_weak_key = v;
    if (r.read_enum("on_expired", action_names, v)) a.on_expired = v;
    if (r.read_enum("on_untrusted", action_names, v)) a.on_untrusted = v;
    if (r.read_enum("on_name_mismatch", action_names, v)) a.on_name_mismatch = v;
  }

  void read_policy(const toml::table& t) {
    table_reader r(t, "policy", sink_);
    policy_config& p = cfg_.policy;
    if (r.read_strings("weak_signatures", p.weak_signatures)) {
      for (std::size_t i = 0; i < p.weak_signatures.size(); ++i) {
        const bool known =
            std::any_of(signature_names.begin(), signature_names.end(),
                        [&](const auto& n) { return n.first == p.weak_signatures[i]; });
        if (!known)
          sink_.add_at_key(
              r.path_of("weak_signatures") + "[" + std::to_string(i) + "]",
              "invalid value " + in_quotes(p.weak_signatures[i]) +
                  ", expected one of \"md2\" | \"md4\" | \"md5\" | \"sha1\" | \"sha224\"");
      }
    }
    r.read_integer("min_rsa_bits", 512, 16384, p.min_rsa_bits);
    r.read("check_anchor_signature", p.check_anchor_signature);
    r.read("allow_expired_own_cert", p.allow_expired_own_cert);
    policy_actions defaults;
    read_actions(r, defaults);
    p.on_weak_signature = defaults.on_weak_signature.value_or(p.on_weak_signature);
    p.on_weak_key = defaults.on_weak_key.value_or(p.on_weak_key);
    p.on_expired = defaults.on_expired.value_or(p.on_expired);
    p.on_untrusted = defaults.on_untrusted.value_or(p.on_untrusted);
    p.on_name_mismatch = defaults.on_name_mismatch.value_or(p.on_name_mismatch);
    for (const auto& [rt, path] : r.read_table_array("rule")) read_rule(*rt, path);
    r.report_unknown_keys();
  }

  void read_rule(const toml::table& t, const std::string& path) {
    table_reader r(t, path, sink_);
    policy_rule rule;
    std::string text;
    if (r.read("listener", text)) rule.listener = text;  // checked against listeners in validate()
    if (r.read("peer", text)) {
      if (const auto problem = peer_pattern_problem(text))
        sink_.add_at_key(r.path_of("peer"), "invalid peer " + in_quotes(text) + ": " + *problem +
                                                "; expected a CIDR (\"10.0.0.0/8\"), an address "
                                                "or a host glob (\"*.partner.example\")");
      else
        rule.peer = text;
    }
    read_actions(r, rule.actions);
    r.report_unknown_keys();
    cfg_.policy.rules.push_back(std::move(rule));
  }

  void read_listener(const toml::table& t, const std::string& path) {
    table_reader r(t, path, sink_);
    listener_config l;
    if (r.read("name", l.name)) {
      if (l.name.empty()) sink_.add_at_key(r.path_of("name"), "must not be empty");
    } else if (!t.contains("name")) {
      r.missing("name");
    }
    r.read_enum("protocol", protocol_names, l.protocol);
    if (auto ep = read_listen_endpoint(r, "listen"))
      l.listen = *ep;
    else if (!t.contains("listen"))
      r.missing("listen");
    // https and tls can only be implicit (or none), so that is their default; smtp/imap/pop3
    // default to starttls.
    if (!r.read_enum("tls", front_tls_names, l.tls) &&
        (l.protocol == protocol::https || l.protocol == protocol::tls))
      l.tls = front_tls::implicit;
    r.read("tls_profile", l.tls_profile);
    r.read("require_tls", l.require_tls);
    r.read_enum("smtp_bare_lf", bare_lf_names, l.smtp_bare_lf);
    r.read_enum("client_certs", client_cert_names, l.client_certs);
    if (r.read_path("client_ca", base_, l.client_ca) && !l.client_ca.empty())
      require_file(sink_, r.path_of("client_ca"), l.client_ca);
    // SECURITY.md, "What it trusts": client chains are trusted only from client_ca. Without it the
    // system store would make every publicly trusted certificate a valid client identity.
    if (l.client_certs != client_cert_mode::none && l.client_ca.empty())
      sink_.add_at_key(r.path_of("client_certs"),
                       "client_certs = \"optional\" or \"required\" needs client_ca: client "
                       "chains are trusted only from client_ca, never from the system store");
    if (r.read_strings("allow", l.allow)) check_cidrs(sink_, r.path_of("allow"), l.allow);
    r.read("proxy_protocol", l.proxy_protocol);
    if (r.read_strings("trusted_proxies", l.trusted_proxies))
      check_cidrs(sink_, r.path_of("trusted_proxies"), l.trusted_proxies);
    if (l.proxy_protocol && l.trusted_proxies.empty())
      sink_.add_at_key(r.path_of("proxy_protocol"),
                       "proxy_protocol = true needs trusted_proxies: a PROXY header from anyone "
                       "would let any client claim any source address");
    constexpr std::int64_t max_conn = 10'000'000;
    r.read_integer("max_connections", 1, max_conn, l.max_connections);
    r.read_integer("max_connections_per_ip", 1, max_conn, l.max_connections_per_ip);
    r.read_integer("session_tickets", 0u, 8u, l.session_tickets);
    // conf/tlsbridge.toml gives one set of timeout defaults (idle 5m for smtp); every protocol
    // starts from it, except IMAP: RFC 9051 §5.4 says an autologout timer must be at least 30
    // minutes, and IDLE clients re-issue IDLE only every ~29 minutes. An explicit timeouts.idle
    // still wins.
    if (l.protocol == protocol::imap) l.timeouts.idle = std::chrono::minutes(30);
    if (const auto* tt = r.read_table("timeouts"))
      read_timeouts(*tt, r.path_of("timeouts"), l.timeouts);
    if (const auto* bt = r.read_table("backend"))
      read_backend(*bt, r.path_of("backend"), l.backend);
    else if (!t.contains("backend"))
      r.missing("backend");
    if (const auto* ht = r.read_table("http")) {
      if (l.protocol != protocol::https)
        sink_.add_at_key(r.path_of("http"), "[listener.http] applies only to protocol = \"https\"");
      read_http(*ht, r.path_of("http"), l.http);
    }
    if (const auto* lt = r.read_table("limits")) read_limits(*lt, r.path_of("limits"), l.limits);
    if (const auto* gt = r.read_table("auth_guard"))
      read_auth_guard(*gt, r.path_of("auth_guard"), l.auth_guard);
    if (const auto* st = r.read_table("smtp")) {
      if (l.protocol != protocol::smtp)
        sink_.add_at_key(r.path_of("smtp"), "[listener.smtp] applies only to protocol = \"smtp\"");
      table_reader sr(*st, r.path_of("smtp"), sink_);
      if (sr.read("greeting", l.smtp.greeting) &&
          l.smtp.greeting.find_first_of("\r\n") != std::string::npos)
        sink_.add_at_key(sr.path_of("greeting"), "must be one line");
      sr.report_unknown_keys();
    }
    r.report_unknown_keys();
    cfg_.listeners.push_back(std::move(l));
  }

  void read_timeouts(const toml::table& t, const std::string& path, timeouts_config& out) {
    table_reader r(t, path, sink_);
    for (auto [key, field] :
         {std::pair{"handshake", &out.handshake}, std::pair{"idle", &out.idle},
          std::pair{"connect", &out.connect}, std::pair{"request_head", &out.request_head}}) {
      if (r.read_duration(key, *field) && field->count() == 0)
        sink_.add_at_key(r.path_of(key), "must be greater than 0");
    }
    r.report_unknown_keys();
  }

  void read_backend(const toml::table& t, const std::string& path, backend_config& b) {
    table_reader r(t, path, sink_);
    std::vector<std::string> addresses;
    if (r.read_strings("address", addresses, /*allow_single=*/true)) {
      if (addresses.empty())
        sink_.add_at_key(r.path_of("address"), "must list at least one host:port");
      for (std::size_t i = 0; i < addresses.size(); ++i) {
        const auto ep = parse_endpoint(addresses[i]);
        if (ep && ep->port != 0)
          b.addresses.push_back(*ep);
        else
          sink_.add_at_key(r.path_of("address") + "[" + std::to_string(i) + "]",
                           "invalid address " + in_quotes(addresses[i]) +
                               ", expected host:port with port 1-65535, e.g. \"10.0.0.5:25\"");
      }
    } else if (!t.contains("address")) {
      r.missing("address");
    }
    r.read_enum("tls", back_tls_names, b.tls);
    r.read("tls_profile", b.tls_profile);
    r.read_enum("verify", verify_names, b.verify);
    if (r.read_path("ca_file", base_, b.ca_file) && !b.ca_file.empty())
      require_file(sink_, r.path_of("ca_file"), b.ca_file);
    if (r.read_strings("pin_sha256", b.pin_sha256)) {
      for (std::size_t i = 0; i < b.pin_sha256.size(); ++i) {
        std::string& pin = b.pin_sha256[i];
        if (pin.size() != 64 || !is_hex(pin))
          sink_.add_at_key(
              r.path_of("pin_sha256") + "[" + std::to_string(i) + "]",
              "invalid pin " + in_quotes(pin) + ", expected 64 hex digits (SHA-256 of the leaf)");
        ascii::lower_in_place(pin);
      }
    }
    r.read("server_name", b.server_name);
    r.read("require_tls", b.require_tls);
    r.read("resume_sessions", b.resume_sessions);
    r.read_enum("balance", balance_names, b.balance);
    read_health_check(t, r, b);
    read_source(r, b);
    if (b.verify == verify_mode::pin && b.pin_sha256.empty())
      sink_.add_at_key(r.path_of("verify"), "verify = \"pin\" needs at least one pin_sha256 entry");
    if (b.verify != verify_mode::none && b.tls == back_tls::none)
      sink_.add_at_key(r.path_of("verify"), "verify needs a TLS back leg, but tls = \"none\"");
    r.report_unknown_keys();
  }

  // source: "", "client" or an IP literal of the backend addresses' family (a host name's family
  // is known only when it resolves: the back leg skips addresses of the other one).
  void read_source(table_reader& r, backend_config& b) {
    if (!r.read("source", b.source) || b.source.empty() || b.source_is_client()) return;
    const auto own = parse_ip(b.source);
    if (!own || b.source.find('/') != std::string::npos) {
      sink_.add_at_key(r.path_of("source"),
                       "invalid source " + in_quotes(b.source) +
                           ", expected \"\", \"client\" or an IP address of this host");
      return;
    }
    const bool own_v6 = b.source.find(':') != std::string::npos;
    for (const auto& target : b.addresses) {
      if (!parse_ip(target.host)) continue;
      const bool target_v6 = target.host.find(':') != std::string::npos;
      if (target_v6 != own_v6)
        sink_.add_at_key(r.path_of("source"),
                         "source " + in_quotes(b.source) + " is " + (own_v6 ? "IPv6" : "IPv4") +
                             " but backend address " + in_quotes(target.to_string()) + " is " +
                             (target_v6 ? "IPv6" : "IPv4") +
                             ": a back leg binds to an address of the backend's family");
    }
  }

  void read_health_check(const toml::table& t, table_reader& r, backend_config& b) {
    r.read("health_path", b.health_path);
    if (!b.health_path.empty() && b.health_path.front() != '/')
      sink_.add_at_key(r.path_of("health_path"), "must start with /");
    // health_check = "" is off, as an absent key.
    if (const auto* off = t.get_as<std::string>("health_check"); off && off->get().empty()) {
      std::string ignored;
      r.read("health_check", ignored);
      return;
    }
    const auto* ht = r.read_table("health_check");
    if (!ht) return;
    table_reader h(*ht, r.path_of("health_check"), sink_);
    auto& hc = b.health_check;
    hc.interval = std::chrono::seconds(10);
    for (auto [key, field] :
         {std::pair{"interval", &hc.interval}, std::pair{"timeout", &hc.timeout}})
      if (h.read_duration(key, *field) && field->count() == 0)
        sink_.add_at_key(h.path_of(key), "must be greater than 0");
    h.read_integer("fall", 1, 100, hc.fall);
    h.read_integer("rise", 1, 100, hc.rise);
    h.report_unknown_keys();
  }

  void read_http(const toml::table& t, const std::string& path, http_config& h) {
    table_reader r(t, path, sink_);
    r.read_strings("allow_paths", h.allow_paths);
    for (std::size_t i = 0; i < h.allow_paths.size(); ++i) {
      if (h.allow_paths[i].empty() || h.allow_paths[i].front() != '/')
        sink_.add_at_key(r.path_of("allow_paths") + "[" + std::to_string(i) + "]",
                         "path must start with '/'");
    }
    r.read_duration("request_timeout", h.request_timeout);
    r.read("forwarded_headers", h.forwarded_headers);
    if (r.read("hsts", h.hsts) && h.hsts.find_first_of("\r\n") != std::string::npos)
      sink_.add_at_key(r.path_of("hsts"), "must be one line");
    r.report_unknown_keys();
  }

  void read_limits(const toml::table& t, const std::string& path, limits_config& out) {
    table_reader r(t, path, sink_);
    if (r.read_strings("deny", out.deny)) check_cidrs(sink_, r.path_of("deny"), out.deny);
    std::string rate;
    if (r.read("connection_rate", rate) && !rate.empty()) {
      // "N/window", e.g. "60/1m"
      const auto slash = rate.find('/');
      std::size_t count = 0;
      bool ok = slash != std::string::npos && slash > 0 && slash <= 9;
      for (std::size_t i = 0; ok && i < slash; ++i) {
        ok = rate[i] >= '0' && rate[i] <= '9';
        count = count * 10 + static_cast<std::size_t>(rate[i] - '0');
      }
      const auto window =
          ok ? parse_duration(std::string_view(rate).substr(slash + 1)) : std::nullopt;
      if (ok && window && count > 0 && window->count() > 0) {
        out.rate_count = count;
        out.rate_window = *window;
      } else {
        sink_.add_at_key(r.path_of("connection_rate"),
                         "invalid connection_rate " + in_quotes(rate) +
                             ", expected \"N/window\" with N >= 1, e.g. \"60/1m\"");
      }
    }
    r.report_unknown_keys();
  }

  void read_auth_guard(const toml::table& t, const std::string& path, auth_guard_config& out) {
    table_reader r(t, path, sink_);
    r.read("enabled", out.enabled);
    r.read_integer("failures_per_ip", 1, 1000000, out.failures_per_ip);
    r.read_integer("failures_per_user", 1, 1000000, out.failures_per_user);
    for (auto [key, field] : {std::pair{"window", &out.window}, std::pair{"block", &out.block},
                              std::pair{"remember_success", &out.remember_success}}) {
      if (r.read_duration(key, *field) && field->count() == 0)
        sink_.add_at_key(r.path_of(key), "must be greater than 0");
    }
    r.read_duration("tarpit", out.tarpit);
    if (out.tarpit > std::chrono::seconds(30))
      sink_.add_at_key(r.path_of("tarpit"), "at most 30s (the client would give up)");
    r.report_unknown_keys();
  }

  std::string listener_key(std::size_t i, std::string_view key) const {
    return "listener[" + std::to_string(i) + "]." + std::string(key);
  }

  std::string line_of(const std::string& key) const {
    const auto at = sink_.position_of(key);
    return at ? " (line " + std::to_string(at->line) + ")" : "";
  }

  // Two listeners collide on the same port when their addresses are equal or one is the wildcard
  // of the other's family (Linux refuses 0.0.0.0:25 next to 127.0.0.1:25, [::]:25 next to
  // [::1]:25). IPv6 listeners are bound IPV6_V6ONLY (proxy/server.cpp), so 0.0.0.0:25 and
  // [::]:25 are two sockets that never meet: dual stack, RFC 3493 §5.3.
  static bool same_socket(const endpoint& a, const endpoint& b) {
    if (a.port != b.port || a.port == 0) return false;
    const auto ia = parse_ip(a.host), ib = parse_ip(b.host);
    if (!ia || !ib) return a.host == b.host;
    const auto wildcard = [](const std::array<std::uint8_t, 16>& ip) {
      return ip == *parse_ip("0.0.0.0") || ip == *parse_ip("::");
    };
    const auto is_v6 = [](const endpoint& e) { return e.host.find(':') != std::string::npos; };
    return *ia == *ib || (is_v6(a) == is_v6(b) && (wildcard(*ia) || wildcard(*ib)));
  }

  std::string profile_list() const {
    std::string out;
    for (const auto& [name, p] : cfg_.tls_profiles)
      out += (out.empty() ? "" : ", ") + in_quotes(name);
    return out;
  }

  void validate() {
    const auto& ls = cfg_.listeners;
    // (A "listener" of the wrong type has its own error already.)
    const toml::node* listener_node = root_.get("listener");
    if (!listener_node || (listener_node->is_array() && listener_node->as_array()->empty()))
      sink_.add_at_key("listener", "at least one [[listener]] is required");
    for (std::size_t i = 0; i < ls.size(); ++i) {
      const listener_config& l = ls[i];
      for (std::size_t j = 0; j < i; ++j) {
        if (!l.name.empty() && l.name == ls[j].name)
          sink_.add_at_key(listener_key(i, "name"), "duplicate listener name " + in_quotes(l.name) +
                                                        ", first used by listener[" +
                                                        std::to_string(j) + "]" +
                                                        line_of(listener_key(j, "name")));
        if (same_socket(l.listen, ls[j].listen))
          sink_.add_at_key(listener_key(i, "listen"),
                           "duplicate listener: " + in_quotes(l.name) + " on " +
                               l.listen.to_string() + " collides with " + in_quotes(ls[j].name) +
                               " on " + ls[j].listen.to_string() +
                               line_of(listener_key(j, "listen")));
      }
      const bool tls_only_protocol = l.protocol == protocol::https || l.protocol == protocol::tls;
      // https and raw TLS have no plaintext command phase in which to upgrade.
      if (l.tls == front_tls::starttls && tls_only_protocol)
        sink_.add_at_key(listener_key(i, "tls"),
                         "tls = \"starttls\" is not possible with protocol = \"" +
                             std::string(l.protocol == protocol::https ? "https" : "tls") +
                             "\" (use \"implicit\")");
      if (!cfg_.find_profile(l.tls_profile))
        sink_.add_at_key(listener_key(i, "tls_profile"), "unknown TLS profile " +
                                                             in_quotes(l.tls_profile) +
                                                             " (defined: " + profile_list() + ")");
      if (!cfg_.find_profile(l.backend.tls_profile))
        sink_.add_at_key(listener_key(i, "backend.tls_profile"),
                         "unknown TLS profile " + in_quotes(l.backend.tls_profile) +
                             " (defined: " + profile_list() + ")");
      if ((l.tls != front_tls::none || tls_only_protocol) && cfg_.certs.empty())
        sink_.add_at_key(listener_key(i, "tls"), "listener " + in_quotes(l.name) +
                                                     " serves TLS but no [[certs]] is configured");
      if (!cfg_.admin.listen.empty()) {
        const auto admin = parse_endpoint(cfg_.admin.listen);
        if (admin && same_socket(*admin, l.listen))
          sink_.add_at_key(listener_key(i, "listen"),
                           "collides with [admin] listen = " + in_quotes(cfg_.admin.listen));
      }
    }
    for (std::size_t i = 0; i < cfg_.policy.rules.size(); ++i) {
      const auto& name = cfg_.policy.rules[i].listener;
      if (name &&
          std::none_of(ls.begin(), ls.end(), [&](const auto& l) { return l.name == *name; }))
        sink_.add_at_key("policy.rule[" + std::to_string(i) + "].listener",
                         "no listener is named " + in_quotes(*name));
    }
  }

  config cfg_;
  table_reader root_;
  fs::path base_;
  error_sink& sink_;
};

}  // namespace

std::shared_ptr<const config> load_config_from_string(std::string_view text, const fs::path& file) {
  error_sink sink(file.string());
  std::error_code ec;
  const fs::path absolute = fs::absolute(file, ec).lexically_normal();
  try {
    const toml::table root = toml::parse(text, file.string());
    config cfg = loader(root, absolute, sink).run();
    if (sink.empty()) return std::make_shared<const config>(std::move(cfg));
  } catch (const toml::parse_error& e) {
    sink.add(e.source().begin, "", std::string(e.description()));
  }
  throw config_load_error(sink.take_sorted());
}

std::shared_ptr<const config> load_config(const fs::path& file) {
  const auto fail = [&](std::string message) {
    error_sink sink(file.string());
    sink.add_unpositioned("", std::move(message));
    throw config_load_error(sink.take_sorted());
  };
  std::error_code ec;
  // A directory opens fine as an ifstream and reads as empty; say what is wrong instead.
  if (fs::is_directory(file, ec)) fail("is a directory, expected a TOML file");
  std::ifstream in(file, std::ios::binary);
  if (!in) fail(std::string("cannot read file: ") + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) fail(std::string("cannot read file: ") + std::strerror(errno));
  return load_config_from_string(text.str(), file);
}

}  // namespace tlsbridge::config
