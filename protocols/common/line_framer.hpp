// A bounded line framer for CRLF text protocols. Bytes are appended as they arrive; complete lines
// come out one at a time, without their terminator. A line longer than the limit is reported once
// as `too_long` and the rest of it (up to its LF) is discarded, so a peer can never make the proxy
// buffer more than `max_line` bytes of one line. The unconsumed tail can be taken back out, which
// is how a protocol switches from lines to raw data (SMTP DATA/BDAT, IMAP literals) mid-buffer.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace tlsbridge::protocols {

class line_framer {
 public:
  enum class status { line, need_more, too_long };

  explicit line_framer(std::size_t max_line) : max_line_(max_line) {}

  void append(std::string_view data) { buffer_.append(data); }
  // On `line`, `out` holds the line without CR LF (a bare LF also ends a line; the caller may
  // reject it). `too_long` is returned once per oversized line.
  status next_line(std::string& out);
  // Takes up to `max` unconsumed bytes (raw data that follows a line).
  std::string take(std::size_t max);
  std::string take_all() { return take(buffer_.size() - offset_); }
  // The unconsumed bytes, without copying; consume(n) drops the first n of them.
  std::string_view peek() const {
    return std::string_view(buffer_.data() + offset_, buffer_.size() - offset_);
  }
  void consume(std::size_t n);
  std::size_t buffered() const { return buffer_.size() - offset_; }
  bool discarding() const { return discarding_; }
  void clear();

 private:
  void compact();

  std::size_t max_line_;
  std::string buffer_;
  std::size_t offset_ = 0;
  bool discarding_ = false;  // inside an oversized line, dropping bytes up to its LF
};

}  // namespace tlsbridge::protocols
