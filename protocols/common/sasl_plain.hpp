// The login name inside a SASL PLAIN message (RFC 4616: authzid NUL authcid NUL passwd), given
// base64 as IMAP AUTHENTICATE and POP3 AUTH carry it. Only for the audit record's `user`; the
// password is never kept. Anything that is not valid base64 PLAIN yields nullopt.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace tlsbridge::protocols {

inline std::optional<std::string> sasl_plain_user(std::string_view base64) {
  std::string decoded;
  unsigned bits = 0;
  int count = 0;
  for (char c : base64) {
    int v;
    if (c >= 'A' && c <= 'Z')
      v = c - 'A';
    else if (c >= 'a' && c <= 'z')
      v = c - 'a' + 26;
    else if (c >= '0' && c <= '9')
      v = c - '0' + 52;
    else if (c == '+')
      v = 62;
    else if (c == '/')
      v = 63;
    else if (c == '=')
      break;
    else
      return std::nullopt;
    bits = (bits << 6) | static_cast<unsigned>(v);
    count += 6;
    if (count >= 8) {
      count -= 8;
      decoded.push_back(static_cast<char>((bits >> count) & 0xff));
    }
    if (decoded.size() > 4096) return std::nullopt;
  }
  auto first = decoded.find('\0');
  if (first == std::string::npos) return std::nullopt;
  auto second = decoded.find('\0', first + 1);
  if (second == std::string::npos) return std::nullopt;
  return decoded.substr(first + 1, second - first - 1);
}

}  // namespace tlsbridge::protocols
