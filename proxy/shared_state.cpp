#include "proxy/shared_state.hpp"

#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/address_v4.hpp>
#include <boost/asio/ip/address_v6.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <stdexcept>

#include "proxy/redis_connect.hpp"
#include "proxy/shared_feed.hpp"
#include "proxy/warning_throttle.hpp"

namespace tlsbridge::proxy {

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

// INCR, and the window's expiry when the count starts (or when the key somehow has none, so a key
// can never outlive its window for good). One script: atomic in Redis, one round trip.
constexpr std::string_view window_script =
    "local n = redis.call('INCR', KEYS[1]) "
    "if n == 1 or redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end "
    "return n";

constexpr auto connect_timeout = 1s;  // also each command's: a hung Redis counts as lost
constexpr auto first_retry = 100ms;
constexpr auto max_retry = 5s;
constexpr auto idle_ping = 1s;          // a lost Redis is noticed even while nothing is counted
constexpr std::size_t max_batch = 256;  // requests pipelined in one write

// ':' separates the parts of a key; a listener name that holds one must not look like another's.
std::string escaped_name(std::string_view name) {
  std::string out;
  for (char c : name) {
    if (c == '%')
      out += "%25";
    else if (c == ':')
      out += "%3A";
    else
      out += c;
  }
  return out;
}

std::string hashed_subject(std::string_view subject) {
  std::uint64_t h = 1469598103934665603ull;  // FNV-1a: short keys, not secrecy
  for (unsigned char c : subject) h = (h ^ c) * 1099511628211ull;
  char text[32];
  std::snprintf(text, sizeof text, "#%016llx", static_cast<unsigned long long>(h));
  return text;
}

// The integer a reply stands for: INCR/EVAL/PTTL answer integers, SET and PING a status.
std::optional<long long> integer_of(const redisReply& r) {
  switch (r.type) {
    case REDIS_REPLY_INTEGER:
      return r.integer;
    case REDIS_REPLY_STATUS:
      return 1;
    case REDIS_REPLY_NIL:
      return 0;
    default:
      return std::nullopt;  // an error reply: this request failed, the connection is fine
  }
}

struct answer_wait {
  explicit answer_wait(const asio::any_io_executor& ex) : timer(ex) {}
  asio::steady_timer timer;
  std::optional<long long> answer;
  bool settled = false;  // touched only on the waiting coroutine's executor
};

}  // namespace

std::string redis_key(const shared_key& key) {
  std::string out = "tlsbridge:";
  out += key.kind;
  out += ':';
  out += escaped_name(key.listener);
  out += ':';
  out += key.subject.size() > max_subject ? hashed_subject(key.subject) : std::string(key.subject);
  return out;
}

std::string client_subject(const std::array<std::uint8_t, 16>& per_ip_key) {
  const auto v6 = asio::ip::make_address_v6(per_ip_key);
  if (v6.is_v4_mapped()) return asio::ip::make_address_v4(asio::ip::v4_mapped, v6).to_string();
  return v6.to_string() + "/64";
}

std::uint64_t merged_count(std::uint64_t local, const std::optional<cluster_view>& last) {
  if (!last || last->local_then > local) return local;  // none, or from an older local window
  return std::max(local, last->total + (local - last->local_then));
}

void cluster_view_cache::remember(const std::string& key, cluster_view view,
                                  clock::time_point asked, clock::duration window) {
  std::lock_guard lock(mutex_);
  slot& s = slots_[std::hash<std::string>{}(key) % slots_.size()];
  s.key = key;
  s.view = view;
  s.valid_until = asked + window;
}

std::optional<cluster_view> cluster_view_cache::find(const std::string& key,
                                                     clock::time_point now) {
  std::lock_guard lock(mutex_);
  const slot& s = slots_[std::hash<std::string>{}(key) % slots_.size()];
  if (s.key != key || now >= s.valid_until) return std::nullopt;
  return s.view;
}

// The Redis thread: one blocking hiredis connection, requests pipelined in batches off a bounded
// queue, reconnection with back-off. Everything here but submit() and stop() runs on it.
struct shared_state::connection {
  connection(config::redis_url where, metrics* m)
      : where_(std::move(where)), label_(where_.to_string()), metrics_(m) {}

  // Queues one request; false (and `done` answered nullopt here) when Redis is not up, the queue
  // is full or the thread stops.
  bool submit(std::vector<std::string> argv, answer_handler done) {
    bool full = false;
    {
      std::lock_guard lock(mutex_);
      if (!stopping_ && up_ && queue_.size() < queue_limit) {
        queue_.push_back({std::move(argv), std::move(done)});
        wake_.notify_one();
        return true;
      }
      full = !stopping_ && up_;
    }
    if (full && metrics_) metrics_->add("tlsbridge_shared_state_dropped_total", {});
    if (done) done(std::nullopt);
    return false;
  }

  void stop() {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    up_ = false;
    wake_.notify_one();
  }

  bool up() const { return up_.load(); }

  void run() {
    if (metrics_) metrics_->set("tlsbridge_shared_state_up", {}, 0);
    auto retry = first_retry;
    while (!stopping()) {
      std::string why;
      redisContext* c = open(why);
      if (c == nullptr) {
        went_down(why);
        std::unique_lock lock(mutex_);
        wake_.wait_for(lock, retry, [this] { return stopping_; });
        retry = std::min<std::chrono::milliseconds>(retry * 2, max_retry);
        continue;
      }
      retry = first_retry;
      came_up();
      why = serve(*c);
      redisFree(c);
      if (!why.empty()) went_down(why);
    }
    answer_all(take_queue());
  }

 private:
  struct request {
    std::vector<std::string> argv;
    answer_handler done;
  };

  bool stopping() {
    std::lock_guard lock(mutex_);
    return stopping_;
  }

  std::deque<request> take_queue() {
    std::lock_guard lock(mutex_);
    return std::exchange(queue_, {});
  }

  static void answer_all(std::deque<request> requests) {
    for (auto& r : requests)
      if (r.done) r.done(std::nullopt);
  }

  redisContext* open(std::string& why) {
    return open_redis(where_, std::chrono::duration_cast<std::chrono::seconds>(connect_timeout),
                      why);
  }

  // Serves requests until the connection fails (the reason) or the thread stops ("").
  std::string serve(redisContext& c) {
    for (;;) {
      std::vector<request> batch;
      {
        std::unique_lock lock(mutex_);
        wake_.wait_for(lock, idle_ping, [this] { return stopping_ || !queue_.empty(); });
        if (stopping_) return {};
        while (!queue_.empty() && batch.size() < max_batch) {
          batch.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
      }
      if (batch.empty()) batch.push_back({{"PING"}, nullptr});
      for (const auto& r : batch) {
        argv_view args(r.argv);
        redisAppendCommandArgv(&c, args.count(), args.pointers.data(), args.lengths.data());
      }
      for (std::size_t i = 0; i < batch.size(); ++i) {
        void* raw = nullptr;
        if (redisGetReply(&c, &raw) != REDIS_OK || raw == nullptr) {
          std::string why = c.errstr[0] != '\0' ? c.errstr : "connection closed";
          for (; i < batch.size(); ++i)
            if (batch[i].done) batch[i].done(std::nullopt);
          return why;
        }
        auto* reply = static_cast<redisReply*>(raw);
        const auto answer = integer_of(*reply);
        if (!answer)
          spdlog::debug("shared state: Redis answered an error: {}",
                        std::string_view(reply->str ? reply->str : "", reply->len));
        freeReplyObject(reply);
        if (batch[i].done) batch[i].done(answer);
      }
    }
  }

  void came_up() {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return;
      up_ = true;
    }
    if (metrics_) metrics_->set("tlsbridge_shared_state_up", {}, 1);
    if (throttle_.success("redis"))
      spdlog::info("shared state: Redis at {} is reachable again; counters are shared again",
                   label_);
    else
      spdlog::info("shared state: counters shared through Redis at {}", label_);
  }

  void went_down(const std::string& why) {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return;
      up_ = false;
    }
    answer_all(take_queue());
    if (metrics_) metrics_->set("tlsbridge_shared_state_up", {}, 0);
    if (auto held_back = throttle_.failure("redis", warning_throttle::clock::now()))
      spdlog::warn(
          "shared state: Redis at {} not reachable ({}); each instance counts alone "
          "until it is back{}",
          label_, why,
          *held_back ? " (" + std::to_string(*held_back) + " more failed attempts)" : "");
  }

  const config::redis_url where_;
  const std::string label_;
  metrics* const metrics_;
  warning_throttle throttle_{60s};  // on the Redis thread only
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<request> queue_;    // under mutex_
  bool stopping_ = false;        // under mutex_
  std::atomic<bool> up_{false};  // written under mutex_, read anywhere
};

shared_state::shared_state(std::string url_text, config::redis_url where, metrics* m)
    : url_text_(std::move(url_text)),
      label_(where.to_string()),
      connection_(std::make_shared<connection>(where, m)),
      metrics_(m),
      feed_(std::move(where)) {}

void shared_state::start() {
  if (!thread_.joinable()) thread_ = std::thread([c = connection_] { c->run(); });
  feed_.start();
}

shared_state::~shared_state() {
  stop();
}

void shared_state::stop() {
  feed_.stop();
  connection_->stop();
  if (thread_.joinable()) thread_.join();
}

bool shared_state::up() const {
  return connection_->up();
}

void shared_state::send(std::vector<std::string> argv, answer_handler done) {
  connection_->submit(std::move(argv), std::move(done));
}

void shared_state::publish(std::string channel, std::string message) {
  send({"PUBLISH", std::move(channel), std::move(message)}, nullptr);
}

asio::awaitable<std::optional<long long>> shared_state::ask(std::vector<std::string> argv,
                                                            answer_handler also) {
  if (!connection_->up()) co_return std::nullopt;
  auto wait = std::make_shared<answer_wait>(co_await asio::this_coro::executor);
  wait->timer.expires_after(answer_budget);
  connection_->submit(std::move(argv), [wait, also = std::move(also)](std::optional<long long> a) {
    if (also) also(a);
    asio::post(wait->timer.get_executor(), [wait, a] {
      if (wait->settled) return;
      wait->settled = true;
      wait->answer = a;
      wait->timer.cancel();
    });
  });
  boost::system::error_code ignored;
  co_await wait->timer.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
  wait->settled = true;
  co_return wait->answer;
}

asio::awaitable<std::uint64_t> shared_state::count(const shared_key& key, clock::duration window,
                                                   std::uint64_t local) {
  return count_key(redis_key(key), window, local);
}

asio::awaitable<std::uint64_t> shared_state::count_key(std::string k, clock::duration window,
                                                       std::uint64_t local) {
  const auto asked = clock::now();
  const auto ms =
      std::max<long long>(1, std::chrono::duration_cast<std::chrono::milliseconds>(window).count());
  // Named before the co_await: GCC 12 cannot put a braced list in a coroutine's frame.
  std::vector<std::string> argv{"EVAL", std::string(window_script), "1", k, std::to_string(ms)};
  // Every answer, even one too late for this decision, is the key's latest cluster view.
  answer_handler remember = [this, k, local, asked, window](std::optional<long long> total) {
    if (total && *total > 0)
      views_.remember(k, {static_cast<std::uint64_t>(*total), local}, asked, window);
  };
  const auto answer = co_await ask(std::move(argv), std::move(remember));
  if (answer && *answer > 0)
    co_return merged_count(local, cluster_view{static_cast<std::uint64_t>(*answer), local});
  if (metrics_) metrics_->add("tlsbridge_shared_state_local_decisions_total", {});
  co_return merged_count(local, views_.find(k, clock::now()));
}

void shared_state::block(const shared_key& key, clock::duration duration) {
  const auto ms = std::max<long long>(
      1, std::chrono::duration_cast<std::chrono::milliseconds>(duration).count());
  connection_->submit({"SET", redis_key(key), "1", "PX", std::to_string(ms)}, nullptr);
}

asio::awaitable<shared_state::clock::duration> shared_state::blocked_for(const shared_key& key) {
  return blocked_for_key(redis_key(key));
}

asio::awaitable<shared_state::clock::duration> shared_state::blocked_for_key(std::string key) {
  std::vector<std::string> argv{"PTTL", std::move(key)};
  const auto left = co_await ask(std::move(argv), nullptr);
  if (!left || *left <= 0) co_return clock::duration::zero();
  co_return std::chrono::milliseconds(*left);
}

std::shared_ptr<shared_state> shared_state_for(const std::string& url,
                                               std::shared_ptr<shared_state> current, metrics* m) {
  if (url.empty()) return nullptr;
  if (current && current->url() == url) return current;
  auto parsed = config::parse_redis_url(url);
  if (!parsed.url) throw std::runtime_error("[server] shared_state " + parsed.error);
  return std::make_shared<shared_state>(url, *parsed.url, m);
}

std::shared_ptr<shared_state> replace_shared_state(const std::shared_ptr<shared_state>& current,
                                                   std::shared_ptr<shared_state> next, metrics& m) {
  if (current && current != next) {
    spdlog::info("shared state: {} no longer used", current->label());
    current->stop();
    if (!next) m.set("tlsbridge_shared_state_up", {}, 0);
  }
  if (next) next->start();
  return next;
}

}  // namespace tlsbridge::proxy
