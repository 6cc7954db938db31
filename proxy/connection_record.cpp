#include "proxy/connection_record.hpp"

#include <boost/json/array.hpp>

#include "proxy/refusal_reason.hpp"

namespace tlsbridge::proxy {

namespace {

boost::json::value text_or_null(const std::optional<std::string>& s) {
  return s ? boost::json::value(*s) : boost::json::value(nullptr);
}

void put_tls(boost::json::object& o, const leg_record& leg) {
  o["tls"] = leg.tls ? boost::json::value(leg.version) : boost::json::value(nullptr);
  o["cipher"] = leg.tls ? boost::json::value(leg.cipher) : boost::json::value(nullptr);
}

boost::json::value chain_json(const leg_record& leg) {
  if (!leg.chain || !leg.decision) return nullptr;
  return policy::chain_to_json(*leg.chain, leg.decision->findings, leg.decision->result,
                               leg.decision->rule);
}

}  // namespace

boost::json::object conn_json(const connection_record& r) {
  // Sized up front: growing an object member by member reallocates and moves it several times.
  boost::json::object rec;
  rec.reserve(20);
  rec["event"] = "conn";
  rec["conn"] = r.id;
  rec["listener"] = r.listener;
  rec["client"] = r.client;
  if (!r.proxy.empty()) rec["proxy"] = r.proxy;
  boost::json::object front;
  front.reserve(5);
  put_tls(front, r.front);
  front["sni"] = r.front.tls ? text_or_null(r.front.sni) : boost::json::value(nullptr);
  front["alpn"] = r.front.tls ? text_or_null(r.front.alpn) : boost::json::value(nullptr);
  front["chain"] = chain_json(r.front);
  rec["front"] = std::move(front);
  if (r.back) {
    boost::json::object b;
    b.reserve(6);
    put_tls(b, *r.back);
    b["addr"] = r.back->addr;
    b["local"] = r.back->local;
    b["resumed"] = r.back->tls ? boost::json::value(r.back->resumed) : boost::json::value(nullptr);
    b["chain"] = chain_json(*r.back);
    rec["backend"] = std::move(b);
  } else {
    rec["backend"] = nullptr;
  }
  rec["bytes_in"] = r.bytes_in;
  rec["bytes_out"] = r.bytes_out;
  rec["duration_ms"] = r.duration_ms;
  rec["outcome"] = to_string(r.what);
  rec["reason"] = r.reason;
  rec["starttls_injection"] = r.starttls_injection;
  if (r.injected_bytes) rec["injected_bytes"] = r.injected_bytes;
  if (r.pretls_auth_attempts) rec["pretls_auth_attempts"] = r.pretls_auth_attempts;
  if (!r.refusals.empty()) {
    boost::json::object refusals;
    for (const auto& [rule, n] : r.refusals) refusals[rule] = n;
    rec["refusals"] = std::move(refusals);
  }
  if (r.client_hello) {
    boost::json::array ciphers;
    for (const auto& c : r.client_hello->ciphers) ciphers.emplace_back(c);
    rec["client_hello"] = {
        {"max_version", r.client_hello->max_version},
        {"sni", r.client_hello->sni.empty() ? boost::json::value(nullptr)
                                            : boost::json::value(r.client_hello->sni)},
        {"ciphers", std::move(ciphers)}};
  }
  return rec;
}

void count_connection(const connection_record& r, metrics& m) {
  const std::string& l = r.listener;
  m.add("tlsbridge_connections_total",
        {{"listener", l}, {"outcome", std::string(to_string(r.what))}});
  m.add("tlsbridge_bytes_total", {{"listener", l}, {"direction", "in"}},
        static_cast<double>(r.bytes_in));
  m.add("tlsbridge_bytes_total", {{"listener", l}, {"direction", "out"}},
        static_cast<double>(r.bytes_out));
  if (r.front.tls)
    m.add("tlsbridge_tls_versions_total",
          {{"listener", l}, {"side", "front"}, {"version", r.front.version}});
  if (r.back && r.back->tls)
    m.add("tlsbridge_tls_versions_total",
          {{"listener", l}, {"side", "back"}, {"version", r.back->version}});
  if (r.what == outcome::tls_failed || (!r.front.tls_error.empty() && !r.front.tls))
    m.add("tlsbridge_handshake_failures_total",
          {{"listener", l},
           {"side", "front"},
           {"reason", r.front.tls_error.empty() ? "timeout or closed" : r.front.tls_error}});
  if (r.back && !r.back->tls_error.empty() && !r.back->tls)
    m.add("tlsbridge_handshake_failures_total",
          {{"listener", l}, {"side", "back"}, {"reason", r.back->tls_error}});
  auto findings = [&](const policy::decision* d, const char* side) {
    if (!d) return;
    for (std::size_t i = 0; i < d->findings.size(); ++i)
      m.add("tlsbridge_policy_findings_total",
            {{"listener", l},
             {"side", side},
             {"kind", d->findings[i].kind},
             {"action", i < d->actions.size() ? policy::to_string(d->actions[i]) : "log"}});
  };
  findings(r.front.decision, "front");
  if (r.back) findings(r.back->decision, "back");
  if (r.starttls_injection) m.add("tlsbridge_starttls_injections_total", {{"listener", l}});
  for (const auto& refused : refusals_of(r)) {
    if (refused.certificate)
      m.add("tlsbridge_certificate_refusals_total",
            {{"listener", l}, {"side", refused.reason == "client_certificate" ? "front" : "back"}});
    else
      m.add("tlsbridge_refusals_total", {{"listener", l}, {"reason", refused.reason}},
            static_cast<double>(refused.count));
  }
}

void count_event(const boost::json::object& event, const std::string& listener, metrics& m) {
  const auto* name = event.if_contains("event");
  const auto* status = event.if_contains("status");
  if (!name || !name->is_string() || name->get_string() != "http.request" || !status ||
      !(status->is_int64() || status->is_uint64()))
    return;
  const auto code = status->to_number<std::int64_t>();
  if (code < 100 || code > 599) return;
  m.add("tlsbridge_http_responses_total",
        {{"listener", listener}, {"class", std::to_string(code / 100) + "xx"}});
}

}  // namespace tlsbridge::proxy
