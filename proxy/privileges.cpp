#include "proxy/privileges.hpp"

#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include <spdlog/spdlog.h>

namespace tlsbridge::proxy {

namespace {

constexpr unsigned want_read = 4;    // the r bit of one class
constexpr unsigned want_search = 1;  // the x bit of one class

std::string describe_inode(const struct stat& st) {
  char mode[8];
  std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
  const struct passwd* pw = ::getpwuid(st.st_uid);
  const struct group* gr = ::getgrgid(st.st_gid);
  return "owner " + (pw ? std::string(pw->pw_name) : std::to_string(st.st_uid)) + ":" +
         (gr ? std::string(gr->gr_name) : std::to_string(st.st_gid)) + ", mode " + mode;
}

[[noreturn]] void fail(const std::string& user, const char* step) {
  throw std::runtime_error("[server] user: cannot switch to " + user + ": " + step + ": " +
                           std::strerror(errno));
}

// capset(2)/capget(2) with the 64-bit layout (_LINUX_CAPABILITY_VERSION_3: two 32-bit words).
struct capability_sets {
  std::uint64_t effective = 0, permitted = 0, inheritable = 0;
};

bool set_capabilities(const capability_sets& sets) {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  for (int word = 0; word < 2; ++word) {
    data[word].effective = static_cast<std::uint32_t>(sets.effective >> (32 * word));
    data[word].permitted = static_cast<std::uint32_t>(sets.permitted >> (32 * word));
    data[word].inheritable = static_cast<std::uint32_t>(sets.inheritable >> (32 * word));
  }
  return ::syscall(SYS_capset, &header, data) == 0;
}

std::optional<capability_sets> get_capabilities() {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  if (::syscall(SYS_capget, &header, data) != 0) return std::nullopt;
  capability_sets sets;
  for (int word = 0; word < 2; ++word) {
    sets.effective |= std::uint64_t{data[word].effective} << (32 * word);
    sets.permitted |= std::uint64_t{data[word].permitted} << (32 * word);
    sets.inheritable |= std::uint64_t{data[word].inheritable} << (32 * word);
  }
  return sets;
}

// Removes every capability not in `kept` from the bounding set (capabilities(7)), so no later
// execve can grant one. Needs CAP_SETPCAP: a unit whose CapabilityBoundingSet left it out has
// trimmed the set already, and what it left stays.
void trim_bounding_set(std::uint64_t kept) {
  int kept_back = 0;
  for (int cap = 0; cap < 64; ++cap) {
    if (kept & (std::uint64_t{1} << cap)) continue;
    const int present = ::prctl(PR_CAPBSET_READ, cap, 0, 0, 0);
    if (present < 0) break;  // EINVAL: past the kernel's last capability
    if (present == 0) continue;
    if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) ++kept_back;
  }
  if (kept_back)
    spdlog::debug(
        "[server] user: {} capabilities stay in the bounding set (no CAP_SETPCAP); "
        "they are out of the permitted set all the same",
        kept_back);
}

}  // namespace

std::optional<service_identity> lookup_service_identity(const std::string& user) {
  const struct passwd* pw = ::getpwnam(user.c_str());
  if (!pw) return std::nullopt;
  service_identity who{pw->pw_name, pw->pw_uid, pw->pw_gid, {}};
  int count = 32;
  for (int attempt = 0; attempt < 4; ++attempt) {
    who.groups.resize(static_cast<std::size_t>(count));
    int n = count;
    if (::getgrouplist(pw->pw_name, pw->pw_gid, who.groups.data(), &n) >= 0) {
      who.groups.resize(static_cast<std::size_t>(n));
      return who;
    }
    count = std::max(n, count * 2);  // n holds the number needed
  }
  who.groups = {pw->pw_gid};
  return who;
}

bool mode_grants(const struct stat& st, const service_identity& who, unsigned want) {
  unsigned bits;
  if (st.st_uid == who.uid)
    bits = (st.st_mode >> 6) & 7;
  else if (st.st_gid == who.gid ||
           std::find(who.groups.begin(), who.groups.end(), st.st_gid) != who.groups.end())
    bits = (st.st_mode >> 3) & 7;
  else
    bits = st.st_mode & 7;
  return (bits & want) == want;
}

std::string read_denial(const std::filesystem::path& file, const service_identity& who) {
  std::error_code ec;
  // The path as the kernel resolves it: certbot's live/ files are symlinks into archive/, whose
  // directories count as much as the link's own.
  const auto real = std::filesystem::canonical(file, ec);
  if (ec) return {};  // a missing file is the loader's error, not this warning
  struct stat st {};
  std::filesystem::path dir = "/";
  for (auto it = real.begin(); it != real.end(); ++it) {
    if (std::next(it) == real.end()) break;
    if (*it != "/") dir /= *it;
    if (::stat(dir.c_str(), &st) == 0 && !mode_grants(st, who, want_search))
      return "cannot search " + dir.string() + " (" + describe_inode(st) + ")";
  }
  if (::stat(real.c_str(), &st) == 0 && !mode_grants(st, who, want_read))
    return "has no read permission (" + describe_inode(st) + ")";
  return {};
}

std::vector<std::string> unreadable_after_drop(const config::config& cfg) {
  std::vector<std::string> warnings;
  if (cfg.server.user.empty()) return warnings;
  const auto who = lookup_service_identity(cfg.server.user);
  if (!who || who->uid == 0) return warnings;  // an unknown user fails the start by itself
  for (const auto& file : cfg.tls_files())
    if (auto why = read_denial(file, *who); !why.empty())
      warnings.push_back(file.string() + ": [server] user " + who->name + " " + why +
                         ", so a reload after the privilege drop cannot read it (Debian: the key "
                         "root:ssl-cert 0640 in a directory root:ssl-cert 0710, and " +
                         who->name + " in ssl-cert)");
  return warnings;
}

bool has_effective_capability(int cap) {
  const auto now = get_capabilities();
  return now && (now->effective & (std::uint64_t{1} << cap)) != 0;
}

void drop_privileges(const std::string& user, bool keep_net_admin) {
  if (user.empty()) return;
  const auto who = lookup_service_identity(user);
  if (!who) throw std::runtime_error("[server] user: no such user " + user);
  // A binary upgrade's new process starts as the service user already (the old one dropped, and
  // handed CAP_NET_BIND_SERVICE on through the ambient set).
  if (::getuid() == who->uid && ::geteuid() == who->uid) {
    spdlog::info("running as {} (uid {}) since start", user, who->uid);
    return;
  }
  const std::uint64_t kept = (std::uint64_t{1} << CAP_NET_BIND_SERVICE) |
                             (keep_net_admin ? std::uint64_t{1} << CAP_NET_ADMIN : 0);
  if (keep_net_admin && !has_effective_capability(CAP_NET_ADMIN))
    throw std::runtime_error(
        "[server] user: source = \"client\" needs CAP_NET_ADMIN to keep, "
        "and this process does not have it (systemd: add it to "
        "CapabilityBoundingSet=)");
  trim_bounding_set(kept);
  // Without KEEPCAPS, setuid from root to another user empties the permitted set (capabilities(7),
  // "Effect of user ID changes on capabilities"); with it only the effective set is cleared.
  if (::prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) fail(user, "PR_SET_KEEPCAPS");
  if (::initgroups(who->name.c_str(), who->gid) != 0) fail(user, "initgroups");
  if (::setgid(who->gid) != 0) fail(user, "setgid");
  if (::setuid(who->uid) != 0) fail(user, "setuid");
  if (!set_capabilities({kept, kept, 0})) fail(user, "capset");
  if (::prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) != 0) fail(user, "PR_SET_KEEPCAPS");
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0)
    fail(user, "PR_CAP_AMBIENT_CLEAR_ALL");
  if (::setuid(0) == 0) throw std::runtime_error("[server] user: could regain root, refusing");
  const auto now = get_capabilities();
  const char* kept_names =
      keep_net_admin ? "CAP_NET_BIND_SERVICE and CAP_NET_ADMIN" : "CAP_NET_BIND_SERVICE";
  if (!now || now->permitted != kept || now->effective != kept)
    throw std::runtime_error(std::string("[server] user: capabilities other than ") + kept_names +
                             " remain");
  spdlog::info("running as {} (uid {}, {} group(s)), keeping only {}", user, who->uid,
               who->groups.size(), kept_names);
}

}  // namespace tlsbridge::proxy
