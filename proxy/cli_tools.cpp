#include "proxy/cli_tools.hpp"

#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <boost/program_options.hpp>
#include <csignal>
#include <ctime>
#include <iomanip>
#include <memory>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "certs/inspect.hpp"
#include "certs/probe.hpp"
#include "config/config_loader.hpp"
#include "config/value_parsers.hpp"
#include "policy/chain_evidence.hpp"
#include "policy/policy_decision.hpp"

namespace tlsbridge::proxy {
namespace {

namespace po = boost::program_options;

constexpr const char* probe_usage =
    "usage: tlsbridge probe [--starttls smtp|imap|pop3] [--servername NAME] [--config FILE]\n"
    "                       [--ca FILE] [--json] HOST:PORT\n";
constexpr const char* inspect_usage =
    "usage: tlsbridge inspect-cert [--config FILE] [--ca FILE] [--json] FILE...\n";

// [policy] from --config (the whole file is loaded and validated, as check-config would), or the
// documented defaults; `hostname`, when given, gets its [server] hostname (the name the proxy's
// SMTP opener says EHLO with). nullptr after printing every error.
std::unique_ptr<config::policy_config> load_policy(const po::variables_map& vm, std::ostream& err,
                                                   std::string* hostname = nullptr) {
  if (!vm.count("config")) return std::make_unique<config::policy_config>();
  try {
    auto cfg = config::load_config(vm["config"].as<std::string>());
    if (hostname) *hostname = cfg->server.hostname;
    return std::make_unique<config::policy_config>(cfg->policy);
  } catch (const config::config_load_error& e) {
    for (const auto& error : e.errors()) err << error.to_string() << "\n";
  } catch (const std::exception& e) {
    err << "tlsbridge: " << e.what() << "\n";
  }
  return nullptr;
}

int exit_code_for(policy::verdict v) {
  return v == policy::verdict::refused ? exit_refused : exit_pass;
}

// chain_to_json (the audit `chain`) plus what a diagnosis wants on top: each finding's action and
// each certificate's depth and not_before.
boost::json::value chain_json(const policy::chain_evidence& chain, const policy::decision& d) {
  auto value = policy::chain_to_json(chain, d.findings, d.result, d.rule);
  auto& obj = value.as_object();
  auto& findings = obj["findings"].as_array();
  for (std::size_t i = 0; i < findings.size() && i < d.actions.size(); ++i)
    findings[i].as_object()["action"] = policy::to_string(d.actions[i]);
  auto& certs = obj["certs"].as_array();
  for (std::size_t i = 0; i < certs.size() && i < chain.certs.size(); ++i) {
    auto& c = certs[i].as_object();
    c["depth"] = chain.certs[i].depth;
    c["not_before"] = policy::format_rfc3339_seconds(chain.certs[i].not_before);
  }
  if (!d.reason.empty()) obj["reason"] = d.reason;
  return value;
}

void print_chain(std::ostream& out, const policy::chain_evidence& chain,
                 const policy::decision& d) {
  for (const auto& c : chain.certs) {
    out << "  depth " << c.depth << (c.self_signed ? " (self-signed)" : "") << "\n"
        << "    subject     " << c.subject << "\n"
        << "    issuer      " << c.issuer << "\n"
        << "    sig_alg     " << c.sig_alg << "\n"
        << "    key         " << c.key_text() << "\n"
        << "    not_before  " << policy::format_rfc3339_seconds(c.not_before) << "\n"
        << "    not_after   " << policy::format_rfc3339_seconds(c.not_after) << "\n"
        << "    sha256      " << c.sha256 << "\n";
  }
  if (chain.verify_attempted)
    out << "  trust: " << (chain.trusted ? "verified" : "not verified: " + chain.verify_error)
        << "\n";
  if (chain.name_checked)
    out << "  name: " << chain.expected_name
        << (chain.name_matches ? " matches" : " does not match") << "\n";
  out << "findings:" << (d.findings.empty() ? " none" : "") << "\n";
  for (std::size_t i = 0; i < d.findings.size(); ++i) {
    const auto& f = d.findings[i];
    out << "  " << std::left << std::setw(15) << f.kind << " depth " << f.depth << "  "
        << std::setw(7) << (i < d.actions.size() ? policy::to_string(d.actions[i]) : "?") << " "
        << f.detail << "\n";
  }
  out << "verdict: " << policy::to_string(d.result);
  if (!d.reason.empty()) out << " (" << d.reason << ")";
  out << "\n";
}

certs::starttls_protocol parse_starttls(const std::string& text, bool& ok) {
  ok = true;
  if (text == "smtp") return certs::starttls_protocol::smtp;
  if (text == "imap") return certs::starttls_protocol::imap;
  if (text == "pop3") return certs::starttls_protocol::pop3;
  if (text == "none") return certs::starttls_protocol::none;
  ok = false;
  return certs::starttls_protocol::none;
}

}  // namespace

bool parse_subcommand(int argc, const char* const* argv, const po::options_description& opts,
                      const po::positional_options_description& pos, po::variables_map& vm,
                      const char* usage, std::ostream& err) {
  try {
    po::store(po::command_line_parser(argc, argv).options(opts).positional(pos).run(), vm);
    po::notify(vm);
    return true;
  } catch (const std::exception& e) {
    err << "tlsbridge " << argv[0] << ": " << e.what() << "\n" << usage;
    return false;
  }
}

int probe_command(int argc, const char* const* argv, std::ostream& out, std::ostream& err) {
  po::options_description opts("probe options");
  opts.add_options()("starttls", po::value<std::string>(), "smtp | imap | pop3")(
      "servername", po::value<std::string>(), "SNI and the name checked (default: HOST)")(
      "config,c", po::value<std::string>(), "take [policy] from this configuration")(
      "ca", po::value<std::string>(), "trust these CAs instead of the system store")(
      "json", "one JSON object instead of the table")("target", po::value<std::string>(),
                                                      "HOST:PORT");
  po::positional_options_description pos;
  pos.add("target", 1);
  po::variables_map vm;
  if (!parse_subcommand(argc, argv, opts, pos, vm, probe_usage, err)) return exit_failure;
  if (!vm.count("target")) {
    err << "tlsbridge probe: HOST:PORT is required\n" << probe_usage;
    return exit_failure;
  }
  const auto endpoint = config::parse_endpoint(vm["target"].as<std::string>());
  if (!endpoint) {
    err << "tlsbridge probe: \"" << vm["target"].as<std::string>()
        << "\" is not HOST:PORT (use [v6]:PORT for IPv6)\n";
    return exit_failure;
  }
  certs::probe_options options;
  options.host = endpoint->host;
  options.port = endpoint->port;
  if (vm.count("starttls")) {
    bool ok = false;
    options.starttls = parse_starttls(vm["starttls"].as<std::string>(), ok);
    if (!ok) {
      err << "tlsbridge probe: --starttls must be smtp, imap or pop3\n";
      return exit_failure;
    }
  }
  if (vm.count("servername")) options.servername = vm["servername"].as<std::string>();
  if (vm.count("ca")) options.ca_file = vm["ca"].as<std::string>();
  const bool json = vm.count("json") != 0;
  // The probe opens STARTTLS as the proxy would: EHLO with the config's [server] hostname.
  const auto policy_cfg = load_policy(vm, err, &options.ehlo_name);
  if (!policy_cfg) return exit_failure;

  // A server that closes mid-handshake must not kill the tool with SIGPIPE (OpenSSL writes with
  // write(2)); the error is reported instead.
  std::signal(SIGPIPE, SIG_IGN);
  certs::probe_report report;
  try {
    report = certs::probe(options);
  } catch (const std::exception& e) {
    err << "tlsbridge probe: " << e.what() << "\n";
    return exit_failure;
  }

  std::string failure;
  if (!report.any_accepted())
    failure = !report.connect_error.empty()
                  ? "could not connect to " + report.target + ": " + report.connect_error
                  : "no TLS version accepted by " + report.target;
  policy::decision d;
  if (report.any_accepted()) {
    policy::peer_context peer;
    peer.backend_host = options.host;
    d = policy::judge_chain(report.chain, *policy_cfg, peer, /*trusted_by_configuration=*/false,
                            static_cast<std::int64_t>(std::time(nullptr)));
  }

  if (json) {
    boost::json::array versions;
    for (const auto& v : report.versions) {
      boost::json::object o{{"version", v.name}, {"accepted", v.accepted}, {"tried", v.tried}};
      if (v.accepted)
        o["cipher"] = v.cipher;
      else
        o["reason"] = v.reason;
      versions.push_back(std::move(o));
    }
    boost::json::object o{
        {"target", report.target},
        {"starttls", certs::to_string(options.starttls)},
        {"sni", report.sni.empty() ? boost::json::value(nullptr) : boost::json::value(report.sni)},
        {"versions", std::move(versions)}};
    if (report.any_accepted()) {
      o["chain_version"] = certs::tls_version_name(*report.chain_version);
      o["chain"] = chain_json(report.chain, d);
      o["verdict"] = policy::to_string(d.result);
    } else {
      o["chain"] = nullptr;
      o["verdict"] = nullptr;
      o["error"] = failure;
    }
    out << boost::json::serialize(o) << "\n";
  } else {
    out << "probe " << report.target;
    if (options.starttls != certs::starttls_protocol::none)
      out << " (starttls " << certs::to_string(options.starttls) << ")";
    out << ", sni " << (report.sni.empty() ? "-" : report.sni) << "\n";
    for (const auto& v : report.versions) {
      out << std::left << std::setw(9) << v.name << std::setw(10)
          << (v.accepted ? "accepted"
              : v.tried  ? "refused"
                         : "not tried")
          << (v.accepted ? v.cipher : v.reason) << "\n";
    }
    if (report.any_accepted()) {
      out << "chain (as presented over " << certs::tls_version_name(*report.chain_version)
          << "):\n";
      print_chain(out, report.chain, d);
    }
  }
  if (!report.any_accepted()) {
    err << "tlsbridge probe: " << failure << "\n";
    return exit_failure;
  }
  return exit_code_for(d.result);
}

int inspect_cert_command(int argc, const char* const* argv, std::ostream& out, std::ostream& err) {
  po::options_description opts("inspect-cert options");
  opts.add_options()("config,c", po::value<std::string>(), "take [policy] from this configuration")(
      "ca", po::value<std::string>(), "trust these CAs instead of the system store")(
      "json", "one JSON object instead of the table")("file", po::value<std::vector<std::string>>(),
                                                      "PEM files, leaf first");
  po::positional_options_description pos;
  pos.add("file", -1);
  po::variables_map vm;
  if (!parse_subcommand(argc, argv, opts, pos, vm, inspect_usage, err)) return exit_failure;
  if (!vm.count("file")) {
    err << "tlsbridge inspect-cert: at least one FILE is required\n" << inspect_usage;
    return exit_failure;
  }
  const auto files = vm["file"].as<std::vector<std::string>>();
  const bool json = vm.count("json") != 0;
  const auto policy_cfg = load_policy(vm, err);
  if (!policy_cfg) return exit_failure;

  certs::inspect_options options;
  for (const auto& f : files) options.files.emplace_back(f);
  if (vm.count("ca")) options.ca_file = vm["ca"].as<std::string>();
  policy::chain_evidence chain;
  try {
    chain = certs::inspect(options);
  } catch (const std::exception& e) {
    err << "tlsbridge inspect-cert: " << e.what() << "\n";
    return exit_failure;
  }
  // A deployer's own chain: no peer, so only [[policy.rule]]s without selectors apply.
  const auto d = policy::judge_chain(chain, *policy_cfg, policy::peer_context{},
                                     /*trusted_by_configuration=*/false,
                                     static_cast<std::int64_t>(std::time(nullptr)));
  if (json) {
    boost::json::array names;
    for (const auto& f : files) names.emplace_back(f);
    boost::json::object o{{"files", std::move(names)},
                          {"chain", chain_json(chain, d)},
                          {"verdict", policy::to_string(d.result)}};
    out << boost::json::serialize(o) << "\n";
  } else {
    out << "inspect-cert";
    for (const auto& f : files) out << " " << f;
    out << "\nchain (" << chain.certs.size() << " certificate"
        << (chain.certs.size() == 1 ? "" : "s") << ", leaf first):\n";
    print_chain(out, chain, d);
  }
  return exit_code_for(d.result);
}

}  // namespace tlsbridge::proxy
