#include "protocols/smtp/smtp_reply.hpp"

namespace tlsbridge::protocols::smtp {

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// "250-x", "250 x", "250": returns the code, or -1.
int reply_code(std::string_view line) {
  if (line.size() < 3 || !is_digit(line[0]) || !is_digit(line[1]) || !is_digit(line[2])) return -1;
  if (line[0] < '2' || line[0] > '5') return -1;
  if (line.size() > 3 && line[3] != ' ' && line[3] != '-') return -1;
  return (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
}

}  // namespace

std::string reply::wire() const {
  std::string out;
  for (const auto& l : lines) {
    out += l;
    out += "\r\n";
  }
  return out;
}

std::string reply::text() const {
  std::string out;
  for (const auto& l : lines) {
    if (!out.empty()) out += '\n';
    out += l;
  }
  return out;
}

reply make_reply(int code, const std::vector<std::string>& texts) {
  reply r;
  r.code = code;
  std::string prefix = std::to_string(code);
  for (std::size_t i = 0; i < texts.size(); ++i) {
    bool last = i + 1 == texts.size();
    r.lines.push_back(prefix + (last ? " " : "-") + texts[i]);
  }
  return r;
}

reply_parser::status reply_parser::next(reply& out) {
  std::string line;
  for (;;) {
    switch (framer_.next_line(line)) {
      case line_framer::status::need_more:
        return status::need_more;
      case line_framer::status::too_long:
        error_ = "backend reply line longer than " + std::to_string(max_line) + " bytes";
        return status::error;
      case line_framer::status::line:
        break;
    }
    int code = reply_code(line);
    if (code < 0) {
      error_ = "malformed backend reply line";
      return status::error;
    }
    if (!partial_.lines.empty() && code != partial_.code) {
      error_ = "backend reply changes code inside a multi-line reply";
      return status::error;
    }
    if (partial_.lines.size() >= max_lines) {
      error_ = "backend reply has too many lines";
      return status::error;
    }
    partial_.code = code;
    bool last = line.size() == 3 || line[3] == ' ';
    partial_.lines.push_back(std::move(line));
    if (last) {
      out = std::move(partial_);
      partial_ = reply{};
      return status::reply_ready;
    }
  }
}

}  // namespace tlsbridge::protocols::smtp
