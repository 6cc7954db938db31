// `tlsbridge upgrade --pid-file FILE`: asks the instance that holds FILE's lock to start the
// binary at its own path on its listening sockets (SIGUSR2; proxy/binary_upgrade) and waits for
// the outcome. Exit 0 when the new process took over (its PID is then in FILE); 1 with the reason
// when it did not (the running one keeps serving), FILE names no running instance, or no answer
// came within the timeout.
#pragma once

#include <iosfwd>

namespace tlsbridge::proxy {

// argv[0] is "upgrade".
int upgrade_command(int argc, const char* const* argv, std::ostream& out, std::ostream& err);

}  // namespace tlsbridge::proxy
