// Who can read a key after the privilege drop (proxy/privileges.hpp): the owner/group/other
// classes of path_resolution(7), supplementary groups included, and every directory on the way
// (through symlinks) needing search permission.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include "proxy/privileges.hpp"
#include "tests/unit/config/temp_config_dir.hpp"

using tlsbridge::proxy::mode_grants;
using tlsbridge::proxy::read_denial;
using tlsbridge::proxy::service_identity;

namespace {

struct stat inode(uid_t uid, gid_t gid, mode_t mode) {
  struct stat st {};
  st.st_uid = uid;
  st.st_gid = gid;
  st.st_mode = S_IFREG | mode;
  return st;
}

// "tlsbridge" (uid 120, primary group 130) in ssl-cert (103).
const service_identity service{"tlsbridge", 120, 130, {130, 103}};

}  // namespace

TEST_CASE("privileges: the class that applies decides, as the kernel does", "[proxy][privileges]") {
  CHECK_FALSE(mode_grants(inode(0, 0, 0600), service, 4));      // root only
  CHECK(mode_grants(inode(0, 103, 0640), service, 4));          // Debian: root:ssl-cert 0640
  CHECK(mode_grants(inode(0, 130, 0640), service, 4));          // the primary group
  CHECK_FALSE(mode_grants(inode(0, 104, 0640), service, 4));    // a group it is not in
  CHECK(mode_grants(inode(120, 0, 0400), service, 4));          // its own key
  CHECK_FALSE(mode_grants(inode(120, 103, 0044), service, 4));  // owner class wins, even if empty
  CHECK(mode_grants(inode(0, 0, 0644), service, 4));            // other
  CHECK(mode_grants(inode(0, 103, 0710), service, 1));          // /etc/ssl/private: search only
  CHECK_FALSE(mode_grants(inode(0, 103, 0710), service, 4));
}

TEST_CASE("privileges: read_denial checks the file and every directory to it",
          "[proxy][privileges]") {
  if (::geteuid() != 0) {
    WARN("needs root to give the files their owners; skipped");
    return;
  }
  tlsbridge::config::test::temp_config_dir dir;
  const auto key = dir.write("private/key.pem", "k\n");
  const auto link = dir.path() / "live.pem";
  std::filesystem::create_symlink(key, link);
  ::chmod(dir.path().c_str(), 0755);
  ::chown(dir.path().c_str(), 0, 0);
  const auto private_dir = dir.path() / "private";
  ::chown(private_dir.c_str(), 0, 103);
  ::chown(key.c_str(), 0, 103);

  ::chmod(private_dir.c_str(), 0710);
  ::chmod(key.c_str(), 0640);
  CHECK(read_denial(key, service).empty());
  CHECK(read_denial(link, service).empty());

  ::chmod(key.c_str(), 0600);
  CHECK_THAT(read_denial(key, service),
             Catch::StartsWith("has no read permission") && Catch::Contains("mode 0600"));
  CHECK_THAT(read_denial(link, service), Catch::StartsWith("has no read permission"));

  ::chmod(key.c_str(), 0640);
  ::chmod(private_dir.c_str(), 0700);  // the directory on the way, reached through the link too
  CHECK_THAT(read_denial(key, service), Catch::Contains("cannot search " + private_dir.string()));
  CHECK_THAT(read_denial(link, service), Catch::Contains("cannot search " + private_dir.string()));

  CHECK(read_denial(dir.path() / "missing.pem", service).empty());  // the loader's error
}
