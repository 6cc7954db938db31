// Binary upgrade without a dropped or refused connection (README, "Operate: upgrade"), as
// nginx's SIGUSR2: the running process starts the binary found at the path it was itself started
// from — after a package upgrade that path holds the new binary — on the same listening sockets.
//
//  old process                                   new process
//  SIGUSR2 ─ fork + execve(path, argv) ───────►  loads and validates its config
//            sockets, pid file and a pipe         adopts every inherited listening socket,
//            passed by inheritance                binds only listeners that are new
//                                                 writes "ready" to the pipe ─┐
//  ◄─────────────────────────────────────────────────────────────────────────┘
//  writes the new PID to the pid file, tells systemd MAINPID=<new>, stops accepting, closes its
//  copies of the sockets and drains within [server] shutdown_grace, then exits.
//
// Sockets go by inheritance (FD_CLOEXEC cleared between fork and execve, the variable
// TLSBRIDGE_INHERITED_LISTENERS naming "fd=address,…"), not over a unix socket with SCM_RIGHTS:
// the new process is our own child, so it is in the service's cgroup and systemd accepts it as
// the main PID, and nothing has to listen for or authenticate a second process. Every
// SO_REUSEPORT socket of every worker is passed: a socket closed while connections wait in its
// accept queue resets them, so none may be left behind. A new process that fails to start (bad
// config, port in use, exec failure, not ready within upgrade_ready_timeout) writes its reason to
// the pipe; the old one logs it and keeps serving, nothing changed.
//
// `tlsbridge upgrade --pid-file FILE` (proxy/upgrade_command) sends the SIGUSR2 and waits for
// the result, which the old process sends to the abstract unix datagram address
// upgrade_result_address(old PID); the command checks the sender's credentials.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace tlsbridge::proxy {

inline constexpr auto upgrade_ready_timeout = std::chrono::seconds(60);

// What SIGUSR2 executes: the binary's path made absolute once at start (argv[0] against the
// working directory, or searched in PATH like execvp) — not /proc/self/exe, which names the old,
// replaced file — and the command line it was started with.
struct executable {
  std::string path;
  std::vector<std::string> argv;
};
executable executable_from(int argc, char** argv);

// A listening socket to hand over: a descriptor of our own (a dup, closed by the attempt) and
// its local address as "host:port" (IPv6 in brackets).
struct handed_socket {
  int fd = -1;
  std::string address;
};
std::string endpoint_text(const boost::asio::ip::tcp::endpoint& ep);

struct upgrade_result {
  bool ok = false;
  pid_t child = 0;
  std::string reason;  // why it failed
};

// Starts `exe` with `sockets`, the pid file descriptor (-1: none) and a readiness pipe, and calls
// `done` once on `io`'s thread: ok when the new process reported ready (its listeners are all
// adopted or bound), else the reason (the child is then killed and reaped; nothing changed). The
// descriptors in `sockets` are closed by the attempt either way.
void start_upgrade(boost::asio::io_context& io, const executable& exe,
                   std::vector<handed_socket> sockets, int pid_fd,
                   const std::filesystem::path& pid_path, std::function<void(upgrade_result)> done);

// The abstract unix datagram address the result of the upgrade of `old_pid` is sent to.
std::string upgrade_result_address(pid_t old_pid);
// Sends "ok <pid>" or "failed <reason>" there; nothing happens when nobody listens (a plain
// `kill -USR2`).
void send_upgrade_result(const upgrade_result& result);

// In the new process: what the old one handed over, read from the environment once at start
// (the variables are removed so they go no further).
class upgrade_handoff {
 public:
  static upgrade_handoff from_environment();
  upgrade_handoff() = default;
  ~upgrade_handoff();  // closes what nobody took
  upgrade_handoff(upgrade_handoff&& other) noexcept;
  upgrade_handoff& operator=(upgrade_handoff&&) = delete;

  bool active() const { return ready_fd_ >= 0; }
  // The inherited listening sockets bound to `ep` (each returned once; the caller owns them).
  std::vector<int> take_listeners(const boost::asio::ip::tcp::endpoint& ep);
  // The inherited pid file descriptor and its path ({-1, ""} when none).
  std::pair<int, std::filesystem::path> take_pid_file();
  // Every listener is adopted or bound: inherited sockets nobody took (listeners the new config
  // dropped) are closed, and the old process is told.
  void report_ready();
  void report_failure(std::string_view reason);  // then the process exits non-zero

 private:
  int ready_fd_ = -1;
  std::vector<handed_socket> sockets_;
  int pid_fd_ = -1;
  std::filesystem::path pid_path_;
};

}  // namespace tlsbridge::proxy
