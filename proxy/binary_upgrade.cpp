#include "proxy/binary_upgrade.hpp"

#include <fcntl.h>
#include <linux/capability.h>
#include <linux/close_range.h>
#include <sys/resource.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <sstream>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

extern char** environ;

namespace tlsbridge::proxy {

namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

constexpr const char* ready_fd_variable = "TLSBRIDGE_UPGRADE_READY_FD";
constexpr const char* listeners_variable = "TLSBRIDGE_INHERITED_LISTENERS";
constexpr const char* pid_file_variable = "TLSBRIDGE_INHERITED_PID_FILE";
constexpr std::string_view ready_line = "ready\n";
constexpr std::size_t max_report = 8192;

bool starts_with_variable(const char* entry, const char* name) {
  std::size_t n = std::strlen(name);
  return std::strncmp(entry, name, n) == 0 && entry[n] == '=';
}

int parse_fd(const std::string& text) {
  char* end = nullptr;
  long fd = std::strtol(text.c_str(), &end, 10);
  return (end && *end == '\0' && fd > 2 && fd < 1 << 20) ? static_cast<int>(fd) : -1;
}

// The new process starts with the service user's rights when the old one dropped root: it keeps
// CAP_NET_BIND_SERVICE (a reload may open a port below 1024) and, when the old one kept it,
// CAP_NET_ADMIN (source = "client") only through the ambient set, the one capability set
// execve(2) passes to an unprivileged program (capabilities(7)). Raw system calls: this runs
// between fork and execve, where only async-signal-safe calls are allowed.
void keep_bind_capability_across_exec() {
  if (::geteuid() == 0) return;  // root gets every capability back at execve anyway
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  if (::syscall(SYS_capget, &header, data) != 0) return;
  const unsigned kept = data[0].permitted & ((1u << CAP_NET_BIND_SERVICE) | (1u << CAP_NET_ADMIN));
  data[0].inheritable |= kept;
  if (kept == 0 || ::syscall(SYS_capset, &header, data) != 0) return;
  for (int cap : {CAP_NET_BIND_SERVICE, CAP_NET_ADMIN})
    if (kept & (1u << cap)) ::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0);
}

// Between fork and execve: only async-signal-safe calls (the parent has other threads).
[[noreturn]] void exec_child(const char* path, char* const* argv, char* const* envp,
                             const std::vector<int>& inherit, int report_fd) {
  // Only what we pass goes along: Asio opens sockets without FD_CLOEXEC, and a client connection
  // the new process kept a copy of would stay open when we close it.
  if (::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
    rlimit files{};
    ::getrlimit(RLIMIT_NOFILE, &files);
    for (rlim_t fd = 3; fd < files.rlim_cur; ++fd)
      ::fcntl(static_cast<int>(fd), F_SETFD, FD_CLOEXEC);
  }
  for (int fd : inherit) ::fcntl(fd, F_SETFD, 0);
  // Asio's signal handlers would write into the parent's self-pipe: defaults first, then
  // unblock (the mask survives execve).
  for (int sig : {SIGHUP, SIGINT, SIGTERM, SIGUSR1, SIGUSR2, SIGPIPE}) ::signal(sig, SIG_DFL);
  sigset_t none;
  ::sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  keep_bind_capability_across_exec();
  ::execve(path, argv, envp);
  // Only reached when execve failed: report errno in digits (no strerror here).
  int error = errno;
  char digits[16];
  int n = 0;
  do digits[n++] = static_cast<char>('0' + error % 10), error /= 10;
  while (error && n < 15);
  static const char prefix[] = "cannot execute the binary (errno ";
  (void)!::write(report_fd, prefix, sizeof prefix - 1);
  while (n) (void)!::write(report_fd, &digits[--n], 1);
  (void)!::write(report_fd, ")", 1);
  ::_exit(127);
}

// One attempt, from fork to the child's verdict: reads the pipe until "ready", EOF or timeout.
class upgrade_attempt : public std::enable_shared_from_this<upgrade_attempt> {
 public:
  upgrade_attempt(asio::io_context& io, pid_t child, int read_fd, std::string path,
                  std::function<void(upgrade_result)> done)
      : pipe_(io, read_fd),
        timer_(io),
        child_(child),
        path_(std::move(path)),
        done_(std::move(done)) {}

  void start() {
    timer_.expires_after(upgrade_ready_timeout);
    timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (!ec)
        self->fail("the new process was not ready within " +
                   std::to_string(upgrade_ready_timeout.count()) + " s");
    });
    read();
  }

 private:
  void read() {
    pipe_.async_read_some(asio::buffer(chunk_),
                          [self = shared_from_this()](const boost::system::error_code& ec,
                                                      std::size_t n) { self->on_read(ec, n); });
  }

  void on_read(const boost::system::error_code& ec, std::size_t n) {
    if (finished_) return;
    text_.append(chunk_.data(), n);
    if (text_.size() >= ready_line.size() && text_.compare(0, ready_line.size(), ready_line) == 0)
      return succeed();
    if (!ec && text_.size() < max_report) return read();
    // EOF (the child exited or closed the pipe) before "ready": its words are the reason.
    while (!text_.empty() && (text_.back() == '\n' || text_.back() == ' ')) text_.pop_back();
    fail(text_.empty() ? "the new process exited before it was ready" : text_);
  }

  void succeed() {
    finished_ = true;
    timer_.cancel();
    boost::system::error_code ignored;
    pipe_.close(ignored);
    done_({true, child_, {}});
  }

  void fail(std::string reason) {
    if (finished_) return;
    finished_ = true;
    timer_.cancel();
    boost::system::error_code ignored;
    pipe_.close(ignored);
    // Our own child, not yet reaped: its PID cannot have been reused.
    ::kill(child_, SIGKILL);
    int status = 0;
    ::waitpid(child_, &status, 0);
    done_({false, child_, path_ + ": " + reason});
  }

  asio::posix::stream_descriptor pipe_;
  asio::steady_timer timer_;
  pid_t child_;
  std::string path_;
  std::function<void(upgrade_result)> done_;
  std::array<char, 1024> chunk_{};
  std::string text_;
  bool finished_ = false;
};

}  // namespace

executable executable_from(int argc, char** argv) {
  executable out;
  for (int i = 0; i < argc; ++i) out.argv.emplace_back(argv[i]);
  std::string name = argc > 0 ? argv[0] : "";
  namespace fs = std::filesystem;
  // Absolute, but symlinks kept: /usr/sbin/tlsbridge stays that name even if it is a link.
  if (name.find('/') != std::string::npos) {
    out.path = fs::absolute(name).lexically_normal().string();
    return out;
  }
  if (const char* path = std::getenv("PATH"); path && !name.empty()) {
    std::stringstream dirs(path);
    for (std::string dir; std::getline(dirs, dir, ':');) {
      fs::path candidate = fs::absolute(dir.empty() ? "." : dir) / name;
      if (::access(candidate.c_str(), X_OK) == 0) {
        out.path = candidate.lexically_normal().string();
        return out;
      }
    }
  }
  std::error_code ec;
  out.path = fs::read_symlink("/proc/self/exe", ec).string();
  return out;
}

std::string endpoint_text(const tcp::endpoint& ep) {
  std::string host = ep.address().to_string();
  if (ep.address().is_v6()) host = "[" + host + "]";
  return host + ":" + std::to_string(ep.port());
}

void start_upgrade(asio::io_context& io, const executable& exe, std::vector<handed_socket> sockets,
                   int pid_fd, const std::filesystem::path& pid_path,
                   std::function<void(upgrade_result)> done) {
  auto close_sockets = [&sockets] {
    for (auto& s : sockets) ::close(s.fd);
  };
  int report[2];
  if (::pipe2(report, O_CLOEXEC) != 0) {
    close_sockets();
    done({false, 0, std::string("pipe: ") + std::strerror(errno)});
    return;
  }
  // Everything the child needs is built before fork.
  std::vector<int> inherit{report[1]};
  std::string listeners;
  for (const auto& s : sockets) {
    inherit.push_back(s.fd);
    listeners += (listeners.empty() ? "" : ",") + std::to_string(s.fd) + "=" + s.address;
  }
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e)
    if (!starts_with_variable(*e, ready_fd_variable) &&
        !starts_with_variable(*e, listeners_variable) &&
        !starts_with_variable(*e, pid_file_variable))
      env.emplace_back(*e);
  env.push_back(std::string(ready_fd_variable) + "=" + std::to_string(report[1]));
  env.push_back(std::string(listeners_variable) + "=" + listeners);
  if (pid_fd >= 0) {
    inherit.push_back(pid_fd);
    env.push_back(std::string(pid_file_variable) + "=" + std::to_string(pid_fd) + ":" +
                  pid_path.string());
  }
  std::vector<char*> argv, envp;
  for (const auto& a : exe.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  pid_t child = ::fork();
  if (child == 0) exec_child(exe.path.c_str(), argv.data(), envp.data(), inherit, report[1]);
  const int fork_errno = errno;
  ::close(report[1]);
  close_sockets();  // the child has its copies now (or there is no child)
  if (child < 0) {
    ::close(report[0]);
    done({false, 0, std::string("fork: ") + std::strerror(fork_errno)});
    return;
  }
  spdlog::info("upgrade: started {} as PID {} with {} listening socket(s)", exe.path, child,
               sockets.size());
  std::make_shared<upgrade_attempt>(io, child, report[0], exe.path, std::move(done))->start();
}

std::string upgrade_result_address(pid_t old_pid) {
  return std::string(1, '\0') + "tlsbridge-upgrade-" + std::to_string(old_pid);
}

void send_upgrade_result(const upgrade_result& result) {
  std::string text = result.ok ? "ok " + std::to_string(result.child) : "failed " + result.reason;
  std::string name = upgrade_result_address(::getpid());
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, name.data(), name.size());
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  ::sendto(fd, text.data(), text.size(), MSG_NOSIGNAL | MSG_DONTWAIT,
           reinterpret_cast<sockaddr*>(&addr),
           static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size()));
  ::close(fd);
}

upgrade_handoff upgrade_handoff::from_environment() {
  upgrade_handoff out;
  const char* ready = std::getenv(ready_fd_variable);
  if (!ready) return out;
  out.ready_fd_ = parse_fd(ready);
  if (const char* list = std::getenv(listeners_variable)) {
    std::stringstream items(list);
    for (std::string item; std::getline(items, item, ',');) {
      auto eq = item.find('=');
      int fd = parse_fd(item.substr(0, eq));
      if (fd >= 0) out.sockets_.push_back({fd, eq == std::string::npos ? "" : item.substr(eq + 1)});
    }
  }
  if (const char* pid = std::getenv(pid_file_variable)) {
    std::string text(pid);
    auto colon = text.find(':');
    out.pid_fd_ = parse_fd(text.substr(0, colon));
    if (colon != std::string::npos) out.pid_path_ = text.substr(colon + 1);
  }
  // Nothing of this goes further (a later upgrade builds its own) or leaks into an exec.
  ::unsetenv(ready_fd_variable);
  ::unsetenv(listeners_variable);
  ::unsetenv(pid_file_variable);
  if (out.ready_fd_ >= 0) ::fcntl(out.ready_fd_, F_SETFD, FD_CLOEXEC);
  for (auto& s : out.sockets_) ::fcntl(s.fd, F_SETFD, FD_CLOEXEC);
  return out;
}

upgrade_handoff::upgrade_handoff(upgrade_handoff&& other) noexcept
    : ready_fd_(std::exchange(other.ready_fd_, -1)),
      sockets_(std::move(other.sockets_)),
      pid_fd_(std::exchange(other.pid_fd_, -1)),
      pid_path_(std::move(other.pid_path_)) {
  other.sockets_.clear();
}

upgrade_handoff::~upgrade_handoff() {
  for (auto& s : sockets_)
    if (s.fd >= 0) ::close(s.fd);
  if (pid_fd_ >= 0) ::close(pid_fd_);
  if (ready_fd_ >= 0) ::close(ready_fd_);
}

std::vector<int> upgrade_handoff::take_listeners(const tcp::endpoint& ep) {
  std::vector<int> out;
  for (auto& s : sockets_) {
    if (s.fd < 0) continue;
    // The socket itself says what it is bound to; the variable's text is for people reading it.
    tcp::endpoint local;
    socklen_t len = static_cast<socklen_t>(local.capacity());
    int listening = 0;
    socklen_t optlen = sizeof listening;
    if (::getsockname(s.fd, local.data(), &len) != 0 ||
        ::getsockopt(s.fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &optlen) != 0 || !listening)
      continue;
    local.resize(len);
    if (local != ep) continue;
    out.push_back(s.fd);
    s.fd = -1;
  }
  return out;
}

std::pair<int, std::filesystem::path> upgrade_handoff::take_pid_file() {
  return {std::exchange(pid_fd_, -1), pid_path_};
}

void upgrade_handoff::report_ready() {
  // Sockets of listeners our config no longer has: closed now, so their clients are refused
  // rather than left waiting in a queue nobody accepts from.
  for (auto& s : sockets_)
    if (s.fd >= 0) ::close(std::exchange(s.fd, -1));
  if (ready_fd_ < 0) return;
  (void)!::write(ready_fd_, ready_line.data(), ready_line.size());
  ::close(std::exchange(ready_fd_, -1));
}

void upgrade_handoff::report_failure(std::string_view reason) {
  if (ready_fd_ < 0) return;
  (void)!::write(ready_fd_, reason.data(), std::min(reason.size(), max_report - 1));
  ::close(std::exchange(ready_fd_, -1));
}

}  // namespace tlsbridge::proxy
