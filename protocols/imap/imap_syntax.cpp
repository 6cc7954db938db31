#include "protocols/imap/imap_syntax.hpp"

#include "common/ascii_case.hpp"
#include "protocols/common/ascii.hpp"

namespace tlsbridge::protocols::imap {

namespace {

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

namespace {

bool is_8bit(char c) {
  return static_cast<unsigned char>(c) >= 0x80;
}

// RFC 3501 §9: ATOM-CHAR is any CHAR except atom-specials ("(" ")" "{" SP CTL "%" "*" DQUOTE "\"
// "]"); 8-bit is not a CHAR.
bool is_atom_char(char c) {
  if (is_ctl(c) || is_8bit(c) || c == ' ') return false;
  return std::string_view("(){%*\"\\]").find(c) == std::string_view::npos;
}

// Inside an argument the proxy lets through what the command grammars use besides ATOM-CHAR
// (list wildcards "%" "*", "]" of BODY[...]); what changes framing ("(" ")" "{" DQUOTE "\") is
// handled by the scanner's states.
bool is_argument_char(char c) {
  return !is_ctl(c) && c != ' ' && std::string_view("(){\"\\").find(c) == std::string_view::npos;
}

}  // namespace

bool valid_tag(std::string_view tag) {
  // tag = 1*<any ASTRING-CHAR except "+">; ASTRING-CHAR = ATOM-CHAR / "]".
  if (tag.empty()) return false;
  for (char c : tag)
    if (c == '+' || (!is_atom_char(c) && c != ']')) return false;
  return true;
}

command_scanner::outcome command_scanner::refuse(std::string rule) {
  outcome o;
  o.what = result::refused;
  o.rule = std::move(rule);
  return o;
}

void command_scanner::begin_argument() {
  keeping_ = false;
  if (depth_ != 0) return;
  ++arg_count_;
  if (args_.size() < max_kept_arguments) {
    args_.emplace_back();
    keeping_ = true;
  }
}

void command_scanner::keep(std::string_view bytes) {
  if (!keeping_ || args_.empty()) return;
  std::string& a = args_.back();
  if (a.size() < max_kept_bytes) a.append(bytes.substr(0, max_kept_bytes - a.size()));
}

command_scanner::outcome command_scanner::first(std::string_view line, bool allow_8bit) {
  *this = command_scanner{};
  // RFC 3501 §9: command = tag SP (command-any / ...) CRLF — exactly one SP after the tag.
  const auto sp = line.find(' ');
  const std::string_view tag = line.substr(0, sp);
  for (char c : tag)
    if (is_ctl(c)) return refuse("control character in the command line (RFC 3501 §9)");
  if (!valid_tag(tag))
    return refuse(tag.empty() ? "line starts with SP (RFC 3501 §9 tag)"
                              : "invalid tag (RFC 3501 §9 tag)");
  tag_ = std::string(tag);
  if (sp == std::string_view::npos) return refuse("missing command name (RFC 3501 §9)");
  std::string_view rest = line.substr(sp + 1);
  const auto sp2 = rest.find(' ');
  const std::string_view name = rest.substr(0, sp2);
  if (name.empty()) return refuse("more than one SP after the tag (RFC 3501 §9)");
  for (char c : name) {
    if (is_ctl(c)) return refuse("control character in the command line (RFC 3501 §9)");
    if (!is_atom_char(c)) return refuse("invalid command name (RFC 3501 §9 atom)");
  }
  for (char c : name) name_.push_back(ascii::upper(c));
  if (sp2 == std::string_view::npos) return outcome{result::complete, {}, {}};
  state_ = state::token_start;
  return scan(rest.substr(sp2 + 1), allow_8bit);
}

command_scanner::outcome command_scanner::next(std::string_view fragment, bool allow_8bit) {
  // After a literal the argument is complete: SP, ")" or the end of the command follow.
  state_ = state::after_token;
  keeping_ = false;
  return scan(fragment, allow_8bit);
}

void command_scanner::literal_data(std::string_view bytes) {
  keep(bytes);
}

void command_scanner::literal_end() {
  keeping_ = false;
}

command_scanner::outcome command_scanner::scan(std::string_view s, bool allow_8bit) {
  std::size_t i = 0;
  const std::size_t n = s.size();
  while (i < n) {
    const char c = s[i];
    if (is_ctl(c)) return refuse("control character outside a literal (RFC 3501 §9 CTL)");
    if (is_8bit(c) && !allow_8bit)
      return refuse("8-bit byte outside a quoted string before TLS (RFC 3501 §9)");
    switch (state_) {
      case state::token_start:
      case state::after_open: {
        if (c == ' ') return refuse("more than one SP between arguments (RFC 3501 §9)");
        if (c == '"') {
          // RFC 3501 §9 quoted: only DQUOTE and "\" may be escaped; 8-bit is UTF8 (RFC 6855).
          atoms_only_ = false;
          begin_argument();
          std::size_t j = i + 1;
          for (;; ++j) {
            if (j >= n) return refuse("unterminated quoted string (RFC 3501 §9 quoted)");
            const char q = s[j];
            if (is_ctl(q)) return refuse("control character in a quoted string (RFC 3501 §9)");
            if (q == '"') break;
            if (q == '\\') {
              if (j + 1 >= n || (s[j + 1] != '"' && s[j + 1] != '\\'))
                return refuse("invalid escape in a quoted string (RFC 3501 §9 quoted-specials)");
              ++j;
            }
            keep(s.substr(j, 1));
          }
          keeping_ = false;
          state_ = state::after_token;
          i = j + 1;
          continue;
        }
        if (c == '{' || (c == '~' && i + 1 < n && s[i + 1] == '{')) {
          // RFC 3501 §4.3 / RFC 7888 / RFC 3516: "{" 1*DIGIT ["+"] "}" and then CRLF.
          outcome o;
          o.what = result::literal;
          o.literal.literal8 = c == '~';
          std::size_t j = i + (c == '~' ? 2 : 1);
          std::size_t digits = 0;
          for (; j < n && s[j] >= '0' && s[j] <= '9'; ++j, ++digits) {
            auto& size = o.literal.size;
            // Past any limit anyway: saturate rather than wrap to something small.
            size = size > (UINT64_MAX - 9) / 10
                       ? UINT64_MAX
                       : size * 10 + static_cast<std::uint64_t>(s[j] - '0');
          }
          if (j < n && s[j] == '+') {
            o.literal.synchronizing = false;
            ++j;
          }
          if (digits == 0 || j >= n || s[j] != '}')
            return refuse("malformed literal marker (RFC 3501 §9 literal)");
          if (j + 1 != n) return refuse("text after a literal marker (RFC 3501 §4.3)");
          atoms_only_ = false;
          begin_argument();
          state_ = state::after_token;
          return o;
        }
        if (c == '(') {
          atoms_only_ = false;
          begin_argument();
          keeping_ = false;
          ++depth_;
          state_ = state::after_open;
          ++i;
          continue;
        }
        if (c == ')') {
          if (state_ != state::after_open)
            return refuse("')' where an argument should start (RFC 3501 §9)");
          --depth_;
          state_ = state::after_token;
          ++i;
          continue;
        }
        // An atom, or a flag ("\" atom, RFC 3501 §9 flag).
        if (c != '\\' && !is_argument_char(c))
          return refuse("invalid character at the start of an argument (RFC 3501 §9)");
        begin_argument();
        keep(s.substr(i, 1));
        state_ = state::in_atom;
        ++i;
        continue;
      }
      case state::in_atom:
        if (c == ' ') {
          keeping_ = false;
          state_ = state::token_start;
        } else if (c == ')') {
          if (depth_ == 0) return refuse("unbalanced ')' (RFC 3501 §9)");
          --depth_;
          keeping_ = false;
          state_ = state::after_token;
        } else if (c == '{') {
          return refuse("literal marker not at the start of an argument (RFC 3501 §4.3)");
        } else if (c == '"') {
          return refuse("quote inside an atom (RFC 3501 §9 atom-specials)");
        } else if (c == '(' || c == '\\') {
          return refuse("atom-special inside an atom (RFC 3501 §9 atom-specials)");
        } else {
          keep(s.substr(i, 1));
        }
        ++i;
        continue;
      case state::after_token:
        if (c == ' ') {
          state_ = state::token_start;
        } else if (c == ')') {
          if (depth_ == 0) return refuse("unbalanced ')' (RFC 3501 §9)");
          --depth_;
        } else if (c == ']') {
          // BODY[HEADER.FIELDS (FROM)]<0.100>: the section goes on after its list.
          state_ = state::in_atom;
        } else {
          return refuse("argument not followed by SP (RFC 3501 §9)");
        }
        ++i;
        continue;
    }
  }
  if (state_ == state::token_start) return refuse("SP at the end of the line (RFC 3501 §9)");
  if (depth_ != 0) return refuse("unbalanced '(' (RFC 3501 §9)");
  return outcome{result::complete, {}, {}};
}

std::optional<literal_marker> response_literal(std::string_view line, bool response_start) {
  auto m = trailing_literal(line);
  if (!m) return std::nullopt;
  if (response_start) {
    if (line.starts_with('+')) return std::nullopt;  // continue-req = "+" SP (resp-text / base64)
    const auto sp = line.find(' ');
    if (line.substr(0, sp) != "*") return std::nullopt;  // response-tagged: resp-cond-state
    const std::string_view rest = sp == std::string_view::npos ? "" : line.substr(sp + 1);
    const std::string_view word = rest.substr(0, rest.find(' '));
    for (std::string_view status : {"OK", "NO", "BAD", "BYE", "PREAUTH"})
      if (iequals(word, status)) return std::nullopt;  // resp-cond-*: text to the end
  }
  std::size_t open = line.rfind('{');
  if (open > 0 && line[open - 1] == '~') --open;  // literal8, RFC 3516
  if (open == 0 || (line[open - 1] != ' ' && line[open - 1] != '(')) return std::nullopt;
  return m;
}

bool literal_allowed_in(std::string_view name, std::string_view uid_subcommand) {
  // RFC 3501 §9 (LOGIN, SELECT ... APPEND, SEARCH, FETCH's header-list, COPY), RFC 6851 MOVE,
  // RFC 2971 ID, RFC 5256 SORT/THREAD, RFC 2087 QUOTA, RFC 4314 ACL, RFC 5464 METADATA,
  // RFC 5465 NOTIFY, RFC 4467 URLAUTH, RFC 6154 XLIST/LIST-EXTENDED.
  static constexpr std::string_view with_strings[] = {
      "LOGIN",       "SELECT",      "EXAMINE",   "CREATE",     "DELETE",       "RENAME",
      "SUBSCRIBE",   "UNSUBSCRIBE", "LIST",      "LSUB",       "XLIST",        "STATUS",
      "APPEND",      "SEARCH",      "FETCH",     "COPY",       "MOVE",         "ID",
      "SORT",        "THREAD",      "ESEARCH",   "GETQUOTA",   "GETQUOTAROOT", "SETQUOTA",
      "GETACL",      "SETACL",      "DELETEACL", "LISTRIGHTS", "MYRIGHTS",     "GETMETADATA",
      "SETMETADATA", "NOTIFY",      "URLFETCH",  "GENURLAUTH", "RESETKEY"};
  std::string_view n = name;
  std::string sub;
  if (n == "UID") {
    for (char c : uid_subcommand) sub.push_back(ascii::upper(c));
    if (sub != "FETCH" && sub != "SEARCH" && sub != "COPY" && sub != "MOVE" && sub != "SORT" &&
        sub != "THREAD")
      return false;
    return true;
  }
  for (auto w : with_strings)
    if (n == w) return true;
  return false;
}

std::optional<command_head> parse_command_head(std::string_view line) {
  auto sp = line.find(' ');
  if (sp == 0 || sp == std::string_view::npos) return std::nullopt;
  command_head h;
  h.tag = std::string(line.substr(0, sp));
  std::string_view rest = line.substr(sp + 1);
  auto sp2 = rest.find(' ');
  std::string_view name = rest.substr(0, sp2);
  for (char c : name) h.name.push_back(ascii::upper(c));
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
