// How a connection ended, as the driver knows it: one enum and the one table of the strings the
// `conn` audit record and the tlsbridge_connections_total metric carry. The protocol machines
// still say their outcome as a string in session_facts (protocols/common/session_machine.hpp);
// outcome_from_text() is the one place that string becomes an outcome.
#pragma once

#include <array>
#include <cstddef>
#include <string_view>

namespace tlsbridge::proxy {

enum class outcome {
  ok,
  refused_policy,
  backend_unavailable,
  tls_failed,
  timeout,
  client_closed,
  limit,
  denied,
  shutdown,
  acme_challenge,  // a tls-alpn-01 validation handshake (certs/acme_challenges), closed after it
};

inline constexpr std::array<std::string_view, 10> outcome_names = {"ok",
                                                                   "refused_policy",
                                                                   "backend_unavailable",
                                                                   "tls_failed",
                                                                   "timeout",
                                                                   "client_closed",
                                                                   "limit",
                                                                   "denied",
                                                                   "shutdown",
                                                                   "acme_challenge"};

constexpr std::string_view to_string(outcome o) {
  return outcome_names[static_cast<std::size_t>(o)];
}

// The boundary with the machines: session_facts::outcome as an outcome. "" (the machine left it
// to the driver) is ok; so is a word not in the table, which no machine writes.
constexpr outcome outcome_of_machine(std::string_view text) {
  for (std::size_t i = 0; i < outcome_names.size(); ++i)
    if (outcome_names[i] == text) return static_cast<outcome>(i);
  return outcome::ok;
}

}  // namespace tlsbridge::proxy
