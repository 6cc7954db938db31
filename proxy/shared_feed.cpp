#include "proxy/shared_feed.hpp"

#include <hiredis/hiredis.h>
#include <poll.h>
#include <spdlog/spdlog.h>

#include <cerrno>

#include "proxy/redis_connect.hpp"

namespace tlsbridge::proxy {

using namespace std::chrono_literals;

namespace {

constexpr auto feed_timeout = 1s;   // connecting, and the PSUBSCRIBE's answer
constexpr int stop_check_ms = 200;  // how soon stop() is noticed while nothing arrives
constexpr auto feed_retry = 1s;     // between attempts while Redis is lost

std::string_view text_of(const redisReply& r) {
  if (r.type != REDIS_REPLY_STRING || r.str == nullptr) return {};
  return {r.str, r.len};
}

}  // namespace

void shared_feed::start() {
  if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
}

void shared_feed::stop() {
  {
    std::lock_guard lock(wait_mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::uint64_t shared_feed::subscribe(std::string channel, handler h) {
  std::lock_guard lock(handlers_mutex_);
  const auto token = next_token_++;
  handlers_.emplace(token, std::make_pair(std::move(channel), std::move(h)));
  return token;
}

void shared_feed::unsubscribe(std::uint64_t token) {
  std::lock_guard lock(handlers_mutex_);
  handlers_.erase(token);
}

void shared_feed::deliver(std::string_view channel, std::string_view message) {
  std::lock_guard lock(handlers_mutex_);
  for (const auto& [token, h] : handlers_)
    if (h.first == channel) h.second(message);
}

void shared_feed::run() {
  while (!stopping_) {
    std::string why;
    redisContext* c = open_redis(where_, feed_timeout, why);
    if (c != nullptr) {
      if (auto error = redis_command(*c, {"PSUBSCRIBE", std::string(feed_pattern)});
          !error.empty() || c->err)
        why = "PSUBSCRIBE refused: " + (error.empty() ? std::string(c->errstr) : error);
      else
        why = listen(*c);
      redisFree(c);
    }
    if (stopping_) break;
    spdlog::debug("shared state: the feed from Redis is interrupted ({}); retrying", why);
    std::unique_lock lock(wait_mutex_);
    wake_.wait_for(lock, feed_retry, [this] { return stopping_.load(); });
  }
}

std::string shared_feed::listen(redisContext& c) {
  while (!stopping_) {
    pollfd p{c.fd, POLLIN, 0};
    const int ready = ::poll(&p, 1, stop_check_ms);
    if (ready < 0 && errno != EINTR) return "poll failed";
    if (ready <= 0) continue;
    if (redisBufferRead(&c) != REDIS_OK) return c.errstr[0] ? c.errstr : "connection closed";
    void* raw = nullptr;
    while (redisGetReplyFromReader(&c, &raw) == REDIS_OK && raw != nullptr) {
      auto* r = static_cast<redisReply*>(raw);
      // A pattern subscription's message: ["pmessage", pattern, channel, payload].
      if (r->type == REDIS_REPLY_ARRAY && r->elements == 4 && text_of(*r->element[0]) == "pmessage")
        deliver(text_of(*r->element[2]), text_of(*r->element[3]));
      freeReplyObject(r);
      raw = nullptr;
    }
    if (c.err) return c.errstr;
  }
  return {};
}

}  // namespace tlsbridge::proxy
