// A scripted driver for the IMAP and POP3 machines' tests: feeds events the way proxy/session does
// and keeps what the machine asked for — bytes to each side, and the other steps (start_front_tls,
// close, ...) marked where they happened. Client and backend bytes can be fed whole or one byte at
// a time; a scenario run under both feeds must produce the same transcript.
#pragma once

#include <catch2/catch.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "protocols/common/session_machine.hpp"

namespace tlsbridge::test {

class machine_harness {
 public:
  machine_harness(protocols::session_machine& m, bool bytewise) : m_(m), bytewise_(bytewise) {}

  void start() {
    run([&](protocols::step_list& out) { m_.on_start(out); });
  }
  void client(std::string_view bytes) {
    run([&](protocols::step_list& out) {
      if (!bytewise_) return m_.on_client_data(bytes, out);
      for (char c : bytes) m_.on_client_data(std::string_view(&c, 1), out);
    });
  }
  void backend(std::string_view bytes) {
    run([&](protocols::step_list& out) {
      if (!bytewise_) return m_.on_backend_data(bytes, out);
      for (char c : bytes) m_.on_backend_data(std::string_view(&c, 1), out);
    });
  }
  void front_tls() {
    run([&](protocols::step_list& out) { m_.on_front_tls_established(out); });
  }
  void client_eof() {
    run([&](protocols::step_list& out) { m_.on_client_eof(out); });
  }
  void backend_eof() {
    run([&](protocols::step_list& out) { m_.on_backend_eof(out); });
  }
  void idle_timeout() {
    run([&](protocols::step_list& out) { m_.on_idle_timeout(out); });
  }
  void shutdown() {
    run([&](protocols::step_list& out) { m_.on_shutdown(out); });
  }

  // What was sent to each side since the last take.
  std::string take_client() { return std::exchange(client_new_, {}); }
  std::string take_backend() { return std::exchange(backend_new_, {}); }
  // The non-write steps since the last take, e.g. {"start_front_tls", "close"}.
  std::vector<std::string> take_marks() { return std::exchange(marks_new_, {}); }
  bool closed() const { return closed_; }
  // Everything, in order: "C:" client bytes, "B:" backend bytes, "!" marks.
  const std::string& transcript() const { return transcript_; }

 private:
  template <typename F>
  void run(F&& f) {
    protocols::step_list out;
    f(out);
    for (const auto& s : out.steps()) {
      using k = protocols::step::kind;
      switch (s.what) {
        case k::send_client:
          client_new_ += s.data;
          append('C', s.data);
          break;
        case k::send_backend:
          backend_new_ += s.data;
          append('B', s.data);
          break;
        default: {
          std::string mark = s.what == k::start_front_tls ? "start_front_tls"
                             : s.what == k::close         ? "close"
                             : s.what == k::abort_backend ? "abort_backend"
                             : s.what == k::delay_client  ? "delay_client"
                                                          : "other";
          if (s.what == k::close) closed_ = true;
          marks_new_.push_back(mark);
          transcript_ += "!" + mark + "\n";
          last_side_ = 0;
        }
      }
    }
  }
  // Bytes to one side are coalesced in the transcript however they were split into steps.
  void append(char side, const std::string& data) {
    if (last_side_ != side) transcript_ += std::string("\n") + side + ":";
    transcript_ += data;
    last_side_ = side;
  }

  protocols::session_machine& m_;
  bool bytewise_;
  std::string client_new_, backend_new_, transcript_;
  std::vector<std::string> marks_new_;
  char last_side_ = 0;
  bool closed_ = false;
};

}  // namespace tlsbridge::test
