// The certificate watch ([server] watch_certs): when a certificate, key or CA file the config reads
// changes — rewritten in place, or a new file renamed over it, or a symlink re-pointed as
// certbot does with live/ -> archive/ — the proxy reloads, exactly as on SIGHUP.
//
// It polls stat(2) every 500 ms rather than using inotify(7):
//  * stat follows symlinks, so a re-pointed certbot link is a new inode like any renamed file,
//    with no watch on the link's directory and the archive/ it points into;
//  * stat needs only search permission on the directories, which the service user keeps after
//    the privilege drop (Debian's /etc/ssl/private is 0710 root:ssl-cert); inotify_add_watch
//    needs read permission on the directory;
//  * it sees changes on file systems that raise no inotify events for them (NFS, a file changed
//    by another host or container);
//  * its cost is a few stat calls per second for a handful of files.
//
// A rewrite is several writes, and certbot writes the certificate and the key one after the
// other: the reload waits until no watched file has changed for `settle` (1 s). A reload that
// fails on a half-written file leaves the running config in place; the next change retries.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

namespace tlsbridge::proxy {

// What stat(2) says about one file (through symlinks); all zero when it does not exist.
struct file_state {
  bool exists = false;
  dev_t device = 0;
  ino_t inode = 0;
  off_t size = 0;
  std::int64_t mtime_ns = 0;
  std::int64_t ctime_ns = 0;
  bool operator==(const file_state&) const = default;
};
using file_states = std::map<std::filesystem::path, file_state>;

file_states stat_files(const std::vector<std::filesystem::path>& files);

// The files whose state differs between two snapshots (present in either), in path order.
std::vector<std::filesystem::path> changed_files(const file_states& before,
                                                 const file_states& after);

// The watch's decision, pure: fed a snapshot at every poll, it answers the changed files once
// they differ from the baseline (what the last reload read) and have stayed the same for
// `settle`; that snapshot becomes the new baseline, so a failed reload is not repeated until the
// files change again.
class change_debouncer {
 public:
  using clock = std::chrono::steady_clock;
  explicit change_debouncer(clock::duration settle) : settle_(settle) {}

  // Follows exactly `current`'s files: a file already followed keeps its baseline (a change still
  // pending survives a reload that did not come from the watch); a new one starts from `current`.
  void follow(const file_states& current);
  std::vector<std::filesystem::path> observe(const file_states& now, clock::time_point at);

 private:
  clock::duration settle_;
  file_states baseline_;
  file_states last_seen_;
  clock::time_point last_change_{};
};

// The poll on the main io_context. follow() with an empty list stops polling.
class cert_watch {
 public:
  using on_change = std::function<void(const std::vector<std::filesystem::path>&)>;
  static constexpr std::chrono::milliseconds poll_interval{500};
  static constexpr std::chrono::milliseconds settle{1000};

  cert_watch(boost::asio::io_context& io, on_change callback)
      : timer_(io), callback_(std::move(callback)) {}

  void follow(std::vector<std::filesystem::path> files);
  void stop();

 private:
  void arm();

  boost::asio::steady_timer timer_;
  on_change callback_;
  std::vector<std::filesystem::path> files_;
  change_debouncer debouncer_{settle};
  bool armed_ = false;
};

}  // namespace tlsbridge::proxy
