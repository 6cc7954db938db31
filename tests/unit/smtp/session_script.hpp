// Scripted I/O for sans-I/O session machines, in the spirit of Boost.MySQL's sansio tests: a test
// feeds one event at a time (client bytes, backend bytes, EOFs, the front handshake, a timeout,
// shutdown) and states the exact steps the machine must answer, e.g.
//
//   s.client("EHLO x\r\n", {expect_backend("EHLO x\r\n")});
//   s.client("STARTTLS\r\n", {expect_client("220 2.0.0 Ready to start TLS\r\n"),
//                             expect_start_front_tls()});
//
// Every script can be run under three feeds: whole chunks, the client's bytes one at a time, and
// both sides' bytes one at a time. Bytes fed one at a time go into one step_list for the event, so
// the expected steps are the same under every feed — which is exactly the "byte-at-a-time ==
// whole-buffer" property. The script also keeps the transcript: every byte sent
// to each side, so runs under different feeds can be compared whole.
#pragma once

#include <catch2/catch.hpp>
#include <cstdio>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "protocols/common/session_machine.hpp"

namespace tlsbridge::test {

using protocols::session_machine;
using protocols::step;
using protocols::step_list;

// Bytes as a C-like literal: CR LF and non-printables are visible in failure messages.
inline std::string printable(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '\r':
        out += "\\r";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(c));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out;
}

// Long data is shown by its ends, its length and a hash, so failures stay readable.
inline std::string abbreviated(std::string_view s) {
  if (s.size() <= 300) return "\"" + printable(s) + "\"";
  return "\"" + printable(s.substr(0, 100)) + "\"...(" + std::to_string(s.size()) +
         " bytes, hash " + std::to_string(std::hash<std::string_view>{}(s)) + ")...\"" +
         printable(s.substr(s.size() - 40)) + "\"";
}

inline std::string describe(const step& s) {
  switch (s.what) {
    case step::kind::send_client:
      return "send_client " + abbreviated(s.data);
    case step::kind::send_backend:
      return "send_backend " + abbreviated(s.data);
    case step::kind::start_front_tls:
      return "start_front_tls";
    case step::kind::shutdown_client_send:
      return "shutdown_client_send";
    case step::kind::shutdown_backend_send:
      return "shutdown_backend_send";
    case step::kind::abort_backend:
      return "abort_backend";
    case step::kind::connect_backend:
      return "connect_backend";
    case step::kind::close:
      return "close";
    case step::kind::delay_client:
      return "delay_client " + std::to_string(s.delay.count()) + "ms";
  }
  return "?";
}

inline std::string describe(const std::vector<step>& steps) {
  std::string out;
  for (const auto& s : steps) out += describe(s) + "\n";
  return out.empty() ? "(no steps)\n" : out;
}

inline step expect_client(std::string data) {
  return {step::kind::send_client, std::move(data)};
}
inline step expect_backend(std::string data) {
  return {step::kind::send_backend, std::move(data)};
}
inline step expect_start_front_tls() {
  return {step::kind::start_front_tls, {}};
}
inline step expect_shutdown_client_send() {
  return {step::kind::shutdown_client_send, {}};
}
inline step expect_shutdown_backend_send() {
  return {step::kind::shutdown_backend_send, {}};
}
inline step expect_abort_backend() {
  return {step::kind::abort_backend, {}};
}
inline step expect_connect_backend() {
  return {step::kind::connect_backend, {}};
}
inline step expect_close() {
  return {step::kind::close, {}};
}

enum class feed { whole, client_bytewise, all_bytewise };
inline constexpr feed all_feeds[] = {feed::whole, feed::client_bytewise, feed::all_bytewise};

inline const char* feed_name(feed f) {
  switch (f) {
    case feed::whole:
      return "whole chunks";
    case feed::client_bytewise:
      return "client bytes one at a time";
    case feed::all_bytewise:
      return "client and backend bytes one at a time";
  }
  return "?";
}

class session_script {
 public:
  session_script(session_machine& machine, feed f) : machine_(machine), feed_(f) {}

  void start(const std::vector<step>& expected) {
    run("on_start", {}, expected, [&](step_list& out) { machine_.on_start(out); });
  }
  void client(std::string_view bytes, const std::vector<step>& expected) {
    run("client sends", bytes, expected, [&](step_list& out) {
      feed_bytes(bytes, feed_ != feed::whole,
                 [&](std::string_view b) { machine_.on_client_data(b, out); });
    });
  }
  void backend(std::string_view bytes, const std::vector<step>& expected) {
    run("backend sends", bytes, expected, [&](step_list& out) {
      feed_bytes(bytes, feed_ == feed::all_bytewise,
                 [&](std::string_view b) { machine_.on_backend_data(b, out); });
    });
  }
  void front_tls_established(const std::vector<step>& expected) {
    run("front TLS established", {}, expected,
        [&](step_list& out) { machine_.on_front_tls_established(out); });
  }
  void client_eof(const std::vector<step>& expected) {
    run("client EOF", {}, expected, [&](step_list& out) { machine_.on_client_eof(out); });
  }
  void backend_eof(const std::vector<step>& expected) {
    run("backend EOF", {}, expected, [&](step_list& out) { machine_.on_backend_eof(out); });
  }
  void idle_timeout(const std::vector<step>& expected) {
    run("idle timeout", {}, expected, [&](step_list& out) { machine_.on_idle_timeout(out); });
  }
  void shutdown(const std::vector<step>& expected) {
    run("shutdown", {}, expected, [&](step_list& out) { machine_.on_shutdown(out); });
  }

  // Everything written to each side so far, in order.
  const std::string& client_bytes() const { return client_bytes_; }
  const std::string& backend_bytes() const { return backend_bytes_; }
  // Every step so far, as text (one per line), e.g. to look for "abort_backend".
  const std::string& transcript() const { return transcript_; }
  feed feeding() const { return feed_; }

 private:
  static void feed_bytes(std::string_view bytes, bool bytewise,
                         const std::function<void(std::string_view)>& deliver) {
    if (!bytewise) {
      deliver(bytes);
      return;
    }
    for (std::size_t i = 0; i < bytes.size(); ++i) deliver(bytes.substr(i, 1));
  }

  template <class Event>
  void run(const char* event, std::string_view input, const std::vector<step>& expected,
           Event&& deliver) {
    step_list out;
    deliver(out);
    INFO("feed: " << feed_name(feed_));
    INFO("event: " << event << (input.empty() ? "" : " " + abbreviated(input)));
    REQUIRE(describe(out.steps()) == describe(expected));
    for (const auto& s : out.steps()) {
      if (s.what == step::kind::send_client) client_bytes_ += s.data;
      if (s.what == step::kind::send_backend) backend_bytes_ += s.data;
      transcript_ += describe(s) + "\n";
    }
  }

  session_machine& machine_;
  feed feed_;
  std::string client_bytes_;
  std::string backend_bytes_;
  std::string transcript_;
};

}  // namespace tlsbridge::test
