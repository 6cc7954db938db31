// Files the proxy writes as root (issue 12 item 7; SECURITY.md, "What it trusts": "never through a
// symlink"): what open_output_file refuses, what it creates, and that check_output_path
// (check-config, reload) agrees with it.
#include "proxy/output_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>

#include "temp_dir.hpp"

using namespace tlsbridge;
namespace fs = std::filesystem;

namespace {

using test::read;
using test::temp_dir;

const proxy::output_owners owners = proxy::owners_for("");

bool mentions(const std::string& text, const char* what) {
  return text.find(what) != std::string::npos;
}

}  // namespace

TEST_CASE("output file: a new file is created 0640 and appended to", "[proxy][output_file]") {
  temp_dir d;
  const auto file = d.path / "audit.jsonl";
  const mode_t old_mask = ::umask(022);
  auto r = proxy::open_output_file(file, owners);
  ::umask(old_mask);
  REQUIRE(r);
  CHECK(r.error.empty());
  CHECK(::write(r.fd, "a\n", 2) == 2);
  ::close(r.fd);
  struct stat st {};
  REQUIRE(::stat(file.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0640);
  CHECK((::fcntl(proxy::open_output_file(file, owners).fd, F_GETFD) & FD_CLOEXEC) != 0);
  auto again = proxy::open_output_file(file, owners);
  REQUIRE(again);
  CHECK((::fcntl(again.fd, F_GETFL) & O_APPEND) != 0);
  CHECK(::write(again.fd, "b\n", 2) == 2);
  ::close(again.fd);
  CHECK(read(file) == "a\nb\n");
  CHECK(proxy::check_output_path(file, owners).empty());
}

TEST_CASE("output file: the null device discards a sink; other devices are refused",
          "[proxy][output_file]") {
  auto r = proxy::open_output_file("/dev/null", owners);
  REQUIRE(r);
  CHECK(::write(r.fd, "a\n", 2) == 2);
  ::close(r.fd);
  CHECK(proxy::check_output_path("/dev/null", owners).empty());
  auto zero = proxy::open_output_file("/dev/zero", owners);
  CHECK_FALSE(zero);
  CHECK(mentions(zero.error, "not a regular file"));
}

TEST_CASE("output file: a symlink as the file is refused, its target untouched",
          "[proxy][output_file]") {
  temp_dir d;
  const auto target = d.path / "target";
  { std::ofstream(target) << "precious\n"; }
  const auto file = d.path / "audit.jsonl";
  SECTION("to an existing file") {
    fs::create_symlink(target, file);
  }
  SECTION("dangling (O_CREAT would create the target)") {
    fs::remove(target);
    fs::create_symlink(target, file);
  }
  auto r = proxy::open_output_file(file, owners);
  CHECK_FALSE(r);
  CHECK(mentions(r.error, "symbolic link"));
  const auto problems = proxy::check_output_path(file, owners);
  REQUIRE(problems.size() == 1);
  CHECK(mentions(problems[0], "symbolic link"));
  if (fs::exists(target))
    CHECK(read(target) == "precious\n");
  else
    CHECK_FALSE(fs::exists(fs::symlink_status(target)));
}

TEST_CASE("output file: a hard link, a FIFO or a directory under the name is refused",
          "[proxy][output_file]") {
  temp_dir d;
  const auto file = d.path / "audit.jsonl";
  const char* expected = "";
  SECTION("hard link") {
    const auto other = d.path / "other";
    { std::ofstream(other) << "precious\n"; }
    fs::create_hard_link(other, file);
    expected = "hard links";
  }
  SECTION("FIFO (must not hang)") {
    REQUIRE(::mkfifo(file.c_str(), 0600) == 0);
    expected = "";
  }
  SECTION("directory") {
    fs::create_directory(file);
    expected = "directory";
  }
  auto r = proxy::open_output_file(file, owners);
  CHECK_FALSE(r);
  CHECK(mentions(r.error, expected));
  CHECK_FALSE(proxy::check_output_path(file, owners).empty());
}

TEST_CASE("output file: a directory others may write to is refused unless sticky",
          "[proxy][output_file]") {
  temp_dir d;
  const auto dir = d.path / "logs";
  fs::create_directory(dir);
  const auto file = dir / "audit.jsonl";
  SECTION("world-writable") {
    REQUIRE(::chmod(dir.c_str(), 0777) == 0);
    auto r = proxy::open_output_file(file, owners);
    CHECK_FALSE(r);
    CHECK(mentions(r.error, "writable by group or others"));
    CHECK_FALSE(fs::exists(file));
    CHECK_FALSE(proxy::check_output_path(file, owners).empty());
  }
  SECTION("group-writable") {
    REQUIRE(::chmod(dir.c_str(), 0770) == 0);
    CHECK_FALSE(proxy::open_output_file(file, owners));
    CHECK_FALSE(proxy::check_output_path(file, owners).empty());
  }
  SECTION("an ancestor world-writable") {
    REQUIRE(::chmod(d.path.c_str(), 0777) == 0);
    CHECK_FALSE(proxy::open_output_file(file, owners));
    CHECK_FALSE(proxy::check_output_path(file, owners).empty());
  }
  SECTION("world-writable with the sticky bit (as /tmp): fine") {
    REQUIRE(::chmod(dir.c_str(), 01777) == 0);
    auto r = proxy::open_output_file(file, owners);
    CHECK(r);
    if (r) ::close(r.fd);
    CHECK(proxy::check_output_path(file, owners).empty());
  }
  SECTION("a directory that does not exist") {
    CHECK_FALSE(proxy::open_output_file(dir / "missing" / "audit.jsonl", owners));
    CHECK_FALSE(proxy::check_output_path(dir / "missing" / "audit.jsonl", owners).empty());
  }
}

TEST_CASE("output file: owned by another user (directory or file) is refused",
          "[proxy][output_file]") {
  if (::geteuid() != 0) return;  // chown needs root (CI runs as root)
  temp_dir d;
  const auto dir = d.path / "logs";
  fs::create_directory(dir);
  const auto file = dir / "audit.jsonl";
  SECTION("directory") {
    REQUIRE(::chown(dir.c_str(), 65534, 65534) == 0);
    CHECK_FALSE(proxy::open_output_file(file, owners));
    CHECK(proxy::open_output_file(file, proxy::owners_for("nobody")));  // the service user
  }
  SECTION("file planted in a sticky directory") {
    REQUIRE(::chmod(dir.c_str(), 01777) == 0);
    { std::ofstream(file) << ""; }
    REQUIRE(::chown(file.c_str(), 65534, 65534) == 0);
    auto r = proxy::open_output_file(file, owners);
    CHECK_FALSE(r);
    CHECK(mentions(r.error, "owned by uid 65534"));
  }
}

TEST_CASE("output file: a file root creates belongs to the service user", "[proxy][output_file]") {
  if (::geteuid() != 0) return;  // only root creates files for another user
  temp_dir d;
  const auto file = d.path / "audit.jsonl";
  auto r = proxy::open_output_file(file, proxy::owners_for("nobody"));
  REQUIRE(r);
  ::close(r.fd);
  struct stat st {};
  REQUIRE(::stat(file.c_str(), &st) == 0);
  CHECK(st.st_uid == proxy::owners_for("nobody").service_uid);
  // One that was there keeps its owner (root's, here).
  const auto old = d.path / "old.jsonl";
  std::ofstream(old) << "x\n";
  auto again = proxy::open_output_file(old, proxy::owners_for("nobody"));
  REQUIRE(again);
  ::close(again.fd);
  REQUIRE(::stat(old.c_str(), &st) == 0);
  CHECK(st.st_uid == 0);
}
