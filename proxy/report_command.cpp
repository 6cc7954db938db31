#include "proxy/report_command.hpp"

#include <unistd.h>
#include <zlib.h>

#include <boost/json/serialize.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "config/value_parsers.hpp"
#include "proxy/audit_log.hpp"
#include "proxy/cli_tools.hpp"
#include "report/audit_summary.hpp"
#include "report/record_scanner.hpp"
#include "report/report_render.hpp"

namespace tlsbridge::proxy {

namespace {

namespace po = boost::program_options;
namespace json = boost::json;

constexpr const char* report_usage =
    "usage: tlsbridge report [--since DURATION] [--format text|json|html] FILE...\n"
    "  FILE: an audit log, plain or gzip-compressed; - for standard input\n"
    "  DURATION: 90m, 24h, 7d ... (records older than now minus DURATION are left out)\n";

// A line longer than this is not one of ours (an audit record is a few KiB): skipped, counted.
constexpr std::size_t max_line = 1 << 20;
constexpr std::size_t read_chunk = 1 << 18;

// "7d" (a week's report) on top of the config's durations ("90m", "24h").
std::optional<std::chrono::milliseconds> parse_since(std::string_view text) {
  if (text.size() > 1 && text.back() == 'd') {
    std::uint64_t days = 0;
    for (char c : text.substr(0, text.size() - 1)) {
      if (c < '0' || c > '9' || days > 100000) return std::nullopt;
      days = days * 10 + static_cast<unsigned>(c - '0');
    }
    return std::chrono::hours(24 * days);
  }
  return config::parse_duration(text);
}

// One line at a time into the summary: the scanner reads the fields without building a
// document, and reuses its parser and fields for every line. A line whose `ts` (the first
// member, fixed width) is before --since is skipped unparsed.
class line_feeder {
 public:
  explicit line_feeder(report::audit_summary& summary) : summary_(summary) {}

  void feed(std::string_view line) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos) return;
    constexpr std::string_view ts_prefix = R"({"ts":")";
    constexpr std::size_t ts_size = 24;  // 2026-12-02T10:15:04.123Z
    if (line.substr(0, ts_prefix.size()) == ts_prefix && line.size() > ts_prefix.size() + ts_size &&
        summary_.before_since(line.substr(ts_prefix.size(), ts_size))) {
      summary_.add_skipped();
      return;
    }
    if (const auto* fields = scanner_.scan(line))
      summary_.add(*fields);
    else
      summary_.add_unreadable();
  }

 private:
  report::audit_summary& summary_;
  report::record_scanner scanner_;
};

// Reads a file (gzip or plain: zlib's gzread passes plain files through) in large chunks and
// feeds it line by line. "" or the reason it could not be read.
std::string read_file(const std::string& path, line_feeder& feeder) {
  gzFile in = path == "-" ? gzdopen(::dup(0), "rb") : gzopen(path.c_str(), "rb");
  if (!in) return path + ": " + (errno ? std::strerror(errno) : "cannot open");
  gzbuffer(in, read_chunk);
  std::vector<char> buffer(read_chunk);
  std::string carry;  // an incomplete line from the previous chunk
  bool overlong = false;
  std::string error;
  for (;;) {
    const int n = gzread(in, buffer.data(), static_cast<unsigned>(buffer.size()));
    if (n < 0) {
      int code = 0;
      const char* message = gzerror(in, &code);
      error = path + ": " + (code == Z_ERRNO ? std::strerror(errno) : message);
      break;
    }
    if (n == 0) break;
    std::string_view chunk(buffer.data(), static_cast<std::size_t>(n));
    while (!chunk.empty()) {
      const auto nl = chunk.find('\n');
      const auto piece = chunk.substr(0, nl);
      if (nl == std::string_view::npos) {
        if (carry.size() + piece.size() > max_line) overlong = true;
        if (!overlong) carry.append(piece);
        break;
      }
      if (overlong || carry.size() + piece.size() > max_line) {
        feeder.feed("\x01");  // counted as unreadable
      } else if (carry.empty()) {
        feeder.feed(piece);
      } else {
        carry.append(piece);
        feeder.feed(carry);
      }
      carry.clear();
      overlong = false;
      chunk.remove_prefix(nl + 1);
    }
  }
  if (error.empty() && (overlong || !carry.empty())) feeder.feed(overlong ? "\x01" : carry);
  gzclose(in);
  return error;
}

}  // namespace

int report_command(int argc, const char* const* argv, std::ostream& out, std::ostream& err) {
  po::options_description opts("report options");
  opts.add_options()("since", po::value<std::string>(), "only records newer than now - DURATION")(
      "format", po::value<std::string>()->default_value("text"), "text | json | html")(
      "files", po::value<std::vector<std::string>>(), "audit files");
  po::positional_options_description pos;
  pos.add("files", -1);
  po::variables_map vm;
  if (!parse_subcommand(argc, argv, opts, pos, vm, report_usage, err)) return exit_failure;
  const auto format = vm["format"].as<std::string>();
  if (format != "text" && format != "json" && format != "html") {
    err << "tlsbridge report: --format must be text, json or html\n" << report_usage;
    return exit_failure;
  }
  if (!vm.count("files")) {
    err << "tlsbridge report: no audit file given\n" << report_usage;
    return exit_failure;
  }
  std::string since;
  if (vm.count("since")) {
    auto window = parse_since(vm["since"].as<std::string>());
    if (!window) {
      err << "tlsbridge report: --since: not a duration (90m, 24h, 7d)\n" << report_usage;
      return exit_failure;
    }
    since = rfc3339_ms(std::chrono::system_clock::now() - *window);
  }
  report::audit_summary summary(since);
  line_feeder feeder(summary);
  for (const auto& path : vm["files"].as<std::vector<std::string>>()) {
    if (auto error = read_file(path, feeder); !error.empty()) {
      err << "tlsbridge report: " << error << "\n";
      return exit_failure;
    }
  }
  const auto result = summary.to_json();
  if (format == "json")
    out << json::serialize(result) << "\n";
  else if (format == "html")
    out << report::render_html(result);
  else
    out << report::render_text(result);
  return out ? exit_pass : exit_failure;
}

}  // namespace tlsbridge::proxy
