// Messages several tlsbridge instances push to each other through the Redis of `[server]
// shared_state` (proxy/shared_state.hpp), for news that must not wait to be asked for: the auth
// guard's blocks and successes (proxy/shared_auth_counters.hpp). An instance publishes on a channel
// "tlsbridge:feed:<listener>:<topic>" (shared_state::publish); every instance's feed thread holds a
// second hiredis connection subscribed to "tlsbridge:feed:*" and hands each message to the
// handlers subscribed to its channel. A message published while an instance is disconnected is
// lost to it (Redis keeps no history of a channel); the guard also keeps its blocks as keys it can
// ask for. Reconnection every second while Redis is lost; shared_state logs the loss.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "config/redis_url.hpp"

struct redisContext;

namespace tlsbridge::proxy {

inline constexpr std::string_view feed_pattern = "tlsbridge:feed:*";

class shared_feed {
 public:
  using handler = std::function<void(std::string_view message)>;

  explicit shared_feed(config::redis_url where) : where_(std::move(where)) {}
  ~shared_feed() { stop(); }
  shared_feed(const shared_feed&) = delete;
  shared_feed& operator=(const shared_feed&) = delete;

  void start();
  // Ends the feed thread and waits for it (within a fraction of a second).
  void stop();

  // `h` is called on the feed thread for each message on `channel` until unsubscribe(token)
  // returns. A handler must not subscribe or unsubscribe.
  std::uint64_t subscribe(std::string channel, handler h);
  void unsubscribe(std::uint64_t token);

 private:
  void run();
  // Delivers messages until the connection fails (the reason) or the feed stops ("").
  std::string listen(redisContext& c);
  void deliver(std::string_view channel, std::string_view message);

  const config::redis_url where_;
  std::atomic<bool> stopping_{false};
  std::mutex wait_mutex_;
  std::condition_variable wake_;
  std::mutex handlers_mutex_;
  std::map<std::uint64_t, std::pair<std::string, handler>> handlers_;  // under handlers_mutex_
  std::uint64_t next_token_ = 1;                                       // under handlers_mutex_
  std::thread thread_;
};

}  // namespace tlsbridge::proxy
