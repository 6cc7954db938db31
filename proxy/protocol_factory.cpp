#include "proxy/protocol_factory.hpp"

#include "protocols/http/http_request_info.hpp"
#include "protocols/http/https_machine.hpp"
#include "protocols/imap/imap_backend_opener.hpp"
#include "protocols/imap/imap_machine.hpp"
#include "protocols/pop3/pop3_backend_opener.hpp"
#include "protocols/pop3/pop3_machine.hpp"
#include "protocols/smtp/backend_opener.hpp"
#include "protocols/smtp/smtp_machine.hpp"
#include "protocols/tls_relay/tls_relay_machine.hpp"

namespace tlsbridge::proxy {

std::unique_ptr<protocols::backend_opener> make_backend_opener(const config::config& root,
                                                               const config::listener_config& l) {
  switch (l.protocol) {
    case config::protocol::smtp:
      return std::make_unique<protocols::smtp::smtp_backend_opener>(
          l.backend.tls, root.server.hostname, l.backend.require_tls);
    case config::protocol::imap:
      return std::make_unique<protocols::imap::imap_backend_opener>(l.backend.tls,
                                                                    l.backend.require_tls);
    case config::protocol::pop3:
      return std::make_unique<protocols::pop3::pop3_backend_opener>(l.backend.tls,
                                                                    l.backend.require_tls);
    default:
      return std::make_unique<protocols::null_backend_opener>();
  }
}

std::unique_ptr<protocols::session_machine> make_session_machine(
    const config::config& root, const config::listener_config& l,
    const protocols::backend_opener& opener) {
  switch (l.protocol) {
    case config::protocol::smtp: {
      protocols::smtp::machine_settings s;
      s.front = l.tls;
      s.require_tls = l.require_tls;
      s.bare_lf = l.smtp_bare_lf;
      s.greeting = l.smtp.greeting;
      s.hostname = root.server.hostname;
      s.audit_envelope = root.audit.envelope;
      return std::make_unique<protocols::smtp::smtp_machine>(s, opener.greeting());
    }
    case config::protocol::imap: {
      protocols::imap::machine_settings s;
      s.front = l.tls;
      s.require_tls = l.require_tls;
      s.hostname = root.server.hostname;
      s.audit_envelope = root.audit.envelope;
      return std::make_unique<protocols::imap::imap_machine>(s, opener.greeting());
    }
    case config::protocol::pop3: {
      protocols::pop3::machine_settings s;
      s.front = l.tls;
      s.require_tls = l.require_tls;
      s.hostname = root.server.hostname;
      s.audit_envelope = root.audit.envelope;
      return std::make_unique<protocols::pop3::pop3_machine>(s, opener.greeting());
    }
    case config::protocol::https: {
      protocols::http::machine_settings s;
      s.allow_paths = l.http.allow_paths;
      s.request_timeout = l.http.request_timeout;
      s.request_head_timeout = l.timeouts.request_head;
      s.forwarded_headers = l.http.forwarded_headers;
      s.hsts = l.http.hsts;
      s.audit_envelope = root.audit.envelope;
      return std::make_unique<protocols::http::https_machine>(std::move(s));
    }
    default:
      return std::make_unique<protocols::tls_relay_machine>();
  }
}

bool opens_backend_first(config::protocol p) {
  return p != config::protocol::https;
}

std::string refusal_text(const config::config& root, const config::listener_config& l,
                         early_refusal why) {
  const bool over = why != early_refusal::service_unavailable;
  const std::string& host = root.server.hostname;
  const std::string what =
      why == early_refusal::denied ? " access denied\r\n" : " too many connections\r\n";
  switch (l.protocol) {
    case config::protocol::smtp:  // RFC 5321 §3.8: 421 and close
      return over ? "421 4.7.0 " + host + what : "421 4.3.0 " + host + " Service not available\r\n";
    case config::protocol::imap:  // RFC 9051 §7.1.5 BYE, RFC 5530 UNAVAILABLE
      return over ? "* BYE [UNAVAILABLE] " + host + what
                  : "* BYE " + host + " Service not available\r\n";
    case config::protocol::pop3:  // RFC 3206 SYS/TEMP
      return over ? "-ERR [SYS/TEMP] " + host + what
                  : "-ERR " + host + " Service not available\r\n";
    case config::protocol::https:
      return protocols::http::proxy_response(why == early_refusal::over_limit ? 503
                                             : over                           ? 429
                                                                              : 502,
                                             true);
    default:
      return {};
  }
}

}  // namespace tlsbridge::proxy
