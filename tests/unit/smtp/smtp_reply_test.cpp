// reply_parser and reply helpers: single and multi-line replies, every split point, two replies in
// one chunk, and the malformed cases the session turns into a 421.
#include "protocols/smtp/smtp_reply.hpp"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "session_script.hpp"

using namespace tlsbridge::protocols::smtp;
using tlsbridge::test::printable;

namespace {

struct parsed {
  std::vector<reply> replies;
  bool error = false;
  std::string error_text;
  std::size_t buffered = 0;
};

parsed parse_chunks(const std::vector<std::string>& chunks) {
  reply_parser p;
  parsed out;
  for (const auto& c : chunks) {
    p.append(c);
    for (;;) {
      reply r;
      auto st = p.next(r);
      if (st == reply_parser::status::need_more) break;
      if (st == reply_parser::status::error) {
        out.error = true;
        out.error_text = p.error();
        return out;
      }
      out.replies.push_back(std::move(r));
    }
  }
  out.buffered = p.buffered();
  return out;
}

std::string summary(const parsed& p) {
  std::string s;
  for (const auto& r : p.replies) s += std::to_string(r.code) + ":" + printable(r.wire()) + "|";
  if (p.error) s += "ERROR";
  return s;
}

}  // namespace

TEST_CASE("reply_parser: yes / no / need-more table", "[smtp][reply]") {
  struct row {
    std::string input;
    std::string expected;  // summary()
  };
  const std::vector<row> table{
      {"", ""},
      {"25", ""},
      {"250 ok", ""},
      {"250 ok\r", ""},
      {"250-a\r\n", ""},  // continuation: not complete yet
      {"250 ok\r\n", "250:250 ok\\r\\n|"},
      {"250\r\n", "250:250\\r\\n|"},  // bare code
      {"220-hello\r\n220 world\r\n", "220:220-hello\\r\\n220 world\\r\\n|"},
      {"250 ok\n", "250:250 ok\\r\\n|"},  // LF-only from a sloppy backend: accepted
      {"354 go ahead\r\n", "354:354 go ahead\\r\\n|"},
      {"421 4.4.2 bye\r\n", "421:421 4.4.2 bye\\r\\n|"},
      {"554 5.7.1 no\r\n", "554:554 5.7.1 no\\r\\n|"},
      // Malformed.
      {"hello\r\n", "ERROR"},
      {"25x ok\r\n", "ERROR"},
      {"2500 ok\r\n", "ERROR"},
      {"250_ok\r\n", "ERROR"},
      {"150 ok\r\n", "ERROR"},  // 1yz is not an SMTP reply
      {"650 ok\r\n", "ERROR"},
      {"\r\n", "ERROR"},
      {" 250 ok\r\n", "ERROR"},
      {"250-a\r\n251 b\r\n", "ERROR"},  // code changes inside a multi-line reply
      {"250-a\r\n550-b\r\n", "ERROR"},
  };
  for (const auto& r : table) {
    INFO("input: \"" << printable(r.input) << "\"");
    CHECK(summary(parse_chunks({r.input})) == r.expected);
  }
}

TEST_CASE("reply_parser: multi-line reply keeps its lines and markers", "[smtp][reply]") {
  auto p = parse_chunks({"250-mail.example Hello\r\n250-SIZE 1000\r\n250 PIPELINING\r\n"});
  REQUIRE(p.replies.size() == 1);
  const auto& r = p.replies[0];
  CHECK(r.code == 250);
  CHECK(r.positive_completion());
  CHECK_FALSE(r.intermediate());
  CHECK(r.lines ==
        std::vector<std::string>{"250-mail.example Hello", "250-SIZE 1000", "250 PIPELINING"});
  CHECK(r.text() == "250-mail.example Hello\n250-SIZE 1000\n250 PIPELINING");
  CHECK(r.wire() == "250-mail.example Hello\r\n250-SIZE 1000\r\n250 PIPELINING\r\n");
}

TEST_CASE("reply_parser: two replies in one chunk, and every split point", "[smtp][reply]") {
  const std::string stream =
      "220-mx.example ESMTP\r\n220 ready\r\n250-mx.example\r\n250-SIZE\r\n250 8BITMIME\r\n"
      "354 go\r\n250 2.6.0 <q1@mx> queued\r\n";
  const auto whole = parse_chunks({stream});
  REQUIRE(whole.replies.size() == 4);
  CHECK(whole.replies[0].code == 220);
  CHECK(whole.replies[1].lines.size() == 3);
  CHECK(whole.replies[2].intermediate());
  CHECK(whole.replies[3].text() == "250 2.6.0 <q1@mx> queued");
  CHECK(whole.buffered == 0);

  std::vector<std::string> bytes;
  for (char c : stream) bytes.emplace_back(1, c);
  CHECK(summary(parse_chunks(bytes)) == summary(whole));
  for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
    INFO("split at " << cut);
    CHECK(summary(parse_chunks({stream.substr(0, cut), stream.substr(cut)})) == summary(whole));
  }
}

TEST_CASE("reply_parser: line length and line count are bounded", "[smtp][reply]") {
  const std::string at_limit = "250 " + std::string(reply_parser::max_line - 4, 'x');
  SECTION("a line of exactly max_line is fine, whole or byte by byte") {
    auto p = parse_chunks({at_limit + "\r\n"});
    REQUIRE(p.replies.size() == 1);
    std::vector<std::string> bytes;
    for (char c : at_limit + "\r\n") bytes.emplace_back(1, c);
    CHECK(summary(parse_chunks(bytes)) == summary(p));
  }
  SECTION("one byte more is an error, even before its line end arrives") {
    CHECK(parse_chunks({at_limit + "x\r\n"}).error);
    auto p = parse_chunks({at_limit + "xx"});
    CHECK(p.error);
    CHECK(p.error_text.find("longer than") != std::string::npos);
  }
  SECTION("too many continuation lines") {
    std::string many;
    for (std::size_t i = 0; i < reply_parser::max_lines + 1; ++i) many += "250-x\r\n";
    auto p = parse_chunks({many + "250 end\r\n"});
    CHECK(p.error);
    CHECK(p.error_text.find("too many lines") != std::string::npos);
  }
  SECTION("max_lines lines is fine") {
    std::string many;
    for (std::size_t i = 0; i + 1 < reply_parser::max_lines; ++i) many += "250-x\r\n";
    auto p = parse_chunks({many + "250 end\r\n"});
    REQUIRE(p.replies.size() == 1);
    CHECK(p.replies[0].lines.size() == reply_parser::max_lines);
  }
}

TEST_CASE("make_reply sets continuation markers", "[smtp][reply]") {
  CHECK(make_reply(250, {"a", "b", "c"}).wire() == "250-a\r\n250-b\r\n250 c\r\n");
  CHECK(make_reply(221, {"bye"}).wire() == "221 bye\r\n");
  auto r = make_reply(550, {"no"});
  CHECK(r.code == 550);
  CHECK_FALSE(r.positive_completion());
}
