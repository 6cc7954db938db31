// pop3_backend_opener, scripted: the greeting, CAPA (RFC 2449), STLS (RFC 2595 §4) and the
// handshake, with replies split anywhere; refusals, injection after +OK and overlong lines fail.
#include "protocols/pop3/pop3_backend_opener.hpp"

#include <catch2/catch.hpp>
#include <string>

using namespace tlsbridge;
using protocols::pop3::pop3_backend_opener;
using action = protocols::backend_opener::action;
using kind = action::kind;

namespace {

// Feeds `bytes` `chunk` at a time (0 = whole) and returns the action after the last piece.
action feed(pop3_backend_opener& o, const std::string& bytes, std::size_t chunk = 0) {
  if (chunk == 0) return o.on_read(bytes);
  action a{kind::read, {}};
  for (std::size_t i = 0; i < bytes.size(); i += chunk) a = o.on_read(bytes.substr(i, chunk));
  return a;
}

// A STARTTLS opener that has read `+OK hi` and written CAPA: waiting for CAPA's answer.
pop3_backend_opener after_capa(bool require_tls) {
  pop3_backend_opener o(config::back_tls::starttls, require_tls);
  o.on_read("+OK hi\r\n");
  o.on_written();
  return o;
}

// Its answer to STLS is next: CAPA listed STLS.
pop3_backend_opener after_stls(bool require_tls) {
  auto o = after_capa(require_tls);
  o.on_read("+OK\r\nSTLS\r\n.\r\n");
  o.on_written();
  return o;
}

// A failure's reason, or a marker that no failure came.
std::string failure(const action& a) {
  return a.what == kind::fail ? a.data : "(no failure)";
}

}  // namespace

TEST_CASE("pop3 opener: greeting, CAPA, STLS, +OK, handshake", "[pop3]") {
  for (std::size_t chunk : {0u, 1u, 2u, 7u}) {
    CAPTURE(chunk);
    pop3_backend_opener o(config::back_tls::starttls, true);
    CHECK(o.start().what == kind::read);
    auto a = feed(o, "+OK POP3 ready <1.2@mx>\r\n", chunk);
    REQUIRE(a.what == kind::write);
    CHECK(a.data == "CAPA\r\n");
    CHECK(o.on_written().what == kind::read);
    a = feed(o, "+OK Capability list follows\r\nUSER\r\nSTLS\r\n.\r\n", chunk);
    REQUIRE(a.what == kind::write);
    CHECK(a.data == "STLS\r\n");
    CHECK(o.on_written().what == kind::read);
    CHECK(feed(o, "+OK Begin TLS\r\n", chunk).what == kind::handshake);
    CHECK(o.on_handshake_done().what == kind::done);
    CHECK(o.greeting() == "+OK POP3 ready <1.2@mx>\r\n");
    CHECK_FALSE(o.upgrade_skipped());
  }
}

TEST_CASE("pop3 opener: plaintext and implicit legs read the greeting only", "[pop3]") {
  for (auto tls : {config::back_tls::none, config::back_tls::implicit}) {
    pop3_backend_opener o(tls, true);
    CHECK(o.on_read("+OK hi\r\n").what == kind::done);
    CHECK(o.greeting() == "+OK hi\r\n");
  }
}

TEST_CASE("pop3 opener: refusals fail with the server's text", "[pop3]") {
  SECTION("-ERR greeting") {
    pop3_backend_opener o(config::back_tls::starttls, true);
    CHECK_THAT(failure(o.on_read("-ERR busy\r\n")), Catch::Contains("-ERR busy"));
  }
  SECTION("STLS not listed: require_tls fails, otherwise plaintext") {
    auto o = after_capa(true);
    CHECK_THAT(failure(o.on_read("+OK\r\nUSER\r\n.\r\n")), Catch::Contains("STLS"));
    auto lax = after_capa(false);
    CHECK(lax.on_read("+OK\r\nUSER\r\n.\r\n").what == kind::done);
    CHECK(lax.upgrade_skipped());
  }
  SECTION("-ERR to STLS after CAPA listed it") {
    auto o = after_stls(false);
    CHECK_THAT(failure(o.on_read("-ERR no TLS\r\n")), Catch::Contains("-ERR no TLS"));
  }
  SECTION("no CAPA: STLS is tried and its answer decides") {
    auto o = after_capa(true);
    auto a = o.on_read("-ERR unknown command\r\n");
    REQUIRE(a.what == kind::write);
    CHECK(a.data == "STLS\r\n");
    o.on_written();
    CHECK(o.on_read("-ERR no TLS\r\n").what == kind::fail);
  }
}

TEST_CASE("pop3 opener: data after +OK to STLS and overlong lines fail", "[pop3]") {
  auto o = after_stls(true);
  CHECK_THAT(failure(o.on_read("+OK go\r\n+OK injected\r\n")),
             Catch::Contains("after its STLS reply"));

  pop3_backend_opener long_line(config::back_tls::starttls, true);
  CHECK(long_line.on_read(std::string(pop3_backend_opener::max_line + 10, 'x')).what == kind::fail);
}
