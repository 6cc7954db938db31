#include "proxy/refusal_reason.hpp"

#include <string_view>

namespace tlsbridge::proxy {

namespace {

bool refused_chain(const policy::decision* d) {
  return d && d->result == policy::verdict::refused;
}

// OpenSSL's reasons (ssl/ssl_err.c) for a ClientHello the front profile does not accept.
const char* handshake_refusal(std::string_view error) {
  for (std::string_view version_words :
       {"unsupported protocol", "version too low", "protocol version", "no protocols available"})
    if (error.find(version_words) != std::string_view::npos) return "tls_version";
  if (error.find("no shared cipher") != std::string_view::npos) return "tls_cipher";
  return nullptr;
}

}  // namespace

std::vector<refusal> refusals_of(const connection_record& r) {
  std::vector<refusal> out;
  const bool admission = r.what == outcome::limit || r.what == outcome::denied;
  if (admission && !r.refused_by.empty()) {
    out.push_back({r.refused_by, r.reason});
  } else if (r.what == outcome::refused_policy && r.back && refused_chain(r.back->decision)) {
    out.push_back({"backend_certificate", r.reason, 1, true});
  } else if (r.what == outcome::refused_policy && refused_chain(r.front.decision)) {
    out.push_back({"client_certificate", r.reason, 1, true});
  } else if (r.what == outcome::tls_failed && !r.front.tls) {
    if (const char* why = handshake_refusal(r.front.tls_error)) out.push_back({why, r.reason});
  }
  for (const auto& [rule, n] : r.refusals)
    out.push_back({rule, std::to_string(n) + (n == 1 ? " request" : " requests"), n});
  return out;
}

}  // namespace tlsbridge::proxy
