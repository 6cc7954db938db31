// When the ACME service (proxy/acme_service) orders a certificate for an `acme` entry of
// [[certs]]: pure functions of the clock and the certificate's dates, unit-tested.
//  * renewal: at once for none or the start-up placeholder; else when less than `renew_before`
//    or less than a third of the certificate's lifetime is left, whichever comes first. A
//    `renew_before` at least as long as the lifetime would renew at once, over and over: then
//    only the third applies, and the caller warns.
//  * retry after a failed attempt: 1 minute, doubling per consecutive failure up to 6 hours,
//    jittered down by up to a quarter so that many proxies restarted together do not hit the
//    CA in step.
#pragma once

#include <chrono>

namespace tlsbridge::proxy {

using acme_clock = std::chrono::system_clock;

struct served_certificate {
  acme_clock::time_point not_before;
  acme_clock::time_point not_after;
  bool placeholder = false;  // the self-signed stand-in written before the first order
};

struct renewal_plan {
  acme_clock::time_point when;
  bool renew_before_exceeds_lifetime = false;  // `renew_before` ignored: warn the operator
};

renewal_plan plan_renewal(const served_certificate* current, std::chrono::seconds renew_before,
                          acme_clock::time_point now);

inline constexpr std::chrono::seconds first_retry{60};
inline constexpr std::chrono::seconds longest_retry{6 * 3600};

// The wait after `failures` consecutive failed attempts (>= 1); `jitter` in [0, 1).
std::chrono::seconds retry_delay(unsigned failures, double jitter);

}  // namespace tlsbridge::proxy
