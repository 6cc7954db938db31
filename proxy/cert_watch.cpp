#include "proxy/cert_watch.hpp"

#include <sys/stat.h>

#include <algorithm>

namespace tlsbridge::proxy {

file_states stat_files(const std::vector<std::filesystem::path>& files) {
  file_states out;
  for (const auto& file : files) {
    file_state state;
    struct stat st {};
    if (::stat(file.c_str(), &st) == 0) {
      state.exists = true;
      state.device = st.st_dev;
      state.inode = st.st_ino;
      state.size = st.st_size;
      state.mtime_ns = std::int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec;
      state.ctime_ns = std::int64_t{st.st_ctim.tv_sec} * 1'000'000'000 + st.st_ctim.tv_nsec;
    }
    out.emplace(file, state);
  }
  return out;
}

std::vector<std::filesystem::path> changed_files(const file_states& before,
                                                 const file_states& after) {
  std::vector<std::filesystem::path> out;
  for (const auto& [file, state] : after) {
    const auto old = before.find(file);
    if (old == before.end() || !(old->second == state)) out.push_back(file);
  }
  for (const auto& [file, state] : before)
    if (!after.count(file)) out.push_back(file);
  std::sort(out.begin(), out.end());
  return out;
}

void change_debouncer::follow(const file_states& current) {
  file_states baseline, last_seen;
  for (const auto& [file, state] : current) {
    const auto kept = baseline_.find(file);
    baseline.emplace(file, kept != baseline_.end() ? kept->second : state);
    const auto seen = last_seen_.find(file);
    last_seen.emplace(file, seen != last_seen_.end() ? seen->second : state);
  }
  baseline_ = std::move(baseline);
  last_seen_ = std::move(last_seen);
}

std::vector<std::filesystem::path> change_debouncer::observe(const file_states& now,
                                                             clock::time_point at) {
  if (!(now == last_seen_)) {
    last_seen_ = now;
    last_change_ = at;
  }
  if (now == baseline_ || at - last_change_ < settle_) return {};
  auto changed = changed_files(baseline_, now);
  baseline_ = now;
  return changed;
}

void cert_watch::follow(std::vector<std::filesystem::path> files) {
  files_ = std::move(files);
  debouncer_.follow(stat_files(files_));
  if (files_.empty())
    stop();
  else if (!armed_)
    arm();
}

void cert_watch::stop() {
  files_.clear();
  timer_.cancel();
  armed_ = false;
}

void cert_watch::arm() {
  armed_ = true;
  timer_.expires_after(poll_interval);
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;  // cancelled: stop() or the watch is gone
    armed_ = false;
    if (files_.empty()) return;
    auto changed = debouncer_.observe(stat_files(files_), change_debouncer::clock::now());
    if (!changed.empty()) callback_(changed);  // may follow() a new list, and arm
    if (!armed_ && !files_.empty()) arm();
  });
}

}  // namespace tlsbridge::proxy
