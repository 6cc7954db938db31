#include "protocols/tls_relay/tls_relay_machine.hpp"

namespace tlsbridge::protocols {

void tls_relay_machine::on_client_eof(step_list& out) {
  client_done_ = true;
  out.shutdown_backend_send();
  if (backend_done_) {
    facts_.outcome = "ok";
    out.close();
  }
}

void tls_relay_machine::on_backend_eof(step_list& out) {
  backend_done_ = true;
  out.shutdown_client_send();
  if (client_done_) {
    facts_.outcome = "ok";
    out.close();
  }
}

void tls_relay_machine::on_idle_timeout(step_list& out) {
  facts_.outcome = "timeout";
  facts_.reason = "idle timeout";
  out.close();
}

}  // namespace tlsbridge::protocols
