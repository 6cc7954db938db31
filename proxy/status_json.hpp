// GET /status.json on the admin endpoint, and the data the status page (GET /, proxy/status_page)
// draws: listeners, backends and their health, active sessions per protocol, the last 50
// refusals, own certificates with the days left, TLS versions of the last hour per leg. Every
// field is documented in docs/status-json.md. Built on the main thread (where the admin endpoint,
// reloads and the runtimes live) from figures read without a lock the data path takes
// (proxy/status_board.hpp).
#pragma once

#include <boost/json/object.hpp>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "proxy/acme_service.hpp"
#include "proxy/build_info.hpp"
#include "proxy/listener.hpp"
#include "proxy/own_certificates.hpp"
#include "proxy/status_board.hpp"

namespace tlsbridge::proxy {

struct status_sources {
  const std::map<std::string, std::shared_ptr<listener_runtime>>* listeners = nullptr;
  const status_board* board = nullptr;
  const std::vector<own_certificate>* certificates = nullptr;
  build_identity build;
  std::int64_t started = 0;  // Unix time the process started
  bool draining = false;
  const std::vector<acme_entry_status>* acme = nullptr;  // null: no acme entries
};

boost::json::object status_json(const status_sources& s, std::chrono::system_clock::time_point now);

// The protocol's name as the config writes it ("smtp").
const char* protocol_name(config::protocol p);

// "2026-12-02T07:40:01Z" (RFC 3339, UTC, whole seconds).
std::string rfc3339(std::int64_t unix_seconds);

}  // namespace tlsbridge::proxy
