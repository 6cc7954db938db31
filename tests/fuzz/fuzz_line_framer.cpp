// Fuzz target for protocols/common/line_framer. The input chooses the line limit and a pattern of
// chunk sizes; the rest is the byte stream. The framer's events (lines and too_long reports) under
// that chunking must equal a reference computed from the whole stream at once, lines never exceed
// the limit, and the framer never holds more than the limit (plus a CR) once it asks for more.
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "protocols/common/line_framer.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using tlsbridge::protocols::line_framer;

namespace {

struct event {
  bool too_long = false;
  std::string line;
  bool operator==(const event&) const = default;
};

// What the framer must report for `stream`, from the definition: a line ends at LF, one CR before
// the LF is not part of it, and the limit counts the line's content. An unterminated tail longer
// than the limit (a trailing CR, which may yet be the CR of CR LF, not counted) is reported once.
std::vector<event> reference(std::string_view stream, std::size_t limit, std::string& tail) {
  std::vector<event> out;
  std::size_t start = 0;
  for (;;) {
    auto lf = stream.find('\n', start);
    if (lf == std::string_view::npos) break;
    std::string_view line = stream.substr(start, lf - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.size() > limit)
      out.push_back({true, {}});
    else
      out.push_back({false, std::string(line)});
    start = lf + 1;
  }
  std::string_view rest = stream.substr(start);
  const std::size_t allowed = limit + (!rest.empty() && rest.back() == '\r' ? 1 : 0);
  if (rest.size() > allowed) {
    out.push_back({true, {}});
    tail.clear();
  } else {
    tail = std::string(rest);
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  tlsbridge::fuzz::fuzz_input in(data, size);
  const std::size_t limit = 1 + in.byte() % 64;
  std::array<std::uint8_t, 4> pattern{};
  for (std::size_t i = 0; i < pattern.size(); ++i) pattern[i] = in.byte();
  const std::string_view stream = in.rest();

  line_framer framer(limit);
  std::vector<event> events;
  std::size_t pos = 0;
  std::size_t k = 0;
  std::string line;
  while (pos < stream.size()) {
    const std::size_t n =
        std::min<std::size_t>(1 + pattern[k++ % pattern.size()] % 32, stream.size() - pos);
    framer.append(stream.substr(pos, n));
    pos += n;
    FUZZ_CHECK(framer.buffered() <= limit + 1 + n);
    for (;;) {
      const auto st = framer.next_line(line);
      if (st == line_framer::status::need_more) break;
      if (st == line_framer::status::too_long) {
        events.push_back({true, {}});
        continue;
      }
      FUZZ_CHECK(line.size() <= limit);
      FUZZ_CHECK(line.find('\n') == std::string::npos);
      events.push_back({false, line});
    }
    // Asking for more, the framer holds at most one line's worth (and a CR that may end it).
    FUZZ_CHECK(framer.buffered() <= limit + 1);
  }

  std::string tail;
  const std::vector<event> expected = reference(stream, limit, tail);
  FUZZ_CHECK(events == expected);
  // What is left unconsumed is exactly the unterminated tail, unless it was being discarded.
  if (!framer.discarding()) {
    FUZZ_CHECK(framer.peek() == tail);
    FUZZ_CHECK(framer.take_all() == tail);
    FUZZ_CHECK(framer.buffered() == 0);
  }
  return 0;
}
