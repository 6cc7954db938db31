#include "proxy/pid_file.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>

#include <spdlog/spdlog.h>

namespace tlsbridge::proxy {

namespace {

std::string describe(const std::filesystem::path& path) {
  return "pid file " + path.string();
}

pid_t parse_pid(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  pid_t pid = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), pid);
  if (ec != std::errc() || end != text.data() + text.size() || pid <= 0) return 0;
  return pid;
}

pid_t read_pid_fd(int fd) {
  char buf[32];
  ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
  return n > 0 ? parse_pid(std::string_view(buf, static_cast<std::size_t>(n))) : 0;
}

}  // namespace

pid_file pid_file::acquire(const std::filesystem::path& path) {
  pid_file out;
  out.path_ = path;
  // O_NOFOLLOW: a symlink planted under the name must not make root truncate its target.
  out.fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0644);
  if (out.fd_ < 0)
    throw std::runtime_error("cannot open " + describe(path) + ": " + std::strerror(errno));
  if (::flock(out.fd_, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    if (error != EWOULDBLOCK)
      throw std::runtime_error("cannot lock " + describe(path) + ": " + std::strerror(error));
    // The holder writes its PID right after it locks: give it a moment when the file is empty.
    pid_t holder = 0;
    for (int i = 0; i < 20 && holder == 0; ++i) {
      holder = read_pid_fd(out.fd_);
      if (holder == 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    out.close_quietly();
    throw std::runtime_error("already running as PID " +
                             (holder ? std::to_string(holder) : std::string("?")) + " (" +
                             describe(path) + ")");
  }
  if (pid_t stale = read_pid_fd(out.fd_); stale != 0 && stale != ::getpid())
    spdlog::info("{}: PID {} no longer holds it, taken over", describe(path), stale);
  out.write_pid(::getpid());
  return out;
}

pid_file pid_file::adopt(int fd, const std::filesystem::path& path) {
  // Our copy of the open file description already holds the lock: taking it again succeeds at
  // once. Failing here means the descriptor is not what the old process said it was (and it is
  // not ours to close or remove).
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0)
    throw std::runtime_error("inherited " + describe(path) + " (fd " + std::to_string(fd) +
                             ") is not locked by us: " + std::strerror(errno));
  ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  pid_file out;
  out.fd_ = fd;
  out.path_ = path;
  return out;
}

pid_file::~pid_file() {
  if (fd_ < 0) return;
  // Remove the name only while it is still our file (someone may have replaced it by hand).
  struct stat by_fd {};
  struct stat by_name {};
  bool ours = ::fstat(fd_, &by_fd) == 0 && ::lstat(path_.c_str(), &by_name) == 0 &&
              by_fd.st_dev == by_name.st_dev && by_fd.st_ino == by_name.st_ino;
  // After the privilege drop the directory (root's /run/tlsbridge) may not be writable: an empty
  // file names nobody, and the unit's RuntimeDirectory= goes at stop anyway.
  if (ours && ::unlink(path_.c_str()) != 0) (void)::ftruncate(fd_, 0);
  close_quietly();
}

pid_file::pid_file(pid_file&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), path_(std::move(other.path_)) {}

pid_file& pid_file::operator=(pid_file&& other) noexcept {
  if (this != &other) {
    this->~pid_file();
    fd_ = std::exchange(other.fd_, -1);
    path_ = std::move(other.path_);
  }
  return *this;
}

void pid_file::write_pid(pid_t pid) {
  std::string text = std::to_string(pid) + "\n";
  if (::ftruncate(fd_, 0) != 0 ||
      ::pwrite(fd_, text.data(), text.size(), 0) != static_cast<ssize_t>(text.size()))
    throw std::runtime_error("cannot write " + describe(path_) + ": " + std::strerror(errno));
}

void pid_file::hand_over() {
  close_quietly();
}

void pid_file::close_quietly() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

pid_t read_pid(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) return 0;
  return parse_pid(line);
}

bool pid_file_locked(const std::filesystem::path& path) {
  // /proc/locks lists every flock lock by device and inode ("1: FLOCK ADVISORY WRITE 1234
  // 08:01:5678 0 EOF"). Reading it takes no lock of our own, so a process starting at this very
  // moment never sees us as the holder.
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return false;
  char id[64];
  std::snprintf(id, sizeof id, " %02x:%02x:%lu ", ::major(st.st_dev), ::minor(st.st_dev),
                static_cast<unsigned long>(st.st_ino));
  std::ifstream locks("/proc/locks");
  for (std::string line; std::getline(locks, line);)
    if (line.find(" FLOCK ") != std::string::npos && (line + " ").find(id) != std::string::npos)
      return true;
  return false;
}

}  // namespace tlsbridge::proxy
