#include "protocols/pop3/pop3_syntax.hpp"

#include <algorithm>
#include <cctype>
#include <cstring>

#include "common/ascii_case.hpp"
#include "protocols/common/ascii.hpp"

namespace tlsbridge::protocols::pop3 {

multiline_scanner::result multiline_scanner::scan(std::string_view in) {
  std::size_t i = 0;
  while (i < in.size()) {
    switch (state_) {
      case state::mid_line: {
        const void* lf = std::memchr(in.data() + i, '\n', in.size() - i);
        if (!lf) return {in.size(), false};
        i = static_cast<std::size_t>(static_cast<const char*>(lf) - in.data()) + 1;
        state_ = state::line_start;
        break;
      }
      case state::line_start:
        state_ = in[i] == '.' ? state::dot : in[i] == '\n' ? state::line_start : state::mid_line;
        ++i;
        break;
      case state::dot:
        if (in[i] == '\n') {
          state_ = state::line_start;
          return {i + 1, true};
        }
        state_ = in[i] == '\r' ? state::dot_cr : state::mid_line;
        ++i;
        break;
      case state::dot_cr:
        if (in[i] == '\n') {
          state_ = state::line_start;
          return {i + 1, true};
        }
        state_ = state::mid_line;
        break;  // re-examine this byte as line data
    }
  }
  return {in.size(), false};
}

bool has_multiline_reply(std::string_view verb, std::string_view argument) {
  const std::string v = ascii::upper(verb);
  if (v == "RETR" || v == "TOP" || v == "CAPA") return true;
  if (v == "LIST" || v == "UIDL" || v == "AUTH") return argument.empty();
  return false;
}

command_line parse_command(std::string_view line, bool allow_8bit) {
  command_line c;
  if (line.empty()) {
    c.rule = "empty command line (RFC 1939 §3)";
    return c;
  }
  if (has_ctl(line)) {
    c.rule = "control character in a command line (RFC 1939 §3: printable ASCII)";
    return c;
  }
  if (!allow_8bit &&
      std::any_of(line.begin(), line.end(), [](char ch) { return (ch & 0x80) != 0; })) {
    c.rule = "8-bit byte in a command line before TLS (RFC 1939 §3)";
    return c;
  }
  std::size_t i = 0;
  while (i < line.size() && std::isalpha(static_cast<unsigned char>(line[i])) &&
         static_cast<unsigned char>(line[i]) < 0x80)
    ++i;
  if (i == 0) {
    c.rule = line[0] == ' ' ? "line starts with SP (RFC 1939 §3 keyword)"
                            : "keyword is not letters (RFC 1939 §3)";
    return c;
  }
  c.keyword = ascii::upper(line.substr(0, i));
  if (i == line.size()) {
    c.ok = true;
    return c;
  }
  if (line[i] != ' ') {
    c.rule = "keyword not followed by SP or the line end (RFC 1939 §3)";
    return c;
  }
  c.argument = line.substr(i + 1);
  if (c.argument.empty() || c.argument.front() == ' ') {
    c.rule = "keyword not followed by exactly one SP and an argument (RFC 1939 §3)";
    return c;
  }
  c.ok = true;
  return c;
}

std::vector<std::string> rewrite_capa(const std::vector<std::string>& lines,
                                      const capa_view& view) {
  std::vector<std::string> out;
  for (const auto& line : lines) {
    const std::string keyword = ascii::upper(std::string_view(line).substr(0, line.find(' ')));
    if (keyword == "STLS") continue;
    if (view.hide_sasl && keyword == "SASL") continue;
    if (view.hide_user && keyword == "USER") continue;
    out.push_back(line);
  }
  if (view.offer_stls) out.push_back("STLS");
  return out;
}

}  // namespace tlsbridge::protocols::pop3
