// Inputs fuzz_pop3_machine (tests/fuzz/) found, as scripted unit tests. Each names its corpus file
// in tests/fuzz/corpus/pop3_machine/, which ctest also replays through the fuzz target.
#include <catch2/catch.hpp>
#include <string>

#include "../imap/machine_harness.hpp"
#include "protocols/pop3/pop3_machine.hpp"

using namespace tlsbridge;
using protocols::pop3::pop3_machine;
using protocols::pop3::machine_settings;
using test::machine_harness;

TEST_CASE("pop3 fuzz regression: a machine closed during the front handshake stays closed",
          "[pop3][fuzz]") {
  // corpus/pop3_machine/seed-tls-after-close: STLS is accepted (start_front_tls), the idle
  // timeout closes the machine while the driver is in the handshake, and the driver then
  // completes the handshake it started. The machine used to reopen itself in command mode and
  // relay what the client sent next.
  machine_settings s;  // STARTTLS front, require_tls
  s.hostname = "proxy.test";
  pop3_machine m(s, "+OK ready\r\n");
  machine_harness h(m, false);
  h.start();
  h.take_client();
  h.client("STLS\r\n");
  CHECK(h.take_marks() == std::vector<std::string>{"start_front_tls"});
  h.idle_timeout();
  CHECK(h.take_client() == "+OK Begin TLS negotiation\r\n"
                           "-ERR proxy.test autologout; idle timeout\r\n");
  REQUIRE(h.closed());
  h.take_marks();

  h.front_tls();
  CHECK(!m.client_input_paused());
  // Nothing the client sends now may be acted on: no reply, nothing to the backend.
  h.client("NOOP\r\nUSER alice\r\n");
  h.backend("+OK late\r\n");
  h.shutdown();
  CHECK(h.take_client().empty());
  CHECK(h.take_backend().empty());
  CHECK(h.take_marks().empty());
}
