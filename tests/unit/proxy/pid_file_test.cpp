// The pid file (proxy/pid_file.hpp): flock locks belong to the open file description, so a second
// open of the same file in this very process is refused like a second instance would be, and a
// duplicated descriptor (what a binary upgrade passes on) holds the same lock.
#include "proxy/pid_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <string>

#include "temp_dir.hpp"

using namespace tlsbridge;
namespace fs = std::filesystem;

namespace {

using test::read;
using test::temp_dir;

std::string message_of_second_acquire(const fs::path& path) {
  try {
    proxy::pid_file::acquire(path);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("pid_file: holds our PID, refuses a second holder naming the first, goes at exit") {
  temp_dir dir;
  const fs::path path = dir.path / "tlsbridge.pid";
  {
    auto held = proxy::pid_file::acquire(path);
    CHECK(read(path) == std::to_string(::getpid()) + "\n");
    CHECK(proxy::read_pid(path) == ::getpid());
    CHECK(proxy::pid_file_locked(path));
    CHECK(message_of_second_acquire(path) == "already running as PID " +
                                                 std::to_string(::getpid()) + " (pid file " +
                                                 path.string() + ")");
    CHECK(read(path) == std::to_string(::getpid()) + "\n");  // the refused one wrote nothing
  }
  CHECK_FALSE(fs::exists(path));
  CHECK_FALSE(proxy::pid_file_locked(path));
}

TEST_CASE("pid_file: a stale file (no lock holder) is taken over") {
  temp_dir dir;
  const fs::path path = dir.path / "tlsbridge.pid";
  std::ofstream(path) << "4000000\n";
  CHECK_FALSE(proxy::pid_file_locked(path));
  auto held = proxy::pid_file::acquire(path);
  CHECK(proxy::read_pid(path) == ::getpid());
}

TEST_CASE("pid_file: a handed-over descriptor keeps the lock after the first holder lets go") {
  temp_dir dir;
  const fs::path path = dir.path / "tlsbridge.pid";
  auto old_process = proxy::pid_file::acquire(path);
  // What the new process inherits: a copy of the same open file description.
  int inherited = ::fcntl(old_process.fd(), F_DUPFD_CLOEXEC, 3);
  REQUIRE(inherited >= 0);
  auto new_process = proxy::pid_file::adopt(inherited, path);
  old_process.write_pid(4242);
  old_process.hand_over();  // the old process exits without removing anything
  CHECK(proxy::read_pid(path) == 4242);
  CHECK(proxy::pid_file_locked(path));
  CHECK_THAT(message_of_second_acquire(path), Catch::Contains("already running as PID 4242"));
}

TEST_CASE("pid_file: adopting a descriptor that holds no lock is refused") {
  temp_dir dir;
  const fs::path path = dir.path / "tlsbridge.pid";
  auto holder = proxy::pid_file::acquire(path);
  int other = ::open(path.c_str(), O_RDWR | O_CLOEXEC);  // its own open file description
  REQUIRE(other >= 0);
  CHECK_THROWS_WITH(proxy::pid_file::adopt(other, path), Catch::Contains("is not locked by us"));
  ::close(other);
}

TEST_CASE("read_pid: only a positive number is a PID") {
  temp_dir dir;
  const fs::path path = dir.path / "p";
  CHECK(proxy::read_pid(path) == 0);
  for (const char* text : {"", "\n", "abc\n", "-5\n", "12x\n", "0\n"}) {
    std::ofstream(path) << text;
    CHECK(proxy::read_pid(path) == 0);
  }
  std::ofstream(path) << "1234\n";
  CHECK(proxy::read_pid(path) == 1234);
}
