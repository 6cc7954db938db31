// ASCII case folding and comparison, the one copy every folder uses (config, policy, protocols,
// certs, acme): DNS names, header and command words, hex. Bytes outside A-Z/a-z are left as they
// are, whatever the C locale says. Header-only and dependency-free, so acme/ and protocols/ may
// include it without linking anything.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace tlsbridge::ascii {

constexpr char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

constexpr char upper(char c) {
  return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c;
}

inline std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = lower(c);
  return out;
}

inline std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = upper(c);
  return out;
}

// In place, for a string the caller keeps (a config value being normalised).
inline void lower_in_place(std::string& s) {
  for (char& c : s) c = lower(c);
}

constexpr bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

constexpr bool istarts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

}  // namespace tlsbridge::ascii
