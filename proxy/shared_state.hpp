// Counters and blocks that several tlsbridge instances behind one load balancer share through a
// Redis server (`[server] shared_state = "redis://host:port"`; README, "Deploy: several
// instances"), so a client that spreads its connections or its guesses over the instances meets
// one threshold. Two operations, keys namespaced by kind and listener:
//  * count: one event for a key in a window that starts at the key's first event anywhere in the
//    cluster (INCR, and PEXPIRE when the count starts, in one Lua script); answers the cluster
//    total;
//  * block: the key is blocked for a duration (SET PX); blocked_for asks what is left of it (PTTL).
//
// The workers never wait on Redis's socket: one thread per process holds a blocking hiredis
// connection and serves a bounded queue (full: the request is dropped and counted). A decision
// waits at most `answer_budget` for the answer — the coroutine is suspended, its io_context runs
// on — and past that, or while Redis is lost, decides on `merged_count`: this process's own
// count together with the last cluster total Redis gave for the key. So the lag is one answer:
// without an answer in time, what other instances counted since this one last asked is missed.
// Redis lost or not there at start: counting goes on locally, a `warn` line (throttled) and
// `tlsbridge_shared_state_up` 0, reconnection with back-off, an `info` line when it is back.
// Never a refusal because Redis is gone, never a failed start. A second connection per process,
// the feed (proxy/shared_feed.hpp), receives what the instances publish to each other (send and
// publish below: no answer awaited).
#pragma once

#include <array>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "config/redis_url.hpp"
#include "proxy/metrics.hpp"
#include "proxy/shared_feed.hpp"

namespace tlsbridge::proxy {

// What a Redis key counts: "tlsbridge:<kind>:<listener>:<subject>", e.g.
// "tlsbridge:rate:smtp-in:192.0.2.7". A subject longer than `max_subject` (a user name an attacker
// chose) is replaced by a hash of it, so a key stays small whatever a peer sends.
struct shared_key {
  std::string_view kind;      // "rate", or another counter's own word
  std::string_view listener;  // the listener's name
  std::string_view subject;   // a client address, a user name
};
inline constexpr std::size_t max_subject = 256;
std::string redis_key(const shared_key& key);

// The subject of a per-client key (proxy/listener.hpp per_ip_key): "192.0.2.7", "2001:db8::/64".
std::string client_subject(const std::array<std::uint8_t, 16>& per_ip_key);

// The last cluster total Redis answered for a key, and this process's own count when it asked.
struct cluster_view {
  std::uint64_t total = 0;
  std::uint64_t local_then = 0;
};

// The count a decision uses. Never below this process's own count (Redis may have restarted and
// forgotten); with a view from the same local window (local_then <= local), that total plus what
// this process counted since. Pure.
std::uint64_t merged_count(std::uint64_t local, const std::optional<cluster_view>& last);

// The last cluster_view per key, in a fixed number of slots (a key hashes to one; a newer key
// takes it over), each valid for the window it was asked with. Thread-safe.
class cluster_view_cache {
 public:
  using clock = std::chrono::steady_clock;
  explicit cluster_view_cache(std::size_t slots = 4096) : slots_(slots == 0 ? 1 : slots) {}
  void remember(const std::string& key, cluster_view view, clock::time_point asked,
                clock::duration window);
  std::optional<cluster_view> find(const std::string& key, clock::time_point now);

 private:
  struct slot {
    std::string key;
    cluster_view view;
    clock::time_point valid_until{};
  };
  std::mutex mutex_;
  std::vector<slot> slots_;
};

class shared_state {
 public:
  using clock = std::chrono::steady_clock;
  // How long a decision waits for Redis's answer before it decides on merged_count. An answer
  // takes a round trip (well under 1 ms on a LAN); the rest is room for a loaded host, whose late
  // answers would let a client past the shared limit, while a Redis that hangs costs each new
  // connection at most this until the 1 s command timeout declares it lost.
  static constexpr std::chrono::milliseconds answer_budget{200};
  // Requests waiting for the Redis thread; past it they are dropped (answered "no answer").
  static constexpr std::size_t queue_limit = 4096;

  // `m` may be null. Nothing runs before start().
  shared_state(std::string url_text, config::redis_url where, metrics* m);
  ~shared_state();
  shared_state(const shared_state&) = delete;
  shared_state& operator=(const shared_state&) = delete;

  // Starts the Redis thread, which connects (and reconnects) by itself; once. At start-up after
  // the privilege drop, like the workers: capabilities are per thread.
  void start();
  // Ends the Redis thread (a request in flight is given up) and waits for it; afterwards every
  // operation answers from local state at once. Called on the main thread (reload, shutdown).
  void stop();
  const std::string& url() const { return url_text_; }  // as configured, password and all
  const std::string& label() const { return label_; }   // for logs: without user and password
  bool up() const;

  // Counts one event for `key` in `window`; `local` is this process's own count including it.
  // Answers the count to decide on (merged_count with Redis's fresh answer, or the last one).
  // `key` may be a temporary whose views die before the result is awaited: both functions make
  // the Redis key (an owned string) before their coroutine exists.
  boost::asio::awaitable<std::uint64_t> count(const shared_key& key, clock::duration window,
                                              std::uint64_t local);
  // Marks `key` blocked for `duration` in the whole cluster (no answer awaited).
  void block(const shared_key& key, clock::duration duration);
  // What is left of a cluster-wide block of `key`; zero when there is none or Redis did not
  // answer in time (the caller also holds its own blocks).
  boost::asio::awaitable<clock::duration> blocked_for(const shared_key& key);

  // One Redis command (argv) and what to do with its integer answer (nullopt: no answer — Redis
  // lost, an error reply, dropped, stopped). Called on the Redis thread, or on the caller's when
  // the request is not queued.
  using answer_handler = std::function<void(std::optional<long long>)>;
  struct connection;  // the Redis thread's side (shared_state.cpp)

  // Sends argv without waiting: `done` (may be null) gets the answer on the Redis thread, or
  // nullopt at once when Redis is not up or the queue is full.
  void send(std::vector<std::string> argv, answer_handler done);
  // PUBLISH on `channel`, no answer awaited; the messages other instances (and this one) receive.
  void publish(std::string channel, std::string message);
  shared_feed& feed() { return feed_; }

 private:
  // The coroutines behind count() and blocked_for(), on the owned Redis key.
  boost::asio::awaitable<std::uint64_t> count_key(std::string key, clock::duration window,
                                                  std::uint64_t local);
  boost::asio::awaitable<clock::duration> blocked_for_key(std::string key);
  // Queues argv; waits for its answer at most answer_budget. `also` sees every answer, even one
  // that came too late for this wait.
  boost::asio::awaitable<std::optional<long long>> ask(std::vector<std::string> argv,
                                                       answer_handler also);

  std::string url_text_;
  std::string label_;
  std::shared_ptr<connection> connection_;
  metrics* metrics_;
  cluster_view_cache views_;
  shared_feed feed_;
  std::thread thread_;
};

// The process's shared_state for `url` ("" = none): `current` when it already serves that URL,
// else a new one (the caller stops the old one once the new config is in force).
std::shared_ptr<shared_state> shared_state_for(const std::string& url,
                                               std::shared_ptr<shared_state> current, metrics* m);
// A reload's new shared_state in force: the old one, when another, is stopped (its sessions go on
// counting alone) and the new one started; turned off, the gauge says 0. Answers `next`.
std::shared_ptr<shared_state> replace_shared_state(const std::shared_ptr<shared_state>& current,
                                                   std::shared_ptr<shared_state> next, metrics& m);

}  // namespace tlsbridge::proxy
