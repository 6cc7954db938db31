#include "report/record_fields.hpp"

#include <boost/json/value.hpp>
#include <string_view>

namespace tlsbridge::report {

namespace json = boost::json;

namespace {

void copy_string(const json::object& o, std::string_view key, std::string& out) {
  if (auto* v = o.if_contains(key))
    if (auto* s = v->if_string()) out.assign(s->data(), s->size());
}

const json::object* member_object(const json::object& o, std::string_view key) {
  if (auto* v = o.if_contains(key)) return v->if_object();
  return nullptr;
}

void leg_of(const json::object* leg, leg_fields& out) {
  if (!leg) return;
  out.present = true;
  copy_string(*leg, "tls", out.tls);
  copy_string(*leg, "cipher", out.cipher);
  copy_string(*leg, "addr", out.addr);
  const auto* chain = member_object(*leg, "chain");
  if (!chain) return;
  out.chain = true;
  copy_string(*chain, "verdict", out.verdict);
  auto* findings = chain->if_contains("findings");
  if (!findings || !findings->is_array()) return;
  for (const auto& f : findings->get_array()) {
    if (!f.is_object()) continue;
    auto& finding = out.add_finding();
    copy_string(f.get_object(), "kind", finding.kind);
    copy_string(f.get_object(), "detail", finding.detail);
  }
}

}  // namespace

void fields_of(const json::object& record, record_fields& out) {
  out.clear();
  copy_string(record, "ts", out.ts);
  if (auto* v = record.if_contains("v"); v && v->is_int64()) out.v = v->get_int64();
  copy_string(record, "event", out.event);
  copy_string(record, "client", out.client);
  if (out.client.empty()) copy_string(record, "client_ip", out.client);  // auth.* records
  copy_string(record, "outcome", out.outcome);
  copy_string(record, "user", out.user);
  leg_of(member_object(record, "front"), out.front);
  leg_of(member_object(record, "backend"), out.backend);
  if (const auto* refusals = member_object(record, "refusals"))
    for (const auto& kv : *refusals)
      if (kv.value().is_int64()) {
        auto& r = out.add_refusal();
        r.first.assign(kv.key().data(), kv.key().size());
        r.second = kv.value().get_int64();
      }
  if (const auto* hello = member_object(record, "client_hello")) {
    out.client_hello = true;
    copy_string(*hello, "max_version", out.max_version);
  }
  if (const auto* as = member_object(record, "activesync")) {
    out.activesync = true;
    copy_string(*as, "device_type", out.device_type);
    copy_string(*as, "device_id", out.device_id);
  }
}

}  // namespace tlsbridge::report
