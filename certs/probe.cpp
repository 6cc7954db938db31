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
#include "protocols/imap/imap_backend_opener.hpp"
#include "protocols/pop3/pop3_backend_opener.hpp"
#include "protocols/smtp/backend_opener.hpp"

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

// Server text quoted in a reason, bounded and with control characters replaced, so a hostile
// server can neither flood the report nor write escape sequences to the terminal.
std::string printable(std::string_view text) {
  constexpr std::size_t limit = 300;
  std::string out;
  for (char c : text.substr(0, limit)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (text.size() > limit) out += "...";
  return out;
}

// The proxy's opener for a STARTTLS back leg (what proxy/protocol_factory.cpp builds for
// `backend.tls = "starttls"`), with STARTTLS required: a server that does not offer it has
// nothing to probe.
std::unique_ptr<protocols::backend_opener> make_opener(const probe_options& options) {
  constexpr auto tls = config::back_tls::starttls;
  switch (options.starttls) {
    case starttls_protocol::smtp:
      return std::make_unique<protocols::smtp::smtp_backend_opener>(tls, options.ehlo_name, true);
    case starttls_protocol::imap:
      return std::make_unique<protocols::imap::imap_backend_opener>(tls, true);
    case starttls_protocol::pop3:
      return std::make_unique<protocols::pop3::pop3_backend_opener>(tls, true);
    case starttls_protocol::none:
      break;
  }
  return nullptr;
}

struct attempt_result {
  version_result result;
  bool reached_tls = false;  // TCP connected and the opening said go ahead
  std::optional<policy::chain_evidence> chain;
};

// One connection at one version: TCP, the opening (if any), the handshake, and for openers that
// go on over TLS (IMAP asks CAPABILITY again) the rest of the opening. Reads and writes go to the
// socket before the handshake and through OpenSSL after it, each bounded by `step_timeout`.
class attempt_run {
 public:
  attempt_run(const probe_options& options, int version, SSL_CTX* ctx, const std::string& sni,
              const verify_settings& verify)
      : options_(options), ctx_(ctx), sni_(sni), verify_(verify) {
    out_.result.version = version;
    out_.result.name = tls_version_name(version);
    out_.result.tried = true;
  }

  attempt_result run() {
    if (auto err = conn_.connect(options_.host, options_.port, options_.connect_timeout);
        !err.empty())
      return failed(err);
    if (options_.starttls == starttls_protocol::none) {
      out_.reached_tls = true;
      if (auto err = handshake(); !err.empty()) return failed(err);
      return finish();
    }
    return open(*make_opener(options_));
  }

 private:
  using action = protocols::backend_opener::action;

  attempt_result open(protocols::backend_opener& opener) {
    action a = opener.start();
    for (;;) {
      switch (a.what) {
        case action::kind::read: {
          std::string data;
          if (auto err = read_some(data); !err.empty()) return failed(err);
          if (data.empty())
            return failed(std::string("server closed the connection during the ") +
                          to_string(options_.starttls) + " opening");
          a = opener.on_read(data);
          break;
        }
        case action::kind::write:
          if (auto err = write_all(a.data); !err.empty()) return failed(err);
          a = opener.on_written();
          break;
        case action::kind::handshake:
          out_.reached_tls = true;
          if (auto err = handshake(); !err.empty()) return failed(err);
          a = opener.on_handshake_done();
          break;
        case action::kind::done:
          if (!ssl_) return failed("the opening ended without TLS");
          return finish();
        case action::kind::fail:
          return failed(printable(a.data));
      }
    }
  }

  attempt_result failed(std::string reason) {
    // The handshake succeeded but the rest of the opening did not: the proxy could not use this
    // back leg either, so the version is not counted as accepted and its chain is not kept.
    if (handshake_done_)
      reason = "handshake done (" + out_.result.cipher + "), then the opening failed: " + reason;
    out_.result.accepted = false;
    out_.result.cipher.clear();
    out_.result.reason = std::move(reason);
    out_.chain.reset();
    return std::move(out_);
  }

  attempt_result finish() {
    out_.result.accepted = true;
    // Best effort close_notify; the server's answer is not waited for.
    SSL_shutdown(ssl_.get());
    ERR_clear_error();
    return std::move(out_);
  }

  // Runs one OpenSSL call until it succeeds, waiting for the socket as OpenSSL asks. Returns the
  // call's last result; `err` is SSL_get_error's verdict when it is not a wait.
  template <class Call>
  int ssl_call(Call call, int& err) {
    for (;;) {
      errno = 0;
      const int rc = call();
      if (rc > 0) return rc;
      err = SSL_get_error(ssl_.get(), rc);
      short events = 0;
      if (err == SSL_ERROR_WANT_READ) events = POLLIN;
      if (err == SSL_ERROR_WANT_WRITE) events = POLLOUT;
      if (events == 0) return rc;
      if (!conn_.wait(events, options_.step_timeout)) {
        err = SSL_ERROR_WANT_READ;  // timed out
        return -1;
      }
    }
  }

  std::string timed_out(const char* what) const {
    return std::string(what) + ": timed out after " +
           std::to_string(options_.step_timeout.count()) + " ms";
  }

  std::string handshake() {
    ERR_clear_error();
    ssl_.reset(SSL_new(ctx_));
    if (!ssl_ || SSL_set_fd(ssl_.get(), conn_.fd()) != 1)
      return last_openssl_error("SSL_new failed");
    if (!sni_.empty()) SSL_set_tlsext_host_name(ssl_.get(), sni_.c_str());
    int err = 0;
    const int rc = ssl_call([&] { return SSL_connect(ssl_.get()); }, err);
    if (rc <= 0) {
      auto why = err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE
                     ? timed_out("handshake")
                     : handshake_failure(ssl_.get(), rc);
      ERR_clear_error();
      return why;
    }
    handshake_done_ = true;
    if (const char* cipher = SSL_get_cipher_name(ssl_.get())) out_.result.cipher = cipher;
    out_.chain = collect_peer_chain(ssl_.get(), verify_);
    return {};
  }

  std::string read_some(std::string& out) {
    if (!ssl_) return conn_.read_some(out, options_.step_timeout);
    char buf[4096];
    int err = 0;
    const int rc = ssl_call([&] { return SSL_read(ssl_.get(), buf, sizeof buf); }, err);
    out.clear();
    if (rc > 0) {
      out.assign(buf, static_cast<std::size_t>(rc));
      return {};
    }
    if (err == SSL_ERROR_ZERO_RETURN) return {};  // close_notify: EOF
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return timed_out("read");
    auto why = last_openssl_error("read over TLS failed");
    ERR_clear_error();
    return why;
  }

  std::string write_all(std::string_view data) {
    if (!ssl_) return conn_.write_all(data, options_.step_timeout);
    int err = 0;
    const int rc = ssl_call(
        [&] { return SSL_write(ssl_.get(), data.data(), static_cast<int>(data.size())); }, err);
    if (rc > 0) return {};  // SSL_write without partial writes: all or nothing
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return timed_out("write");
    auto why = last_openssl_error("write over TLS failed");
    ERR_clear_error();
    return why;
  }

  const probe_options& options_;
  SSL_CTX* ctx_;
  const std::string& sni_;
  const verify_settings& verify_;
  tcp_connection conn_;
  ssl_ptr ssl_;
  bool handshake_done_ = false;
  attempt_result out_;
};

}  // namespace

const char* to_string(starttls_protocol p) {
  static constexpr const char* names[] = {"none", "smtp", "imap", "pop3"};  // enum order
  return names[static_cast<std::size_t>(p)];
}

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
    auto one = attempt_run(options, version, ctx.get(), report.sni, verify).run();
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
