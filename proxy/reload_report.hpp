// The result of every reload — from SIGHUP or from the certificate watch, which share one path in
// server.cpp — told once: one log line (success: what changed; failure: why) and the gauges
// tlsbridge_last_reload_success (0/1, 1 at start) and tlsbridge_last_reload_timestamp_seconds
// beside the counter tlsbridge_config_reloads_total{result}.
#pragma once

#include <filesystem>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/metrics.hpp"

namespace tlsbridge::proxy {

// What a successful reload changed, as one line: the listener count, the listeners added and
// removed, and the files (config, certificates, keys, CAs) whose content changed on disk.
std::string describe_reload(const std::set<std::string>& listeners_before,
                            const std::set<std::string>& listeners_after,
                            const std::vector<std::filesystem::path>& files_changed);

// "a, b, c".
std::string join_paths(const std::vector<std::filesystem::path>& files);

// At start: the running config counts as a successful load.
void record_start(metrics& m);
// One reload's result: the log line and the metrics. `trigger` says what asked for it ("SIGHUP",
// "certificate change: FILE, ..."); `detail` is describe_reload's line or every error joined.
void record_reload(metrics& m, std::string_view trigger, bool success, std::string_view detail);

}  // namespace tlsbridge::proxy
