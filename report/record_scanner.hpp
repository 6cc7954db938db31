// Reads the record_fields of one audit line straight from its bytes with Boost.JSON's SAX
// parser (basic_parser): no document is built, strings outside the fields the report reads
// (certificate subjects, fingerprints, replies) are skipped as the parser passes them, and the
// parser and the fields are reused for every line. The audit log's chain objects make up most of
// a `conn` line's bytes, which is why this beats parsing each line into a boost::json::value.
#pragma once

#include <memory>
#include <string_view>

#include "report/record_fields.hpp"

namespace tlsbridge::report {

class record_scanner {
 public:
  record_scanner();
  ~record_scanner();
  record_scanner(const record_scanner&) = delete;
  record_scanner& operator=(const record_scanner&) = delete;

  // The fields of `line`, valid until the next call; nullptr when the line is not one JSON
  // object.
  const record_fields* scan(std::string_view line);

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace tlsbridge::report
