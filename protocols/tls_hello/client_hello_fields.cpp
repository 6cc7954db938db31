#include "protocols/tls_hello/client_hello_fields.hpp"

#include <cstdio>

namespace tlsbridge::protocols::tls_hello {

namespace {

std::uint16_t u16(std::string_view s, std::size_t at) {
  return static_cast<std::uint16_t>((static_cast<unsigned char>(s[at]) << 8) |
                                    static_cast<unsigned char>(s[at + 1]));
}

}  // namespace

std::uint16_t max_supported_version(std::string_view body) {
  if (body.empty()) return 0;
  const std::size_t len = static_cast<unsigned char>(body[0]);
  if (len + 1 != body.size() || len % 2 != 0) return 0;
  std::uint16_t best = 0;
  for (std::size_t i = 1; i + 1 < body.size(); i += 2) {
    const auto v = u16(body, i);
    if (!is_grease(v) && v > best) best = v;
  }
  return best;
}

std::uint16_t max_offered_version(std::uint16_t legacy_version,
                                  std::string_view supported_versions) {
  const auto from_extension = max_supported_version(supported_versions);
  return from_extension ? from_extension : legacy_version;
}

std::string server_name(std::string_view body) {
  // ServerNameList: a two-byte length, then entries of type (1), length (2), name.
  if (body.size() < 2 || u16(body, 0) + 2u != body.size()) return {};
  std::size_t at = 2;
  while (at + 3 <= body.size()) {
    const unsigned type = static_cast<unsigned char>(body[at]);
    const std::size_t len = u16(body, at + 1);
    if (at + 3 + len > body.size()) return {};
    if (type == 0) return std::string(body.substr(at + 3, len));  // host_name
    at += 3 + len;
  }
  return {};
}

std::string version_name(std::uint16_t version) {
  switch (version) {
    case 0x0300:
      return "SSLv3";
    case 0x0301:
      return "TLSv1";
    case 0x0302:
      return "TLSv1.1";
    case 0x0303:
      return "TLSv1.2";
    case 0x0304:
      return "TLSv1.3";
    default: {
      char text[8];
      std::snprintf(text, sizeof text, "0x%04x", version);
      return text;
    }
  }
}

}  // namespace tlsbridge::protocols::tls_hello
