#include "proxy/acme_state.hpp"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

#include "proxy/privileges.hpp"

namespace tlsbridge::proxy {

namespace {

namespace fs = std::filesystem;

template <class T, void (*F)(T*)>
struct freer {
  void operator()(T* p) const { F(p); }
};
using x509_ptr = std::unique_ptr<X509, freer<X509, X509_free>>;
using pkey_ptr = std::unique_ptr<EVP_PKEY, freer<EVP_PKEY, EVP_PKEY_free>>;
using bio_ptr = std::unique_ptr<BIO, freer<BIO, BIO_free_all>>;

std::optional<service_identity> owner_of(const std::string& service_user) {
  if (service_user.empty() || ::geteuid() != 0) return std::nullopt;
  return lookup_service_identity(service_user);
}

std::string read_file(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

acme_clock::time_point to_time_point(const ASN1_TIME* t) {
  struct tm tm {};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) return {};
  return acme_clock::from_time_t(timegm(&tm));
}

std::string pem_of(X509* cert) {
  bio_ptr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), cert);
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(len));
}

std::string pem_of(EVP_PKEY* key) {
  bio_ptr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(len));
}

bool is_placeholder(X509* cert) {
  char cn[256] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
  return std::strcmp(cn, acme_placeholder_cn) == 0;
}

// A self-signed P-256 certificate for `names`, valid 7 days, CN acme_placeholder_cn.
bool make_placeholder(const std::vector<std::string>& names, std::string& cert_pem,
                      std::string& key_pem) {
  pkey_ptr key(EVP_EC_gen("P-256"));
  x509_ptr cert(X509_new());
  if (!key || !cert) return false;
  unsigned char serial[16];
  RAND_bytes(serial, sizeof serial);
  serial[0] &= 0x7f;
  std::unique_ptr<BIGNUM, freer<BIGNUM, BN_free>> bn(BN_bin2bn(serial, sizeof serial, nullptr));
  X509_set_version(cert.get(), 2);
  BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert.get()));
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -60);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 7L * 24 * 3600);
  X509_NAME* subject = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_NID(subject, NID_commonName, MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(acme_placeholder_cn), -1, -1,
                             0);
  X509_set_issuer_name(cert.get(), subject);
  X509_set_pubkey(cert.get(), key.get());
  std::string san;
  for (const auto& n : names) san += (san.empty() ? "DNS:" : ",DNS:") + n;
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert.get(), cert.get(), nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_alt_name, san.c_str());
  if (ext == nullptr) return false;
  X509_add_ext(cert.get(), ext, -1);
  X509_EXTENSION_free(ext);
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0) return false;
  cert_pem = pem_of(cert.get());
  key_pem = pem_of(key.get());
  return true;
}

}  // namespace

std::filesystem::path acme_status_path(const config::acme_config& acme) {
  return acme.state_dir / "status.json";
}
std::filesystem::path acme_request_path(const config::acme_config& acme) {
  return acme.state_dir / "renew.request";
}

std::string ensure_acme_state_dir(const config::acme_config& acme,
                                  const std::string& service_user) {
  std::error_code ec;
  fs::create_directories(acme.state_dir, ec);
  if (ec) return acme.state_dir.string() + ": cannot create [acme] state_dir: " + ec.message();
  // Changed only where it differs: at every start after the first the directory is the service
  // user's already, and root under the unit's CapabilityBoundingSet= (no CAP_FOWNER) may not
  // chmod what it does not own.
  struct stat st {};
  if (::stat(acme.state_dir.c_str(), &st) != 0)
    return acme.state_dir.string() + ": " + std::strerror(errno);
  if ((st.st_mode & 07777) != 0700 && ::chmod(acme.state_dir.c_str(), 0700) != 0)
    return acme.state_dir.string() + ": chmod 0700: " + std::strerror(errno);
  if (auto who = owner_of(service_user))
    if ((st.st_uid != who->uid || st.st_gid != who->gid) &&
        ::chown(acme.state_dir.c_str(), who->uid, who->gid) != 0)
      return acme.state_dir.string() + ": chown " + service_user + ": " + std::strerror(errno);
  return {};
}

std::string write_private_file(const fs::path& file, const std::string& text,
                               const std::string& service_user) {
  const fs::path temp = file.string() + ".tmp";
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return temp.string() + ": " + std::strerror(errno);
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string error = temp.string() + ": write: " + std::strerror(errno);
      ::close(fd);
      ::unlink(temp.c_str());
      return error;
    }
    done += static_cast<std::size_t>(n);
  }
  ::fchmod(fd, 0600);
  if (auto who = owner_of(service_user)) {
    if (::fchown(fd, who->uid, who->gid) != 0) {
      ::close(fd);
      ::unlink(temp.c_str());
      return temp.string() + ": chown " + service_user + ": " + std::strerror(errno);
    }
  }
  const bool synced = ::fsync(fd) == 0;
  ::close(fd);
  if (!synced || ::rename(temp.c_str(), file.c_str()) != 0) {
    const std::string error = file.string() + ": " + std::strerror(errno);
    ::unlink(temp.c_str());
    return error;
  }
  return {};
}

std::optional<served_certificate> read_served_certificate(const fs::path& cert_file,
                                                          const fs::path& key_file,
                                                          const std::vector<std::string>& names) {
  const std::string cert_pem = read_file(cert_file);
  const std::string key_pem = read_file(key_file);
  if (cert_pem.empty() || key_pem.empty()) return std::nullopt;
  bio_ptr cert_bio(BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size())));
  bio_ptr key_bio(BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size())));
  x509_ptr cert(PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr));
  pkey_ptr key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  if (!cert || !key || X509_check_private_key(cert.get(), key.get()) != 1) return std::nullopt;
  for (const auto& name : names)
    if (X509_check_host(cert.get(), name.c_str(), name.size(), X509_CHECK_FLAG_NO_WILDCARDS,
                        nullptr) != 1)
      return std::nullopt;
  served_certificate out;
  out.not_before = to_time_point(X509_get0_notBefore(cert.get()));
  out.not_after = to_time_point(X509_get0_notAfter(cert.get()));
  out.placeholder = is_placeholder(cert.get());
  if (out.not_after <= acme_clock::now()) return std::nullopt;
  return out;
}

std::vector<std::string> prepare_acme_state(const config::config& cfg) {
  std::vector<std::string> problems;
  if (!cfg.acme) return problems;
  bool any = false;
  for (const auto& c : cfg.certs) any = any || c.is_acme();
  if (!any) return problems;
  if (auto e = ensure_acme_state_dir(*cfg.acme, cfg.server.user); !e.empty()) {
    problems.push_back(std::move(e));
    return problems;
  }
  for (const auto& c : cfg.certs) {
    if (!c.is_acme() || read_served_certificate(c.cert, c.key, c.acme)) continue;
    std::string cert_pem, key_pem;
    if (!make_placeholder(c.acme, cert_pem, key_pem)) {
      problems.push_back(c.cert.string() + ": cannot make the placeholder certificate");
      continue;
    }
    auto e = write_private_file(c.key, key_pem, cfg.server.user);
    if (e.empty()) e = write_private_file(c.cert, cert_pem, cfg.server.user);
    if (!e.empty()) problems.push_back(std::move(e));
  }
  return problems;
}

std::string install_acme_certificate(const config::acme_config& /*acme*/,
                                     const config::cert_entry& entry, const std::string& key_pem,
                                     const std::string& chain_pem,
                                     const std::string& service_user) {
  // The library checked that the leaf matches the key and covers the names; checked again here
  // on what is about to be served, since a mismatch would fail every handshake.
  const fs::path cert_temp = entry.cert.string() + ".new";
  const fs::path key_temp = entry.key.string() + ".new";
  if (auto e = write_private_file(key_temp, key_pem, service_user); !e.empty()) return e;
  if (auto e = write_private_file(cert_temp, chain_pem, service_user); !e.empty()) return e;
  const auto checked = read_served_certificate(cert_temp, key_temp, entry.acme);
  if (!checked || checked->placeholder) {
    fs::remove(cert_temp);
    fs::remove(key_temp);
    return "the new certificate does not match its key or its names; the old one stays";
  }
  if (::rename(key_temp.c_str(), entry.key.c_str()) != 0 ||
      ::rename(cert_temp.c_str(), entry.cert.c_str()) != 0)
    return entry.cert.string() + ": " + std::strerror(errno);
  return {};
}

std::string load_or_create_account_key(const config::acme_config& acme,
                                       const std::string& service_user, std::string (*generate)(),
                                       std::string& error) {
  const fs::path file = acme.state_dir / "account.key";
  std::string pem = read_file(file);
  if (!pem.empty()) return pem;
  pem = generate();
  if (pem.empty()) {
    error = "cannot generate the account key";
    return {};
  }
  error = write_private_file(file, pem, service_user);
  return error.empty() ? pem : std::string{};
}

}  // namespace tlsbridge::proxy
