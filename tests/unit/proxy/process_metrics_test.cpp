// proxy/process_metrics and the metrics' text: process_* from /proc/self, tlsbridge_build_info,
// and numbers written as their shortest text (bucket labels le="0.0025").
#include "proxy/process_metrics.hpp"

#include <catch2/catch.hpp>
#include <string>

using namespace tlsbridge;

TEST_CASE("process metrics: /proc/self/stat fields after the command name", "[process_metrics]") {
  const std::string line =
      "4242 (tls bridge) (x) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 75 0 0 20 0 3 0 123456 "
      "1000000 500 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0";
  auto ticks = proxy::parse_proc_stat(line);
  REQUIRE(ticks);
  CHECK(ticks->utime == 250);
  CHECK(ticks->stime == 75);
  CHECK(ticks->starttime == 123456);
  CHECK_FALSE(proxy::parse_proc_stat("4242 (short) S 1 2"));
  CHECK_FALSE(proxy::parse_proc_stat("no parenthesis"));
}

TEST_CASE("process metrics: read from this process", "[process_metrics]") {
  auto f = proxy::read_process_figures();
  REQUIRE(f);
  CHECK(f->open_fds >= 3);
  CHECK(f->resident_bytes > 1e6);
  CHECK(f->start_time > 1.6e9);
  CHECK(f->max_fds >= f->open_fds);

  proxy::metrics m;
  proxy::refresh_process_metrics(m);
  proxy::record_build_info(m, {"0.1.0", "1a2b3c4d5e6f", "OpenSSL 3.0.17 1 Jul 2025"});
  const std::string text = m.render();
  CHECK(text.find("# TYPE process_cpu_seconds_total counter") != std::string::npos);
  CHECK(text.find("\nprocess_open_fds ") != std::string::npos);
  CHECK(text.find(R"(tlsbridge_build_info{version="0.1.0",commit="1a2b3c4d5e6f",)"
                  R"(openssl="OpenSSL 3.0.17 1 Jul 2025"} 1)") != std::string::npos);
}

TEST_CASE("metrics: bucket labels and values in their shortest form", "[process_metrics]") {
  proxy::metrics m;
  m.observe("tlsbridge_backend_connect_seconds", {{"listener", "a"}}, 0.1);
  m.set("tlsbridge_certificate_not_after_timestamp_seconds", {{"file", "f"}, {"subject", "s"}},
        1798329600);
  const std::string text = m.render();
  CHECK(text.find(R"(tlsbridge_backend_connect_seconds_bucket{listener="a",le="0.0025"} 0)") !=
        std::string::npos);
  CHECK(text.find(R"(le="0.1"} 1)") != std::string::npos);
  CHECK(text.find(R"(le="10"} 1)") != std::string::npos);
  CHECK(text.find(R"(le="+Inf"} 1)") != std::string::npos);
  CHECK(text.find(R"(tlsbridge_backend_connect_seconds_sum{listener="a"} 0.1)") !=
        std::string::npos);
  CHECK(text.find("e-03") == std::string::npos);
  CHECK(text.find(R"(subject="s"} 1798329600)") != std::string::npos);
}
