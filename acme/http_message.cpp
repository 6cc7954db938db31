// The HTTP/1.1 messages the ACME client exchanges, free of I/O.
#include "acme/http_message.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

#include "common/ascii_case.hpp"

namespace tlsbridge::acme {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

// The chunked body starting at `body`: complete, incomplete or error; the decoded bytes in `out`.
parse_state dechunk(std::string_view body, size_t max_body, std::string& out, std::string& error) {
  out.clear();
  size_t pos = 0;
  for (int chunks = 0; chunks < 100000; ++chunks) {
    const size_t eol = body.find("\r\n", pos);
    if (eol == std::string_view::npos) return parse_state::incomplete;
    std::string_view size_text = body.substr(pos, eol - pos);
    size_text = size_text.substr(0, size_text.find(';'));
    size_text = trim(size_text);
    size_t size = 0;
    const auto [end, ec] =
        std::from_chars(size_text.data(), size_text.data() + size_text.size(), size, 16);
    if (ec != std::errc() || end != size_text.data() + size_text.size() || size_text.empty()) {
      error = "a malformed chunk size";
      return parse_state::error;
    }
    if (size > max_body || out.size() + size > max_body) {
      error = "the response body is over " + std::to_string(max_body) + " bytes";
      return parse_state::error;
    }
    pos = eol + 2;
    if (size == 0) {  // trailers until an empty line
      for (int lines = 0; lines < 100; ++lines) {
        const size_t next = body.find("\r\n", pos);
        if (next == std::string_view::npos) return parse_state::incomplete;
        if (next == pos) return parse_state::complete;
        pos = next + 2;
      }
      error = "too many trailer lines";
      return parse_state::error;
    }
    if (body.size() < pos + size + 2) return parse_state::incomplete;
    out.append(body.substr(pos, size));
    if (body.substr(pos + size, 2) != "\r\n") {
      error = "a chunk without its CRLF";
      return parse_state::error;
    }
    pos += size + 2;
  }
  error = "too many chunks";
  return parse_state::error;
}

}  // namespace

bool parse_https_url(const std::string& url, parsed_url& out) {
  if (ascii::lower(url.substr(0, 8)) != "https://") return false;
  std::string_view rest(url);
  rest.remove_prefix(8);
  const size_t slash = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, slash);
  out.target = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (!out.target.empty() && out.target.front() != '/') out.target = "/" + out.target;
  if (const size_t hash = out.target.find('#'); hash != std::string::npos) out.target.resize(hash);
  if (authority.empty() || authority.find('@') != std::string_view::npos) return false;
  out.port = "443";
  if (authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return false;
    out.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':' || after.size() < 2) return false;
      out.port = std::string(after.substr(1));
    }
  } else {
    const size_t colon = authority.rfind(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) out.port = std::string(authority.substr(colon + 1));
  }
  if (out.host.empty() || out.port.empty() || out.port.size() > 5 ||
      !std::all_of(out.port.begin(), out.port.end(),
                   [](unsigned char c) { return std::isdigit(c); }))
    return false;
  return std::all_of(out.target.begin(), out.target.end(),
                     [](unsigned char c) { return c > 0x20 && c < 0x7f; });
}

std::string request_bytes(const http_request& request, const parsed_url& url) {
  const bool v6 = url.host.find(':') != std::string::npos;
  std::string host = v6 ? "[" + url.host + "]" : url.host;
  if (url.port != "443") host += ":" + url.port;
  std::string out = request.method + " " + url.target + " HTTP/1.1\r\nHost: " + host +
                    "\r\nUser-Agent: tlsbridge-acme\r\nAccept: */*\r\nConnection: close\r\n";
  if (request.method == "POST")
    out += "Content-Type: application/jose+json\r\nContent-Length: " +
           std::to_string(request.body.size()) + "\r\n";
  out += "\r\n";
  out += request.body;
  return out;
}

parse_state parse_response(std::string_view raw, bool eof, bool head, size_t max_body,
                           http_response& out, std::string& error) {
  const size_t head_end = raw.find("\r\n\r\n");
  if (head_end == std::string_view::npos) {
    if (raw.size() > 64 * 1024) {
      error = "the response head is over 64 KiB";
      return parse_state::error;
    }
    if (eof) {
      error = "the connection closed before the response head ended";
      return parse_state::error;
    }
    return parse_state::incomplete;
  }
  std::string_view header_text = raw.substr(0, head_end + 2);
  const size_t first_eol = header_text.find("\r\n");
  std::string_view status_line = header_text.substr(0, first_eol);
  if (status_line.size() < 12 || status_line.substr(0, 7) != "HTTP/1." || status_line[8] != ' ' ||
      !std::isdigit(static_cast<unsigned char>(status_line[9])) ||
      !std::isdigit(static_cast<unsigned char>(status_line[10])) ||
      !std::isdigit(static_cast<unsigned char>(status_line[11]))) {
    error = "a malformed status line";
    return parse_state::error;
  }
  out = http_response{};
  out.status =
      (status_line[9] - '0') * 100 + (status_line[10] - '0') * 10 + (status_line[11] - '0');
  bool chunked = false;
  bool has_length = false;
  size_t length = 0;
  size_t pos = first_eol + 2;
  while (pos < header_text.size()) {
    const size_t eol = header_text.find("\r\n", pos);
    std::string_view line = header_text.substr(pos, eol - pos);
    pos = eol + 2;
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      error = "a malformed header line";
      return parse_state::error;
    }
    const std::string name = ascii::lower(line.substr(0, colon));
    const std::string_view value = trim(line.substr(colon + 1));
    if (name == "replay-nonce")
      out.replay_nonce = std::string(value);
    else if (name == "location")
      out.location = std::string(value);
    else if (name == "retry-after")
      out.retry_after = std::string(value);
    else if (name == "content-type")
      out.content_type = ascii::lower(value);
    else if (name == "transfer-encoding")
      chunked = ascii::lower(value).find("chunked") != std::string::npos;
    else if (name == "content-length") {
      const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), length);
      if (ec != std::errc() || end != value.data() + value.size() || value.empty()) {
        error = "a malformed Content-Length";
        return parse_state::error;
      }
      has_length = true;
    }
  }
  std::string_view body = raw.substr(head_end + 4);
  if (head || out.status == 204 || out.status == 304 || out.status / 100 == 1)
    return parse_state::complete;
  if (chunked) {
    const parse_state state = dechunk(body, max_body, out.body, error);
    if (state == parse_state::incomplete && eof) {
      error = "the connection closed inside a chunked body";
      return parse_state::error;
    }
    return state;
  }
  if (has_length) {
    if (length > max_body) {
      error = "the response body is over " + std::to_string(max_body) + " bytes";
      return parse_state::error;
    }
    if (body.size() < length) {
      if (eof) {
        error = "the connection closed before the body's Content-Length";
        return parse_state::error;
      }
      return parse_state::incomplete;
    }
    out.body = std::string(body.substr(0, length));
    return parse_state::complete;
  }
  if (body.size() > max_body) {
    error = "the response body is over " + std::to_string(max_body) + " bytes";
    return parse_state::error;
  }
  if (!eof) return parse_state::incomplete;
  out.body = std::string(body);
  return parse_state::complete;
}

}  // namespace tlsbridge::acme
