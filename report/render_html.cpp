#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "report/report_render.hpp"
#include "report/summary_reading.hpp"

namespace tlsbridge::report {

namespace json = boost::json;

namespace {

void escape(std::string& out, std::string_view text) {
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
}

std::string esc(std::string_view text) {
  std::string out;
  escape(out, text);
  return out;
}

// Red for what the migration is about (TLS 1.0/1.1, refusals), grey for the rest.
std::string_view bar_colour(std::string_view key) {
  if (key == "TLSv1" || key == "TLSv1.1" || key == "SSLv3") return "#c0392b";
  if (key == "TLSv1.2" || key == "TLSv1.3" || key == "ok") return "#2e7d32";
  return "#5b6f82";
}

// A horizontal bar chart of a tally, one bar per key (at most rendered_rows), as inline SVG.
void svg_bars(std::string& out, const json::object& counts, std::string_view title) {
  out.append("<figure><figcaption>").append(esc(title)).append("</figcaption>");
  if (counts.empty()) {
    out += "<p class=\"none\">none</p></figure>\n";
    return;
  }
  std::uint64_t max = 1;
  for (const auto& kv : counts) max = std::max(max, count_of(&kv.value()));
  const std::size_t rows = std::min(counts.size(), rendered_rows);
  constexpr int row_h = 22, label_w = 230, bar_w = 360, width = label_w + bar_w + 90;
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%zu\" "
                "role=\"img\" aria-label=\"%s\">",
                width, rows * row_h + 4, esc(title).c_str());
  out += buf;
  std::size_t i = 0;
  for (const auto& kv : counts) {
    if (i == rows) break;
    const auto n = count_of(&kv.value());
    const int w = std::max(1, static_cast<int>(static_cast<double>(n) / max * bar_w));
    const int y = static_cast<int>(i * row_h) + 2;
    std::string label(kv.key());
    if (label.size() > 34) label = label.substr(0, 33) + "…";
    std::snprintf(buf, sizeof buf,
                  "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%s</text>"
                  "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%.*s\"/>"
                  "<text x=\"%d\" y=\"%d\">%llu</text>",
                  label_w - 6, y + 15, esc(label).c_str(), label_w, y, w, row_h - 6,
                  static_cast<int>(bar_colour(kv.key()).size()), bar_colour(kv.key()).data(),
                  label_w + w + 6, y + 15, static_cast<unsigned long long>(n));
    out += buf;
    ++i;
  }
  out += "</svg></figure>\n";
}

std::string inline_counts(const json::object& counts, std::size_t max = 6) {
  return report::inline_counts(counts, max, "…", "–",
                               [](std::string& out, std::string_view key) { escape(out, key); });
}

std::string weakest(const json::value* w) {
  if (!w || !w->is_object()) return "–";
  const auto& o = w->get_object();
  return "<b>" + esc(text_of(o.if_contains("kind"))) + "</b> " +
         esc(text_of(o.if_contains("detail")));
}

void peers_table(std::string& out, const json::object& peers, std::string_view title,
                 bool client_side) {
  out.append("<h2>").append(esc(title)).append("</h2>\n");
  if (peers.empty()) {
    out += "<p class=\"none\">none</p>\n";
    return;
  }
  out += "<table><tr><th>";
  out += client_side ? "network" : "backend";
  out +=
      "</th><th>connections</th><th>TLS</th><th>ciphers</th><th>weakest chain finding</th>"
      "<th>refusals</th>";
  if (client_side) out += "<th>failed handshakes (highest version offered)</th>";
  out += "</tr>\n";
  std::size_t rows = 0;
  for (const auto& kv : peers) {
    if (rows++ == rendered_rows) break;
    const auto& p = kv.value().get_object();
    out.append("<tr><td>")
        .append(esc(kv.key()))
        .append("</td><td class=\"n\">")
        .append(std::to_string(count_of(p.if_contains("connections"))))
        .append("</td><td>")
        .append(inline_counts(member_object(p, "tls")))
        .append("</td><td>")
        .append(inline_counts(member_object(p, "ciphers"), 3))
        .append("</td><td>")
        .append(weakest(p.if_contains("weakest_finding")))
        .append("</td><td>")
        .append(inline_counts(member_object(p, "refusals")))
        .append("</td>");
    if (client_side)
      out.append("<td>")
          .append(inline_counts(member_object(p, "failed_handshakes")))
          .append("</td>");
    out += "</tr>\n";
  }
  out += "</table>\n";
}

constexpr std::string_view style =
    "body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#1d2733}"
    "h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ccd}"
    "table{border-collapse:collapse}td,th{border:1px solid #ccd;padding:3px 8px;text-align:left;"
    "vertical-align:top}td.n{text-align:right}figure{display:inline-block;margin:0 2em 1em 0}"
    "figcaption{font-weight:600;margin-bottom:4px}svg text{font:12px sans-serif}"
    ".none{color:#777}";

}  // namespace

std::string render_html(const json::object& s) {
  const auto& period = member_object(s, "period");
  const auto& records = member_object(s, "records");
  const auto& conns = member_object(s, "connections");
  const auto& failed = member_object(s, "failed_handshakes");
  const auto& auth = member_object(s, "auth_failures");
  std::string out;
  out.reserve(64 * 1024);
  out.append(
         "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
         "<title>tlsbridge audit report</title><style>")
      .append(style)
      .append("</style></head><body>\n<h1>tlsbridge audit report</h1>\n<p>")
      .append(esc(text_of(period.if_contains("first_ts"))))
      .append(" – ")
      .append(esc(text_of(period.if_contains("last_ts"))))
      .append(": <b>")
      .append(std::to_string(count_of(conns.if_contains("total"))))
      .append("</b> connections, ")
      .append(std::to_string(count_of(records.if_contains("read"))))
      .append(" records read, ")
      .append(std::to_string(count_of(records.if_contains("unreadable"))))
      .append(" unreadable lines. <b>")
      .append(std::to_string(count_of(failed.if_contains("too_old_for_tls12"))))
      .append("</b> failed handshakes from clients too old for TLS 1.2.</p>\n");

  out += "<h2>TLS</h2>\n";
  svg_bars(out, member_object(conns, "front_tls"), "Front TLS (clients)");
  svg_bars(out, member_object(conns, "backend_tls"), "Back TLS (backends)");
  svg_bars(out, member_object(failed, "by_max_version"),
           "Failed front handshakes by highest version offered");
  out += "<h2>Outcomes and refusals</h2>\n";
  svg_bars(out, member_object(conns, "outcomes"), "Outcomes");
  svg_bars(out, member_object(s, "refusals"), "Refusals by reason");
  peers_table(out, member_object(s, "client_networks"), "Client networks", true);
  peers_table(out, member_object(s, "backends"), "Backends and partners", false);
  out += "<h2>Authentication failures</h2>\n";
  svg_bars(out, member_object(auth, "by_user"), "By user");
  svg_bars(out, member_object(auth, "by_ip"), "By IP");
  out += "<h2>ActiveSync devices</h2>\n";
  json::object devices;
  for (const auto& kv : member_object(member_object(s, "activesync"), "by_device_type"))
    devices[kv.key()] = count_of(kv.value().get_object().if_contains("devices"));
  svg_bars(out, devices, "Devices by type");
  out += "</body></html>\n";
  return out;
}

}  // namespace tlsbridge::report
