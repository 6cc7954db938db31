// What `tlsbridge --version` prints (README, "Command line"): the version, the commit the binary
// was built from (cmake/build_commit.cmake; "unknown" outside a git checkout) and the OpenSSL
// library it runs with, which on Debian is upgraded apart from the binary (libssl3).
#pragma once

#include <string>

namespace tlsbridge::proxy {

// What the binary is: tlsbridge_build_info{version,commit,openssl} and the status page.
struct build_identity {
  std::string version;  // "0.1.0"
  std::string commit;   // "1a2b3c4d5e6f" or "unknown"
  std::string openssl;  // the library loaded now: "OpenSSL 3.0.17 1 Jul 2025"
};

// "tlsbridge 0.1.0 (commit 1a2b3c4d5e6f) OpenSSL 3.0.17 1 Jul 2025"
std::string version_text();
// Defined with version_text(), in the executable (the commit header is generated for it alone).
build_identity this_build();

}  // namespace tlsbridge::proxy
