// Fuzz target for protocols/smtp/data_scanner in its three modes (reject, normalize, pass). The
// first byte picks the mode and the second a chunk size; the rest is message data after 354.
// Invariants: consumed <= input; the scanner stops only at the end of data or a violation; the
// output never holds <CRLF>.<CRLF> (counting the CR LF of the DATA line before it) except as its
// final bytes at the end of data; reject and normalize never forward a bare CR or LF; reject and
// pass forward the input unchanged (less at most the two bytes held back); chunked == whole.
#include <cstdint>
#include <string>

#include "protocols/smtp/data_scanner.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using tlsbridge::protocols::smtp::data_scanner;

namespace {

struct outcome {
  std::string out;
  std::size_t consumed = 0;
  bool end_of_data = false;
  bool violation = false;
  std::uint64_t message_bytes = 0;
  std::uint64_t bare = 0;
};

outcome scan(data_scanner::mode m, std::string_view in, std::size_t chunk) {
  data_scanner s(m);
  outcome o;
  for (std::size_t pos = 0; pos < in.size(); pos += chunk) {
    const std::string_view piece = in.substr(pos, chunk);
    const std::size_t before = o.out.size();
    const auto r = s.scan(piece, o.out);
    FUZZ_CHECK(r.consumed <= piece.size());
    FUZZ_CHECK(!(r.end_of_data && r.violation));
    if (m != data_scanner::mode::reject) FUZZ_CHECK(!r.violation);
    // Nothing at or after a violation is forwarded: the output grows by at most what was used.
    if (m != data_scanner::mode::normalize) FUZZ_CHECK(o.out.size() - before <= r.consumed + 2);
    o.consumed = pos + r.consumed;
    if (r.end_of_data || r.violation) {
      o.end_of_data = r.end_of_data;
      o.violation = r.violation;
      break;
    }
    FUZZ_CHECK(r.consumed == piece.size());
  }
  o.message_bytes = s.message_bytes();
  o.bare = s.bare_cr_count() + s.bare_lf_count();
  return o;
}

bool has_bare_break(std::string_view s) {
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\r' && (i + 1 == s.size() || s[i + 1] != '\n')) return true;
    if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r')) return true;
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  tlsbridge::fuzz::fuzz_input input(data, size);
  const auto m = static_cast<data_scanner::mode>(input.byte() % 3);
  const std::size_t chunk = 1 + input.byte() % 16;
  const std::string_view in = input.rest();

  const outcome whole = scan(m, in, in.size() + 1);
  const outcome bytewise = scan(m, in, 1);
  const outcome chunked = scan(m, in, chunk);
  for (const outcome* o : {&bytewise, &chunked}) {
    FUZZ_CHECK(o->out == whole.out);
    FUZZ_CHECK(o->consumed == whole.consumed);
    FUZZ_CHECK(o->end_of_data == whole.end_of_data);
    FUZZ_CHECK(o->violation == whole.violation);
    FUZZ_CHECK(o->message_bytes == whole.message_bytes);
    FUZZ_CHECK(o->bare == whole.bare);
  }

  const std::string& out = whole.out;
  FUZZ_CHECK(whole.consumed <= in.size());
  if (whole.end_of_data) {
    FUZZ_CHECK(whole.consumed >= 3 && in.substr(whole.consumed - 3, 3) == ".\r\n");
    FUZZ_CHECK(out.size() >= 3 && out.compare(out.size() - 3, 3, ".\r\n") == 0);
    FUZZ_CHECK(whole.message_bytes <= whole.consumed);
  }
  // The DATA command line ended with CR LF: the backend reads the output after it.
  const std::string seen = "\r\n" + out;
  const auto end = seen.find("\r\n.\r\n");
  if (whole.end_of_data)
    FUZZ_CHECK(end == seen.size() - 5);
  else
    FUZZ_CHECK(end == std::string::npos);

  switch (m) {
    case data_scanner::mode::reject:
      FUZZ_CHECK(!has_bare_break(out));
      FUZZ_CHECK(whole.violation == (whole.bare > 0));
      [[fallthrough]];
    case data_scanner::mode::pass:
      // Forwarded unchanged; only bytes held back (".", "\r", ".\r") may be missing at the end.
      FUZZ_CHECK(in.substr(0, whole.consumed).substr(0, out.size()) == out);
      FUZZ_CHECK(whole.consumed - out.size() <= 2);
      if (whole.end_of_data) FUZZ_CHECK(out.size() == whole.consumed);
      break;
    case data_scanner::mode::normalize:
      FUZZ_CHECK(!has_bare_break(out));
      if (whole.bare == 0 && whole.end_of_data) FUZZ_CHECK(out == in.substr(0, whole.consumed));
      break;
  }
  return 0;
}
