// The PROXY protocol header (HAProxy's proxy-protocol.txt, v1 text and v2 binary) that a trusted
// load balancer puts in front of a connection to tell us the client's real address. parse() is
// stateless and I/O-free: the driver calls it with everything buffered so far and gets need_more
// (read more and call again with the longer buffer), done (the header is the first `consumed`
// bytes; the rest is the client's first protocol bytes) or error (drop the connection). A decision
// is made at the earliest byte that settles it, so feeding a header byte by byte gives need_more
// until the decisive byte and then the same answer as the whole buffer would; the parser never asks
// for more than max(v1_max_line, v2_max_header) bytes.
//
//   first bytes           -> "PROXY "      v1: fields up to CRLF, within 107 bytes
//                         -> v2 signature  v2: 16-byte fixed part, then `len` bytes (addresses,
//                         TLVs)
//                         -> anything else error at the first mismatching byte
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tlsbridge::protocols::proxy_header {

// proxy-protocol.txt §2.1: the worst case v1 line, "PROXY UNKNOWN" with two full IPv6 addresses and
// ports, is 107 bytes including CRLF; a line without CRLF in its first 107 bytes is invalid.
inline constexpr std::size_t v1_max_line = 107;
inline constexpr std::size_t v2_fixed_size = 16;
// The v2 length field could announce 64 KiB. We accept a whole header of at most 536 bytes (the
// minimum IPv4 MSS, which the spec relies on to say a header always arrives in one segment): that
// holds the largest address block (AF_UNIX, 216 bytes) plus 304 bytes of TLVs, and bounds what a
// peer can make us buffer before its first real byte.
inline constexpr std::size_t v2_max_header = 536;
inline constexpr std::size_t v2_max_length = v2_max_header - v2_fixed_size;

struct address {
  std::array<std::uint8_t, 16> ip{};  // IPv4 as a v4-mapped IPv6 address (::ffff:a.b.c.d)
  bool v4 = false;
  std::uint16_t port = 0;

  // "1.2.3.4:1111" or "[::1]:1111".
  std::string to_string() const;
  friend bool operator==(const address&, const address&) = default;
};

struct result {
  enum class status { need_more, done, error } what = status::need_more;
  std::size_t consumed = 0;  // header bytes, on done
  // Both set for v1 TCP4/TCP6 and v2 PROXY over TCP; both empty for v1 UNKNOWN, v2 LOCAL and v2
  // PROXY with a family we do not carry (UNSPEC, UDP, UNIX): use the real connection endpoints.
  std::optional<address> source, destination;
  int version = 0;    // 1 or 2 on done, and on error once the version is known
  std::string error;  // on error: what is wrong, for the log

  friend bool operator==(const result&, const result&) = default;
};

result parse(std::string_view buffered);

}  // namespace tlsbridge::protocols::proxy_header
