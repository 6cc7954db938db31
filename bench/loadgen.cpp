// tlsbridge's benchmark load generator and backend (bench/run drives it; never part of the tests).
//
// One binary, blocking sockets and one thread per connection or worker: simple, bounded, loopback
// only. Every TLS client handshake is full: no session cache, SSL_OP_NO_TICKET, and no session is
// ever offered (tools like wrk resume sessions and would flatter every proxy). Each mode ends with
// one line "RESULT key=value ..." that bench/run parses.
//
//   loadgen serve      --port P                 plain TCP backend: echo, or sink when a connection
//                                               starts with "SINK" + 8-byte big-endian length (it
//                                               then answers one byte "K" after that many bytes)
//   loadgen handshakes --port P --workers N --seconds T [--no-request] [--count K]
//   loadgen idle       --port P --conns K [--workers N] [--hold-seconds S] [--size 64]
//                      [--send 'POST /... HTTP/1.1\r\n...'] (a request held unanswered)
//   loadgen bulk       --port P --conns C --bytes B        (B bytes per connection)
//   loadgen latency    --port P --seconds T [--size 64] [--plain]
//   loadgen smtp       --port P --workers N --seconds T    (EHLO, STARTTLS, EHLO, MAIL, RCPT,
//                      [--count K]                          DATA, QUIT per connection)
// --count K: stop after exactly K attempts (or T seconds, whichever comes first) — for
// bench/callgrind, which divides a proxy's instructions by a known number of connections.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "loadgen: %s\n", what.c_str());
  std::exit(2);
}

struct options {
  std::string mode;
  std::string host = "127.0.0.1";
  int port = 0;
  int workers = 8;
  int conns = 1;
  double seconds = 5;
  double hold_seconds = 60;
  std::uint64_t bytes = 256ull << 20;
  std::size_t size = 64;  // latency message; idle round trip
  bool request = true;
  bool plain = false;
  std::uint64_t count = 0;  // 0: run for --seconds
  std::string ciphersuites;  // TLS 1.3 suites the client offers (empty: OpenSSL's default)
  std::string send;          // idle: a request sent instead of the round trip, never answered
};

// "\r\n" in a --send argument stands for CR LF.
std::string unescape(const std::string& in) {
  std::string out;
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '\\' && i + 1 < in.size() && (in[i + 1] == 'r' || in[i + 1] == 'n')) {
      out += in[++i] == 'r' ? '\r' : '\n';
    } else {
      out += in[i];
    }
  }
  return out;
}

options parse(int argc, char** argv) {
  if (argc < 2) die("usage: loadgen serve|handshakes|idle|bulk|latency|smtp [options]");
  options o;
  o.mode = argv[1];
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) die("missing value for " + a);
      return argv[++i];
    };
    if (a == "--host")
      o.host = next();
    else if (a == "--port")
      o.port = std::stoi(next());
    else if (a == "--workers")
      o.workers = std::stoi(next());
    else if (a == "--conns")
      o.conns = std::stoi(next());
    else if (a == "--seconds")
      o.seconds = std::stod(next());
    else if (a == "--hold-seconds")
      o.hold_seconds = std::stod(next());
    else if (a == "--bytes")
      o.bytes = std::stoull(next());
    else if (a == "--size")
      o.size = std::stoul(next());
    else if (a == "--no-request")
      o.request = false;
    else if (a == "--plain")
      o.plain = true;
    else if (a == "--count")
      o.count = std::stoull(next());
    else if (a == "--ciphersuites")
      o.ciphersuites = next();
    else if (a == "--send")
      o.send = unescape(next());
    else
      die("unknown option " + a);
  }
  return o;
}

int tcp_connect(const options& o) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die(std::string("socket: ") + std::strerror(errno));
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<std::uint16_t>(o.port));
  ::inet_pton(AF_INET, o.host.c_str(), &sa.sin_addr);
  for (int attempt = 0;; ++attempt) {
    if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0) return fd;
    // EADDRNOTAVAIL: ephemeral ports momentarily exhausted by TIME_WAIT; back off briefly.
    if ((errno == EADDRNOTAVAIL || errno == EAGAIN) && attempt < 200) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      continue;
    }
    int e = errno;
    ::close(fd);
    errno = e;
    return -1;
  }
}

// --ciphersuites: offering one TLS 1.3 suite forces every proxy to the same one.
std::string g_ciphersuites;

SSL_CTX* client_ctx(int min_version) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx) die("SSL_CTX_new");
  SSL_CTX_set_min_proto_version(ctx, min_version);
  if (!g_ciphersuites.empty() && SSL_CTX_set_ciphersuites(ctx, g_ciphersuites.c_str()) != 1)
    die("bad --ciphersuites " + g_ciphersuites);
  // Every handshake full: no tickets asked for, no client session cache, none ever offered.
  SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);  // the bench certificate is self-made
  return ctx;
}

// A connection: a socket and, once TLS is up, its SSL. Blocking I/O.
struct conn {
  int fd = -1;
  SSL* ssl = nullptr;

  bool tls(SSL_CTX* ctx) {
    ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    return SSL_connect(ssl) == 1;
  }
  bool write_all(const char* p, std::size_t n) {
    while (n > 0) {
      if (ssl) {
        std::size_t w = 0;
        if (SSL_write_ex(ssl, p, n, &w) != 1) return false;
        p += w;
        n -= w;
      } else {
        ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0) {
          if (w < 0 && errno == EINTR) continue;
          return false;
        }
        p += w;
        n -= static_cast<std::size_t>(w);
      }
    }
    return true;
  }
  // >0 bytes, or 0 on EOF/error.
  std::size_t read_some(char* p, std::size_t n) {
    if (ssl) {
      std::size_t r = 0;
      return SSL_read_ex(ssl, p, n, &r) == 1 ? r : 0;
    }
    for (;;) {
      ssize_t r = ::recv(fd, p, n, 0);
      if (r < 0 && errno == EINTR) continue;
      return r > 0 ? static_cast<std::size_t>(r) : 0;
    }
  }
  bool read_exact(char* p, std::size_t n) {
    while (n > 0) {
      std::size_t r = read_some(p, n);
      if (r == 0) return false;
      p += r;
      n -= r;
    }
    return true;
  }
  void close() {
    if (ssl) {
      SSL_shutdown(ssl);  // one close_notify, not waiting for the peer's
      SSL_free(ssl);
      ssl = nullptr;
    }
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
};

void print_ssl_errors(const char* what) {
  unsigned long e = ERR_get_error();
  char buf[256] = "connection closed";
  if (e) ERR_error_string_n(e, buf, sizeof buf);
  std::fprintf(stderr, "loadgen: %s: %s\n", what, buf);
  ERR_clear_error();
}

// ---------------------------------------------------------------------------------------------
// serve: the plain echo/sink backend, one epoll thread.

struct backend_conn {
  std::string head;  // first bytes until echo or sink is decided
  bool decided = false;
  bool sink = false;
  std::uint64_t sink_left = 0;
  std::string pending;  // echo bytes not yet written
};

int run_serve(const options& o) {
  int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  int one = 1;
  ::setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<std::uint16_t>(o.port));
  ::inet_pton(AF_INET, o.host.c_str(), &sa.sin_addr);
  if (::bind(lfd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
    die(std::string("bind: ") + std::strerror(errno));
  if (::listen(lfd, 4096) != 0) die(std::string("listen: ") + std::strerror(errno));
  socklen_t len = sizeof sa;
  ::getsockname(lfd, reinterpret_cast<sockaddr*>(&sa), &len);
  std::printf("LISTENING %d\n", ntohs(sa.sin_port));
  std::fflush(stdout);

  int ep = ::epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = lfd;
  ::epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  std::unordered_map<int, backend_conn> conns;
  std::vector<char> buf(256 * 1024);
  std::vector<epoll_event> events(256);
  auto drop = [&](int fd) {
    ::epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
    ::close(fd);
    conns.erase(fd);
  };
  auto want = [&](int fd, std::uint32_t what) {
    epoll_event e{};
    e.events = what;
    e.data.fd = fd;
    ::epoll_ctl(ep, EPOLL_CTL_MOD, fd, &e);
  };
  // Writes c.pending; false when the connection is gone.
  auto flush = [&](int fd, backend_conn& c) {
    while (!c.pending.empty()) {
      ssize_t w = ::send(fd, c.pending.data(), c.pending.size(), MSG_NOSIGNAL);
      if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        want(fd, EPOLLOUT);
        return true;
      }
      if (w <= 0) return false;
      c.pending.erase(0, static_cast<std::size_t>(w));
    }
    want(fd, EPOLLIN);
    return true;
  };
  for (;;) {
    int n = ::epoll_wait(ep, events.data(), static_cast<int>(events.size()), -1);
    if (n < 0 && errno == EINTR) continue;
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == lfd) {
        for (;;) {
          int c = ::accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (c < 0) break;
          ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          epoll_event e{};
          e.events = EPOLLIN;
          e.data.fd = c;
          ::epoll_ctl(ep, EPOLL_CTL_ADD, c, &e);
          conns[c];
        }
        continue;
      }
      auto it = conns.find(fd);
      if (it == conns.end()) continue;
      backend_conn& c = it->second;
      if (events[i].events & EPOLLOUT) {
        if (!flush(fd, c)) drop(fd);
        continue;
      }
      ssize_t r = ::recv(fd, buf.data(), buf.size(), 0);
      if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) continue;
      if (r <= 0) {
        drop(fd);
        continue;
      }
      std::string_view data(buf.data(), static_cast<std::size_t>(r));
      if (!c.decided) {
        c.head.append(data);
        if (c.head.size() < 4 && std::string_view("SINK").starts_with(c.head)) continue;
        if (c.head.starts_with("SINK")) {
          if (c.head.size() < 12) continue;
          c.sink = true;
          std::uint64_t total = 0;
          for (int k = 4; k < 12; ++k) total = (total << 8) | static_cast<unsigned char>(c.head[k]);
          c.sink_left = total;
          data = std::string_view(c.head).substr(12);
        } else {
          data = c.head;
        }
        c.decided = true;
      }
      if (c.sink) {
        std::uint64_t take = std::min<std::uint64_t>(c.sink_left, data.size());
        c.sink_left -= take;
        if (c.sink_left == 0 && take > 0) {
          c.pending = "K";
          if (!flush(fd, c)) drop(fd);
        }
      } else {
        c.pending.append(data);
        if (!flush(fd, c)) drop(fd);
      }
      if (conns.count(fd) && c.decided && !c.head.empty()) c.head.clear();
    }
  }
}

// With --count, each worker claims one attempt before it starts it, so exactly `count` are made.
bool claim(const options& o, std::atomic<std::uint64_t>& claimed) {
  return o.count == 0 || claimed.fetch_add(1) < o.count;
}

// Waits --seconds, or with --count until every claimed attempt has ended (bounded by --seconds).
void wait_for_end(const options& o, const std::atomic<std::uint64_t>& done,
                  const std::atomic<std::uint64_t>& failed) {
  const auto until = clock_type::now() + std::chrono::duration<double>(o.seconds);
  while (clock_type::now() < until) {
    if (o.count != 0 && done.load() + failed.load() >= o.count) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(o.count != 0 ? 2 : 50));
  }
}

// ---------------------------------------------------------------------------------------------
// handshakes: N workers, full TLS 1.3 handshake per connection, then close.

int run_handshakes(const options& o) {
  SSL_CTX* ctx = client_ctx(TLS1_3_VERSION);
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> done{0}, failed{0}, claimed{0};
  std::vector<std::thread> threads;
  auto start = clock_type::now();
  for (int w = 0; w < o.workers; ++w) {
    threads.emplace_back([&] {
      char msg[32] = "PING-handshake-bench-0123456789";
      char back[sizeof msg];
      while (!stop.load(std::memory_order_relaxed) && claim(o, claimed)) {
        conn c;
        c.fd = tcp_connect(o);
        if (c.fd < 0) {
          ++failed;
          std::this_thread::sleep_for(std::chrono::milliseconds(10));
          continue;
        }
        bool ok = c.tls(ctx);
        if (ok && o.request) ok = c.write_all(msg, sizeof msg) && c.read_exact(back, sizeof back);
        if (!ok) {
          if (failed.fetch_add(1) < 3) print_ssl_errors("handshake");
          ERR_clear_error();
        } else {
          ++done;
        }
        c.close();
      }
    });
  }
  wait_for_end(o, done, failed);
  stop = true;
  for (auto& t : threads) t.join();
  double secs = std::chrono::duration<double>(clock_type::now() - start).count();
  std::printf("RESULT handshakes=%llu failed=%llu seconds=%.3f rate=%.1f\n",
              static_cast<unsigned long long>(done.load()),
              static_cast<unsigned long long>(failed.load()), secs, done.load() / secs);
  return 0;
}

// ---------------------------------------------------------------------------------------------
// idle: K established TLS connections, one round trip each, then held idle.

int run_idle(const options& o) {
  SSL_CTX* ctx = client_ctx(TLS1_3_VERSION);
  std::vector<conn> all(static_cast<std::size_t>(o.conns));
  std::atomic<int> next{0}, failed{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < o.workers; ++w) {
    threads.emplace_back([&] {
      // --size: the round trip before idling; a large one makes the proxy touch its whole TLS
      // read buffer, which then shows in RSS if the buffer is kept while idle.
      std::string msg(o.size, 'i'), back(o.size, 0);
      for (int i; (i = next++) < o.conns;) {
        conn& c = all[static_cast<std::size_t>(i)];
        c.fd = tcp_connect(o);
        // --send: a request the backend holds (an ActiveSync Ping): written, not answered.
        bool ok = c.fd >= 0 && c.tls(ctx) &&
                  (o.send.empty() ? c.write_all(msg.data(), msg.size()) &&
                                        c.read_exact(back.data(), back.size())
                                  : c.write_all(o.send.data(), o.send.size()));
        if (!ok) {
          if (failed.fetch_add(1) < 3) print_ssl_errors("idle connection");
          c.close();
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  std::printf("READY established=%d failed=%d\n", o.conns - failed.load(), failed.load());
  std::fflush(stdout);
  // Hold until stdin closes (bench/run closes it after reading the proxy's RSS) or time is up.
  pollfd p{0, POLLIN, 0};
  auto until = clock_type::now() + std::chrono::duration<double>(o.hold_seconds);
  while (clock_type::now() < until) {
    int r = ::poll(&p, 1, 200);
    if (r > 0) {
      char b[64];
      if (::read(0, b, sizeof b) <= 0) break;
    }
  }
  // Verify the connections are still alive: a few round trips (held requests: still open).
  int alive = 0;
  for (std::size_t i = 0; !o.send.empty() && i < all.size(); ++i) {
    // Still established from both sides (the proxy has not closed it): TCP_ESTABLISHED, not
    // CLOSE_WAIT. (The socket may be readable: the proxy's TLS 1.3 tickets were never read.)
    tcp_info info{};
    socklen_t len = sizeof info;
    if (all[i].fd >= 0 && ::getsockopt(all[i].fd, IPPROTO_TCP, TCP_INFO, &info, &len) == 0 &&
        info.tcpi_state == TCP_ESTABLISHED)
      ++alive;
  }
  for (std::size_t i = 0; o.send.empty() && i < all.size();
       i += std::max<std::size_t>(1, all.size() / 20)) {
    char msg[16] = "PING-after-idle", back[16];
    if (all[i].fd >= 0 && all[i].write_all(msg, sizeof msg) && all[i].read_exact(back, sizeof back))
      ++alive;
  }
  for (auto& c : all) c.close();
  std::printf("RESULT established=%d failed=%d alive_sampled=%d\n", o.conns - failed.load(),
              failed.load(), alive);
  return 0;
}

// ---------------------------------------------------------------------------------------------
// bulk: C connections each push B bytes to the sink and wait for its one-byte receipt.

int run_bulk(const options& o) {
  SSL_CTX* ctx = client_ctx(TLS1_3_VERSION);
  std::vector<std::thread> threads;
  std::mutex mu;
  clock_type::time_point first_start = clock_type::time_point::max(), last_end{};
  std::atomic<int> failed{0};
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::string cipher;
  for (int w = 0; w < o.conns; ++w) {
    threads.emplace_back([&] {
      conn c;
      c.fd = tcp_connect(o);
      if (c.fd < 0 || !c.tls(ctx)) {
        print_ssl_errors("bulk connect");
        ++failed;
        ++ready;
        return;
      }
      {
        std::lock_guard lock(mu);
        cipher = SSL_get_cipher_name(c.ssl);
      }
      ++ready;
      while (!go) std::this_thread::yield();
      auto t0 = clock_type::now();
      char head[12] = {'S', 'I', 'N', 'K'};
      for (int k = 0; k < 8; ++k)
        head[4 + k] = static_cast<char>((o.bytes >> (8 * (7 - k))) & 0xff);
      std::vector<char> chunk(16384, 'x');
      bool ok = c.write_all(head, sizeof head);
      for (std::uint64_t left = o.bytes; ok && left > 0;) {
        std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(left, chunk.size()));
        ok = c.write_all(chunk.data(), n);
        left -= n;
      }
      char k = 0;
      ok = ok && c.read_exact(&k, 1) && k == 'K';
      auto t1 = clock_type::now();
      if (!ok) {
        print_ssl_errors("bulk transfer");
        ++failed;
      }
      c.close();
      std::lock_guard lock(mu);
      first_start = std::min(first_start, t0);
      last_end = std::max(last_end, t1);
    });
  }
  while (ready < o.conns) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  go = true;
  for (auto& t : threads) t.join();
  double secs = std::chrono::duration<double>(last_end - first_start).count();
  double total = static_cast<double>(o.bytes) * (o.conns - failed.load());
  std::printf("CIPHER %s\n", cipher.c_str());
  std::printf("RESULT conns=%d failed=%d bytes=%.0f seconds=%.3f mbps=%.1f\n", o.conns,
              failed.load(), total, secs, total / 1e6 / secs);
  return failed.load() ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------
// latency: one kept-alive connection, request/response ping-pong.

int run_latency(const options& o) {
  conn c;
  c.fd = tcp_connect(o);
  if (c.fd < 0) die("latency: connect failed");
  if (!o.plain) {
    SSL_CTX* ctx = client_ctx(TLS1_3_VERSION);
    if (!c.tls(ctx)) {
      print_ssl_errors("latency handshake");
      return 1;
    }
  }
  std::string msg(o.size, 'p');
  std::string back(o.size, 0);
  std::vector<double> us;
  us.reserve(1 << 20);
  for (int i = 0; i < 2000; ++i)  // warm-up: caches, the proxy's lazily made buffers
    if (!c.write_all(msg.data(), msg.size()) || !c.read_exact(back.data(), back.size()))
      die("latency: warm-up failed");
  auto end = clock_type::now() + std::chrono::duration<double>(o.seconds);
  while (clock_type::now() < end) {
    auto t0 = clock_type::now();
    if (!c.write_all(msg.data(), msg.size()) || !c.read_exact(back.data(), back.size()))
      die("latency: round trip failed");
    us.push_back(std::chrono::duration<double, std::micro>(clock_type::now() - t0).count());
  }
  c.close();
  std::sort(us.begin(), us.end());
  auto pct = [&](double p) { return us[static_cast<std::size_t>(p * (us.size() - 1))]; };
  std::printf("RESULT samples=%zu p50_us=%.1f p99_us=%.1f\n", us.size(), pct(0.50), pct(0.99));
  return 0;
}

// ---------------------------------------------------------------------------------------------
// smtp: one transaction through STARTTLS per connection.

struct smtp_reader {
  conn& c;
  std::string buf;
  // Reads one (possibly multi-line) reply; returns its code, 0 on EOF or junk.
  int reply() {
    for (;;) {
      std::size_t eol;
      while ((eol = buf.find("\r\n")) != std::string::npos) {
        std::string line = buf.substr(0, eol);
        buf.erase(0, eol + 2);
        if (line.size() < 3) return 0;
        if (line.size() == 3 || line[3] == ' ') return std::atoi(line.substr(0, 3).c_str());
      }
      char tmp[4096];
      std::size_t n = c.read_some(tmp, sizeof tmp);
      if (n == 0) return 0;
      buf.append(tmp, n);
    }
  }
};

bool smtp_transaction(const options& o, SSL_CTX* ctx, std::string& why) {
  conn c;
  c.fd = tcp_connect(o);
  if (c.fd < 0) {
    why = "connect";
    return false;
  }
  smtp_reader r{c, {}};
  auto step = [&](const char* line, int want) {
    if (line && !c.write_all(line, std::strlen(line))) {
      why = std::string("write ") + line;
      return false;
    }
    int code = r.reply();
    if (code != want) {
      why = std::string("after ") + (line ? line : "connect") + " got " + std::to_string(code);
      return false;
    }
    return true;
  };
  bool ok = step(nullptr, 220) && step("EHLO loadgen.test\r\n", 250) && step("STARTTLS\r\n", 220);
  if (ok) {
    r.buf.clear();  // RFC 3207 §4.2: nothing buffered survives the upgrade
    ok = c.tls(ctx);
    if (!ok) why = "TLS handshake";
  }
  ok = ok && step("EHLO loadgen.test\r\n", 250) &&
       step("MAIL FROM:<bench@loadgen.test>\r\n", 250) &&
       step("RCPT TO:<sink@example.test>\r\n", 250) && step("DATA\r\n", 354) &&
       step(
           "From: bench@loadgen.test\r\nTo: sink@example.test\r\nSubject: bench\r\n\r\n"
           "A small benchmark message.\r\n.\r\n",
           250) &&
       step("QUIT\r\n", 221);
  c.close();
  return ok;
}

int run_smtp(const options& o) {
  SSL_CTX* ctx = client_ctx(TLS1_2_VERSION);
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> done{0}, failed{0}, claimed{0};
  std::vector<std::thread> threads;
  auto start = clock_type::now();
  for (int w = 0; w < o.workers; ++w) {
    threads.emplace_back([&] {
      while (!stop.load(std::memory_order_relaxed) && claim(o, claimed)) {
        std::string why;
        if (smtp_transaction(o, ctx, why)) {
          ++done;
        } else {
          if (failed.fetch_add(1) < 3) {
            std::fprintf(stderr, "loadgen: smtp transaction failed: %s\n", why.c_str());
            print_ssl_errors("smtp");
          }
          ERR_clear_error();
          std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
      }
    });
  }
  wait_for_end(o, done, failed);
  stop = true;
  for (auto& t : threads) t.join();
  double secs = std::chrono::duration<double>(clock_type::now() - start).count();
  std::printf("RESULT transactions=%llu failed=%llu seconds=%.3f rate=%.1f\n",
              static_cast<unsigned long long>(done.load()),
              static_cast<unsigned long long>(failed.load()), secs, done.load() / secs);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  options o = parse(argc, argv);
  g_ciphersuites = o.ciphersuites;
  if (o.mode == "serve") return run_serve(o);
  if (o.port <= 0) die("--port is required");
  if (o.mode == "handshakes") return run_handshakes(o);
  if (o.mode == "idle") return run_idle(o);
  if (o.mode == "bulk") return run_bulk(o);
  if (o.mode == "latency") return run_latency(o);
  if (o.mode == "smtp") return run_smtp(o);
  die("unknown mode " + o.mode);
}
