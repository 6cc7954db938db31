// The unit tests' certificates: tests/certs/make_test_certs.sh run once per test binary into a
// temporary directory (removed at exit), plus small helpers shared by the certs tests. Under
// ctest every test case is its own process, so ctest generates the PKI once (a fixture) and
// passes its directory in TLSBRIDGE_TEST_PKI; that directory is used as is and left alone.
#pragma once

#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>

#include "config/config.hpp"

namespace tlsbridge::test {

class test_pki {
 public:
  static const test_pki& get() {
    static const test_pki pki;
    return pki;
  }
  std::filesystem::path file(const std::string& name) const { return dir_ / name; }
  config::cert_entry entry(const std::string& base) const {
    return {dir_ / (base + ".chain.pem"), dir_ / (base + ".key"), {}, {}};
  }

 private:
  test_pki() {
    if (const char* shared = std::getenv("TLSBRIDGE_TEST_PKI");
        shared && std::filesystem::exists(std::filesystem::path(shared) / "ca.crt")) {
      dir_ = shared;
      owned_ = false;
      return;
    }
    std::string pattern = (std::filesystem::temp_directory_path() / "tlsbridge-unit-certs.XXXXXX");
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = pattern;
    const std::string cmd = std::string("bash '") + TLSBRIDGE_SOURCE_DIR +
                            "/tests/certs/make_test_certs.sh' '" + dir_.string() + "' >/dev/null";
    if (std::system(cmd.c_str()) != 0) throw std::runtime_error("make_test_certs.sh failed");
  }
  ~test_pki() {
    if (!owned_) return;
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  std::filesystem::path dir_;
  bool owned_ = true;
};

struct x509_deleter {
  void operator()(X509* x) const { X509_free(x); }
};
using x509_ptr = std::unique_ptr<X509, x509_deleter>;

struct x509_stack_deleter {
  void operator()(STACK_OF(X509) * s) const { sk_X509_pop_free(s, X509_free); }
};
using x509_stack_ptr = std::unique_ptr<STACK_OF(X509), x509_stack_deleter>;

inline x509_ptr load_cert(const std::string& name) {
  const auto path = test_pki::get().file(name).string();
  BIO* bio = BIO_new_file(path.c_str(), "r");
  if (bio == nullptr) throw std::runtime_error("cannot open " + path);
  X509* x = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (x == nullptr) throw std::runtime_error("cannot parse " + path);
  return x509_ptr(x);
}

inline x509_stack_ptr make_stack(std::initializer_list<const char*> names) {
  x509_stack_ptr stack(sk_X509_new_null());
  for (const char* n : names) sk_X509_push(stack.get(), load_cert(n).release());
  return stack;
}

inline config::tls_profile modern_profile() {
  return {"modern",
          config::tls1_2,
          config::tls1_3,
          "ECDHE+AESGCM:ECDHE+CHACHA20",
          "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256",
          "X25519:P-256:P-384"};
}

inline config::tls_profile legacy_profile() {
  return {"legacy", config::tls1_0, config::tls1_2, "DEFAULT:@SECLEVEL=0", "", ""};
}

}  // namespace tlsbridge::test
