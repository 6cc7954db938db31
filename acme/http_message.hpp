// The HTTP/1.1 messages the ACME client exchanges, free of I/O: a request's bytes, and the reading
// of a response (status line, the headers ACME uses, a Content-Length, chunked or close-delimited
// body) with a cap on the body.
#pragma once

#include <string>
#include <string_view>

#include "acme/order_machine.hpp"

namespace tlsbridge::acme {

struct parsed_url {
  std::string host;  // without brackets for an IPv6 literal
  std::string port;
  std::string target;  // path and query, at least "/"
};

// https://host[:port]/path; false for anything else.
bool parse_https_url(const std::string& url, parsed_url& out);

std::string request_bytes(const http_request& request, const parsed_url& url);

enum class parse_state { incomplete, complete, error };

// Reads `raw` (everything received so far). `eof`: the peer has closed, so a body without a
// length ends here. `head`: the answer to a HEAD request has no body. On error, `error` says why.
parse_state parse_response(std::string_view raw, bool eof, bool head, size_t max_body,
                           http_response& out, std::string& error);

}  // namespace tlsbridge::acme
