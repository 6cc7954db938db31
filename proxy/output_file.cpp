#include "proxy/output_file.hpp"

#include <fcntl.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <system_error>

namespace tlsbridge::proxy {
namespace {

namespace fs = std::filesystem;

bool trusted(uid_t uid, const output_owners& owners) {
  return std::find(owners.uids.begin(), owners.uids.end(), uid) != owners.uids.end();
}

std::string octal(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

std::string quoted(const fs::path& p) {
  return "\"" + p.string() + "\"";
}

// A directory another user can write to lets that user rename our file away and put a symlink
// or a hard link to any file in its place; the sticky bit (as on /tmp) stops renaming and
// unlinking what is not theirs, and a name they create first is caught by file_problem.
std::string directory_problem(const fs::path& dir, const struct stat& st,
                              const output_owners& owners) {
  if (!S_ISDIR(st.st_mode)) return "directory " + quoted(dir) + " is not a directory";
  if (!trusted(st.st_uid, owners))
    return "directory " + quoted(dir) + " is owned by uid " + std::to_string(st.st_uid) +
           ", not root or the service user: its owner could plant a symlink or a link there";
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0 && (st.st_mode & S_ISVTX) == 0)
    return "directory " + quoted(dir) + " (mode " + octal(st.st_mode) +
           ") is writable by group or others without the sticky bit: another user could "
           "replace the file with a symlink or a hard link (chmod go-w)";
  return {};
}

// What was opened (or found under the name) must be our own plain file: a hard link (two names)
// could be one to /etc/shadow, a FIFO or device is not a log, and a file another user owns or may
// write holds records that user can forge.
std::string file_problem(const fs::path& path, const struct stat& st, const output_owners& owners) {
  // The null device (Linux: character device 1:3) is how an operator discards a sink: nothing
  // written there can be read back, forged or redirected, so it passes as it is.
  if (S_ISCHR(st.st_mode) && ::major(st.st_rdev) == 1 && ::minor(st.st_rdev) == 3) return {};
  if (S_ISDIR(st.st_mode)) return quoted(path) + " is a directory, not a file";
  if (!S_ISREG(st.st_mode)) return quoted(path) + " is not a regular file";
  if (st.st_nlink != 1)
    return quoted(path) + " has " + std::to_string(st.st_nlink) +
           " hard links: refusing to write to a file that has another name";
  if (!trusted(st.st_uid, owners))
    return quoted(path) + " is owned by uid " + std::to_string(st.st_uid) +
           ", not root or the service user";
  if ((st.st_mode & S_IWOTH) != 0)
    return quoted(path) + " (mode " + octal(st.st_mode) +
           ") is world-writable: anyone could forge records (chmod o-w)";
  return {};
}

fs::path directory_of(const fs::path& path) {
  const fs::path dir = path.parent_path();
  return dir.empty() ? fs::path(".") : dir;
}

// Every directory from the file's (resolved) directory up to "/" must meet directory_problem:
// whoever can write to an ancestor can swap the directories below it (OpenSSH's StrictModes rule).
std::string ancestors_problem(const fs::path& dir, const output_owners& owners) {
  std::error_code ec;
  fs::path p = fs::canonical(dir, ec);
  if (ec) return "directory " + quoted(dir) + ": " + ec.message();
  for (;;) {
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0) return "directory " + quoted(p) + ": " + std::strerror(errno);
    if (auto problem = directory_problem(p, st, owners); !problem.empty()) return problem;
    if (p == p.root_path() || !p.has_relative_path()) return {};
    p = p.parent_path();
  }
}

}  // namespace

output_owners owners_for(const std::string& service_user) {
  output_owners owners;
  owners.uids.push_back(0);
  owners.uids.push_back(::geteuid());
  if (!service_user.empty()) {
    if (const struct passwd* pw = ::getpwnam(service_user.c_str())) {
      owners.uids.push_back(pw->pw_uid);
      owners.service_uid = pw->pw_uid;
    }
  }
  return owners;
}

output_open_result open_output_file(const fs::path& path, const output_owners& owners) {
  output_open_result out;
  const fs::path name = path.filename();
  if (name.empty() || name == "." || name == "..") {
    out.error = quoted(path) + " names a directory, not a file";
    return out;
  }
  const fs::path dir = directory_of(path);
  if (out.error = ancestors_problem(dir, owners); !out.error.empty()) return out;

  // The directory is opened once and judged on its descriptor; the file is opened relative to
  // that descriptor, so a directory swapped after the check is not the one written into.
  const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) {
    out.error = "directory " + quoted(dir) + ": " + std::strerror(errno);
    return out;
  }
  struct stat st {};
  if (::fstat(dir_fd, &st) != 0) {
    out.error = "directory " + quoted(dir) + ": " + std::strerror(errno);
  } else {
    out.error = directory_problem(dir, st, owners);
  }
  if (!out.error.empty()) {
    ::close(dir_fd);
    return out;
  }
  // O_NOFOLLOW: a symlink as the last component fails with ELOOP instead of being followed, also
  // when it dangles (O_CREAT would otherwise create its target). O_NONBLOCK: a FIFO planted under
  // the name must not hang the start; it is cleared below once the file is known to be regular.
  // O_EXCL first tells a file created now from one that was there (a symlink counts as there).
  constexpr int flags = O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
  int fd = ::openat(dir_fd, name.c_str(), flags | O_CREAT | O_EXCL, 0640);
  const bool created = fd >= 0;
  if (fd < 0 && errno == EEXIST) fd = ::openat(dir_fd, name.c_str(), flags);
  const int open_errno = errno;
  ::close(dir_fd);
  // Root creates it before the drop; the service user must be able to open it again later (a
  // SIGUSR1 reopen, a binary upgrade). Without CAP_CHOWN the file stays root's: then only a
  // rotation (logrotate's `create`) hands it over, as before.
  if (created && ::geteuid() == 0 && owners.service_uid != static_cast<uid_t>(-1) &&
      ::fchown(fd, owners.service_uid, static_cast<gid_t>(-1)) != 0)
    out.warning = quoted(path) + ": created as root and not handed to the service user (" +
                  std::strerror(errno) + "): a reopen after the privilege drop may fail";
  if (fd < 0) {
    out.error =
        open_errno == ELOOP
            ? quoted(path) + " is a symbolic link: refusing to write through it (O_NOFOLLOW)"
            : quoted(path) + ": " + std::strerror(open_errno);
    return out;
  }
  if (::fstat(fd, &st) != 0) {
    out.error = quoted(path) + ": " + std::strerror(errno);
  } else {
    out.error = file_problem(path, st, owners);
  }
  if (out.error.empty()) {
    const int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0 || ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0)
      out.error = quoted(path) + ": " + std::strerror(errno);
  }
  if (!out.error.empty()) {
    ::close(fd);
    return out;
  }
  out.fd = fd;
  return out;
}

std::vector<std::string> check_output_path(const fs::path& path, const output_owners& owners) {
  std::vector<std::string> problems;
  const fs::path name = path.filename();
  if (name.empty() || name == "." || name == "..") {
    problems.push_back(quoted(path) + " names a directory, not a file");
    return problems;
  }
  if (auto problem = ancestors_problem(directory_of(path), owners); !problem.empty()) {
    problems.push_back(std::move(problem));
    return problems;
  }
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno != ENOENT) problems.push_back(quoted(path) + ": " + std::strerror(errno));
    return problems;  // not there yet: created at start, in a directory that passed
  }
  if (S_ISLNK(st.st_mode)) {
    problems.push_back(quoted(path) +
                       " is a symbolic link: refusing to write through it (O_NOFOLLOW)");
    return problems;
  }
  if (auto problem = file_problem(path, st, owners); !problem.empty())
    problems.push_back(std::move(problem));
  return problems;
}

std::string check_writable(const fs::path& path) {
  // faccessat with AT_EACCESS judges by the effective ids, as open(2) will.
  const bool exists = ::faccessat(AT_FDCWD, path.c_str(), F_OK, AT_SYMLINK_NOFOLLOW) == 0;
  const fs::path target = exists ? path : directory_of(path);  // else it is created there
  if (::faccessat(AT_FDCWD, target.c_str(), W_OK, AT_EACCESS) == 0) return {};
  return (exists ? "" : "directory ") + quoted(target) +
         " is not writable: " + std::strerror(errno);
}

}  // namespace tlsbridge::proxy
