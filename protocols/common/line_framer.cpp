#include "protocols/common/line_framer.hpp"

#include <algorithm>

namespace tlsbridge::protocols {

line_framer::status line_framer::next_line(std::string& out) {
  for (;;) {
    std::string_view pending(buffer_.data() + offset_, buffer_.size() - offset_);
    auto lf = pending.find('\n');
    if (discarding_) {
      if (lf == std::string_view::npos) {
        buffer_.clear();
        offset_ = 0;
        return status::need_more;
      }
      offset_ += lf + 1;
      discarding_ = false;
      continue;
    }
    if (lf == std::string_view::npos) {
      // A line of exactly max_line_ whose CR has arrived without its LF is not too long yet:
      // byte-at-a-time input must frame like whole-buffer input.
      const bool cr_of_full_line = pending.size() == max_line_ + 1 && pending.back() == '\r';
      if (pending.size() > max_line_ && !cr_of_full_line) {
        discarding_ = true;
        buffer_.clear();
        offset_ = 0;
        return status::too_long;
      }
      compact();
      return status::need_more;
    }
    // The limit counts the line's content; its CR LF is not held against it.
    std::size_t length = lf;
    if (length > 0 && pending[length - 1] == '\r') --length;
    if (length > max_line_) {
      offset_ += lf + 1;
      return status::too_long;
    }
    out.assign(pending.substr(0, length));
    offset_ += lf + 1;
    return status::line;
  }
}

std::string line_framer::take(std::size_t max) {
  std::size_t n = std::min(max, buffer_.size() - offset_);
  std::string out = buffer_.substr(offset_, n);
  offset_ += n;
  compact();
  return out;
}

void line_framer::consume(std::size_t n) {
  offset_ += std::min(n, buffer_.size() - offset_);
  compact();
}

void line_framer::clear() {
  buffer_.clear();
  offset_ = 0;
  discarding_ = false;
}

void line_framer::compact() {
  if (offset_ == buffer_.size()) {
    buffer_.clear();
    offset_ = 0;
  } else if (offset_ > 4096 && offset_ * 2 > buffer_.size()) {
    buffer_.erase(0, offset_);
    offset_ = 0;
  }
}

}  // namespace tlsbridge::protocols
