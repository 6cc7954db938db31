// Reading audit_summary::to_json() back in the renderers: a missing or mistyped member reads as
// empty, zero or "-", so a renderer never throws on a summary it did not make itself.
#pragma once

#include <cstdint>
#include <string_view>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

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

}  // namespace tlsbridge::report
