// Shared by every fuzz target (tests/fuzz/fuzz_<name>.cpp): FUZZ_CHECK states an invariant and
// aborts when it does not hold. Not assert(): the regression replay (fuzz_regress_<name>, run by
// ctest) is built in Release, where NDEBUG would silence assert and hide a broken invariant.
// fuzz_input hands out the bytes of one input as small numbers and length-prefixed chunks, so a
// target can turn the input into a script (chunk sizes, events, modes).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#define FUZZ_CHECK(cond)                                                                  \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      std::fprintf(stderr, "%s:%d: invariant violated: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                       \
    }                                                                                     \
  } while (0)

namespace tlsbridge::fuzz {

class fuzz_input {
 public:
  fuzz_input(const std::uint8_t* data, std::size_t size)
      : data_(reinterpret_cast<const char*>(data), size) {}

  bool empty() const { return pos_ >= data_.size(); }
  std::size_t remaining() const { return data_.size() - pos_; }
  // The next byte, 0 once the input is used up.
  std::uint8_t byte() { return empty() ? 0 : static_cast<std::uint8_t>(data_[pos_++]); }
  // Up to `n` bytes (fewer at the end of the input).
  std::string_view bytes(std::size_t n) {
    n = std::min(n, remaining());
    std::string_view out = data_.substr(pos_, n);
    pos_ += n;
    return out;
  }
  // A chunk prefixed by one length byte.
  std::string_view chunk() { return bytes(byte()); }
  std::string_view rest() { return bytes(remaining()); }

 private:
  std::string_view data_;
  std::size_t pos_ = 0;
};

}  // namespace tlsbridge::fuzz
