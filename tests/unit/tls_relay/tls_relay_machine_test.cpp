// tls_relay_machine (protocol "tls"): bytes pass both ways unchanged; each EOF half-closes the
// other direction and the session ends when both are done.
#include "protocols/tls_relay/tls_relay_machine.hpp"

#include <catch2/catch.hpp>
#include <string>

#include "../smtp/session_script.hpp"

using tlsbridge::protocols::null_backend_opener;
using tlsbridge::protocols::tls_relay_machine;
using namespace tlsbridge::test;

TEST_CASE("tls_relay_machine: bytes pass unchanged both ways", "[tls_relay]") {
  const char raw[] = "\x00\x01\xff\r\n.\r\nQUIT\r\n";
  const std::string binary(raw, sizeof raw - 1);
  for (feed f : all_feeds) {
    tls_relay_machine m;
    session_script s(m, f);
    s.start({});
    s.client("GET / HTTP/1.1\r\n\r\n", {expect_backend("GET / HTTP/1.1\r\n\r\n")});
    s.backend(binary, {expect_client(binary)});
    s.client(binary, {expect_backend(binary)});
    s.front_tls_established({});
    s.shutdown({});  // no safe point: carries on
    s.client("more", {expect_backend("more")});
    CHECK_FALSE(m.client_input_paused());
    CHECK(m.take_audit_events().empty());
  }
}

TEST_CASE("tls_relay_machine: half-close sequencing", "[tls_relay]") {
  SECTION("client first") {
    tls_relay_machine m;
    session_script s(m, feed::whole);
    s.client_eof({expect_shutdown_backend_send()});
    CHECK(m.facts().outcome.empty());
    s.backend("late reply", {expect_client("late reply")});  // the other direction still flows
    s.backend_eof({expect_shutdown_client_send(), expect_close()});
    CHECK(m.facts().outcome == "ok");
  }
  SECTION("backend first") {
    tls_relay_machine m;
    session_script s(m, feed::whole);
    s.backend_eof({expect_shutdown_client_send()});
    s.client("still sending", {expect_backend("still sending")});
    s.client_eof({expect_shutdown_backend_send(), expect_close()});
    CHECK(m.facts().outcome == "ok");
  }
  SECTION("idle timeout") {
    tls_relay_machine m;
    session_script s(m, feed::whole);
    s.idle_timeout({expect_close()});
    CHECK(m.facts().outcome == "timeout");
  }
}

TEST_CASE("null_backend_opener is done at once", "[tls_relay]") {
  null_backend_opener o;
  using kind = tlsbridge::protocols::backend_opener::action::kind;
  CHECK(o.start().what == kind::done);
  CHECK(o.greeting().empty());
}
