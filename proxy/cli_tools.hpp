// The diagnostic subcommands, `probe` and `inspect-cert`: command-line parsing, the
// optional `--config` (only its [policy] is used), judging the collected chain with
// policy::judge_chain, and the report (a human table, or one JSON object with --json). The
// analysis itself lives in certs/probe and certs/inspect. Exit codes: 0 the policy would let the
// peer through (verdict clean or logged), 2 it would refuse, 1 the probe could not connect /
// no TLS version was accepted / a file could not be read / a bad command line or config.
#pragma once

#include <boost/program_options.hpp>
#include <iosfwd>

namespace tlsbridge::proxy {

inline constexpr int exit_pass = 0;
inline constexpr int exit_failure = 1;
inline constexpr int exit_refused = 2;

// Parses a subcommand's argv (argv[0] its name) with `opts` and positionals; false after printing
// the reason and `usage` to `err`.
bool parse_subcommand(int argc, const char* const* argv,
                      const boost::program_options::options_description& opts,
                      const boost::program_options::positional_options_description& pos,
                      boost::program_options::variables_map& vm, const char* usage,
                      std::ostream& err);

// argv[0] is the subcommand's name ("probe" / "inspect-cert").
int probe_command(int argc, const char* const* argv, std::ostream& out, std::ostream& err);
int inspect_cert_command(int argc, const char* const* argv, std::ostream& out, std::ostream& err);

}  // namespace tlsbridge::proxy
