// A hashed timing wheel of deadlines, counted in ticks: the pure part of the idle watchdogs
// (proxy/idle_watchdogs). Each deadline is an intrusive entry — two links and its due tick — kept
// inside the object it belongs to, so scheduling allocates nothing; the wheel is 1,024 slots of
// list heads, one per tick, and an entry whose due tick is a revolution or more away waits in its
// slot until the wheel comes round to it for the last time. advance(now) hands every entry due at
// or before `now` to a callback, unlinked first, so the callback may schedule it again. Time is
// passed in: nothing here waits or reads a clock (tests/unit/proxy). One thread only.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace tlsbridge::proxy {

struct wheel_entry {
  wheel_entry() = default;
  wheel_entry(const wheel_entry&) = delete;
  wheel_entry& operator=(const wheel_entry&) = delete;
  bool linked() const { return next != nullptr; }
  // Takes the entry out of whatever list holds it; nothing when it is not linked.
  void unlink();

  wheel_entry* prev = nullptr;
  wheel_entry* next = nullptr;
  std::uint64_t due = 0;  // the tick it is due at
};

class deadline_wheel {
 public:
  static constexpr std::size_t slot_count = 1024;

  // `now`: the current tick; every deadline at or before it is due at the next advance.
  explicit deadline_wheel(std::uint64_t now);
  deadline_wheel(const deadline_wheel&) = delete;
  deadline_wheel& operator=(const deadline_wheel&) = delete;
  ~deadline_wheel();

  // (Re)schedules `e` for tick `due` (an entry already in the wheel moves).
  void schedule(wheel_entry& e, std::uint64_t due);
  // Takes `e` out; false when it was not scheduled.
  bool cancel(wheel_entry& e);
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  std::uint64_t now() const { return now_; }

  // Moves the wheel to tick `now` (never backwards) and calls expired(entry&) for each entry due
  // at or before it, after all of them were unlinked.
  template <class F>
  void advance(std::uint64_t now, F&& expired) {
    wheel_entry due_list;
    due_list.prev = due_list.next = &due_list;
    collect(now, due_list);
    while (due_list.next != &due_list) {
      wheel_entry* e = due_list.next;
      e->unlink();
      expired(*e);
    }
  }

 private:
  void collect(std::uint64_t now, wheel_entry& out);
  wheel_entry& slot(std::uint64_t tick) { return slots_[tick % slot_count]; }

  std::array<wheel_entry, slot_count> slots_;  // list heads
  std::uint64_t now_;
  std::size_t size_ = 0;
};

}  // namespace tlsbridge::proxy
