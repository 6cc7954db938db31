// The running proxy: one io_context per worker thread, each with its own acceptor on every
// listener (SO_REUSEPORT: the kernel spreads connections, no cross-thread hand-off), sessions
// that stay on the thread that accepted them, and the operations (README) on the main thread:
//  * SIGHUP reloads: the new config is validated in full first (a bad one is logged and changes
//    nothing); then kept listeners switch to the new settings and certificates for new
//    connections, added ones are bound and open, removed ones stop accepting. Existing sessions
//    keep the generation they started with until they end.
//  * SIGUSR1 reopens the audit file (logrotate's postrotate).
//  * SIGTERM/SIGINT stop accepting, let sessions finish within shutdown_grace, then close.
//  * SIGUSR2 starts the binary at our own path on our listening sockets (proxy/binary_upgrade);
//    once it is ready we stop accepting and let sessions end within shutdown_grace.
#pragma once

#include <filesystem>
#include <memory>

#include "config/config.hpp"
#include "proxy/binary_upgrade.hpp"
#include "proxy/build_info.hpp"

namespace tlsbridge::proxy {

struct run_options {
  std::filesystem::path pid_file;      // `run --pid-file`, else [server] pid_file; empty = none
  executable self;                     // what SIGUSR2 starts
  upgrade_handoff* handoff = nullptr;  // what an upgrading old process passed us, if anything
  build_identity build;                // tlsbridge_build_info and the status page
};

// Builds everything (throws std::runtime_error on a problem: nothing starts half-configured),
// then runs until SIGTERM/SIGINT. `path` is re-read on SIGHUP. Returns the exit status.
int run_server(const std::filesystem::path& path, std::shared_ptr<const config::config> cfg,
               run_options options);

}  // namespace tlsbridge::proxy
