// Everything a start or a reload checks before anything changes: the TOML, the own
// certificates, every TLS context built once (a bad cipher string shows up here, not at the first
// connection), and file permissions — a world-writable config is refused, a private key others can
// read is warned about. Used by `check-config`, `run` and SIGHUP alike, so they agree.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace tlsbridge::proxy {

struct validation_report {
  std::shared_ptr<const config::config> config;  // null when there is any error
  std::vector<std::string> errors;               // one line each
  std::vector<std::string> warnings;
};

// `reloading`: SIGHUP after the start, when the output files are open already and the process may
// run as [server] user: whether it could open them anew is not asked (output_file.hpp).
validation_report load_and_validate(const std::filesystem::path& path, bool reloading = false);

}  // namespace tlsbridge::proxy
