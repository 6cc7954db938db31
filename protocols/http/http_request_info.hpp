// Pure functions over one HTTP request for the HTTPS machine (and its http.request record):
// the smuggling checks (RFC 9112 §6.3), the path as the backend will resolve it and the
// `allow_paths` match, the X-Forwarded-* edit of the raw head, the proxy's own small responses,
// and the audit decoders — Basic and NTLM AUTHENTICATE (MS-NLMP §2.2.1.3) credentials, ActiveSync
// query values in both the plain and the base64 form (MS-ASHTTP §2.2.1.1.1.1). Everything a peer
// sends is bounds-checked; nothing here throws on bad input.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocols/common/base64.hpp"
#include "protocols/http/http_message_parser.hpp"

namespace tlsbridge::protocols::http {

struct refusal {
  unsigned status = 400;
  std::string reason;
};

// Request framing the proxy will not pass on, as its HTTP status and a reason for the audit:
// obs-fold (RFC 9112 §5.2), Host missing on HTTP/1.1 or repeated (RFC 9112 §3.2), several
// Content-Length values, Transfer-Encoding with Content-Length or other than exactly "chunked",
// Transfer-Encoding on HTTP/1.0 (RFC 9112 §6.1, §6.3: request smuggling), a target that is
// neither origin-form nor absolute-form.
std::optional<refusal> check_request(const message_head& head, std::string_view raw_head);

// The target's path as the backend resolves it, for the allow_paths check: percent-decoded once
// (IIS decodes %2F and %5C too), '\' taken as '/', runs of '/' collapsed, dot segments removed
// (RFC 3986 §5.2.4). nullopt: no path (authority or asterisk form), or control characters in it.
std::optional<std::string> normalized_path(std::string_view target);
// allow_paths match: case-insensitive, and on a segment boundary ("/EWS" allows "/ews" and
// "/EWS/Exchange.asmx", not "/EWSadmin").
bool path_allowed(std::string_view normalized, const std::vector<std::string>& allow_paths);
// The path part of the target as received (no query), for the audit record.
std::string raw_path(std::string_view target);

// The head to send to the backend: the client's own bytes with any X-Forwarded-For and
// X-Forwarded-Proto it sent removed (they cannot be spoofed) and ours added before the blank line.
// Fields whose names IIS folds onto others (`_`, see folded_field_name) are removed too, so no
// X_Forwarded_For can shadow ours.
std::string forwarded_head(std::string_view raw_head, std::string_view client_ip,
                           std::string_view proto);
// The head as received less the fields IIS folds onto others (forwarded_headers = false).
std::string strip_folded_fields(std::string_view raw_head);

// A small response from the proxy itself (400, 404, 408, 431, 501, 502, 504), text/plain.
std::string proxy_response(unsigned status, bool close);

using protocols::base64_decode;

struct ntlm_identity {
  std::string domain;
  std::string user;
  std::string workstation;
};
// An NTLM AUTHENTICATE_MESSAGE (type 3): "NTLMSSP\0", type 3, then security buffers (u16 len,
// u16 maxlen, u32 offset) for the domain at 28, the user at 36 and the workstation at 44, and the
// negotiate flags at 60 — strings UTF-16LE when NTLMSSP_NEGOTIATE_UNICODE (0x1) is set, else OEM
// (taken as Latin-1). nullopt for any other message or a buffer outside the blob.
std::optional<ntlm_identity> decode_ntlm_authenticate(std::string_view blob);

struct auth_info {
  std::string scheme;  // as sent: "Basic", "NTLM", "Negotiate", "Bearer", ...
  std::string user;    // Basic: before the colon; NTLM/Negotiate: from a type 3 message
  std::string domain;  // NTLM only
  int ntlm_type = 0;   // 1, 2 or 3 when the token is NTLMSSP (Negotiate may wrap Kerberos)
};
// The Authorization field's scheme and user; the password is never kept.
auth_info parse_authorization(std::string_view value);

struct activesync_info {
  std::string form;  // "plain" or "base64"
  std::string cmd;
  std::string user;
  std::string device_id;  // base64 form: the device id bytes in hex
  std::string device_type;
  std::string protocol_version;  // base64 form: "14.1" from its first byte
};
// The ActiveSync values of a /Microsoft-Server-ActiveSync target's query: Cmd, User, DeviceId,
// DeviceType as parameters, or the one base64 blob MS-ASHTTP §2.2.1.1.1.1 defines (protocol
// version, command code, locale, device id, policy key, device type, then tag/length/value
// parameters, User being tag 8). nullopt when the query has neither form.
std::optional<activesync_info> decode_activesync_query(std::string_view target);
// MS-ASHTTP §2.2.1.1.1.1.2 command codes; "" for an unknown code.
std::string_view activesync_command_name(unsigned code);

}  // namespace tlsbridge::protocols::http
