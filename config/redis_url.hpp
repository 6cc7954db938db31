// `[server] shared_state`: where several instances keep the counters they share
// (proxy/shared_state). A Redis URL, redis://[[user]:password@]host[:port][/database] — RFC 3986
// syntax read by Boost.URL; the user, password and database as Redis's own clients take them (AUTH,
// SELECT). TLS to Redis (rediss://) is not supported: the proxy talks to Redis in the clear, on a
// network the operator trusts (README, "Deploy: several instances").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tlsbridge::config {

struct redis_url {
  std::string host;  // a name or an IP address (IPv6 without brackets)
  std::uint16_t port = 6379;
  std::string user;       // "" = Redis's default user (AUTH with the password alone)
  std::string password;   // "" = no AUTH
  unsigned database = 0;  // SELECT when not 0

  // For log lines: the URL without the user and password.
  std::string to_string() const;
};

// The URL, or why it is not one (a sentence for check-config's error).
struct redis_url_result {
  std::optional<redis_url> url;
  std::string error;
};
redis_url_result parse_redis_url(std::string_view text);

}  // namespace tlsbridge::config
