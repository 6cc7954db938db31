// RFC 5234 §B.1 character classes the protocol grammars share.
#pragma once

#include <algorithm>
#include <string_view>

namespace tlsbridge::protocols {

// CTL: %x00-1F / %x7F. No mail or HTTP command line may carry one: a tolerant server may end a
// word or the line at it (Postfix splits words at TAB) or drop it (NUL).
inline bool is_ctl(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u < 0x20 || u == 0x7f;
}

inline bool has_ctl(std::string_view s) {
  return std::any_of(s.begin(), s.end(), is_ctl);
}

}  // namespace tlsbridge::protocols
