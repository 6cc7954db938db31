#include "proxy/acme_command.hpp"

#include <unistd.h>

#include <boost/json.hpp>
#include <boost/program_options.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <thread>

#include "config/config_loader.hpp"
#include "proxy/acme_service.hpp"
#include "proxy/acme_state.hpp"
#include "proxy/pid_file.hpp"
#include "proxy/status_json.hpp"

namespace tlsbridge::proxy {

namespace {

namespace po = boost::program_options;

constexpr const char* default_config = "/etc/tlsbridge/tlsbridge.toml";

std::vector<acme_entry_status> read_status(const config::acme_config& acme) {
  std::ifstream in(acme_status_path(acme));
  std::ostringstream text;
  text << in.rdbuf();
  boost::system::error_code ec;
  const auto v = boost::json::parse(text.str(), ec);
  return ec ? std::vector<acme_entry_status>{} : acme_status_from_json(v);
}

std::string when(std::int64_t t) {
  return t == 0 ? "-" : rfc3339(t);
}

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ",") + n;
  return out;
}

// The entries of `cfg` with what state_dir says of them, in config order.
std::vector<acme_entry_status> current(const config::config& cfg) {
  const auto recorded = read_status(*cfg.acme);
  std::vector<acme_entry_status> out;
  for (const auto& c : cfg.certs) {
    if (!c.is_acme()) continue;
    acme_entry_status e;
    for (const auto& r : recorded)
      if (r.names == c.acme) e = r;
    e.names = c.acme;
    if (auto served = read_served_certificate(c.cert, c.key, c.acme)) {
      e.not_after =
          std::chrono::duration_cast<std::chrono::seconds>(served->not_after.time_since_epoch())
              .count();
      e.placeholder = served->placeholder;
    } else {
      e.not_after = 0;
      e.placeholder = true;
    }
    out.push_back(std::move(e));
  }
  return out;
}

void print_table(const std::vector<acme_entry_status>& entries, std::ostream& out) {
  out << std::left << std::setw(40) << "NAMES" << std::setw(22) << "NOT AFTER" << std::setw(22)
      << "LAST ATTEMPT" << std::setw(22) << "NEXT ATTEMPT"
      << "RESULT\n";
  for (const auto& e : entries) {
    const std::string served =
        e.not_after == 0 ? "none" : (e.placeholder ? "placeholder" : rfc3339(e.not_after));
    std::string result = e.result.empty() ? "-" : e.result;
    if (e.result == "failed") result += " at " + e.step + ": " + e.error;
    out << std::setw(40) << join(e.names) << std::setw(22) << served << std::setw(22)
        << when(e.last_attempt) << std::setw(22) << when(e.next_attempt) << result << "\n";
  }
}

}  // namespace

int acme_command(int argc, const char* const* argv, std::ostream& out, std::ostream& err) {
  po::options_description opts("acme options");
  opts.add_options()("config,c", po::value<std::string>()->default_value(default_config),
                     "configuration file")("timeout", po::value<unsigned>()->default_value(600),
                                           "renew: seconds to wait for the result")(
      "action", po::value<std::string>(), "status | renew")("name", po::value<std::string>(),
                                                            "renew: one name of the entry");
  po::positional_options_description pos;
  pos.add("action", 1).add("name", 1);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(opts).positional(pos).run(), vm);
    po::notify(vm);
  } catch (const std::exception& e) {
    err << "tlsbridge acme: " << e.what() << "\n";
    return 1;
  }
  const std::string action = vm.count("action") ? vm["action"].as<std::string>() : "";
  if (action != "status" && action != "renew") {
    err << "usage: tlsbridge acme status [--config FILE]\n"
           "       tlsbridge acme renew [--config FILE] [--timeout SECONDS] [NAME]\n";
    return 1;
  }
  std::shared_ptr<const config::config> cfg;
  try {
    cfg = config::load_config(vm["config"].as<std::string>());
  } catch (const config::config_load_error& e) {
    for (const auto& problem : e.errors()) err << problem.to_string() << "\n";
    return 1;
  }
  if (!cfg->acme) {
    err << "tlsbridge acme: " << cfg->source.string() << " has no [acme] table\n";
    return 1;
  }
  if (action == "status") {
    print_table(current(*cfg), out);
    return 0;
  }

  // renew
  std::vector<std::string> wanted;
  if (vm.count("name")) {
    const std::string name = vm["name"].as<std::string>();
    bool known = false;
    for (const auto& c : cfg->certs)
      known = known || std::find(c.acme.begin(), c.acme.end(), name) != c.acme.end();
    if (!known) {
      err << "tlsbridge acme: no acme entry of [[certs]] names " << name << "\n";
      return 1;
    }
    wanted.push_back(name);
  }
  if (cfg->server.pid_file.empty() || !pid_file_locked(cfg->server.pid_file)) {
    err << "tlsbridge acme: the proxy is not running (no locked [server] pid_file"
        << (cfg->server.pid_file.empty() ? "" : " " + cfg->server.pid_file.string()) << ")\n";
    return 1;
  }
  // The token the proxy echoes in status.json once the attempt this request caused is over.
  const std::string token = std::to_string(std::chrono::duration_cast<std::chrono::microseconds>(
                                               std::chrono::system_clock::now().time_since_epoch())
                                               .count()) +
                            "-" + std::to_string(::getpid());
  // Written whole, then renamed into place: the proxy never reads a half-written request.
  {
    const auto file = acme_request_path(*cfg->acme);
    const auto temp = file.string() + ".new";
    {
      std::ofstream request(temp, std::ios::trunc);
      request << (wanted.empty() ? std::string("*") : wanted.front()) << " " << token << "\n";
      if (!request) {
        err << "tlsbridge acme: cannot write " << temp << "\n";
        return 1;
      }
    }
    std::error_code ec;
    std::filesystem::rename(temp, file, ec);
    if (ec) {
      err << "tlsbridge acme: cannot write " << file.string() << ": " << ec.message() << "\n";
      return 1;
    }
  }
  const auto matches = [&](const acme_entry_status& e) {
    return wanted.empty() ||
           std::find(e.names.begin(), e.names.end(), wanted.front()) != e.names.end();
  };
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(vm["timeout"].as<unsigned>());
  while (std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    const auto entries = current(*cfg);
    bool done = true;
    for (const auto& e : entries)
      if (matches(e) && e.request != token) done = false;
    if (!done) continue;
    bool ok = true;
    std::vector<acme_entry_status> shown;
    for (const auto& e : entries)
      if (matches(e)) {
        shown.push_back(e);
        ok = ok && e.result == "ok";
      }
    print_table(shown, out);
    return ok ? 0 : 1;
  }
  err << "tlsbridge acme: no result within " << vm["timeout"].as<unsigned>()
      << " s (the request stays in " << acme_request_path(*cfg->acme).string() << ")\n";
  return 1;
}

}  // namespace tlsbridge::proxy
