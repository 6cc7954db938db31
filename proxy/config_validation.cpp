#include "proxy/config_validation.hpp"

#include <sys/stat.h>

#include "certs/own_cert_check.hpp"
#include "certs/tls_context.hpp"
#include "config/config_loader.hpp"
#include "config/value_parsers.hpp"
#include "proxy/acme_state.hpp"
#include "proxy/back_leg_source.hpp"
#include "proxy/listener.hpp"
#include "proxy/output_file.hpp"
#include "proxy/privileges.hpp"

namespace tlsbridge::proxy {

namespace {

void check_permissions(const config::config& cfg, bool reloading, validation_report& report) {
  struct stat st {};
  if (::stat(cfg.source.c_str(), &st) == 0 && (st.st_mode & S_IWOTH))
    report.errors.push_back(cfg.source.string() +
                            ": the configuration file is world-writable; refusing it "
                            "(chmod o-w)");
  // Files the proxy writes (SECURITY.md): opened as root, so neither the file nor any
  // directory above it may be something another user can aim elsewhere (proxy/output_file).
  const auto owners = owners_for(cfg.server.user);
  const auto check_output = [&](const std::filesystem::path& path, const std::string& key) {
    auto problems = check_output_path(path, owners);
    if (problems.empty() && !reloading) {
      if (auto problem = check_writable(path); !problem.empty())
        problems.push_back(std::move(problem));
    }
    for (auto& problem : problems)
      report.errors.push_back(config::error_at_key(cfg, key, problem).to_string());
  };
  if (cfg.audit.path != "-" && cfg.audit.path != "syslog")
    check_output(cfg.audit.path, "audit.path");
  if (!cfg.log.file.empty()) check_output(cfg.log.file, "log.file");
  for (const auto& c : cfg.certs) {
    if (::stat(c.key.c_str(), &st) == 0 && (st.st_mode & (S_IRGRP | S_IROTH)) && st.st_uid == 0 &&
        (st.st_mode & S_IROTH))
      report.warnings.push_back(c.key.string() +
                                ": private key is readable by every user (chmod 600 or 640)");
  }
  for (auto& warning : unreadable_after_drop(cfg)) report.warnings.push_back(std::move(warning));
}

// Every TLS profile is built into a context once, so a cipher string OpenSSL refuses is reported
// once, at its line, however many listeners use the profile (and also when none does yet).
// False when any profile is bad.
bool check_tls_profiles(const config::config& cfg, validation_report& report) {
  bool good = true;
  for (const auto& [name, profile] : cfg.tls_profiles)
    if (auto error = certs::check_profile(profile)) {
      const std::string key = "tls.profiles." + name + (error->key.empty() ? "" : "." + error->key);
      report.errors.push_back(config::error_at_key(cfg, key, error->message).to_string());
      good = false;
    }
  return good;
}

// A trusted_proxies entry written in IPv6 that spans ::ffff:0:0/96 (e.g. "::/0", "::/64") also
// trusts every IPv4 source, because IPv4 clients are stored as IPv4-mapped addresses (RFC 4291
// §2.5.5.2) — so any IPv4 host could claim any client address in a PROXY header.
void check_trusted_proxies(const config::config& cfg, validation_report& report) {
  const auto v4_mapped_any = config::parse_ip("0.0.0.0");
  for (const auto& l : cfg.listeners)
    for (const auto& text : l.trusted_proxies) {
      const auto block = config::parse_cidr(text);
      if (!block || text.find(':') == std::string::npos || block->prefix_len > 96 ||
          !v4_mapped_any || !block->contains(*v4_mapped_any))
        continue;
      report.warnings.push_back("listener " + l.name + ": trusted_proxies entry \"" + text +
                                "\" also covers every IPv4 address (::ffff:0:0/96): any IPv4 "
                                "host may send PROXY headers; list IPv4 proxies as IPv4 CIDRs");
    }
}

// The admin endpoint has no authentication and tells whoever asks which listeners, backends and
// certificates there are: on anything but loopback that is a map of the legacy host for free.
void check_admin_exposure(const config::config& cfg, validation_report& report) {
  if (cfg.admin.listen.empty()) return;
  const auto ep = config::parse_endpoint(cfg.admin.listen);
  if (!ep) return;  // the loader already reported it
  const auto ip = config::parse_ip(ep->host);
  const auto loopback4 = config::parse_cidr("127.0.0.0/8");
  const auto loopback6 = config::parse_cidr("::1/128");
  if (ip && ((loopback4 && loopback4->contains(*ip)) || (loopback6 && loopback6->contains(*ip))))
    return;
  report.warnings.push_back("[admin] listen = \"" + cfg.admin.listen +
                            "\" is not a loopback address: the admin endpoint has no "
                            "authentication; keep it on 127.0.0.1 or firewall it");
}

// SECURITY.md: smtp_bare_lf = "pass" relays a bare LF in message data as it came; a backend that
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

validation_report load_and_validate(const std::filesystem::path& path, bool reloading) {
  validation_report report;
  std::shared_ptr<const config::config> cfg;
  try {
    cfg = config::load_config(path);
  } catch (const config::config_load_error& e) {
    for (const auto& err : e.errors()) report.errors.push_back(err.to_string());
    return report;
  }
  // acme entries: state_dir exists and each has a certificate to serve (the placeholder before
  // the first order), so the checks below and the listeners have files to load.
  for (auto& problem : prepare_acme_state(*cfg)) report.errors.push_back(std::move(problem));
  check_permissions(*cfg, reloading, report);
  check_trusted_proxies(*cfg, report);
  check_admin_exposure(*cfg, report);
  check_smtp_bare_lf(*cfg, report);
  for (auto& error : check_back_leg_sources(*cfg)) report.errors.push_back(std::move(error));
  auto own = certs::check_own_certificates(*cfg);
  report.warnings.insert(report.warnings.end(), own.warnings.begin(), own.warnings.end());
  for (const auto& err : own.errors) report.errors.push_back(err.to_string());
  // Listeners build contexts from the profiles: a bad profile would be reported again by each.
  const bool profiles_good = check_tls_profiles(*cfg, report);
  if (own.errors.empty() && profiles_good) {
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
