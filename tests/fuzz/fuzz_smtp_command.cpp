// Fuzz target for protocols/smtp/smtp_command: parse_command, envelope_address and parse_bdat over
// one client command line. No crash, and every piece handed out lies within the line; a line the
// grammar accepts has no control character and exactly one SP after its verb (SECURITY.md, "The
// shield").
#include <cstdint>
#include <string>

#include "protocols/smtp/smtp_command.hpp"
#include "tests/fuzz/fuzz_check.hpp"

using namespace tlsbridge::protocols::smtp;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view line(reinterpret_cast<const char*>(data), size);
  const command c = parse_command(line);
  FUZZ_CHECK(c.name.size() + c.argument.size() <= line.size());
  FUZZ_CHECK(c.name.find(' ') == std::string::npos);
  for (char ch : c.name) FUZZ_CHECK(!(ch >= 'a' && ch <= 'z'));
  if (c.what == verb::malformed) {
    FUZZ_CHECK(c.name.empty() && c.argument.empty() && !c.problem.empty());
    return 0;
  }
  FUZZ_CHECK(!c.name.empty());
  for (char ch : line) FUZZ_CHECK(static_cast<unsigned char>(ch) >= 0x20 && ch != 0x7f);
  FUZZ_CHECK(line.substr(0, c.name.size()).size() == c.name.size());
  FUZZ_CHECK(line.size() == c.name.size() ||
             (line[c.name.size()] == ' ' &&
              (line.size() == c.name.size() + 1 || line[c.name.size() + 1] != ' ')));
  // The verb is recognised however it is cased.
  std::string lowered = c.name;
  for (char& ch : lowered)
    if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
  FUZZ_CHECK(parse_command(lowered).what == c.what);

  for (std::string_view prefix : {"FROM:", "TO:"}) {
    if (auto a = envelope_address(c.argument, prefix)) {
      FUZZ_CHECK(a->size() + prefix.size() <= c.argument.size());
      FUZZ_CHECK(c.argument.find(*a) != std::string::npos);
    }
  }
  if (auto h = parse_bdat(c.argument)) {
    // A size was there, made of digits only.
    FUZZ_CHECK(!c.argument.empty() && c.argument[0] >= '0' && c.argument[0] <= '9');
    if (h->size > 0) FUZZ_CHECK(c.argument.find_first_of("123456789") != std::string::npos);
  }
  return 0;
}
