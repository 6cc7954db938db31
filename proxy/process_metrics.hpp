// The process_* series every Prometheus client library exports, read from /proc/self at every
// scrape (proc(5)): process_resident_memory_bytes, process_open_fds (with process_max_fds),
// process_cpu_seconds_total and process_start_time_seconds; and tlsbridge_build_info
// {version,commit,openssl} = 1, set once at start.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "proxy/build_info.hpp"
#include "proxy/metrics.hpp"

namespace tlsbridge::proxy {

struct process_figures {
  double resident_bytes = 0;
  double open_fds = 0;
  double max_fds = 0;
  double cpu_seconds = 0;
  double start_time = 0;  // Unix time
};

// From /proc/self/{stat,statm,fd}, /proc/stat's btime and RLIMIT_NOFILE; nullopt when /proc is
// not readable.
std::optional<process_figures> read_process_figures();

// The fields of a /proc/PID/stat line this needs: utime, stime, starttime (clock ticks).
struct stat_ticks {
  std::uint64_t utime = 0, stime = 0, starttime = 0;
};
// Parses after the last ')' (the command name may hold spaces and parentheses).
std::optional<stat_ticks> parse_proc_stat(std::string_view line);

void refresh_process_metrics(metrics& m);
void record_build_info(metrics& m, const build_identity& build);

}  // namespace tlsbridge::proxy
