// Helpers for the HTTP unit tests: a transcript of what a machine's steps did (bytes to each side,
// connects, half-closes, close), feeds whole or byte by byte, base64 and NTLM message builders.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "protocols/common/session_machine.hpp"
#include "protocols/http/https_machine.hpp"

namespace tlsbridge::test::http {

using protocols::step;
using protocols::step_list;

struct transcript {
  std::string to_client;
  std::string to_backend;
  int connects = 0;
  int closes = 0;
  int aborts = 0;
  int client_shutdowns = 0;
  int backend_shutdowns = 0;
  std::vector<boost::json::object> records;
  // The order of the kinds of steps, e.g. to check that connect_backend precedes the head.
  std::vector<step::kind> kinds;

  void apply(const step_list& out) {
    for (const auto& s : out.steps()) {
      kinds.push_back(s.what);
      switch (s.what) {
        case step::kind::send_client:
          to_client += s.data;
          break;
        case step::kind::send_backend:
          to_backend += s.data;
          break;
        case step::kind::connect_backend:
          ++connects;
          break;
        case step::kind::delay_client:  // only with an auth gate, which is not set here
          break;
        case step::kind::close:
          ++closes;
          break;
        case step::kind::abort_backend:
          ++aborts;
          break;
        case step::kind::shutdown_client_send:
          ++client_shutdowns;
          break;
        case step::kind::shutdown_backend_send:
          ++backend_shutdowns;
          break;
        default:
          break;
      }
    }
  }
  std::string take_client() { return std::exchange(to_client, {}); }
  std::string take_backend() { return std::exchange(to_backend, {}); }
};

// A machine with its transcript. `bytewise` feeds every byte as its own event.
struct harness {
  protocols::http::https_machine machine;
  transcript t;
  bool bytewise = false;

  explicit harness(protocols::http::machine_settings s = {}, bool bytewise_feed = false)
      : machine(std::move(s)), bytewise(bytewise_feed) {
    protocols::connection_info info;
    info.client = "203.0.113.9:50123";
    info.client_ip = "203.0.113.9";
    info.front_tls = true;
    machine.set_connection(info);
    step_list out;
    machine.on_start(out);
    t.apply(out);
  }
  template <typename F>
  void event(F&& f) {
    step_list out;
    f(out);
    t.apply(out);
    // The driver answers connect_backend at once; tests that want a failure call connected().
    for (auto& e : machine.take_audit_events()) t.records.push_back(std::move(e));
  }
  void client(std::string_view data) {
    if (!bytewise) return event([&](step_list& out) { machine.on_client_data(data, out); });
    for (char c : data)
      event([&](step_list& out) { machine.on_client_data(std::string_view(&c, 1), out); });
  }
  void backend(std::string_view data) {
    if (!bytewise) return event([&](step_list& out) { machine.on_backend_data(data, out); });
    for (char c : data)
      event([&](step_list& out) { machine.on_backend_data(std::string_view(&c, 1), out); });
  }
  void connected(bool ok) {
    event([&](step_list& out) { machine.on_backend_connected(ok, out); });
  }
  void client_eof() {
    event([&](step_list& out) { machine.on_client_eof(out); });
  }
  void backend_eof() {
    event([&](step_list& out) { machine.on_backend_eof(out); });
  }
  void idle_timeout() {
    event([&](step_list& out) { machine.on_idle_timeout(out); });
  }
  void shutdown() {
    event([&](step_list& out) { machine.on_shutdown(out); });
  }
};

inline std::string base64(std::string_view in) {
  static constexpr char alphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const std::uint32_t v = static_cast<unsigned char>(in[i]) << 16 |
                            static_cast<unsigned char>(in[i + 1]) << 8 |
                            static_cast<unsigned char>(in[i + 2]);
    out += alphabet[v >> 18];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += alphabet[v & 63];
  }
  if (i + 1 == in.size()) {
    const std::uint32_t v = static_cast<unsigned char>(in[i]) << 16;
    out += alphabet[v >> 18];
    out += alphabet[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    const std::uint32_t v =
        static_cast<unsigned char>(in[i]) << 16 | static_cast<unsigned char>(in[i + 1]) << 8;
    out += alphabet[v >> 18];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

inline std::string utf16le(std::string_view ascii) {
  std::string out;
  for (char c : ascii) {
    out += c;
    out += '\0';
  }
  return out;
}

inline void put_le16(std::string& b, std::size_t at, std::uint32_t v) {
  b[at] = static_cast<char>(v & 0xff);
  b[at + 1] = static_cast<char>((v >> 8) & 0xff);
}
inline void put_le32(std::string& b, std::size_t at, std::uint32_t v) {
  put_le16(b, at, v & 0xffff);
  put_le16(b, at + 2, v >> 16);
}

// An NTLM AUTHENTICATE_MESSAGE (MS-NLMP §2.2.1.3) with the payload after the 72-byte header
// (version included): domain, user, workstation, then 24-byte LM and NT responses.
inline std::string ntlm_type3(std::string_view domain, std::string_view user,
                              std::string_view workstation, bool unicode = true) {
  std::string b(72, '\0');
  b.replace(0, 8, std::string("NTLMSSP\0", 8));
  put_le32(b, 8, 3);
  auto add = [&](std::size_t field, std::string_view bytes) {
    put_le16(b, field, static_cast<std::uint32_t>(bytes.size()));
    put_le16(b, field + 2, static_cast<std::uint32_t>(bytes.size()));
    put_le32(b, field + 4, static_cast<std::uint32_t>(b.size()));
    b += bytes;
  };
  add(28, unicode ? utf16le(domain) : std::string(domain));
  add(36, unicode ? utf16le(user) : std::string(user));
  add(44, unicode ? utf16le(workstation) : std::string(workstation));
  add(12, std::string(24, '\x11'));
  add(20, std::string(24, '\x22'));
  put_le32(b, 60, unicode ? 0xa2888205u : 0xa2888206u);  // UNICODE is bit 0x1
  return b;
}

inline std::string ntlm_type1() {
  std::string b(32, '\0');
  b.replace(0, 8, std::string("NTLMSSP\0", 8));
  put_le32(b, 8, 1);
  put_le32(b, 12, 0xa2088207u);
  return b;
}

}  // namespace tlsbridge::test::http
