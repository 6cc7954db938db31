// What the proxy writes when a connection ends, from plain facts: the session fills one
// connection_record (no sockets, no OpenSSL objects — strings, numbers and the judged chains),
// and two pure functions turn it into the `conn` audit record and into the metrics the
// connection adds (tlsbridge_connections_total, bytes, TLS versions, handshake failures, policy
// findings, STARTTLS injections, refusals by reason: proxy/refusal_reason.hpp). Keeping them out
// of the session makes the record's shape testable on its own
// (tests/unit/proxy/connection_record_test.cpp).
#pragma once

#include <boost/json/object.hpp>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "policy/chain_evidence.hpp"
#include "policy/policy_decision.hpp"
#include "protocols/tls_hello/client_hello_fields.hpp"
#include "proxy/metrics.hpp"
#include "proxy/outcome.hpp"

namespace tlsbridge::proxy {

// One leg's TLS as the record shows it. The chain and decision are borrowed for the call.
struct leg_record {
  bool tls = false;     // the handshake completed
  std::string version;  // when tls: "TLSv1.3"
  std::string cipher;
  std::string tls_error;  // OpenSSL's reason for a failed handshake, "" if none
  const policy::chain_evidence* chain = nullptr;  // the chain judged, with its decision
  const policy::decision* decision = nullptr;
};

struct front_record : leg_record {
  std::optional<std::string> sni;
  std::optional<std::string> alpn;
};

struct back_record : leg_record {
  std::string addr;   // the backend reached, "ip:port"
  std::string local;  // our side of it
  bool resumed = false;
};

struct connection_record {
  std::string id;
  std::string listener;
  std::string client;  // after PROXY protocol
  std::string proxy;   // the load balancer that sent PROXY, "" without
  front_record front;
  std::optional<back_record> back;  // none when no backend was connected
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
  std::int64_t duration_ms = 0;
  outcome what = outcome::ok;
  std::string reason;
  // Refused at admission: its stable name (proxy/refusal_reason.hpp: "deny", "allow", ...).
  std::string refused_by;
  bool starttls_injection = false;
  std::size_t injected_bytes = 0;
  std::size_t pretls_auth_attempts = 0;
  std::vector<std::pair<std::string, std::uint64_t>> refusals;  // by rule
  // What the client offered, when the front handshake failed (outcome tls_failed).
  std::optional<protocols::tls_hello::client_hello_offer> client_hello;
};

// The `conn` audit record (the audit log adds its timestamp).
boost::json::object conn_json(const connection_record& r);

// What the connection adds to the metrics.
void count_connection(const connection_record& r, metrics& m);

// What one of the machine's records adds: an `http.request` counts its response's status class
// (tlsbridge_http_responses_total{listener,class="2xx"}).
void count_event(const boost::json::object& event, const std::string& listener, metrics& m);

}  // namespace tlsbridge::proxy
