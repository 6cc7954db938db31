// Where a protocol plugs into the engine: for a listener's `protocol`, the opener that readies its
// back leg, the machine that runs the session, and what the client is told when it is refused
// before that machine exists. A new protocol adds its machine and opener under protocols/ and one
// case to each function here.
#pragma once

#include <memory>
#include <string>

#include "config/config.hpp"
#include "protocols/common/session_machine.hpp"

namespace tlsbridge::proxy {

std::unique_ptr<protocols::backend_opener> make_backend_opener(const config::config& root,
                                                               const config::listener_config& l);

std::unique_ptr<protocols::session_machine> make_session_machine(
    const config::config& root, const config::listener_config& l,
    const protocols::backend_opener& opener);

// Whether the back leg is opened before the machine starts (SMTP, IMAP, POP3 and the TLS relay:
// the machine is built with what the opener read); HTTPS opens it per request instead.
bool opens_backend_first(config::protocol p);

// The driver builds the machine once, after the back leg is up; a client refused before that
// (over a connection limit, or no backend reachable or acceptable) gets these bytes, in its
// protocol's own words. "" = just close. client_limit (connection_rate, max_connections_per_ip) and
// denied ([listener.limits] deny) are about this client in particular: HTTP 429 (RFC 6585 §4);
// over_limit: the listener or the process is full, HTTP 503.
enum class early_refusal { service_unavailable, over_limit, client_limit, denied };
std::string refusal_text(const config::config& root, const config::listener_config& l,
                         early_refusal why);

}  // namespace tlsbridge::proxy
