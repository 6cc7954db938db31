// The ACME service: one background thread (not a worker) that keeps every `acme` entry of
// [[certs]] supplied with a certificate from the [acme] CA. Each entry has its own schedule
// (proxy/acme_schedule: renewal and back-off); a due entry runs one whole order through
// acme::obtain() (RFC 8555, tls-alpn-01 answered by certs/acme_challenges on the listeners).
//  * success: the key and chain are installed atomically in state_dir (proxy/acme_state) and
//    `installed` is called — the server posts its one reload (as SIGHUP) to the main thread;
//  * failure: a `warn` line naming the names, the step and the error,
//    tlsbridge_acme_failures_total{name,step}, a retry after the back-off; what was served
//    stays served.
// After every attempt state_dir/status.json says, per entry, what is served and what happened;
// `tlsbridge acme status` prints it. `tlsbridge acme renew` asks for an attempt now through
// state_dir/renew.request, which the thread looks for every second. SIGTERM stops the thread
// promptly: the order in progress returns at its next step ("stopped").
#pragma once

#include <boost/json/array.hpp>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "config/config.hpp"
#include "proxy/acme_schedule.hpp"
#include "proxy/metrics.hpp"

namespace tlsbridge::proxy {

// What status.json, the status page and `acme status` show for one entry.
struct acme_entry_status {
  std::vector<std::string> names;
  std::int64_t not_after = 0;  // Unix time; 0 = nothing served yet
  bool placeholder = true;
  std::int64_t last_attempt = 0;  // 0 = none yet
  std::string result;             // "" (none yet) | "ok" | "failed"
  std::string step, error;        // of the last failure
  std::int64_t next_attempt = 0;
  unsigned failures = 0;  // consecutive
  std::string request;    // the `acme renew` request the last attempt answered ("" = none)
};

boost::json::array acme_status_json(const std::vector<acme_entry_status>& entries);
std::vector<acme_entry_status> acme_status_from_json(const boost::json::value& v);

class acme_service {
 public:
  using installed_fn = std::function<void(const std::vector<std::string>& names)>;
  acme_service(const config::config& cfg, metrics* m, installed_fn installed);
  ~acme_service();  // stops and joins
  acme_service(const acme_service&) = delete;
  acme_service& operator=(const acme_service&) = delete;

  // A reload's new config: entries are matched by their first name (kept ones keep their
  // schedule, new ones are due at once). Returns what the reload line should say, if anything.
  std::string reconfigure(const config::config& cfg);
  std::vector<acme_entry_status> status() const;
  // Asks the thread to stop (SIGTERM) without waiting for it; the destructor joins.
  void stop();

 private:
  struct entry;
  void run(std::stop_token stop);
  void attempt(entry& e, std::stop_token stop);
  void take_requests();
  void write_status();

  mutable std::mutex mutex_;
  std::condition_variable_any wake_;
  config::acme_config acme_;
  std::string user_;
  std::vector<std::shared_ptr<entry>> entries_;
  metrics* metrics_;
  installed_fn installed_;
  std::jthread thread_;  // last: started once everything above exists
};

}  // namespace tlsbridge::proxy
