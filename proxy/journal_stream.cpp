#include "proxy/journal_stream.hpp"

#include <spdlog/pattern_formatter.h>
#include <sys/stat.h>
#include <unistd.h>

#include <charconv>
#include <cstdlib>

namespace tlsbridge::proxy {

namespace {

template <class Number>
bool parse_decimal(std::string_view text, Number& out) {
  if (text.empty()) return false;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size();
}

class journal_formatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const char prefix[] = {'<', static_cast<char>('0' + syslog_priority(msg.level)), '>'};
    dest.append(prefix, prefix + sizeof prefix);
    lines_.format(msg, dest);
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<journal_formatter>();
  }

 private:
  spdlog::pattern_formatter lines_{"[%l] %v"};
};

}  // namespace

bool journal_stream_matches(std::string_view journal_stream, dev_t device, ino_t inode) {
  const auto colon = journal_stream.find(':');
  if (colon == std::string_view::npos) return false;
  unsigned long long dev = 0, ino = 0;
  return parse_decimal(journal_stream.substr(0, colon), dev) &&
         parse_decimal(journal_stream.substr(colon + 1), ino) && dev == device && ino == inode;
}

bool stderr_is_journal() {
  const char* journal_stream = std::getenv("JOURNAL_STREAM");
  struct stat st {};
  return journal_stream != nullptr && ::fstat(STDERR_FILENO, &st) == 0 &&
         journal_stream_matches(journal_stream, st.st_dev, st.st_ino);
}

int syslog_priority(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
    case spdlog::level::debug:
      return 7;
    case spdlog::level::info:
      return 6;
    case spdlog::level::warn:
      return 4;
    case spdlog::level::err:
      return 3;
    case spdlog::level::critical:
      return 2;
    case spdlog::level::off:
    case spdlog::level::n_levels:
      break;
  }
  return 6;
}

std::unique_ptr<spdlog::formatter> make_journal_formatter() {
  return std::make_unique<journal_formatter>();
}

}  // namespace tlsbridge::proxy
