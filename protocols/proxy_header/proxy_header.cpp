#include "protocols/proxy_header/proxy_header.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstdio>

namespace tlsbridge::protocols::proxy_header {

namespace {

using status = result::status;

constexpr std::string_view v1_magic = "PROXY ";
// proxy-protocol.txt §2.2; the NUL at the 5th byte is why this is not a plain string literal.
constexpr std::string_view v2_signature{"\r\n\r\n\0\r\nQUIT\n", 12};

constexpr std::uint8_t v2_cmd_local = 0x0;
constexpr std::uint8_t v2_cmd_proxy = 0x1;
constexpr std::uint8_t v2_tcp4 = 0x11;
constexpr std::uint8_t v2_tcp6 = 0x21;
constexpr std::size_t v2_tcp4_block = 2 * 4 + 2 * 2;
constexpr std::size_t v2_tcp6_block = 2 * 16 + 2 * 2;

result need_more() {
  return {};
}

result fail(int version, std::string message) {
  result r;
  r.what = status::error;
  r.version = version;
  r.error = std::move(message);
  return r;
}

result done(int version, std::size_t consumed, std::optional<address> source = std::nullopt,
            std::optional<address> destination = std::nullopt) {
  result r;
  r.what = status::done;
  r.version = version;
  r.consumed = consumed;
  r.source = source;
  r.destination = destination;
  return r;
}

// Whether the bytes seen so far agree with `magic` (all of it, or as far as they go).
bool agrees_with(std::string_view in, std::string_view magic) {
  const std::size_t n = std::min(in.size(), magic.size());
  return in.substr(0, n) == magic.substr(0, n);
}

std::string hex_byte(std::uint8_t b) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02x", b);
  return buf;
}

// ---- v1 ----------------------------------------------------------------------------------------
//
// A field is checked twice: while it is still arriving (viable: can any continuation be valid?)
// and once a space, CR or LF ends it (complete). A field that is not viable fails with the same
// message as the complete check would, and viability only ever gets lost by adding bytes, so the
// answer never depends on how the line was split across reads.

enum class v1_field { protocol, source_address, destination_address, source_port, dest_port };

const char* field_name(v1_field f) {
  switch (f) {
    case v1_field::protocol:
      return "protocol";
    case v1_field::source_address:
      return "source address";
    case v1_field::destination_address:
      return "destination address";
    case v1_field::source_port:
      return "source port";
    case v1_field::dest_port:
      return "destination port";
  }
  return "field";
}

bool is_address(v1_field f) {
  return f == v1_field::source_address || f == v1_field::destination_address;
}

constexpr std::string_view v1_protocols[] = {"TCP4", "TCP6", "UNKNOWN"};
// The longest textual forms: "255.255.255.255" and an IPv6 address with an embedded IPv4 tail.
constexpr std::size_t max_ipv4_text = 15;
constexpr std::size_t max_ipv6_text = 45;

std::string field_error(v1_field f, bool ipv6) {
  const std::string name = field_name(f);
  if (f == v1_field::protocol) return "v1 protocol is not TCP4, TCP6 or UNKNOWN";
  if (is_address(f))
    return "v1 " + name + " is not a valid " + (ipv6 ? "IPv6" : "IPv4") + " address";
  // proxy-protocol.txt §2.1: "Heading zeroes are not permitted ... confusion with octal".
  return "v1 " + name + " is not a decimal number in 0-65535 without leading zeroes";
}

bool viable(v1_field f, bool ipv6, std::string_view text) {
  switch (f) {
    case v1_field::protocol:
      return std::any_of(std::begin(v1_protocols), std::end(v1_protocols),
                         [&](std::string_view p) { return p.starts_with(text); });
    case v1_field::source_address:
    case v1_field::destination_address: {
      const std::string_view chars = ipv6 ? "0123456789abcdefABCDEF:." : "0123456789.";
      return text.size() <= (ipv6 ? max_ipv6_text : max_ipv4_text) &&
             text.find_first_not_of(chars) == std::string_view::npos;
    }
    case v1_field::source_port:
    case v1_field::dest_port: {
      if (text.size() > 5 || text.find_first_not_of("0123456789") != std::string_view::npos)
        return false;
      if (text.size() > 1 && text[0] == '0') return false;
      unsigned value = 0;
      for (char c : text) value = value * 10 + static_cast<unsigned>(c - '0');
      return value <= 65535;
    }
  }
  return false;
}

// inet_pton enforces the canonical forms §2.1 asks for (exactly four decimal octets without
// leading zeroes; 128 bits of IPv6 with at most one "::").
std::optional<address> parse_ip(std::string_view text, bool ipv6) {
  const std::string z(text);
  address a;
  if (ipv6) {
    if (inet_pton(AF_INET6, z.c_str(), a.ip.data()) != 1) return std::nullopt;
    return a;
  }
  std::array<std::uint8_t, 4> v4{};
  if (inet_pton(AF_INET, z.c_str(), v4.data()) != 1) return std::nullopt;
  a.ip[10] = a.ip[11] = 0xff;
  std::copy(v4.begin(), v4.end(), a.ip.begin() + 12);
  a.v4 = true;
  return a;
}

std::uint16_t port_value(std::string_view text) {
  unsigned value = 0;
  for (char c : text) value = value * 10 + static_cast<unsigned>(c - '0');
  return static_cast<std::uint16_t>(value);
}

// The line ends at line[at], a CR or LF. std::nullopt: a proper CRLF, the header is at + 2 bytes.
std::optional<result> v1_line_end(std::string_view in, std::size_t at) {
  // §2.1: "The receiver must not tolerate a single CR or LF character to end the line".
  if (in[at] == '\n') return fail(1, "v1 line ends in a bare LF (CRLF required)");
  if (at + 2 > v1_max_line) return fail(1, "v1 line longer than 107 bytes");
  if (at + 1 == in.size()) return need_more();
  if (in[at + 1] != '\n') return fail(1, "v1 CR not followed by LF");
  return std::nullopt;
}

result v1_too_long_or_more(std::string_view line) {
  // §2.1: no CRLF in the first 107 bytes -> the line is invalid.
  if (line.size() == v1_max_line) return fail(1, "v1 line longer than 107 bytes");
  return need_more();
}

result parse_v1(std::string_view in) {
  const std::string_view line = in.substr(0, std::min(in.size(), v1_max_line));
  bool ipv6 = false;
  std::optional<address> source, destination;
  std::size_t pos = v1_magic.size();
  for (int i = 0;; ++i) {
    const auto f = static_cast<v1_field>(i);
    const std::size_t end = line.find_first_of(" \r\n", pos);
    const std::string_view text =
        line.substr(pos, end == std::string_view::npos ? line.size() - pos : end - pos);
    if (!viable(f, ipv6, text)) return fail(1, field_error(f, ipv6));
    if (end == std::string_view::npos) return v1_too_long_or_more(line);

    // The field is complete.
    if (text.empty())
      return fail(1, "v1 empty " + std::string(field_name(f)) +
                         " (fields are separated by exactly one space)");
    bool unknown = false;
    switch (f) {
      case v1_field::protocol:
        if (std::find(std::begin(v1_protocols), std::end(v1_protocols), text) ==
            std::end(v1_protocols))
          return fail(1, field_error(f, ipv6));
        ipv6 = text == "TCP6";
        unknown = text == "UNKNOWN";
        break;
      case v1_field::source_address:
      case v1_field::destination_address: {
        auto a = parse_ip(text, ipv6);
        if (!a) return fail(1, field_error(f, ipv6));
        (f == v1_field::source_address ? source : destination) = a;
        break;
      }
      case v1_field::source_port:
        source->port = port_value(text);
        break;
      case v1_field::dest_port:
        destination->port = port_value(text);
        break;
    }

    if (unknown) {
      // §2.1: after "UNKNOWN" the receiver must ignore anything before the CRLF.
      const std::size_t eol = line.find_first_of("\r\n", end);
      if (eol == std::string_view::npos) return v1_too_long_or_more(line);
      if (auto r = v1_line_end(in, eol)) return *r;
      return done(1, eol + 2);
    }
    if (line[end] == ' ') {
      if (f == v1_field::dest_port) return fail(1, "v1 unexpected data after the destination port");
      pos = end + 1;
      continue;
    }
    if (f != v1_field::dest_port)
      return fail(
          1, "v1 line ends before the " + std::string(field_name(static_cast<v1_field>(i + 1))));
    if (auto r = v1_line_end(in, end)) return *r;
    return done(1, end + 2, source, destination);
  }
}

// ---- v2 ----------------------------------------------------------------------------------------

std::uint16_t be16(std::string_view in, std::size_t at) {
  return static_cast<std::uint16_t>((static_cast<std::uint8_t>(in[at]) << 8) |
                                    static_cast<std::uint8_t>(in[at + 1]));
}

address v2_address(std::string_view ip, std::uint16_t port) {
  address a;
  a.port = port;
  if (ip.size() == 4) {
    a.ip[10] = a.ip[11] = 0xff;
    std::copy(ip.begin(), ip.end(), a.ip.begin() + 12);
    a.v4 = true;
  } else {
    std::copy(ip.begin(), ip.end(), a.ip.begin());
  }
  return a;
}

result parse_v2(std::string_view in) {
  if (in.size() < 13) return need_more();
  // §2.2: the high nibble is the version ("the receiver must only accept" 2); the low nibble the
  // command, and "receivers must drop connections presenting unexpected values here".
  const auto ver_cmd = static_cast<std::uint8_t>(in[12]);
  if (ver_cmd >> 4 != 2)
    return fail(2, "v2 version " + std::to_string(ver_cmd >> 4) + " not supported (only 2)");
  const std::uint8_t command = ver_cmd & 0x0f;
  if (command != v2_cmd_local && command != v2_cmd_proxy)
    return fail(2, "v2 command " + hex_byte(command) + " is neither LOCAL nor PROXY");

  if (in.size() < 14) return need_more();
  // §2.2: for LOCAL the family "is ignored". For PROXY, family > AF_UNIX or protocol > DGRAM "must
  // be rejected as invalid"; valid ones we do not carry (UNSPEC, UDP, UNIX) fall back to UNSPEC,
  // i.e. the real connection endpoints, as the spec allows.
  const auto family = static_cast<std::uint8_t>(in[13]);
  if (command == v2_cmd_proxy && ((family >> 4) > 3 || (family & 0x0f) > 2))
    return fail(2, "v2 address family/protocol byte " + hex_byte(family) + " is invalid");

  if (in.size() < v2_fixed_size) return need_more();
  const std::size_t length = be16(in, 14);
  if (length > v2_max_length)
    return fail(2, "v2 length " + std::to_string(length) + " exceeds " +
                       std::to_string(v2_max_length) + " (header limit " +
                       std::to_string(v2_max_header) + " bytes)");
  const bool tcp4 = command == v2_cmd_proxy && family == v2_tcp4;
  const bool tcp6 = command == v2_cmd_proxy && family == v2_tcp6;
  const std::size_t block = tcp4 ? v2_tcp4_block : tcp6 ? v2_tcp6_block : 0;
  if (length < block)
    return fail(2, "v2 length " + std::to_string(length) + " too short for " +
                       (tcp4 ? "TCP4" : "TCP6") + " addresses (" + std::to_string(block) +
                       " bytes)");

  if (in.size() < v2_fixed_size + length) return need_more();
  // §2.2: "the length of the protocol header in bytes is always exactly 16 + this value"; the
  // bytes after the address block are TLVs, which we skip.
  if (block == 0) return done(2, v2_fixed_size + length);
  const std::size_t ip_size = tcp4 ? 4 : 16;
  const std::string_view body = in.substr(v2_fixed_size, block);
  return done(2, v2_fixed_size + length,
              v2_address(body.substr(0, ip_size), be16(body, 2 * ip_size)),
              v2_address(body.substr(ip_size, ip_size), be16(body, 2 * ip_size + 2)));
}

}  // namespace

std::string address::to_string() const {
  char text[INET6_ADDRSTRLEN] = {};
  if (v4) {
    inet_ntop(AF_INET, ip.data() + 12, text, sizeof text);
    return std::string(text) + ":" + std::to_string(port);
  }
  inet_ntop(AF_INET6, ip.data(), text, sizeof text);
  return "[" + std::string(text) + "]:" + std::to_string(port);
}

result parse(std::string_view buffered) {
  if (buffered.empty()) return need_more();
  // The two forms differ in their first byte ('P' vs CR), so one byte picks the candidate and
  // the first byte that disagrees with it rejects the connection (§2: abort "as soon as possible").
  if (agrees_with(buffered, v1_magic)) {
    if (buffered.size() < v1_magic.size()) return need_more();
    return parse_v1(buffered);
  }
  if (agrees_with(buffered, v2_signature)) {
    if (buffered.size() < v2_signature.size()) return need_more();
    return parse_v2(buffered);
  }
  return fail(0, "not a PROXY protocol header");
}

}  // namespace tlsbridge::protocols::proxy_header
