// The report's two human renderings of audit_summary::to_json() (the JSON itself is the
// `--format json` output): plain text for a terminal, and one self-contained HTML page with
// inline SVG bar charts and no external asset, fit to be mailed (README, "Report").
#pragma once

#include <boost/json/object.hpp>
#include <string>

namespace tlsbridge::report {

std::string render_text(const boost::json::object& summary);
std::string render_html(const boost::json::object& summary);

// How many rows of a per-network, per-backend or per-user table the renderings show (the JSON
// has them all, up to the aggregator's caps).
inline constexpr std::size_t rendered_rows = 25;

}  // namespace tlsbridge::report
