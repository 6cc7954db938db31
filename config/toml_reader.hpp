// Internal to the config loader: typed, position-aware reading of toml++ tables. A table_reader
// hands out the keys the loader asks for and reports every other key as unknown; an error_sink
// collects all errors (so one run shows every mistake) and remembers where each dotted key was
// written, so that checks made after parsing (duplicates, references) can still point at a line.
#pragma once

#include <toml++/toml.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "config/config_loader.hpp"
#include "config/value_parsers.hpp"

namespace tlsbridge::config::detail {

inline std::string type_name(toml::node_type type) {
  switch (type) {
    case toml::node_type::table:
      return "table";
    case toml::node_type::array:
      return "array";
    case toml::node_type::string:
      return "string";
    case toml::node_type::integer:
      return "integer";
    case toml::node_type::floating_point:
      return "float";
    case toml::node_type::boolean:
      return "boolean";
    case toml::node_type::date:
      return "date";
    case toml::node_type::time:
      return "time";
    case toml::node_type::date_time:
      return "date-time";
    case toml::node_type::none:
      break;
  }
  return "nothing";
}

inline std::string in_quotes(std::string_view s) {
  return "\"" + std::string(s) + "\"";
}

class error_sink {
 public:
  explicit error_sink(std::string file) : file_(std::move(file)) {}

  void add(const toml::source_position& at, std::string key, std::string message) {
    errors_.push_back({file_, static_cast<int>(at.line), static_cast<int>(at.column),
                       std::move(key), std::move(message)});
  }
  void add_unpositioned(std::string key, std::string message) {
    errors_.push_back({file_, 0, 0, std::move(key), std::move(message)});
  }

  void remember(const std::string& key, const toml::source_position& at) {
    if (at.line != 0) positions_.emplace(key, at);
  }

  // Where `key` was written; for a key left at its default, where its nearest parent was written.
  std::optional<toml::source_position> position_of(std::string key) const {
    while (true) {
      if (auto it = positions_.find(key); it != positions_.end()) return it->second;
      const auto cut = key.find_last_of(".[");
      if (cut == std::string::npos || cut == 0) return std::nullopt;
      key.resize(cut);
    }
  }

  void add_at_key(const std::string& key, std::string message) {
    add_near(key, key, std::move(message));
  }

  // An error about `key`, placed where `where` was written (e.g. a missing key at its table).
  void add_near(const std::string& where, std::string key, std::string message) {
    if (auto at = position_of(where))
      add(*at, std::move(key), std::move(message));
    else
      add_unpositioned(std::move(key), std::move(message));
  }

  bool empty() const { return errors_.empty(); }
  const std::map<std::string, toml::source_position>& positions() const { return positions_; }

  // In file order, which is how a reader fixes them; unpositioned (whole-file) errors first.
  std::vector<config_error> take_sorted() {
    std::stable_sort(errors_.begin(), errors_.end(),
                     [](const config_error& a, const config_error& b) {
                       return std::pair(a.line, a.column) < std::pair(b.line, b.column);
                     });
    return std::move(errors_);
  }

 private:
  std::string file_;
  std::vector<config_error> errors_;
  std::map<std::string, toml::source_position> positions_;
};

// Edit distance, only to suggest "address" for "adress" in an unknown-key message.
inline std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

class table_reader {
 public:
  table_reader(const toml::table& table, std::string path, error_sink& sink)
      : table_(table), path_(std::move(path)), sink_(sink) {
    if (!path_.empty()) sink_.remember(path_, table.source().begin);
  }

  const std::string& path() const { return path_; }
  std::string path_of(std::string_view key) const {
    return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
  }
  error_sink& sink() { return sink_; }

  // Marks `key` as known; the node if it is present.
  const toml::node* get(std::string_view key) {
    known_.emplace(key);
    const toml::node* node = table_.get(key);
    if (node) sink_.remember(path_of(key), node->source().begin);
    return node;
  }

  void type_error(std::string_view key, const toml::node& node, std::string_view expected) {
    type_error_at(path_of(key), node, expected);
  }
  void type_error_at(const std::string& key, const toml::node& node, std::string_view expected) {
    sink_.add(node.source().begin, key,
              "expected " + std::string(expected) + ", got " + type_name(node.type()));
  }
  void error(std::string_view key, const toml::node& node, std::string message) {
    sink_.add(node.source().begin, path_of(key), std::move(message));
  }
  void missing(std::string_view key) {
    known_.emplace(key);
    sink_.add_near(path_, path_of(key), "required key is missing");
  }

  // Each read_* leaves `out` untouched and returns false if the key is absent or invalid.
  bool read(std::string_view key, std::string& out) {
    const toml::node* node = get(key);
    if (!node) return false;
    if (const auto* s = node->as_string()) {
      out = s->get();
      return true;
    }
    type_error(key, *node, "string");
    return false;
  }

  bool read(std::string_view key, bool& out) {
    const toml::node* node = get(key);
    if (!node) return false;
    if (const auto* b = node->as_boolean()) {
      out = b->get();
      return true;
    }
    type_error(key, *node, "boolean");
    return false;
  }

  template <class Int>
  bool read_integer(std::string_view key, std::int64_t min, std::int64_t max, Int& out) {
    const toml::node* node = get(key);
    if (!node) return false;
    const auto* i = node->as_integer();
    if (!i) {
      type_error(key, *node, "integer");
      return false;
    }
    if (i->get() < min || i->get() > max) {
      error(key, *node,
            "must be between " + std::to_string(min) + " and " + std::to_string(max) + ", got " +
                std::to_string(i->get()));
      return false;
    }
    out = static_cast<Int>(i->get());
    return true;
  }

  bool read_duration(std::string_view key, duration& out) {
    std::string text;
    if (!read_string_as(key, "duration string such as \"10s\"", text)) return false;
    if (auto d = parse_duration(text)) {
      out = *d;
      return true;
    }
    error(key, *table_.get(key),
          "invalid duration " + in_quotes(text) +
              ": expected a number and a unit (ms, s, m, h, d), e.g. \"500ms\", \"5m\"");
    return false;
  }

  // names: a range of pair<string_view, E>; the error lists every allowed name.
  template <class Names, class E>
  bool read_enum(std::string_view key, const Names& names, E& out) {
    std::string text;
    if (!read_string_as(key, "string", text)) return false;
    for (const auto& [name, value] : names) {
      if (name == text) {
        out = value;
        return true;
      }
    }
    std::string allowed;
    for (const auto& entry : names)
      allowed += (allowed.empty() ? "" : " | ") + in_quotes(entry.first);
    error(key, *table_.get(key),
          "invalid value " + in_quotes(text) + ", expected one of " + allowed);
    return false;
  }

  // An array of strings; each element's position is remembered as "key[i]" for later checks.
  // allow_single: a lone string stands for a one-element array.
  bool read_strings(std::string_view key, std::vector<std::string>& out,
                    bool allow_single = false) {
    const toml::node* node = get(key);
    if (!node) return false;
    if (allow_single && node->is_string()) {
      out = {node->as_string()->get()};
      sink_.remember(path_of(key) + "[0]", node->source().begin);
      return true;
    }
    const auto* array = node->as_array();
    if (!array) {
      type_error(key, *node, allow_single ? "string or array of strings" : "array of strings");
      return false;
    }
    std::vector<std::string> values;
    bool ok = true;
    for (std::size_t i = 0; i < array->size(); ++i) {
      const toml::node& element = *array->get(i);
      const std::string element_key = path_of(key) + "[" + std::to_string(i) + "]";
      sink_.remember(element_key, element.source().begin);
      if (const auto* s = element.as_string()) {
        values.push_back(s->get());
      } else {
        type_error_at(element_key, element, "string");
        ok = false;
      }
    }
    if (ok) out = std::move(values);
    return ok;
  }

  // A file name; relative ones resolve against `base` (the config file's directory).
  bool read_path(std::string_view key, const std::filesystem::path& base,
                 std::filesystem::path& out) {
    std::string text;
    if (!read(key, text)) return false;
    out = text.empty() ? std::filesystem::path{} : (base / text).lexically_normal();
    return true;
  }

  const toml::table* read_table(std::string_view key) {
    const toml::node* node = get(key);
    if (!node) return nullptr;
    if (const auto* t = node->as_table()) return t;
    type_error(key, *node, "table");
    return nullptr;
  }

  // [[key]]: the tables of an array of tables, with their dotted paths ("listener[0]").
  std::vector<std::pair<const toml::table*, std::string>> read_table_array(std::string_view key) {
    std::vector<std::pair<const toml::table*, std::string>> out;
    const toml::node* node = get(key);
    if (!node) return out;
    const auto* array = node->as_array();
    if (!array) {
      type_error(key, *node, "array of tables ([[" + std::string(key) + "]])");
      return out;
    }
    for (std::size_t i = 0; i < array->size(); ++i) {
      const toml::node& element = *array->get(i);
      const std::string element_key = path_of(key) + "[" + std::to_string(i) + "]";
      if (const auto* t = element.as_table())
        out.emplace_back(t, element_key);
      else
        type_error_at(element_key, element, "table");
    }
    return out;
  }

  // Every key nobody asked for is a typo or a misplaced option: name it, and the likely intent.
  void report_unknown_keys() {
    for (const auto& [key, node] : table_) {
      if (known_.count(std::string(key.str()))) continue;
      std::string message = "unknown key";
      for (const std::string& candidate : known_) {
        if (edit_distance(key.str(), candidate) <= 2) {
          message += " (did you mean " + in_quotes(candidate) + "?)";
          break;
        }
      }
      sink_.add(key.source().begin, path_of(key.str()), message);
    }
  }

 private:
  bool read_string_as(std::string_view key, std::string_view expected, std::string& out) {
    const toml::node* node = get(key);
    if (!node) return false;
    if (const auto* s = node->as_string()) {
      out = s->get();
      return true;
    }
    type_error(key, *node, expected);
    return false;
  }

  const toml::table& table_;
  std::string path_;
  error_sink& sink_;
  std::set<std::string, std::less<>> known_;
};

}  // namespace tlsbridge::config::detail
