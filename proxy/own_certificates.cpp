#include "proxy/own_certificates.hpp"

#include <openssl/pem.h>

#include <algorithm>
#include <cstdio>

#include "certs/chain_collector.hpp"

namespace tlsbridge::proxy {

std::vector<own_certificate> read_own_certificates(const config::config& cfg) {
  std::vector<own_certificate> out;
  for (const auto& entry : cfg.certs) {
    std::FILE* f = std::fopen(entry.cert.c_str(), "r");
    if (!f) continue;
    X509* cert = PEM_read_X509(f, nullptr, nullptr, nullptr);
    std::fclose(f);
    if (!cert) continue;
    auto evidence = certs::describe_certificate(cert, 0);
    X509_free(cert);
    out.push_back({entry.cert.string(), evidence.subject, evidence.not_after});
  }
  return out;
}

void record_certificate_expiry(const std::vector<own_certificate>& certs, metrics& m) {
  for (const auto& c : certs)
    m.set("tlsbridge_certificate_not_after_timestamp_seconds",
          {{"file", c.file}, {"subject", c.subject}}, static_cast<double>(c.not_after));
}

void record_certificate_expiry(const std::vector<own_certificate>& previous,
                               const std::vector<own_certificate>& current, metrics& m) {
  for (const auto& old : previous) {
    const bool kept = std::any_of(current.begin(), current.end(), [&](const own_certificate& c) {
      return c.file == old.file && c.subject == old.subject;
    });
    if (!kept)
      m.remove("tlsbridge_certificate_not_after_timestamp_seconds",
               {{"file", old.file}, {"subject", old.subject}});
  }
  record_certificate_expiry(current, m);
}

std::int64_t days_left(const own_certificate& c, std::int64_t now) {
  const std::int64_t seconds = c.not_after - now;
  constexpr std::int64_t day = 86400;
  return seconds >= 0 ? seconds / day : -((-seconds + day - 1) / day);
}

}  // namespace tlsbridge::proxy
