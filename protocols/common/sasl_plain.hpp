// The login name inside a SASL PLAIN message (RFC 4616: authzid NUL authcid NUL passwd), given
// base64 as IMAP AUTHENTICATE and POP3 AUTH carry it. Only for the audit record's `user`; the
// password is never kept. Anything that is not valid base64 PLAIN yields nullopt.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "protocols/common/base64.hpp"

namespace tlsbridge::protocols {

inline std::optional<std::string> sasl_plain_user(std::string_view base64) {
  if (base64.size() > 8192) return std::nullopt;  // no login name is that long
  const auto decoded = base64_decode(base64);
  if (!decoded) return std::nullopt;
  auto first = decoded->find('\0');
  if (first == std::string::npos) return std::nullopt;
  auto second = decoded->find('\0', first + 1);
  if (second == std::string::npos) return std::nullopt;
  return decoded->substr(first + 1, second - first - 1);
}

}  // namespace tlsbridge::protocols
