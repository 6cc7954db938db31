#include "proxy/tls_stream.hpp"

#include <openssl/err.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace tlsbridge::proxy {

namespace {

constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

std::string drain_openssl_errors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    // Keep only the reason part ("error:0A000102:SSL routines::unsupported protocol").
    std::string_view text(buf);
    auto colon = text.rfind(':');
    out += colon == std::string_view::npos ? text : text.substr(colon + 1);
  }
  return out;
}

// Before each SSL call whose failure SSL_get_error reads (it looks only at ERR_peek_error):
// an empty queue needs no clearing, and ERR_clear_error walks every slot of the thread's queue
// (≈ 840 instructions against ≈ 200 for the peek; 50 calls per SMTP transaction).
void clear_stale_errors() {
  if (ERR_peek_error() != 0) ERR_clear_error();
}

}  // namespace

tls_stream::tls_stream(asio::ip::tcp::socket socket) : socket_(std::move(socket)) {
  error_code ec;
  if (!socket_.non_blocking()) socket_.non_blocking(true, ec);  // an ioctl each time it is set
  socket_.set_option(asio::ip::tcp::no_delay(true), ec);
}

tls_stream::~tls_stream() {
  if (ssl_) SSL_free(ssl_);
}

const std::string& tls_stream::tls_error() const {
  static const std::string none;
  return tls_error_ ? *tls_error_ : none;
}

void tls_stream::set_tls_error(std::string reason) {
  if (tls_error_)
    *tls_error_ = std::move(reason);
  else
    tls_error_ = std::make_unique<std::string>(std::move(reason));
}

error_code tls_stream::ssl_failure(int ssl_error, const char* what) {
  std::string reason = drain_openssl_errors();
  if (reason.empty()) reason = (ssl_error == SSL_ERROR_SYSCALL) ? "connection closed" : what;
  set_tls_error(std::move(reason));
  if (ssl_error == SSL_ERROR_ZERO_RETURN) return asio::error::eof;
  return asio::error::connection_aborted;
}

asio::awaitable<error_code> tls_stream::handshake_server(SSL_CTX* ctx) {
  return handshake(ctx, true, {}, nullptr);
}

asio::awaitable<error_code> tls_stream::handshake_client(SSL_CTX* ctx, std::string server_name,
                                                         SSL_SESSION* resume) {
  return handshake(ctx, false, std::move(server_name), resume);
}

asio::awaitable<error_code> tls_stream::handshake(SSL_CTX* ctx, bool server, std::string sni,
                                                  SSL_SESSION* resume) {
  ERR_clear_error();
  ssl_ = SSL_new(ctx);
  if (!ssl_) {
    set_tls_error(drain_openssl_errors());
    co_return asio::error::no_memory;
  }
  // A peer that closes without close_notify is treated as EOF, not as an OpenSSL error.
  SSL_set_options(ssl_, SSL_OP_IGNORE_UNEXPECTED_EOF);
  // Read-ahead into a buffer of one record: one recv() per record instead of two (header, then
  // body), and read_some() still hands the relay up to 64 KiB at once (it reads every record the
  // socket has). Not several records: see read_buffer_len. The buffer exists only while data
  // flows (release_idle_buffers).
  SSL_set_read_ahead(ssl_, 1);
  // A write that would block may be finished from another buffer holding the same bytes
  // (write_now, then write_all from the relay's copy of the rest).
  SSL_set_mode(ssl_, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_set_default_read_buffer_len(ssl_, read_buffer_len);
  SSL_set_fd(ssl_, static_cast<int>(socket_.native_handle()));
  if (on_ssl_created_) on_ssl_created_(ssl_, on_ssl_created_arg_);
  if (server) {
    SSL_set_accept_state(ssl_);
  } else {
    SSL_set_connect_state(ssl_);
    if (!sni.empty()) SSL_set_tlsext_host_name(ssl_, sni.c_str());
    if (resume) SSL_set_session(ssl_, resume);  // takes its own reference
  }
  for (;;) {
    clear_stale_errors();
    int rc = SSL_do_handshake(ssl_);
    if (rc == 1) {
      handshake_done_ = true;
      // Only the relay's reads consult the short-recv note: the callback, which OpenSSL calls
      // before and after every operation on the BIO (each ctrl too, ≈ 770 calls per SMTP
      // transaction), is installed once the handshake is done. The handshake's last recv was
      // short as a rule (the peer waits for our answer): the note starts as that.
      socket_drained_ = true;
      if (BIO* rbio = SSL_get_rbio(ssl_)) {
        BIO_set_callback_ex(rbio, &tls_stream::on_bio);
        BIO_set_callback_arg(rbio, reinterpret_cast<char*>(this));
      }
      co_return error_code{};
    }
    int err = SSL_get_error(ssl_, rc);
    if (err == SSL_ERROR_WANT_READ) {
      auto [ec] = co_await socket_.async_wait(asio::socket_base::wait_read, use_nothrow);
      if (ec) co_return ec;
    } else if (err == SSL_ERROR_WANT_WRITE) {
      auto [ec] = co_await socket_.async_wait(asio::socket_base::wait_write, use_nothrow);
      if (ec) co_return ec;
    } else {
      co_return ssl_failure(err, "handshake failed");
    }
  }
}

long tls_stream::on_bio(BIO* bio, int oper, const char* /*argp*/, std::size_t len, int /*argi*/,
                        long /*argl*/, int ret, std::size_t* processed) {
  if (oper == (BIO_CB_READ | BIO_CB_RETURN)) {
    auto* self = reinterpret_cast<tls_stream*>(BIO_get_callback_arg(bio));
    self->socket_drained_ = ret <= 0 || processed == nullptr || *processed < len;
  }
  return ret;
}

void tls_stream::release_idle_buffers() {
  // About to wait with nothing buffered: hand OpenSSL's record buffers back (SSL_MODE_RELEASE_
  // BUFFERS alone keeps the read buffer its last SSL_read allocated), so an idle leg holds only
  // OpenSSL's state. Fails harmlessly when a partial record is still buffered.
  if (ssl_ && handshake_done_) SSL_free_buffers(ssl_);
  read_blocked_ = false;
}

asio::awaitable<error_code> tls_stream::wait_readable() {
  if (has_buffered()) co_return error_code{};
  release_idle_buffers();
  auto wait = read_wants_write_ ? asio::socket_base::wait_write : asio::socket_base::wait_read;
  auto [ec] = co_await socket_.async_wait(wait, use_nothrow);
  co_return ec;
}

std::size_t tls_stream::read_some(char* data, std::size_t size, error_code& ec) {
  ec = {};
  if (!ssl_) {
    std::size_t n = socket_.read_some(asio::buffer(data, size), ec);
    if (ec == asio::error::try_again) ec = asio::error::would_block;
    socket_drained_ = n < size;
    return n;
  }
  read_wants_write_ = false;
  // SSL_read_ex returns at most one record: take every record OpenSSL already holds, so the relay
  // forwards them in one write.
  std::size_t total = 0;
  for (;;) {
    clear_stale_errors();
    std::size_t n = 0;
    if (SSL_read_ex(ssl_, data + total, size - total, &n) == 1) {
      read_blocked_ = false;
      total += n;
      if (total == size || (SSL_pending(ssl_) == 0 && SSL_has_pending(ssl_) == 0)) return total;
      continue;
    }
    int err = SSL_get_error(ssl_, 0);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
      // Whatever OpenSSL still holds is an incomplete record: only the socket can help now, so
      // has_buffered() must not send the caller straight back here (a busy loop on a client that
      // stops mid-record).
      read_blocked_ = true;
      read_wants_write_ = err == SSL_ERROR_WANT_WRITE;
      if (total > 0) return total;
      ec = asio::error::would_block;
      return 0;
    }
    // EOF or a TLS error after some data: deliver the data now; the condition stays and is
    // reported by the next call.
    if (total > 0) return total;
    if (err == SSL_ERROR_ZERO_RETURN) {
      ec = asio::error::eof;
      return 0;
    }
    // With SSL_OP_IGNORE_UNEXPECTED_EOF a bare FIN reads as SSL_ERROR_ZERO_RETURN; anything else
    // is a real TLS error.
    ec = ssl_failure(err, "read failed");
    return 0;
  }
}

asio::awaitable<error_code> tls_stream::write_all(std::string_view data) {
  while (!data.empty()) {
    std::size_t n = 0;
    error_code ec;
    auto wait = asio::socket_base::wait_write;
    if (!ssl_) {
      n = socket_.write_some(asio::buffer(data.data(), data.size()), ec);
      if (ec == asio::error::try_again) ec = asio::error::would_block;
      if (ec && ec != asio::error::would_block) co_return ec;
    } else {
      clear_stale_errors();
      if (SSL_write_ex(ssl_, data.data(), data.size(), &n) != 1) {
        int err = SSL_get_error(ssl_, 0);
        if (err == SSL_ERROR_WANT_READ) {
          wait = asio::socket_base::wait_read;
        } else if (err != SSL_ERROR_WANT_WRITE) {
          co_return ssl_failure(err, "write failed");
        }
        n = 0;
      }
    }
    data.remove_prefix(n);
    if (n == 0) {
      auto [wec] = co_await socket_.async_wait(wait, use_nothrow);
      if (wec) co_return wec;
    }
  }
  co_return error_code{};
}

std::size_t tls_stream::write_now(std::string_view data, error_code& ec) {
  ec = {};
  if (data.empty()) return 0;
  if (!ssl_) {
    std::size_t n = socket_.write_some(asio::buffer(data.data(), data.size()), ec);
    if (ec == asio::error::try_again) ec = asio::error::would_block;
    return n;
  }
  clear_stale_errors();
  std::size_t n = 0;
  if (SSL_write_ex(ssl_, data.data(), data.size(), &n) == 1) return n;
  // Without SSL_MODE_ENABLE_PARTIAL_WRITE a write that stops part way reports nothing written:
  // OpenSSL keeps its progress and expects the same bytes again.
  int err = SSL_get_error(ssl_, 0);
  if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ)
    ec = asio::error::would_block;
  else
    ec = ssl_failure(err, "write failed");
  return 0;
}

asio::awaitable<void> tls_stream::shutdown_send() {
  if (sent_shutdown_) co_return;
  sent_shutdown_ = true;
  if (ssl_ && handshake_done_) {
    ERR_clear_error();
    // One attempt: close_notify is courtesy; the FIN below is what the peer's reader needs.
    SSL_shutdown(ssl_);
    ERR_clear_error();
  }
  error_code ec;
  socket_.shutdown(asio::socket_base::shutdown_send, ec);
}

void tls_stream::close() {
  error_code ec;
  socket_.close(ec);
}

}  // namespace tlsbridge::proxy
