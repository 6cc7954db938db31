#include "protocols/common/auth_gate.hpp"

#include "common/ascii_case.hpp"

namespace tlsbridge::protocols {

std::string auth_user_key(std::string_view user) {
  if (auto slash = user.rfind('\\'); slash != std::string_view::npos)
    user.remove_prefix(slash + 1);  // DOMAIN\user
  if (auto at = user.rfind('@'); at != std::string_view::npos) user = user.substr(0, at);  // UPN
  while (!user.empty() && (user.front() == ' ' || user.front() == '\t')) user.remove_prefix(1);
  while (!user.empty() && (user.back() == ' ' || user.back() == '\t')) user.remove_suffix(1);
  std::string key(user.substr(0, 256));
  ascii::lower_in_place(key);
  return key;
}

}  // namespace tlsbridge::protocols
