// The fields of an audit record (docs/audit-records.md) the report reads, flat: what the
// aggregator is fed. A reader fills one and reuses it for every line (clear() keeps the
// strings' and vectors' capacity), so after the first records nothing is allocated per line.
// Two readers fill it: record_scanner straight from a line's bytes (Boost.JSON's SAX parser,
// no document built), and fields_of() from a parsed object.
#pragma once

#include <boost/json/object.hpp>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace tlsbridge::report {

struct finding_fields {
  std::string kind;
  std::string detail;
};

struct leg_fields {
  bool present = false;  // the leg's object (the `backend` is null without a back leg)
  std::string tls;       // "" = null
  std::string cipher;
  std::string addr;
  bool chain = false;  // a chain object was there
  std::string verdict;
  std::vector<finding_fields> findings;  // the first findings_used are this record's
  std::size_t findings_used = 0;

  finding_fields& add_finding() {
    if (findings_used == findings.size()) findings.emplace_back();
    auto& f = findings[findings_used++];
    f.kind.clear();
    f.detail.clear();
    return f;
  }
  void clear() {
    present = chain = false;
    tls.clear();
    cipher.clear();
    addr.clear();
    verdict.clear();
    findings_used = 0;
  }
};

struct record_fields {
  std::string ts;
  std::optional<std::int64_t> v;
  std::string event;
  std::string client;
  std::string outcome;
  std::string user;  // auth.failure
  leg_fields front;
  leg_fields backend;
  std::vector<std::pair<std::string, std::int64_t>> refusals;  // the first refusals_used
  std::size_t refusals_used = 0;
  bool client_hello = false;
  std::string max_version;
  bool activesync = false;
  std::string device_type;
  std::string device_id;

  std::pair<std::string, std::int64_t>& add_refusal() {
    if (refusals_used == refusals.size()) refusals.emplace_back();
    return refusals[refusals_used++];
  }
  void clear() {
    ts.clear();
    v.reset();
    event.clear();
    client.clear();
    outcome.clear();
    user.clear();
    front.clear();
    backend.clear();
    refusals_used = 0;
    client_hello = activesync = false;
    max_version.clear();
    device_type.clear();
    device_id.clear();
  }
};

// The fields of a parsed record (members of the wrong type read as absent).
void fields_of(const boost::json::object& record, record_fields& out);

}  // namespace tlsbridge::report
