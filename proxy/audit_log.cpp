#include "proxy/audit_log.hpp"

#include <spdlog/spdlog.h>
#include <syslog.h>
#include <unistd.h>

#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <stdexcept>

namespace tlsbridge::proxy {

namespace {

// The checked descriptor as a stdio stream (one fwrite per record); "" or the reason.
std::string open_checked(const std::string& path, const output_owners& owners, std::FILE*& out) {
  auto opened = open_output_file(path, owners);
  if (!opened) return opened.error;
  if (!opened.warning.empty()) spdlog::warn("audit: {}", opened.warning);
  out = ::fdopen(opened.fd, "a");
  if (out == nullptr) {
    const int err = errno;
    ::close(opened.fd);
    return path + ": " + std::strerror(err);
  }
  return {};
}

}  // namespace

audit_log::audit_log(const std::string& path, const output_owners& owners)
    : path_(path), owners_(owners) {
  if (path == "-") {
    file_ = stdout;
  } else if (path == "syslog") {
    syslog_ = true;
    openlog("tlsbridge", LOG_PID, LOG_MAIL);
  } else {
    if (auto error = open_checked(path, owners_, file_); !error.empty())
      throw std::runtime_error("cannot open audit log: " + error);
    owns_file_ = true;
  }
}

audit_log::~audit_log() {
  if (owns_file_ && file_) std::fclose(file_);
  if (syslog_) closelog();
}

void audit_log::write(boost::json::object record) {
  std::string text;
  const auto ts = rfc3339_ms(std::chrono::system_clock::now());
  if (record.contains("ts") || record.contains("v")) {
    // A record naming "ts" or "v" itself: merged into a new object as always (its own value
    // takes that member's place).
    boost::json::object line;
    line.reserve(record.size() + 2);
    line["ts"] = ts;
    line["v"] = audit_schema_version;
    for (auto& kv : record) line[kv.key()] = std::move(kv.value());
    boost::json::value v(std::move(line));
    sanitize_json(v);
    text = boost::json::serialize(v);
  } else {
    // The usual record: "ts" and "v" are written as text in front of the serialised record
    // instead of moving every member into a new object (a hash insert each, ≈ 0.4 k
    // instructions per member); the timestamp is ASCII digits and punctuation, nothing to escape.
    boost::json::value v(std::move(record));
    sanitize_json(v);
    const std::string body = boost::json::serialize(v);  // "{...}"
    text.reserve(body.size() + ts.size() + 16);
    text += "{\"ts\":\"";
    text += ts;
    text += "\",\"v\":";
    text += std::to_string(audit_schema_version);
    if (body.size() > 2) {
      text += ',';
      text.append(body, 1, std::string::npos);
    } else {
      text += '}';
    }
  }
  std::lock_guard lock(mutex_);
  if (syslog_) {
    ::syslog(LOG_INFO, "%s", text.c_str());
    return;
  }
  text += '\n';
  if (!file_) {
    ++failures_;
    return;
  }
  // One fwrite per record and a flush: a reader (or a crash) never sees half a line of ours.
  if (std::fwrite(text.data(), 1, text.size(), file_) != text.size() || std::fflush(file_) != 0) {
    ++failures_;
    std::clearerr(file_);
  }
}

std::string audit_log::reopen() {
  if (!owns_file_) return {};
  std::FILE* fresh = nullptr;
  if (auto error = open_checked(path_, owners_, fresh); !error.empty()) {
    ++failures_;
    return error;  // keep writing to the old file rather than to nothing (or through a symlink)
  }
  std::lock_guard lock(mutex_);
  if (file_) std::fclose(file_);
  file_ = fresh;
  return {};
}

std::string rfc3339_ms(std::chrono::system_clock::time_point t) {
  // Every audit record is stamped, and most records of a thread fall within a second of the
  // previous one: the "YYYY-MM-DDTHH:MM:SS." part is kept per thread and made again (gmtime_r,
  // digits by hand) only when the second changes; the milliseconds are three digits. snprintf
  // and gmtime_r cost ≈ 4 k instructions per record, this ≈ 0.1 k.
  const auto ms_total =
      std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  auto secs = ms_total / 1000;
  auto ms = ms_total % 1000;
  if (ms < 0) {  // before 1970: floor, not truncation
    ms += 1000;
    --secs;
  }
  thread_local std::int64_t cached_secs = -1;
  thread_local char cached[20];  // "YYYY-MM-DDTHH:MM:SS"
  if (secs != cached_secs || secs < 0) {
    const std::time_t tt = static_cast<std::time_t>(secs);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    const auto put = [](char* at, int value, int width) {
      for (int i = width - 1; i >= 0; --i, value /= 10) at[i] = static_cast<char>('0' + value % 10);
    };
    const int year = tm.tm_year + 1900;
    if (year < 0 || year > 9999) {  // outside RFC 3339's four digits: the general path
      char buf[64];
      std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", year, tm.tm_mon + 1,
                    tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
      return buf;
    }
    put(cached, year, 4);
    cached[4] = '-';
    put(cached + 5, tm.tm_mon + 1, 2);
    cached[7] = '-';
    put(cached + 8, tm.tm_mday, 2);
    cached[10] = 'T';
    put(cached + 11, tm.tm_hour, 2);
    cached[13] = ':';
    put(cached + 14, tm.tm_min, 2);
    cached[16] = ':';
    put(cached + 17, tm.tm_sec, 2);
    cached_secs = secs;
  }
  std::string out(cached, 19);
  const int m = static_cast<int>(ms);
  const char tail[5] = {'.', static_cast<char>('0' + m / 100), static_cast<char>('0' + m / 10 % 10),
                        static_cast<char>('0' + m % 10), 'Z'};
  out.append(tail, 5);
  return out;
}

namespace {

// Length of the well-formed UTF-8 sequence at in[i] (no overlong forms, no surrogates, nothing
// above U+10FFFF), or 0.
std::size_t utf8_sequence_length(std::string_view in, std::size_t i) {
  const unsigned char c = static_cast<unsigned char>(in[i]);
  const std::size_t len = c < 0x80           ? 1
                          : (c >> 5) == 0x6  ? 2
                          : (c >> 4) == 0xE  ? 3
                          : (c >> 3) == 0x1E ? 4
                                             : 0;
  bool ok = len > 0 && i + len <= in.size();
  for (std::size_t k = 1; ok && k < len; ++k)
    ok = (static_cast<unsigned char>(in[i + k]) & 0xC0) == 0x80;
  if (ok && len == 2) ok = c >= 0xC2;  // no overlong forms
  if (ok && len == 3) {
    const unsigned char c1 = static_cast<unsigned char>(in[i + 1]);
    ok = !(c == 0xE0 && c1 < 0xA0) && !(c == 0xED && c1 >= 0xA0);  // overlong, surrogates
  }
  if (ok && len == 4) {
    const unsigned char c1 = static_cast<unsigned char>(in[i + 1]);
    ok = c <= 0xF4 && !(c == 0xF0 && c1 < 0x90) && !(c == 0xF4 && c1 >= 0x90);
  }
  return ok ? len : 0;
}

}  // namespace

std::size_t valid_utf8_prefix(std::string_view in) {
  std::size_t i = 0;
  while (i < in.size()) {
    if (static_cast<unsigned char>(in[i]) < 0x80) {  // ASCII, nearly every byte of a record
      ++i;
      continue;
    }
    const std::size_t len = utf8_sequence_length(in, i);
    if (len == 0) break;
    i += len;
  }
  return i;
}

std::string sanitize_utf8(std::string_view in) {
  std::size_t i = valid_utf8_prefix(in);
  std::string out(in.substr(0, i));
  if (i == in.size()) return out;
  out.reserve(in.size() + 2);
  while (i < in.size()) {
    const std::size_t len = utf8_sequence_length(in, i);
    if (len > 0) {
      out.append(in.substr(i, len));
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

void sanitize_json(boost::json::value& v) {
  if (auto* s = v.if_string()) {
    // Most strings are valid (plain ASCII): checked in place, copied only when something is
    // replaced. Every audit record passes here, once per string.
    std::string_view view(s->data(), s->size());
    if (valid_utf8_prefix(view) != view.size()) *s = sanitize_utf8(view);
  } else if (auto* o = v.if_object()) {
    for (auto& kv : *o) sanitize_json(kv.value());
  } else if (auto* a = v.if_array()) {
    for (auto& e : *a) sanitize_json(e);
  }
}

}  // namespace tlsbridge::proxy
