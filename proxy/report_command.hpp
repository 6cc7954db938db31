// `tlsbridge report [--since DURATION] [--format text|json|html] FILE...`: reads audit files
// (plain or gzip, as logrotate leaves them; "-" is standard input) line by line through zlib,
// reads each line's fields with report::record_scanner (Boost.JSON's SAX parser, reused), feeds
// report::audit_summary, and prints the summary (report/report_render.hpp). Memory depends on
// the aggregator's caps, not on the files. Exit 0, or 1 on a bad command line or an unreadable
// file (nothing is printed then).
#pragma once

#include <iosfwd>

namespace tlsbridge::proxy {

int report_command(int argc, const char* const* argv, std::ostream& out, std::ostream& err);

}  // namespace tlsbridge::proxy
