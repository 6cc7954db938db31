// `tlsbridge inspect-cert` (README, "Command line"): the probe's analysis for PEM files, so a
// deployer can judge their own chain before it goes live. The certificates of all files are taken
// in order, the first one is the leaf and the rest are what a server would send after it; the chain
// is verified against a trust store (the system default paths unless a CA file is given), so a
// chain from a private CA that is not in that store gets an `untrusted` finding (action `log` by
// default).
#pragma once

#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "policy/chain_evidence.hpp"

namespace tlsbridge::certs {

// A file that cannot be read, or holds no parseable PEM certificate.
class inspect_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct inspect_options {
  std::vector<std::filesystem::path> files;  // leaf first
  std::filesystem::path ca_file;             // empty = the system default paths
  std::string server_name;                   // empty = no name check
};

// Throws inspect_error for unreadable/unparseable files, std::runtime_error when the trust store
// cannot be built.
policy::chain_evidence inspect(const inspect_options& options);

}  // namespace tlsbridge::certs
