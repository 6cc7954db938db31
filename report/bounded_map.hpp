// A map from a string key to a tally that never holds more than `cap` keys: once full, every new
// key lands in one `other` entry. The report reads audit files of any size with memory that does
// not grow with them (a scan, a botnet or a fuzzer can bring millions of client addresses, user
// names or device types), and lookups take a string_view so a key already known costs no
// allocation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace tlsbridge::report {

struct string_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};

template <typename T>
class bounded_map {
 public:
  using map_type = std::unordered_map<std::string, T, string_hash, std::equal_to<>>;

  explicit bounded_map(std::size_t cap) : cap_(cap) {}

  // The entry for `key`, made if there is room, else the `other` entry.
  T& operator[](std::string_view key) {
    if (auto it = entries_.find(key); it != entries_.end()) return it->second;
    if (entries_.size() >= cap_) {
      other_used_ = true;
      return other_;
    }
    return entries_.emplace(std::string(key), T{}).first->second;
  }
  const map_type& entries() const { return entries_; }
  // The tally of the keys that found the map full; meaningful only when other_used().
  const T& other() const { return other_; }
  bool other_used() const { return other_used_; }
  std::size_t cap() const { return cap_; }

 private:
  std::size_t cap_;
  map_type entries_;
  T other_{};
  bool other_used_ = false;
};

using bounded_counts = bounded_map<std::uint64_t>;

}  // namespace tlsbridge::report
