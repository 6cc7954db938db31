#include "proxy/reload_report.hpp"

#include <chrono>

#include <spdlog/spdlog.h>

namespace tlsbridge::proxy {

namespace {

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

std::string join_paths(const std::vector<std::filesystem::path>& files) {
  std::vector<std::string> names;
  for (const auto& f : files) names.push_back(f.string());
  return joined(names);
}

std::string describe_reload(const std::set<std::string>& listeners_before,
                            const std::set<std::string>& listeners_after,
                            const std::vector<std::filesystem::path>& files_changed) {
  std::vector<std::string> added, removed;
  for (const auto& name : listeners_after)
    if (!listeners_before.count(name)) added.push_back(name);
  for (const auto& name : listeners_before)
    if (!listeners_after.count(name)) removed.push_back(name);
  std::string out = std::to_string(listeners_after.size()) + " listener(s)";
  if (!added.empty()) out += "; added " + joined(added);
  if (!removed.empty()) out += "; removed " + joined(removed);
  if (files_changed.empty())
    out += "; no file changed";
  else
    out += "; changed " + join_paths(files_changed);
  return out;
}

void record_start(metrics& m) {
  m.set("tlsbridge_last_reload_success", {}, 1);
  m.set("tlsbridge_last_reload_timestamp_seconds", {}, unix_now());
}

void record_reload(metrics& m, std::string_view trigger, bool success, std::string_view detail) {
  if (success)
    spdlog::info("reload done ({}): {}", trigger, detail);
  else
    spdlog::error("reload rejected ({}): {}; the running config stays", trigger, detail);
  m.add("tlsbridge_config_reloads_total", {{"result", success ? "success" : "failure"}});
  m.set("tlsbridge_last_reload_success", {}, success ? 1 : 0);
  m.set("tlsbridge_last_reload_timestamp_seconds", {}, unix_now());
}

}  // namespace tlsbridge::proxy
