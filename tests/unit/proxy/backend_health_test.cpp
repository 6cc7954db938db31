// proxy/backend_health's pure parts: the fall/rise tally and the balance order.
#include "proxy/backend_health.hpp"

#include <catch2/catch.hpp>
#include <memory>

#include "proxy/metrics.hpp"

using tlsbridge::config::balance_mode;
using tlsbridge::proxy::backend_order;
using tlsbridge::proxy::health_tally;
using idx = std::vector<std::size_t>;

TEST_CASE("health_tally: fall consecutive failures take it down, rise successes bring it up") {
  health_tally t;
  CHECK_FALSE(t.record(false, 3, 2).has_value());
  CHECK_FALSE(t.record(false, 3, 2).has_value());
  CHECK_FALSE(t.record(true, 3, 2).has_value());  // a success in between starts the count again
  CHECK_FALSE(t.record(false, 3, 2).has_value());
  CHECK_FALSE(t.record(false, 3, 2).has_value());
  CHECK(t.record(false, 3, 2) == false);
  CHECK_FALSE(t.up);
  CHECK_FALSE(t.record(false, 3, 2).has_value());  // still down: no change
  CHECK_FALSE(t.record(true, 3, 2).has_value());
  CHECK_FALSE(t.record(false, 3, 2).has_value());  // a failure in between starts the rise again
  CHECK_FALSE(t.record(true, 3, 2).has_value());
  CHECK(t.record(true, 3, 2) == true);
  CHECK(t.up);
}

TEST_CASE("health_tally: fall = rise = 1 changes at every differing result") {
  health_tally t;
  CHECK(t.record(false, 1, 1) == false);
  CHECK(t.record(true, 1, 1) == true);
  CHECK_FALSE(t.record(true, 1, 1).has_value());
}

TEST_CASE("backend_order: first keeps the configured order of the healthy addresses") {
  CHECK(backend_order(balance_mode::first, {true, true, true}, {0, 0, 0}, 0) == idx{0, 1, 2});
  CHECK(backend_order(balance_mode::first, {false, true, true}, {0, 0, 0}, 0) == idx{1, 2});
}

TEST_CASE("backend_order: all down tries every address in configured order") {
  for (auto mode : {balance_mode::first, balance_mode::round_robin, balance_mode::least_conn})
    CHECK(backend_order(mode, {false, false}, {5, 0}, 1) == idx{0, 1});
}

TEST_CASE("backend_order: round_robin rotates over the healthy addresses only") {
  CHECK(backend_order(balance_mode::round_robin, {true, true}, {0, 0}, 0) == idx{0, 1});
  CHECK(backend_order(balance_mode::round_robin, {true, true}, {0, 0}, 1) == idx{1, 0});
  CHECK(backend_order(balance_mode::round_robin, {true, true}, {0, 0}, 2) == idx{0, 1});
  CHECK(backend_order(balance_mode::round_robin, {true, false, true}, {0, 0, 0}, 1) == idx{2, 0});
}

TEST_CASE("backend_order: least_conn prefers fewer active sessions, ties in order") {
  CHECK(backend_order(balance_mode::least_conn, {true, true, true}, {3, 1, 1}, 0) == idx{1, 2, 0});
  CHECK(backend_order(balance_mode::least_conn, {true, false, true}, {3, 0, 1}, 0) == idx{2, 0});
}

TEST_CASE("backend_health::withdraw drops the gauges a reload's generation no longer has") {
  tlsbridge::proxy::metrics registry;
  tlsbridge::config::listener_config listener;
  listener.name = "smtp-in";
  listener.backend.addresses = {{"10.0.0.5", 25}, {"10.0.0.6", 25}};
  listener.backend.health_check.interval = std::chrono::seconds(1);
  auto old = std::make_shared<tlsbridge::proxy::backend_health>(listener, &registry);
  old->record(1, false, "test");
  old->record(1, false, "test");
  old->record(1, false, "test");  // fall = 3: 10.0.0.6 is down
  CHECK_THAT(registry.render(), Catch::Contains("listener=\"smtp-in\",address=\"10.0.0.6:25\"} 0"));

  listener.backend.addresses = {{"10.0.0.5", 25}};  // the reload removes 10.0.0.6
  tlsbridge::proxy::backend_health next(listener, &registry);
  next.adopt(*old);
  old->retire();
  old->withdraw(&next);
  auto text = registry.render();
  CHECK_THAT(text, Catch::Contains("listener=\"smtp-in\",address=\"10.0.0.5:25\"} 1"));
  CHECK_THAT(text, !Catch::Contains("10.0.0.6"));
  // A session of the old generation that still reports on the removed address brings no gauge back.
  old->record(1, true, "late");
  old->record(1, true, "late");
  CHECK_THAT(registry.render(), !Catch::Contains("10.0.0.6"));

  next.retire();
  next.withdraw(nullptr);  // the listener itself removed
  CHECK_THAT(registry.render(), !Catch::Contains("tlsbridge_backend_up{"));
}
