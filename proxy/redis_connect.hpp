// Opening a blocking hiredis connection the way `[server] shared_state` describes it
// (config/redis_url.hpp): connect with a timeout that also bounds each command, keepalive, then
// AUTH and SELECT as the URL says. Used by the Redis thread (proxy/shared_state.cpp) and the
// feed thread (proxy/shared_feed.hpp).
#pragma once

#include <hiredis/hiredis.h>

#include <chrono>
#include <string>
#include <vector>

#include "config/redis_url.hpp"

namespace tlsbridge::proxy {

// A request's words as hiredis takes them: pointers and lengths (binary-safe).
struct argv_view {
  explicit argv_view(const std::vector<std::string>& argv) {
    for (const auto& a : argv) {
      pointers.push_back(a.data());
      lengths.push_back(a.size());
    }
  }
  int count() const { return static_cast<int>(pointers.size()); }
  std::vector<const char*> pointers;
  std::vector<std::size_t> lengths;
};

// The connection, or null with the reason in `why`.
redisContext* open_redis(const config::redis_url& where, std::chrono::seconds timeout,
                         std::string& why);

// One command answered at once (a connection's opening, a SUBSCRIBE): "" or what went wrong.
std::string redis_command(redisContext& c, const std::vector<std::string>& argv);

}  // namespace tlsbridge::proxy
