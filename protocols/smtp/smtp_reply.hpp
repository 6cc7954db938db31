// SMTP replies from the backend (RFC 5321 §4.2): "CODE-text" continuation lines and a final
// "CODE text" (or bare "CODE") line. The parser frames complete multi-line replies from a byte
// stream, bounded in line length and line count; anything that is not a reply is an error, which
// the session turns into a 421 to the client rather than relaying garbage.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "protocols/common/line_framer.hpp"

namespace tlsbridge::protocols::smtp {

struct reply {
  int code = 0;
  std::vector<std::string> lines;  // each line whole ("250-PIPELINING"), without CR LF

  bool positive_completion() const { return code >= 200 && code < 300; }
  bool intermediate() const { return code >= 300 && code < 400; }
  // The lines again, each with CR LF, continuation markers as received.
  std::string wire() const;
  // The lines joined by "\n" (for the audit log).
  std::string text() const;
};

// Builds a reply from a code and text lines, setting the continuation markers.
reply make_reply(int code, const std::vector<std::string>& texts);

class reply_parser {
 public:
  enum class status { reply_ready, need_more, error };
  static constexpr std::size_t max_line = 4096;   // RFC 5321 §4.5.3.1.5 says 512; be generous
  static constexpr std::size_t max_lines = 512;

  void append(std::string_view data) { framer_.append(data); }
  status next(reply& out);
  std::size_t buffered() const { return framer_.buffered(); }
  const std::string& error() const { return error_; }

 private:
  line_framer framer_{max_line};
  reply partial_;
  std::string error_;
};

}  // namespace tlsbridge::protocols::smtp
