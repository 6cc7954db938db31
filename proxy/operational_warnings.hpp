// The operational log's lines about the service rather than one connection (README, "Operate"): a
// backend that cannot be reached is a `warn` line and an `info` line once it answers again; every
// refusal by policy (a chain [policy] refuses, a client certificate, a request the shield ends the
// session for) is a `warn` line. Both go through a warning_throttle per listener, so an outage or
// a partner retrying all day is a line a minute with a count, not a line per connection. The
// audit log still has every connection.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "config/config.hpp"
#include "proxy/warning_throttle.hpp"

namespace tlsbridge::proxy {

struct back_leg_failure;  // proxy/back_leg.hpp

class operational_warnings {
 public:
  static constexpr std::chrono::seconds interval{60};

  // After each attempt to open a back leg: `reached` is the address it connected to ("" if
  // none), `failure` null when the leg is up. A leg refused by policy was reachable:
  // refused_by_policy reports that refusal.
  void back_leg_opened(const config::listener_config& listener, const std::string& reached,
                       const back_leg_failure* failure);

  // A connection ended by policy; `reason` is the conn record's, `peer` whom it was about.
  void refused_by_policy(const std::string& listener, const std::string& reason,
                         const std::string& peer);

 private:
  warning_throttle backends_{interval};
  warning_throttle refusals_{interval};
};

}  // namespace tlsbridge::proxy
