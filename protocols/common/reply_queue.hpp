// The order of replies in the command/reply mail protocols (SMTP, IMAP, POP3), sans I/O: every
// command the client sends leaves one entry, either relayed (the backend's reply will answer it;
// the machine keeps its own `Relayed` payload there) or local (the proxy's own reply, sent once
// every earlier relayed command has its reply) — RFC 2920 for SMTP pipelining, RFC 2449 for POP3,
// tagged IMAP commands (RFC 9051 §5.5: the proxy's replies keep the client's order). A local reply
// that accepts STARTTLS/STLS starts the front handshake once it is sent, and nothing after it is
// sent before the handshake. The queue also ends the session (`close_with`: reply, outcome, reason,
// close, once) and remembers a SIGTERM drain the machine finishes at its next safe point.
#pragma once

#include <cstddef>
#include <deque>
#include <string>
#include <utility>

#include "protocols/common/session_machine.hpp"

namespace tlsbridge::protocols {

template <class Relayed>
class reply_queue {
 public:
  struct entry {
    bool local = false;
    std::string reply;      // local: the proxy's reply, on the wire
    bool starttls = false;  // local: accepts STARTTLS/STLS; the front handshake follows it
    Relayed relayed{};      // relayed: what the machine keeps about the command
  };
  using iterator = typename std::deque<entry>::iterator;

  // A relayed command: the backend's reply answers it.
  void expect(Relayed relayed) { entries_.push_back(entry{false, {}, false, std::move(relayed)}); }

  // The proxy answers a command itself, in its turn.
  void answer(std::string reply, step_list& out, bool starttls = false) {
    entries_.push_back(entry{true, std::move(reply), starttls, Relayed{}});
    flush(out);
  }

  // Sends the local replies now at the front; a STARTTLS acceptance is the last one sent before
  // the front handshake (RFC 3207 §4.2, RFC 2595 §4).
  void flush(step_list& out) {
    while (!closed_ && !entries_.empty() && entries_.front().local) {
      entry e = std::move(entries_.front());
      entries_.pop_front();
      out.send_client(std::move(e.reply));
      if (e.starttls) {
        out.start_front_tls();
        return;
      }
    }
  }

  // True when the next reply to come is the backend's (a relayed command is at the front).
  bool backend_turn() const { return !entries_.empty() && !entries_.front().local; }
  bool empty() const { return entries_.empty(); }
  std::size_t size() const { return entries_.size(); }
  entry& front() { return entries_.front(); }
  entry take_front() {
    entry e = std::move(entries_.front());
    entries_.pop_front();
    return e;
  }
  iterator begin() { return entries_.begin(); }
  iterator end() { return entries_.end(); }
  typename std::deque<entry>::const_iterator begin() const { return entries_.begin(); }
  typename std::deque<entry>::const_iterator end() const { return entries_.end(); }
  entry take(iterator it) {
    entry e = std::move(*it);
    entries_.erase(it);
    return e;
  }

  // Ends the session once: `reply` (if any) to the client, the outcome and reason for the audit
  // record (empty: keep what is there), then close. False when it had ended already.
  bool close_with(std::string reply, std::string outcome, std::string reason, session_facts& facts,
                  step_list& out) {
    if (closed_) return false;
    closed_ = true;
    if (!reply.empty()) out.send_client(std::move(reply));
    if (!outcome.empty()) facts.outcome = std::move(outcome);
    if (!reason.empty()) facts.reason = std::move(reason);
    out.close();
    return true;
  }
  bool closed() const { return closed_; }

  // SIGTERM drain: the machine ends the session at its next safe point.
  void start_drain() { draining_ = true; }
  bool draining() const { return draining_; }

 private:
  std::deque<entry> entries_;
  bool closed_ = false;
  bool draining_ = false;
};

}  // namespace tlsbridge::protocols
