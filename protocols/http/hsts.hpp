// `[listener.http] hsts`: Strict-Transport-Security (RFC 6797 §6.1) added to a backend's final
// response head that carries none. The head is relayed raw, so the field is inserted as one more
// line just before the empty line that ends it, in the head's own line ending; framing
// (Content-Length, chunked) is untouched. A head with the field already (the backend's own policy
// wins) or an empty `value` comes back unchanged. The proxy's own answers (400/404/408/431/501/
// 502/504, limits' 429) do not carry it: they are not the site's content.
#pragma once

#include <string>
#include <string_view>

#include "protocols/http/http_message_parser.hpp"

namespace tlsbridge::protocols::http {

std::string with_hsts(std::string_view raw_head, const message_head& head, std::string_view value);

}  // namespace tlsbridge::protocols::http
