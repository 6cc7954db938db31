// `[listener.auth_guard]`'s counters (proxy/auth_counters.hpp) shared by the instances of
// `[server] shared_state` (proxy/shared_state.hpp), so a spray split across instances meets one
// threshold per address and per user. The guard asks synchronously, inside a machine's event
// handling, so nothing here waits on Redis; each instance decides on its own tables
// (local_auth_counters), which Redis keeps up to date:
//  * a failure is counted locally and sent to Redis (one Lua script: INCR in the window; at the
//    threshold SET the block key for `block` and PUBLISH it on the listener's feed); the decision
//    uses merged_count of the local count and the last cluster total Redis answered for the key,
//    and Redis's own answer, when it reaches the threshold, blocks the key here too;
//  * every instance's feed (proxy/shared_feed.hpp) receives the block at once and holds it in its
//    own table, so the next attempt on any instance is answered by the proxy;
//  * blocked() asks Redis for the key's block in the background (PTTL), for blocks published while
//    this instance was not listening (started later, Redis briefly lost);
//  * a success is published too: the (user, address) exemption holds on every instance.
// The lag is Redis's round trip plus the feed's delivery (well under a millisecond on a LAN):
// an attempt that reaches another instance within it is still relayed. Redis lost: the local
// tables alone, as without shared_state — never a refusal because Redis is gone. Keys in Redis:
// "tlsbridge:authfail:<listener>:<key>", "tlsbridge:authblock:<listener>:<key>"; channel
// "tlsbridge:feed:<listener>:auth".
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "proxy/auth_counters.hpp"
#include "proxy/shared_state.hpp"

namespace tlsbridge::proxy {

class shared_auth_counters final : public auth_counters {
 public:
  shared_auth_counters() = default;
  ~shared_auth_counters() override;

  // Shares the counts of listener `listener` through `shared` from now on (null: this process
  // alone). Called when a configuration comes into force; the local tables are kept.
  void attach(std::shared_ptr<shared_state> shared, const std::string& listener);

  std::uint32_t count_failure(std::string_view key, const failure_limit& limit,
                              clock::time_point now) override;
  bool blocked(std::string_view key, clock::time_point now) override;
  void remember_success(std::string_view key, clock::time_point now) override;
  bool succeeded_within(std::string_view key, clock::duration within,
                        clock::time_point now) override;

  // A message of the listener's feed ("block <ms> <key>", "ok <key>"); anything else is ignored.
  void on_feed(std::string_view message);

 private:
  struct link {
    std::shared_ptr<shared_state> shared;
    std::string listener;
    std::uint64_t token = 0;
  };
  link current() const;
  void detach(link& l);

  // Held in a shared_ptr: answers arriving on the Redis thread after this object is gone find
  // nothing to update.
  std::shared_ptr<local_auth_counters> local_ = std::make_shared<local_auth_counters>();
  std::shared_ptr<cluster_view_cache> views_ = std::make_shared<cluster_view_cache>();
  mutable std::mutex mutex_;  // guards link_
  link link_;
};

}  // namespace tlsbridge::proxy
