// Fuzz target for protocols/smtp/smtp_reply (the backend's replies). The input is a backend byte
// stream. Parsed whole and byte at a time it must give the same replies and the same error; every
// reply is well formed (one code, continuation markers on all lines but the last, bounded), and
// its wire form parses back to itself.
#include <cstdint>
#include <string>
#include <vector>

#include "protocols/smtp/smtp_reply.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using namespace tlsbridge::protocols::smtp;

namespace {

struct outcome {
  std::vector<reply> replies;
  bool error = false;
};

void drain(reply_parser& p, outcome& o) {
  reply r;
  for (;;) {
    const auto st = p.next(r);
    if (st == reply_parser::status::need_more) return;
    if (st == reply_parser::status::error) {
      FUZZ_CHECK(!p.error().empty());
      o.error = true;
      return;
    }
    o.replies.push_back(r);
  }
}

outcome parse(std::string_view stream, std::size_t chunk) {
  reply_parser p;
  outcome o;
  for (std::size_t pos = 0; pos < stream.size() && !o.error; pos += chunk) {
    p.append(stream.substr(pos, chunk));
    drain(p, o);
  }
  return o;
}

void check_well_formed(const reply& r) {
  FUZZ_CHECK(r.code >= 200 && r.code <= 599);
  FUZZ_CHECK(!r.lines.empty());
  FUZZ_CHECK(r.lines.size() <= reply_parser::max_lines);
  const std::string code = std::to_string(r.code);
  for (std::size_t i = 0; i < r.lines.size(); ++i) {
    const std::string& l = r.lines[i];
    FUZZ_CHECK(l.size() <= reply_parser::max_line);
    FUZZ_CHECK(l.compare(0, 3, code) == 0);
    FUZZ_CHECK(l.find('\n') == std::string::npos);
    const bool last = i + 1 == r.lines.size();
    if (last)
      FUZZ_CHECK(l.size() == 3 || l[3] == ' ');
    else
      FUZZ_CHECK(l.size() > 3 && l[3] == '-');
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view stream(reinterpret_cast<const char*>(data), size);
  const outcome whole = parse(stream, stream.size() + 1);
  const outcome bytewise = parse(stream, 1);

  FUZZ_CHECK(whole.error == bytewise.error);
  FUZZ_CHECK(whole.replies.size() == bytewise.replies.size());
  for (std::size_t i = 0; i < whole.replies.size(); ++i) {
    const reply& r = whole.replies[i];
    FUZZ_CHECK(r.code == bytewise.replies[i].code);
    FUZZ_CHECK(r.lines == bytewise.replies[i].lines);
    check_well_formed(r);

    // Relaying is parsing the wire form again: it must give the same reply.
    reply_parser again;
    again.append(r.wire());
    reply back;
    FUZZ_CHECK(again.next(back) == reply_parser::status::reply_ready);
    FUZZ_CHECK(back.code == r.code && back.lines == r.lines);
    FUZZ_CHECK(again.buffered() == 0);
  }
  return 0;
}
