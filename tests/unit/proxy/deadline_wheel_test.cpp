// proxy/deadline_wheel: entries fire at their tick, never early; moving or cancelling an entry
// takes it out of its old slot; deadlines a revolution or more away wait for their own round; a
// jump over many ticks fires everything due once; an expired entry may be scheduled again from
// its own callback. Ticks are passed in, so nothing here waits.
#include "proxy/deadline_wheel.hpp"

#include <catch2/catch.hpp>
#include <vector>

using namespace tlsbridge::proxy;

namespace {

struct probe : wheel_entry {
  int name = 0;
};

std::vector<int> advance(deadline_wheel& w, std::uint64_t now) {
  std::vector<int> fired;
  w.advance(now, [&](wheel_entry& e) { fired.push_back(static_cast<probe&>(e).name); });
  return fired;
}

}  // namespace

TEST_CASE("wheel: an entry fires at its tick and not before", "[proxy][wheel]") {
  deadline_wheel w(100);
  probe a;
  a.name = 1;
  w.schedule(a, 103);
  CHECK(w.size() == 1);
  CHECK(advance(w, 101).empty());
  CHECK(advance(w, 102).empty());
  CHECK(advance(w, 103) == std::vector<int>{1});
  CHECK_FALSE(a.linked());
  CHECK(w.empty());
  CHECK(advance(w, 110).empty());
}

TEST_CASE("wheel: a deadline already past fires at the next advance", "[proxy][wheel]") {
  deadline_wheel w(100);
  probe a, b;
  a.name = 1;
  b.name = 2;
  w.schedule(a, 100);
  w.schedule(b, 7);
  CHECK(advance(w, 100).empty());  // the wheel does not move backwards or stand still
  CHECK(advance(w, 101) == std::vector<int>{1, 2});
}

TEST_CASE("wheel: rescheduling moves an entry, cancelling takes it out", "[proxy][wheel]") {
  deadline_wheel w(0);
  probe a, b;
  a.name = 1;
  b.name = 2;
  w.schedule(a, 5);
  w.schedule(b, 5);
  w.schedule(a, 8);  // moved: counted once
  CHECK(w.size() == 2);
  CHECK(w.cancel(b));
  CHECK_FALSE(w.cancel(b));
  CHECK(w.size() == 1);
  CHECK(advance(w, 7).empty());
  CHECK(advance(w, 8) == std::vector<int>{1});
}

TEST_CASE("wheel: deadlines a revolution or more away wait for their own round", "[proxy][wheel]") {
  const auto n = deadline_wheel::slot_count;
  deadline_wheel w(0);
  probe near, far, farther;
  near.name = 1;
  far.name = 2;
  farther.name = 3;
  w.schedule(near, 10);
  w.schedule(far, 10 + n);  // the same slot, one revolution later
  w.schedule(farther, 10 + 5 * n);
  CHECK(advance(w, 10) == std::vector<int>{1});
  CHECK(advance(w, 9 + n).empty());
  CHECK(advance(w, 10 + n) == std::vector<int>{2});
  for (std::uint64_t t = 11 + n; t < 10 + 5 * n; t += 97) CHECK(advance(w, t).empty());
  CHECK(advance(w, 10 + 5 * n) == std::vector<int>{3});
  CHECK(w.empty());
}

TEST_CASE("wheel: a long jump fires everything due, once, and keeps what is not",
          "[proxy][wheel]") {
  const auto n = deadline_wheel::slot_count;
  deadline_wheel w(0);
  std::vector<probe> entries(3000);
  for (std::size_t i = 0; i < entries.size(); ++i) {
    entries[i].name = static_cast<int>(i);
    w.schedule(entries[i], 1 + i);
  }
  auto fired = advance(w, 2 * n);  // two revolutions at once
  CHECK(fired.size() == 2 * n);
  CHECK(w.size() == entries.size() - 2 * n);
  for (std::size_t i = 0; i < 2 * n; ++i) REQUIRE_FALSE(entries[i].linked());
  CHECK(entries[2 * n].linked());
  CHECK(advance(w, 5 * n).size() == entries.size() - 2 * n);
  CHECK(w.empty());
}

TEST_CASE("wheel: an expired entry may be scheduled again from its callback", "[proxy][wheel]") {
  deadline_wheel w(0);
  probe a;
  a.name = 1;
  w.schedule(a, 2);
  int fired = 0;
  for (std::uint64_t t = 1; t <= 10; ++t)
    w.advance(t, [&](wheel_entry& e) {
      ++fired;
      w.schedule(e, t + 2);  // a watchdog woken early re-arms itself
    });
  CHECK(fired == 5);  // at 2, 4, 6, 8, 10
  CHECK(a.linked());
  CHECK(w.size() == 1);
}

TEST_CASE("wheel: entries left in a wheel that goes away are unlinked", "[proxy][wheel]") {
  probe a;
  {
    deadline_wheel w(0);
    w.schedule(a, 4);
    CHECK(a.linked());
  }
  CHECK_FALSE(a.linked());
}
