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
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "proxy/redis_connect.hpp"
#include "proxy/shared_auth_counters.hpp"
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

bool redis_exists(unsigned short port, const std::string& key) {
  std::string why;
  config::redis_url where;
  where.host = "127.0.0.1";
  where.port = port;
  redisContext* c = proxy::open_redis(where, 1s, why);
  if (c == nullptr) return false;
  auto* r = static_cast<redisReply*>(redisCommand(c, "EXISTS %b", key.data(), key.size()));
  const bool found = r != nullptr && r->type == REDIS_REPLY_INTEGER && r->integer == 1;
  if (r) freeReplyObject(r);
  redisFree(c);
  return found;
}

// The URL of `redis` once it runs, as text and parsed; nullopt (and a warning) where
// redis-server cannot run.
std::optional<std::pair<std::string, config::redis_url>> start_or_warn(redis_process& redis) {
  if (!redis.start()) {
    WARN("redis-server cannot run here (scripts/setup installs it): nothing checked");
    return std::nullopt;
  }
  const std::string url = "redis://127.0.0.1:" + std::to_string(redis.port);
  auto parsed = config::parse_redis_url(url);
  REQUIRE(parsed.url);
  return std::make_pair(url, *parsed.url);
}

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
  const auto started = start_or_warn(redis);
  if (!started) return;
  const auto& [url, where] = *started;
  proxy::shared_state shared(url, where, nullptr);
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

TEST_CASE("shared_auth_counters: two instances on one Redis meet one threshold and share successes",
          "[proxy][shared][redis][auth]") {
  redis_process redis;
  const auto started = start_or_warn(redis);
  if (!started) return;
  const auto& [url, where] = *started;
  auto a = std::make_shared<proxy::shared_state>(url, where, nullptr);
  auto b = std::make_shared<proxy::shared_state>(url, where, nullptr);
  a->start();
  b->start();
  REQUIRE(wait_until([&] { return a->up() && b->up(); }, 5s));
  proxy::shared_auth_counters on_a, on_b;
  on_a.attach(a, "imap");
  on_b.attach(b, "imap");
  using clock = proxy::auth_counters::clock;
  const proxy::auth_counters::failure_limit limit{3, 60s, 60s};

  // Failures alternate between the instances: neither counts 3 itself, yet the third blocks on
  // both (Redis's answer on one, the feed on the other).
  on_a.count_failure("user:alice", limit, clock::now());
  on_b.count_failure("user:alice", limit, clock::now());
  CHECK_FALSE(on_a.blocked("user:alice", clock::now()));
  CHECK_FALSE(on_b.blocked("user:alice", clock::now()));
  on_a.count_failure("user:alice", limit, clock::now());
  CHECK(wait_until([&] { return on_b.blocked("user:alice", clock::now()); }, 2s));
  CHECK(wait_until([&] { return on_a.blocked("user:alice", clock::now()); }, 2s));
  CHECK(redis_exists(redis.port, "tlsbridge:authblock:imap:user:alice"));
  CHECK_FALSE(on_b.blocked("user:bob", clock::now()));

  // Another listener's counts are its own.
  proxy::shared_auth_counters other;
  other.attach(b, "pop3");
  CHECK_FALSE(other.blocked("user:alice", clock::now()));

  on_a.remember_success("ok:alice/7f000005", clock::now());
  CHECK(
      wait_until([&] { return on_b.succeeded_within("ok:alice/7f000005", 1h, clock::now()); }, 2s));

  // Detached: the local tables alone, the blocks they hold kept.
  on_b.attach(nullptr, "imap");
  for (int i = 0; i < 2; ++i) on_b.count_failure("user:carol", limit, clock::now());
  CHECK_FALSE(on_b.blocked("user:carol", clock::now()));
  CHECK(on_b.blocked("user:alice", clock::now()));
  a->stop();
  b->stop();
}

TEST_CASE("shared_auth_counters: feed messages it cannot read change nothing", "[proxy][auth]") {
  proxy::shared_auth_counters c;
  using clock = proxy::auth_counters::clock;
  for (const char* m : {"", "block", "block ", "block 1000", "block x user:a", "block -5 user:a",
                        "block 0 user:a", "block 1000user:a", "blocks 1000 user:a", "ok"})
    c.on_feed(m);
  CHECK_FALSE(c.blocked("user:a", clock::now()));
  CHECK_FALSE(c.blocked("", clock::now()));
  c.on_feed("block 60000 user:a");
  CHECK(c.blocked("user:a", clock::now()));
  c.on_feed("ok ok:a/7f000001");
  CHECK(c.succeeded_within("ok:a/7f000001", 1min, clock::now()));
}
