#include "proxy/status_board.hpp"

#include <algorithm>

#include "proxy/connection_record.hpp"
#include "proxy/refusal_reason.hpp"

namespace tlsbridge::proxy {

namespace {

std::int64_t minute_of(status_board::clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::minutes>(t.time_since_epoch()).count();
}

// This thread's figures for the board it used last (boards are told apart by id, not address).
thread_local std::uint64_t cached_board = 0;
thread_local worker_figures* cached_figures = nullptr;
std::atomic<std::uint64_t> next_board_id{1};

}  // namespace

std::size_t tls_version_index(std::string_view version) {
  for (std::size_t i = 0; i + 1 < tls_version_names.size(); ++i)
    if (tls_version_names[i] == version) return i;
  return tls_version_names.size() - 1;
}

void worker_figures::count_tls(leg_side side, std::size_t version, std::int64_t minute) {
  auto& slot = minutes_[static_cast<std::size_t>(minute) % minute_slots];
  if (slot.minute.load(std::memory_order_relaxed) != minute) {
    for (auto& c : slot.counts) c.store(0, std::memory_order_relaxed);
    slot.minute.store(minute, std::memory_order_release);
  }
  auto& c = slot.counts[static_cast<std::size_t>(side) * tls_version_names.size() +
                        std::min(version, tls_version_names.size() - 1)];
  // One writer: a plain read-modify-write, atomic only so the page may read it meanwhile.
  c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

void worker_figures::add_tls(std::int64_t first, std::int64_t last, tls_counts& into) const {
  for (const auto& slot : minutes_) {
    const std::int64_t m = slot.minute.load(std::memory_order_acquire);
    if (m < first || m > last) continue;
    for (std::size_t v = 0; v < tls_version_names.size(); ++v) {
      into.front[v] += slot.counts[v].load(std::memory_order_relaxed);
      into.back[v] += slot.counts[tls_version_names.size() + v].load(std::memory_order_relaxed);
    }
  }
}

void worker_figures::add_refusal(refusal_entry entry) {
  std::lock_guard lock(ring_mutex_);
  ring_[next_] = std::move(entry);
  next_ = (next_ + 1) % ring_size;
  size_ = std::min(size_ + 1, ring_size);
}

void worker_figures::copy_refusals(std::vector<refusal_entry>& into) const {
  std::lock_guard lock(ring_mutex_);
  for (std::size_t i = 0; i < size_; ++i)
    into.push_back(ring_[(next_ + ring_size - size_ + i) % ring_size]);
}

status_board::status_board() : id_(next_board_id.fetch_add(1)) {}

worker_figures& status_board::local() {
  if (cached_board == id_) return *cached_figures;
  std::lock_guard lock(registry_mutex_);
  workers_.push_back(std::make_unique<worker_figures>());
  cached_board = id_;
  cached_figures = workers_.back().get();
  return *cached_figures;
}

void status_board::record(const connection_record& r, clock::time_point now) {
  auto refused = refusals_of(r);
  const bool front = r.front.tls;
  const bool back = r.back && r.back->tls;
  if (!front && !back && refused.empty()) return;
  worker_figures& mine = local();
  const std::int64_t minute = minute_of(now);
  if (front) mine.count_tls(leg_side::front, tls_version_index(r.front.version), minute);
  if (back) mine.count_tls(leg_side::back, tls_version_index(r.back->version), minute);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  for (auto& one : refused)
    mine.add_refusal({ms, r.client, r.listener, std::move(one.reason), std::move(one.detail)});
}

std::vector<refusal_entry> status_board::last_refusals(std::size_t n) const {
  std::vector<refusal_entry> all;
  {
    std::lock_guard lock(registry_mutex_);
    for (const auto& w : workers_) w->copy_refusals(all);
  }
  std::reverse(all.begin(), all.end());  // equal times: the later entry of a ring first
  std::stable_sort(all.begin(), all.end(), [](const refusal_entry& a, const refusal_entry& b) {
    return a.unix_ms > b.unix_ms;
  });
  if (all.size() > n) all.resize(n);
  return all;
}

tls_counts status_board::tls_last_hour(clock::time_point now) const {
  tls_counts out;
  const std::int64_t last = minute_of(now);
  std::lock_guard lock(registry_mutex_);
  for (const auto& w : workers_) w->add_tls(last - 59, last, out);
  return out;
}

}  // namespace tlsbridge::proxy
