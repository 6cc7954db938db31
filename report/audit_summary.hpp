// The report's aggregator: fed one parsed audit record at a time (docs/audit-records.md), it
// keeps only tallies — per client network (IPv4 /24, IPv6 /64) and per backend address: TLS
// versions, ciphers, outcomes, refusals and the weakest certificate-chain finding; failed front
// handshakes by the highest version the client offered; authentication failures by user and IP;
// ActiveSync devices by type. Every map is a bounded_map, so memory depends on the caps, never
// on the size of the files read. Pure: no I/O, no clock (the `--since` cut-off comes in as a
// timestamp string, which compares like the records' fixed-width RFC 3339 `ts`).
#pragma once

#include <boost/json/object.hpp>
#include <cstdint>
#include <string>
#include <string_view>

#include "report/bounded_map.hpp"
#include "report/record_fields.hpp"

namespace tlsbridge::report {

// The most severe chain finding seen, by the table in audit_summary.cpp.
struct worst_finding {
  int severity = 0;  // 0 = none seen
  std::string kind;
  std::string detail;
  std::uint64_t chains_with_findings = 0;
};

// One client network or one backend.
struct peer_tally {
  std::uint64_t connections = 0;
  bounded_counts tls{8};  // "TLSv1.2" ..., "none"
  bounded_counts ciphers{16};
  bounded_counts outcomes{16};
  bounded_counts refusals{16};          // a refused connection's outcome, or a command's rule
  bounded_counts failed_handshakes{8};  // client networks: by the highest version offered
  bounded_counts verdicts{4};           // backends: the chain's verdict
  worst_finding weakest;
};

struct device_tally {
  std::uint64_t requests = 0;
  std::uint64_t devices = 0;  // distinct device ids (bounded: see summary_limits)
};

// The caps of the aggregator's maps (what does not fit is counted as "other").
struct summary_limits {
  std::size_t networks = 10000;
  std::size_t backends = 1000;
  std::size_t users = 10000;
  std::size_t ips = 10000;
  std::size_t device_types = 200;
  std::size_t device_ids = 100000;  // distinct devices remembered to count them
  std::size_t reasons = 200;
};

class audit_summary {
 public:
  // `since`: records whose `ts` sorts before it are skipped ("" = none).
  explicit audit_summary(std::string since = {}, summary_limits caps = summary_limits{});

  // One record: its fields as a reader found them (record_scanner), or a parsed object. Records
  // of unknown types are counted and ignored.
  void add(const record_fields& record);
  void add(const boost::json::object& record);
  // A line that was not a JSON object.
  void add_unreadable() { ++unreadable_; }
  // A line a reader skipped unparsed because before_since() was true of its `ts`.
  void add_skipped() { ++skipped_; }
  // The whole summary (the --format json output; text and HTML render it).
  boost::json::object to_json() const;

  // True when a record with this `ts` would be skipped by `since` (lets a reader skip a line
  // before parsing it).
  bool before_since(std::string_view ts) const { return !since_.empty() && ts < since_; }

 private:
  void add_conn(const record_fields& r);
  void add_auth_failure(const record_fields& r);
  void add_http_request(const record_fields& r);

  std::string since_;
  summary_limits caps_;
  std::uint64_t records_ = 0, unreadable_ = 0, skipped_ = 0, connections_ = 0;
  std::string first_ts_, last_ts_;
  bounded_counts events_{64};
  bounded_counts schema_versions_{8};
  bounded_counts outcomes_{16};
  bounded_counts front_tls_{8};
  bounded_counts backend_tls_{8};
  bounded_counts refusals_;
  bounded_counts failed_by_version_{8};
  std::uint64_t failed_handshakes_ = 0;
  bounded_map<peer_tally> networks_;
  bounded_map<peer_tally> backends_;
  std::uint64_t auth_failures_ = 0;
  bounded_counts auth_users_;
  bounded_counts auth_ips_;
  std::uint64_t activesync_requests_ = 0;
  bounded_map<device_tally> device_types_;
  bounded_counts device_ids_;  // "type\x1fid" seen, to count distinct devices
  std::string device_key_;     // reused to build those keys
  record_fields scratch_;      // add(object)'s fields, reused
};

// The client network of an endpoint ("192.0.2.7:51234" -> "192.0.2.0/24",
// "[2001:db8::7]:51234" -> "2001:db8::/64"); also a bare address. "unknown" if unreadable.
std::string client_network(std::string_view endpoint);
// The address of an endpoint, without the port ("[2001:db8::7]:1" -> "2001:db8::7").
std::string_view endpoint_host(std::string_view endpoint);
// The rank of a finding in "weakest": higher is worse; 0 for an unknown kind.
int finding_severity(std::string_view kind, std::string_view detail);

}  // namespace tlsbridge::report
