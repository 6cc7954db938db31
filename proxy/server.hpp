// The running proxy: one io_context per worker thread, each with its own acceptor on every
// listener (SO_REUSEPORT: the kernel spreads connections, no cross-thread hand-off), sessions
// that stay on the thread that accepted them, and the signal handling of SPEC §5 on the main
// thread: SIGTERM/SIGINT stop accepting, let sessions finish within shutdown_grace, then close.
#pragma once

#include <memory>

#include "config/config.hpp"

namespace tlsbridge::proxy {

// Builds everything (throws std::runtime_error on a problem: nothing starts half-configured),
// then runs until SIGTERM/SIGINT. Returns the process exit status.
int run_server(std::shared_ptr<const config::config> cfg);

}  // namespace tlsbridge::proxy
