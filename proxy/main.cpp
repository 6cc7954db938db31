// tlsbridge's command line (README): run, check-config, upgrade, probe, inspect-cert, --version,
// --help. probe and inspect-cert have their own options and live in cli_tools.cpp, upgrade in
// upgrade_command.cpp. Start-up is the one
// place exceptions are used: every problem is printed as one line and the exit status is non-zero;
// nothing starts half-configured.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <boost/program_options.hpp>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "certs/own_cert_check.hpp"
#include "config/config_loader.hpp"
#include "proxy/acme_command.hpp"
#include "proxy/build_info.hpp"
#include "proxy/cli_tools.hpp"
#include "proxy/config_validation.hpp"
#include "proxy/journal_stream.hpp"
#include "proxy/listener.hpp"
#include "proxy/log_file_sink.hpp"
#include "proxy/report_command.hpp"
#include "proxy/server.hpp"
#include "proxy/upgrade_command.hpp"

namespace po = boost::program_options;
using namespace tlsbridge;

namespace {

constexpr const char* usage =
    "usage:\n"
    "  tlsbridge [run] --config FILE [--pid-file FILE]\n"
    "                                         run the proxy (foreground); the pid file (else\n"
    "                                         [server] pid_file) is locked: a second run with it\n"
    "                                         exits 1 naming the running PID\n"
    "  tlsbridge check-config --config FILE   validate; print \"ok\" or every error\n"
    "  tlsbridge upgrade --pid-file FILE      start the binary at the running instance's path on\n"
    "                                         its sockets (as SIGUSR2); it drains and exits\n"
    "  tlsbridge probe [--starttls smtp|imap|pop3] [--servername NAME] [--config FILE]\n"
    "                  [--ca FILE] [--json] HOST:PORT\n"
    "                                         try TLS 1.0..1.3, judge the server's chain\n"
    "  tlsbridge inspect-cert [--config FILE] [--ca FILE] [--json] FILE...\n"
    "                                         judge a PEM chain (leaf first)\n"
    "  tlsbridge acme status [--config FILE]  the [[certs]] acme entries: served, last, next\n"
    "  tlsbridge acme renew [--config FILE] [--timeout SECONDS] [NAME]\n"
    "                                         order now in the running proxy, print the result\n"
    "  tlsbridge report [--since DURATION] [--format text|json|html] FILE...\n"
    "                                         summarise audit files (plain or .gz)\n"
    "  probe/inspect-cert exit 0 (clean or logged), 2 (policy would refuse), 1 (no connection,\n"
    "  no TLS, unreadable file); [policy] comes from --config, else the defaults\n"
    "  tlsbridge --version | --help            version, commit, OpenSSL in use\n";

// Loads and validates everything a start needs. Prints every problem (also into `errors`);
// nullptr if any.
std::shared_ptr<const config::config> load_and_validate(const std::string& path,
                                                        std::string& errors) {
  auto report = proxy::load_and_validate(path);
  const bool journal = proxy::stderr_is_journal();  // the journal files them by priority
  for (const auto& w : report.warnings)
    std::cerr << (journal ? "<4>" : "") << "warning: " << w << "\n";
  for (const auto& e : report.errors) {
    std::cerr << (journal ? "<3>" : "") << e << "\n";
    errors += e + "\n";
  }
  return report.config;
}

void setup_logging(const config::config& cfg) {
  std::shared_ptr<spdlog::logger> logger;
  if (cfg.log.file.empty()) {
    logger = spdlog::stderr_color_mt("tlsbridge");
    if (proxy::stderr_is_journal()) logger->set_formatter(proxy::make_journal_formatter());
  } else {
    logger = std::make_shared<spdlog::logger>(
        "tlsbridge", std::make_shared<proxy::log_file_sink>(cfg.log.file.string(),
                                                            proxy::owners_for(cfg.server.user)));
  }
  logger->set_level(spdlog::level::from_str(cfg.log.level));
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

}  // namespace

int main(int argc, char** argv) {
  // The diagnostic subcommands parse their own options (argv[1] is the subcommand).
  if (argc > 1 && std::string_view(argv[1]) == "probe")
    return proxy::probe_command(argc - 1, argv + 1, std::cout, std::cerr);
  if (argc > 1 && std::string_view(argv[1]) == "inspect-cert")
    return proxy::inspect_cert_command(argc - 1, argv + 1, std::cout, std::cerr);
  if (argc > 1 && std::string_view(argv[1]) == "report")
    return proxy::report_command(argc - 1, argv + 1, std::cout, std::cerr);
  if (argc > 1 && std::string_view(argv[1]) == "acme")
    return proxy::acme_command(argc - 1, argv + 1, std::cout, std::cerr);
  if (argc > 1 && std::string_view(argv[1]) == "upgrade")
    return proxy::upgrade_command(argc - 1, argv + 1, std::cout, std::cerr);
  // Started by an upgrading old process: its sockets and pid file, and where to say how it went.
  auto handoff = proxy::upgrade_handoff::from_environment();

  po::options_description opts("options");
  opts.add_options()("config,c", po::value<std::string>(), "configuration file (TOML)")(
      "pid-file", po::value<std::string>(), "pid file (run), overrides [server] pid_file")(
      "version", "print the version")("help,h", "print this help")(
      "command", po::value<std::string>(), "run | check-config");
  po::positional_options_description pos;
  pos.add("command", 1);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(opts).positional(pos).run(), vm);
    po::notify(vm);
  } catch (const std::exception& e) {
    std::cerr << "tlsbridge: " << e.what() << "\n" << usage;
    return 1;
  }
  if (vm.count("help")) {
    std::cout << usage;
    return 0;
  }
  if (vm.count("version")) {
    std::cout << proxy::version_text() << "\n";
    return 0;
  }
  std::string command = vm.count("command") ? vm["command"].as<std::string>() : "run";
  if (command != "run" && command != "check-config") {
    std::cerr << "tlsbridge: unknown command \"" << command << "\"\n" << usage;
    return 1;
  }
  if (!vm.count("config")) {
    std::cerr << "tlsbridge: --config FILE is required\n" << usage;
    return 1;
  }
  std::string errors;
  auto cfg = load_and_validate(vm["config"].as<std::string>(), errors);
  if (!cfg) {
    handoff.report_failure(errors);
    return 1;
  }
  if (command == "check-config") {
    std::cout << "ok\n";
    return 0;
  }
  // Every connection is two descriptors: take the whole hard limit for file descriptors, not the
  // 1024 a login shell's soft limit allows (systemd's LimitNOFILE sets the hard one).
  struct rlimit files {};
  if (::getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &files);
  }
  proxy::run_options options{
      vm.count("pid-file") ? std::filesystem::absolute(vm["pid-file"].as<std::string>())
                           : cfg->server.pid_file,
      proxy::executable_from(argc, argv), handoff.active() ? &handoff : nullptr,
      proxy::this_build()};
  try {
    setup_logging(*cfg);
    return proxy::run_server(vm["config"].as<std::string>(), cfg, std::move(options));
  } catch (const std::exception& e) {
    std::cerr << (proxy::stderr_is_journal() ? "<3>" : "") << "tlsbridge: " << e.what() << "\n";
    handoff.report_failure(e.what());
    return 1;
  }
}
