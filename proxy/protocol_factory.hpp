// Where a protocol plugs into the engine: for a listener's `protocol`, the opener that readies its
// back leg and the machine that runs the session. Adding IMAP or POP3 means adding their machines
// under protocols/ and one case to each function here.
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

}  // namespace tlsbridge::proxy
