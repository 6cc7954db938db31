// What a machine asks before it relays credentials and tells after the backend's verdict — the
// auth guard's side the protocols see (`[listener.auth_guard]`, proxy/auth_guard.hpp keeps the
// counts). The machines find the user name and the verdict in their grammar (SMTP AUTH and its
// 535, IMAP LOGIN/AUTHENTICATE and NO, POP3 PASS/APOP/AUTH and -ERR, HTTP Basic/NTLM and 401); the
// gate answers whether this client may try now and learns what the backend said. The driver hands
// a machine its gate (session_machine::set_auth_gate), bound to the connection's client address;
// without one every attempt may go on and nothing is counted.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

namespace tlsbridge::protocols {

// Who is blocked, if anyone: the client's address, or the user name it tries.
enum class auth_block { none, ip, user };

inline const char* to_string(auth_block b) {
  return b == auth_block::ip ? "ip" : b == auth_block::user ? "user" : "none";
}

// The name the guard counts under: Active Directory locks the account (sAMAccountName), however
// the client spelled it — "CONTOSO\Alice", "alice@contoso.com" and "ALICE" are one user. The part
// after the last '\' (down-level logon name), then the part before the last '@' (UPN), in ASCII
// lower case; surrounding spaces dropped. Only bounded text is kept (an attacker's name can be
// anything): at most 256 bytes.
std::string auth_user_key(std::string_view user);

class auth_gate {
 public:
  virtual ~auth_gate() = default;
  // May the client try `user` now (as the client spelled it; "" = not known yet: the address alone
  // is asked)? Asked before the credentials are relayed.
  virtual auth_block may_try(std::string_view user) = 0;
  // The backend refused (`user` may be ""): counted per address and per user.
  virtual void failed(std::string_view user) = 0;
  // The backend accepted: this (user, address) pair is exempt from the user's block for a while.
  virtual void succeeded(std::string_view user) = 0;
  // The delay the driver adds before a failed-authentication reply.
  virtual std::chrono::milliseconds tarpit() const = 0;
  // Whether audit records may name the user ([audit] envelope).
  virtual bool records_user() const = 0;
};

}  // namespace tlsbridge::protocols
