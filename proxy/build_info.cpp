#include "proxy/build_info.hpp"

#include <openssl/crypto.h>

// Generated at every build; rewritten only when the commit changes, so only this file recompiles.
#include "build_commit.hpp"

namespace tlsbridge::proxy {

build_identity this_build() {
  return {TLSBRIDGE_VERSION, TLSBRIDGE_BUILD_COMMIT, OpenSSL_version(OPENSSL_VERSION)};
}

std::string version_text() {
  // OpenSSL_version, not the OPENSSL_VERSION_TEXT macro: the library loaded now, not the headers
  // the binary was compiled against.
  return std::string("tlsbridge ") + TLSBRIDGE_VERSION + " (commit " + TLSBRIDGE_BUILD_COMMIT +
         ") " + OpenSSL_version(OPENSSL_VERSION);
}

}  // namespace tlsbridge::proxy
