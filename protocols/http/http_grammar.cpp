#include "protocols/http/http_grammar.hpp"

#include <algorithm>
#include <array>

namespace tlsbridge::protocols::http {

namespace {

bool is_hexdig(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

bool is_bws(char c) {
  return c == ' ' || c == '\t';
}

// RFC 9110 §5.5 field-vchar = VCHAR / obs-text, plus SP and HTAB inside a value.
bool is_field_value_char(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u == '\t' || u == ' ' || (u >= 0x21 && u <= 0x7e) || u >= 0x80;
}

// RFC 9110 §5.6.4 qdtext.
bool is_qdtext(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u == '\t' || u == ' ' || u == 0x21 || (u >= 0x23 && u <= 0x5b) ||
         (u >= 0x5d && u <= 0x7e) || u >= 0x80;
}

// RFC 9110 §5.6.4 quoted-pair's second byte: HTAB / SP / VCHAR / obs-text.
bool is_quoted_pair_char(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u == '\t' || u == ' ' || (u >= 0x21 && u <= 0x7e) || u >= 0x80;
}

// RFC 9112 §5: field-line = field-name ":" OWS field-value OWS. nullopt when valid, else why.
std::optional<std::string> field_line_error(std::string_view line) {
  if (!line.empty() && is_bws(line.front())) return "obs-fold (RFC 9112 §5.2)";
  const auto colon = line.find(':');
  if (colon == std::string_view::npos) return "a field line without a colon (RFC 9112 §5)";
  const std::string_view name = line.substr(0, colon);
  if (name.empty()) return "an empty field name (RFC 9110 §5.1)";
  for (char c : name) {
    if (is_bws(c)) return "whitespace before the colon of a field (RFC 9112 §5.1)";
    if (!is_tchar(c)) return "a field name that is not a token (RFC 9110 §5.1)";
  }
  for (char c : line.substr(colon + 1))
    if (!is_field_value_char(c)) return "a control character in a field value (RFC 9110 §5.5)";
  return std::nullopt;
}

constexpr std::array<std::string_view, 17> relayed_methods{
    "GET",   "HEAD",        "POST",         "PUT",      "DELETE",    "OPTIONS",
    "PATCH", "RPC_IN_DATA", "RPC_OUT_DATA", "PROPFIND", "PROPPATCH", "MKCOL",
    "COPY",  "MOVE",        "LOCK",         "UNLOCK",   "SEARCH"};

}  // namespace

bool is_tchar(char c) {
  const auto u = static_cast<unsigned char>(c);
  if ((u >= '0' && u <= '9') || (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z')) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

head_scan scan_head(std::string_view buf, std::size_t scanned, std::size_t limit) {
  head_scan r;
  std::size_t i = scanned;
  while (i < buf.size()) {
    if (i >= limit) {
      // Every head of at most `limit` bytes ends before this byte: this one cannot.
      r.what = head_scan::result::too_large;
      return r;
    }
    const char c = buf[i];
    if (c == '\n') {
      r.what = head_scan::result::bare_line_ending;  // an LF without its CR (RFC 9112 §2.2)
      return r;
    }
    if (c != '\r') {
      ++i;
      continue;
    }
    if (i + 1 >= buf.size()) break;  // a CR at the end: its LF may follow
    if (buf[i + 1] != '\n') {
      r.what = head_scan::result::bare_line_ending;  // a CR without its LF
      return r;
    }
    if (i >= 2 && buf[i - 2] == '\r' && buf[i - 1] == '\n') {
      r.length = i + 2;
      r.what = r.length > limit ? head_scan::result::too_large : head_scan::result::complete;
      return r;
    }
    i += 2;
  }
  if (buf.size() >= limit) {
    r.what = head_scan::result::too_large;  // no CRLF CRLF within the first `limit` bytes
    return r;
  }
  r.scanned = i;
  return r;
}

std::optional<grammar_refusal> check_head_grammar(std::string_view raw_head) {
  // The request line (RFC 9112 §3): exactly one SP between its three parts.
  const auto eol = raw_head.find("\r\n");
  if (eol == std::string_view::npos) return grammar_refusal{400, "no request line"};
  const std::string_view line = raw_head.substr(0, eol);
  const auto sp1 = line.find(' ');
  if (sp1 == std::string_view::npos || sp1 == 0)
    return grammar_refusal{400, "a request line without a method (RFC 9112 §3)"};
  const std::string_view method = line.substr(0, sp1);
  for (char c : method)
    if (!is_tchar(c)) return grammar_refusal{400, "a method that is not a token (RFC 9110 §9.1)"};
  const auto sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || sp2 == sp1 + 1)
    return grammar_refusal{400, "a request line without a target (RFC 9112 §3)"};
  for (char c : line.substr(sp1 + 1, sp2 - sp1 - 1)) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f)
      return grammar_refusal{400,
                             "a byte outside visible ASCII in the request target (RFC 9112 §3.2)"};
  }
  const std::string_view version = line.substr(sp2 + 1);
  if (version != "HTTP/1.1" && version != "HTTP/1.0")
    return grammar_refusal{400, "an HTTP version other than HTTP/1.0 or HTTP/1.1 (RFC 9112 §2.3)"};
  if (!method_relayed(method))
    return grammar_refusal{501, "a method not relayed (case-sensitive, RFC 9110 §9.1): " +
                                    std::string(method.substr(0, 32))};

  std::size_t pos = eol + 2;
  while (pos < raw_head.size()) {
    const auto end = raw_head.find("\r\n", pos);
    if (end == std::string_view::npos) return grammar_refusal{400, "a head without its blank line"};
    const std::string_view field = raw_head.substr(pos, end - pos);
    pos = end + 2;
    if (field.empty()) break;
    if (auto why = field_line_error(field)) return grammar_refusal{400, std::move(*why)};
  }
  return std::nullopt;
}

bool method_relayed(std::string_view method) {
  return std::find(relayed_methods.begin(), relayed_methods.end(), method) != relayed_methods.end();
}

bool rpc_method(std::string_view method) {
  return method == "RPC_IN_DATA" || method == "RPC_OUT_DATA";
}

bool folded_field_name(std::string_view name) {
  return name.find('_') != std::string_view::npos;
}

bool valid_chunk_ext(std::string_view ext) {
  std::size_t pos = 0;
  auto skip_bws = [&] {
    while (pos < ext.size() && is_bws(ext[pos])) ++pos;
  };
  auto token = [&] {
    const std::size_t start = pos;
    while (pos < ext.size() && is_tchar(ext[pos])) ++pos;
    return pos > start;
  };
  while (pos < ext.size()) {
    skip_bws();
    if (pos >= ext.size() || ext[pos] != ';') return false;  // also: trailing whitespace
    ++pos;
    skip_bws();
    if (!token()) return false;  // chunk-ext-name
    const std::size_t before = pos;
    skip_bws();
    if (pos < ext.size() && ext[pos] == '=') {
      ++pos;
      skip_bws();
      if (pos < ext.size() && ext[pos] == '"') {
        ++pos;
        bool closed = false;
        while (pos < ext.size()) {
          const char c = ext[pos];
          if (c == '"') {
            ++pos;
            closed = true;
            break;
          }
          if (c == '\\') {
            if (pos + 1 >= ext.size() || !is_quoted_pair_char(ext[pos + 1])) return false;
            pos += 2;
            continue;
          }
          if (!is_qdtext(c)) return false;  // CTLs, CR and LF among them
          ++pos;
        }
        if (!closed) return false;
      } else if (!token()) {
        return false;
      }
    } else {
      pos = before;
    }
  }
  return true;
}

bool chunked_decoder::fail(std::string reason) {
  state_ = state::failed;
  error_ = std::move(reason);
  return false;
}

bool chunked_decoder::on_size_line(std::string_view line, std::string& out) {
  std::size_t digits = 0;
  while (digits < line.size() && is_hexdig(line[digits])) ++digits;
  if (digits == 0) return fail("a chunk size that is not hexadecimal (RFC 9112 §7.1)");
  std::string_view size = line.substr(0, digits);
  while (size.size() > 1 && size.front() == '0') size.remove_prefix(1);
  if (size.size() > 16) return fail("a chunk size over 64 bits (RFC 9112 §7.1)");
  if (!valid_chunk_ext(line.substr(digits)))
    return fail("a chunk extension outside the RFC 9112 §7.1.1 grammar");
  std::uint64_t value = 0;
  for (char c : size) {
    const unsigned d =
        c <= '9' ? static_cast<unsigned>(c - '0') : static_cast<unsigned>((c | 0x20) - 'a' + 10);
    value = (value << 4) | d;
  }
  out.append(size);
  out += "\r\n";
  if (value == 0) {
    state_ = state::trailer_line;
  } else {
    remaining_ = value;
    state_ = state::data;
  }
  return true;
}

std::size_t chunked_decoder::put(std::string_view data, std::string& out) {
  std::size_t i = 0;
  while (i < data.size()) {
    switch (state_) {
      case state::done:
      case state::failed:
        return i;
      case state::data: {
        const std::size_t n =
            static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, data.size() - i));
        out.append(data.substr(i, n));
        i += n;
        remaining_ -= n;
        if (remaining_ == 0) state_ = state::data_cr;
        continue;
      }
      case state::data_cr:
        if (data[i] != '\r') {
          fail("chunk data not followed by CRLF (RFC 9112 §7.1)");
          return i;
        }
        ++i;
        state_ = state::data_lf;
        continue;
      case state::data_lf:
        if (data[i] != '\n') {
          fail("chunk data not followed by CRLF (RFC 9112 §7.1)");
          return i;
        }
        ++i;
        out += "\r\n";
        state_ = state::size_line;
        continue;
      case state::size_line:
      case state::trailer_line: {
        const char c = data[i];
        const bool cr_pending = !line_.empty() && line_.back() == '\r';
        if (cr_pending && c != '\n') {
          fail("a bare CR in chunk framing (RFC 9112 §2.2)");
          return i;
        }
        if (c == '\n' && !cr_pending) {
          fail("a bare LF in chunk framing (RFC 9112 §2.2)");
          return i;
        }
        ++i;
        if (c != '\n') {
          line_ += c;
          if (line_.size() > line_limit_) {
            fail("a chunk size or trailer line over " + std::to_string(line_limit_) + " bytes");
            return i;
          }
          continue;
        }
        line_.pop_back();  // the CR
        const std::string line = std::move(line_);
        line_.clear();
        if (state_ == state::size_line) {
          if (!on_size_line(line, out)) return i;
          continue;
        }
        if (line.empty()) {
          // The end of the trailer section, and of the body. Trailer fields are not passed on.
          out += "\r\n";
          state_ = state::done;
          return i;
        }
        trailer_bytes_ += line.size() + 2;
        if (trailer_bytes_ > line_limit_) {
          fail("a trailer section over " + std::to_string(line_limit_) + " bytes");
          return i;
        }
        if (auto why = field_line_error(line)) {
          fail("a trailer field with " + *why);
          return i;
        }
        continue;
      }
    }
  }
  return i;
}

}  // namespace tlsbridge::protocols::http
