// Scans SMTP message data (after DATA's 354) as it streams through, without buffering it, to find
// the one true end of data, <CRLF>.<CRLF> (RFC 5321 §4.1.1.4), and to stop SMTP smuggling
// (CVE-2023-51764 class): a bare LF or bare CR, and so any end of data other than <CRLF>.<CRLF>,
// is never passed on as if it were a line end the backend could read as the end of data.
//
// Modes (per listener, `smtp_bare_lf`):
//  * reject    — stop at the first bare CR/LF: the bytes before it are forwarded, the session
//                drops the back leg before any final dot, the message is never committed.
//  * normalize — bare CR and bare LF become CR LF; a "." that would then stand alone on a line
//                (and so become an end of data the client never sent) is dot-stuffed to "..",
//                so the backend stores a "." line, exactly what a strict reader sees.
//  * pass      — forwarded unchanged (counted), for backends that are themselves strict.
//
// States: line_start (after a real CR LF; the initial state, since 354 follows a command line)
// -> dot (held) -> dot_cr (held) -> end; mid_line; cr (held until the next byte says bare or not).
// At most two bytes (".\r") are ever held back.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "config/config.hpp"

namespace tlsbridge::protocols::smtp {

class data_scanner {
 public:
  using mode = config::bare_lf_mode;

  struct result {
    std::size_t consumed = 0;  // input bytes used (on end_of_data: up to and including the dot line)
    bool end_of_data = false;
    bool violation = false;    // reject mode: a bare CR/LF; nothing at or after it was forwarded
  };

  explicit data_scanner(mode m) : mode_(m) {}

  // Appends to `out` the bytes to forward for `in`.
  result scan(std::string_view in, std::string& out);

  std::uint64_t message_bytes() const { return message_bytes_; }  // excludes the final ".\r\n"
  std::uint64_t bare_lf_count() const { return bare_lf_; }
  std::uint64_t bare_cr_count() const { return bare_cr_; }

 private:
  enum class state { line_start, mid_line, cr, dot, dot_cr };
  // A bare line break was found; returns false when scanning must stop (reject mode).
  bool bare_break(bool is_lf, std::string& out);

  mode mode_;
  state state_ = state::line_start;
  bool line_start_real_ = true;  // false when the line start came from a normalised bare break
  std::uint64_t message_bytes_ = 0;
  std::uint64_t bare_lf_ = 0;
  std::uint64_t bare_cr_ = 0;
};

}  // namespace tlsbridge::protocols::smtp
