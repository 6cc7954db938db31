// The files of [acme] state_dir: what the proxy serves for each `acme` entry of [[certs]]
// (<first name>.crt, leaf first, and <first name>.key), the account key (account.key), the
// service's report (status.json) and a renewal request from `tlsbridge acme renew`
// (renew.request). The directory is 0700, every file 0600, owned by [server] user when the
// process runs as root (it drops to that user later and must still write there). Certificates
// are written atomically (a temporary file in the same directory, then rename), key first, so a
// reader sees the old pair or the new one.
#pragma once

#include <boost/json/object.hpp>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "proxy/acme_schedule.hpp"

namespace tlsbridge::proxy {

// The subject CN of the stand-in served before the first certificate: named so that whoever
// looks at it knows what it is.
inline constexpr const char* acme_placeholder_cn = "tlsbridge ACME placeholder (not yet issued)";

// Creates state_dir (0700) if needed, owned by `service_user` when we are root. "" or a reason.
std::string ensure_acme_state_dir(const config::acme_config& acme, const std::string& service_user);

// The dates of the certificate at `cert` if it is readable, matches `key` and covers `names`;
// nothing otherwise.
std::optional<served_certificate> read_served_certificate(const std::filesystem::path& cert,
                                                          const std::filesystem::path& key,
                                                          const std::vector<std::string>& names);

// For every `acme` entry without a usable certificate: a self-signed placeholder for its names
// (P-256, valid 7 days) so listeners start and the challenge can be answered. Returns problems
// (one line each), empty when all is well.
std::vector<std::string> prepare_acme_state(const config::config& cfg);

// Atomically installs a key and chain (PEM) as the entry's files. "" or a reason.
std::string install_acme_certificate(const config::acme_config& acme,
                                     const config::cert_entry& entry, const std::string& key_pem,
                                     const std::string& chain_pem, const std::string& service_user);

// The account key (state_dir/account.key), created once with `generate` and kept.
std::string load_or_create_account_key(const config::acme_config& acme,
                                       const std::string& service_user, std::string (*generate)(),
                                       std::string& error);

// Writes `text` to `file` atomically, mode 0600, owned by `service_user` when we are root.
std::string write_private_file(const std::filesystem::path& file, const std::string& text,
                               const std::string& service_user);

std::filesystem::path acme_status_path(const config::acme_config& acme);
std::filesystem::path acme_request_path(const config::acme_config& acme);

}  // namespace tlsbridge::proxy
