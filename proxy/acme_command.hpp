// `tlsbridge acme status [--config FILE]`: the acme entries of [[certs]] as a table — the served
// certificate's notAfter (read from state_dir, whether or not the proxy runs), the last attempt,
// its result and the next one (from state_dir/status.json, written by the running proxy).
// `tlsbridge acme renew [--config FILE] [--timeout SECONDS] [NAME]`: asks the running proxy
// (its [server] pid_file must be locked) for an order now, for the entry holding NAME or for
// every entry, through state_dir/renew.request (read by the ACME thread within a second); waits
// for the attempts to finish and prints their results. Exit 0 only when every one succeeded.
#pragma once

#include <iosfwd>

namespace tlsbridge::proxy {

// argv[0] is "acme".
int acme_command(int argc, const char* const* argv, std::ostream& out, std::ostream& err);

}  // namespace tlsbridge::proxy
