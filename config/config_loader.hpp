// Loads and validates a tlsbridge TOML file (every key annotated in conf/tlsbridge.toml). Every
// problem found is collected, not only the first: a config_error names file:line:column and the
// dotted key, and load_config throws one config_load_error holding all of them. Exceptions are fine
// here: this runs at start-up and reload, never on the data path.
#pragma once

#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace tlsbridge::config {

struct config_error {
  std::string file;
  int line = 0;  // 0 = no position (e.g. a problem with the file as a whole)
  int column = 0;
  std::string key;  // dotted key, e.g. "listener[0].timeouts.idle"; may be empty
  std::string message;

  // "FILE:LINE:COLUMN: KEY: MESSAGE" (parts without a value are left out)
  std::string to_string() const;
};

class config_load_error : public std::runtime_error {
 public:
  explicit config_load_error(std::vector<config_error> errors);
  const std::vector<config_error>& errors() const { return errors_; }

 private:
  std::vector<config_error> errors_;
};

// An error found after loading about `key` of `cfg`, placed where the key was written (or, left
// at its default, where its nearest table was written).
config_error error_at_key(const config& cfg, const std::string& key, std::string message);

// Parses, applies defaults, resolves relative paths against the file's directory, validates
// everything that needs no OpenSSL (types, enums, durations, sizes, addresses, CIDRs, duplicate
// names/ports, profile references, files exist). Certificate/key contents are checked by
// certs::check_own_certificates.
std::shared_ptr<const config> load_config(const std::filesystem::path& file);

// Same, from text (tests, fuzzing); `file` is used for messages and relative paths.
std::shared_ptr<const config> load_config_from_string(std::string_view text,
                                                      const std::filesystem::path& file);

}  // namespace tlsbridge::config
