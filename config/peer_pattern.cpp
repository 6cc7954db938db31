#include "config/peer_pattern.hpp"

#include <algorithm>
#include <cctype>

#include "config/value_parsers.hpp"

namespace tlsbridge::config {
namespace {

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

bool is_glob_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '*';
}

}  // namespace

std::vector<std::string_view> split_labels(std::string_view name) {
  std::vector<std::string_view> labels;
  for (;;) {
    const auto dot = name.find('.');
    labels.push_back(name.substr(0, dot));
    if (dot == std::string_view::npos) return labels;
    name.remove_prefix(dot + 1);
  }
}

std::optional<std::string> peer_pattern_problem(std::string_view text) {
  if (parse_cidr(text)) return std::nullopt;
  // Something with '/' or ':' can only be meant as an address block.
  if (text.find_first_of("/:") != std::string_view::npos)
    return "not a CIDR or address (\"10.0.0.0/8\", \"::1\")";
  if (text.empty()) return "empty";
  if (!std::all_of(text.begin(), text.end(), is_glob_char))
    return "a host glob has only letters, digits, '-', '.' and '*'";
  if (text.back() == '.') text.remove_suffix(1);  // an absolute name: "mx.example.net."
  if (text.size() > 253) return "longer than a host name can be (253)";
  if (text == "*") return std::nullopt;
  const auto labels = split_labels(text);
  bool address_shape = true, has_digit = false;
  for (const auto label : labels) {
    if (label.empty()) return "empty label";
    if (label.size() > 63) return "label longer than 63";
    const bool glob = label.find('*') != std::string_view::npos;
    if (!glob && (label.front() == '-' || label.back() == '-'))
      return "label \"" + std::string(label) + "\" starts or ends with '-'";
    for (const char c : label) {
      has_digit = has_digit || is_digit(c);
      address_shape = address_shape && (is_digit(c) || c == '*');
    }
  }
  if (address_shape && has_digit)
    return "an IP address cannot hold a glob and must be in range; write a CIDR (\"127.0.0.0/24\")";
  const auto last = labels.back();
  if (std::all_of(last.begin(), last.end(), is_digit))
    return "no host name ends in an all-digit label";
  return std::nullopt;
}

}  // namespace tlsbridge::config
