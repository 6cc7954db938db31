// Value syntaxes of the config file. Every parser is strict: a unit is always required, no signs,
// no whitespace, no silent truncation on overflow, so that a typo is an error at load time rather
// than a surprising value at run time.
#include "config/value_parsers.hpp"

#include <arpa/inet.h>

#include <cstring>
#include <limits>
#include <string>
#include <utility>

namespace tlsbridge::config {
namespace {

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_alnum(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

// Splits "123unit" into 123 and "unit". Fails on no leading digits or on uint64 overflow.
std::optional<std::pair<std::uint64_t, std::string_view>> split_number(std::string_view text) {
  std::uint64_t value = 0;
  std::size_t i = 0;
  for (; i < text.size() && is_digit(text[i]); ++i) {
    const unsigned digit = static_cast<unsigned>(text[i] - '0');
    if (value > (std::numeric_limits<std::uint64_t>::max() - digit) / 10) return std::nullopt;
    value = value * 10 + digit;
  }
  if (i == 0) return std::nullopt;
  return std::pair{value, text.substr(i)};
}

struct unit {
  std::string_view name;
  std::uint64_t factor;
};

std::optional<std::uint64_t> parse_with_units(std::string_view text,
                                              std::initializer_list<unit> units,
                                              std::uint64_t max) {
  const auto split = split_number(text);
  if (!split) return std::nullopt;
  for (const unit& u : units) {
    if (split->second != u.name) continue;
    if (split->first > max / u.factor) return std::nullopt;
    return split->first * u.factor;
  }
  return std::nullopt;
}

std::optional<std::uint16_t> parse_port(std::string_view text) {
  if (text.empty() || text.size() > 5) return std::nullopt;
  const auto split = split_number(text);
  if (!split || !split->second.empty() || split->first > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(split->first);
}

// A DNS name as it may appear in a backend address: letters, digits, '-', '_', non-empty labels.
// Something made only of digits and dots is meant as IPv4 and must be a valid one ("10.0.0.256").
bool is_host_name(std::string_view host) {
  if (host.empty()) return false;
  bool only_digits_and_dots = true;
  std::size_t label_len = 0;
  for (std::size_t i = 0; i <= host.size(); ++i) {
    if (i == host.size() || host[i] == '.') {
      if (label_len == 0) return false;
      label_len = 0;
      continue;
    }
    const char c = host[i];
    if (!is_alnum(c) && c != '-' && c != '_') return false;
    if (c == '-' && label_len == 0) return false;
    if (!is_digit(c)) only_digits_and_dots = false;
    ++label_len;
  }
  if (only_digits_and_dots) {
    in_addr v4{};
    return inet_pton(AF_INET, std::string(host).c_str(), &v4) == 1;
  }
  return true;
}

}  // namespace

std::optional<duration> parse_duration(std::string_view text) {
  constexpr std::uint64_t max =
      static_cast<std::uint64_t>(std::numeric_limits<duration::rep>::max());
  const auto ms = parse_with_units(
      text, {{"ms", 1}, {"s", 1000}, {"m", 60'000}, {"h", 3'600'000}, {"d", 86'400'000}}, max);
  if (!ms) return std::nullopt;
  return duration{static_cast<duration::rep>(*ms)};
}

std::optional<std::uint64_t> parse_size(std::string_view text) {
  return parse_with_units(text,
                          {{"B", 1}, {"KiB", 1ull << 10}, {"MiB", 1ull << 20}, {"GiB", 1ull << 30}},
                          std::numeric_limits<std::uint64_t>::max());
}

std::optional<endpoint> parse_endpoint(std::string_view text) {
  endpoint result;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {
    // "[v6]:port" (RFC 3986 §3.2.2 bracket syntax): the only way to put a port after a v6 address.
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return std::nullopt;
    result.host = std::string(text.substr(1, close - 1));
    in6_addr v6{};
    if (inet_pton(AF_INET6, result.host.c_str(), &v6) != 1) return std::nullopt;
    port_text = text.substr(close + 2);
  } else {
    const auto colon = text.find(':');
    // A second colon means an unbracketed v6 address: "::1:25" is ambiguous, so refuse it.
    if (colon == std::string_view::npos || text.find(':', colon + 1) != std::string_view::npos)
      return std::nullopt;
    result.host = std::string(text.substr(0, colon));
    if (!is_host_name(result.host)) return std::nullopt;
    port_text = text.substr(colon + 1);
  }
  const auto port = parse_port(port_text);
  if (!port) return std::nullopt;
  result.port = *port;
  return result;
}

std::string endpoint::to_string() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
  return host + ":" + std::to_string(port);
}

std::optional<int> parse_tls_version(std::string_view text) {
  if (text == "TLS1.0") return tls1_0;
  if (text == "TLS1.1") return tls1_1;
  if (text == "TLS1.2") return tls1_2;
  if (text == "TLS1.3") return tls1_3;
  return std::nullopt;
}

std::optional<std::array<std::uint8_t, 16>> parse_ip(std::string_view text) {
  // inet_pton needs a NUL-terminated string and rejects scope ids ("fe80::1%eth0"), which have no
  // meaning in an access list anyway.
  const std::string s(text);
  std::array<std::uint8_t, 16> out{};
  in_addr v4{};
  if (inet_pton(AF_INET, s.c_str(), &v4) == 1) {
    out[10] = out[11] = 0xff;  // ::ffff:a.b.c.d (RFC 4291 §2.5.5.2)
    std::memcpy(out.data() + 12, &v4, 4);
    return out;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, s.c_str(), &v6) == 1) {
    std::memcpy(out.data(), &v6, 16);
    return out;
  }
  return std::nullopt;
}

std::optional<cidr> parse_cidr(std::string_view text) {
  const auto slash = text.find('/');
  const auto address = parse_ip(text.substr(0, slash));
  if (!address) return std::nullopt;
  const bool v4 = text.substr(0, slash).find(':') == std::string_view::npos;
  cidr result;
  result.network = *address;
  result.prefix_len = 128;
  if (slash != std::string_view::npos) {
    const auto prefix_text = text.substr(slash + 1);
    const auto split = split_number(prefix_text);
    if (!split || !split->second.empty() || prefix_text.size() > 3) return std::nullopt;
    if (split->first > (v4 ? 32u : 128u)) return std::nullopt;
    result.prefix_len = static_cast<unsigned>(split->first) + (v4 ? 96u : 0u);
  }
  // "10.1.2.3/8" is taken as "10.0.0.0/8": clear the host bits so contains() compares whole bytes.
  for (unsigned bit = result.prefix_len; bit < 128; ++bit)
    result.network[bit / 8] &= static_cast<std::uint8_t>(~(0x80u >> (bit % 8)));
  return result;
}

bool cidr::contains(const std::array<std::uint8_t, 16>& address) const {
  const unsigned full_bytes = prefix_len / 8;
  if (std::memcmp(network.data(), address.data(), full_bytes) != 0) return false;
  const unsigned rest = prefix_len % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<std::uint8_t>(0xffu << (8 - rest));
  return (network[full_bytes] & mask) == (address[full_bytes] & mask);
}

}  // namespace tlsbridge::config
