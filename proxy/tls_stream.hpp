// One connection leg: a TCP socket that may become TLS. OpenSSL runs on the socket itself
// (SSL_set_fd on a non-blocking fd) — no BIO pair and no per-stream buffers of ours — and we wait
// for readiness with the reactor. With SSL_MODE_RELEASE_BUFFERS an idle leg holds only OpenSSL's
// own state: the thin TLS layer of ARCHITECTURE.md, the reason an idle ActiveSync Ping or IMAP
// IDLE costs kilobytes, not the ≥34 KiB of asio::ssl::stream.
//
// Reads are two-phase: `wait_readable()` suspends with no buffer held, then `read_some()` is a
// non-blocking call into a buffer the caller lends only for that moment. Writes complete fully.
// All operations of one stream run on one thread (the session's io_context); one read and one
// write may be outstanding at the same time (full-duplex relay), as OpenSSL allows on one thread.
#pragma once

#include <openssl/ssl.h>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

namespace tlsbridge::proxy {

namespace asio = boost::asio;
using boost::system::error_code;

class tls_stream {
 public:
  explicit tls_stream(asio::ip::tcp::socket socket);
  ~tls_stream();
  tls_stream(const tls_stream&) = delete;
  tls_stream& operator=(const tls_stream&) = delete;

  asio::ip::tcp::socket& socket() { return socket_; }
  SSL* ssl() const { return ssl_; }
  bool tls_active() const { return ssl_ != nullptr && handshake_done_; }

  // Called with the SSL object right after it is made, before the handshake (per-connection
  // ex_data such as the client-certificate policy check).
  // A plain function and its argument, not a std::function: two words in every leg.
  void on_ssl_created(void (*hook)(SSL*, void* arg), void* arg) {
    on_ssl_created_ = hook;
    on_ssl_created_arg_ = arg;
  }
  // Starts TLS on the leg (after any plaintext phase, e.g. STARTTLS).
  asio::awaitable<error_code> handshake_server(SSL_CTX* ctx);
  // `resume`: a session from an earlier connection to offer (the stream takes its own reference).
  // The name is taken by value: the coroutine starts only when awaited, so a reference would
  // dangle when a caller passes a temporary and awaits (or co_spawns) the result later.
  asio::awaitable<error_code> handshake_client(SSL_CTX* ctx, std::string server_name,
                                               SSL_SESSION* resume = nullptr);
  // The handshake resumed an earlier session (no certificate was exchanged).
  bool resumed() const { return ssl_ != nullptr && SSL_session_reused(ssl_) == 1; }
  // OpenSSL's reason for the last TLS failure on this stream (empty if none).
  const std::string& tls_error() const;

  // Suspends until read_some() can make progress (socket readable or TLS data already decrypted).
  asio::awaitable<error_code> wait_readable();
  // True when OpenSSL already holds received bytes that read_some() can use without a wait (not
  // when what it holds is an incomplete record the last read_some() could not finish).
  bool has_buffered() const {
    return ssl_ != nullptr && !read_blocked_ && SSL_has_pending(ssl_) == 1;
  }
  // The callback form of wait_readable() for a leg that may now stay idle for long: OpenSSL's
  // record buffers are handed back and only the reactor's small wait operation remains, with no
  // coroutine frame. `handler(error_code)` runs on the stream's executor. Callers check
  // has_buffered() first.
  template <typename Handler>
  void async_wait_readable(Handler&& handler) {
    release_idle_buffers();
    socket_.async_wait(
        read_wants_write_ ? asio::socket_base::wait_write : asio::socket_base::wait_read,
        std::forward<Handler>(handler));
  }
  // Non-blocking read: >0 bytes; or 0 with ec = would_block (wait again), eof, or an error.
  std::size_t read_some(char* data, std::size_t size, error_code& ec);
  // After a read_some() that returned data: the socket gave less than was asked of it (it had
  // nothing more at that moment) and OpenSSL holds no record, so another read_some() would
  // almost surely find nothing — the caller may wait at once instead of paying a recv that
  // returns EAGAIN. Safe because a wait re-arms the descriptor (Asio's EPOLL_CTL_MOD), which
  // reports bytes that arrived since.
  bool drained() const { return socket_drained_ && !has_buffered(); }
  // Writes all of `data`, which the caller keeps alive until the write is done: co_await it in the
  // statement that makes it (a view, not a copy: this is every relayed byte's path).
  asio::awaitable<error_code> write_all(std::string_view data);
  // Writes what the socket takes now, without waiting: the count of leading bytes of `data` that
  // are done with (all of them, or fewer with ec = would_block, or 0 with another error). The
  // rest must be passed to write_all next, from any buffer: on a TLS leg OpenSSL may hold part
  // of it already encrypted (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER lets the retry come from a
  // copy), so nothing else may be written in between.
  std::size_t write_now(std::string_view data, error_code& ec);
  // Half-close: TLS close_notify (best effort) then TCP FIN. Reading stays possible.
  asio::awaitable<void> shutdown_send();
  void close();

 private:
  asio::awaitable<error_code> handshake(SSL_CTX* ctx, bool server, std::string sni,
                                        SSL_SESSION* resume);
  error_code ssl_failure(int ssl_error, const char* what);
  // OpenSSL's callback on the socket BIO: notes whether each recv came back short.
  static long on_bio(BIO* bio, int oper, const char* argp, std::size_t len, int argi, long argl,
                     int ret, std::size_t* processed);
  // Before a wait for the socket: hand OpenSSL's record buffers back, and forget read_blocked_
  // (the wait itself is for new bytes).
  void release_idle_buffers();
  // One full record and its header: OpenSSL 3.0 moves whatever follows a record to the front of
  // this buffer before the next record (payload alignment), so a larger buffer copies every
  // relayed byte once more (BENCHMARKS.md, "Bulk, profiled").
  static constexpr std::size_t read_buffer_len = 16 * 1024 + 256 + 5;

  asio::ip::tcp::socket socket_;
  SSL* ssl_ = nullptr;
  bool handshake_done_ = false;
  bool read_wants_write_ = false;  // SSL_read asked for writability (TLS 1.3 key update reply)
  bool read_blocked_ = false;      // the last read needs more bytes from the socket
  bool sent_shutdown_ = false;
  bool socket_drained_ = false;             // the last recv returned less than asked (or nothing)
  std::unique_ptr<std::string> tls_error_;  // made by a failure: a working leg carries a pointer
  void set_tls_error(std::string reason);
  void (*on_ssl_created_)(SSL*, void*) = nullptr;
  void* on_ssl_created_arg_ = nullptr;
};

}  // namespace tlsbridge::proxy
