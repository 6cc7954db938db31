#include "protocols/http/http_request_info.hpp"

#include <algorithm>
#include <array>
#include <boost/url/encoding_opts.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/pct_string_view.hpp>
#include <boost/url/url_view.hpp>

#include "common/ascii_case.hpp"
#include "protocols/common/ascii.hpp"
#include "protocols/http/http_grammar.hpp"

namespace tlsbridge::protocols::http {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// The target as a URL: origin-form ("/path?query") or absolute-form ("https://host/path").
std::optional<boost::urls::url_view> parse_target(std::string_view target) {
  if (!target.empty() && target.front() == '/') {
    auto r = boost::urls::parse_origin_form(target);
    if (r) return *r;
    return std::nullopt;
  }
  auto r = boost::urls::parse_absolute_uri(target);
  if (r &&
      (r->scheme_id() == boost::urls::scheme::http || r->scheme_id() == boost::urls::scheme::https))
    return *r;
  return std::nullopt;
}

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

std::string utf16le_to_utf8(std::string_view bytes) {
  std::string out;
  const std::size_t units = bytes.size() / 2;
  auto unit = [&](std::size_t i) {
    return static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[2 * i])) |
           static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[2 * i + 1])) << 8;
  };
  for (std::size_t i = 0; i < units; ++i) {
    std::uint32_t u = unit(i);
    if (u >= 0xd800 && u <= 0xdbff && i + 1 < units && unit(i + 1) >= 0xdc00 &&
        unit(i + 1) <= 0xdfff) {
      append_utf8(out, 0x10000 + ((u - 0xd800) << 10) + (unit(i + 1) - 0xdc00));
      ++i;
    } else if (u >= 0xd800 && u <= 0xdfff) {
      append_utf8(out, 0xfffd);  // a lone surrogate
    } else {
      append_utf8(out, u);
    }
  }
  return out;
}

std::string latin1_to_utf8(std::string_view bytes) {
  std::string out;
  for (char c : bytes) append_utf8(out, static_cast<unsigned char>(c));
  return out;
}

std::uint32_t le16(std::string_view b, std::size_t at) {
  return static_cast<std::uint32_t>(static_cast<unsigned char>(b[at])) |
         static_cast<std::uint32_t>(static_cast<unsigned char>(b[at + 1])) << 8;
}

std::uint32_t le32(std::string_view b, std::size_t at) {
  return le16(b, at) | le16(b, at + 2) << 16;
}

std::string hex(std::string_view bytes) {
  static constexpr char digits[] = "0123456789ABCDEF";
  std::string out;
  for (char c : bytes) {
    out += digits[static_cast<unsigned char>(c) >> 4];
    out += digits[static_cast<unsigned char>(c) & 0xf];
  }
  return out;
}

const char* reason_phrase(unsigned status) {
  switch (status) {
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 408:
      return "Request Timeout";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "Error";
  }
}

}  // namespace

std::optional<refusal> check_request(const message_head& head, std::string_view raw_head) {
  // obs-fold (RFC 9112 §5.2): Beast unfolds it; a backend may not, so the two would disagree.
  for (std::size_t i = raw_head.find("\r\n"); i != std::string_view::npos;
       i = raw_head.find("\r\n", i + 2)) {
    if (i + 2 < raw_head.size() && (raw_head[i + 2] == ' ' || raw_head[i + 2] == '\t'))
      return refusal{400, "obs-fold in the request head"};
  }
  const auto hosts = head.values("Host");
  if (hosts.size() > 1) return refusal{400, "more than one Host field"};
  if (hosts.empty() && head.version >= 11) return refusal{400, "no Host field"};

  const auto lengths = head.values("Content-Length");
  const auto encodings = head.values("Transfer-Encoding");
  if (lengths.size() > 1 ||
      (lengths.size() == 1 && lengths.front().find(',') != std::string_view::npos))
    return refusal{400, "several Content-Length values"};
  if (!encodings.empty() && !lengths.empty())
    return refusal{400, "both Content-Length and Transfer-Encoding"};
  if (!encodings.empty()) {
    // Anything but exactly "chunked" is a transfer coding some hop may read differently
    // ("chunked, chunked", "xchunked", "chunked;q=1"): refuse rather than guess (RFC 9112 §6.3).
    if (encodings.size() > 1 || !ascii::iequals(trim(encodings.front()), "chunked"))
      return refusal{400, "Transfer-Encoding other than chunked"};
    if (head.version < 11) return refusal{400, "Transfer-Encoding on HTTP/1.0"};
  }
  if (!parse_target(head.target)) return refusal{400, "request target is not a path"};
  return std::nullopt;
}

std::optional<std::string> normalized_path(std::string_view target) {
  auto url = parse_target(target);
  if (!url) return std::nullopt;
  std::string decoded = url->encoded_path().decode();
  if (decoded.empty()) decoded = "/";
  for (char& c : decoded) {
    if (is_ctl(c)) return std::nullopt;
    if (c == '\\') c = '/';  // IIS takes a backslash as a separator
  }
  // Segments; empty ones (from "//") are dropped, as IIS collapses them.
  std::vector<std::string_view> out;
  std::string_view rest = decoded;
  bool trailing_slash = false;
  while (!rest.empty()) {
    auto slash = rest.find('/');
    std::string_view seg = rest.substr(0, slash);
    rest = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);
    trailing_slash = slash != std::string_view::npos;
    if (seg.empty()) continue;
    // Windows drops trailing dots and spaces from a name: "..." and ".. " may mean "..". A
    // segment of dots and spaces only is taken as "." (one dot) or ".." (more): when unsure,
    // climbing out is the reading that cannot widen what allow_paths lets through.
    if (seg.find_first_not_of(". ") == std::string_view::npos) {
      if (std::count(seg.begin(), seg.end(), '.') >= 2 && !out.empty()) out.pop_back();
      trailing_slash = true;
      continue;
    }
    out.push_back(seg);
  }
  std::string path;
  for (auto seg : out) {
    path += '/';
    path += seg;
  }
  if (path.empty() || trailing_slash) path += '/';
  return path;
}

bool path_allowed(std::string_view normalized, const std::vector<std::string>& allow_paths) {
  for (std::string_view prefix : allow_paths) {
    while (prefix.size() > 1 && prefix.back() == '/') prefix.remove_suffix(1);
    if (prefix == "/") return true;
    if (!ascii::istarts_with(normalized, prefix)) continue;
    if (normalized.size() == prefix.size() || normalized[prefix.size()] == '/') return true;
  }
  return false;
}

std::string raw_path(std::string_view target) {
  if (auto url = parse_target(target)) {
    auto p = url->encoded_path();
    return std::string(p.data(), p.size());
  }
  return std::string(target.substr(0, target.find('?')));
}

namespace {

// The head's lines without the blank line, less fields IIS would fold onto others and, when
// `drop_forwarded`, the client's X-Forwarded-For/-Proto.
std::string relayed_lines(std::string_view raw_head, bool drop_forwarded) {
  std::string out;
  out.reserve(raw_head.size() + 64);
  std::size_t pos = 0;
  bool first = true;
  while (pos < raw_head.size()) {
    std::size_t end = raw_head.find("\r\n", pos);
    if (end == std::string_view::npos) end = raw_head.size();
    std::string_view line = raw_head.substr(pos, end - pos);
    pos = end + 2;
    if (line.empty()) break;  // the blank line ending the head
    if (!first) {
      std::string_view name = trim(line.substr(0, line.find(':')));
      if (drop_forwarded &&
          (ascii::iequals(name, "X-Forwarded-For") || ascii::iequals(name, "X-Forwarded-Proto")))
        continue;
      if (folded_field_name(name)) continue;
    }
    first = false;
    out.append(line);
    out += "\r\n";
  }
  return out;
}

}  // namespace

std::string strip_folded_fields(std::string_view raw_head) {
  return relayed_lines(raw_head, false) + "\r\n";
}

std::string forwarded_head(std::string_view raw_head, std::string_view client_ip,
                           std::string_view proto) {
  std::string out = relayed_lines(raw_head, true);
  out += "X-Forwarded-For: ";
  out += client_ip;
  out += "\r\nX-Forwarded-Proto: ";
  out += proto;
  out += "\r\n\r\n";
  return out;
}

std::string proxy_response(unsigned status, bool close) {
  std::string body = std::to_string(status) + " " + reason_phrase(status) + "\n";
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + reason_phrase(status) +
                    "\r\nContent-Type: text/plain; charset=utf-8\r\nCache-Control: no-store\r\n"
                    "Content-Length: " +
                    std::to_string(body.size()) + "\r\n";
  if (close) out += "Connection: close\r\n";
  out += "\r\n";
  out += body;
  return out;
}

std::optional<ntlm_identity> decode_ntlm_authenticate(std::string_view blob) {
  static constexpr std::string_view signature{"NTLMSSP\0", 8};
  if (blob.size() < 64 || blob.substr(0, 8) != signature || le32(blob, 8) != 3) return std::nullopt;
  const bool unicode = (le32(blob, 60) & 0x1) != 0;  // NTLMSSP_NEGOTIATE_UNICODE
  auto field = [&](std::size_t at) -> std::optional<std::string> {
    const std::size_t len = le16(blob, at);
    const std::size_t offset = le32(blob, at + 4);
    if (len == 0) return std::string{};
    if (offset > blob.size() || len > blob.size() - offset) return std::nullopt;
    std::string_view bytes = blob.substr(offset, len);
    return unicode ? utf16le_to_utf8(bytes) : latin1_to_utf8(bytes);
  };
  auto domain = field(28);
  auto user = field(36);
  auto workstation = field(44);
  if (!domain || !user || !workstation) return std::nullopt;
  return ntlm_identity{std::move(*domain), std::move(*user), std::move(*workstation)};
}

auth_info parse_authorization(std::string_view value) {
  auth_info info;
  value = trim(value);
  const auto space = value.find(' ');
  info.scheme = std::string(value.substr(0, space));
  std::string_view credentials =
      space == std::string_view::npos ? std::string_view{} : trim(value.substr(space + 1));
  if (ascii::iequals(info.scheme, "Basic")) {
    if (auto decoded = base64_decode(credentials)) {
      info.user = decoded->substr(0, decoded->find(':'));
    }
  } else if (ascii::iequals(info.scheme, "NTLM") || ascii::iequals(info.scheme, "Negotiate")) {
    auto decoded = base64_decode(credentials);
    if (!decoded) return info;
    // Negotiate may carry raw NTLMSSP or NTLMSSP inside SPNEGO's DER: look for the signature.
    std::string_view blob = *decoded;
    const auto at = blob.find(std::string_view{"NTLMSSP\0", 8});
    if (at == std::string_view::npos || blob.size() - at < 12) return info;
    blob.remove_prefix(at);
    info.ntlm_type = static_cast<int>(le32(blob, 8));
    if (info.ntlm_type == 3) {
      if (auto id = decode_ntlm_authenticate(blob)) {
        info.user = std::move(id->user);
        info.domain = std::move(id->domain);
      }
    }
  }
  return info;
}

std::string_view activesync_command_name(unsigned code) {
  static constexpr std::array<std::string_view, 23> names{"Sync",
                                                          "SendMail",
                                                          "SmartForward",
                                                          "SmartReply",
                                                          "GetAttachment",
                                                          "GetHierarchy",
                                                          "CreateCollection",
                                                          "DeleteCollection",
                                                          "MoveCollection",
                                                          "FolderSync",
                                                          "FolderCreate",
                                                          "FolderDelete",
                                                          "FolderUpdate",
                                                          "MoveItems",
                                                          "GetItemEstimate",
                                                          "MeetingResponse",
                                                          "Search",
                                                          "Settings",
                                                          "Ping",
                                                          "ItemOperations",
                                                          "Provision",
                                                          "ResolveRecipients",
                                                          "ValidateCert"};
  return code < names.size() ? names[code] : std::string_view{};
}

std::optional<activesync_info> decode_activesync_query(std::string_view target) {
  auto url = parse_target(target);
  if (!url || !url->has_query()) return std::nullopt;
  activesync_info info;
  bool plain = false;
  for (auto param : url->params()) {
    if (!param.has_value) continue;
    if (ascii::iequals(param.key, "Cmd")) {
      info.cmd = param.value;
      plain = true;
    } else if (ascii::iequals(param.key, "User")) {
      info.user = param.value;
    } else if (ascii::iequals(param.key, "DeviceId")) {
      info.device_id = param.value;
    } else if (ascii::iequals(param.key, "DeviceType")) {
      info.device_type = param.value;
    }
  }
  if (plain) {
    info.form = "plain";
    return info;
  }
  // The base64 form: the whole query is one blob (its '+', '/' and '=' percent-encoded).
  boost::urls::encoding_opts opts;
  opts.space_as_plus = false;
  auto blob = base64_decode(url->encoded_query().decode(opts));
  if (!blob) return std::nullopt;
  std::string_view b = *blob;
  activesync_info out;
  out.form = "base64";
  std::size_t at = 0;
  auto need = [&](std::size_t n) { return n <= b.size() && at <= b.size() - n; };
  if (!need(5)) return std::nullopt;
  const unsigned version = static_cast<unsigned char>(b[0]);
  out.protocol_version = std::to_string(version / 10) + "." + std::to_string(version % 10);
  const unsigned code = static_cast<unsigned char>(b[1]);
  out.cmd = std::string(activesync_command_name(code));
  if (out.cmd.empty()) out.cmd = std::to_string(code);
  at = 4;  // after the locale (u16)
  auto counted = [&](std::string_view& value) {
    if (!need(1)) return false;
    const std::size_t len = static_cast<unsigned char>(b[at++]);
    if (!need(len)) return false;
    value = b.substr(at, len);
    at += len;
    return true;
  };
  std::string_view device_id, policy_key, device_type;
  // Whatever decodes before a truncation is kept: the record says what the client sent.
  if (!counted(device_id)) return out;
  out.device_id = hex(device_id);
  if (!counted(policy_key)) return out;
  if (!counted(device_type)) return out;
  out.device_type = latin1_to_utf8(device_type);
  while (need(2)) {
    const unsigned tag = static_cast<unsigned char>(b[at++]);
    std::string_view value;
    if (!counted(value)) break;
    if (tag == 8) out.user = latin1_to_utf8(value);  // MS-ASHTTP: User
  }
  return out;
}

}  // namespace tlsbridge::protocols::http
