// smtp_backend_opener, scripted: each step states the action the opener must answer. Replies are
// also delivered one byte at a time (the opener must keep answering `read` until a reply is whole).
#include "protocols/smtp/backend_opener.hpp"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "session_script.hpp"

using namespace tlsbridge::protocols::smtp;
using tlsbridge::protocols::backend_opener;
using tlsbridge::test::printable;
namespace config = tlsbridge::config;
using kind = backend_opener::action::kind;

namespace {

std::string describe(const backend_opener::action& a) {
  switch (a.what) {
    case kind::read:
      return "read";
    case kind::write:
      return "write \"" + printable(a.data) + "\"";
    case kind::handshake:
      return "handshake";
    case kind::done:
      return "done";
    case kind::fail:
      return "fail: " + a.data;
  }
  return "?";
}

// Delivers `bytes` (whole or one at a time) and returns the action after the last byte; every
// earlier byte must have answered `read`.
backend_opener::action deliver(smtp_backend_opener& o, const std::string& bytes, bool bytewise) {
  if (!bytewise) return o.on_read(bytes);
  for (std::size_t i = 0; i + 1 < bytes.size(); ++i) {
    auto a = o.on_read(bytes.substr(i, 1));
    INFO("byte " << i);
    REQUIRE(describe(a) == "read");
  }
  return o.on_read(bytes.substr(bytes.size() - 1));
}

const std::string greeting = "220-backend.example Microsoft ESMTP MAIL Service\r\n220 ready\r\n";
const std::string ehlo_with_starttls =
    "250-backend.example Hello [10.0.0.2]\r\n250-SIZE\r\n250-PIPELINING\r\n250-STARTTLS\r\n"
    "250-AUTH NTLM\r\n250 XSHADOW\r\n";
const std::string ehlo_without_starttls =
    "250-backend.example Hello [10.0.0.2]\r\n250-SIZE\r\n250 PIPELINING\r\n";

}  // namespace

TEST_CASE("smtp_backend_opener: plaintext and implicit legs read the greeting only",
          "[smtp][opener]") {
  for (bool bytewise : {false, true}) {
    for (auto tls : {config::back_tls::none, config::back_tls::implicit}) {
      INFO("bytewise " << bytewise << " tls " << static_cast<int>(tls));
      smtp_backend_opener o(tls, "proxy.example", true);
      CHECK(describe(o.start()) == "read");
      CHECK(describe(deliver(o, greeting, bytewise)) == "done");
      CHECK(o.greeting() == greeting);
      CHECK_FALSE(o.upgraded_skipped());
    }
  }
}

TEST_CASE("smtp_backend_opener: STARTTLS back leg, step by step", "[smtp][opener]") {
  for (bool bytewise : {false, true}) {
    INFO("bytewise " << bytewise);
    smtp_backend_opener o(config::back_tls::starttls, "proxy.example", true);
    CHECK(describe(o.start()) == "read");
    CHECK(describe(deliver(o, greeting, bytewise)) == "write \"EHLO proxy.example\\r\\n\"");
    CHECK(describe(o.on_written()) == "read");
    CHECK(describe(deliver(o, ehlo_with_starttls, bytewise)) == "write \"STARTTLS\\r\\n\"");
    CHECK(describe(o.on_written()) == "read");
    CHECK(describe(deliver(o, "220 2.0.0 SMTP server ready\r\n", bytewise)) == "handshake");
    CHECK(describe(o.on_handshake_done()) == "done");
    // The client sees the first greeting, not the 220 to STARTTLS.
    CHECK(o.greeting() == greeting);
    CHECK_FALSE(o.upgraded_skipped());
  }
}

TEST_CASE("smtp_backend_opener: a backend without STARTTLS", "[smtp][opener]") {
  for (bool bytewise : {false, true}) {
    INFO("bytewise " << bytewise);
    SECTION("require_tls: fail") {
      smtp_backend_opener o(config::back_tls::starttls, "proxy.example", true);
      o.start();
      CHECK(describe(deliver(o, greeting, bytewise)) == "write \"EHLO proxy.example\\r\\n\"");
      o.on_written();
      auto a = deliver(o, ehlo_without_starttls, bytewise);
      CHECK(a.what == kind::fail);
      CHECK(a.data.find("STARTTLS") != std::string::npos);
    }
    SECTION("without require_tls: go on in plaintext") {
      smtp_backend_opener o(config::back_tls::starttls, "proxy.example", false);
      o.start();
      deliver(o, greeting, bytewise);
      o.on_written();
      CHECK(describe(deliver(o, ehlo_without_starttls, bytewise)) == "done");
      CHECK(o.upgraded_skipped());
      CHECK(o.greeting() == greeting);
    }
    SECTION("the greeting line saying STARTTLS is not an offer") {
      smtp_backend_opener o(config::back_tls::starttls, "proxy.example", true);
      o.start();
      deliver(o, greeting, bytewise);
      o.on_written();
      CHECK(deliver(o, "250 STARTTLS\r\n", bytewise).what == kind::fail);
    }
  }
}

TEST_CASE("smtp_backend_opener: failures", "[smtp][opener]") {
  SECTION("a non-220 greeting") {
    for (const char* g : {"554 5.3.2 no service\r\n", "421 4.3.2 busy\r\n", "250 hello\r\n"}) {
      INFO(g);
      smtp_backend_opener o(config::back_tls::none, "proxy.example", true);
      o.start();
      auto a = o.on_read(g);
      CHECK(a.what == kind::fail);
      CHECK(a.data.find("greeting") != std::string::npos);
    }
  }
  SECTION("garbage instead of a greeting") {
    smtp_backend_opener o(config::back_tls::starttls, "proxy.example", true);
    o.start();
    CHECK(o.on_read("SSH-2.0-OpenSSH_9.2\r\n").what == kind::fail);
  }
  SECTION("EHLO refused") {
    smtp_backend_opener o(config::back_tls::starttls, "proxy.example", true);
    o.start();
    o.on_read(greeting);
    o.on_written();
    CHECK(o.on_read("502 5.5.1 unrecognized command\r\n").what == kind::fail);
  }
  SECTION("STARTTLS refused") {
    smtp_backend_opener o(config::back_tls::starttls, "proxy.example", true);
    o.start();
    o.on_read(greeting);
    o.on_written();
    o.on_read(ehlo_with_starttls);
    o.on_written();
    CHECK(o.on_read("454 4.7.0 TLS not available\r\n").what == kind::fail);
  }
  SECTION("data after the 220 to STARTTLS (the CVE-2011-0411 mirror)") {
    for (const char* extra : {"X", "250 injected\r\n"}) {
      INFO(extra);
      smtp_backend_opener o(config::back_tls::starttls, "proxy.example", true);
      o.start();
      o.on_read(greeting);
      o.on_written();
      o.on_read(ehlo_with_starttls);
      o.on_written();
      auto a = o.on_read(std::string("220 go ahead\r\n") + extra);
      CHECK(a.what == kind::fail);
      CHECK(a.data.find("after its STARTTLS reply") != std::string::npos);
    }
  }
  SECTION("data out of turn") {
    smtp_backend_opener o(config::back_tls::starttls, "proxy.example", true);
    o.start();
    o.on_read(greeting);  // -> write EHLO; the write has not completed
    CHECK(o.on_read("250 early\r\n").what == kind::fail);
  }
  SECTION("unexpected completions") {
    smtp_backend_opener o(config::back_tls::starttls, "proxy.example", true);
    o.start();
    CHECK(o.on_written().what == kind::fail);
    smtp_backend_opener p(config::back_tls::starttls, "proxy.example", true);
    p.start();
    CHECK(p.on_handshake_done().what == kind::fail);
  }
}
