// Giving up root once every port is bound ([server] user), keeping exactly what a reload still
// needs: CAP_NET_BIND_SERVICE (and CAP_NET_ADMIN when a back leg binds to the client's address,
// proxy/back_leg_source.hpp), so a listener added by a reload may bind a port below 1024
// (capabilities(7)), and the service user's supplementary groups (initgroups(3)), so a key
// readable by a group the user is in — Debian's `root:ssl-cert 0640` — can be read again when a
// renewed certificate is loaded. Everything else is given up for good: the other capabilities
// leave the permitted set and the bounding set, so nothing, not even an execve, brings them back.
//
// The capability calls are the raw syscalls (capset(2), prctl(2)) rather than libcap: three calls
// with fixed arguments, no text parsing, and no library added to the build or the package.
//
// Capabilities belong to a thread, not to the process: drop_privileges runs before the worker
// threads exist, and they inherit the reduced sets from the thread that creates them.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace tlsbridge::proxy {

// Who the process is after the drop: the user and every group initgroups(3) gives it.
struct service_identity {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary groups, the primary one included
};

// The identity of `user` from the password and group databases; nullopt for an unknown user.
std::optional<service_identity> lookup_service_identity(const std::string& user);

// The classic owner/group/other check of path_resolution(7) for one inode: whether `who` has
// every bit of `want` (S_IROTH-style: 4 read, 1 search) in the class that applies to it.
// Pure; ACLs are not considered.
bool mode_grants(const struct stat& st, const service_identity& who, unsigned want);

// Why `who` could not open `file` for reading (a directory on the way it cannot search, or the
// file itself), or "" when it can.
std::string read_denial(const std::filesystem::path& file, const service_identity& who);

// Start-up warnings: every certificate, key and CA file the config reads that [server] user will
// not be able to read after the drop, so a reload (a renewed certificate) would fail.
std::vector<std::string> unreadable_after_drop(const config::config& cfg);

// Switches to `user` (no-op when empty): bounding set trimmed to CAP_NET_BIND_SERVICE,
// PR_SET_KEEPCAPS around setgid/setuid with initgroups, then permitted = effective =
// {CAP_NET_BIND_SERVICE}, inheritable and ambient empty. `keep_net_admin`: CAP_NET_ADMIN stays
// too, for the IP_TRANSPARENT back legs of [listener.backend] source = "client" (ip(7)). Throws
// std::runtime_error when any step fails or root could be regained.
void drop_privileges(const std::string& user, bool keep_net_admin = false);

// Whether capability `cap` (capabilities(7), e.g. CAP_NET_ADMIN) is in this thread's effective
// set.
bool has_effective_capability(int cap);

}  // namespace tlsbridge::proxy
