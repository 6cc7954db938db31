// RFC 4648 base64 decoding, for what the proxy reads out of credentials it relays: HTTP Basic and
// NTLM blobs (protocols/http) and SASL PLAIN messages (sasl_plain.hpp). Never for what it relays.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace tlsbridge::protocols {

// Standard or URL-safe alphabet, padding optional; nullopt on any other byte or a lone 6-bit
// group.
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace tlsbridge::protocols
