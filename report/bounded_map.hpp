// A map from a string key to a tally that never holds more than `cap` keys: once full, every new
// key lands in one `other` entry. The report reads audit files of any size with memory that does
// not grow with them (a scan, a botnet or a fuzzer can bring millions of client addresses, user
// names or device types), and lookups take a string_view so a key already known costs no
// allocation. A small map (cap <= linear_cap: the TLS versions, ciphers or outcomes of one peer,
// a handful of short keys) is a vector searched in order, which beats hashing every key of every
// record; a large one is a hash table.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace tlsbridge::report {

// Deliberately not noexcept: libstdc++ then keeps each node's hash code (its __cache_default),
// so walking a bucket compares codes instead of hashing every key it passes.
struct string_hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

template <typename T>
class bounded_map {
 public:
  static constexpr std::size_t linear_cap = 16;

  explicit bounded_map(std::size_t cap) : cap_(cap) {}

  // The entry for `key`, made if there is room, else the `other` entry.
  T& operator[](std::string_view key) {
    if (cap_ <= linear_cap) {
      for (auto& [k, v] : small_)
        if (k == key) return v;
      if (small_.size() < cap_) return small_.emplace_back(std::string(key), T{}).second;
    } else {
      if (auto it = large_.find(key); it != large_.end()) return it->second;
      if (large_.size() < cap_) return large_.emplace(std::string(key), T{}).first->second;
    }
    other_used_ = true;
    return other_;
  }
  bool contains(std::string_view key) const {
    if (cap_ > linear_cap) return large_.find(key) != large_.end();
    for (const auto& entry : small_)
      if (entry.first == key) return true;
    return false;
  }
  std::size_t size() const { return cap_ <= linear_cap ? small_.size() : large_.size(); }
  // Calls f(std::string_view key, const T&) for every entry but `other`, in no set order.
  template <typename F>
  void for_each(F&& f) const {
    for (const auto& [k, v] : small_) f(std::string_view(k), v);
    for (const auto& [k, v] : large_) f(std::string_view(k), v);
  }
  // The tally of the keys that found the map full; meaningful only when other_used().
  const T& other() const { return other_; }
  bool other_used() const { return other_used_; }
  std::size_t cap() const { return cap_; }

 private:
  std::size_t cap_;
  std::vector<std::pair<std::string, T>> small_;
  std::unordered_map<std::string, T, string_hash, std::equal_to<>> large_;
  T other_{};
  bool other_used_ = false;
};

using bounded_counts = bounded_map<std::uint64_t>;

}  // namespace tlsbridge::report
