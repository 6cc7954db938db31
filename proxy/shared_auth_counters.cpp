#include "proxy/shared_auth_counters.hpp"

#include <algorithm>
#include <charconv>

namespace tlsbridge::proxy {

namespace {

// INCR in the window (as proxy/shared_state.cpp's count); at the threshold, the block key and its
// news on the feed, once per block. KEYS: count, block. ARGV: window ms, threshold, block ms,
// channel, the guard's key.
constexpr std::string_view failure_script =
    "local n = redis.call('INCR', KEYS[1]) "
    "if n == 1 or redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end "
    "if n >= tonumber(ARGV[2]) and redis.call('EXISTS', KEYS[2]) == 0 then "
    "redis.call('SET', KEYS[2], '1', 'PX', ARGV[3]) "
    "redis.call('PUBLISH', ARGV[4], 'block ' .. ARGV[3] .. ' ' .. ARGV[5]) end "
    "return n";

std::string ms_text(auth_counters::clock::duration d) {
  return std::to_string(
      std::max<long long>(1, std::chrono::duration_cast<std::chrono::milliseconds>(d).count()));
}

std::string channel_of(const std::string& listener) {
  return redis_key({"feed", listener, "auth"});
}

}  // namespace

shared_auth_counters::~shared_auth_counters() {
  std::lock_guard lock(mutex_);
  detach(link_);
}

void shared_auth_counters::detach(link& l) {
  if (l.shared && l.token) l.shared->feed().unsubscribe(l.token);
  l = {};
}

void shared_auth_counters::attach(std::shared_ptr<shared_state> shared,
                                  const std::string& listener) {
  std::lock_guard lock(mutex_);
  if (link_.shared == shared && link_.listener == listener) return;
  detach(link_);
  if (!shared) return;
  link_.token =
      shared->feed().subscribe(channel_of(listener), [this](std::string_view m) { on_feed(m); });
  link_.shared = std::move(shared);
  link_.listener = listener;
}

shared_auth_counters::link shared_auth_counters::current() const {
  std::lock_guard lock(mutex_);
  return {link_.shared, link_.listener, 0};
}

std::uint32_t shared_auth_counters::count_failure(std::string_view key, const failure_limit& limit,
                                                  clock::time_point now) {
  const std::uint32_t local = local_->count_failure(key, limit, now);
  const link l = current();
  if (!l.shared) return local;
  const std::string count_key = redis_key({"authfail", l.listener, key});
  const auto merged = merged_count(local, views_->find(count_key, now));
  if (merged >= limit.threshold) local_->block(key, limit.block, now);
  std::vector<std::string> argv{"EVAL",
                                std::string(failure_script),
                                "2",
                                count_key,
                                redis_key({"authblock", l.listener, key}),
                                ms_text(limit.window),
                                std::to_string(limit.threshold),
                                ms_text(limit.block),
                                channel_of(l.listener),
                                std::string(key)};
  // Redis's total is the cluster's: remembered for the next decision, and at the threshold the
  // key is blocked here as soon as it is known (the feed says so too, a moment later).
  l.shared->send(
      std::move(argv), [local_table = local_, views = views_, count_key, key = std::string(key),
                        local, now, limit](std::optional<long long> total) {
        if (!total || *total <= 0) return;
        views->remember(count_key, {static_cast<std::uint64_t>(*total), local}, now, limit.window);
        if (static_cast<std::uint64_t>(*total) >= limit.threshold)
          local_table->block(key, limit.block, clock::now());
      });
  return static_cast<std::uint32_t>(std::min<std::uint64_t>(merged, UINT32_MAX));
}

bool shared_auth_counters::blocked(std::string_view key, clock::time_point now) {
  if (local_->blocked(key, now)) return true;
  const link l = current();
  if (!l.shared) return false;
  // A block this instance has not heard of (published while it was not listening) holds from the
  // next attempt on.
  l.shared->send({"PTTL", redis_key({"authblock", l.listener, key})},
                 [local_table = local_, key = std::string(key)](std::optional<long long> left) {
                   if (left && *left > 0)
                     local_table->block(key, std::chrono::milliseconds(*left), clock::now());
                 });
  return false;
}

void shared_auth_counters::remember_success(std::string_view key, clock::time_point now) {
  local_->remember_success(key, now);
  const link l = current();
  if (l.shared) l.shared->publish(channel_of(l.listener), "ok " + std::string(key));
}

bool shared_auth_counters::succeeded_within(std::string_view key, clock::duration within,
                                            clock::time_point now) {
  return local_->succeeded_within(key, within, now);
}

void shared_auth_counters::on_feed(std::string_view message) {
  const auto now = clock::now();
  if (message.starts_with("ok ")) {
    local_->remember_success(message.substr(3), now);
    return;
  }
  if (!message.starts_with("block ")) return;
  message.remove_prefix(6);
  long long ms = 0;
  const auto [end, ec] = std::from_chars(message.data(), message.data() + message.size(), ms);
  if (ec != std::errc{} || ms <= 0 || end == message.data() + message.size() || *end != ' ') return;
  local_->block(message.substr(end - message.data() + 1), std::chrono::milliseconds(ms), now);
}

}  // namespace tlsbridge::proxy
