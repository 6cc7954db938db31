// What `tlsbridge --version` prints (README, "Command line"): the version, the commit the binary
// was built from (cmake/build_commit.cmake; "unknown" outside a git checkout) and the OpenSSL
// library it runs with, which on Debian is upgraded apart from the binary (libssl3).
#pragma once

#include <string>

namespace tlsbridge::proxy {

// "tlsbridge 0.1.0 (commit 1a2b3c4d5e6f) OpenSSL 3.0.17 1 Jul 2025"
std::string version_text();

}  // namespace tlsbridge::proxy
