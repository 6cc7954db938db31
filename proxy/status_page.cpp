#include "proxy/status_page.hpp"

#include <boost/json/serialize.hpp>
#include <string_view>

namespace tlsbridge::proxy {

namespace {

constexpr std::string_view page_head = R"html(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tlsbridge status</title>
<noscript><meta http-equiv="refresh" content="10"></noscript>
<style>
  :root { --fg:#1d2733; --muted:#5f6b7a; --line:#d9dee5; --bg:#f6f8fa; --ok:#1f883d;
          --bad:#cf222e; --warn:#bc4c00; --accent:#0969da; }
  * { box-sizing: border-box; }
  body { margin:0; font:14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif;
         color:var(--fg); background:var(--bg); }
  header { background:#24292f; color:#fff; padding:10px 20px; display:flex; gap:24px;
           align-items:baseline; flex-wrap:wrap; }
  header h1 { font-size:18px; margin:0; }
  header span { color:#c9d1d9; font-size:13px; }
  main { padding:16px 20px; display:grid; gap:16px;
         grid-template-columns:repeat(auto-fit, minmax(420px, 1fr)); }
  section { background:#fff; border:1px solid var(--line); border-radius:6px; padding:12px 16px; }
  section.wide { grid-column:1 / -1; }
  h2 { font-size:15px; margin:0 0 8px; }
  table { border-collapse:collapse; width:100%; }
  th, td { text-align:left; padding:4px 8px; border-bottom:1px solid var(--line);
           vertical-align:top; }
  th { color:var(--muted); font-weight:600; font-size:12px; }
  td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; }
  .badge { display:inline-block; padding:0 8px; border-radius:10px; color:#fff; font-size:12px; }
  .up { background:var(--ok); } .down { background:var(--bad); } .warn { color:var(--warn); }
  .bad { color:var(--bad); font-weight:600; } .muted { color:var(--muted); }
  .sessions { display:flex; gap:12px; flex-wrap:wrap; }
  .sessions div { border:1px solid var(--line); border-radius:6px; padding:6px 14px;
                  min-width:80px; text-align:center; }
  .sessions b { display:block; font-size:22px; }
  .empty { color:var(--muted); font-style:italic; }
  #state.stale { color:#ffb4ab; }
</style>
</head>
<body>
<header>
  <h1>tlsbridge status</h1>
  <span id="build"></span>
  <span id="uptime"></span>
  <span id="state"></span>
</header>
<main>
  <section>
    <h2>Active sessions</h2>
    <div class="sessions" id="sessions"></div>
  </section>
  <section>
    <h2>TLS versions, last hour</h2>
    <svg id="tls-chart" width="420" height="170" role="img"
         aria-label="Connections by TLS version, front and back leg"></svg>
  </section>
  <section class="wide">
    <h2>Listeners</h2>
    <table id="listeners"><thead><tr><th>Name</th><th>Protocol</th><th>Listen</th>
      <th>Front TLS (profile)</th><th>Back TLS (profile)</th><th class="num">Active</th>
    </tr></thead><tbody></tbody></table>
  </section>
  <section>
    <h2>Backends</h2>
    <table id="backends"><thead><tr><th>Listener</th><th>Address</th><th>Health</th>
      <th class="num">Active</th></tr></thead><tbody></tbody></table>
  </section>
  <section>
    <h2>Own certificates</h2>
    <table id="certificates"><thead><tr><th>Subject</th><th>Not after</th>
      <th class="num">Days left</th></tr></thead><tbody></tbody></table>
  </section>
  <section class="wide">
    <h2>ACME</h2>
    <table id="acme"><thead><tr><th>Names</th><th>Not after</th><th>Last attempt</th>
      <th>Result</th><th>Next attempt</th></tr></thead><tbody></tbody></table>
  </section>
  <section class="wide">
    <h2>Last refusals</h2>
    <table id="refusals"><thead><tr><th>Time (UTC)</th><th>Client</th><th>Listener</th>
      <th>Reason</th><th>Detail</th></tr></thead><tbody></tbody></table>
  </section>
</main>
<script id="status-data" type="application/json">)html";

constexpr std::string_view page_tail = R"html(</script>
<script>
"use strict";
const SVG = "http://www.w3.org/2000/svg";

function cell(row, text, cls) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "" : String(text);
  if (cls) td.className = cls;
  row.appendChild(td);
  return td;
}

function fill(id, items, columns, rowClass, emptyText) {
  const body = document.querySelector("#" + id + " tbody");
  body.replaceChildren();
  if (!items.length) {
    const row = body.insertRow();
    const td = cell(row, emptyText, "empty");
    td.colSpan = document.querySelectorAll("#" + id + " th").length;
    return;
  }
  for (const item of items) {
    const row = body.insertRow();
    if (rowClass) row.className = rowClass;
    for (const column of columns) column(row, item);
  }
}

function duration(seconds) {
  const d = Math.floor(seconds / 86400), h = Math.floor(seconds % 86400 / 3600),
        m = Math.floor(seconds % 3600 / 60);
  return (d ? d + "d " : "") + h + "h " + m + "m";
}

function chart(tls) {
  const svg = document.getElementById("tls-chart");
  svg.replaceChildren();
  const names = Object.keys(tls.front);
  const legs = [["front", "Front (clients)"], ["back", "Back (legacy host)"]];
  let max = 1;
  for (const [leg] of legs) for (const v of names) max = Math.max(max, tls[leg][v]);
  const left = 60, width = 340, barH = 11, gap = 3;
  let y = 14;
  const text = (x, yy, s, anchor, cls) => {
    const t = document.createElementNS(SVG, "text");
    t.setAttribute("x", x); t.setAttribute("y", yy); t.setAttribute("font-size", "11");
    if (anchor) t.setAttribute("text-anchor", anchor);
    if (cls) t.setAttribute("fill", cls);
    t.textContent = s;
    svg.appendChild(t);
  };
  for (const [leg, label] of legs) {
    text(0, y, label, null, "#5f6b7a");
    y += 6;
    for (const v of names) {
      const n = tls[leg][v];
      const legacy = v === "TLSv1" || v === "TLSv1.1" || v === "other";
      const bar = document.createElementNS(SVG, "rect");
      bar.setAttribute("x", left); bar.setAttribute("y", y);
      bar.setAttribute("height", barH);
      bar.setAttribute("width", n ? Math.max(2, width * n / max) : 0);
      bar.setAttribute("fill", legacy ? "#bc4c00" : "#0969da");
      bar.setAttribute("data-version", v); bar.setAttribute("data-leg", leg);
      svg.appendChild(bar);
      text(left - 6, y + barH - 2, v, "end");
      text(left + (n ? Math.max(2, width * n / max) : 0) + 4, y + barH - 2, String(n));
      y += barH + gap;
    }
    y += 10;
  }
  svg.setAttribute("height", y);
}

function render(s) {
  document.getElementById("build").textContent =
      "version " + s.version + " (commit " + s.commit + ") · " + s.openssl;
  document.getElementById("uptime").textContent =
      "up " + duration(s.uptime_seconds) + " · updated " + s.generated;
  const state = document.getElementById("state");
  state.textContent = s.draining ? "DRAINING" : "";
  state.className = "";

  const sessions = document.getElementById("sessions");
  sessions.replaceChildren();
  for (const [protocol, n] of Object.entries(s.sessions)) {
    const box = document.createElement("div");
    const b = document.createElement("b");
    b.textContent = String(n);
    box.appendChild(b);
    box.appendChild(document.createTextNode(protocol));
    box.id = "sessions-" + protocol;
    sessions.appendChild(box);
  }

  const tlsText = (mode, profile) => mode === "none" ? "none" : mode + " (" + profile + ")";
  fill("listeners", s.listeners, [
    (r, l) => cell(r, l.name), (r, l) => cell(r, l.protocol), (r, l) => cell(r, l.listen),
    (r, l) => cell(r, tlsText(l.tls, l.tls_profile)),
    (r, l) => cell(r, tlsText(l.backend_tls, l.backend_tls_profile)),
    (r, l) => cell(r, l.active, "num")], "listener", "no listener");

  fill("backends", s.backends, [
    (r, b) => cell(r, b.listener), (r, b) => cell(r, b.address),
    (r, b) => {
      const td = cell(r, "");
      const badge = document.createElement("span");
      badge.className = "badge " + (b.up ? "up" : "down");
      badge.textContent = b.up ? "up" : "down";
      td.appendChild(badge);
      if (!b.health_check) td.appendChild(document.createTextNode(" (passive)"));
    },
    (r, b) => cell(r, b.active, "num")], "backend", "no backend");

  fill("certificates", s.certificates, [
    (r, c) => { cell(r, c.subject).title = c.file; }, (r, c) => cell(r, c.not_after),
    (r, c) => cell(r, c.days_left, "num" + (c.days_left < 14 ? " bad" : c.days_left < 30 ? " warn" : ""))],
    "certificate", "no certificate");

  const utc = (t) => t ? t.replace("T", " ").replace("Z", "") : "";
  fill("acme", s.acme || [], [
    (r, a) => cell(r, a.names.join(", ")),
    (r, a) => cell(r, a.placeholder ? "placeholder" : utc(a.not_after), a.placeholder ? "warn" : ""),
    (r, a) => cell(r, utc(a.last_attempt)),
    (r, a) => cell(r, a.result === "failed" ? "failed at " + a.step + ": " + a.error : a.result,
                   a.result === "failed" ? "bad" : ""),
    (r, a) => cell(r, utc(a.next_attempt))], "acme", "no acme entry in [[certs]]");

  fill("refusals", s.refusals, [
    (r, x) => cell(r, x.time.replace("T", " ").replace("Z", "")), (r, x) => cell(r, x.client),
    (r, x) => cell(r, x.listener), (r, x) => cell(r, x.reason, "bad"),
    (r, x) => cell(r, x.detail, "muted")], "refusal", "no refusal since the start");

  chart(s.tls_versions);
}

render(JSON.parse(document.getElementById("status-data").textContent));

async function refresh() {
  try {
    const response = await fetch("status.json", {cache: "no-store"});
    if (!response.ok) throw new Error("HTTP " + response.status);
    render(await response.json());
  } catch (e) {
    const state = document.getElementById("state");
    state.textContent = "not updated: " + e.message;
    state.className = "stale";
  }
}
setInterval(refresh, 5000);
</script>
</body>
</html>
)html";

}  // namespace

std::string status_page_html(const boost::json::object& status) {
  // Inside <script> only "</script" could end the element early: every '<' of the data is
  // written as the JSON escape \u003c, which JSON.parse reads back as '<'.
  const std::string data = boost::json::serialize(status);
  std::string out(page_head);
  out.reserve(page_head.size() + data.size() + page_tail.size() + 64);
  for (char c : data) {
    if (c == '<')
      out += "\\u003c";
    else
      out += c;
  }
  out += page_tail;
  return out;
}

}  // namespace tlsbridge::proxy
