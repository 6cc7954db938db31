// Prometheus metrics (README), rendered in the text exposition format by the admin endpoint.
// Updates happen at connection boundaries (a session adds its totals when it ends, an HTTPS
// exchange its response's class when its record is written), never per byte, so one mutex is
// enough and the data path stays lock-free. Label values are escaped per the exposition format;
// names are fixed by the code (`tlsbridge_*`, and the conventional `process_*`).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tlsbridge::proxy {

using labels = std::vector<std::pair<std::string, std::string>>;

class metrics {
 public:
  metrics();

  void add(std::string_view name, const labels& l, double value = 1);
  void set(std::string_view name, const labels& l, double value);
  // Drops a gauge's sample (a backend address a reload removed), so it is no longer exposed.
  void remove(std::string_view name, const labels& l);
  // Histogram observation (seconds), fixed buckets from 1 ms to 10 s.
  void observe(std::string_view name, const labels& l, double seconds);

  // The whole registry in Prometheus text format 0.0.4.
  std::string render() const;

 private:
  struct family {
    std::string type;  // counter | gauge | histogram
    std::string help;
    std::map<std::string, double> samples;  // rendered label set -> value
    // histograms: rendered label set -> bucket counts, sum, count
    std::map<std::string, std::vector<std::uint64_t>> buckets;
    std::map<std::string, std::pair<double, std::uint64_t>> sums;
  };
  void declare(const std::string& name, const std::string& type, const std::string& help);

  mutable std::mutex mutex_;
  std::map<std::string, family, std::less<>> families_;
};

}  // namespace tlsbridge::proxy
