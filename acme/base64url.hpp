// RFC 4648 §5 base64url without padding, as JOSE (RFC 7515 §2) and ACME use it.
#pragma once

#include <string>
#include <string_view>

namespace tlsbridge::acme {

std::string base64url(std::string_view bytes);

}  // namespace tlsbridge::acme
