#include "proxy/metrics.hpp"

#include <array>
#include <cstdio>

namespace tlsbridge::proxy {

namespace {

constexpr std::array<double, 12> bucket_bounds{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                               0.1,   0.25,   0.5,   1.0,  2.5,   10.0};

std::string escape_label(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string render_labels(const labels& l, std::string_view extra = {}) {
  if (l.empty() && extra.empty()) return {};
  std::string out = "{";
  for (std::size_t i = 0; i < l.size(); ++i) {
    if (i) out += ',';
    out += l[i].first + "=\"" + escape_label(l[i].second) + "\"";
  }
  if (!extra.empty()) {
    if (!l.empty()) out += ',';
    out += extra;
  }
  return out + "}";
}

std::string number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

}  // namespace

metrics::metrics() {
  declare("tlsbridge_connections_total", "counter", "Connections by listener and outcome.");
  declare("tlsbridge_active_connections", "gauge", "Connections open now, by listener.");
  declare("tlsbridge_backend_up", "gauge",
          "1 while a backend address is up in this process's health state, 0 while down.");
  declare("tlsbridge_handshake_failures_total", "counter",
          "TLS handshakes that failed, by listener, side (front/back) and reason.");
  declare("tlsbridge_tls_versions_total", "counter",
          "Negotiated TLS versions by listener and side (front/back).");
  declare("tlsbridge_policy_findings_total", "counter",
          "Certificate policy findings by listener, side, kind and action.");
  declare("tlsbridge_bytes_total", "counter",
          "Bytes relayed by listener and direction (in = from clients, out = to clients).");
  declare("tlsbridge_backend_connect_seconds", "histogram",
          "Time to establish the backend TCP connection, by listener.");
  declare("tlsbridge_starttls_injections_total", "counter",
          "Sessions whose client sent plaintext after STARTTLS (discarded), by listener.");
  declare("tlsbridge_auth_failures_total", "counter",
          "Authentications the backend refused, by listener ([listener.auth_guard]).");
  declare("tlsbridge_auth_blocked_total", "counter",
          "Authentications the auth guard answered itself, by listener and scope (ip, user).");
  declare("tlsbridge_refusals_total", "counter",
          "Requests the proxy refused itself without relaying them, by listener and rule.");
  declare("tlsbridge_certificate_expiry_seconds", "gauge",
          "Own front certificates: notAfter as a Unix timestamp, by file and subject.");
  declare("tlsbridge_config_reloads_total", "counter", "Configuration reloads by result.");
  declare("tlsbridge_last_reload_success", "gauge",
          "1 when the last reload (SIGHUP or certificate change) applied, 0 when it was rejected; "
          "1 at start.");
  declare("tlsbridge_last_reload_timestamp_seconds", "gauge",
          "Unix time of the last reload attempt (or of the start).");
  declare("tlsbridge_audit_write_failures_total", "counter",
          "Audit records that could not be written.");
}

void metrics::declare(const std::string& name, const std::string& type, const std::string& help) {
  auto& f = families_[name];
  f.type = type;
  f.help = help;
}

void metrics::add(std::string_view name, const labels& l, double value) {
  std::lock_guard lock(mutex_);
  auto it = families_.find(name);
  if (it == families_.end()) return;
  it->second.samples[render_labels(l)] += value;
}

void metrics::set(std::string_view name, const labels& l, double value) {
  std::lock_guard lock(mutex_);
  auto it = families_.find(name);
  if (it == families_.end()) return;
  it->second.samples[render_labels(l)] = value;
}

void metrics::observe(std::string_view name, const labels& l, double seconds) {
  std::lock_guard lock(mutex_);
  auto it = families_.find(name);
  if (it == families_.end()) return;
  std::string key = render_labels(l);
  auto& counts = it->second.buckets[key];
  counts.resize(bucket_bounds.size(), 0);
  for (std::size_t i = 0; i < bucket_bounds.size(); ++i)
    if (seconds <= bucket_bounds[i]) ++counts[i];
  auto& [sum, count] = it->second.sums[key];
  sum += seconds;
  ++count;
}

std::string metrics::render() const {
  std::lock_guard lock(mutex_);
  std::string out;
  for (const auto& [name, f] : families_) {
    out += "# HELP " + name + " " + f.help + "\n";
    out += "# TYPE " + name + " " + f.type + "\n";
    for (const auto& [lbl, v] : f.samples) out += name + lbl + " " + number(v) + "\n";
    for (const auto& [lbl, counts] : f.buckets) {
      // Re-open the label set to add `le` (lbl is "" or "{a="b"}").
      std::string inner = lbl.empty() ? "" : lbl.substr(1, lbl.size() - 2);
      auto with_le = [&](const std::string& le) {
        return "{" + inner + (inner.empty() ? "" : ",") + "le=\"" + le + "\"}";
      };
      for (std::size_t i = 0; i < bucket_bounds.size(); ++i)
        out += name + "_bucket" + with_le(number(bucket_bounds[i])) + " " +
               std::to_string(counts[i]) + "\n";
      const auto& [sum, count] = f.sums.at(lbl);
      out += name + "_bucket" + with_le("+Inf") + " " + std::to_string(count) + "\n";
      out += name + "_sum" + lbl + " " + number(sum) + "\n";
      out += name + "_count" + lbl + " " + std::to_string(count) + "\n";
    }
  }
  return out;
}

}  // namespace tlsbridge::proxy
