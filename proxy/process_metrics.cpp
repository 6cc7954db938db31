#include "proxy/process_metrics.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>

namespace tlsbridge::proxy {

namespace {

std::string read_text(const char* path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// /proc/stat's "btime N": the boot time in Unix seconds.
std::optional<double> boot_time() {
  std::istringstream in(read_text("/proc/stat"));
  std::string key;
  while (in >> key) {
    if (key == "btime") {
      double t = 0;
      if (in >> t) return t;
      return std::nullopt;
    }
    in.ignore(1 << 16, '\n');
  }
  return std::nullopt;
}

}  // namespace

std::optional<stat_ticks> parse_proc_stat(std::string_view line) {
  const auto close = line.rfind(')');
  if (close == std::string_view::npos) return std::nullopt;
  // After "pid (comm)": field 3 (state) onwards; utime is field 14, stime 15, starttime 22.
  std::string_view rest = line.substr(close + 1);
  stat_ticks out;
  int field = 2;
  std::size_t pos = 0;
  while (pos < rest.size() && field < 22) {
    while (pos < rest.size() && rest[pos] == ' ') ++pos;
    std::size_t end = rest.find(' ', pos);
    if (end == std::string_view::npos) end = rest.size();
    ++field;
    std::uint64_t* into = field == 14   ? &out.utime
                          : field == 15 ? &out.stime
                          : field == 22 ? &out.starttime
                                        : nullptr;
    if (into) {
      auto [p, ec] = std::from_chars(rest.data() + pos, rest.data() + end, *into);
      if (ec != std::errc() || p != rest.data() + end) return std::nullopt;
    }
    pos = end;
  }
  if (field < 22) return std::nullopt;
  return out;
}

std::optional<process_figures> read_process_figures() {
  auto ticks = parse_proc_stat(read_text("/proc/self/stat"));
  if (!ticks) return std::nullopt;
  const double hz = static_cast<double>(::sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(::sysconf(_SC_PAGESIZE));
  process_figures f;
  f.cpu_seconds = static_cast<double>(ticks->utime + ticks->stime) / hz;
  if (auto boot = boot_time()) f.start_time = *boot + static_cast<double>(ticks->starttime) / hz;
  std::istringstream statm(read_text("/proc/self/statm"));
  double size = 0, resident = 0;
  if (statm >> size >> resident) f.resident_bytes = resident * page;
  std::error_code ec;
  for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end;
       it.increment(ec))
    ++f.open_fds;
  if (f.open_fds > 0) --f.open_fds;  // the directory iterator's own descriptor
  struct rlimit files {};
  if (::getrlimit(RLIMIT_NOFILE, &files) == 0) f.max_fds = static_cast<double>(files.rlim_cur);
  return f;
}

void refresh_process_metrics(metrics& m) {
  auto f = read_process_figures();
  if (!f) return;
  m.set("process_resident_memory_bytes", {}, f->resident_bytes);
  m.set("process_open_fds", {}, f->open_fds);
  m.set("process_max_fds", {}, f->max_fds);
  m.set("process_cpu_seconds_total", {}, f->cpu_seconds);
  m.set("process_start_time_seconds", {}, f->start_time);
}

void record_build_info(metrics& m, const build_identity& build) {
  m.set("tlsbridge_build_info",
        {{"version", build.version}, {"commit", build.commit}, {"openssl", build.openssl}}, 1);
}

}  // namespace tlsbridge::proxy
