// The status page's own figures (proxy/status_json.hpp), gathered per worker thread so that the
// data path never waits for a page view: each worker thread writes only its own
// `worker_figures` — TLS versions per leg in one-minute slots (relaxed atomics, one writer, read
// by the page without a lock) and a ring of its last 50 refusals (a mutex of its own, taken when a
// connection with a refusal ends and while the page copies the ring; no other thread's
// connections take it). A thread finds its figures through a thread_local pointer set at its
// first connection, the one time it takes the board's registry lock. Everything else the page
// shows is read where it already lives: the listeners' active counters and the backends' health
// (atomics), the own certificates (the main thread's).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace tlsbridge::proxy {

struct connection_record;

inline constexpr std::array<std::string_view, 5> tls_version_names{"TLSv1", "TLSv1.1", "TLSv1.2",
                                                                   "TLSv1.3", "other"};
// The index of an OpenSSL version name ("TLSv1.2") in tls_version_names.
std::size_t tls_version_index(std::string_view version);

enum class leg_side : std::size_t { front = 0, back = 1 };

// Connections by negotiated TLS version, per leg (index: tls_version_names).
struct tls_counts {
  std::array<std::uint64_t, tls_version_names.size()> front{};
  std::array<std::uint64_t, tls_version_names.size()> back{};
};

struct refusal_entry {
  std::int64_t unix_ms = 0;  // when the connection ended
  std::string client;        // "ip:port"
  std::string listener;
  std::string reason;  // proxy/refusal_reason.hpp
  std::string detail;
};

// One worker thread's figures: written by that thread only, read by the page.
class worker_figures {
 public:
  static constexpr std::size_t ring_size = 50;
  static constexpr std::size_t minute_slots = 64;  // more than the hour the page shows

  void count_tls(leg_side side, std::size_t version, std::int64_t minute);
  void add_refusal(refusal_entry entry);

  // Adds the counts of the minutes first..last (inclusive).
  void add_tls(std::int64_t first, std::int64_t last, tls_counts& into) const;
  // Appends the ring's entries, oldest first.
  void copy_refusals(std::vector<refusal_entry>& into) const;

 private:
  struct minute_slot {
    std::atomic<std::int64_t> minute{-1};
    std::array<std::atomic<std::uint32_t>, 2 * tls_version_names.size()> counts{};
  };
  std::array<minute_slot, minute_slots> minutes_;
  mutable std::mutex ring_mutex_;
  std::array<refusal_entry, ring_size> ring_;  // under ring_mutex_
  std::size_t next_ = 0;
  std::size_t size_ = 0;
};

class status_board {
 public:
  using clock = std::chrono::system_clock;

  status_board();
  status_board(const status_board&) = delete;
  status_board& operator=(const status_board&) = delete;

  // The calling thread's figures, registered at its first call.
  worker_figures& local();

  // A connection ended (on its worker's thread): its TLS versions and its refusals.
  void record(const connection_record& r, clock::time_point now = clock::now());

  // The page's reads: the newest `n` refusals of all threads, newest first; the TLS versions of
  // the connections that ended in the last hour.
  std::vector<refusal_entry> last_refusals(std::size_t n = worker_figures::ring_size) const;
  tls_counts tls_last_hour(clock::time_point now = clock::now()) const;

 private:
  std::uint64_t id_;
  mutable std::mutex registry_mutex_;
  std::vector<std::unique_ptr<worker_figures>> workers_;  // under registry_mutex_
};

}  // namespace tlsbridge::proxy
