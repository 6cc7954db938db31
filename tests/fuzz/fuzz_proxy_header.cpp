// Fuzz target for protocols/proxy_header (the PROXY v1/v2 header a load balancer sends first). The
// input is the start of a connection. Parsed whole and as every growing prefix it must agree: the
// first prefix that is not need_more gives exactly the whole-buffer answer, and a header is done
// exactly at its last byte. consumed never exceeds the input, a header is at least 8 bytes, the
// parser never waits past its bounds, and a parsed v1 address prints back to a line that parses to
// the same addresses.
//
// Differential oracle (issue 12): reference_parse below is a second, deliberately independent
// reader of HAProxy's proxy-protocol.txt — whole lines split on single spaces, its own IPv4/IPv6
// text parsers instead of inet_pton, no early decisions. Where it is sure (a complete header or a
// definite error) the parser must agree on the outcome, the header length and both addresses, so
// the proxy and a strict PROXY reader never disagree about where the client's own bytes begin or
// who the client is; where it still waits for bytes, the parser may have refused early but must
// never have accepted.
#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocols/proxy_header/proxy_header.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using namespace tlsbridge::protocols::proxy_header;

namespace {

using status = result::status;

// "1.2.3.4:5" -> "1.2.3.4", "[::1]:5" -> "::1".
std::string host_text(const address& a) {
  std::string s = a.to_string();
  s.erase(s.rfind(':'));
  if (!a.v4) s = s.substr(1, s.size() - 2);
  return s;
}

void check_addresses(const result& r) {
  FUZZ_CHECK(r.source.has_value() == r.destination.has_value());
  if (!r.source) return;
  FUZZ_CHECK(r.source->v4 == r.destination->v4);
  for (const address* a : {&*r.source, &*r.destination}) {
    if (!a->v4) continue;
    FUZZ_CHECK(std::all_of(a->ip.begin(), a->ip.begin() + 10, [](auto b) { return b == 0; }));
    FUZZ_CHECK(a->ip[10] == 0xff && a->ip[11] == 0xff);
  }
  // Printing and parsing again is the identity on addresses (to_string is what the log shows).
  const std::string line = std::string("PROXY ") + (r.source->v4 ? "TCP4 " : "TCP6 ") +
                           host_text(*r.source) + " " + host_text(*r.destination) + " " +
                           std::to_string(r.source->port) + " " +
                           std::to_string(r.destination->port) + "\r\n";
  const result again = parse(line);
  FUZZ_CHECK(again.what == status::done);
  FUZZ_CHECK(again.consumed == line.size());
  FUZZ_CHECK(again.source == r.source && again.destination == r.destination);
}

// ---- The reference reader ------------------------------------------------------------------

struct reference_result {
  enum class kind { need_more, done, error } what = kind::need_more;
  std::size_t consumed = 0;
  std::optional<address> source, destination;
};

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  for (;;) {
    const std::size_t at = s.find(sep, start);
    if (at == std::string_view::npos) {
      parts.push_back(s.substr(start));
      return parts;
    }
    parts.push_back(s.substr(start, at - start));
    start = at + 1;
  }
}

// Dotted quad, each part 1-3 decimal digits, no leading zero, at most 255 (proxy-protocol.txt
// §2.1, RFC 791 text form).
std::optional<std::array<std::uint8_t, 4>> reference_ipv4(std::string_view s) {
  const auto parts = split(s, '.');
  if (parts.size() != 4) return std::nullopt;
  std::array<std::uint8_t, 4> out{};
  for (std::size_t i = 0; i < 4; ++i) {
    const auto p = parts[i];
    if (p.empty() || p.size() > 3 || (p.size() > 1 && p[0] == '0')) return std::nullopt;
    unsigned v = 0;
    for (char c : p) {
      if (!is_digit(c)) return std::nullopt;
      v = v * 10 + static_cast<unsigned>(c - '0');
    }
    if (v > 255) return std::nullopt;
    out[i] = static_cast<std::uint8_t>(v);
  }
  return out;
}

// Colon-separated 16-bit groups (1-4 hex digits); the last 32 bits may be a dotted quad.
bool reference_groups(std::string_view part, bool v4_tail_allowed,
                      std::vector<std::uint16_t>& out) {
  if (part.empty()) return true;
  const auto pieces = split(part, ':');
  for (std::size_t i = 0; i < pieces.size(); ++i) {
    const auto g = pieces[i];
    if (i + 1 == pieces.size() && v4_tail_allowed && g.find('.') != std::string_view::npos) {
      const auto v4 = reference_ipv4(g);
      if (!v4) return false;
      out.push_back(static_cast<std::uint16_t>((*v4)[0] << 8 | (*v4)[1]));
      out.push_back(static_cast<std::uint16_t>((*v4)[2] << 8 | (*v4)[3]));
      continue;
    }
    if (g.empty() || g.size() > 4) return false;
    unsigned v = 0;
    for (char c : g) {
      const int h = hex_value(c);
      if (h < 0) return false;
      v = v * 16 + static_cast<unsigned>(h);
    }
    out.push_back(static_cast<std::uint16_t>(v));
  }
  return true;
}

// RFC 4291 §2.2 text forms: eight groups, or one "::" standing for at least one zero group.
std::optional<std::array<std::uint8_t, 16>> reference_ipv6(std::string_view s) {
  std::vector<std::uint16_t> head, tail;
  const std::size_t gap = s.find("::");
  if (gap == std::string_view::npos) {
    if (!reference_groups(s, true, head) || head.size() != 8) return std::nullopt;
  } else {
    if (s.find("::", gap + 1) != std::string_view::npos) return std::nullopt;
    if (!reference_groups(s.substr(0, gap), false, head) ||
        !reference_groups(s.substr(gap + 2), true, tail) || head.size() + tail.size() > 7)
      return std::nullopt;
    head.resize(8 - tail.size(), 0);
    head.insert(head.end(), tail.begin(), tail.end());
  }
  std::array<std::uint8_t, 16> out{};
  for (std::size_t i = 0; i < 8; ++i) {
    out[2 * i] = static_cast<std::uint8_t>(head[i] >> 8);
    out[2 * i + 1] = static_cast<std::uint8_t>(head[i] & 0xff);
  }
  return out;
}

// Decimal 0-65535 without leading zeroes (proxy-protocol.txt §2.1).
std::optional<std::uint16_t> reference_port(std::string_view s) {
  if (s.empty() || s.size() > 5 || (s.size() > 1 && s[0] == '0')) return std::nullopt;
  unsigned v = 0;
  for (char c : s) {
    if (!is_digit(c)) return std::nullopt;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  if (v > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(v);
}

std::optional<address> reference_address(std::string_view text, bool ipv6, std::string_view port) {
  address a;
  const auto p = reference_port(port);
  if (!p) return std::nullopt;
  a.port = *p;
  if (ipv6) {
    const auto ip = reference_ipv6(text);
    if (!ip) return std::nullopt;
    a.ip = *ip;
  } else {
    const auto ip = reference_ipv4(text);
    if (!ip) return std::nullopt;
    a.ip[10] = a.ip[11] = 0xff;
    std::copy(ip->begin(), ip->end(), a.ip.begin() + 12);
    a.v4 = true;
  }
  return a;
}

reference_result reference_v1(std::string_view in) {
  using k = reference_result::kind;
  reference_result r;
  // The line ends at the first CR or LF; only CRLF ends it, within 107 bytes in all.
  const std::size_t scan = std::min(in.size(), v1_max_line);
  std::size_t eol = std::string_view::npos;
  for (std::size_t i = 0; i < scan; ++i)
    if (in[i] == '\r' || in[i] == '\n') {
      eol = i;
      break;
    }
  if (eol == std::string_view::npos) {
    r.what = in.size() >= v1_max_line ? k::error : k::need_more;
    return r;
  }
  if (in[eol] == '\n' || eol + 2 > v1_max_line) {
    r.what = k::error;
    return r;
  }
  if (eol + 1 == in.size()) return r;  // need_more: is the CR followed by LF?
  if (in[eol + 1] != '\n') {
    r.what = k::error;
    return r;
  }
  const auto fields = split(in.substr(6, eol - 6), ' ');  // after "PROXY "
  r.what = k::error;
  if (fields[0] == "UNKNOWN") {  // the rest of the line is ignored
    r.what = k::done;
    r.consumed = eol + 2;
    return r;
  }
  if (fields.size() != 5 || (fields[0] != "TCP4" && fields[0] != "TCP6")) return r;
  const bool ipv6 = fields[0] == "TCP6";
  r.source = reference_address(fields[1], ipv6, fields[3]);
  r.destination = reference_address(fields[2], ipv6, fields[4]);
  if (!r.source || !r.destination) {
    r.source.reset();
    r.destination.reset();
    return r;
  }
  r.what = k::done;
  r.consumed = eol + 2;
  return r;
}

reference_result reference_v2(std::string_view in) {
  using k = reference_result::kind;
  reference_result r;
  if (in.size() < 16) return r;
  const auto byte = [&](std::size_t i) { return static_cast<std::uint8_t>(in[i]); };
  const unsigned version = byte(12) >> 4, command = byte(12) & 0x0f;
  const unsigned family = byte(13) >> 4, transport = byte(13) & 0x0f;
  const std::size_t length = static_cast<std::size_t>(byte(14)) << 8 | byte(15);
  r.what = k::error;
  if (version != 2 || command > 1) return r;
  if (command == 1 && (family > 3 || transport > 2)) return r;
  if (16 + length > v2_max_header) return r;  // the proxy's own bound, documented in the header
  const bool tcp4 = command == 1 && family == 1 && transport == 1;
  const bool tcp6 = command == 1 && family == 2 && transport == 1;
  if ((tcp4 && length < 12) || (tcp6 && length < 36)) return r;
  r.what = k::need_more;
  if (in.size() < 16 + length) return r;
  r.what = k::done;
  r.consumed = 16 + length;
  if (tcp4 || tcp6) {
    const std::size_t n = tcp4 ? 4 : 16;
    address src, dst;
    src.v4 = dst.v4 = tcp4;
    const std::size_t at = tcp4 ? 12 : 0;
    for (std::size_t i = 0; i < n; ++i) {
      src.ip[at + i] = byte(16 + i);
      dst.ip[at + i] = byte(16 + n + i);
    }
    if (tcp4) src.ip[10] = src.ip[11] = dst.ip[10] = dst.ip[11] = 0xff;
    src.port = static_cast<std::uint16_t>(byte(16 + 2 * n) << 8 | byte(17 + 2 * n));
    dst.port = static_cast<std::uint16_t>(byte(18 + 2 * n) << 8 | byte(19 + 2 * n));
    r.source = src;
    r.destination = dst;
  }
  return r;
}

reference_result reference_parse(std::string_view in) {
  static constexpr std::string_view v1 = "PROXY ";
  static constexpr std::string_view v2{"\r\n\r\n\0\r\nQUIT\n", 12};
  reference_result r;
  for (const auto magic : {v1, v2}) {
    const std::size_t n = std::min(in.size(), magic.size());
    if (in.substr(0, n) != magic.substr(0, n)) continue;
    if (in.size() < magic.size()) return r;  // need_more
    return magic == v1 ? reference_v1(in) : reference_v2(in);
  }
  r.what = reference_result::kind::error;
  return r;
}

void check_against_reference(std::string_view in, const result& got) {
  const reference_result want = reference_parse(in);
  switch (want.what) {
    case reference_result::kind::done:
      FUZZ_CHECK(got.what == status::done);
      FUZZ_CHECK(got.consumed == want.consumed);
      FUZZ_CHECK(got.source == want.source);
      FUZZ_CHECK(got.destination == want.destination);
      break;
    case reference_result::kind::error:
      FUZZ_CHECK(got.what == status::error);
      break;
    case reference_result::kind::need_more:
      // The parser may refuse earlier than a whole-line reader can (proxy-protocol.txt §2: abort
      // as soon as possible); it must never accept what a strict reader has not seen end.
      FUZZ_CHECK(got.what != status::done);
      break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const result whole = parse(in);

  FUZZ_CHECK(whole.consumed <= in.size());
  switch (whole.what) {
    case status::need_more:
      // Bounded: the parser decides within the longest header it accepts.
      FUZZ_CHECK(in.size() < std::max(v1_max_line, v2_max_header));
      FUZZ_CHECK(whole.consumed == 0 && whole.error.empty() && !whole.source);
      break;
    case status::done:
      FUZZ_CHECK(whole.consumed >= 8);
      FUZZ_CHECK(whole.version == 1 || whole.version == 2);
      FUZZ_CHECK(whole.error.empty());
      if (whole.version == 1) FUZZ_CHECK(whole.consumed <= v1_max_line);
      if (whole.version == 2) FUZZ_CHECK(whole.consumed <= v2_max_header);
      check_addresses(whole);
      // The header alone is the same header: what follows it is not looked at.
      FUZZ_CHECK(parse(in.substr(0, whole.consumed)) == whole);
      break;
    case status::error:
      FUZZ_CHECK(!whole.error.empty());
      FUZZ_CHECK(whole.consumed == 0 && !whole.source);
      break;
  }

  check_against_reference(in, whole);

  // Byte at a time: need_more until the deciding byte, which gives the whole-buffer answer.
  std::size_t k = 0;
  result first;
  while (k < in.size()) {
    first = parse(in.substr(0, ++k));
    if (first.what != status::need_more) break;
  }
  if (first.what == status::need_more) {
    FUZZ_CHECK(whole.what == status::need_more);
  } else {
    FUZZ_CHECK(first == whole);
    if (whole.what == status::done) FUZZ_CHECK(k == whole.consumed);
  }
  return 0;
}
