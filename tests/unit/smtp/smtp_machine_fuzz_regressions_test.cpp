// Inputs fuzz_smtp_machine (tests/fuzz/) found, as scripted unit tests. Each names its corpus file
// in tests/fuzz/corpus/smtp_machine/, which ctest also replays through the fuzz target.
#include <catch2/catch.hpp>
#include <string>

#include "protocols/smtp/smtp_machine.hpp"

using namespace tlsbridge::protocols;
using namespace tlsbridge::protocols::smtp;

namespace {

bool has(const step_list& out, step::kind k) {
  for (const auto& s : out.steps())
    if (s.what == k) return true;
  return false;
}

}  // namespace

TEST_CASE("fuzz regression: a machine closed during the front handshake stays closed",
          "[smtp][session][fuzz]") {
  // corpus/smtp_machine/seed-starttls-behind-noop-then-backend-closes: the STARTTLS reply waits
  // behind NOOP's; the backend's 250 releases it (start_front_tls), then the backend's unsolicited
  // 421 closes the machine while the driver is still in the handshake, which it then completes.
  machine_settings settings;  // STARTTLS front, require_tls
  smtp_machine m(settings, "220 backend ESMTP\r\n");
  step_list out;
  m.on_start(out);
  out.clear();
  m.on_client_data("NOOP\r\nSTARTTLS\r\n", out);
  CHECK(m.client_input_paused());
  out.clear();
  m.on_backend_data("250 2.0.0 OK\r\n", out);
  REQUIRE(has(out, step::kind::start_front_tls));
  out.clear();
  m.on_backend_data("421 4.3.2 Service not available\r\n", out);
  REQUIRE(has(out, step::kind::close));

  out.clear();
  m.on_front_tls_established(out);
  CHECK(out.empty());
  // Nothing the client sends now may be acted on: no reply, nothing to the backend.
  m.on_client_data("EHLO client.example\r\n", out);
  m.on_backend_data("250 mx\r\n", out);
  m.on_idle_timeout(out);
  CHECK(out.empty());
}

TEST_CASE("fuzz finding: a bare CR inside a command line is refused, never relayed",
          "[smtp][session][fuzz]") {
  // "NOOP\rMAIL FROM:<x>" would pass require_tls as a NOOP, and a backend that reads a bare CR as
  // a line end would then run MAIL before TLS.
  machine_settings settings;  // STARTTLS front, require_tls
  smtp_machine m(settings, "220 backend ESMTP\r\n");
  step_list out;
  m.on_start(out);
  out.clear();
  m.on_client_data("NOOP\rMAIL FROM:<x@example.test>\r\nNOOP\r\n", out);
  std::string to_client, to_backend;
  for (const auto& s : out.steps()) {
    if (s.what == step::kind::send_client) to_client += s.data;
    if (s.what == step::kind::send_backend) to_backend += s.data;
  }
  CHECK(to_client.rfind("500 5.5.2", 0) == 0);
  CHECK(to_backend == "NOOP\r\n");  // only the clean command that followed
}
