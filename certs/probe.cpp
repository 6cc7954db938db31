#include "certs/probe.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <stdexcept>

#include "certs/chain_collector.hpp"
#include "certs/tls_context.hpp"
#include "config/config.hpp"

namespace tlsbridge::certs {
namespace {

using std::chrono::milliseconds;

bool is_ip_literal(const std::string& host) {
  unsigned char buf[sizeof(in6_addr)];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

std::string errno_text(int err) {
  return std::strerror(err);
}

// One TCP connection, non-blocking underneath so every wait is bounded by poll(2).
class tcp_connection {
 public:
  tcp_connection() = default;
  tcp_connection(const tcp_connection&) = delete;
  tcp_connection& operator=(const tcp_connection&) = delete;
  ~tcp_connection() { close(); }

  int fd() const { return fd_; }

  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  // Tries each resolved address in order; "" on success, else why the last one failed.
  std::string connect(const std::string& host, std::uint16_t port, milliseconds timeout) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    const std::string service = std::to_string(port);
    if (const int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &found); rc != 0)
      return "cannot resolve " + host + ": " + gai_strerror(rc);
    std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> list(found, &freeaddrinfo);
    std::string error = "no address for " + host;
    for (addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
      close();
      fd_ =
          ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
      if (fd_ < 0) {
        error = "socket: " + errno_text(errno);
        continue;
      }
      if (::connect(fd_, ai->ai_addr, ai->ai_addrlen) == 0) return {};
      if (errno != EINPROGRESS) {
        error = "connect: " + errno_text(errno);
        continue;
      }
      if (!wait(POLLOUT, timeout)) {
        error = "connect: timed out after " + std::to_string(timeout.count()) + " ms";
        continue;
      }
      int so_error = 0;
      socklen_t len = sizeof so_error;
      getsockopt(fd_, SOL_SOCKET, SO_ERROR, &so_error, &len);
      if (so_error == 0) return {};
      error = "connect: " + errno_text(so_error);
    }
    close();
    return error;
  }

  // True when the socket became ready for `events` within `timeout`.
  bool wait(short events, milliseconds timeout) const {
    pollfd p{fd_, events, 0};
    for (;;) {
      const int rc = ::poll(&p, 1, static_cast<int>(timeout.count()));
      if (rc < 0 && errno == EINTR) continue;
      return rc > 0;
    }
  }

  std::string write_all(std::string_view data, milliseconds timeout) {
    while (!data.empty()) {
      const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n > 0) {
        data.remove_prefix(static_cast<std::size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        if (!wait(POLLOUT, timeout)) return "write: timed out";
        continue;
      }
      return "write: " + errno_text(errno);
    }
    return {};
  }

  // Reads what is there (waiting up to `timeout`). "" in `error` and an empty `out` = EOF.
  std::string read_some(std::string& out, milliseconds timeout) {
    char buf[4096];
    for (;;) {
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n >= 0) {
        out.assign(buf, static_cast<std::size_t>(n));
        return {};
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        if (!wait(POLLIN, timeout))
          return "read: timed out after " + std::to_string(timeout.count()) + " ms";
        continue;
      }
      return "read: " + errno_text(errno);
    }
  }

 private:
  int fd_ = -1;
};

// Runs the plaintext opening. "" when the server said go ahead.
std::string run_dialogue(tcp_connection& conn, starttls_protocol protocol, milliseconds timeout) {
  starttls_dialogue dialogue(protocol);
  starttls_step step = dialogue.start();
  for (;;) {
    switch (step.what) {
      case starttls_step::action::ready:
        return {};
      case starttls_step::action::failed:
        return step.data;
      case starttls_step::action::send:
        if (auto err = conn.write_all(step.data, timeout); !err.empty()) return err;
        [[fallthrough]];
      case starttls_step::action::read: {
        std::string data;
        if (auto err = conn.read_some(data, timeout); !err.empty()) return err;
        step = data.empty() ? dialogue.on_eof() : dialogue.on_data(data);
        break;
      }
    }
  }
}

struct ssl_deleter {
  void operator()(SSL* s) const { SSL_free(s); }
};
using ssl_ptr = std::unique_ptr<SSL, ssl_deleter>;

// A client context that offers exactly one version, at security level 0 with every cipher
// OpenSSL still has: the question is what the server accepts. Weak signatures and keys in what it
// presents are judged afterwards by policy, never silently refused by the handshake.
ssl_ctx_ptr version_context(int version) {
  config::tls_profile profile;
  profile.name = "probe-" + tls_version_name(version);
  profile.min_version = version;
  profile.max_version = version;
  profile.ciphers = "ALL:@SECLEVEL=0";
  return make_client_context(profile);
}

std::string handshake_failure(SSL* ssl, int rc) {
  const int err = SSL_get_error(ssl, rc);
  const int saved_errno = errno;
  if (err == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
    return saved_errno != 0 ? "handshake: " + errno_text(saved_errno)
                            : "server closed the connection during the handshake";
  }
  if (err == SSL_ERROR_ZERO_RETURN) return "server closed the connection during the handshake";
  return last_openssl_error("handshake failed");
}

struct attempt_result {
  version_result result;
  bool reached_tls = false;  // TCP connected and the dialogue said go ahead
  std::optional<policy::chain_evidence> chain;
};

attempt_result attempt(const probe_options& options, int version, SSL_CTX* ctx,
                       const std::string& sni, const verify_settings& verify) {
  attempt_result out;
  out.result.version = version;
  out.result.name = tls_version_name(version);
  out.result.tried = true;

  tcp_connection conn;
  if (auto err = conn.connect(options.host, options.port, options.connect_timeout); !err.empty()) {
    out.result.reason = err;
    return out;
  }
  if (auto err = run_dialogue(conn, options.starttls, options.step_timeout); !err.empty()) {
    out.result.reason = err;
    return out;
  }
  out.reached_tls = true;

  ERR_clear_error();
  ssl_ptr ssl(SSL_new(ctx));
  if (!ssl || SSL_set_fd(ssl.get(), conn.fd()) != 1) {
    out.result.reason = last_openssl_error("SSL_new failed");
    return out;
  }
  if (!sni.empty()) SSL_set_tlsext_host_name(ssl.get(), sni.c_str());
  for (;;) {
    errno = 0;
    const int rc = SSL_connect(ssl.get());
    if (rc == 1) break;
    const int err = SSL_get_error(ssl.get(), rc);
    short events = 0;
    if (err == SSL_ERROR_WANT_READ) events = POLLIN;
    if (err == SSL_ERROR_WANT_WRITE) events = POLLOUT;
    if (events == 0) {
      out.result.reason = handshake_failure(ssl.get(), rc);
      ERR_clear_error();
      return out;
    }
    if (!conn.wait(events, options.step_timeout)) {
      out.result.reason =
          "handshake: timed out after " + std::to_string(options.step_timeout.count()) + " ms";
      return out;
    }
  }
  out.result.accepted = true;
  if (const char* cipher = SSL_get_cipher_name(ssl.get())) out.result.cipher = cipher;
  out.chain = collect_peer_chain(ssl.get(), verify);
  // Best effort close_notify; the server's answer is not waited for.
  SSL_shutdown(ssl.get());
  ERR_clear_error();
  return out;
}

}  // namespace

std::string tls_version_name(int version) {
  switch (version) {
    case config::tls1_0:
      return "TLSv1";
    case config::tls1_1:
      return "TLSv1.1";
    case config::tls1_2:
      return "TLSv1.2";
    case config::tls1_3:
      return "TLSv1.3";
    default:
      return "0x" + std::to_string(version);
  }
}

probe_report probe(const probe_options& options) {
  probe_report report;
  report.target = options.host.find(':') != std::string::npos
                      ? "[" + options.host + "]:" + std::to_string(options.port)
                      : options.host + ":" + std::to_string(options.port);
  report.sni = !options.servername.empty()   ? options.servername
               : is_ip_literal(options.host) ? std::string()
                                             : options.host;
  const std::string check_name = options.servername.empty() ? options.host : options.servername;
  auto store = make_trust_store(options.ca_file);
  const verify_settings verify{store.get(), check_name};

  for (const int version : {config::tls1_0, config::tls1_1, config::tls1_2, config::tls1_3}) {
    version_result skipped;
    skipped.version = version;
    skipped.name = tls_version_name(version);
    // A server that cannot be reached, or whose plaintext opening fails, fails the same way for
    // every version: stop at the first such failure instead of waiting out four timeouts.
    if (!report.connect_error.empty()) {
      skipped.reason = "not tried: " + report.connect_error;
      report.versions.push_back(skipped);
      continue;
    }
    auto ctx = version_context(version);
    auto one = attempt(options, version, ctx.get(), report.sni, verify);
    if (!one.reached_tls) report.connect_error = one.result.reason;
    if (one.chain) {  // later (higher) versions replace earlier ones: prefer the highest
      report.chain = std::move(*one.chain);
      report.chain_version = version;
    }
    report.versions.push_back(std::move(one.result));
  }
  return report;
}

}  // namespace tlsbridge::certs
