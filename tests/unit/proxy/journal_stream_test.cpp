// proxy/journal_stream: JOURNAL_STREAM names the stream systemd gave stderr (systemd.exec(5)); only
// an exact DEVICE:INODE match turns the priority prefixes on, and each level maps to its syslog(3)
// priority.
#include "proxy/journal_stream.hpp"

#include <spdlog/details/log_msg.h>

#include <catch2/catch.hpp>

using namespace tlsbridge::proxy;

TEST_CASE("JOURNAL_STREAM matches only its own device and inode", "[proxy][journal]") {
  CHECK(journal_stream_matches("2049:123456", 2049, 123456));
  CHECK_FALSE(journal_stream_matches("2049:123456", 2049, 123457));
  CHECK_FALSE(journal_stream_matches("2050:123456", 2049, 123456));
  for (const char* malformed : {"", ":", "2049:", ":123456", "2049", "2049:123456x", "x2049:1",
                                "2049 :123456", "-1:123456", "2049:123456:7"}) {
    INFO(malformed);
    CHECK_FALSE(journal_stream_matches(malformed, 2049, 123456));
  }
}

TEST_CASE("levels carry their syslog priorities", "[proxy][journal]") {
  CHECK(syslog_priority(spdlog::level::trace) == 7);
  CHECK(syslog_priority(spdlog::level::debug) == 7);
  CHECK(syslog_priority(spdlog::level::info) == 6);
  CHECK(syslog_priority(spdlog::level::warn) == 4);
  CHECK(syslog_priority(spdlog::level::err) == 3);
  CHECK(syslog_priority(spdlog::level::critical) == 2);
}

TEST_CASE("journal lines start with the priority and carry no time stamp", "[proxy][journal]") {
  auto formatter = make_journal_formatter();
  spdlog::details::log_msg msg("tlsbridge", spdlog::level::warn, "backend down");
  spdlog::memory_buf_t out;
  formatter->format(msg, out);
  CHECK(std::string(out.data(), out.size()) == "<4>[warning] backend down\n");
}
