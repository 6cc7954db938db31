// A scratch directory for config tests: created unique under the system temp dir, removed with
// everything in it when the test ends, so tests can write real files next to a config.
#pragma once

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <string_view>

namespace tlsbridge::config::test {

class temp_config_dir {
 public:
  temp_config_dir() {
    static std::atomic<unsigned> counter{0};
    const auto tag = std::to_string(::getpid()) + "-" + std::to_string(counter++) + "-" +
                     std::to_string(std::random_device{}());
    path_ = std::filesystem::temp_directory_path() / ("tlsbridge-config-test-" + tag);
    std::filesystem::create_directories(path_);
  }
  ~temp_config_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  temp_config_dir(const temp_config_dir&) = delete;
  temp_config_dir& operator=(const temp_config_dir&) = delete;

  const std::filesystem::path& path() const { return path_; }

  // Writes `text` to path()/relative (creating directories) and returns the absolute path.
  std::filesystem::path write(const std::filesystem::path& relative, std::string_view text) const {
    const auto file = path_ / relative;
    std::filesystem::create_directories(file.parent_path());
    std::ofstream(file, std::ios::binary) << text;
    return file;
  }

 private:
  std::filesystem::path path_;
};

}  // namespace tlsbridge::config::test
