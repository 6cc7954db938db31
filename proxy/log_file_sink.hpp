// The operational log's file sink ([log] file): spdlog's own file sink opens by name with
// fopen, which follows a symlink planted in the log directory — as root, before the privilege
// drop. This sink writes to a descriptor from open_output_file (proxy/output_file: O_NOFOLLOW,
// directory and file checked) and reopens the same way on SIGUSR1, keeping the old
// file when the new one fails the checks.
#pragma once

#include <spdlog/details/log_msg.h>
#include <spdlog/sinks/base_sink.h>
#include <unistd.h>

#include <cstdio>
#include <mutex>
#include <stdexcept>
#include <string>

#include "proxy/output_file.hpp"

namespace tlsbridge::proxy {

class log_file_sink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  // Throws std::runtime_error naming the path and the rule.
  log_file_sink(std::string path, output_owners owners)
      : path_(std::move(path)), owners_(std::move(owners)) {
    if (auto error = open(file_); !error.empty())
      throw std::runtime_error("cannot open [log] file: " + error);
  }
  ~log_file_sink() override {
    if (file_) std::fclose(file_);
  }

  // "" = reopened; else the reason, and the old file stays in use.
  std::string reopen() {
    std::FILE* fresh = nullptr;
    if (auto error = open(fresh); !error.empty()) return error;
    std::lock_guard lock(mutex_);
    if (file_) std::fclose(file_);
    file_ = fresh;
    return {};
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t formatted;
    formatter_->format(msg, formatted);
    if (file_) std::fwrite(formatted.data(), 1, formatted.size(), file_);
  }
  void flush_() override {
    if (file_) std::fflush(file_);
  }

 private:
  std::string open(std::FILE*& out) const {
    auto opened = open_output_file(path_, owners_);
    if (!opened) return opened.error;
    out = ::fdopen(opened.fd, "a");
    if (out == nullptr) {
      ::close(opened.fd);
      return path_ + ": cannot make a stream of it";
    }
    return {};
  }

  std::string path_;
  output_owners owners_;
  std::FILE* file_ = nullptr;
};

}  // namespace tlsbridge::proxy
