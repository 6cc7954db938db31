// Fuzz target for protocols/proxy_header (the PROXY v1/v2 header a load balancer sends first). The
// input is the start of a connection. Parsed whole and as every growing prefix it must agree: the
// first prefix that is not need_more gives exactly the whole-buffer answer, and a header is done
// exactly at its last byte. consumed never exceeds the input, a header is at least 8 bytes, the
// parser never waits past its bounds, and a parsed v1 address prints back to a line that parses to
// the same addresses.
#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>

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
