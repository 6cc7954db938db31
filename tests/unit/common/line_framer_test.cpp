// line_framer (protocols/common): line / need_more / too_long tables, CRLF and bare LF, an
// oversized line and recovery after it, byte-at-a-time == whole-buffer, peek/consume/take.
#include "protocols/common/line_framer.hpp"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "tests/unit/smtp/session_script.hpp"  // printable()

using tlsbridge::protocols::line_framer;
using tlsbridge::test::printable;
using status = line_framer::status;

namespace {

// Every result the framer gives for `input` fed in the given chunks: "L:<line>", "TOO_LONG", and
// "NEED" once at the end of each chunk. need_more markers are dropped in `lines_only`.
std::vector<std::string> frame(std::size_t max, const std::vector<std::string>& chunks,
                               bool lines_only = false) {
  line_framer f(max);
  std::vector<std::string> out;
  for (const auto& c : chunks) {
    f.append(c);
    std::string line;
    for (;;) {
      auto st = f.next_line(line);
      if (st == status::need_more) {
        if (!lines_only) out.push_back("NEED");
        break;
      }
      out.push_back(st == status::line ? "L:" + line : "TOO_LONG");
    }
  }
  return out;
}

std::vector<std::string> bytes_of(const std::string& s) {
  std::vector<std::string> out;
  for (char c : s) out.emplace_back(1, c);
  return out;
}

}  // namespace

TEST_CASE("line_framer: line / need_more / too_long table", "[smtp][line_framer]") {
  struct row {
    std::string input;
    std::vector<std::string> results;
  };
  const std::vector<row> table{
      {"", {"NEED"}},
      {"EHLO x", {"NEED"}},
      {"EHLO x\r", {"NEED"}},
      {"EHLO x\r\n", {"L:EHLO x", "NEED"}},
      {"EHLO x\n", {"L:EHLO x", "NEED"}},            // a bare LF ends a line too
      {"\r\n", {"L:", "NEED"}},                      // empty line
      {"a\rb\r\n", {"L:a\rb", "NEED"}},              // a bare CR is content
      {"a\r\nb\r\nc", {"L:a", "L:b", "NEED"}},       // two lines and a partial one
      {"0123456789\r\n", {"L:0123456789", "NEED"}},  // exactly the limit
      {"0123456789\n", {"L:0123456789", "NEED"}},
      {"0123456789\r", {"NEED"}},                 // exactly the limit, LF still to come
      {"01234567890\r\n", {"TOO_LONG", "NEED"}},  // one over, with its terminator
      {"01234567890", {"TOO_LONG", "NEED"}},      // one over, no terminator yet
      {"01234567890\r\nok\r\n", {"TOO_LONG", "L:ok", "NEED"}},
      {"0123456789012345\r\nok\r\n", {"TOO_LONG", "L:ok", "NEED"}},
  };
  for (const auto& r : table) {
    INFO("input: \"" << printable(r.input) << "\"");
    CHECK(frame(10, {r.input}) == r.results);
  }
}

TEST_CASE("line_framer: byte-at-a-time and every split give the same lines",
          "[smtp][line_framer]") {
  const std::vector<std::string> inputs{
      "EHLO x\r\nMAIL FROM:<a>\r\nRCPT TO:<b>\r\n",
      "a\nb\r\n\r\nc\r\n",
      "0123456789\r\n",  // exactly the limit: CR arriving alone must not count against it
      "0123456789\r\nnext\r\n",
      "0123456789A\r\nnext\r\n",           // one over
      "0123456789ABCDEFGHIJ\r\nnext\r\n",  // far over, then recovery
      "x\r\n0123456789ABCDEFGHIJ\nnext\n",
  };
  for (const auto& input : inputs) {
    INFO("input: \"" << printable(input) << "\"");
    const auto whole = frame(10, {input}, true);
    CHECK(frame(10, bytes_of(input), true) == whole);
    for (std::size_t cut = 0; cut <= input.size(); ++cut) {
      INFO("split at " << cut);
      CHECK(frame(10, {input.substr(0, cut), input.substr(cut)}, true) == whole);
    }
  }
}

TEST_CASE("line_framer: an oversized line is reported once and never buffered whole",
          "[smtp][line_framer]") {
  line_framer f(16);
  std::string line;
  f.append(std::string(17, 'x'));
  CHECK(f.next_line(line) == status::too_long);
  CHECK(f.discarding());
  CHECK(f.buffered() == 0);
  // The rest of the line keeps coming: dropped, not reported again, not buffered.
  for (int i = 0; i < 1000; ++i) {
    f.append(std::string(100, 'y'));
    CHECK(f.next_line(line) == status::need_more);
    CHECK(f.buffered() == 0);
  }
  f.append("tail\r\nNOOP\r\n");
  REQUIRE(f.next_line(line) == status::line);
  CHECK(line == "NOOP");
  CHECK_FALSE(f.discarding());
  CHECK(f.next_line(line) == status::need_more);
}

TEST_CASE("line_framer: peek, consume and take hand back raw bytes after a line",
          "[smtp][line_framer]") {
  line_framer f(64);
  std::string line;
  f.append("BDAT 5\r\nab\r\n.QUIT\r\n");
  REQUIRE(f.next_line(line) == status::line);
  CHECK(line == "BDAT 5");
  CHECK(f.peek() == "ab\r\n.QUIT\r\n");
  CHECK(f.buffered() == 11);
  CHECK(f.take(5) == "ab\r\n.");
  CHECK(f.peek() == "QUIT\r\n");
  f.consume(1);
  CHECK(f.peek() == "UIT\r\n");
  f.consume(100);  // more than buffered: everything, nothing more
  CHECK(f.buffered() == 0);
  CHECK(f.peek().empty());
  CHECK(f.take(3).empty());

  f.append("x\r\nrest");
  REQUIRE(f.next_line(line) == status::line);
  CHECK(f.take_all() == "rest");
  CHECK(f.buffered() == 0);

  f.append("partial");
  f.clear();
  CHECK(f.buffered() == 0);
  CHECK(f.next_line(line) == status::need_more);
}

TEST_CASE("line_framer: a long stream of lines compacts without losing bytes",
          "[smtp][line_framer]") {
  line_framer f(64);
  std::string line;
  std::string stream;
  for (int i = 0; i < 2000; ++i) stream += "line " + std::to_string(i) + "\r\n";
  int seen = 0;
  for (std::size_t pos = 0; pos < stream.size(); pos += 7) {
    f.append(std::string_view(stream).substr(pos, 7));
    while (f.next_line(line) == status::line) {
      CHECK(line == "line " + std::to_string(seen));
      ++seen;
    }
  }
  CHECK(seen == 2000);
  CHECK(f.buffered() == 0);
}
