#include "protocols/http/hsts.hpp"

namespace tlsbridge::protocols::http {

std::string with_hsts(std::string_view raw_head, const message_head& head, std::string_view value) {
  std::string out(raw_head);
  if (value.empty() || head.find("Strict-Transport-Security") != nullptr) return out;
  std::string_view eol;
  if (raw_head.ends_with("\r\n\r\n"))
    eol = "\r\n";
  else if (raw_head.ends_with("\n\n"))
    eol = "\n";
  else
    return out;  // not a complete head: left as it is
  std::string field = "Strict-Transport-Security: ";
  field += value;
  field += eol;
  out.insert(out.size() - eol.size(), field);
  return out;
}

}  // namespace tlsbridge::protocols::http
