#include "proxy/config_validation.hpp"

#include <sys/stat.h>

#include "certs/own_cert_check.hpp"
#include "config/config_loader.hpp"
#include "proxy/listener.hpp"

namespace tlsbridge::proxy {

namespace {

void check_permissions(const config::config& cfg, validation_report& report) {
  struct stat st {};
  if (::stat(cfg.source.c_str(), &st) == 0 && (st.st_mode & S_IWOTH))
    report.errors.push_back(cfg.source.string() +
                            ": the configuration file is world-writable; refusing it "
                            "(chmod o-w)");
  for (const auto& c : cfg.certs) {
    if (::stat(c.key.c_str(), &st) == 0 && (st.st_mode & (S_IRGRP | S_IROTH)) && st.st_uid == 0 &&
        (st.st_mode & S_IROTH))
      report.warnings.push_back(c.key.string() +
                                ": private key is readable by every user (chmod 600 or 640)");
  }
}

// SPEC §7.1: smtp_bare_lf = "pass" relays a bare LF in message data as it came; a backend that
// ends lines at a bare LF then sees "<LF>.<LF>" as the end of data and the rest as new commands
// the proxy never judged (SMTP smuggling, CVE-2023-51764).
void check_smtp_bare_lf(const config::config& cfg, validation_report& report) {
  for (const auto& l : cfg.listeners)
    if (l.protocol == config::protocol::smtp && l.smtp_bare_lf == config::bare_lf_mode::pass)
      report.warnings.push_back(
          cfg.source.string() + ": listener " + l.name +
          ": smtp_bare_lf = \"pass\" relays bare LF/CR in message data unchanged; a backend that "
          "ends lines at a bare LF then takes <LF>.<LF> for the end of data and runs what follows "
          "as commands the proxy never checked (SMTP smuggling, CVE-2023-51764). Use \"reject\" "
          "or \"normalize\"");
}

}  // namespace

validation_report load_and_validate(const std::filesystem::path& path) {
  validation_report report;
  std::shared_ptr<const config::config> cfg;
  try {
    cfg = config::load_config(path);
  } catch (const config::config_load_error& e) {
    for (const auto& err : e.errors()) report.errors.push_back(err.to_string());
    return report;
  }
  check_permissions(*cfg, report);
  check_smtp_bare_lf(*cfg, report);
  auto own = certs::check_own_certificates(*cfg);
  report.warnings.insert(report.warnings.end(), own.warnings.begin(), own.warnings.end());
  for (const auto& err : own.errors) report.errors.push_back(err.to_string());
  if (own.errors.empty()) {
    for (const auto& l : cfg->listeners) {
      try {
        make_listener_runtime(cfg, l, nullptr);
      } catch (const std::exception& e) {
        report.errors.push_back(cfg->source.string() + ": listener " + l.name + ": " + e.what());
      }
    }
  }
  if (report.errors.empty()) report.config = cfg;
  return report;
}

}  // namespace tlsbridge::proxy
