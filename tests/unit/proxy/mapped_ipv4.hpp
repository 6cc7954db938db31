// Client addresses for the proxy's per-client tables in tests: the IPv4-mapped IPv6 form
// (RFC 4291 §2.5.5.2) every address is stored in, from a 32-bit number.
#pragma once

#include <array>
#include <cstdint>

namespace tlsbridge::test {

inline std::array<std::uint8_t, 16> mapped_ipv4(std::uint32_t n) {
  std::array<std::uint8_t, 16> k{};
  k[10] = k[11] = 0xff;
  k[12] = static_cast<std::uint8_t>(n >> 24);
  k[13] = static_cast<std::uint8_t>(n >> 16);
  k[14] = static_cast<std::uint8_t>(n >> 8);
  k[15] = static_cast<std::uint8_t>(n);
  return k;
}

}  // namespace tlsbridge::test
