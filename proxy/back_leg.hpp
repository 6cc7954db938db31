// The back leg of one connection as one object: connect with failover over the listener's
// backend `address` list in the order its backend_health gives (healthy addresses by `balance`;
// each attempt bounded by timeouts.connect; a failed connect is a passive health failure), the
// back TLS handshake (implicit, or when the opener asks for it after STARTTLS) resuming the
// listener's cached session for that address, the protocol's backend_opener run to completion (each
// step bounded by timeouts.handshake), and the chain judgement — policy::judge_chain, with the
// pin_sha256 of a verify = "pin" leg, is the only verdict. open() answers either the leg's facts
// (the leg is up) or a typed failure {outcome, reason}; the facts gathered so far (address, chain,
// decision) stay readable either way, for the `conn` record. Reconnecting is a new back_leg: the
// old one's destructor caches its TLS session (a TLS 1.3 ticket arrives after the handshake) and
// closes it.
#pragma once

#include <array>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "policy/chain_evidence.hpp"
#include "policy/policy_decision.hpp"
#include "protocols/common/session_machine.hpp"
#include "proxy/listener.hpp"
#include "proxy/outcome.hpp"
#include "proxy/tls_stream.hpp"

namespace tlsbridge::proxy {

// What the back leg learned; complete once open() succeeded, partial after a failure.
struct back_leg_facts {
  std::string address;  // the endpoint reached, "ip:port"
  std::string local;    // our side of it
  std::string host;     // the configured host that was reached (for [[policy.rule]] peer globs)
  std::chrono::steady_clock::duration connect_latency{};
  bool resumed = false;  // the TLS handshake resumed a cached session
  // Out of line, so a plain back leg (none of either) carries two pointers, not ≈ 220 bytes.
  std::unique_ptr<policy::chain_evidence> chain;
  std::unique_ptr<policy::decision> decision;
};

struct back_leg_failure {
  outcome what = outcome::backend_unavailable;  // or refused_policy
  std::string reason;
};

class back_leg {
 public:
  // `client_ip`: the client after PROXY, for policy rules that select on it.
  back_leg(std::shared_ptr<listener_runtime> runtime, std::array<std::uint8_t, 16> client_ip);
  ~back_leg();
  back_leg(const back_leg&) = delete;
  back_leg& operator=(const back_leg&) = delete;

  // Connect, TLS, opener, judgement. nullopt: the leg is up (stream(), facts(), opener()).
  asio::awaitable<std::optional<back_leg_failure>> open();

  // Null until a connection was made.
  tls_stream* stream() { return stream_ ? &*stream_ : nullptr; }
  const tls_stream* stream() const { return stream_ ? &*stream_ : nullptr; }
  const back_leg_facts& facts() const { return facts_; }
  // The protocol's opener, which holds the backend's greeting once open() succeeded.
  const protocols::backend_opener& opener() const { return *opener_; }
  // Caches this leg's TLS session if it is resumable now and was not cached yet.
  void remember_session();
  void close();

 private:
  asio::awaitable<std::optional<back_leg_failure>> connect();
  asio::awaitable<std::optional<back_leg_failure>> run_opener();
  asio::awaitable<std::optional<back_leg_failure>> handshake();
  std::optional<back_leg_failure> judge(std::optional<policy::chain_evidence> cached);

  std::shared_ptr<listener_runtime> rt_;
  const config::listener_config& cfg_;
  std::array<std::uint8_t, 16> client_ip_;
  std::unique_ptr<protocols::backend_opener> opener_;
  std::optional<tls_stream> stream_;
  back_leg_facts facts_;
  bool session_stored_ = false;
  // The address this leg counts against for least_conn, until close().
  std::shared_ptr<backend_health::address_state> counted_;
};

}  // namespace tlsbridge::proxy
