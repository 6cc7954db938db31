// Checks the proxy's own front certificates before they go live (start, reload, check-config):
// files readable, PEM parses, the key matches the certificate, not expired (unless
// [policy] allow_expired_own_cert), and warns when one expires within 30 days.
#pragma once

#include <string>
#include <vector>

#include "config/config.hpp"
#include "config/config_loader.hpp"

namespace tlsbridge::certs {

struct own_cert_report {
  std::vector<config::config_error> errors;  // refuse to start
  std::vector<std::string> warnings;         // start, but say so
};

own_cert_report check_own_certificates(const config::config& cfg);

}  // namespace tlsbridge::certs
