#include "certs/starttls_dialogue.hpp"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

using namespace tlsbridge::certs;
using action = starttls_step::action;

namespace {

// Plays a server script against the dialogue: each entry is what the server sends in answer to
// the previous client step. Returns the client's writes and the final step. `chunk` > 0 feeds each
// server message that many bytes at a time (a reply split across reads).
struct run_result {
  std::vector<std::string> sent;
  starttls_step last;
};

run_result play(starttls_protocol p, const std::vector<std::string>& server,
                std::size_t chunk = 0) {
  starttls_dialogue d(p);
  run_result r;
  starttls_step step = d.start();
  for (const auto& message : server) {
    if (step.what == action::send) r.sent.push_back(step.data);
    if (step.what != action::send && step.what != action::read) break;
    if (chunk == 0) {
      step = d.on_data(message);
    } else {
      for (std::size_t i = 0; i < message.size(); i += chunk) {
        step = d.on_data(message.substr(i, chunk));
        if (i + chunk < message.size()) {
          REQUIRE(step.what == action::read);
        }
      }
    }
  }
  if (step.what == action::send) r.sent.push_back(step.data);
  r.last = step;
  return r;
}

}  // namespace

TEST_CASE("SMTP: multi-line greeting and EHLO reply, then STARTTLS 220", "[probe][starttls]") {
  const std::vector<std::string> server = {
      "220-mx.example ESMTP\r\n220-second line\r\n220 last\r\n",
      "250-mx.example\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 8BITMIME\r\n",
      "220 2.0.0 Ready to start TLS\r\n"};
  for (std::size_t chunk : {0u, 1u, 3u, 7u}) {
    CAPTURE(chunk);
    auto r = play(starttls_protocol::smtp, server, chunk);
    REQUIRE(r.sent == std::vector<std::string>{"EHLO probe.tlsbridge\r\n", "STARTTLS\r\n"});
    CHECK(r.last.what == action::ready);
  }
}

TEST_CASE("SMTP: an incomplete multi-line greeting needs more", "[probe][starttls]") {
  starttls_dialogue d(starttls_protocol::smtp);
  REQUIRE(d.start().what == action::read);
  CHECK(d.on_data("220-first\r\n").what == action::read);
  CHECK(d.on_data("220 last").what == action::read);
  auto step = d.on_data("\r\n");
  REQUIRE(step.what == action::send);
  CHECK(step.data == "EHLO probe.tlsbridge\r\n");
}

TEST_CASE("SMTP: refusals and garbage fail with the server's text", "[probe][starttls]") {
  SECTION("554 greeting") {
    auto r = play(starttls_protocol::smtp, {"554 go away\r\n"});
    REQUIRE(r.last.what == action::failed);
    CHECK_THAT(r.last.data, Catch::Contains("554 go away"));
  }
  SECTION("STARTTLS not supported") {
    auto r = play(starttls_protocol::smtp, {"220 hi\r\n", "250 mx\r\n", "502 5.5.1 no\r\n"});
    REQUIRE(r.last.what == action::failed);
    CHECK_THAT(r.last.data, Catch::Contains("STARTTLS refused") && Catch::Contains("502 5.5.1"));
  }
  SECTION("EHLO refused") {
    auto r = play(starttls_protocol::smtp, {"220 hi\r\n", "500 what\r\n"});
    REQUIRE(r.last.what == action::failed);
    CHECK_THAT(r.last.data, Catch::Contains("EHLO refused"));
  }
  SECTION("not SMTP at all") {
    auto r = play(starttls_protocol::smtp, {"SSH-2.0-OpenSSH_9.2\r\n"});
    CHECK(r.last.what == action::failed);
  }
  SECTION("control characters are not copied into the reason") {
    auto r = play(starttls_protocol::smtp, {"554 \x1b[31mred\r\n"});
    REQUIRE(r.last.what == action::failed);
    CHECK(r.last.data.find('\x1b') == std::string::npos);
  }
}

TEST_CASE("SMTP: plaintext after the STARTTLS go-ahead is refused (injection)",
          "[probe][starttls]") {
  auto r = play(starttls_protocol::smtp,
                {"220 hi\r\n", "250 mx\r\n", "220 go ahead\r\n250 injected\r\n"});
  REQUIRE(r.last.what == action::failed);
  CHECK_THAT(r.last.data, Catch::Contains("after its STARTTLS go-ahead"));
}

TEST_CASE("SMTP: server closes during the dialogue", "[probe][starttls]") {
  starttls_dialogue d(starttls_protocol::smtp);
  d.start();
  REQUIRE(d.on_data("220 hi\r\n").what == action::send);
  auto step = d.on_eof();
  REQUIRE(step.what == action::failed);
  CHECK_THAT(step.data, Catch::Contains("EHLO reply"));
}

TEST_CASE("IMAP: greeting, a STARTTLS, untagged lines, a OK", "[probe][starttls]") {
  for (std::size_t chunk : {0u, 1u, 5u}) {
    CAPTURE(chunk);
    auto r = play(starttls_protocol::imap,
                  {"* OK [CAPABILITY IMAP4rev1 STARTTLS] ready\r\n",
                   "* CAPABILITY IMAP4rev1 STARTTLS\r\na OK Begin TLS negotiation now\r\n"},
                  chunk);
    REQUIRE(r.sent == std::vector<std::string>{"a STARTTLS\r\n"});
    CHECK(r.last.what == action::ready);
  }
  SECTION("BYE greeting") {
    CHECK(play(starttls_protocol::imap, {"* BYE busy\r\n"}).last.what == action::failed);
  }
  SECTION("a NO") {
    auto r = play(starttls_protocol::imap, {"* OK hi\r\n", "a NO not now\r\n"});
    REQUIRE(r.last.what == action::failed);
    CHECK_THAT(r.last.data, Catch::Contains("a NO not now"));
  }
}

TEST_CASE("POP3: greeting, STLS, +OK", "[probe][starttls]") {
  auto r = play(starttls_protocol::pop3, {"+OK POP3 ready\r\n", "+OK Begin TLS\r\n"}, 2);
  REQUIRE(r.sent == std::vector<std::string>{"STLS\r\n"});
  CHECK(r.last.what == action::ready);
  SECTION("-ERR") {
    auto e = play(starttls_protocol::pop3, {"+OK hi\r\n", "-ERR no TLS\r\n"});
    REQUIRE(e.last.what == action::failed);
    CHECK_THAT(e.last.data, Catch::Contains("STLS refused"));
  }
  SECTION("+OKAY is not +OK") {
    CHECK(play(starttls_protocol::pop3, {"+OKAY\r\n"}).last.what == action::failed);
  }
}

TEST_CASE("an overlong IMAP line fails instead of buffering", "[probe][starttls]") {
  starttls_dialogue d(starttls_protocol::imap);
  d.start();
  auto step = d.on_data(std::string(starttls_dialogue::max_line + 10, 'x'));
  CHECK(step.what == action::failed);
}

TEST_CASE("no STARTTLS: ready at once", "[probe][starttls]") {
  starttls_dialogue d(starttls_protocol::none);
  CHECK(d.start().what == action::ready);
}
