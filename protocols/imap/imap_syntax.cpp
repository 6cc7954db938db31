#include "protocols/imap/imap_syntax.hpp"

#include <cctype>

namespace tlsbridge::protocols::imap {

namespace {

char upper(char c) {
  return static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
}

std::vector<std::string_view> split_words(std::string_view s) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && s[i] == ' ') ++i;
    std::size_t start = i;
    while (i < s.size() && s[i] != ' ') ++i;
    if (i > start) out.push_back(s.substr(start, i - start));
  }
  return out;
}

// Where the capability list of a response line lies: [begin, end) within the line.
struct list_span {
  std::size_t begin;
  std::size_t end;
};

std::optional<list_span> find_capabilities(std::string_view line) {
  auto sp = line.find(' ');
  if (sp == std::string_view::npos) return std::nullopt;
  std::string_view tag = line.substr(0, sp);
  std::string_view rest = line.substr(sp + 1);
  if (tag == "*" && istarts_with(rest, "CAPABILITY")) {
    std::size_t begin = sp + 1 + 10;
    if (begin == line.size()) return list_span{begin, begin};
    if (line[begin] != ' ') return std::nullopt;
    return list_span{begin + 1, line.size()};
  }
  // Status responses that may carry a response code (RFC 9051 §7.1).
  auto sp2 = rest.find(' ');
  if (sp2 == std::string_view::npos) return std::nullopt;
  std::string_view status = rest.substr(0, sp2);
  if (!iequals(status, "OK") && !iequals(status, "NO") && !iequals(status, "BAD") &&
      !iequals(status, "PREAUTH") && !iequals(status, "BYE"))
    return std::nullopt;
  std::string_view text = rest.substr(sp2 + 1);
  if (!istarts_with(text, "[CAPABILITY")) return std::nullopt;
  std::size_t begin = sp + 1 + sp2 + 1 + 11;
  auto close = line.find(']', begin);
  if (close == std::string_view::npos) return std::nullopt;
  if (begin < close && line[begin] == ' ') ++begin;
  return list_span{begin, close};
}

}  // namespace

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (upper(a[i]) != upper(b[i])) return false;
  return true;
}

bool istarts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

std::optional<literal_marker> trailing_literal(std::string_view line) {
  if (line.empty() || line.back() != '}') return std::nullopt;
  auto open = line.rfind('{');
  if (open == std::string_view::npos) return std::nullopt;
  std::string_view inside = line.substr(open + 1, line.size() - open - 2);
  literal_marker m;
  if (!inside.empty() && inside.back() == '+') {
    m.synchronizing = false;
    inside.remove_suffix(1);
  }
  if (inside.empty()) return std::nullopt;
  for (char c : inside) {
    if (c < '0' || c > '9') return std::nullopt;
    // Over 2^63 is "too large" for every limit; saturate rather than wrap.
    if (m.size > (UINT64_MAX - 9) / 10) {
      m.size = UINT64_MAX;
      continue;
    }
    m.size = m.size * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return m;
}

std::optional<command_head> parse_command_head(std::string_view line) {
  auto sp = line.find(' ');
  if (sp == 0 || sp == std::string_view::npos) return std::nullopt;
  command_head h;
  h.tag = std::string(line.substr(0, sp));
  std::string_view rest = line.substr(sp + 1);
  auto sp2 = rest.find(' ');
  std::string_view name = rest.substr(0, sp2);
  for (char c : name) h.name.push_back(upper(c));
  h.rest = sp2 == std::string_view::npos ? std::string_view{} : rest.substr(sp2 + 1);
  return h;
}

std::optional<std::string> login_user(std::string_view args) {
  if (args.empty() || args[0] == '{') return std::nullopt;
  if (args[0] == '"') {
    std::string user;
    for (std::size_t i = 1; i < args.size(); ++i) {
      if (args[i] == '\\' && i + 1 < args.size()) {
        user.push_back(args[++i]);
      } else if (args[i] == '"') {
        return user;
      } else {
        user.push_back(args[i]);
      }
    }
    return std::nullopt;  // unterminated
  }
  return std::string(args.substr(0, args.find(' ')));
}

std::string rewrite_capability_list(std::string_view list, const capability_view& view) {
  std::string out;
  auto add = [&](std::string_view word) {
    if (!out.empty()) out += ' ';
    out += word;
  };
  for (auto word : split_words(list)) {
    if (iequals(word, "STARTTLS") || iequals(word, "LOGINDISABLED")) continue;
    if (istarts_with(word, "COMPRESS=")) continue;
    if (view.hide_auth && istarts_with(word, "AUTH=")) continue;
    add(word);
  }
  if (view.offer_starttls) add("STARTTLS");
  if (view.login_disabled) add("LOGINDISABLED");
  return out;
}

std::string rewrite_response(std::string_view line, const capability_view& view) {
  auto span = find_capabilities(line);
  if (!span) return std::string(line);
  return replace_capabilities(
      line, rewrite_capability_list(line.substr(span->begin, span->end - span->begin), view));
}

std::optional<std::string> capabilities_in(std::string_view line) {
  auto span = find_capabilities(line);
  if (!span) return std::nullopt;
  return std::string(line.substr(span->begin, span->end - span->begin));
}

bool has_capability(std::string_view list, std::string_view capability) {
  for (auto word : split_words(list))
    if (iequals(word, capability)) return true;
  return false;
}

std::string replace_capabilities(std::string_view line, std::string_view list) {
  auto span = find_capabilities(line);
  if (!span) return std::string(line);
  std::string out(line.substr(0, span->begin));
  // An empty list ("* CAPABILITY", "[CAPABILITY]") had no separator.
  if (span->begin > 0 && line[span->begin - 1] != ' ' && !list.empty()) out += ' ';
  out += list;
  out += line.substr(span->end);
  return out;
}

}  // namespace tlsbridge::protocols::imap
