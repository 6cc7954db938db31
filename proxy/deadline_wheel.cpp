// The timing wheel's list operations (proxy/deadline_wheel.hpp).
#include "proxy/deadline_wheel.hpp"

namespace tlsbridge::proxy {
namespace {

void link_before(wheel_entry& head, wheel_entry& e) {
  e.prev = head.prev;
  e.next = &head;
  head.prev->next = &e;
  head.prev = &e;
}

}  // namespace

void wheel_entry::unlink() {
  if (!next) return;
  prev->next = next;
  next->prev = prev;
  prev = next = nullptr;
}

deadline_wheel::deadline_wheel(std::uint64_t now) : now_(now) {
  for (auto& head : slots_) head.prev = head.next = &head;
}

deadline_wheel::~deadline_wheel() {
  // Entries outlive the wheel in their owners: leave none pointing into it.
  for (auto& head : slots_)
    while (head.next != &head) head.next->unlink();
}

void deadline_wheel::schedule(wheel_entry& e, std::uint64_t due) {
  if (e.linked())
    e.unlink();
  else
    ++size_;
  // Due already: the next advance sees it, whatever tick that moves to.
  e.due = due > now_ ? due : now_ + 1;
  link_before(slot(e.due), e);
}

bool deadline_wheel::cancel(wheel_entry& e) {
  if (!e.linked()) return false;
  e.unlink();
  --size_;
  return true;
}

void deadline_wheel::collect(std::uint64_t now, wheel_entry& out) {
  if (now <= now_) return;
  // A jump of a revolution or more visits each slot once.
  const std::uint64_t first = now - now_ > slot_count ? now - slot_count + 1 : now_ + 1;
  now_ = now;
  for (std::uint64_t t = first; t <= now; ++t) {
    wheel_entry& head = slot(t);
    for (wheel_entry* e = head.next; e != &head;) {
      wheel_entry* next = e->next;
      if (e->due <= now) {
        e->unlink();
        --size_;
        link_before(out, *e);
      }
      e = next;
    }
  }
}

}  // namespace tlsbridge::proxy
