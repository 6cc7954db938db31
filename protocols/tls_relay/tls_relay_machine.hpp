// Protocol "tls": stunnel's job. Bytes pass unchanged both ways; an EOF from one
// side becomes a half-close towards the other, and the session ends when both directions are done.
#pragma once

#include "protocols/common/session_machine.hpp"

namespace tlsbridge::protocols {

class tls_relay_machine final : public session_machine {
 public:
  void on_start(step_list&) override {}
  void on_client_data(std::string_view data, step_list& out) override {
    out.send_backend(std::string(data));
  }
  void on_backend_data(std::string_view data, step_list& out) override {
    out.send_client(std::string(data));
  }
  void on_front_tls_established(step_list&) override {}
  void on_client_eof(step_list& out) override;
  void on_backend_eof(step_list& out) override;
  void on_idle_timeout(step_list& out) override;
  void on_shutdown(step_list&) override {
  }  // raw bytes have no safe point: runs until the grace ends
  bool client_input_paused() const override { return false; }
  // The driver forwards the data events below itself (session_machine::relays_verbatim).
  bool relays_verbatim() const override { return true; }

 private:
  bool client_done_ = false;
  bool backend_done_ = false;
};

// A do-nothing opener for legs with no protocol-level setup.
class null_backend_opener final : public backend_opener {
 public:
  action start() override { return {action::kind::done, {}}; }
  action on_read(std::string_view) override { return {action::kind::done, {}}; }
  action on_written() override { return {action::kind::done, {}}; }
  action on_handshake_done() override { return {action::kind::done, {}}; }
  const std::string& greeting() const override { return greeting_; }

 private:
  std::string greeting_;
};

}  // namespace tlsbridge::protocols
