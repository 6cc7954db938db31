#include "protocols/imap/imap_syntax.hpp"

#include <catch2/catch.hpp>

using namespace tlsbridge::protocols::imap;

TEST_CASE("imap trailing_literal: yes/no table", "[imap]") {
  struct row {
    const char* line;
    bool literal;
    std::uint64_t size;
    bool sync;
  };
  const row rows[] = {
      {"a APPEND INBOX {5}", true, 5, true},
      {"a APPEND INBOX {5+}", true, 5, false},
      {"a APPEND INBOX ~{12}", true, 12, true},
      {"a LOGIN {0}", true, 0, true},
      {"* 1 FETCH (BODY[] {1234}", true, 1234, true},
      {"a NOOP", false, 0, true},
      {"a SEARCH TEXT \"{5}\"", false, 0, true},
      {"a x{}", false, 0, true},
      {"a x{+}", false, 0, true},
      {"a x{5x}", false, 0, true},
      {"a x}", false, 0, true},
      {"", false, 0, true},
  };
  for (const auto& r : rows) {
    INFO(r.line);
    auto m = trailing_literal(r.line);
    REQUIRE(m.has_value() == r.literal);
    if (m) {
      CHECK(m->size == r.size);
      CHECK(m->synchronizing == r.sync);
    }
  }
  // Absurd sizes saturate instead of wrapping to something small.
  auto huge = trailing_literal("a APPEND x {99999999999999999999999999}");
  REQUIRE(huge);
  CHECK(huge->size == UINT64_MAX);
}

TEST_CASE("imap parse_command_head and login_user", "[imap]") {
  auto h = parse_command_head("a1 login alice secret");
  REQUIRE(h);
  CHECK(h->tag == "a1");
  CHECK(h->name == "LOGIN");
  CHECK(h->rest == "alice secret");
  CHECK(!parse_command_head("lonely"));
  CHECK(parse_command_head("a2 NOOP")->rest.empty());

  CHECK(login_user("alice secret") == "alice");
  CHECK(login_user("\"al ice\" \"pw\"") == "al ice");
  CHECK(login_user("\"a\\\"b\\\\c\" pw") == "a\"b\\c");
  CHECK(!login_user("{5}"));
  CHECK(!login_user("\"unterminated"));
  CHECK(!login_user(""));
}

TEST_CASE("imap capability rewriting table", "[imap]") {
  const capability_view before{.offer_starttls = true, .hide_auth = true, .login_disabled = true};
  const capability_view after{};
  struct row {
    const char* in;
    const capability_view* view;
    const char* out;
  };
  const row rows[] = {
      // The greeting's response code.
      {"* OK [CAPABILITY IMAP4rev1 SASL-IR STARTTLS AUTH=PLAIN AUTH=LOGIN IDLE] Dovecot ready.",
       &before, "* OK [CAPABILITY IMAP4rev1 SASL-IR IDLE STARTTLS LOGINDISABLED] Dovecot ready."},
      {"* OK [CAPABILITY IMAP4rev1 SASL-IR STARTTLS AUTH=PLAIN IDLE] Dovecot ready.", &after,
       "* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN IDLE] Dovecot ready."},
      // Untagged CAPABILITY, the backend's own LOGINDISABLED and COMPRESS go.
      {"* CAPABILITY IMAP4rev1 LOGINDISABLED STARTTLS COMPRESS=DEFLATE AUTH=GSSAPI", &after,
       "* CAPABILITY IMAP4rev1 AUTH=GSSAPI"},
      {"* capability imap4rev1 starttls auth=plain", &before,
       "* capability imap4rev1 STARTTLS LOGINDISABLED"},
      {"* CAPABILITY", &before, "* CAPABILITY STARTTLS LOGINDISABLED"},
      // Tagged OK with the code.
      {"a1 OK [CAPABILITY IMAP4rev1 AUTH=PLAIN STARTTLS] Logged in", &after,
       "a1 OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] Logged in"},
      {"* PREAUTH [CAPABILITY IMAP4rev1 STARTTLS] ready", &after,
       "* PREAUTH [CAPABILITY IMAP4rev1] ready"},
      // Lines without a capability list pass unchanged.
      {"* OK [UIDVALIDITY 1] UIDs valid", &before, "* OK [UIDVALIDITY 1] UIDs valid"},
      {"a1 OK STARTTLS AUTH=PLAIN is just text", &before, "a1 OK STARTTLS AUTH=PLAIN is just text"},
      {"* 1 FETCH (FLAGS (\\Seen))", &before, "* 1 FETCH (FLAGS (\\Seen))"},
      {"+ CAPABILITY STARTTLS", &before, "+ CAPABILITY STARTTLS"},
  };
  for (const auto& r : rows) {
    INFO(r.in);
    CHECK(rewrite_response(r.in, *r.view) == r.out);
  }
  CHECK(has_capability("IMAP4rev1 starttls IDLE", "STARTTLS"));
  CHECK(!has_capability("IMAP4rev1 XSTARTTLS", "STARTTLS"));
  CHECK(capabilities_in("* OK [CAPABILITY A B] hi") == "A B");
  CHECK(replace_capabilities("* OK [CAPABILITY A STARTTLS] hi", "A AUTH=PLAIN") ==
        "* OK [CAPABILITY A AUTH=PLAIN] hi");
}
