// proxy/status_board: the status page's per-worker-thread figures — the last refusals of every
// thread merged newest first and bounded, TLS versions of the last hour per leg.
#include "proxy/status_board.hpp"

#include <catch2/catch.hpp>
#include <thread>

#include "proxy/connection_record.hpp"

using namespace tlsbridge;
using namespace std::chrono_literals;
using proxy::connection_record;
using proxy::outcome;
using proxy::status_board;

namespace {

connection_record denied(const std::string& client) {
  connection_record r;
  r.listener = "smtp-in";
  r.client = client;
  r.what = outcome::denied;
  r.refused_by = "allow";
  r.reason = "client address not in allow";
  return r;
}

connection_record tls(const std::string& front, const std::string& back) {
  connection_record r;
  r.listener = "smtp-in";
  r.front.tls = true;
  r.front.version = front;
  auto& b = r.back.emplace();
  b.tls = !back.empty();
  b.version = back;
  return r;
}

}  // namespace

TEST_CASE("status board: refusals of all threads, newest first, the last 50", "[status_board]") {
  status_board board;
  const auto t0 = status_board::clock::now();
  board.record(denied("192.0.2.1:1"), t0);
  std::thread other([&] {
    for (int i = 0; i < 60; ++i)
      board.record(denied("192.0.2.2:" + std::to_string(i)), t0 + 1s + i * 1ms);
  });
  other.join();
  board.record(denied("192.0.2.3:3"), t0 + 2s);

  auto last = board.last_refusals();
  REQUIRE(last.size() == 50);
  CHECK(last[0].client == "192.0.2.3:3");
  CHECK(last[0].reason == "allow");
  CHECK(last[0].listener == "smtp-in");
  CHECK(last[1].client == "192.0.2.2:59");
  // The other thread's ring kept its own last 50 (10..59); the first thread's oldest is older.
  CHECK(last[49].client == "192.0.2.2:11");
  CHECK(board.last_refusals(3).size() == 3);
}

TEST_CASE("status board: TLS versions per leg, for the last hour only", "[status_board]") {
  status_board board;
  const auto now = status_board::clock::now();
  board.record(tls("TLSv1.3", "TLSv1"), now - 2h);  // too old
  board.record(tls("TLSv1.3", "TLSv1"), now - 30min);
  board.record(tls("TLSv1.2", "TLSv1"), now);
  board.record(tls("TLSv1.3", ""), now);  // plaintext back leg
  const auto counts = board.tls_last_hour(now);
  CHECK(counts.front[proxy::tls_version_index("TLSv1.3")] == 2);
  CHECK(counts.front[proxy::tls_version_index("TLSv1.2")] == 1);
  CHECK(counts.back[proxy::tls_version_index("TLSv1")] == 2);
  CHECK(counts.back[proxy::tls_version_index("TLSv1.3")] == 0);
  CHECK(proxy::tls_version_index("SSLv3") == proxy::tls_version_names.size() - 1);
  // An hour later, none of them is left.
  const auto later = board.tls_last_hour(now + 61min);
  CHECK(later.front[proxy::tls_version_index("TLSv1.3")] == 0);
  CHECK(board.last_refusals().empty());
}
