#include "proxy/acme_schedule.hpp"

#include <algorithm>

namespace tlsbridge::proxy {

renewal_plan plan_renewal(const served_certificate* current, std::chrono::seconds renew_before,
                          acme_clock::time_point now) {
  if (current == nullptr || current->placeholder) return {now, false};
  const auto lifetime = current->not_after - current->not_before;
  if (lifetime <= acme_clock::duration::zero()) return {now, false};
  const auto third = lifetime / 3;
  renewal_plan plan;
  acme_clock::duration lead = third;
  if (renew_before >= lifetime)
    plan.renew_before_exceeds_lifetime = true;
  else
    lead = std::max<acme_clock::duration>(third, renew_before);
  plan.when = std::max(now, current->not_after - lead);
  return plan;
}

std::chrono::seconds retry_delay(unsigned failures, double jitter) {
  std::chrono::seconds delay = first_retry;
  for (unsigned i = 1; i < failures && delay < longest_retry; ++i) delay *= 2;
  delay = std::min(delay, longest_retry);
  jitter = std::clamp(jitter, 0.0, 0.999);
  const auto cut =
      std::chrono::seconds(static_cast<long long>(static_cast<double>(delay.count()) * jitter / 4));
  return delay - cut;
}

}  // namespace tlsbridge::proxy
