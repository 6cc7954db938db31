// A small blocking HTTPS/1.1 client for the ACME server only: one TLS connection per request
// (Connection: close), SNI and hostname (or IP address) verification against `ca_file` or the
// system store, connect and read timeouts, a body cap. Not for the data path.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "acme/order_machine.hpp"

namespace tlsbridge::acme {

struct https_settings {
  std::string ca_file;  // "" = the system store
  std::chrono::milliseconds connect_timeout{10000};
  std::chrono::milliseconds io_timeout{30000};  // the whole exchange after the connect
  size_t max_body = 1024 * 1024;
};

class https_client {
 public:
  explicit https_client(https_settings settings);
  ~https_client();
  https_client(const https_client&) = delete;
  https_client& operator=(const https_client&) = delete;

  // False (and `error`) when the CA file cannot be loaded.
  bool ready(std::string& error) const;
  // True with `response`, or false with `error` (no response: DNS, connect, TLS, timeout, size).
  // `budget` bounds the connect and the exchange, below the settings' timeouts.
  bool fetch(const http_request& request, http_response& response, std::string& error,
             std::chrono::milliseconds budget = std::chrono::milliseconds::max());

 private:
  struct context;
  https_settings settings_;
  std::unique_ptr<context> ctx_;
};

}  // namespace tlsbridge::acme
