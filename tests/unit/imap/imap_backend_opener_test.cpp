#include "protocols/imap/imap_backend_opener.hpp"

#include <catch2/catch.hpp>

using namespace tlsbridge;
using protocols::imap::imap_backend_opener;
using kind = protocols::backend_opener::action::kind;

TEST_CASE("imap opener: STARTTLS back leg, capabilities refreshed after TLS", "[imap]") {
  imap_backend_opener o(config::back_tls::starttls, true);
  CHECK(o.start().what == kind::read);
  auto a = o.on_read("* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] Dovecot ready.\r\n");
  REQUIRE(a.what == kind::write);
  CHECK(a.data == "A1 STARTTLS\r\n");
  CHECK(o.on_written().what == kind::read);
  CHECK(o.on_read("A1 OK Begin TLS").what == kind::read);
  CHECK(o.on_read(" negotiation now.\r\n").what == kind::handshake);
  a = o.on_handshake_done();
  REQUIRE(a.what == kind::write);
  CHECK(a.data == "A2 CAPABILITY\r\n");
  CHECK(o.on_written().what == kind::read);
  CHECK(o.on_read("* CAPABILITY IMAP4rev1 AUTH=PLAIN IDLE\r\nA2 OK done\r\n").what == kind::done);
  CHECK(o.greeting() == "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN IDLE] Dovecot ready.\r\n");
}

TEST_CASE("imap opener: asks CAPABILITY when the greeting has none; require_tls", "[imap]") {
  imap_backend_opener o(config::back_tls::starttls, true);
  auto a = o.on_read("* OK ready\r\n");
  REQUIRE(a.what == kind::write);
  CHECK(a.data == "A0 CAPABILITY\r\n");
  o.on_written();
  a = o.on_read("* CAPABILITY IMAP4rev1 IDLE\r\nA0 OK done\r\n");
  CHECK(a.what == kind::fail);
  CHECK(a.data.find("STARTTLS") != std::string::npos);

  imap_backend_opener lax(config::back_tls::starttls, false);
  lax.on_read("* OK [CAPABILITY IMAP4rev1] ready\r\n");
  CHECK(lax.upgrade_skipped());
}

TEST_CASE("imap opener: BYE greeting and injected bytes after OK fail", "[imap]") {
  imap_backend_opener o(config::back_tls::none, true);
  CHECK(o.on_read("* BYE too busy\r\n").what == kind::fail);
  imap_backend_opener plain(config::back_tls::none, true);
  CHECK(plain.on_read("* OK hi\r\n").what == kind::done);
  CHECK(plain.greeting() == "* OK hi\r\n");
  imap_backend_opener inj(config::back_tls::starttls, true);
  inj.on_read("* OK [CAPABILITY IMAP4rev1 STARTTLS] hi\r\n");
  inj.on_written();
  CHECK(inj.on_read("A1 OK go\r\n* injected\r\n").what == kind::fail);
}

TEST_CASE("imap opener: untagged lines before A1 OK, split anywhere; A1 NO fails with its text",
          "[imap]") {
  const std::string greeting = "* OK [CAPABILITY IMAP4rev1 STARTTLS] ready\r\n";
  const std::string reply =
      "* CAPABILITY IMAP4rev1 STARTTLS\r\nA1 OK Begin TLS negotiation now\r\n";
  for (std::size_t chunk : {1u, 5u, 64u}) {
    CAPTURE(chunk);
    imap_backend_opener o(config::back_tls::starttls, true);
    o.start();
    protocols::backend_opener::action a{kind::read, {}};
    for (std::size_t i = 0; i < greeting.size(); i += chunk)
      a = o.on_read(greeting.substr(i, chunk));
    REQUIRE(a.what == kind::write);
    CHECK(a.data == "A1 STARTTLS\r\n");
    o.on_written();
    for (std::size_t i = 0; i < reply.size(); i += chunk) a = o.on_read(reply.substr(i, chunk));
    CHECK(a.what == kind::handshake);
  }
  imap_backend_opener no(config::back_tls::starttls, true);
  no.on_read(greeting);
  no.on_written();
  auto a = no.on_read("A1 NO not now\r\n");
  REQUIRE(a.what == kind::fail);
  CHECK(a.data.find("A1 NO not now") != std::string::npos);
}

TEST_CASE("imap opener: an overlong line fails instead of buffering", "[imap]") {
  imap_backend_opener o(config::back_tls::starttls, true);
  CHECK(o.on_read(std::string(imap_backend_opener::max_line + 10, 'x')).what == kind::fail);
}
