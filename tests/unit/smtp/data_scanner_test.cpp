// data_scanner in its three modes: tables, every split point, and an exhaustive sweep of short
// inputs over {a . CR LF} against a strict reader (RFC 5321 §4.1.1.4: data ends only at a line
// that is exactly "." between two real CR LFs). The safety property behind SMTP smuggling
// (CVE-2023-51764): in reject and normalize modes the backend never sees <CRLF>.<CRLF> before the
// real end of data, nor a bare CR or LF it could take for a line end.
#include "protocols/smtp/data_scanner.hpp"

#include <catch2/catch.hpp>
#include <optional>
#include <string>
#include <vector>

#include "session_script.hpp"

using namespace tlsbridge::protocols::smtp;
using tlsbridge::test::printable;
using mode = data_scanner::mode;

namespace {

struct scanned {
  std::string out;
  std::size_t consumed = 0;  // total input bytes consumed
  bool end = false;
  bool violation = false;
  std::uint64_t message_bytes = 0;
  std::uint64_t bare_lf = 0;
  std::uint64_t bare_cr = 0;

  bool operator==(const scanned& o) const {
    return out == o.out && end == o.end && violation == o.violation &&
           (violation || consumed == o.consumed) && message_bytes == o.message_bytes &&
           bare_lf == o.bare_lf && bare_cr == o.bare_cr;
  }
};

std::string show(const scanned& s) {
  return "out=\"" + printable(s.out) + "\" consumed=" + std::to_string(s.consumed) +
         (s.end ? " END" : "") + (s.violation ? " VIOLATION" : "") +
         " bytes=" + std::to_string(s.message_bytes) + " lf=" + std::to_string(s.bare_lf) +
         " cr=" + std::to_string(s.bare_cr);
}

// Feeds `input` in chunks cut at `cuts` (ascending), the way the session does: stop at end of data
// or at a violation; bytes a scan did not consume are offered again with the next chunk.
scanned scan_cut(mode m, const std::string& input, const std::vector<std::size_t>& cuts) {
  data_scanner sc(m);
  scanned s;
  std::size_t pos = 0;
  std::string pending;
  std::size_t prev = 0;
  std::vector<std::size_t> ends = cuts;
  ends.push_back(input.size());
  for (std::size_t e : ends) {
    pending += input.substr(prev, e - prev);
    prev = e;
    auto r = sc.scan(pending, s.out);
    pos += r.consumed;
    pending.erase(0, r.consumed);
    if (r.end_of_data) {
      s.end = true;
      break;
    }
    if (r.violation) {
      s.violation = true;
      break;
    }
  }
  s.consumed = pos;
  s.message_bytes = sc.message_bytes();
  s.bare_lf = sc.bare_lf_count();
  s.bare_cr = sc.bare_cr_count();
  return s;
}

scanned scan_whole(mode m, const std::string& input) {
  return scan_cut(m, input, {});
}

scanned scan_bytewise(mode m, const std::string& input) {
  std::vector<std::size_t> cuts;
  for (std::size_t i = 1; i < input.size(); ++i) cuts.push_back(i);
  return scan_cut(m, input, cuts);
}

// The strict reader: lines end only at CR LF; a line that is exactly "." ends the data. Returns
// the input length up to and including that line.
std::optional<std::size_t> strict_end(const std::string& in) {
  std::size_t pos = 0;
  for (;;) {
    auto eol = in.find("\r\n", pos);
    if (eol == std::string::npos) return std::nullopt;
    if (in.compare(pos, eol - pos, ".") == 0) return eol + 2;
    pos = eol + 2;
  }
}

// Index of the first bare CR or LF in in[0, limit); a CR at the very end of the input is not
// known to be bare yet.
std::optional<std::size_t> first_bare(const std::string& in, std::size_t limit) {
  for (std::size_t i = 0; i < limit; ++i) {
    if (in[i] == '\n' && (i == 0 || in[i - 1] != '\r')) return i;
    if (in[i] == '\r' && i + 1 < in.size() && in[i + 1] != '\n') return i;
  }
  return std::nullopt;
}

bool has_bare_break(const std::string& s) {
  return first_bare(s + "x", s.size()).has_value();
}

// Where the backend would see the end of data in `out` (it reads after the 354's CR LF).
std::optional<std::size_t> backend_end(const std::string& out) {
  auto p = ("\r\n" + out).find("\r\n.\r\n");
  if (p == std::string::npos) return std::nullopt;
  return p + 3;  // length of `out` up to and including the dot line
}

}  // namespace

TEST_CASE("data_scanner: end of data only at <CRLF>.<CRLF>", "[smtp][data]") {
  struct row {
    std::string input;
    bool end;
    std::size_t consumed;
    std::string out;
    std::uint64_t message_bytes;
  };
  const std::vector<row> table{
      {"hello\r\n.\r\n", true, 10, "hello\r\n.\r\n", 7},
      {".\r\n", true, 3, ".\r\n", 0},  // empty message: the dot right after the 354
      {"\r\n.\r\n", true, 5, "\r\n.\r\n", 2},
      {"..\r\n.\r\n", true, 7, "..\r\n.\r\n", 4},  // a dot-stuffed line passes as is
      {"..\r\n", false, 4, "..\r\n", 4},
      {"a\r\n.x\r\n.\r\n", true, 10, "a\r\n.x\r\n.\r\n", 7},
      {"a\r\n .\r\n.\r\n", true, 10, "a\r\n .\r\n.\r\n", 7},
      {"a\r\n.\r\nQUIT\r\n", true, 6, "a\r\n.\r\n", 3},  // stops right after the dot line
      {"hello\r\n.\r", false, 9, "hello\r\n", 7},        // ".\r" held back
      {"hello\r\n.", false, 8, "hello\r\n", 7},          // "." held back
      {"hello\r", false, 6, "hello", 6},                 // CR held back
      {"a\r\n..\r\n.\r\n", true, 10, "a\r\n..\r\n.\r\n", 7},
      {"x.\r\n.\r\n", true, 7, "x.\r\n.\r\n", 4},
  };
  for (mode m : {mode::reject, mode::normalize, mode::pass}) {
    for (const auto& r : table) {
      INFO("mode " << static_cast<int>(m) << " input \"" << printable(r.input) << "\"");
      auto s = scan_whole(m, r.input);
      CHECK(s.end == r.end);
      CHECK_FALSE(s.violation);
      CHECK(s.consumed == r.consumed);
      CHECK(s.out == r.out);
      CHECK(s.message_bytes == r.message_bytes);
      CHECK(scan_bytewise(m, r.input) == s);
    }
  }
}

TEST_CASE("data_scanner reject: bare LF / bare CR stop the message", "[smtp][data]") {
  struct row {
    std::string input;
    std::string out;  // forwarded before the violation
    bool lf;          // a bare LF (else a bare CR)
  };
  const std::vector<row> table{
      {"hello\nworld\r\n.\r\n", "hello", true},
      {"hello\n.\n", "hello", true},
      {"\n.\r\n", "", true},
      {".\n", "", true},  // at the very start
      {"a\r\n.\n", "a\r\n", true},
      {"a\r\n.\nMAIL FROM:<x>\r\n", "a\r\n", true},
      {"hello\r.\r\n", "hello", false},
      {"a\r\n.\rx", "a\r\n", false},
      {"a\r\n.\r.\r\n", "a\r\n", false},
      {"ab\r\rc", "ab", false},
  };
  for (const auto& r : table) {
    INFO("input \"" << printable(r.input) << "\"");
    auto s = scan_whole(mode::reject, r.input);
    CHECK(s.violation);
    CHECK_FALSE(s.end);
    CHECK(s.out == r.out);
    CHECK((r.lf ? s.bare_lf : s.bare_cr) == 1);
    CHECK(s.out.find(".\r\n") == std::string::npos);
    CHECK(scan_bytewise(mode::reject, r.input) == s);
  }
  SECTION("consumed stops before the bare LF") {
    data_scanner sc(mode::reject);
    std::string out;
    auto r = sc.scan("hello\nrest", out);
    CHECK(r.violation);
    CHECK(r.consumed == 5);
    CHECK(out == "hello");
  }
}

TEST_CASE("data_scanner normalize: bare breaks become CR LF, never an end of data",
          "[smtp][data]") {
  struct row {
    std::string input;
    bool end;
    std::string out;
  };
  const std::vector<row> table{
      {"a\nb\r\n.\r\n", true, "a\r\nb\r\n.\r\n"},
      {"a\rb\r\n.\r\n", true, "a\r\nb\r\n.\r\n"},
      {"\n.\n", false, "\r\n..\r\n"},  // the smuggling shape: stuffed, not an end
      {"a\n.\nb\r\n.\r\n", true, "a\r\n..\r\nb\r\n.\r\n"},
      {"a\n.\r\nb\r\n.\r\n", true, "a\r\n..\r\nb\r\n.\r\n"},
      {"a\r\n.\nb\r\n.\r\n", true, "a\r\n..\r\nb\r\n.\r\n"},
      {"a\r.\r\nb\r\n.\r\n", true, "a\r\n..\r\nb\r\n.\r\n"},
      {"a\r\n.\rb\r\n.\r\n", true, "a\r\n..\r\nb\r\n.\r\n"},
      {".\n", false, "..\r\n"},
      {"a\n.x\r\n.\r\n", true, "a\r\n..x\r\n.\r\n"},
      {"a\r\r\n.\r\n", true, "a\r\n\r\n.\r\n"},
  };
  for (const auto& r : table) {
    INFO("input \"" << printable(r.input) << "\"");
    auto s = scan_whole(mode::normalize, r.input);
    CHECK_FALSE(s.violation);
    CHECK(s.end == r.end);
    CHECK(s.out == r.out);
    CHECK(s.bare_lf + s.bare_cr > 0);
    CHECK(scan_bytewise(mode::normalize, r.input) == s);
  }
}

TEST_CASE("data_scanner pass: bytes unchanged, but a bare break never ends data", "[smtp][data]") {
  const std::vector<std::pair<std::string, bool>> table{
      {"a\nb\r\n.\r\n", true}, {"a\n.\n", false},
      {"a\n.\r\n", false},  // the "." follows a bare LF: not an end for the proxy
      {"a\r.\r\n", false},     {"a\n.\r\n.\r\n", true},
  };
  for (const auto& [input, end] : table) {
    INFO("input \"" << printable(input) << "\"");
    auto s = scan_whole(mode::pass, input);
    CHECK(s.end == end);
    CHECK_FALSE(s.violation);
    CHECK(s.out == input.substr(0, s.consumed));
    CHECK(scan_bytewise(mode::pass, input) == s);
  }
}

TEST_CASE("data_scanner: every split point of a realistic message gives the same output",
          "[smtp][data]") {
  const std::string message =
      "From: a@example\r\nTo: b@example\r\nSubject: hi\r\n\r\n"
      "..leading dot\r\n.\r\nQUIT\r\n";  // after the end: not data
  for (mode m : {mode::reject, mode::normalize, mode::pass}) {
    const auto whole = scan_whole(m, message);
    REQUIRE(whole.end);
    CHECK(whole.consumed == message.find("QUIT"));
    CHECK(whole.out == message.substr(0, whole.consumed));
    CHECK(whole.message_bytes == whole.consumed - 3);
    for (std::size_t a = 0; a <= message.size(); ++a) {
      INFO("mode " << static_cast<int>(m) << " split at " << a);
      CHECK(scan_cut(m, message, {a}) == whole);
    }
  }
}

TEST_CASE("data_scanner: exhaustive short inputs against the strict reader", "[smtp][data]") {
  const char alphabet[] = {'a', '.', '\r', '\n'};
  std::vector<std::string> inputs{""};
  for (std::size_t len = 1, begin = 0; len <= 7; ++len) {
    std::size_t end = inputs.size();
    for (std::size_t i = begin; i < end; ++i)
      for (char c : alphabet) inputs.push_back(inputs[i] + c);
    begin = end;
  }
  int failures = 0;
  auto fail = [&](const std::string& what, mode m, const std::string& in, const scanned& s) {
    if (++failures > 20) return;
    FAIL_CHECK(what << " — mode " << static_cast<int>(m) << " input \"" << printable(in)
                    << "\": " << show(s));
  };
  for (mode m : {mode::reject, mode::normalize, mode::pass}) {
    for (const auto& in : inputs) {
      const auto s = scan_whole(m, in);
      if (!(scan_bytewise(m, in) == s)) fail("byte-at-a-time differs", m, in, s);
      for (std::size_t cut = 1; cut < in.size(); ++cut)
        if (!(scan_cut(m, in, {cut}) == s)) fail("split differs", m, in, s);

      const auto strict = strict_end(in);
      const auto bare = first_bare(in, strict ? *strict : in.size());
      if (m == mode::reject) {
        if (bare) {
          if (!s.violation || s.end) fail("bare break not refused", m, in, s);
          if (s.out.size() > *bare || in.compare(0, s.out.size(), s.out) != 0)
            fail("forwarded bytes at or after the bare break", m, in, s);
          continue;
        }
        if (s.violation) fail("violation without a bare break", m, in, s);
      }
      if (s.violation) fail("violation outside reject mode", m, in, s);
      if (s.end != strict.has_value() || (strict && s.consumed != *strict))
        fail("end of data differs from the strict reader", m, in, s);
      if (s.end && s.message_bytes != s.consumed - 3) fail("message_bytes", m, in, s);
      if (!s.end && s.consumed != in.size()) fail("input not consumed", m, in, s);

      // What the backend would read.
      const auto seen_end = backend_end(s.out);
      if (s.end) {
        if (seen_end != s.out.size()) fail("backend sees another end of data", m, in, s);
      } else if (seen_end) {
        if (m != mode::pass) fail("backend sees an end of data the client never sent", m, in, s);
      }
      if (m == mode::pass) {
        if (s.out != in.substr(0, s.out.size())) fail("pass mode changed bytes", m, in, s);
      } else if (has_bare_break(s.out)) {
        fail("bare CR/LF forwarded", m, in, s);
      }
      if (m == mode::normalize && !has_bare_break(in.substr(0, s.consumed)) &&
          s.out != in.substr(0, s.out.size()))
        fail("clean input changed", m, in, s);
    }
  }
  CHECK(failures == 0);
}

TEST_CASE("data_scanner: message_bytes and bare counters", "[smtp][data]") {
  auto s = scan_whole(mode::normalize, "a\nb\rc\r\n.\r\n");
  CHECK(s.end);
  CHECK(s.bare_lf == 1);
  CHECK(s.bare_cr == 1);
  CHECK(s.message_bytes == 7);  // the client's bytes, before normalisation

  auto p = scan_whole(mode::pass, "x\r\n.\ry\r\n.\r\n");
  CHECK(p.end);
  CHECK(p.bare_cr == 1);
  CHECK(p.message_bytes == p.consumed - 3);

  std::string big(100000, 'z');
  auto b = scan_whole(mode::reject, big + "\r\n.\r\n");
  CHECK(b.message_bytes == big.size() + 2);
}
