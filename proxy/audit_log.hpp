// The audit sink: one JSON object per line, UTF-8, written whole or not at all.
// Boost.JSON escapes control characters, so a CR LF a peer put in a HELO name stays inside its
// string; bytes that are not valid UTF-8 are replaced with U+FFFD before serialising. Several
// io_context threads share one sink: a line is formatted outside the lock and appended under it.
#pragma once

#include <atomic>
#include <boost/json/object.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>

#include "proxy/output_file.hpp"

namespace tlsbridge::proxy {

// The `v` of every record: the version of docs/audit-record.schema.json the line follows. Raised
// when a field changes meaning or goes away, not when one is added.
inline constexpr int audit_schema_version = 1;

class audit_log {
 public:
  // "-" = stdout, "syslog" = syslog(3), else a file opened for append by open_output_file
  // (proxy/output_file: never through a symlink, its directories checked, mode 0640 when created).
  // Throws std::runtime_error naming the path and the rule.
  audit_log(const std::string& path, const output_owners& owners);
  ~audit_log();
  audit_log(const audit_log&) = delete;
  audit_log& operator=(const audit_log&) = delete;

  // Adds "ts" (RFC 3339 UTC, milliseconds) and "v" first, then writes the record as one line. A
  // failed write (full disk) is counted, never thrown: the data path does not stop for the audit.
  void write(boost::json::object record);
  // SIGUSR1 (logrotate's postrotate): reopen the file by its path, with the same checks as at
  // start (after the privilege drop, as the service user). On failure the old file stays in use
  // and the reason is returned; "" = reopened, or nothing to reopen (stdout/syslog).
  std::string reopen();
  std::uint64_t failures() const { return failures_.load(); }

 private:
  std::mutex mutex_;
  std::string path_;
  output_owners owners_;
  std::atomic<std::uint64_t> failures_{0};
  std::FILE* file_ = nullptr;
  bool owns_file_ = false;
  bool syslog_ = false;
};

std::string rfc3339_ms(std::chrono::system_clock::time_point t);
// Length of the longest well-formed UTF-8 prefix of `in` (== in.size() when all of it is).
std::size_t valid_utf8_prefix(std::string_view in);
// Replaces invalid UTF-8 sequences with U+FFFD.
std::string sanitize_utf8(std::string_view in);
// Recursively sanitises every string in the value.
void sanitize_json(boost::json::value& v);

}  // namespace tlsbridge::proxy
