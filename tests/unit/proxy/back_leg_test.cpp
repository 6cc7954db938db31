// proxy::back_leg against in-process loopback backends on 127.0.0.1 (real sockets, no fake
// stream): failover past a refusing address, a chain refused on a verify = "ca" leg, a pin that
// matches and one that does not, and a backend that accepts and never speaks. TLS backends are a
// thread with a blocking socket and an OpenSSL server context from the test PKI.
#include "proxy/back_leg.hpp"

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <csignal>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <catch2/catch.hpp>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "../certs/test_pki.hpp"
#include "certs/tls_context.hpp"

namespace asio = boost::asio;
using namespace tlsbridge;
using proxy::back_leg;
using proxy::back_leg_failure;

namespace {

config::tls_profile profile(const char* name) {
  config::tls_profile p;
  p.name = name;
  return p;
}

// A root config with one listener whose backend is `addresses`; the caller adjusts the rest.
struct fixture {
  std::shared_ptr<config::config> root = std::make_shared<config::config>();
  config::listener_config* l = nullptr;

  fixture() {
    std::signal(SIGPIPE, SIG_IGN);  // as the proxy does: a peer gone mid-write is an error code
    root->tls_profiles["legacy"] = profile("legacy");
    root->tls_profiles["modern"] = profile("modern");
    root->listeners.emplace_back();
    l = &root->listeners.back();
    l->name = "leg";
    l->protocol = config::protocol::tls;
    l->tls = config::front_tls::none;
    l->backend.tls = config::back_tls::none;
    l->timeouts.connect = std::chrono::milliseconds(2000);
    l->timeouts.handshake = std::chrono::milliseconds(2000);
  }

  // Opens a back leg on a fresh io_context; the leg is handed to `check` while it is alive.
  template <typename Check>
  void open(Check check) {
    auto rt = proxy::make_listener_runtime(root, *l, nullptr);
    asio::io_context io;
    back_leg leg(rt, {});
    std::optional<back_leg_failure> result;
    bool done = false;
    asio::co_spawn(io, leg.open(), [&](std::exception_ptr e, std::optional<back_leg_failure> r) {
      if (e) std::rethrow_exception(e);
      result = std::move(r);
      done = true;
    });
    io.run();
    REQUIRE(done);
    check(leg, result);
  }
};

std::uint16_t closed_port() {
  asio::io_context io;
  asio::ip::tcp::acceptor a(io, {asio::ip::make_address("127.0.0.1"), 0});
  return a.local_endpoint().port();  // closed when `a` goes: connecting there is refused
}

// Listens on 127.0.0.1 and never accepts: the kernel completes the connection, nobody speaks.
struct silent_backend {
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor{io, {asio::ip::make_address("127.0.0.1"), 0}};
  std::uint16_t port() const { return acceptor.local_endpoint().port(); }
};

// Accepts one connection and runs a TLS server handshake on it with `base` (NAME.chain.pem and
// NAME.key of the test PKI), then waits until the client goes.
class tls_backend {
 public:
  explicit tls_backend(const std::string& base) {
    const auto& pki = test::test_pki::get();
    ctx_ = certs::make_server_context(profile("modern"), pki.entry(base));
    thread_ = std::thread([this] {
      asio::ip::tcp::socket s(io_);
      boost::system::error_code ec;
      acceptor_.accept(s, ec);
      if (ec) return;
      SSL* ssl = SSL_new(ctx_.get());
      SSL_set_fd(ssl, s.native_handle());
      if (SSL_accept(ssl) == 1) {
        char byte;
        while (SSL_read(ssl, &byte, 1) > 0) {
        }
      }
      SSL_free(ssl);
    });
  }
  ~tls_backend() {
    boost::system::error_code ec;
    {
      // Should the leg never have connected, this one ends the thread's wait in accept.
      asio::ip::tcp::socket poke(io_);
      poke.connect(acceptor_.local_endpoint(), ec);
    }
    if (thread_.joinable()) thread_.join();
    acceptor_.close(ec);
  }
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }

 private:
  asio::io_context io_;
  asio::ip::tcp::acceptor acceptor_{io_, {asio::ip::make_address("127.0.0.1"), 0}};
  certs::ssl_ctx_ptr ctx_;
  std::thread thread_;
};

std::string sha256_of(const std::string& pem_file) {
  auto cert = test::load_cert(pem_file);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  X509_digest(cert.get(), EVP_sha256(), md, &len);
  std::string hex;
  char two[3];
  for (unsigned i = 0; i < len; ++i) {
    std::snprintf(two, sizeof two, "%02x", md[i]);
    hex += two;
  }
  return hex;
}

bool has_finding(const back_leg& leg, const std::string& kind) {
  const auto& d = leg.facts().decision;
  return d && std::any_of(d->findings.begin(), d->findings.end(),
                          [&](const policy::finding& f) { return f.kind == kind; });
}

// An implicit-TLS verify = "ca" leg to `backend`, trusting ca.crt.
void verify_against_ca_crt(fixture& f, const tls_backend& backend) {
  f.l->backend.addresses = {{"127.0.0.1", backend.port()}};
  f.l->backend.tls = config::back_tls::implicit;
  f.l->backend.verify = config::verify_mode::ca;
  f.l->backend.ca_file = test::test_pki::get().file("ca.crt");
}

}  // namespace

TEST_CASE("back_leg: the first address refuses, the second is reached", "[back_leg]") {
  fixture f;
  silent_backend up;  // a TLS relay's opener has nothing to say: connecting is the whole setup
  f.l->backend.addresses = {{"127.0.0.1", closed_port()}, {"127.0.0.1", up.port()}};
  f.open([&](back_leg& leg, const std::optional<back_leg_failure>& failed) {
    REQUIRE_FALSE(failed);
    REQUIRE(leg.stream() != nullptr);
    CHECK(leg.facts().address == "127.0.0.1:" + std::to_string(up.port()));
    CHECK(leg.facts().local.rfind("127.0.0.1:", 0) == 0);
    CHECK(leg.facts().host == "127.0.0.1");
    CHECK(leg.facts().connect_latency.count() > 0);
    CHECK_FALSE(leg.facts().chain);
  });
}

TEST_CASE("back_leg: no address reachable is backend_unavailable", "[back_leg]") {
  fixture f;
  const auto port = closed_port();
  f.l->backend.addresses = {{"127.0.0.1", port}};
  f.open([&](back_leg& leg, const std::optional<back_leg_failure>& failed) {
    REQUIRE(failed);
    CHECK(failed->what == proxy::outcome::backend_unavailable);
    CHECK(failed->reason.rfind("no backend reachable: 127.0.0.1:" + std::to_string(port), 0) == 0);
    CHECK(leg.stream() == nullptr);
  });
}

TEST_CASE("back_leg: a backend that accepts and never speaks hits the opener's timeout",
          "[back_leg]") {
  fixture f;
  silent_backend mute;
  f.l->protocol = config::protocol::smtp;  // its opener waits for the 220 greeting
  f.l->backend.addresses = {{"127.0.0.1", mute.port()}};
  f.l->timeouts.handshake = std::chrono::milliseconds(200);
  f.open([&](back_leg& leg, const std::optional<back_leg_failure>& failed) {
    REQUIRE(failed);
    CHECK(failed->what == proxy::outcome::backend_unavailable);
    CHECK(failed->reason == "backend timed out during setup");
    CHECK(leg.stream() != nullptr);  // connected: the record shows the address
  });
}

TEST_CASE("back_leg: a verify = \"ca\" leg refuses a chain its CA did not issue", "[back_leg]") {
  fixture f;
  tls_backend impostor("client-other");  // issued by otherca, not by ca.crt
  verify_against_ca_crt(f, impostor);
  f.root->policy.on_untrusted = config::policy_action::refuse;
  f.open([&](back_leg& leg, const std::optional<back_leg_failure>& failed) {
    REQUIRE(failed);
    CHECK(failed->what == proxy::outcome::refused_policy);
    CHECK(failed->reason.rfind("backend chain refused by policy: untrusted", 0) == 0);
    REQUIRE(leg.facts().decision);
    CHECK(leg.facts().decision->result == policy::verdict::refused);
    CHECK(has_finding(leg, "untrusted"));
  });
}

TEST_CASE("back_leg: verify = \"ca\" refuses untrusted despite [policy]'s log default",
          "[back_leg][trust]") {
  fixture f;
  tls_backend impostor("client-other");  // issued by otherca, not by ca.crt
  verify_against_ca_crt(f, impostor);
  REQUIRE(f.root->policy.on_untrusted == config::policy_action::log);

  SECTION("no rule: refused, decided by default") {
    f.open([&](back_leg& leg, const std::optional<back_leg_failure>& failed) {
      REQUIRE(failed);
      CHECK(failed->what == proxy::outcome::refused_policy);
      REQUIRE(leg.facts().decision);
      CHECK_FALSE(leg.facts().decision->rule);
    });
  }
  SECTION("a rule naming the backend's address lets it through, and is the deciding rule") {
    config::policy_rule elsewhere;
    elsewhere.peer = "10.0.0.0/8";
    elsewhere.actions.on_untrusted = config::policy_action::log;
    config::policy_rule by_ip;
    by_ip.peer = "127.0.0.1";  // the fixture's client is ::, so only the backend matches
    by_ip.actions.on_untrusted = config::policy_action::log;
    f.root->policy.rules = {elsewhere, by_ip};
    f.open([&](back_leg& leg, const std::optional<back_leg_failure>& failed) {
      REQUIRE_FALSE(failed);
      REQUIRE(leg.facts().decision);
      CHECK(leg.facts().decision->result == policy::verdict::logged);
      CHECK(leg.facts().decision->rule == std::optional<std::size_t>{1});
      CHECK(has_finding(leg, "untrusted"));
    });
  }
}

TEST_CASE("back_leg: the pin of a verify = \"pin\" leg", "[back_leg]") {
  fixture f;
  tls_backend server("server");
  f.l->backend.addresses = {{"127.0.0.1", server.port()}};
  f.l->backend.tls = config::back_tls::implicit;
  f.l->backend.verify = config::verify_mode::pin;

  SECTION("a leaf that matches no pin is refused by policy, finding pin_mismatch") {
    f.l->backend.pin_sha256 = {std::string(64, '0')};
    f.open([&](back_leg& leg, const std::optional<back_leg_failure>& failed) {
      REQUIRE(failed);
      CHECK(failed->what == proxy::outcome::refused_policy);
      CHECK(failed->reason.find("matches no pin_sha256") != std::string::npos);
      CHECK(has_finding(leg, "pin_mismatch"));
    });
  }
  SECTION("a leaf that matches a pin is up") {
    f.l->backend.pin_sha256 = {std::string(64, '0'), sha256_of("server.crt")};
    f.open([&](back_leg& leg, const std::optional<back_leg_failure>& failed) {
      REQUIRE_FALSE(failed);
      REQUIRE(leg.stream() != nullptr);
      CHECK(leg.stream()->tls_active());
      CHECK_FALSE(leg.facts().resumed);
      REQUIRE(leg.facts().decision);
      CHECK(leg.facts().decision->result != policy::verdict::refused);
      CHECK_FALSE(has_finding(leg, "pin_mismatch"));
    });
  }
}
