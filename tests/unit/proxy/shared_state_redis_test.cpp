// proxy/shared_state against a real redis-server this test starts on a free port of 127.0.0.1
// (`--save "" --appendonly no`): count answers the cluster total, a block is seen until it runs
// out, and with Redis killed every operation answers from local state at once. Without
// redis-server (scripts/setup installs it) the case says so and checks nothing.
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_future.hpp>
#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "proxy/shared_state.hpp"
#include "tests/unit/proxy/temp_dir.hpp"

extern char** environ;

namespace asio = boost::asio;
using namespace tlsbridge;
using namespace std::chrono_literals;

namespace {

unsigned short free_port() {
  asio::io_context io;
  asio::ip::tcp::acceptor a(io, {asio::ip::make_address("127.0.0.1"), 0});
  return a.local_endpoint().port();
}

bool accepts(unsigned short port) {
  asio::io_context io;
  asio::ip::tcp::socket s(io);
  boost::system::error_code ec;
  s.connect({asio::ip::make_address("127.0.0.1"), port}, ec);
  return !ec;
}

template <typename Predicate>
bool wait_until(Predicate p, std::chrono::milliseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!p()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(20ms);
  }
  return true;
}

// redis-server, stopped by its PID.
struct redis_process {
  pid_t pid = -1;
  unsigned short port = free_port();
  test::temp_dir dir;

  bool start() {
    std::vector<std::string> args{"redis-server",
                                  "--port",
                                  std::to_string(port),
                                  "--bind",
                                  "127.0.0.1",
                                  "--save",
                                  "",
                                  "--appendonly",
                                  "no",
                                  "--dir",
                                  dir.path.string(),
                                  "--logfile",
                                  (dir.path / "redis.log").string()};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (::posix_spawnp(&pid, "redis-server", nullptr, nullptr, argv.data(), environ) != 0) {
      pid = -1;
      return false;
    }
    return wait_until([&] { return accepts(port); }, 10s);
  }
  void kill() {
    if (pid <= 0) return;
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    pid = -1;
  }
  ~redis_process() { kill(); }
};

template <typename T>
T run(asio::io_context& io, asio::awaitable<T> a) {
  auto f = asio::co_spawn(io, std::move(a), asio::use_future);
  io.restart();
  io.run();
  return f.get();
}

}  // namespace

TEST_CASE("shared_state against a real Redis: counts, blocks, and local answers once it is gone",
          "[proxy][shared][redis]") {
  redis_process redis;
  if (!redis.start()) {
    WARN("redis-server cannot run here (scripts/setup installs it): nothing checked");
    return;
  }
  const std::string url = "redis://127.0.0.1:" + std::to_string(redis.port);
  auto parsed = config::parse_redis_url(url);
  REQUIRE(parsed.url);
  proxy::shared_state shared(url, *parsed.url, nullptr);
  CHECK_FALSE(shared.up());  // nothing runs before start()
  shared.start();
  REQUIRE(wait_until([&] { return shared.up(); }, 5s));

  asio::io_context io;
  const proxy::shared_key key{"rate", "smtp-in", "192.0.2.7"};
  // Two instances' worth of events: this process counted 1, then 1 again (its local window
  // restarted, say); Redis has both.
  CHECK(run(io, shared.count(key, 60s, 1)) == 1);
  CHECK(run(io, shared.count(key, 60s, 1)) == 2);
  CHECK(run(io, shared.count({"rate", "smtp-out", "192.0.2.7"}, 60s, 1)) == 1);  // per listener

  const proxy::shared_key user{"auth_user", "owa", "contoso\\alice"};
  CHECK(run(io, shared.blocked_for(user)) == proxy::shared_state::clock::duration::zero());
  shared.block(user, 2s);
  const auto left = run(io, shared.blocked_for(user));  // queued after the SET: answered after it
  CHECK(left > 1s);
  CHECK(left <= 2s);

  redis.kill();
  REQUIRE(wait_until([&] { return !shared.up(); }, 5s));
  // The last cluster total (2, when this process had counted 1) plus the 2 counted since; at
  // once, without waiting for an answer that cannot come.
  const auto before = std::chrono::steady_clock::now();
  CHECK(run(io, shared.count(key, 60s, 3)) == 4);
  CHECK(std::chrono::steady_clock::now() - before < proxy::shared_state::answer_budget);
  CHECK(run(io, shared.count({"rate", "smtp-in", "192.0.2.8"}, 60s, 1)) == 1);
  CHECK(run(io, shared.blocked_for(user)) == proxy::shared_state::clock::duration::zero());
  shared.stop();
}
