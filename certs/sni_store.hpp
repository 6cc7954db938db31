// The front certificates of one listener, selected by SNI ([[certs]] in conf/tlsbridge.toml): one
// SSL_CTX per [[certs]] entry, the first is the default. Names are the entry's `names`, else the
// certificate's SAN DNS names. Lookup: exact (case-insensitive), then a "*.example.com" wildcard
// for one label, else the default. Immutable once built; reload builds a new store.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "certs/tls_context.hpp"
#include "config/config.hpp"

namespace tlsbridge::certs {

class sni_store {
 public:
  // Throws std::runtime_error (with the file name and OpenSSL's reason) on a bad certificate/key.
  static std::shared_ptr<const sni_store> build(const config::tls_profile& profile,
                                                const std::vector<config::cert_entry>& certs,
                                                const std::string& alpn = {});

  // The context to create front SSL objects from; its servername callback switches to select().
  SSL_CTX* default_context() const { return contexts_.front().get(); }
  SSL_CTX* select(std::string_view server_name) const;
  const std::vector<std::string>& names_of(std::size_t index) const { return names_[index]; }
  // Every context, for settings that must hold whichever certificate SNI picks (client certs).
  std::size_t size() const { return contexts_.size(); }
  SSL_CTX* context(std::size_t index) const { return contexts_[index].get(); }

 private:
  std::vector<ssl_ctx_ptr> contexts_;
  std::vector<std::vector<std::string>> names_;  // lower-case, per context
};

}  // namespace tlsbridge::certs
