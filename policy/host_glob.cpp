#include "policy/host_glob.hpp"

#include <cstddef>

#include "common/ascii_case.hpp"
#include "config/peer_pattern.hpp"

namespace tlsbridge::policy {
namespace {

std::string_view without_trailing_dot(std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  return name;
}

// '*' = zero or more characters; the classic greedy match with one backtrack point, which is
// enough for '*' alone (linear in practice, at most glob × label steps; labels are <= 63 octets).
bool label_matches(std::string_view glob, std::string_view label) {
  std::size_t g = 0, l = 0;
  std::size_t star = std::string_view::npos, resume = 0;
  while (l < label.size()) {
    if (g < glob.size() && glob[g] == '*') {
      star = g++;
      resume = l;
    } else if (g < glob.size() && ascii::lower(glob[g]) == ascii::lower(label[l])) {
      ++g;
      ++l;
    } else if (star != std::string_view::npos) {
      g = star + 1;
      l = ++resume;
    } else {
      return false;
    }
  }
  while (g < glob.size() && glob[g] == '*') ++g;
  return g == glob.size();
}

}  // namespace

bool host_glob_matches(std::string_view glob, std::string_view host) {
  glob = without_trailing_dot(glob);
  host = without_trailing_dot(host);
  if (glob.empty() || host.empty()) return false;
  if (glob == "*") return true;
  const auto patterns = config::split_labels(glob);
  const auto labels = config::split_labels(host);
  for (const auto label : labels)
    if (label.empty()) return false;
  // A leading "*" label absorbs one or more whole labels; the rest match one label each.
  const bool leading_any = patterns.size() > 1 && patterns.front() == "*";
  const std::size_t fixed = leading_any ? patterns.size() - 1 : patterns.size();
  if (leading_any ? labels.size() <= fixed : labels.size() != fixed) return false;
  const std::size_t offset = labels.size() - fixed;
  for (std::size_t i = 0; i < fixed; ++i) {
    const auto& pattern = patterns[patterns.size() - fixed + i];
    if (pattern.empty() || !label_matches(pattern, labels[offset + i])) return false;
  }
  return true;
}

}  // namespace tlsbridge::policy
