#include "proxy/protocol_factory.hpp"

#include "protocols/http/https_session.hpp"
#include "protocols/imap/imap_backend_opener.hpp"
#include "protocols/imap/imap_session.hpp"
#include "protocols/pop3/pop3_backend_opener.hpp"
#include "protocols/pop3/pop3_session.hpp"
#include "protocols/smtp/backend_opener.hpp"
#include "protocols/smtp/smtp_session.hpp"
#include "protocols/tls_relay/tls_relay_session.hpp"

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
      protocols::smtp::session_settings s;
      s.front = l.tls;
      s.require_tls = l.require_tls;
      s.bare_lf = l.smtp_bare_lf;
      s.hostname = root.server.hostname;
      s.audit_envelope = root.audit.envelope;
      return std::make_unique<protocols::smtp::smtp_session>(s, opener.greeting());
    }
    case config::protocol::imap: {
      protocols::imap::session_settings s;
      s.front = l.tls;
      s.require_tls = l.require_tls;
      s.hostname = root.server.hostname;
      s.audit_envelope = root.audit.envelope;
      return std::make_unique<protocols::imap::imap_session>(s, opener.greeting());
    }
    case config::protocol::pop3: {
      protocols::pop3::session_settings s;
      s.front = l.tls;
      s.require_tls = l.require_tls;
      s.hostname = root.server.hostname;
      s.audit_envelope = root.audit.envelope;
      return std::make_unique<protocols::pop3::pop3_session>(s, opener.greeting());
    }
    case config::protocol::https: {
      protocols::http::session_settings s;
      s.allow_paths = l.http.allow_paths;
      s.request_timeout = l.http.request_timeout;
      s.request_head_timeout = l.timeouts.request_head;
      s.forwarded_headers = l.http.forwarded_headers;
      s.audit_envelope = root.audit.envelope;
      return std::make_unique<protocols::http::https_session>(std::move(s));
    }
    default:
      return std::make_unique<protocols::tls_relay_session>();
  }
}

}  // namespace tlsbridge::proxy
