// When an acme entry is ordered: the renewal point and the back-off after failures.
#include "proxy/acme_schedule.hpp"

#include <catch2/catch.hpp>

using namespace tlsbridge::proxy;
using namespace std::chrono_literals;

namespace {
constexpr auto day = std::chrono::hours(24);
const acme_clock::time_point t0 = acme_clock::from_time_t(1'800'000'000);
}  // namespace

TEST_CASE("plan_renewal: none or the placeholder is ordered at once", "[acme]") {
  CHECK(plan_renewal(nullptr, 30 * day, t0).when == t0);
  served_certificate placeholder{t0 - 1h, t0 + 7 * day, true};
  CHECK(plan_renewal(&placeholder, 30 * day, t0).when == t0);
}

TEST_CASE("plan_renewal: renew_before or a third of the lifetime, whichever comes first",
          "[acme]") {
  SECTION("90-day certificate, 30d: both say 30 days before") {
    served_certificate c{t0, t0 + 90 * day, false};
    const auto plan = plan_renewal(&c, 30 * day, t0);
    CHECK(plan.when == t0 + 60 * day);
    CHECK_FALSE(plan.renew_before_exceeds_lifetime);
  }
  SECTION("90-day certificate, 45d: renew_before is earlier") {
    served_certificate c{t0, t0 + 90 * day, false};
    CHECK(plan_renewal(&c, 45 * day, t0).when == t0 + 45 * day);
  }
  SECTION("90-day certificate, 10d: the third is earlier") {
    served_certificate c{t0, t0 + 90 * day, false};
    CHECK(plan_renewal(&c, 10 * day, t0).when == t0 + 60 * day);
  }
  SECTION("6-day certificate, 30d: renew_before ignored (warned), the third applies") {
    served_certificate c{t0, t0 + 6 * day, false};
    const auto plan = plan_renewal(&c, 30 * day, t0);
    CHECK(plan.when == t0 + 4 * day);
    CHECK(plan.renew_before_exceeds_lifetime);
  }
  SECTION("already past the point: now") {
    served_certificate c{t0 - 80 * day, t0 + 10 * day, false};
    CHECK(plan_renewal(&c, 30 * day, t0).when == t0);
  }
}

TEST_CASE("retry_delay: 1 minute doubling to 6 hours, jittered down by at most a quarter",
          "[acme]") {
  CHECK(retry_delay(1, 0.0) == 60s);
  CHECK(retry_delay(2, 0.0) == 120s);
  CHECK(retry_delay(3, 0.0) == 240s);
  CHECK(retry_delay(9, 0.0) == 256min);
  CHECK(retry_delay(10, 0.0) == 6h);  // 512 min, capped
  CHECK(retry_delay(1000, 0.0) == 6h);
  CHECK(retry_delay(1, 0.999) >= 45s);
  CHECK(retry_delay(1, 0.999) < 60s);
  CHECK(retry_delay(1000, 0.5) == 18900s);  // 6 h less an eighth
}
