#include "proxy/upgrade_command.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <ostream>
#include <string>

#include <boost/program_options.hpp>

#include "proxy/binary_upgrade.hpp"
#include "proxy/pid_file.hpp"

namespace tlsbridge::proxy {

namespace {

namespace po = boost::program_options;
using clock = std::chrono::steady_clock;

constexpr const char* usage =
    "usage: tlsbridge upgrade --pid-file FILE [--timeout SECONDS]\n"
    "  Starts the binary at the path the running instance was started from (after a package\n"
    "  upgrade: the new one) on the same listening sockets; the old process stops accepting once\n"
    "  the new one is ready and drains its sessions within [server] shutdown_grace. Same as\n"
    "  `kill -USR2 $(cat FILE)`, but waits for the outcome: exit 0 when the new process took over\n"
    "  (FILE then holds its PID), 1 with the reason when it did not (the old one keeps serving).\n";

// The socket the old process answers on, bound before the signal goes out. SO_PASSCRED: every
// datagram carries its sender's PID as the kernel saw it, so only the old process can answer.
int bind_result_socket(pid_t old_pid, std::string& error) {
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    error = std::string("socket: ") + std::strerror(errno);
    return -1;
  }
  int on = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &on, sizeof on);
  std::string name = upgrade_result_address(old_pid);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, name.data(), name.size());
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr),
             static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size())) != 0) {
    error = errno == EADDRINUSE
                ? "an upgrade of PID " + std::to_string(old_pid) + " is already in progress"
                : std::string("bind: ") + std::strerror(errno);
    ::close(fd);
    return -1;
  }
  return fd;
}

// The old process's answer ("ok PID" / "failed REASON"), or "" when none came in time.
std::string wait_for_answer(int fd, pid_t old_pid, std::chrono::seconds timeout) {
  auto deadline = clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
    if (left.count() <= 0) return {};
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char text[8192];
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred))];
    iovec iov{text, sizeof text};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n = ::recvmsg(fd, &msg, 0);
    if (n <= 0) continue;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_CREDENTIALS) continue;
      ucred cred{};
      std::memcpy(&cred, CMSG_DATA(c), sizeof cred);
      if (cred.pid == old_pid) return std::string(text, static_cast<std::size_t>(n));
    }
  }
}

}  // namespace

int upgrade_command(int argc, const char* const* argv, std::ostream& out, std::ostream& err) {
  po::options_description opts("upgrade options");
  opts.add_options()("pid-file", po::value<std::string>(), "the running instance's pid file")(
      "timeout", po::value<unsigned>(), "seconds to wait for the outcome")("help,h", "this help");
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(opts).run(), vm);
    po::notify(vm);
  } catch (const std::exception& e) {
    err << "tlsbridge upgrade: " << e.what() << "\n" << usage;
    return 1;
  }
  if (vm.count("help")) {
    out << usage;
    return 0;
  }
  if (!vm.count("pid-file")) {
    err << "tlsbridge upgrade: --pid-file FILE is required\n" << usage;
    return 1;
  }
  const std::string path = vm["pid-file"].as<std::string>();
  auto timeout = vm.count("timeout") ? std::chrono::seconds(vm["timeout"].as<unsigned>())
                                     : upgrade_ready_timeout + std::chrono::seconds(10);
  pid_t old_pid = read_pid(path);
  if (old_pid == 0) {
    err << "tlsbridge upgrade: " << path << " names no process\n";
    return 1;
  }
  // A pid file nobody holds is stale: its PID may belong to anything by now, and SIGUSR2's
  // default action is to terminate.
  if (!pid_file_locked(path)) {
    err << "tlsbridge upgrade: " << path << " is stale (no process holds its lock): PID " << old_pid
        << " is not a running instance\n";
    return 1;
  }
  std::string error;
  int fd = bind_result_socket(old_pid, error);
  if (fd < 0) {
    err << "tlsbridge upgrade: " << error << "\n";
    return 1;
  }
  if (::kill(old_pid, SIGUSR2) != 0) {
    err << "tlsbridge upgrade: cannot signal PID " << old_pid << ": " << std::strerror(errno)
        << "\n";
    ::close(fd);
    return 1;
  }
  std::string answer = wait_for_answer(fd, old_pid, timeout);
  ::close(fd);
  if (answer.rfind("ok ", 0) == 0) {
    out << "upgraded: PID " << old_pid << " -> " << answer.substr(3) << " (" << path << "); PID "
        << old_pid << " drains its sessions and exits\n";
    return 0;
  }
  if (answer.rfind("failed ", 0) == 0) {
    err << "tlsbridge upgrade: failed: " << answer.substr(7) << "\nPID " << old_pid
        << " keeps serving\n";
    return 1;
  }
  err << "tlsbridge upgrade: no answer from PID " << old_pid << " within " << timeout.count()
      << " s (is it a tlsbridge with binary upgrade? see its log)\n";
  return 1;
}

}  // namespace tlsbridge::proxy
