#include "proxy/status_json.hpp"

#include <boost/json/array.hpp>
#include <ctime>

namespace tlsbridge::proxy {

namespace {

namespace json = boost::json;

const char* front_text(config::front_tls t) {
  switch (t) {
    case config::front_tls::starttls:
      return "starttls";
    case config::front_tls::implicit:
      return "implicit";
    case config::front_tls::none:
      return "none";
  }
  return "?";
}

const char* back_text(config::back_tls t) {
  switch (t) {
    case config::back_tls::starttls:
      return "starttls";
    case config::back_tls::implicit:
      return "implicit";
    case config::back_tls::none:
      return "none";
  }
  return "?";
}

json::object listener_json(const listener_runtime& rt) {
  const auto& l = *rt.settings;
  json::object o;
  o["name"] = l.name;
  o["protocol"] = protocol_name(l.protocol);
  o["listen"] = l.listen.to_string();
  o["port"] = l.listen.port;
  o["tls"] = front_text(l.tls);
  o["tls_profile"] =
      l.tls == config::front_tls::none ? json::value(nullptr) : json::value(l.tls_profile);
  o["backend_tls"] = back_text(l.backend.tls);
  o["backend_tls_profile"] = l.backend.tls == config::back_tls::none
                                 ? json::value(nullptr)
                                 : json::value(l.backend.tls_profile);
  o["active"] = rt.counters->active.load(std::memory_order_relaxed);
  return o;
}

json::object versions_json(const std::array<std::uint64_t, tls_version_names.size()>& counts) {
  json::object o;
  for (std::size_t i = 0; i < counts.size(); ++i) o[tls_version_names[i]] = counts[i];
  return o;
}

}  // namespace

const char* protocol_name(config::protocol p) {
  switch (p) {
    case config::protocol::smtp:
      return "smtp";
    case config::protocol::imap:
      return "imap";
    case config::protocol::pop3:
      return "pop3";
    case config::protocol::https:
      return "https";
    case config::protocol::tls:
      return "tls";
  }
  return "?";
}

std::string rfc3339(std::int64_t unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

json::object status_json(const status_sources& s, std::chrono::system_clock::time_point now) {
  const std::int64_t now_s =
      std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  json::object out;
  out["generated"] = rfc3339(now_s);
  out["version"] = s.build.version;
  out["commit"] = s.build.commit;
  out["openssl"] = s.build.openssl;
  out["started"] = rfc3339(s.started);
  out["uptime_seconds"] = now_s - s.started;
  out["draining"] = s.draining;

  json::array listeners, backends;
  json::object sessions{{"smtp", 0}, {"imap", 0}, {"pop3", 0}, {"https", 0}, {"tls", 0}};
  if (s.listeners) {
    for (const auto& [name, rt] : *s.listeners) {
      listeners.push_back(listener_json(*rt));
      auto& n = sessions[protocol_name(rt->settings->protocol)];
      n = n.to_number<std::uint64_t>() + rt->counters->active.load(std::memory_order_relaxed);
      if (!rt->health) continue;
      const bool checked = rt->settings->backend.health_check.interval.count() > 0;
      for (std::size_t i = 0; i < rt->health->size(); ++i) {
        auto state = rt->health->state(i);
        backends.push_back(json::object{{"listener", name},
                                        {"address", state->address},
                                        {"up", state->up.load(std::memory_order_relaxed)},
                                        {"active", state->active.load(std::memory_order_relaxed)},
                                        {"health_check", checked}});
      }
    }
  }
  out["listeners"] = std::move(listeners);
  out["backends"] = std::move(backends);
  out["sessions"] = std::move(sessions);

  json::array refusals;
  if (s.board)
    for (const auto& r : s.board->last_refusals())
      refusals.push_back(json::object{{"time", rfc3339(r.unix_ms / 1000)},
                                      {"unix_ms", r.unix_ms},
                                      {"client", r.client},
                                      {"listener", r.listener},
                                      {"reason", r.reason},
                                      {"detail", r.detail}});
  out["refusals"] = std::move(refusals);

  json::array certificates;
  if (s.certificates)
    for (const auto& c : *s.certificates)
      certificates.push_back(json::object{{"file", c.file},
                                          {"subject", c.subject},
                                          {"not_after", rfc3339(c.not_after)},
                                          {"days_left", days_left(c, now_s)}});
  out["certificates"] = std::move(certificates);

  // The acme entries of [[certs]] (proxy/acme_service): what is served, the last and next order.
  json::array acme;
  const auto when = [](std::int64_t t) -> json::value {
    if (t == 0) return nullptr;
    return json::value(rfc3339(t));
  };
  if (s.acme)
    for (const auto& e : *s.acme) {
      json::array names;
      for (const auto& n : e.names) names.emplace_back(n);
      acme.push_back(json::object{{"names", std::move(names)},
                                  {"not_after", when(e.placeholder ? 0 : e.not_after)},
                                  {"placeholder", e.placeholder},
                                  {"last_attempt", when(e.last_attempt)},
                                  {"result", e.result},
                                  {"step", e.step},
                                  {"error", e.error},
                                  {"next_attempt", when(e.next_attempt)}});
    }
  out["acme"] = std::move(acme);

  const tls_counts tls = s.board ? s.board->tls_last_hour(now) : tls_counts{};
  out["tls_versions"] = json::object{{"window_seconds", 3600},
                                     {"front", versions_json(tls.front)},
                                     {"back", versions_json(tls.back)}};
  return out;
}

}  // namespace tlsbridge::proxy
