#include "proxy/warning_throttle.hpp"

namespace tlsbridge::proxy {

std::optional<std::size_t> warning_throttle::failure(const std::string& key,
                                                     clock::time_point now) {
  std::lock_guard lock(mutex_);
  auto it = failing_.find(key);
  if (it == failing_.end()) {
    const std::string& slot = failing_.size() < max_keys ? key : std::string();
    it = failing_.find(slot);
    if (it == failing_.end()) {
      failing_.emplace(slot, state{now, 0});
      failing_count_ = failing_.size();
      return 0;
    }
  }
  state& s = it->second;
  if (now - s.last_written < interval_) {
    ++s.held_back;
    return std::nullopt;
  }
  const std::size_t held_back = s.held_back;
  s = state{now, 0};
  return held_back;
}

std::optional<std::size_t> warning_throttle::success(const std::string& key) {
  if (failing_count_.load(std::memory_order_relaxed) == 0) return std::nullopt;
  std::lock_guard lock(mutex_);
  const auto it = failing_.find(key);
  if (it == failing_.end()) return std::nullopt;
  const std::size_t held_back = it->second.held_back;
  failing_.erase(it);
  failing_count_ = failing_.size();
  return held_back;
}

}  // namespace tlsbridge::proxy
