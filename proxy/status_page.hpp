// GET / on the admin endpoint: one self-contained HTML page (inline CSS, JavaScript and SVG; no
// external asset, so it works on a host without internet access and leaks nothing) that draws
// /status.json (proxy/status_json.hpp) and fetches it again every 5 seconds. The data it is
// served with is embedded, so the first view needs no second request; every value is put into
// the page as text (textContent, never markup), and the response forbids everything else
// (status_page_security_policy).
#pragma once

#include <boost/json/object.hpp>
#include <string>

namespace tlsbridge::proxy {

std::string status_page_html(const boost::json::object& status);

// The Content-Security-Policy the page is served with: its own inline script and style, fetches
// to its own origin, nothing else.
inline constexpr const char* status_page_security_policy =
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'";

}  // namespace tlsbridge::proxy
