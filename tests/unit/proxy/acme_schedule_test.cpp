// When an acme entry is ordered: the renewal point and the back-off after failures.
#include "proxy/acme_schedule.hpp"

#include <catch2/catch.hpp>

using namespace tlsbridge::proxy;
using namespace std::chrono_literals;

namespace {
constexpr auto day = std::chrono::hours(24);
const acme_clock::time_point t0 = acme_clock::from_time_t(1'800'000'000);
}  // namespace

// Each row: the certificate served (none, the placeholder, or real dates), renew_before, and
// when the renewal falls; now is t0 throughout.
TEST_CASE(
    "plan_renewal: at once for none or the placeholder; else renew_before or a third of "
    "the lifetime, whichever comes first",
    "[acme]") {
  enum class served { none, placeholder, real };
  struct row {
    const char* name;
    served kind;
    acme_clock::duration from, to;  // not_before, not_after relative to t0
    std::chrono::seconds renew_before;
    acme_clock::duration when;  // relative to t0
    bool exceeds = false;
  };
  const row rows[] = {
      {"none served: now", served::none, {}, {}, 30 * day, 0s},
      {"the placeholder: now", served::placeholder, -1h, 7 * day, 30 * day, 0s},
      {"90-day certificate, 30d: both say 30 days before", served::real, 0s, 90 * day, 30 * day,
       60 * day},
      {"90-day certificate, 45d: renew_before is earlier", served::real, 0s, 90 * day, 45 * day,
       45 * day},
      {"90-day certificate, 10d: the third is earlier", served::real, 0s, 90 * day, 10 * day,
       60 * day},
      {"6-day certificate, 30d: renew_before ignored (warned), the third applies", served::real, 0s,
       6 * day, 30 * day, 4 * day, true},
      {"already past the point: now", served::real, -80 * day, 10 * day, 30 * day, 0s},
  };
  for (const auto& r : rows) {
    DYNAMIC_SECTION(r.name) {
      served_certificate c{t0 + r.from, t0 + r.to, r.kind == served::placeholder};
      const auto plan = plan_renewal(r.kind == served::none ? nullptr : &c, r.renew_before, t0);
      CHECK(plan.when == t0 + r.when);
      CHECK(plan.renew_before_exceeds_lifetime == r.exceeds);
    }
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
