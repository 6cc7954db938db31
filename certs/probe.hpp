// `tlsbridge probe`: connects to a server as a client and tries TLS 1.0, 1.1, 1.2 and 1.3 one at
// a time — a fresh TCP connection and, for STARTTLS ports, a fresh plaintext opening for each —
// with a client pinned to that one version at security level 0, so that a legacy server can
// answer and the report shows what the *server* accepts, not what a modern client would tolerate.
// The STARTTLS opening is the proxy's own back-leg opener (protocols/smtp/backend_opener,
// protocols/imap/imap_backend_opener, protocols/pop3/pop3_backend_opener, with STARTTLS required),
// driven here over a blocking socket and OpenSSL, so the probe checks exactly what the proxy does
// when it opens a back leg. The chain of the highest accepted version is collected as evidence;
// judging it is the caller's (policy::judge_chain). Blocking sockets with poll(2) timeouts: this
// is a one-shot CLI tool, not the data path, which is why it may live outside proxy/.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "policy/chain_evidence.hpp"

namespace tlsbridge::certs {

// The plaintext opening before the handshake: none (TLS at once), or the protocol's STARTTLS.
enum class starttls_protocol { none, smtp, imap, pop3 };

const char* to_string(starttls_protocol p);

struct probe_options {
  std::string host;  // name or IP literal (no brackets)
  std::uint16_t port = 0;
  starttls_protocol starttls = starttls_protocol::none;
  // SNI and the name checked against the leaf. Empty: the host — sent as SNI only when it is a
  // name (RFC 6066 §3 forbids IP literals in SNI), checked against the leaf either way.
  std::string servername;
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(10)};
  std::chrono::milliseconds step_timeout{std::chrono::seconds(10)};  // each read, write, handshake
  std::filesystem::path ca_file;  // trust store for the chain; empty = the system default paths
  // The name the SMTP opener sends in EHLO: the proxy sends `[server] hostname`, whose default
  // this is.
  std::string ehlo_name = config::server_config{}.hostname;
};

struct version_result {
  int version = 0;     // config::tls1_0 ... tls1_3
  std::string name;    // OpenSSL's name: "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"
  bool tried = false;  // false: skipped because the server could not be reached at all
  bool accepted = false;
  std::string cipher;  // accepted: the negotiated cipher
  // Not accepted: why (OpenSSL's reason, the TCP or STARTTLS failure, or what failed in the
  // opening after the handshake, e.g. IMAP's CAPABILITY over TLS, which the proxy needs too).
  std::string reason;
};

struct probe_report {
  std::string target;                    // "host:port" ("[v6]:port")
  std::vector<version_result> versions;  // TLS 1.0 .. 1.3, in that order
  // The first failure before a TLS handshake (no TCP connection, STARTTLS dialogue failed); the
  // versions after it are not tried (tried = false), since they would fail the same way.
  std::string connect_error;
  std::optional<int> chain_version;  // the version whose chain is in `chain`
  policy::chain_evidence chain;
  std::string sni;  // what was sent as SNI ("" = none)

  bool any_accepted() const { return chain_version.has_value(); }
};

// OpenSSL's name for a protocol version number ("TLSv1" for 0x0301 ...).
std::string tls_version_name(int version);

// Never throws for network trouble (that is the report); throws std::runtime_error only when a
// TLS context or the trust store cannot be built.
probe_report probe(const probe_options& options);

}  // namespace tlsbridge::certs
