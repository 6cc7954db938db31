// reply_queue (protocols/common): local replies wait for every earlier relayed one (RFC 2920
// order), a STARTTLS acceptance is the last write before the handshake, close_with ends once.
#include "protocols/common/reply_queue.hpp"

#include <catch2/catch.hpp>
#include <string>

using tlsbridge::protocols::reply_queue;
using tlsbridge::protocols::session_facts;
using tlsbridge::protocols::step;
using tlsbridge::protocols::step_list;

TEST_CASE("reply_queue: a local reply waits for the relayed ones before it", "[common]") {
  reply_queue<std::string> q;
  step_list out;
  q.expect("MAIL");
  q.answer("502 no\r\n", out);
  CHECK(out.empty());  // the backend's reply to MAIL comes first
  CHECK(q.backend_turn());
  CHECK(q.take_front().relayed == "MAIL");
  q.flush(out);
  REQUIRE(out.steps().size() == 1);
  CHECK(out.steps()[0].data == "502 no\r\n");
  CHECK(q.empty());
}

TEST_CASE("reply_queue: a flush stops at a STARTTLS acceptance", "[common]") {
  reply_queue<int> q;
  step_list out;
  q.expect(1);
  q.answer("220 go\r\n", out, /*starttls=*/true);
  q.answer("500 later\r\n", out);
  CHECK(out.empty());
  q.take_front();
  q.flush(out);
  REQUIRE(out.steps().size() == 2);
  CHECK(out.steps()[0].data == "220 go\r\n");
  CHECK(out.steps()[1].what == step::kind::start_front_tls);
  CHECK(q.size() == 1);  // not before the handshake: the machine flushes again after it
}

TEST_CASE("reply_queue: close_with ends once and keeps facts it is not given", "[common]") {
  reply_queue<int> q;
  session_facts facts;
  facts.reason = "earlier";
  step_list out;
  CHECK(q.close_with("421 bye\r\n", "timeout", {}, facts, out));
  CHECK_FALSE(q.close_with("421 again\r\n", "ok", "x", facts, out));
  CHECK(q.closed());
  CHECK(facts.outcome == "timeout");
  CHECK(facts.reason == "earlier");
  REQUIRE(out.steps().size() == 2);
  CHECK(out.steps()[0].data == "421 bye\r\n");
  CHECK(out.steps()[1].what == step::kind::close);
  step_list after;
  q.answer("250 late\r\n", after);  // a closed session sends nothing more
  CHECK(after.empty());
}

TEST_CASE("reply_queue: a close without a reply sends none", "[common]") {
  reply_queue<int> q;
  session_facts facts;
  step_list out;
  q.close_with({}, "client_closed", {}, facts, out);
  REQUIRE(out.steps().size() == 1);
  CHECK(out.steps()[0].what == step::kind::close);
}
