#include "certs/own_cert_check.hpp"

#include <openssl/err.h>
#include <openssl/pem.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>

#include "certs/chain_collector.hpp"
#include "certs/tls_context.hpp"
#include "policy/chain_evidence.hpp"

namespace tlsbridge::certs {
namespace {

// README, "What works today": an own certificate expiring within 30 days only warns.
constexpr std::int64_t warn_before_expiry = 30 * 24 * 3600;

struct x509_free_fn {
  void operator()(X509* x) const { X509_free(x); }
};
using x509_ptr = std::unique_ptr<X509, x509_free_fn>;
struct pkey_free_fn {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_free_fn>;
struct bio_free_fn {
  void operator()(BIO* b) const { BIO_free(b); }
};
using bio_ptr = std::unique_ptr<BIO, bio_free_fn>;

// Reads the whole file, so "cannot read" carries errno's reason rather than OpenSSL's.
bool read_file(const std::filesystem::path& path, std::string& out, std::string& why) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    why = std::strerror(errno);
    return false;
  }
  out.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  if (in.bad()) {
    why = "read error";
    return false;
  }
  return true;
}

bio_ptr memory_bio(const std::string& text) {
  return bio_ptr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

std::vector<x509_ptr> parse_certificates(const std::string& pem) {
  std::vector<x509_ptr> certs;
  bio_ptr bio = memory_bio(pem);
  while (X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) certs.emplace_back(x);
  ERR_clear_error();  // the loop always ends on "no start line"
  return certs;
}

std::string day_text(std::int64_t epoch) {
  return policy::format_rfc3339_seconds(epoch).substr(0, 10);
}

class entry_checker {
 public:
  entry_checker(const config::config& cfg, own_cert_report& report, std::size_t index)
      : cfg_(cfg), report_(report), prefix_("certs[" + std::to_string(index) + "]") {}

  void check(const config::cert_entry& entry, std::int64_t now) {
    const std::string cert_file = entry.cert.string();
    const std::string key_file = entry.key.string();
    std::vector<x509_ptr> chain;
    std::string text;
    std::string why;
    if (!read_file(entry.cert, text, why)) {
      error(".cert", "cannot read certificate " + cert_file + ": " + why);
    } else {
      chain = parse_certificates(text);
      if (chain.empty()) error(".cert", "no PEM certificate in " + cert_file);
    }

    pkey_ptr key;
    if (!read_file(entry.key, text, why)) {
      error(".key", "cannot read key " + key_file + ": " + why);
    } else {
      ERR_clear_error();
      bio_ptr bio = memory_bio(text);
      key.reset(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
      if (!key) {
        error(".key", "no usable PEM private key in " + key_file + " (" +
                          last_openssl_error("unknown error") + ")");
      }
    }
    if (chain.empty()) return;

    if (key && X509_check_private_key(chain.front().get(), key.get()) != 1) {
      ERR_clear_error();
      error(".key", "key " + key_file + " does not match certificate " + cert_file);
    }

    for (std::size_t depth = 0; depth < chain.size(); ++depth)
      judge(describe_certificate(chain[depth].get(), static_cast<int>(depth)), cert_file, now);
  }

 private:
  void judge(const policy::cert_evidence& c, const std::string& file, std::int64_t now) {
    const std::string what = c.depth == 0 ? "certificate " + file
                                          : "certificate " + file + " (chain depth " +
                                                std::to_string(c.depth) + ", " + c.subject + ")";
    if (c.not_after < now) {
      const std::string msg = what + " expired on " + day_text(c.not_after);
      // A leaf that has expired makes every handshake fail: refuse to start. An expired extra
      // certificate further up (an old cross-sign, say) only costs some clients: warn.
      if (c.depth == 0 && !cfg_.policy.allow_expired_own_cert) {
        error(".cert", msg);
      } else {
        warn(msg);
      }
    } else if (c.not_after - now < warn_before_expiry) {
      warn(what + " expires in " + std::to_string((c.not_after - now) / 86400) + " days, on " +
           day_text(c.not_after));
    }
    if (c.not_before > now) warn(what + " is not valid before " + day_text(c.not_before));

    const auto& weak = cfg_.policy.weak_signatures;
    const bool judged = !c.self_signed || cfg_.policy.check_anchor_signature;
    if (judged && !c.sig_hash.empty() &&
        std::find(weak.begin(), weak.end(), c.sig_hash) != weak.end()) {
      warn(what + " is signed with a weak hash (" + c.sig_alg + ")");
    }
    if ((c.key_type == "rsa" || c.key_type == "rsa-pss") && c.key_bits < cfg_.policy.min_rsa_bits)
      warn(what + " has a weak key (" + c.key_text() + ", policy minimum " +
           std::to_string(cfg_.policy.min_rsa_bits) + ")");
  }

  void error(const std::string& key_suffix, std::string message) {
    config::config_error e;
    e.file = cfg_.source.string();
    e.key = prefix_ + key_suffix;
    e.message = std::move(message);
    report_.errors.push_back(std::move(e));
  }

  void warn(const std::string& message) { report_.warnings.push_back(prefix_ + ": " + message); }

  const config::config& cfg_;
  own_cert_report& report_;
  std::string prefix_;
};

}  // namespace

own_cert_report check_own_certificates(const config::config& cfg) {
  own_cert_report report;
  const auto now =
      static_cast<std::int64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                    std::chrono::system_clock::now().time_since_epoch())
                                    .count());
  for (std::size_t i = 0; i < cfg.certs.size(); ++i)
    entry_checker(cfg, report, i).check(cfg.certs[i], now);
  return report;
}

}  // namespace tlsbridge::certs
