// One instance per configuration: `[server] pid_file` (or `run --pid-file`) is opened, locked with
// flock(2) LOCK_EX|LOCK_NB and holds the PID of the process that serves. A second `run` with the
// same file finds the lock taken and stops before it binds anything — with SO_REUSEPORT it would
// otherwise bind the same ports and silently take half the connections. A file nobody holds a
// lock on (left by a crash or a SIGKILL) is stale and taken over.
//
// An flock lock belongs to the open file description, not to the process: a binary upgrade
// (proxy/binary_upgrade) passes the descriptor to the new process, which holds the lock from
// its first instruction on, and the lock lasts until the last holder closes it. The file is
// opened before the privilege drop (under the packaged unit /run/tlsbridge is root's) and written
// through the descriptor afterwards; at a clean exit it is removed, or emptied when the directory
// is no longer writable after the drop (systemd removes RuntimeDirectory= itself at stop).
#pragma once

#include <sys/types.h>

#include <filesystem>

namespace tlsbridge::proxy {

class pid_file {
 public:
  pid_file() = default;  // none configured
  // Opens (creating it 0644) and locks `path`, then writes our PID. Throws std::runtime_error
  // "already running as PID N (pid file PATH)" when another process holds the lock, or naming
  // the path and the reason when it cannot be opened or written.
  static pid_file acquire(const std::filesystem::path& path);
  // The descriptor an upgrading process handed over: the lock on it is already ours. Throws
  // std::runtime_error when `fd` is not a locked pid file (`fd` is then left to the caller).
  static pid_file adopt(int fd, const std::filesystem::path& path);

  ~pid_file();  // removes (or empties) the file unless handed over
  pid_file(pid_file&& other) noexcept;
  pid_file& operator=(pid_file&& other) noexcept;
  pid_file(const pid_file&) = delete;
  pid_file& operator=(const pid_file&) = delete;

  explicit operator bool() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  const std::filesystem::path& path() const { return path_; }

  // Rewrites the content with `pid` (a binary upgrade names its successor). Throws on failure.
  void write_pid(pid_t pid);
  // The new process owns the file now: close our descriptor (the lock stays with its copy)
  // without removing anything.
  void hand_over();

 private:
  void close_quietly();

  int fd_ = -1;
  std::filesystem::path path_;
};

// The PID a pid file names, or 0 when it is missing, empty or not a number.
pid_t read_pid(const std::filesystem::path& path);

// True when some process holds the lock on `path` (it is a live pid file, not a stale one).
bool pid_file_locked(const std::filesystem::path& path);

}  // namespace tlsbridge::proxy
