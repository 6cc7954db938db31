#include "proxy/operational_warnings.hpp"

#include <spdlog/spdlog.h>

#include "proxy/back_leg.hpp"

namespace tlsbridge::proxy {

namespace {

std::string addresses_of(const config::listener_config& listener) {
  std::string out;
  for (const auto& a : listener.backend.addresses) out += (out.empty() ? "" : ", ") + a.to_string();
  return out;
}

std::string held_back_note(std::size_t held_back) {
  if (held_back == 0) return {};
  return " (" + std::to_string(held_back) + " more since the last line)";
}

}  // namespace

void operational_warnings::back_leg_opened(const config::listener_config& listener,
                                           const std::string& reached,
                                           const back_leg_failure* failure) {
  if (!failure || failure->what == outcome::refused_policy) {
    if (auto held_back = backends_.success(listener.name))
      spdlog::info("listener {}: backend reachable again at {}{}", listener.name, reached,
                   held_back_note(*held_back));
    return;
  }
  if (auto held_back = backends_.failure(listener.name, warning_throttle::clock::now()))
    spdlog::warn("listener {}: backend {} unreachable: {}{}", listener.name, addresses_of(listener),
                 failure->reason, held_back_note(*held_back));
}

void operational_warnings::refused_by_policy(const std::string& listener, const std::string& reason,
                                             const std::string& peer) {
  // One key per listener and kind of refusal ("backend chain refused by policy", "client
  // certificate refused by policy", a shield rule): the words before the first ':'.
  const std::string key = listener + "\n" + reason.substr(0, reason.find(':'));
  if (auto held_back = refusals_.failure(key, warning_throttle::clock::now()))
    spdlog::warn("listener {}: refused by policy ({}): {}{}", listener, peer, reason,
                 held_back_note(*held_back));
}

}  // namespace tlsbridge::proxy
