#include "proxy/backend_session_cache.hpp"

namespace tlsbridge::proxy {

backend_session_cache::~backend_session_cache() {
  for (auto& [addr, e] : entries_) SSL_SESSION_free(e.session);
}

std::optional<backend_session_cache::hit> backend_session_cache::find(const std::string& addr) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(addr);
  if (it == entries_.end()) return std::nullopt;
  // A copy here too: the connection that resumes it may end without close_notify, which marks
  // the session object it used not resumable.
  SSL_SESSION* copy = SSL_SESSION_dup(it->second.session);
  if (!copy) return std::nullopt;
  return hit{copy, it->second.chain};
}

bool backend_session_cache::store(const std::string& addr, SSL* ssl,
                                  const policy::chain_evidence& chain) {
  // A copy, as Postfix's own client keeps a serialised one: the live session object is marked
  // not resumable if its connection later ends without close_notify (OpenSSL's "bad session"
  // rule at SSL_free), which a mail backend's QUIT/close often does.
  SSL_SESSION* live = SSL_get0_session(ssl);
  if (!live || SSL_SESSION_is_resumable(live) != 1) return false;
  SSL_SESSION* session = SSL_SESSION_dup(live);
  if (!session) return false;
  std::lock_guard lock(mutex_);
  auto it = entries_.find(addr);
  if (it == entries_.end()) {
    if (entries_.size() >= max_entries) {
      SSL_SESSION_free(entries_.begin()->second.session);
      entries_.erase(entries_.begin());
    }
    entries_.emplace(addr, entry{session, chain});
    return true;
  }
  SSL_SESSION_free(it->second.session);
  it->second = entry{session, chain};
  return true;
}

void backend_session_cache::forget(const std::string& addr) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(addr);
  if (it == entries_.end()) return;
  SSL_SESSION_free(it->second.session);
  entries_.erase(it);
}

}  // namespace tlsbridge::proxy
