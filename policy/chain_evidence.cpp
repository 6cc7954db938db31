#include "policy/chain_evidence.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <ctime>

namespace tlsbridge::policy {

const char* to_string(verdict v) {
  switch (v) {
    case verdict::clean:
      return "clean";
    case verdict::logged:
      return "logged";
    case verdict::refused:
      return "refused";
  }
  return "refused";
}

std::string format_rfc3339_seconds(std::int64_t epoch_seconds) {
  const auto t = static_cast<std::time_t>(epoch_seconds);
  std::tm tm{};
  if (gmtime_r(&t, &tm) == nullptr) return {};
  char buf[32];
  const std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return std::string(buf, n);
}

boost::json::value chain_to_json(const chain_evidence& chain, const std::vector<finding>& findings,
                                 verdict v, std::optional<std::size_t> rule) {
  boost::json::array found;
  found.reserve(findings.size());
  for (const auto& f : findings)
    found.push_back(
        boost::json::object{{"kind", f.kind}, {"depth", f.depth}, {"detail", f.detail}});

  boost::json::array certs;
  certs.reserve(chain.certs.size());
  for (const auto& c : chain.certs) {
    certs.push_back(boost::json::object{{"subject", c.subject},
                                        {"issuer", c.issuer},
                                        {"sig_alg", c.sig_alg},
                                        {"key", c.key_text()},
                                        {"not_after", format_rfc3339_seconds(c.not_after)},
                                        {"sha256", c.sha256}});
  }
  return boost::json::object{
      {"verdict", to_string(v)},
      {"rule", rule ? boost::json::value(*rule) : boost::json::value("default")},
      {"findings", std::move(found)},
      {"certs", std::move(certs)}};
}

}  // namespace tlsbridge::policy
