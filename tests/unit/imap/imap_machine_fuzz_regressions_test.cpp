// Inputs fuzz_imap_machine (tests/fuzz/) found, as scripted unit tests. Each names its corpus file
// in tests/fuzz/corpus/imap_machine/, which ctest also replays through the fuzz target.
#include <catch2/catch.hpp>
#include <string>

#include "machine_harness.hpp"
#include "protocols/imap/imap_machine.hpp"

using namespace tlsbridge;
using protocols::imap::imap_machine;
using protocols::imap::machine_settings;
using test::machine_harness;

TEST_CASE("imap fuzz regression: a machine closed during the front handshake stays closed",
          "[imap][fuzz]") {
  // corpus/imap_machine/seed-tls-after-close: STARTTLS is accepted (start_front_tls), the backend
  // closes while the driver is in the handshake (the machine says BYE and close), and the driver
  // then completes the handshake it started. The machine used to reopen itself in command mode
  // and relay what the client sent next to a backend it had given up.
  machine_settings s;  // STARTTLS front, require_tls
  s.hostname = "proxy.test";
  imap_machine m(s, "* OK [CAPABILITY IMAP4rev1 STARTTLS] ready\r\n");
  machine_harness h(m, false);
  h.start();
  h.take_client();
  h.client("a1 STARTTLS\r\n");
  CHECK(h.take_marks() == std::vector<std::string>{"start_front_tls"});
  h.backend_eof();
  CHECK(h.take_client() == "a1 OK Begin TLS negotiation now\r\n"
                           "* BYE proxy.test connection to backend lost\r\n");
  REQUIRE(h.closed());
  h.take_marks();

  h.front_tls();
  CHECK(!m.client_input_paused());
  // Nothing the client sends now may be acted on: no reply, nothing to the backend.
  h.client("a2 CAPABILITY\r\na3 LOGIN alice secret\r\n");
  h.backend("* OK late\r\n");
  h.idle_timeout();
  CHECK(h.take_client().empty());
  CHECK(h.take_backend().empty());
  CHECK(h.take_marks().empty());
}
