// proxy/warning_throttle: the first failure under a key is written at once, then at most one line
// per interval with the count held back; a recovery is reported once and resets the key. Time is
// passed in, so nothing here waits.
#include "proxy/warning_throttle.hpp"

#include <catch2/catch.hpp>

using namespace tlsbridge::proxy;
using namespace std::chrono_literals;

namespace {
const warning_throttle::clock::time_point t0{};
}

TEST_CASE("throttle: first failure at once, then one line per interval with a count",
          "[proxy][throttle]") {
  warning_throttle t(60s);
  CHECK(t.failure("smtp-in", t0) == 0u);
  for (int i = 1; i <= 5; ++i) CHECK_FALSE(t.failure("smtp-in", t0 + i * 1s).has_value());
  CHECK_FALSE(t.failure("smtp-in", t0 + 59s).has_value());
  CHECK(t.failure("smtp-in", t0 + 60s) == 6u);  // 6 held back since the first line
  CHECK_FALSE(t.failure("smtp-in", t0 + 61s).has_value());
  CHECK(t.failure("smtp-in", t0 + 121s) == 1u);
  CHECK(t.failure("smtp-in", t0 + 500s) == 0u);  // a quiet while: written, nothing held back
}

TEST_CASE("throttle: keys are independent", "[proxy][throttle]") {
  warning_throttle t(60s);
  CHECK(t.failure("smtp-in", t0) == 0u);
  CHECK(t.failure("imap-in", t0 + 1s) == 0u);
  CHECK_FALSE(t.failure("smtp-in", t0 + 2s).has_value());
  CHECK_FALSE(t.failure("imap-in", t0 + 2s).has_value());
}

TEST_CASE("throttle: a recovery is reported once, with the count, and resets the key",
          "[proxy][throttle]") {
  warning_throttle t(60s);
  CHECK_FALSE(t.success("smtp-in").has_value());  // never failed: nothing to say
  CHECK(t.failure("smtp-in", t0) == 0u);
  CHECK_FALSE(t.failure("smtp-in", t0 + 1s).has_value());
  CHECK_FALSE(t.failure("smtp-in", t0 + 2s).has_value());
  CHECK(t.success("smtp-in") == 2u);
  CHECK_FALSE(t.success("smtp-in").has_value());  // said once
  CHECK(t.failure("smtp-in", t0 + 3s) == 0u);     // down again: written at once
}

TEST_CASE("throttle: past max_keys new keys share one line", "[proxy][throttle]") {
  warning_throttle t(60s);
  for (std::size_t i = 0; i < warning_throttle::max_keys; ++i)
    CHECK(t.failure("k" + std::to_string(i), t0) == 0u);
  CHECK(t.failure("one more", t0) == 0u);
  CHECK_FALSE(t.failure("and another", t0).has_value());
  CHECK_FALSE(t.failure("k0", t0 + 1s).has_value());  // the old keys keep their own
}
