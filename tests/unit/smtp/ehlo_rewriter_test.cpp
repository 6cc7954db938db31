// rewrite_ehlo_reply against the Exchange 2010 EHLO reply, before and after front TLS.
#include "protocols/smtp/ehlo_rewriter.hpp"

#include <algorithm>
#include <catch2/catch.hpp>
#include <string>
#include <vector>

using namespace tlsbridge::protocols::smtp;

namespace {

reply parse_one(const std::string& wire) {
  reply_parser p;
  p.append(wire);
  reply r;
  REQUIRE(p.next(r) == reply_parser::status::reply_ready);
  REQUIRE(p.buffered() == 0);
  return r;
}

const std::string exchange_2010_ehlo =
    "250-EXCH2010.contoso.local Hello [10.0.0.9]\r\n"
    "250-SIZE 10485760\r\n"
    "250-PIPELINING\r\n"
    "250-DSN\r\n"
    "250-ENHANCEDSTATUSCODES\r\n"
    "250-STARTTLS\r\n"
    "250-X-ANONYMOUSTLS\r\n"
    "250-AUTH NTLM\r\n"
    "250-X-EXPS GSSAPI NTLM\r\n"
    "250-8BITMIME\r\n"
    "250-BINARYMIME\r\n"
    "250-CHUNKING\r\n"
    "250-XEXCH50\r\n"
    "250-XRDST\r\n"
    "250 XSHADOW\r\n";

std::size_t count_keyword(const reply& r, const std::string& keyword) {
  return static_cast<std::size_t>(std::count_if(r.lines.begin() + 1, r.lines.end(), [&](auto& l) {
    auto text = l.substr(4);
    return text == keyword || text.rfind(keyword + " ", 0) == 0 ||
           text.rfind(keyword + "=", 0) == 0;
  }));
}

// The rewritten reply must itself parse as one well-formed reply.
void check_well_formed(const reply& r) {
  reply again = parse_one(r.wire());
  CHECK(again.lines == r.lines);
  for (std::size_t i = 0; i < r.lines.size(); ++i) {
    INFO("line " << i << ": " << r.lines[i]);
    CHECK(r.lines[i].substr(0, 3) == "250");
    CHECK(r.lines[i][3] == (i + 1 == r.lines.size() ? ' ' : '-'));
  }
}

}  // namespace

TEST_CASE("rewrite_ehlo_reply: Exchange 2010 before front TLS", "[smtp][ehlo]") {
  const reply backend = parse_one(exchange_2010_ehlo);
  const reply r = rewrite_ehlo_reply(backend, {.offer_starttls = true, .front_encrypted = false});
  CHECK(r.wire() ==
        "250-EXCH2010.contoso.local Hello [10.0.0.9]\r\n"
        "250-SIZE 10485760\r\n"
        "250-PIPELINING\r\n"
        "250-DSN\r\n"
        "250-ENHANCEDSTATUSCODES\r\n"
        "250-8BITMIME\r\n"
        "250-BINARYMIME\r\n"
        "250-CHUNKING\r\n"
        "250 STARTTLS\r\n");
  check_well_formed(r);
  CHECK(count_keyword(r, "STARTTLS") == 1);
  for (const char* gone :
       {"AUTH", "X-EXPS", "X-ANONYMOUSTLS", "XEXCH50", "XRDST", "XSHADOW", "XSHADOWREQUEST"}) {
    INFO(gone);
    CHECK(count_keyword(r, gone) == 0);
    CHECK_FALSE(ehlo_has_extension(r, gone));
  }
  CHECK(ehlo_has_extension(r, "STARTTLS"));
  CHECK(ehlo_has_extension(r, "CHUNKING"));
}

TEST_CASE("rewrite_ehlo_reply: Exchange 2010 after front TLS", "[smtp][ehlo]") {
  const reply backend = parse_one(exchange_2010_ehlo);
  const reply r = rewrite_ehlo_reply(backend, {.offer_starttls = false, .front_encrypted = true});
  CHECK(r.wire() ==
        "250-EXCH2010.contoso.local Hello [10.0.0.9]\r\n"
        "250-SIZE 10485760\r\n"
        "250-PIPELINING\r\n"
        "250-DSN\r\n"
        "250-ENHANCEDSTATUSCODES\r\n"
        "250-AUTH NTLM\r\n"
        "250-X-EXPS GSSAPI NTLM\r\n"
        "250-8BITMIME\r\n"
        "250-BINARYMIME\r\n"
        "250 CHUNKING\r\n");
  check_well_formed(r);
  CHECK(count_keyword(r, "STARTTLS") == 0);
  CHECK(ehlo_has_extension(r, "AUTH"));
  CHECK(ehlo_has_extension(r, "X-EXPS"));
  for (const char* gone : {"X-ANONYMOUSTLS", "XEXCH50", "XRDST", "XSHADOW"}) {
    INFO(gone);
    CHECK(count_keyword(r, gone) == 0);
  }
}

TEST_CASE("rewrite_ehlo_reply: a plaintext front leg (no STARTTLS offered, not encrypted)",
          "[smtp][ehlo]") {
  const reply r = rewrite_ehlo_reply(parse_one(exchange_2010_ehlo), {});
  CHECK(count_keyword(r, "STARTTLS") == 0);
  CHECK(count_keyword(r, "AUTH") == 0);
  CHECK(r.lines.back() == "250 CHUNKING");
  check_well_formed(r);
}

TEST_CASE("rewrite_ehlo_reply: edge shapes", "[smtp][ehlo]") {
  SECTION("a one-line 250 gets STARTTLS as a second line") {
    auto r = rewrite_ehlo_reply(parse_one("250 mx.example\r\n"), {.offer_starttls = true});
    CHECK(r.wire() == "250-mx.example\r\n250 STARTTLS\r\n");
  }
  SECTION("the greeting line is never taken for an extension") {
    auto r = rewrite_ehlo_reply(parse_one("250-STARTTLS.example\r\n250 AUTH=LOGIN PLAIN\r\n"), {});
    CHECK(r.wire() == "250 STARTTLS.example\r\n");
  }
  SECTION("keywords match case-insensitively, AUTH= too") {
    auto r = rewrite_ehlo_reply(
        parse_one("250-mx\r\n250-starttls\r\n250-auth=LOGIN\r\n250-Auth PLAIN\r\n250 size 10\r\n"),
        {.offer_starttls = true});
    CHECK(r.wire() == "250-mx\r\n250-size 10\r\n250 STARTTLS\r\n");
  }
  SECTION("XSHADOWREQUEST is removed, a look-alike is not") {
    auto r = rewrite_ehlo_reply(parse_one("250-mx\r\n250-XSHADOWREQUEST\r\n250 XSHADOWFOO\r\n"),
                                {.front_encrypted = true});
    CHECK(r.wire() == "250-mx\r\n250 XSHADOWFOO\r\n");
  }
  SECTION("non-250 replies pass unchanged") {
    for (const char* wire : {"501 5.5.4 Invalid domain name\r\n", "421 4.3.2 busy\r\n",
                             "502-not\r\n502 implemented\r\n", "550 STARTTLS\r\n"}) {
      INFO(wire);
      auto backend = parse_one(wire);
      CHECK(rewrite_ehlo_reply(backend, {.offer_starttls = true}).wire() == wire);
    }
  }
}

TEST_CASE("ehlo_has_extension looks at extension lines only", "[smtp][ehlo]") {
  const reply r = parse_one(exchange_2010_ehlo);
  CHECK(ehlo_has_extension(r, "STARTTLS"));
  CHECK(ehlo_has_extension(r, "AUTH"));
  CHECK(ehlo_has_extension(r, "XSHADOW"));
  CHECK_FALSE(ehlo_has_extension(r, "SMTPUTF8"));
  CHECK_FALSE(ehlo_has_extension(parse_one("250 STARTTLS\r\n"), "STARTTLS"));
  CHECK(ehlo_has_extension(parse_one("250-mx\r\n250 starttls\r\n"), "STARTTLS"));
}
