// tls-alpn-01 (RFC 8737) on the proxy's own TLS listeners: the challenge certificates published
// by the ACME client (acme::challenge_responder), and the switch made inside the ClientHello
// callback every server context already runs (certs/client_hello_capture): a ClientHello whose
// ALPN list offers "acme-tls/1" for a server name with a published challenge gets that name's
// challenge context (its self-signed certificate with the acmeIdentifier extension, ALPN
// "acme-tls/1" selected). Nothing else changes for an ordinary handshake: the ALPN list is read
// only to look for "acme-tls/1", and the registry is consulted only when it is there.
// "acme-tls/1" offered for a name without a challenge fails the handshake with
// no_application_protocol (RFC 8737 §3: such a handshake is a validation, never a session).
// The session closes a handshake that negotiated "acme-tls/1" at once (proxy/session).
#pragma once

#include <openssl/ssl.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "acme/obtain.hpp"
#include "certs/tls_context.hpp"

namespace tlsbridge::certs {

inline constexpr std::string_view acme_alpn = "acme-tls/1";

// True when a raw ALPN extension body (RFC 7301: a 2-byte list length, then length-prefixed
// protocol names) names "acme-tls/1". Malformed bodies answer false. Pure.
bool offers_acme_alpn(std::string_view alpn_extension);

// The published challenges, process-wide (every listener's contexts consult the same one).
// publish/withdraw run on the ACME thread, lookup on worker threads: one mutex, held briefly,
// only for a ClientHello that offers "acme-tls/1".
class acme_challenges final : public acme::challenge_responder {
 public:
  static acme_challenges& instance();

  // Builds the challenge's context; a certificate or key OpenSSL cannot read is logged by the
  // caller through `last_error()` and never published.
  void publish(const acme::alpn_challenge& challenge) override;
  void withdraw(const std::string& name) override;
  std::size_t size() const;
  std::string last_error() const;

  // The context for `name` (lower-case); null when none is published. Shared: a withdraw
  // during a handshake leaves its context alive until the SSL lets go of it.
  std::shared_ptr<SSL_CTX> lookup(std::string_view name) const;

 private:
  mutable std::mutex mutex_;
  std::map<std::string, std::shared_ptr<SSL_CTX>, std::less<>> contexts_;
  std::string last_error_;
};

// Called from the ClientHello callback: when the hello offers "acme-tls/1", switches the SSL to
// the published challenge of its server name and returns true; returns false with *alert set
// when there is none (the handshake fails); answers nothing for an ordinary hello.
enum class acme_hello { ordinary, challenge, refused };
acme_hello answer_acme_hello(SSL* ssl, std::string_view alpn_extension, std::string_view sni,
                             int* alert);

// Whether this SSL was switched to a challenge (the SNI callback then keeps its context) and
// whether its handshake negotiated "acme-tls/1" (the session closes it).
bool is_acme_challenge(SSL* ssl);
bool negotiated_acme_alpn(SSL* ssl);

}  // namespace tlsbridge::certs
