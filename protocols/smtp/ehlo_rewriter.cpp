#include "protocols/smtp/ehlo_rewriter.hpp"

#include <array>
#include <string>

namespace tlsbridge::protocols::smtp {

namespace {

char upper(char c) {
  return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
}

// The keyword of an extension line's text ("AUTH NTLM" -> "AUTH", "AUTH=LOGIN" -> "AUTH").
std::size_t keyword_length(std::string_view text) {
  std::size_t n = 0;
  while (n < text.size() && text[n] != ' ' && text[n] != '=') ++n;
  return n;
}

std::string keyword_of(std::string_view text) {
  std::string k(text.substr(0, keyword_length(text)));  // one allocation at most, not one a char
  for (char& c : k) c = upper(c);
  return k;
}

// keyword_of(text) == keyword, without making the string.
bool keyword_is(std::string_view text, std::string_view keyword) {
  if (keyword_length(text) != keyword.size()) return false;
  for (std::size_t i = 0; i < keyword.size(); ++i)
    if (upper(text[i]) != keyword[i]) return false;
  return true;
}

constexpr std::array<std::string_view, 5> exchange_internal{"X-ANONYMOUSTLS", "XEXCH50", "XSHADOW",
                                                            "XSHADOWREQUEST", "XRDST"};

bool dropped(const std::string& keyword, const ehlo_view& view) {
  if (keyword == "STARTTLS" || keyword == "REQUIRETLS") return true;
  if ((keyword == "AUTH" || keyword == "X-EXPS") && !view.front_encrypted) return true;
  for (auto k : exchange_internal)
    if (keyword == k) return true;
  return false;
}

std::string_view line_text(const std::string& line) {
  return line.size() > 4 ? std::string_view(line).substr(4) : std::string_view{};
}

}  // namespace

reply rewrite_ehlo_reply(const reply& backend_reply, const ehlo_view& view, std::string_view host) {
  if (backend_reply.code != 250 || backend_reply.lines.empty()) return backend_reply;
  std::vector<std::string> texts;
  // The first line is the greeting ("250-mail.example Hello"), never an extension.
  texts.emplace_back(line_text(backend_reply.lines.front()));
  if (!host.empty()) {
    const auto space = texts.front().find(' ');
    texts.front() = std::string(host) +
                    (space == std::string::npos ? std::string() : texts.front().substr(space));
  }
  for (std::size_t i = 1; i < backend_reply.lines.size(); ++i) {
    std::string_view text = line_text(backend_reply.lines[i]);
    if (!dropped(keyword_of(text), view)) texts.emplace_back(text);
  }
  if (view.offer_starttls) texts.emplace_back("STARTTLS");
  return make_reply(250, texts);
}

bool ehlo_has_extension(const reply& ehlo_reply, std::string_view keyword) {
  for (std::size_t i = 1; i < ehlo_reply.lines.size(); ++i)
    if (keyword_is(line_text(ehlo_reply.lines[i]), keyword)) return true;
  return false;
}

}  // namespace tlsbridge::protocols::smtp
