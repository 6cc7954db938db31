// A test-only driver of acme::obtain() for tests/integration/test_acme_client.py: runs one order
// against a real ACME server (pebble) and answers the tls-alpn-01 challenges itself, with a tiny
// OpenSSL server on 127.0.0.1:<tls-port> that serves the certificate obtain() publishes to a
// ClientHello offering "acme-tls/1" for its name. Writes result.json (and on success key.pem and
// chain.pem) into --out; exits 0 when a certificate was obtained.
//
//   acme_obtain_check --directory URL --ca-file PEM --tls-port N --out DIR --name NAME...
//                     [--unserved NAME] [--email ADDR] [--timeout SECONDS]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/json.hpp>
#include <csignal>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "acme/obtain.hpp"

namespace {

using namespace tlsbridge;

// The challenges obtain() published, by name; served to acme-tls/1 handshakes.
class test_responder : public acme::challenge_responder {
 public:
  explicit test_responder(std::set<std::string> unserved) : unserved_(std::move(unserved)) {}
  void publish(const acme::alpn_challenge& challenge) override {
    std::cerr << "publish " << challenge.name << "\n";
    if (unserved_.count(challenge.name)) return;
    std::lock_guard lock(mutex_);
    published_[challenge.name] = challenge;
  }
  void withdraw(const std::string& name) override {
    std::cerr << "withdraw " << name << "\n";
    std::lock_guard lock(mutex_);
    published_.erase(name);
    withdrawn_.insert(name);
  }
  std::optional<acme::alpn_challenge> find(const std::string& name) {
    std::lock_guard lock(mutex_);
    auto it = published_.find(name);
    if (it == published_.end()) return std::nullopt;
    return it->second;
  }
  size_t still_published() {
    std::lock_guard lock(mutex_);
    return published_.size();
  }

 private:
  std::set<std::string> unserved_;
  std::mutex mutex_;
  std::map<std::string, acme::alpn_challenge> published_;
  std::set<std::string> withdrawn_;
};

int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned int inlen, void*) {
  static const unsigned char acme_tls[] = {10, 'a', 'c', 'm', 'e', '-', 't', 'l', 's', '/', '1'};
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, outlen, acme_tls, sizeof acme_tls, in, inlen) !=
      OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

// SNI → the published certificate and key, or the handshake fails.
int select_cert(SSL* ssl, int* alert, void* arg) {
  auto* responder = static_cast<test_responder*>(arg);
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  auto challenge = name ? responder->find(name) : std::nullopt;
  if (!challenge) {
    *alert = SSL_AD_UNRECOGNIZED_NAME;
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  BIO* cert_bio = BIO_new_mem_buf(challenge->cert_pem.data(), -1);
  BIO* key_bio = BIO_new_mem_buf(challenge->key_pem.data(), -1);
  X509* cert = PEM_read_bio_X509(cert_bio, nullptr, nullptr, nullptr);
  EVP_PKEY* key = PEM_read_bio_PrivateKey(key_bio, nullptr, nullptr, nullptr);
  const bool ok =
      cert && key && SSL_use_certificate(ssl, cert) == 1 && SSL_use_PrivateKey(ssl, key) == 1;
  X509_free(cert);
  EVP_PKEY_free(key);
  BIO_free(cert_bio);
  BIO_free(key_bio);
  std::cerr << "challenge handshake for " << name << (ok ? "" : " (no certificate)") << "\n";
  return ok ? SSL_TLSEXT_ERR_OK : SSL_TLSEXT_ERR_ALERT_FATAL;
}

void handshake(int fd, SSL_CTX* ctx) {
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  SSL* ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  if (SSL_accept(ssl) == 1) SSL_shutdown(ssl);
  ERR_clear_error();
  SSL_free(ssl);
  ::close(fd);
}

// Serves handshakes until `stop`, each on a thread of its own (the CA validates from several
// perspectives at once), at most 256 in all.
void serve(int listener, SSL_CTX* ctx, std::atomic<bool>& stop) {
  std::vector<std::thread> threads;
  while (!stop && threads.size() < 256) {
    pollfd p{listener, POLLIN, 0};
    if (::poll(&p, 1, 100) != 1) continue;
    const int fd = ::accept(listener, nullptr, nullptr);
    if (fd >= 0) threads.emplace_back(handshake, fd, ctx);
  }
  for (auto& thread : threads) thread.join();
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);  // a validator that hangs up must not end the test
  acme::order_request request;
  std::string out_dir;
  std::set<std::string> unserved;
  int tls_port = 0;
  request.timeout = std::chrono::seconds(120);
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const std::string value = argv[i + 1];
    if (flag == "--directory")
      request.directory_url = value;
    else if (flag == "--ca-file")
      request.ca_file = value;
    else if (flag == "--email")
      request.email = value;
    else if (flag == "--name")
      request.names.push_back(value);
    else if (flag == "--unserved")
      unserved.insert(value);
    else if (flag == "--tls-port")
      tls_port = std::stoi(value);
    else if (flag == "--out")
      out_dir = value;
    else if (flag == "--timeout")
      request.timeout = std::chrono::seconds(std::stoi(value));
    else {
      std::cerr << "unknown option " << flag << "\n";
      return 2;
    }
  }
  if (out_dir.empty() || tls_port <= 0 || request.names.empty()) {
    std::cerr << "usage: see the header of tests/acme_obtain_check.cpp\n";
    return 2;
  }

  request.account_key_pem = acme::generate_account_key_pem();  // a new account every run
  test_responder responder(unserved);
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_alpn_select_cb(ctx, select_alpn, nullptr);
  SSL_CTX_set_tlsext_servername_callback(ctx, select_cert);
  SSL_CTX_set_tlsext_servername_arg(ctx, &responder);

  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(tls_port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listener, 16) != 0) {
    std::cerr << "cannot listen on 127.0.0.1:" << tls_port << ": " << std::strerror(errno) << "\n";
    return 2;
  }
  std::atomic<bool> stop{false};
  std::thread server(serve, listener, ctx, std::ref(stop));

  std::stop_source stop_source;
  const acme::order_result result = acme::obtain(request, responder, stop_source.get_token());
  stop = true;
  server.join();
  ::close(listener);
  SSL_CTX_free(ctx);

  boost::json::object report{{"ok", result.ok},
                             {"step", result.step},
                             {"error", result.error},
                             {"still_published", responder.still_published()}};
  boost::json::array failed;
  for (const auto& name : result.failed_names) failed.emplace_back(name);
  report["failed_names"] = std::move(failed);
  std::ofstream(out_dir + "/result.json") << boost::json::serialize(report) << "\n";
  if (result.ok) {
    std::ofstream(out_dir + "/key.pem") << result.key_pem;
    std::ofstream(out_dir + "/chain.pem") << result.chain_pem;
  }
  std::cout << boost::json::serialize(report) << "\n";
  return result.ok ? 0 : 1;
}
