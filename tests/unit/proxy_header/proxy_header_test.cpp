// PROXY protocol header parser: yes / no / need-more tables for v1 and v2, every good header fed
// byte at a time (need_more until its last byte, then the whole-buffer answer), trailing payload
// left alone, every bad header rejected at its first wrong byte with the same message however it
// was split, and the bounds (107-byte v1 line, 536-byte v2 header).
#include "protocols/proxy_header/proxy_header.hpp"

#include <catch2/catch.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

using namespace tlsbridge::protocols::proxy_header;
using status = result::status;

namespace {

const std::string v2_sig("\r\n\r\n\0\r\nQUIT\n", 12);

std::string be16(unsigned v) {
  return {static_cast<char>((v >> 8) & 0xff), static_cast<char>(v & 0xff)};
}

std::string bytes(std::initializer_list<unsigned> list) {
  std::string s;
  for (unsigned b : list) s.push_back(static_cast<char>(b));
  return s;
}

// A v2 header: fixed part with `length` (default: the body's size), then the body.
std::string v2(unsigned ver_cmd, unsigned family, const std::string& body,
               std::optional<unsigned> length = std::nullopt) {
  return v2_sig + bytes({ver_cmd, family}) + be16(length.value_or(body.size())) + body;
}

std::string v2_tcp4_body(const std::string& tlvs = "") {
  // 192.0.2.1:56324 -> 198.51.100.7:25
  return bytes({192, 0, 2, 1, 198, 51, 100, 7}) + be16(56324) + be16(25) + tlvs;
}

std::string v2_tcp6_body() {
  // [2001:db8::1]:1111 -> [::1]:2222
  std::string body = bytes({0x20, 0x01, 0x0d, 0xb8}) + std::string(11, '\0') + bytes({1});
  body += std::string(15, '\0') + bytes({1});
  return body + be16(1111) + be16(2222);
}

std::string printable(std::string_view s) {
  std::string out;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\r') {
      out += "\\r";
    } else if (c == '\n') {
      out += "\\n";
    } else if (u < 0x20 || u >= 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  return out;
}

std::string describe(const result& r) {
  std::string s = r.what == status::done ? "done" : r.what == status::error ? "error" : "need_more";
  s += " v" + std::to_string(r.version) + " consumed=" + std::to_string(r.consumed);
  if (r.source) s += " src=" + r.source->to_string();
  if (r.destination) s += " dst=" + r.destination->to_string();
  if (!r.error.empty()) s += " error=\"" + r.error + "\"";
  return s;
}

// Feeds every prefix of `in`; the first answer that is not need_more must be the whole-buffer
// answer. Returns the length of that prefix (in.size() + 1 if every prefix needs more).
std::size_t deciding_prefix(const std::string& in) {
  const result whole = parse(in);
  for (std::size_t k = 1; k <= in.size(); ++k) {
    const result r = parse(std::string_view(in).substr(0, k));
    if (r.what == status::need_more) continue;
    INFO("prefix " << k << ": " << describe(r) << "\nwhole: " << describe(whole));
    REQUIRE(r == whole);
    return k;
  }
  REQUIRE(whole.what == status::need_more);
  return in.size() + 1;
}

struct yes_case {
  std::string name;
  std::string header;
  int version;
  std::string source;  // "" when the header carries no addresses
  std::string destination;
  bool v4 = true;
};

std::vector<yes_case> yes_cases() {
  const std::string v6max = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
  return {
      {"v1 TCP4 (spec example)", "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n", 1,
       "192.168.0.1:56324", "192.168.0.11:443"},
      {"v1 TCP4 longest (56 bytes)", "PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n",
       1, "255.255.255.255:65535", "255.255.255.255:65535"},
      {"v1 TCP4 zeroes", "PROXY TCP4 0.0.0.0 10.0.0.1 0 0\r\n", 1, "0.0.0.0:0", "10.0.0.1:0"},
      {"v1 TCP6 loopback", "PROXY TCP6 ::1 ::1 1111 2222\r\n", 1, "[::1]:1111", "[::1]:2222",
       false},
      {"v1 TCP6 upper case hex", "PROXY TCP6 2001:DB8::1 2001:db8::2 1 65535\r\n", 1,
       "[2001:db8::1]:1", "[2001:db8::2]:65535", false},
      {"v1 TCP6 longest (104 bytes)", "PROXY TCP6 " + v6max + " " + v6max + " 65535 65535\r\n", 1,
       "[" + v6max + "]:65535", "[" + v6max + "]:65535", false},
      {"v1 TCP6 v4-mapped stays IPv6", "PROXY TCP6 ::ffff:1.2.3.4 ::1 1 2\r\n", 1,
       "[::ffff:1.2.3.4]:1", "[::1]:2", false},
      {"v1 UNKNOWN short form", "PROXY UNKNOWN\r\n", 1, "", ""},
      {"v1 UNKNOWN worst case (107 bytes)",
       "PROXY UNKNOWN " + v6max + " " + v6max + " 65535 65535\r\n", 1, "", ""},
      {"v1 UNKNOWN ignores what follows", "PROXY UNKNOWN not even \x01 addresses\r\n", 1, "", ""},
      {"v2 PROXY TCP4", v2(0x21, 0x11, v2_tcp4_body()), 2, "192.0.2.1:56324", "198.51.100.7:25"},
      {"v2 PROXY TCP4 with TLVs skipped",
       v2(0x21, 0x11, v2_tcp4_body(bytes({0x04, 0, 3, 0, 0, 0}) + bytes({0x02, 0, 1}) + "x")), 2,
       "192.0.2.1:56324", "198.51.100.7:25"},
      {"v2 PROXY TCP6", v2(0x21, 0x21, v2_tcp6_body()), 2, "[2001:db8::1]:1111", "[::1]:2222",
       false},
      {"v2 LOCAL", v2(0x20, 0x00, ""), 2, "", ""},
      {"v2 LOCAL ignores family and addresses", v2(0x20, 0x11, v2_tcp4_body()), 2, "", ""},
      {"v2 LOCAL ignores an invalid family", v2(0x20, 0xff, ""), 2, "", ""},
      {"v2 PROXY UNSPEC", v2(0x21, 0x00, ""), 2, "", ""},
      {"v2 PROXY UDP4 falls back to UNSPEC", v2(0x21, 0x12, v2_tcp4_body()), 2, "", ""},
      {"v2 PROXY UNIX stream falls back to UNSPEC", v2(0x21, 0x31, std::string(216, 'u')), 2, "",
       ""},
      {"v2 at the 536-byte bound", v2(0x21, 0x11, v2_tcp4_body(std::string(508, '\0'))), 2,
       "192.0.2.1:56324", "198.51.100.7:25"},
  };
}

struct no_case {
  std::string name;
  std::string input;
  std::string error;
  // Bytes needed to see the error: the parser rejects at the first byte that settles it.
  std::size_t decided_at;
};

std::vector<no_case> no_cases() {
  const std::string ok_tail = " 5.6.7.8 1111 2222\r\n";
  const std::string v1_too_long = "v1 line longer than 107 bytes";
  return {
      // Neither form: rejected at the first byte that disagrees with both.
      {"SMTP client speaking first", "EHLO client.example\r\n", "not a PROXY protocol header", 1},
      {"TLS ClientHello", bytes({0x16, 0x03, 0x01, 0x02, 0x00}), "not a PROXY protocol header", 1},
      {"lower case proxy", "proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n", "not a PROXY protocol header", 1},
      {"PROXY without its space", "PROXY\r\n", "not a PROXY protocol header", 6},
      {"PROXX", "PROXX TCP4", "not a PROXY protocol header", 5},
      {"v2 signature wrong in its last byte", v2_sig.substr(0, 11) + "\x0b" + "\x21\x11",
       "not a PROXY protocol header", 12},
      {"bare CR LF", "\r\n\r\nQUIT", "not a PROXY protocol header", 5},

      // v1 fields.
      {"v1 unknown protocol", "PROXY TCP5 1.2.3.4" + ok_tail,
       "v1 protocol is not TCP4, TCP6 or UNKNOWN", 10},
      {"v1 protocol prefix only", "PROXY TCP 1.2.3.4" + ok_tail,
       "v1 protocol is not TCP4, TCP6 or UNKNOWN", 10},
      {"v1 UNKNOWN glued to more", "PROXY UNKNOWNX\r\n", "v1 protocol is not TCP4, TCP6 or UNKNOWN",
       14},
      {"v1 double space before protocol", "PROXY  TCP4 1.2.3.4" + ok_tail,
       "v1 empty protocol (fields are separated by exactly one space)", 7},
      {"v1 double space between addresses", "PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n",
       "v1 empty destination address (fields are separated by exactly one space)", 20},
      {"v1 tab separator", "PROXY TCP4 1.2.3.4\t5.6.7.8 1 2\r\n",
       "v1 source address is not a valid IPv4 address", 19},
      {"v1 octet over 255", "PROXY TCP4 1.2.3.256" + ok_tail,
       "v1 source address is not a valid IPv4 address", 21},
      {"v1 leading zero octet", "PROXY TCP4 01.2.3.4" + ok_tail,
       "v1 source address is not a valid IPv4 address", 20},
      {"v1 three octets", "PROXY TCP4 1.2.3" + ok_tail,
       "v1 source address is not a valid IPv4 address", 17},
      {"v1 IPv6 address under TCP4", "PROXY TCP4 ::1 ::1 1 2\r\n",
       "v1 source address is not a valid IPv4 address", 12},
      {"v1 IPv4 address under TCP6", "PROXY TCP6 1.2.3.4 ::1 1 2\r\n",
       "v1 source address is not a valid IPv6 address", 19},
      {"v1 two double colons", "PROXY TCP6 1::2::3 ::1 1 2\r\n",
       "v1 source address is not a valid IPv6 address", 19},
      {"v1 non-hex IPv6", "PROXY TCP6 ::1 ::g 1 2\r\n",
       "v1 destination address is not a valid IPv6 address", 18},
      {"v1 bad destination address", "PROXY TCP4 1.2.3.4 5.6.7 1 2\r\n",
       "v1 destination address is not a valid IPv4 address", 25},
      {"v1 NUL in address", "PROXY TCP4 1.2.3.4" + std::string(1, '\0') + ok_tail,
       "v1 source address is not a valid IPv4 address", 19},
      {"v1 port 65536", "PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n",
       "v1 source port is not a decimal number in 0-65535 without leading zeroes", 32},
      {"v1 port 99999", "PROXY TCP4 1.2.3.4 5.6.7.8 99999 2\r\n",
       "v1 source port is not a decimal number in 0-65535 without leading zeroes", 32},
      {"v1 port six digits", "PROXY TCP4 1.2.3.4 5.6.7.8 1 123456\r\n",
       "v1 destination port is not a decimal number in 0-65535 without leading zeroes", 35},
      {"v1 negative port", "PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n",
       "v1 source port is not a decimal number in 0-65535 without leading zeroes", 28},
      {"v1 plus sign port", "PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n",
       "v1 source port is not a decimal number in 0-65535 without leading zeroes", 28},
      {"v1 leading zero port", "PROXY TCP4 1.2.3.4 5.6.7.8 1 025\r\n",
       "v1 destination port is not a decimal number in 0-65535 without leading zeroes", 31},
      {"v1 port with letters", "PROXY TCP4 1.2.3.4 5.6.7.8 25a 2\r\n",
       "v1 source port is not a decimal number in 0-65535 without leading zeroes", 30},
      {"v1 destination port 65536", "PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n",
       "v1 destination port is not a decimal number in 0-65535 without leading zeroes", 34},
      {"v1 trailing space", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n",
       "v1 unexpected data after the destination port", 31},
      {"v1 extra field", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",
       "v1 unexpected data after the destination port", 31},
      {"v1 missing destination port", "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
       "v1 line ends before the destination port", 29},
      {"v1 protocol only", "PROXY TCP4\r\n", "v1 line ends before the source address", 11},

      // v1 line ends and length.
      {"v1 bare LF", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",
       "v1 line ends in a bare LF (CRLF required)", 31},
      {"v1 UNKNOWN bare LF", "PROXY UNKNOWN\n", "v1 line ends in a bare LF (CRLF required)", 14},
      {"v1 CR then not LF", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX", "v1 CR not followed by LF", 32},
      {"v1 CR CR LF", "PROXY UNKNOWN\r\r\n", "v1 CR not followed by LF", 15},
      {"v1 107 bytes without CRLF", "PROXY UNKNOWN " + std::string(93, 'x'), v1_too_long, 107},
      {"v1 CRLF as bytes 107 and 108", "PROXY UNKNOWN " + std::string(92, 'x') + "\r\n",
       v1_too_long, 107},
      {"v1 over-long line", "PROXY UNKNOWN " + std::string(200, 'x') + "\r\n", v1_too_long, 107},

      // v2 fixed part.
      {"v2 version 1", v2(0x11, 0x11, v2_tcp4_body()), "v2 version 1 not supported (only 2)", 13},
      {"v2 version 3", v2(0x31, 0x11, v2_tcp4_body()), "v2 version 3 not supported (only 2)", 13},
      {"v2 command 2", v2(0x22, 0x11, v2_tcp4_body()), "v2 command 0x02 is neither LOCAL nor PROXY",
       13},
      {"v2 command 15", v2(0x2f, 0x00, ""), "v2 command 0x0f is neither LOCAL nor PROXY", 13},
      {"v2 family 4", v2(0x21, 0x41, v2_tcp4_body()),
       "v2 address family/protocol byte 0x41 is invalid", 14},
      {"v2 transport 3", v2(0x21, 0x13, v2_tcp4_body()),
       "v2 address family/protocol byte 0x13 is invalid", 14},

      // v2 lengths.
      {"v2 length 40000", v2(0x21, 0x11, v2_tcp4_body(), 40000),
       "v2 length 40000 exceeds 520 (header limit 536 bytes)", 16},
      {"v2 length 0xffff", v2(0x20, 0x00, "", 0xffff),
       "v2 length 65535 exceeds 520 (header limit 536 bytes)", 16},
      {"v2 one byte over the bound", v2(0x21, 0x11, v2_tcp4_body(std::string(509, '\0'))),
       "v2 length 521 exceeds 520 (header limit 536 bytes)", 16},
      {"v2 TCP4 block longer than length", v2(0x21, 0x11, v2_tcp4_body(), 11),
       "v2 length 11 too short for TCP4 addresses (12 bytes)", 16},
      {"v2 TCP6 with a TCP4-sized block", v2(0x21, 0x21, v2_tcp4_body()),
       "v2 length 12 too short for TCP6 addresses (36 bytes)", 16},
      {"v2 TCP4 length 0", v2(0x21, 0x11, ""),
       "v2 length 0 too short for TCP4 addresses (12 bytes)", 16},
  };
}

}  // namespace

TEST_CASE("proxy_header: good headers parse, whole and byte at a time", "[proxy_header]") {
  for (const auto& c : yes_cases()) {
    INFO(c.name << ": " << printable(c.header));
    const result r = parse(c.header);
    INFO(describe(r));
    REQUIRE(r.what == status::done);
    CHECK(r.consumed == c.header.size());
    CHECK(r.version == c.version);
    CHECK(r.error.empty());
    if (c.source.empty()) {
      CHECK(!r.source);
      CHECK(!r.destination);
    } else {
      REQUIRE(r.source);
      REQUIRE(r.destination);
      CHECK(r.source->to_string() == c.source);
      CHECK(r.destination->to_string() == c.destination);
      CHECK(r.source->v4 == c.v4);
      CHECK(r.destination->v4 == c.v4);
    }

    // Byte at a time: need_more until the last byte, then the same answer.
    for (std::size_t k = 0; k < c.header.size(); ++k) {
      INFO("prefix of " << k << " bytes");
      REQUIRE(parse(std::string_view(c.header).substr(0, k)).what == status::need_more);
    }

    // Whatever follows the header is the client's, and is neither consumed nor looked at.
    const std::vector<std::string> tails = {"EHLO client.example\r\n", "\r\n", std::string(1, '\0'),
                                            std::string(600, 'z'), c.header};
    for (const auto& tail : tails) {
      INFO("followed by " << printable(tail.substr(0, 24)));
      CHECK(parse(c.header + tail) == r);
    }
  }
}

TEST_CASE("proxy_header: addresses are v4-mapped IPv6 bytes", "[proxy_header]") {
  const result v1 = parse("PROXY TCP4 192.0.2.1 198.51.100.7 56324 25\r\n");
  const result v2_ = parse(v2(0x21, 0x11, v2_tcp4_body()));
  REQUIRE(v1.what == status::done);
  REQUIRE(v2_.what == status::done);
  const std::array<std::uint8_t, 16> mapped{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1};
  CHECK(v1.source->ip == mapped);
  CHECK(v1.source->port == 56324);
  CHECK(v1.destination->port == 25);
  // The same connection said in either version is the same pair of addresses.
  CHECK(v1.source == v2_.source);
  CHECK(v1.destination == v2_.destination);

  const result v6 = parse("PROXY TCP6 2001:db8::1 ::1 1111 2222\r\n");
  const result v6b = parse(v2(0x21, 0x21, v2_tcp6_body()));
  REQUIRE(v6.what == status::done);
  REQUIRE(v6b.what == status::done);
  CHECK(v6.source == v6b.source);
  CHECK(v6.destination == v6b.destination);
  CHECK(v6.source->ip[0] == 0x20);
  CHECK(v6.source->ip[15] == 1);
}

TEST_CASE("proxy_header: bad headers are rejected early, however they are split",
          "[proxy_header]") {
  for (const auto& c : no_cases()) {
    INFO(c.name << ": " << printable(c.input));
    const result r = parse(c.input);
    INFO(describe(r));
    REQUIRE(r.what == status::error);
    CHECK(r.error == c.error);
    CHECK(r.consumed == 0);
    CHECK(!r.source);
    const std::size_t decided = deciding_prefix(c.input);
    CHECK(decided == c.decided_at);
  }
}

TEST_CASE("proxy_header: need more", "[proxy_header]") {
  const std::string tcp4 = "PROXY TCP4 1.2.3.4 5.6.7.8 1111 2222\r\n";
  const std::string v2_header = v2(0x21, 0x11, v2_tcp4_body());
  const std::vector<std::string> cases = {
      "",
      "P",
      "PROXY",
      "PROXY ",
      "PROXY UNKNOWN",
      "PROXY UNKNOWN\r",
      tcp4.substr(0, tcp4.size() - 2),
      tcp4.substr(0, tcp4.size() - 1),
      "PROXY UNKNOWN " + std::string(92, 'x'),  // 106 bytes: the 107th decides
      "PROXY UNKNOWN " + std::string(91, 'x') + "\r",
      "PROXY TCP6 " + std::string(45, 'f'),  // as long as an IPv6 text can be
      "\r",
      v2_sig.substr(0, 5),
      v2_sig,
      v2_sig + "\x21",
      v2_sig + "\x21\x11",
      v2_sig + "\x21\x11" + std::string(1, '\0'),
      v2_header.substr(0, 16),
      v2_header.substr(0, v2_header.size() - 1),
      v2(0x21, 0x11, std::string(519, 'x'), 520),  // one byte short of the 536-byte maximum
  };
  for (const auto& in : cases) {
    INFO(printable(in));
    const result r = parse(in);
    INFO(describe(r));
    CHECK(r.what == status::need_more);
    CHECK(r.consumed == 0);
    CHECK(r.error.empty());
  }
}

TEST_CASE("proxy_header: the v1 line bound is 107 bytes including CRLF", "[proxy_header]") {
  const std::string exact = "PROXY UNKNOWN " + std::string(91, 'x') + "\r\n";
  REQUIRE(exact.size() == v1_max_line);
  CHECK(parse(exact).what == status::done);
  CHECK(parse(exact).consumed == 107);
  // One more byte before CRLF: the CR lands on byte 107, so no CRLF fits.
  const result over = parse("PROXY UNKNOWN " + std::string(92, 'x') + "\r\n");
  CHECK(over.what == status::error);
  CHECK(over.error == "v1 line longer than 107 bytes");
  CHECK(over.version == 1);
}

TEST_CASE("proxy_header: errors name the version once it is known", "[proxy_header]") {
  CHECK(parse("GET /").version == 0);
  CHECK(parse("PROXY TCP9").version == 1);
  CHECK(parse(v2(0x21, 0x11, "", 9999)).version == 2);
}

TEST_CASE("proxy_header: address::to_string", "[proxy_header]") {
  address a;
  a.v4 = true;
  a.ip[10] = a.ip[11] = 0xff;
  a.ip[12] = 1;
  a.ip[13] = 2;
  a.ip[14] = 3;
  a.ip[15] = 4;
  a.port = 1111;
  CHECK(a.to_string() == "1.2.3.4:1111");
  address b;
  b.ip[15] = 1;
  b.port = 65535;
  CHECK(b.to_string() == "[::1]:65535");
  CHECK(address{}.to_string() == "[::]:0");
}
