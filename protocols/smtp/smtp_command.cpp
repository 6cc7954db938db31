#include "protocols/smtp/smtp_command.hpp"

#include <array>
#include <charconv>
#include <utility>

#include "common/ascii_case.hpp"
#include "protocols/common/ascii.hpp"

namespace tlsbridge::protocols::smtp {

namespace {

bool is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

constexpr std::array<std::pair<std::string_view, verb>, 21> verbs{{
    {"EHLO", verb::ehlo},
    {"HELO", verb::helo},
    {"STARTTLS", verb::starttls},
    {"AUTH", verb::auth},
    {"MAIL", verb::mail},
    {"RCPT", verb::rcpt},
    {"DATA", verb::data},
    {"BDAT", verb::bdat},
    {"RSET", verb::rset},
    {"NOOP", verb::noop},
    {"QUIT", verb::quit},
    {"VRFY", verb::vrfy},
    {"EXPN", verb::expn},
    {"HELP", verb::help},
    {"X-EXPS", verb::x_exps},
    {"X-ANONYMOUSTLS", verb::x_anonymoustls},
    {"XEXCH50", verb::xexch50},
    {"XSHADOW", verb::xshadow},
    {"XSHADOWREQUEST", verb::xshadowrequest},
    {"XRDST", verb::xrdst},
    {"LHLO", verb::other},
}};

}  // namespace

command parse_command(std::string_view line) {
  command c;
  if (line.empty()) {
    c.problem = "empty command line";
    return c;
  }
  // A control character anywhere: a tolerant backend may end the line or the verb at it (Postfix
  // splits words at TAB, so "DATA<TAB>" is its DATA), or strip it (NUL).
  if (has_ctl(line)) {
    c.problem = "control character in command line";
    return c;
  }
  std::size_t n = 0;
  while (n < line.size() && (is_alpha(line[n]) || is_digit(line[n]) || line[n] == '-')) ++n;
  if (n == 0 || !is_alpha(line[0]) || line[n - 1] == '-') {
    c.problem = "command does not start with a verb";
    return c;
  }
  if (n < line.size()) {
    // RFC 5321 §4.1.1: the verb is followed by exactly one SP, then the argument.
    if (line[n] != ' ') {
      c.problem = "verb not followed by SP or the line end";
      return c;
    }
    if (n + 1 < line.size() && line[n + 1] == ' ') {
      c.problem = "more than one SP after the verb";
      return c;
    }
    c.argument = std::string(line.substr(n + 1));
  }
  for (char ch : line.substr(0, n)) c.name += ascii::upper(ch);
  c.what = verb::other;
  for (const auto& [text, v] : verbs) {
    if (c.name == text) {
      c.what = v;
      break;
    }
  }
  return c;
}

std::string verb_prefix(std::string_view line) {
  std::string out;
  for (char ch : line) {
    if (!(is_alpha(ch) || is_digit(ch) || ch == '-') || out.size() == 32) break;
    out += ascii::upper(ch);
  }
  return out;
}

bool is_sasl_response(std::string_view line) {
  if (line == "*") return true;
  // RFC 4648 §4 alphabet; "=" only as padding at the end.
  std::size_t i = 0;
  while (i < line.size() &&
         (is_alpha(line[i]) || is_digit(line[i]) || line[i] == '+' || line[i] == '/'))
    ++i;
  std::size_t pad = 0;
  while (i < line.size() && line[i] == '=' && pad < 2) {
    ++i;
    ++pad;
  }
  return i == line.size();
}

std::optional<std::string> envelope_address(std::string_view argument, std::string_view prefix) {
  if (argument.size() < prefix.size() || !ascii::iequals(argument.substr(0, prefix.size()), prefix))
    return std::nullopt;
  std::string_view rest = argument.substr(prefix.size());
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  if (!rest.empty() && rest.front() == '<') {
    auto close = rest.find('>');
    if (close == std::string_view::npos) return std::string(rest.substr(1));
    return std::string(rest.substr(1, close - 1));
  }
  return std::string(rest.substr(0, rest.find(' ')));
}

std::optional<bdat_header> parse_bdat(std::string_view argument) {
  auto space = argument.find(' ');
  std::string_view size_text = argument.substr(0, space);
  // 1*DIGIT, no sign, no leading zero, at most 10 digits (max_bdat_chunk has 10).
  if (size_text.empty() || size_text.size() > 10) return std::nullopt;
  for (char ch : size_text)
    if (!is_digit(ch)) return std::nullopt;
  if (size_text.size() > 1 && size_text[0] == '0') return std::nullopt;
  bdat_header h;
  auto [end, ec] = std::from_chars(size_text.data(), size_text.data() + size_text.size(), h.size);
  if (ec != std::errc{} || end != size_text.data() + size_text.size() || h.size > max_bdat_chunk)
    return std::nullopt;
  if (space != std::string_view::npos) {
    if (!ascii::iequals(argument.substr(space + 1), "LAST")) return std::nullopt;
    h.last = true;
  }
  return h;
}

}  // namespace tlsbridge::protocols::smtp
