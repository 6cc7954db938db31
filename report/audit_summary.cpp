#include "report/audit_summary.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <boost/json/value.hpp>
#include <charconv>
#include <cstdio>
#include <optional>
#include <utility>
#include <vector>

#include "config/value_parsers.hpp"

namespace tlsbridge::report {

namespace json = boost::json;

namespace {

// Highest version first in every listing of TLS versions, "none" (no TLS) last.
constexpr std::string_view too_old_versions[] = {"SSLv3", "TLSv1", "TLSv1.1"};

bool too_old_for_tls12(std::string_view version) {
  return std::find(std::begin(too_old_versions), std::end(too_old_versions), version) !=
         std::end(too_old_versions);
}

// Which finding makes a chain weakest (docs/audit-records.md, "The chain object"): a pin that did
// not match or an expired certificate break the connection outright; a weak key or an MD5
// signature can be forged today, SHA-1 with effort (SHAttered); trust and name findings say
// who vouches for the peer, not how strong its cryptography is.
struct severity_row {
  std::string_view kind;
  int severity;
};
constexpr severity_row severity_table[] = {
    {"pin_mismatch", 90},  {"expired", 80},   {"weak_key", 70},      {"weak_signature", 50},
    {"not_yet_valid", 40}, {"untrusted", 30}, {"name_mismatch", 25}, {"self_signed", 20},
};
constexpr int md5_bonus = 10;  // weak_signature over MD5: below a weak key, above SHA-1

void note_chain(const leg_fields& leg, worst_finding& worst) {
  if (!leg.chain || leg.findings_used == 0) return;
  ++worst.chains_with_findings;
  for (std::size_t i = 0; i < leg.findings_used; ++i) {
    const auto& f = leg.findings[i];
    const int severity = finding_severity(f.kind, f.detail);
    if (severity > worst.severity) {
      worst.severity = severity;
      worst.kind = f.kind;
      worst.detail = f.detail;
    }
  }
}

std::string_view tls_or_none(const leg_fields& leg) {
  return leg.tls.empty() ? std::string_view("none") : std::string_view(leg.tls);
}

// A tally as a JSON object, largest first (ties by key), the overflow as "other" last.
json::object counts_json(const bounded_counts& counts) {
  std::vector<std::pair<std::string_view, std::uint64_t>> rows;
  rows.reserve(counts.size());
  counts.for_each([&](std::string_view key, std::uint64_t n) { rows.emplace_back(key, n); });
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  json::object out;
  out.reserve(rows.size() + 1);
  for (const auto& [key, n] : rows) out[key] = n;
  if (counts.other_used()) out["other"] = counts.other();
  return out;
}

json::value worst_json(const worst_finding& w) {
  if (w.severity == 0) return nullptr;
  return json::object{
      {"kind", w.kind}, {"detail", w.detail}, {"chains_with_findings", w.chains_with_findings}};
}

json::object peer_json(const peer_tally& p, bool client_side) {
  json::object out{
      {"connections", p.connections},        {"tls", counts_json(p.tls)},
      {"ciphers", counts_json(p.ciphers)},   {"outcomes", counts_json(p.outcomes)},
      {"refusals", counts_json(p.refusals)}, {"weakest_finding", worst_json(p.weakest)}};
  if (client_side)
    out["failed_handshakes"] = counts_json(p.failed_handshakes);
  else
    out["verdicts"] = counts_json(p.verdicts);
  return out;
}

json::object peers_json(const bounded_map<peer_tally>& peers, bool client_side) {
  std::vector<std::pair<std::string_view, const peer_tally*>> rows;
  rows.reserve(peers.size());
  peers.for_each([&](std::string_view key, const peer_tally& t) { rows.emplace_back(key, &t); });
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) {
    return a.second->connections != b.second->connections
               ? a.second->connections > b.second->connections
               : a.first < b.first;
  });
  json::object out;
  out.reserve(rows.size() + 1);
  for (const auto& [key, tally] : rows) out[key] = peer_json(*tally, client_side);
  if (peers.other_used()) out["other"] = peer_json(peers.other(), client_side);
  return out;
}

// The refusals of a connection: its outcome when the proxy refused it, and the commands the
// proxy answered itself by rule (the `refusals` object).
constexpr std::string_view refused_outcomes[] = {"refused_policy", "limit", "denied"};

}  // namespace

int finding_severity(std::string_view kind, std::string_view detail) {
  for (const auto& row : severity_table) {
    if (row.kind != kind) continue;
    const bool md5 = kind == "weak_signature" && (detail.find("md5") != std::string_view::npos ||
                                                  detail.find("MD5") != std::string_view::npos);
    return row.severity + (md5 ? md5_bonus : 0);
  }
  return 0;
}

std::string_view endpoint_host(std::string_view endpoint) {
  if (!endpoint.empty() && endpoint.front() == '[') {
    auto close = endpoint.find(']');
    return close == std::string_view::npos ? endpoint : endpoint.substr(1, close - 1);
  }
  // One colon: IPv4 "a.b.c.d:port". More: a bare IPv6 address.
  auto colon = endpoint.find(':');
  if (colon != std::string_view::npos && endpoint.find(':', colon + 1) == std::string_view::npos)
    return endpoint.substr(0, colon);
  return endpoint;
}

namespace {

// "a.b.c.d" in decimal, the form the audit log writes: its /24 without a detour through
// inet_pton; anything else is left to config::parse_ip.
std::optional<std::string> ipv4_network(std::string_view host) {
  std::string_view octets[4];
  for (int i = 0; i < 4; ++i) {
    const auto dot = host.find('.');
    if ((dot == std::string_view::npos) != (i == 3)) return std::nullopt;
    octets[i] = host.substr(0, dot);
    if (octets[i].empty() || octets[i].size() > 3) return std::nullopt;
    unsigned value = 0;
    for (char c : octets[i]) {
      if (c < '0' || c > '9') return std::nullopt;
      value = value * 10 + static_cast<unsigned>(c - '0');
    }
    if (value > 255 || (octets[i].size() > 1 && octets[i][0] == '0')) return std::nullopt;
    host.remove_prefix(dot == std::string_view::npos ? host.size() : dot + 1);
  }
  std::string out;
  out.reserve(16);
  for (int i = 0; i < 3; ++i) out.append(octets[i]).push_back('.');
  return out.append("0/24");
}

}  // namespace

std::string client_network(std::string_view endpoint) {
  const auto host = endpoint_host(endpoint);
  if (auto v4 = ipv4_network(host)) return std::move(*v4);
  auto ip = config::parse_ip(host);
  if (!ip) return "unknown";
  auto& a = *ip;
  const bool v4 = std::all_of(a.begin(), a.begin() + 10, [](auto b) { return b == 0; }) &&
                  a[10] == 0xff && a[11] == 0xff;
  char text[INET6_ADDRSTRLEN + 4];
  if (v4) {
    std::string out;
    for (int i = 12; i < 15; ++i) {
      char* end = std::to_chars(text, text + 4, a[i]).ptr;
      out.append(text, end).push_back('.');
    }
    return out.append("0/24");
  }
  std::fill(a.begin() + 8, a.end(), 0);
  if (!::inet_ntop(AF_INET6, a.data(), text, INET6_ADDRSTRLEN)) return "unknown";
  return std::string(text) + "/64";
}

audit_summary::audit_summary(std::string since, summary_limits caps)
    : since_(std::move(since)),
      caps_(caps),
      refusals_(caps.reasons),
      networks_(caps.networks),
      backends_(caps.backends),
      auth_users_(caps.users),
      auth_ips_(caps.ips),
      device_types_(caps.device_types),
      device_ids_(caps.device_ids) {}

void audit_summary::add(const json::object& record) {
  fields_of(record, scratch_);
  add(scratch_);
}

void audit_summary::add(const record_fields& r) {
  if (before_since(r.ts)) {
    ++skipped_;
    return;
  }
  ++records_;
  if (!r.ts.empty()) {
    if (first_ts_.empty() || r.ts < first_ts_) first_ts_ = r.ts;
    if (r.ts > last_ts_) last_ts_ = r.ts;
  }
  if (r.v) {
    char text[24];
    const auto end = std::to_chars(text, text + sizeof text, *r.v).ptr;
    ++schema_versions_[std::string_view(text, static_cast<std::size_t>(end - text))];
  } else {
    ++schema_versions_["none"];
  }
  ++events_[r.event.empty() ? std::string_view("none") : std::string_view(r.event)];
  if (r.event == "conn")
    add_conn(r);
  else if (r.event == "auth.failure")
    add_auth_failure(r);
  else if (r.event == "http.request")
    add_http_request(r);
}

void audit_summary::add_conn(const record_fields& r) {
  ++connections_;
  const std::string_view outcome = r.outcome;
  ++outcomes_[outcome];
  const auto front_tls = tls_or_none(r.front);
  ++front_tls_[front_tls];

  auto& net = networks_[client_network(r.client)];
  ++net.connections;
  ++net.tls[front_tls];
  ++net.outcomes[outcome];
  if (!r.front.cipher.empty()) ++net.ciphers[r.front.cipher];
  note_chain(r.front, net.weakest);

  peer_tally* backend = nullptr;
  if (r.backend.present) {
    const auto back_tls = tls_or_none(r.backend);
    ++backend_tls_[back_tls];
    backend = &backends_[r.backend.addr.empty() ? std::string_view("unknown")
                                                : std::string_view(r.backend.addr)];
    ++backend->connections;
    ++backend->tls[back_tls];
    ++backend->outcomes[outcome];
    if (!r.backend.cipher.empty()) ++backend->ciphers[r.backend.cipher];
    if (r.backend.chain) {
      ++backend->verdicts[r.backend.verdict];
      note_chain(r.backend, backend->weakest);
    }
  }

  auto refuse = [&](std::string_view reason, std::uint64_t n) {
    refusals_[reason] += n;
    net.refusals[reason] += n;
    if (backend) backend->refusals[reason] += n;
  };
  if (std::find(std::begin(refused_outcomes), std::end(refused_outcomes), outcome) !=
      std::end(refused_outcomes))
    refuse(outcome, 1);
  for (std::size_t i = 0; i < r.refusals_used; ++i)
    if (r.refusals[i].second > 0)
      refuse(r.refusals[i].first, static_cast<std::uint64_t>(r.refusals[i].second));

  if (outcome == "tls_failed") {
    ++failed_handshakes_;
    const std::string_view offered =
        r.max_version.empty() ? std::string_view("unknown") : std::string_view(r.max_version);
    ++failed_by_version_[offered];
    ++net.failed_handshakes[offered];
  }
}

void audit_summary::add_auth_failure(const record_fields& r) {
  ++auth_failures_;
  if (!r.user.empty()) ++auth_users_[r.user];
  if (!r.client.empty()) ++auth_ips_[endpoint_host(r.client)];
}

void audit_summary::add_http_request(const record_fields& r) {
  if (!r.activesync) return;
  ++activesync_requests_;
  const std::string_view type =
      r.device_type.empty() ? std::string_view("unknown") : std::string_view(r.device_type);
  auto& tally = device_types_[type];
  ++tally.requests;
  // Distinct devices: a bounded set of "type<US>id" (once full, new devices are not counted).
  device_key_.assign(type).push_back('\x1f');
  device_key_.append(r.device_id);
  if (!device_ids_.contains(device_key_) && device_ids_.size() < device_ids_.cap()) ++tally.devices;
  ++device_ids_[device_key_];
}

json::object audit_summary::to_json() const {
  std::uint64_t too_old_total = 0;
  failed_by_version_.for_each([&](std::string_view version, std::uint64_t n) {
    if (too_old_for_tls12(version)) too_old_total += n;
  });

  json::object devices;
  std::vector<std::pair<std::string_view, const device_tally*>> rows;
  device_types_.for_each(
      [&](std::string_view type, const device_tally& t) { rows.emplace_back(type, &t); });
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) {
    return a.second->requests != b.second->requests ? a.second->requests > b.second->requests
                                                    : a.first < b.first;
  });
  for (const auto& [type, tally] : rows)
    devices[type] = json::object{{"requests", tally->requests}, {"devices", tally->devices}};
  if (device_types_.other_used())
    devices["other"] = json::object{{"requests", device_types_.other().requests},
                                    {"devices", device_types_.other().devices}};

  return json::object{
      {"period",
       json::object{{"since", since_.empty() ? json::value(nullptr) : json::value(since_)},
                    {"first_ts", first_ts_.empty() ? json::value(nullptr) : json::value(first_ts_)},
                    {"last_ts", last_ts_.empty() ? json::value(nullptr) : json::value(last_ts_)}}},
      {"records", json::object{{"read", records_},
                               {"skipped_before_since", skipped_},
                               {"unreadable", unreadable_},
                               {"events", counts_json(events_)},
                               {"schema_versions", counts_json(schema_versions_)}}},
      {"connections", json::object{{"total", connections_},
                                   {"outcomes", counts_json(outcomes_)},
                                   {"front_tls", counts_json(front_tls_)},
                                   {"backend_tls", counts_json(backend_tls_)}}},
      {"refusals", counts_json(refusals_)},
      {"failed_handshakes", json::object{{"total", failed_handshakes_},
                                         {"too_old_for_tls12", too_old_total},
                                         {"by_max_version", counts_json(failed_by_version_)}}},
      {"client_networks", peers_json(networks_, true)},
      {"backends", peers_json(backends_, false)},
      {"auth_failures", json::object{{"total", auth_failures_},
                                     {"by_user", counts_json(auth_users_)},
                                     {"by_ip", counts_json(auth_ips_)}}},
      {"activesync",
       json::object{{"requests", activesync_requests_}, {"by_device_type", std::move(devices)}}},
  };
}

}  // namespace tlsbridge::report
