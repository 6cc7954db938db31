// Fuzz target for config/config_loader (load_config_from_string): any text either loads into a
// config that meets its own validation promises or is refused with config_load_error naming at
// least one problem. Any other exception escaping the loader is a crash: at start-up and on reload
// it would take the process down instead of printing file:line:column.

#include <cstdint>
#include <exception>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <typeinfo>

#include "config/config_loader.hpp"
#include "tests/fuzz/fuzz_check.hpp"

namespace config = tlsbridge::config;

namespace {

// The config's directory, where relative paths resolve. It holds (empty) cert.pem, key.pem and
// ca.pem so that configs naming them can load all the way: the loader checks files exist, not
// their contents (certs::check_own_certificates does that).
const std::filesystem::path& config_file() {
  static const std::filesystem::path file = [] {
    const auto dir = std::filesystem::temp_directory_path() / "tlsbridge-fuzz-config";
    std::filesystem::create_directories(dir);
    for (const char* name : {"cert.pem", "key.pem", "ca.pem"}) std::ofstream(dir / name).flush();
    return dir / "tlsbridge.toml";
  }();
  return file;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    auto cfg = config::load_config_from_string(text, config_file());
    FUZZ_CHECK(cfg != nullptr);
    FUZZ_CHECK(cfg->find_profile("modern") != nullptr);
    FUZZ_CHECK(cfg->find_profile("legacy") != nullptr);
    std::set<std::string> names;
    for (const auto& l : cfg->listeners) {
      FUZZ_CHECK(names.insert(l.name).second);  // listener names are unique
      FUZZ_CHECK(cfg->find_profile(l.tls_profile) != nullptr);
      FUZZ_CHECK(!l.backend.addresses.empty());
    }
    for (const auto& [name, p] : cfg->tls_profiles) FUZZ_CHECK(p.min_version <= p.max_version);
  } catch (const config::config_load_error& e) {
    FUZZ_CHECK(!e.errors().empty());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "load_config_from_string threw %s: %s\n", typeid(e).name(), e.what());
    std::abort();
  } catch (...) {
    std::fprintf(stderr, "load_config_from_string threw a non-std exception\n");
    std::abort();
  }
  return 0;
}
