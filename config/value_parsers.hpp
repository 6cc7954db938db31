// Pure parsers for the value syntaxes of the config file: durations ("500ms", "10s", "5m", "1h"),
// sizes ("64KiB", "10MiB"), "host:port" endpoints, CIDR blocks and TLS version names. Each returns
// std::nullopt on bad input; the loader turns that into a positioned error.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

#include "config/config.hpp"

namespace tlsbridge::config {

std::optional<duration> parse_duration(std::string_view text);
std::optional<std::uint64_t> parse_size(std::string_view text);
std::optional<endpoint> parse_endpoint(std::string_view text);
std::optional<int> parse_tls_version(std::string_view text);  // "TLS1.0".."TLS1.3"

// An address block; v4 addresses are stored as v4-mapped v6 so one matcher serves both.
struct cidr {
  std::array<std::uint8_t, 16> network{};
  unsigned prefix_len = 0;  // in the 128-bit space
  bool contains(const std::array<std::uint8_t, 16>& address) const;
};
std::optional<cidr> parse_cidr(std::string_view text);  // "10.0.0.0/8", "::/0", "192.0.2.1"
std::optional<std::array<std::uint8_t, 16>> parse_ip(std::string_view text);

}  // namespace tlsbridge::config
