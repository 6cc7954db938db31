#include "proxy/redis_connect.hpp"

namespace tlsbridge::proxy {

redisContext* open_redis(const config::redis_url& where, std::chrono::seconds timeout,
                         std::string& why) {
  const timeval tv{timeout.count(), 0};
  redisContext* c = redisConnectWithTimeout(where.host.c_str(), where.port, tv);
  if (c == nullptr) {
    why = "cannot allocate a connection";
    return nullptr;
  }
  if (c->err) {
    why = c->errstr;
    redisFree(c);
    return nullptr;
  }
  redisSetTimeout(c, tv);
  redisEnableKeepAlive(c);
  std::vector<std::vector<std::string>> hello;
  if (!where.password.empty()) {
    if (where.user.empty())
      hello.push_back({"AUTH", where.password});
    else
      hello.push_back({"AUTH", where.user, where.password});
  }
  if (where.database != 0) hello.push_back({"SELECT", std::to_string(where.database)});
  for (const auto& argv : hello) {
    if (auto error = redis_command(*c, argv); !error.empty()) {
      why = argv[0] + " refused: " + error;
      redisFree(c);
      return nullptr;
    }
  }
  return c;
}

std::string redis_command(redisContext& c, const std::vector<std::string>& argv) {
  argv_view args(argv);
  auto* r = static_cast<redisReply*>(
      redisCommandArgv(&c, args.count(), args.pointers.data(), args.lengths.data()));
  if (r == nullptr) return c.errstr;
  std::string error = r->type == REDIS_REPLY_ERROR ? std::string(r->str, r->len) : "";
  freeReplyObject(r);
  return error;
}

}  // namespace tlsbridge::proxy
