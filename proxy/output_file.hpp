// Files the proxy opens for writing — the audit file ([audit] path) and the operational log
// ([log] file) — opened so that nobody but root and the service user can aim them elsewhere
// (SECURITY.md: never through a symlink). The proxy
// opens them as root, before the privilege drop, so a symlink or hard link planted in their
// directory would make root append to any file on the system. The directory is opened first and
// checked on its descriptor (owner root or the service user; not writable by group or others
// unless sticky, as /tmp is), every ancestor likewise, then the file is opened relative to it with
// O_NOFOLLOW|O_APPEND|O_CLOEXEC (mode 0640 when created) and checked on its descriptor: a regular
// file, one link, owned by root or the service user. Checks run on what was opened, not on the
// name, so there is no window between check and use. check-config runs the same checks by name.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

namespace tlsbridge::proxy {

// Who may own (and write) an output file and its directories: root, the process's own effective
// user, and the `[server] user` it drops to.
struct output_owners {
  std::vector<uid_t> uids;
  // The `[server] user`, when there is one: a file root creates is handed to it, so that a
  // SIGUSR1 reopen or a binary upgrade after the privilege drop can still open it.
  uid_t service_uid = static_cast<uid_t>(-1);
};

// root + geteuid() + the uid of `service_user` ("" or unknown: none added).
output_owners owners_for(const std::string& service_user);

// An open descriptor or the reason there is none (one line, naming the path and the rule).
struct output_open_result {
  int fd = -1;
  std::string error;
  std::string warning;  // opened, but something the operator should know
  explicit operator bool() const { return fd >= 0; }
};

// Opens `path` for appending as described above; a file it creates as root belongs to the
// service user (owners.service_uid). Never throws.
output_open_result open_output_file(const std::filesystem::path& path, const output_owners& owners);

// What open_output_file would refuse, checked by name without creating anything (check-config,
// start and reload). Empty when fine. A file that does not exist yet is fine if its directory is.
std::vector<std::string> check_output_path(const std::filesystem::path& path,
                                           const output_owners& owners);

// Whether this process may write `path` (or, when it does not exist yet, create it in its
// directory): "" or the reason — a read-only file system, or a user other than the one that will
// open it. Asked before files are opened (check-config, start), not at reload: the files are open
// already and the process runs as [server] user by then.
std::string check_writable(const std::filesystem::path& path);

}  // namespace tlsbridge::proxy
