#include <boost/json/value.hpp>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "report/report_render.hpp"
#include "report/summary_reading.hpp"

namespace tlsbridge::report {

namespace json = boost::json;

namespace {

std::string inline_counts(const json::object& counts, std::size_t max = 6) {
  return report::inline_counts(counts, max, "...", "-",
                               [](std::string& out, std::string_view key) { out.append(key); });
}

void heading(std::string& out, std::string_view title) {
  out.append("\n").append(title).append("\n").append(title.size(), '-').append("\n");
}

void counts_table(std::string& out, const json::object& counts) {
  if (counts.empty()) {
    out += "  (none)\n";
    return;
  }
  std::size_t rows = 0;
  for (const auto& kv : counts) {
    if (rows++ == rendered_rows) {
      out += "  ...\n";
      break;
    }
    char line[256];
    std::snprintf(line, sizeof line, "  %-40.*s %10llu\n", static_cast<int>(kv.key().size()),
                  kv.key().data(), static_cast<unsigned long long>(count_of(&kv.value())));
    out += line;
  }
}

std::string weakest(const json::value* w) {
  if (!w || !w->is_object()) return "none";
  const auto& o = w->get_object();
  return std::string(text_of(o.if_contains("kind"))) + " (" +
         std::string(text_of(o.if_contains("detail"))) + ")";
}

void peers(std::string& out, const json::object& peers, bool client_side) {
  if (peers.empty()) {
    out += "  (none)\n";
    return;
  }
  std::size_t rows = 0;
  for (const auto& kv : peers) {
    if (rows++ == rendered_rows) {
      out += "  ...\n";
      break;
    }
    const auto& p = kv.value().get_object();
    out.append("  ")
        .append(kv.key())
        .append("  ")
        .append(std::to_string(count_of(p.if_contains("connections"))))
        .append(" connections\n");
    out.append("    tls       ").append(inline_counts(member_object(p, "tls"))).append("\n");
    out.append("    ciphers   ").append(inline_counts(member_object(p, "ciphers"), 3)).append("\n");
    out.append("    weakest   ").append(weakest(p.if_contains("weakest_finding"))).append("\n");
    if (!member_object(p, "refusals").empty())
      out.append("    refusals  ").append(inline_counts(member_object(p, "refusals"))).append("\n");
    if (client_side && !member_object(p, "failed_handshakes").empty())
      out.append("    failed handshakes, highest version offered  ")
          .append(inline_counts(member_object(p, "failed_handshakes")))
          .append("\n");
  }
}

}  // namespace

std::string render_text(const json::object& s) {
  std::string out = "tlsbridge audit report\n";
  const auto& period = member_object(s, "period");
  const auto& records = member_object(s, "records");
  const auto& conns = member_object(s, "connections");
  out.append("period      ")
      .append(text_of(period.if_contains("first_ts")))
      .append(" .. ")
      .append(text_of(period.if_contains("last_ts")));
  if (auto* since = period.if_contains("since"); since && since->is_string())
    out.append(" (since ").append(since->get_string()).append(")");
  out.append("\nrecords     ")
      .append(std::to_string(count_of(records.if_contains("read"))))
      .append(" read, ")
      .append(std::to_string(count_of(records.if_contains("unreadable"))))
      .append(" unreadable, ")
      .append(std::to_string(count_of(records.if_contains("skipped_before_since"))))
      .append(" before --since\n");
  out.append("connections ")
      .append(std::to_string(count_of(conns.if_contains("total"))))
      .append("\n");

  heading(out, "Outcomes");
  counts_table(out, member_object(conns, "outcomes"));
  heading(out, "Front TLS (clients)");
  counts_table(out, member_object(conns, "front_tls"));
  heading(out, "Back TLS (backends)");
  counts_table(out, member_object(conns, "backend_tls"));
  const auto& failed = member_object(s, "failed_handshakes");
  heading(out, "Failed front handshakes by the highest version offered");
  out.append("  total ")
      .append(std::to_string(count_of(failed.if_contains("total"))))
      .append(", too old for TLS 1.2: ")
      .append(std::to_string(count_of(failed.if_contains("too_old_for_tls12"))))
      .append("\n");
  counts_table(out, member_object(failed, "by_max_version"));
  heading(out, "Refusals by reason");
  counts_table(out, member_object(s, "refusals"));
  heading(out, "Client networks");
  peers(out, member_object(s, "client_networks"), true);
  heading(out, "Backends");
  peers(out, member_object(s, "backends"), false);
  const auto& auth = member_object(s, "auth_failures");
  heading(out, "Authentication failures by user");
  counts_table(out, member_object(auth, "by_user"));
  heading(out, "Authentication failures by IP");
  counts_table(out, member_object(auth, "by_ip"));
  heading(out, "ActiveSync devices by type");
  const auto& devices = member_object(member_object(s, "activesync"), "by_device_type");
  if (devices.empty()) out += "  (none)\n";
  for (const auto& kv : devices) {
    const auto& d = kv.value().get_object();
    char line[256];
    std::snprintf(line, sizeof line, "  %-30.*s %8llu devices %10llu requests\n",
                  static_cast<int>(kv.key().size()), kv.key().data(),
                  static_cast<unsigned long long>(count_of(d.if_contains("devices"))),
                  static_cast<unsigned long long>(count_of(d.if_contains("requests"))));
    out += line;
  }
  return out;
}

}  // namespace tlsbridge::report
