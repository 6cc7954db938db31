// Reading audit_summary::to_json() back in the renderers: a missing or mistyped member reads as
// empty, zero or "-", so a renderer never throws on a summary it did not make itself.
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace tlsbridge::report {

inline std::uint64_t count_of(const boost::json::value* v) {
  if (!v) return 0;
  if (v->is_uint64()) return v->get_uint64();
  if (v->is_int64() && v->get_int64() > 0) return static_cast<std::uint64_t>(v->get_int64());
  return 0;
}

inline const boost::json::object& member_object(const boost::json::object& o,
                                                std::string_view key) {
  static const boost::json::object empty;
  auto* v = o.if_contains(key);
  return v && v->is_object() ? v->get_object() : empty;
}

inline std::string_view text_of(const boost::json::value* v) {
  if (v && v->is_string()) return v->get_string();
  return "-";
}

// A tally on one line, "TLSv1.3 812, TLSv1.2 40, other 3": at most `max` keys, each appended
// through `put_key(out, key)` (the HTML rendering escapes them), then `more`; `none` if empty.
template <typename PutKey>
std::string inline_counts(const boost::json::object& counts, std::size_t max, std::string_view more,
                          std::string_view none, PutKey put_key) {
  std::string out;
  std::size_t shown = 0;
  for (const auto& kv : counts) {
    if (shown++ == max) {
      out.append(", ").append(more);
      break;
    }
    if (!out.empty()) out += ", ";
    put_key(out, std::string_view(kv.key()));
    out.append(" ").append(std::to_string(count_of(&kv.value())));
  }
  return out.empty() ? std::string(none) : out;
}

}  // namespace tlsbridge::report
