#include "protocols/smtp/data_scanner.hpp"

#include <cstring>

namespace tlsbridge::protocols::smtp {

bool data_scanner::bare_break(bool is_lf, std::string& out) {
  (is_lf ? bare_lf_ : bare_cr_)++;
  switch (mode_) {
    case mode::reject:
      return false;
    case mode::normalize:
      out += "\r\n";
      state_ = state::line_start;
      line_start_real_ = false;
      return true;
    case mode::pass:
      out += is_lf ? '\n' : '\r';
      state_ = state::mid_line;  // a bare break never starts a line the proxy would end data on
      return true;
  }
  return false;
}

data_scanner::result data_scanner::scan(std::string_view in, std::string& out) {
  result r;
  std::size_t i = 0;
  const std::size_t n = in.size();
  while (i < n) {
    const char c = in[i];
    switch (state_) {
      case state::mid_line: {
        // Fast path: copy up to the next CR or LF in one go.
        std::size_t j = i;
        while (j < n && in[j] != '\r' && in[j] != '\n') ++j;
        out.append(in.data() + i, j - i);
        message_bytes_ += j - i;
        i = j;
        if (i == n) break;
        if (in[i] == '\r') {
          state_ = state::cr;
          ++i;
          ++message_bytes_;
        } else {  // bare LF
          if (!bare_break(true, out)) {
            r.consumed = i;
            r.violation = true;
            return r;
          }
          ++i;
          ++message_bytes_;
        }
        break;
      }
      case state::cr:
        if (c == '\n') {
          out += "\r\n";
          ++i;
          ++message_bytes_;
          state_ = state::line_start;
          line_start_real_ = true;
        } else {
          // The CR held back was bare; `c` is looked at again in the new state.
          if (!bare_break(false, out)) {
            r.consumed = i;
            r.violation = true;
            return r;
          }
        }
        break;
      case state::line_start:
        if (c == '.') {
          state_ = state::dot;
          ++i;
        } else {
          state_ = state::mid_line;
        }
        break;
      case state::dot:
        if (c == '\r') {
          state_ = state::dot_cr;
          ++i;
        } else if (c == '\n') {  // ".<LF>": never an end of data
          if (mode_ == mode::reject) {
            ++bare_lf_;
            r.consumed = i;
            r.violation = true;
            return r;
          }
          out += (mode_ == mode::normalize || !line_start_real_) ? ".." : ".";
          message_bytes_ += 1;
          state_ = state::mid_line;  // the LF is handled there as a bare break
        } else {
          // A dot-stuffed or ordinary line; a dot after a normalised break is stuffed so the
          // backend cannot read a line break the client never sent.
          out += (!line_start_real_ && mode_ == mode::normalize) ? ".." : ".";
          message_bytes_ += 1;
          state_ = state::mid_line;
        }
        break;
      case state::dot_cr:
        if (c == '\n' && line_start_real_) {
          out += ".\r\n";
          ++i;
          r.consumed = i;
          r.end_of_data = true;
          // The CR LF before the dot belongs to the message; the dot line does not.
          state_ = state::line_start;
          return r;
        }
        if (c == '\n') {  // ".\r\n" after a normalised bare break: content, stuffed
          out += "..\r\n";
          message_bytes_ += 3;
          ++i;
          state_ = state::line_start;
          line_start_real_ = true;
          break;
        }
        // ".\r" then something else: the CR is bare.
        if (mode_ == mode::reject) {
          ++bare_cr_;
          r.consumed = i;
          r.violation = true;
          return r;
        }
        out += (mode_ == mode::normalize) ? ".." : ".";
        message_bytes_ += 2;  // the dot and the bare CR
        if (!bare_break(false, out)) return r;
        break;
    }
  }
  r.consumed = n;
  return r;
}

}  // namespace tlsbridge::protocols::smtp
