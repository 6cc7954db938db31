// TLS sessions of one listener's back leg, for resumption (issue 8: a legacy backend's full TLS
// 1.0 handshake — certificate parsing, RSA verification, key exchange — is most of an SMTP
// transaction's cost; a resumed one skips all three, as Postfix's own SMTP client does).
//
// One cache per listener generation: a reload builds a new one, so a cached verdict never
// outlives the trust store it was checked against. An entry keeps the chain evidence of the full
// handshake that made the session: a resumed connection is judged again from it (its own client,
// rules and clock) and its audit record still shows the chain. A session whose chain was refused
// is never stored. Shared by the worker threads (one mutex; one lookup per back-leg handshake).
#pragma once

#include <cstddef>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include <openssl/ssl.h>

#include "policy/chain_evidence.hpp"

namespace tlsbridge::proxy {

class backend_session_cache {
 public:
  struct hit {
    SSL_SESSION* session = nullptr;  // a reference for the caller: SSL_SESSION_free it
    policy::chain_evidence chain;
  };

  backend_session_cache() = default;
  backend_session_cache(const backend_session_cache&) = delete;
  backend_session_cache& operator=(const backend_session_cache&) = delete;
  ~backend_session_cache();

  // The session to offer to the backend at `addr` (ip:port), if one is cached.
  std::optional<hit> find(const std::string& addr);
  // Stores the session `ssl` now holds, if it is resumable, with the full handshake's chain.
  // False when there was nothing resumable to store (TLS 1.3: no ticket has arrived yet).
  bool store(const std::string& addr, SSL* ssl, const policy::chain_evidence& chain);
  // Drops the entry for `addr` (the backend refused or failed a resumption).
  void forget(const std::string& addr);

  // Backends per listener are few (its configured addresses, as resolved); this bounds the
  // cache should DNS hand out many.
  static constexpr std::size_t max_entries = 256;

 private:
  struct entry {
    SSL_SESSION* session = nullptr;
    policy::chain_evidence chain;
  };
  std::mutex mutex_;
  std::map<std::string, entry> entries_;
};

}  // namespace tlsbridge::proxy
