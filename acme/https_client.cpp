// A small blocking HTTPS/1.1 client for the ACME server only.
#include "acme/https_client.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "acme/http_message.hpp"
#include "acme/ossl.hpp"

namespace tlsbridge::acme {

namespace {

using steady = std::chrono::steady_clock;

struct fd_guard {
  int fd = -1;
  ~fd_guard() {
    if (fd >= 0) ::close(fd);
  }
};

int ms_left(steady::time_point deadline) {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now()).count();
  return left <= 0 ? 0 : static_cast<int>(std::min<long long>(left, 60000));
}

// A connected, blocking-mode-off socket to host:port within `timeout`, or -1 with `error`.
int connect_to(const parsed_url& url, std::chrono::milliseconds timeout, std::string& error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (const int rc = ::getaddrinfo(url.host.c_str(), url.port.c_str(), &hints, &found); rc != 0) {
    error = "cannot resolve " + url.host + ": " + gai_strerror(rc);
    return -1;
  }
  const auto deadline = steady::now() + timeout;
  error = "cannot connect to " + url.host + ":" + url.port;
  int tried = 0;
  for (addrinfo* ai = found; ai && tried < 8; ai = ai->ai_next, ++tried) {
    int fd =
        ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0) continue;
    int rc = ::connect(fd, ai->ai_addr, ai->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      rc = ::poll(&p, 1, ms_left(deadline)) == 1 ? 0 : -1;
      if (rc == 0) {
        int so_error = 0;
        socklen_t len = sizeof so_error;
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len);
        if (so_error != 0) {
          errno = so_error;
          rc = -1;
        }
      } else {
        errno = ETIMEDOUT;
      }
    }
    if (rc == 0) {
      ::freeaddrinfo(found);
      return fd;
    }
    error = "cannot connect to " + url.host + ":" + url.port + ": " + std::strerror(errno);
    ::close(fd);
  }
  ::freeaddrinfo(found);
  return -1;
}

// Waits until `fd` is ready for what OpenSSL asked; false on timeout.
bool wait_for(int fd, int ssl_error, steady::time_point deadline) {
  pollfd p{fd, static_cast<short>(ssl_error == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN), 0};
  const int left = ms_left(deadline);
  return left > 0 && ::poll(&p, 1, left) == 1;
}

// SIGPIPE blocked on this thread while a request runs (OpenSSL writes with write(2), and a server
// that hangs up must be an error, not the end of the process); a SIGPIPE it raised is consumed.
class sigpipe_blocked {
 public:
  sigpipe_blocked() {
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    sigpending(&pending_before_);
    pthread_sigmask(SIG_BLOCK, &pipe, &old_);
  }
  ~sigpipe_blocked() {
    sigset_t pending;
    sigpending(&pending);
    if (sigismember(&pending, SIGPIPE) && !sigismember(&pending_before_, SIGPIPE)) {
      sigset_t pipe;
      sigemptyset(&pipe);
      sigaddset(&pipe, SIGPIPE);
      const timespec zero{0, 0};
      sigtimedwait(&pipe, nullptr, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  sigpipe_blocked(const sigpipe_blocked&) = delete;
  sigpipe_blocked& operator=(const sigpipe_blocked&) = delete;

 private:
  sigset_t old_;
  sigset_t pending_before_;
};

}  // namespace

struct https_client::context {
  SSL_CTX* ctx = nullptr;
  std::string error;
  ~context() { SSL_CTX_free(ctx); }
};

https_client::https_client(https_settings settings)
    : settings_(std::move(settings)), ctx_(std::make_unique<context>()) {
  ctx_->ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx_->ctx) {
    ctx_->error = openssl_error("cannot make a TLS context");
    return;
  }
  SSL_CTX_set_min_proto_version(ctx_->ctx, TLS1_2_VERSION);
  SSL_CTX_set_verify(ctx_->ctx, SSL_VERIFY_PEER, nullptr);
  const int loaded = settings_.ca_file.empty() ? SSL_CTX_set_default_verify_paths(ctx_->ctx)
                                               : SSL_CTX_load_verify_locations(
                                                     ctx_->ctx, settings_.ca_file.c_str(), nullptr);
  if (loaded != 1)
    ctx_->error = openssl_error("cannot load the trust for the ACME server" +
                                (settings_.ca_file.empty() ? "" : " from " + settings_.ca_file));
}

https_client::~https_client() = default;

bool https_client::ready(std::string& error) const {
  error = ctx_->error;
  return error.empty();
}

bool https_client::fetch(const http_request& request, http_response& response, std::string& error,
                         std::chrono::milliseconds budget) {
  if (!ready(error)) return false;
  const sigpipe_blocked no_sigpipe;
  parsed_url url;
  if (!parse_https_url(request.url, url)) {
    error = "not an https URL: " + request.url;
    return false;
  }
  fd_guard sock;
  sock.fd = connect_to(url, std::min(settings_.connect_timeout, budget), error);
  if (sock.fd < 0) return false;
  const auto deadline = steady::now() + std::min(settings_.io_timeout, budget);
  std::unique_ptr<SSL, decltype(&SSL_free)> ssl(SSL_new(ctx_->ctx), SSL_free);
  if (!ssl || SSL_set_fd(ssl.get(), sock.fd) != 1) {
    error = openssl_error("cannot start TLS");
    return false;
  }
  unsigned char ip[16];
  const bool is_ip = inet_pton(AF_INET, url.host.c_str(), ip) == 1 ||
                     inet_pton(AF_INET6, url.host.c_str(), ip) == 1;
  if (is_ip) {
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl.get()), url.host.c_str());
  } else {
    SSL_set_tlsext_host_name(ssl.get(), url.host.c_str());
    SSL_set1_host(ssl.get(), url.host.c_str());
  }
  ERR_clear_error();
  for (;;) {
    const int rc = SSL_connect(ssl.get());
    if (rc == 1) break;
    const int e = SSL_get_error(ssl.get(), rc);
    if ((e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) && wait_for(sock.fd, e, deadline))
      continue;
    const long verify = SSL_get_verify_result(ssl.get());
    error = verify != X509_V_OK ? "TLS handshake with " + url.host +
                                      " failed: " + X509_verify_cert_error_string(verify)
                                : openssl_error("TLS handshake with " + url.host + " failed");
    return false;
  }
  const std::string out = request_bytes(request, url);
  size_t sent = 0;
  while (sent < out.size()) {
    size_t n = 0;
    const int rc = SSL_write_ex(ssl.get(), out.data() + sent, out.size() - sent, &n);
    if (rc == 1) {
      sent += n;
      continue;
    }
    const int e = SSL_get_error(ssl.get(), rc);
    if ((e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) && wait_for(sock.fd, e, deadline))
      continue;
    error = openssl_error("cannot send the request to " + url.host);
    return false;
  }
  std::string raw;
  const bool head = request.method == "HEAD";
  char buffer[16384];
  for (;;) {
    size_t n = 0;
    const int rc = SSL_read_ex(ssl.get(), buffer, sizeof buffer, &n);
    bool eof = false;
    if (rc == 1) {
      raw.append(buffer, n);
    } else {
      const int e = SSL_get_error(ssl.get(), rc);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        if (wait_for(sock.fd, e, deadline)) continue;
        error = "no complete response from " + url.host + " in time";
        return false;
      }
      ERR_clear_error();
      eof = true;  // close_notify, or a close without it: the parser decides if the body ended
    }
    const parse_state state = parse_response(raw, eof, head, settings_.max_body, response, error);
    if (state == parse_state::complete) return true;
    if (state == parse_state::error) return false;
    if (eof) {
      error = "the response from " + url.host + " ended early";
      return false;
    }
  }
}

}  // namespace tlsbridge::acme
