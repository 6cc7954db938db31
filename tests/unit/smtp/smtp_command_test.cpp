// parse_command, envelope_address and parse_bdat: yes/no tables.
#include "protocols/smtp/smtp_command.hpp"

#include <catch2/catch.hpp>
#include <limits>
#include <string>

using namespace tlsbridge::protocols::smtp;

TEST_CASE("parse_command: verb, upper-cased name and argument", "[smtp][command]") {
  struct row {
    const char* line;
    verb what;
    const char* name;
    const char* argument;
  };
  const row table[] = {
      {"EHLO client.example", verb::ehlo, "EHLO", "client.example"},
      {"ehlo client.example", verb::ehlo, "EHLO", "client.example"},
      {"HeLo x", verb::helo, "HELO", "x"},
      {"STARTTLS", verb::starttls, "STARTTLS", ""},
      {"starttls", verb::starttls, "STARTTLS", ""},
      {"AUTH NTLM", verb::auth, "AUTH", "NTLM"},
      {"MAIL FROM:<a@b> SIZE=10", verb::mail, "MAIL", "FROM:<a@b> SIZE=10"},
      {"RCPT TO:<c@d>", verb::rcpt, "RCPT", "TO:<c@d>"},
      {"DATA", verb::data, "DATA", ""},
      {"BDAT 100 LAST", verb::bdat, "BDAT", "100 LAST"},
      {"RSET", verb::rset, "RSET", ""},
      {"NOOP", verb::noop, "NOOP", ""},
      {"QUIT", verb::quit, "QUIT", ""},
      {"VRFY x", verb::vrfy, "VRFY", "x"},
      {"EXPN x", verb::expn, "EXPN", "x"},
      {"HELP", verb::help, "HELP", ""},
      {"X-EXPS GSSAPI", verb::x_exps, "X-EXPS", "GSSAPI"},
      {"X-ANONYMOUSTLS", verb::x_anonymoustls, "X-ANONYMOUSTLS", ""},
      {"xexch50 10 2", verb::xexch50, "XEXCH50", "10 2"},
      {"XSHADOW abc", verb::xshadow, "XSHADOW", "abc"},
      {"XSHADOWREQUEST", verb::xshadowrequest, "XSHADOWREQUEST", ""},
      {"XRDST", verb::xrdst, "XRDST", ""},
      {"LHLO x", verb::other, "LHLO", "x"},
      {"FOO bar", verb::other, "FOO", "bar"},
      {"", verb::other, "", ""},
      {"MAILFROM:<a>", verb::other, "MAILFROM:<A>", ""},
      {"DATA ", verb::data, "DATA", ""},
      {" MAIL FROM:<a>", verb::other, "", "MAIL FROM:<a>"},
  };
  for (const auto& r : table) {
    INFO("line: \"" << r.line << "\"");
    auto c = parse_command(r.line);
    CHECK(c.what == r.what);
    CHECK(c.name == r.name);
    CHECK(c.argument == r.argument);
  }
}

TEST_CASE("envelope_address: the forms real clients send", "[smtp][command]") {
  struct row {
    const char* argument;
    const char* prefix;
    const char* address;  // nullptr = nullopt
  };
  const row table[] = {
      {"FROM:<a@b.example>", "FROM:", "a@b.example"},
      {"from:<a@b.example>", "FROM:", "a@b.example"},
      {"FROM:<a@b.example> SIZE=1000 BODY=8BITMIME", "FROM:", "a@b.example"},
      {"FROM: <a@b.example>", "FROM:", "a@b.example"},  // space after the colon
      {"FROM:  <a@b.example> SIZE=1", "FROM:", "a@b.example"},
      {"FROM:a@b.example", "FROM:", "a@b.example"},  // no angle brackets
      {"FROM:a@b.example SIZE=10", "FROM:", "a@b.example"},
      {"FROM: a@b.example", "FROM:", "a@b.example"},
      {"FROM:<>", "FROM:", ""},  // null reverse path
      {"FROM:<> SIZE=10", "FROM:", ""},
      {"FROM:<a@b", "FROM:", "a@b"},  // unterminated: best effort
      {"TO:<c@d.example>", "TO:", "c@d.example"},
      {"To:<c@d.example> NOTIFY=SUCCESS,FAILURE", "TO:", "c@d.example"},
      {"TO:<@relay.example:c@d.example>", "TO:", "@relay.example:c@d.example"},
      {"TO:<Postmaster>", "TO:", "Postmaster"},
      {"FROM:", "FROM:", ""},
      {"TO:<c@d>", "FROM:", nullptr},
      {"FROM <a@b>", "FROM:", nullptr},
      {"FRO", "FROM:", nullptr},
      {"", "TO:", nullptr},
  };
  for (const auto& r : table) {
    INFO("argument: \"" << r.argument << "\" prefix " << r.prefix);
    auto a = envelope_address(r.argument, r.prefix);
    if (r.address == nullptr) {
      CHECK_FALSE(a);
    } else {
      REQUIRE(a);
      CHECK(*a == r.address);
    }
  }
}

TEST_CASE("parse_bdat: size and LAST, nothing else", "[smtp][command]") {
  SECTION("good") {
    struct row {
      const char* argument;
      std::uint64_t size;
      bool last;
    };
    const row table[] = {
        {"0", 0, false},
        {"1234", 1234, false},
        {"1234 LAST", 1234, true},
        {"1234 last", 1234, true},
        {"1234 LaSt", 1234, true},
        {"0 LAST", 0, true},
        {"1234 LAST ", 1234, true},
        {"18446744073709551615", std::numeric_limits<std::uint64_t>::max(), false},
    };
    for (const auto& r : table) {
      INFO("argument: \"" << r.argument << "\"");
      auto h = parse_bdat(r.argument);
      REQUIRE(h);
      CHECK(h->size == r.size);
      CHECK(h->last == r.last);
    }
  }
  SECTION("garbage and overflow") {
    for (const char* bad :
         {"", " ", "LAST", "abc", "12a", "-1", "+1", " 12", "12 FIRST", "12 LASTX", "12 LAST more",
          "1.5", "0x10", "18446744073709551616", "99999999999999999999999"}) {
      INFO("argument: \"" << bad << "\"");
      CHECK_FALSE(parse_bdat(bad));
    }
  }
}
