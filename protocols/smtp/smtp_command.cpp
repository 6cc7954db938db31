#include "protocols/smtp/smtp_command.hpp"

#include <array>
#include <charconv>
#include <utility>

namespace tlsbridge::protocols::smtp {

namespace {

char upper(char c) { return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (upper(a[i]) != upper(b[i])) return false;
  return true;
}

constexpr std::array<std::pair<std::string_view, verb>, 21> verbs{{
    {"EHLO", verb::ehlo},       {"HELO", verb::helo},
    {"STARTTLS", verb::starttls}, {"AUTH", verb::auth},
    {"MAIL", verb::mail},       {"RCPT", verb::rcpt},
    {"DATA", verb::data},       {"BDAT", verb::bdat},
    {"RSET", verb::rset},       {"NOOP", verb::noop},
    {"QUIT", verb::quit},       {"VRFY", verb::vrfy},
    {"EXPN", verb::expn},       {"HELP", verb::help},
    {"X-EXPS", verb::x_exps},   {"X-ANONYMOUSTLS", verb::x_anonymoustls},
    {"XEXCH50", verb::xexch50}, {"XSHADOW", verb::xshadow},
    {"XSHADOWREQUEST", verb::xshadowrequest}, {"XRDST", verb::xrdst},
    {"LHLO", verb::other},
}};

}  // namespace

command parse_command(std::string_view line) {
  command c;
  auto space = line.find(' ');
  std::string_view name = line.substr(0, space);
  for (char ch : name) c.name += upper(ch);
  if (space != std::string_view::npos) c.argument = std::string(line.substr(space + 1));
  for (const auto& [text, v] : verbs) {
    if (c.name == text) {
      c.what = v;
      break;
    }
  }
  return c;
}

std::optional<std::string> envelope_address(std::string_view argument, std::string_view prefix) {
  if (argument.size() < prefix.size() || !iequals(argument.substr(0, prefix.size()), prefix))
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
  if (size_text.empty()) return std::nullopt;
  bdat_header h;
  auto [end, ec] = std::from_chars(size_text.data(), size_text.data() + size_text.size(), h.size);
  if (ec != std::errc{} || end != size_text.data() + size_text.size()) return std::nullopt;
  if (space != std::string_view::npos) {
    std::string_view flag = argument.substr(space + 1);
    while (!flag.empty() && flag.back() == ' ') flag.remove_suffix(1);
    if (!iequals(flag, "LAST")) return std::nullopt;
    h.last = true;
  }
  return h;
}

}  // namespace tlsbridge::protocols::smtp
