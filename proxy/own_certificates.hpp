// The proxy's own certificates ([[certs]]) as operators watch them: read at start and at every
// reload (on the main thread), exported as tlsbridge_certificate_not_after_timestamp_seconds
// {file,subject} and shown on the status page with the days left.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "proxy/metrics.hpp"

namespace tlsbridge::proxy {

struct own_certificate {
  std::string file;
  std::string subject;
  std::int64_t not_after = 0;  // Unix time
};

// The leaf of every [[certs]] file that can be read (an unreadable one is left out: the config
// checks report it).
std::vector<own_certificate> read_own_certificates(const config::config& cfg);

void record_certificate_expiry(const std::vector<own_certificate>& certs, metrics& m);
// After a reload: the gauges of `previous` certificates that `current` no longer has are
// removed (a certificate taken out of [[certs]] must not keep alerting on its old expiry), and
// `current`'s are set.
void record_certificate_expiry(const std::vector<own_certificate>& previous,
                               const std::vector<own_certificate>& current, metrics& m);

// Whole days from `now` to notAfter, rounded down (negative once expired).
std::int64_t days_left(const own_certificate& c, std::int64_t now);

}  // namespace tlsbridge::proxy
