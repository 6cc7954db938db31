// A streaming, Beast-free view of Boost.Beast's sans-I/O HTTP/1.x parser, for a proxy that forwards
// the peer's own bytes instead of re-serialising messages. `put` consumes bytes up to the end of
// the header or of the message and never past either, so the caller knows exactly which raw bytes
// are the head (to edit and forward), which are body (to forward as they are, chunk framing
// included) and where the next message starts. Nothing is buffered here: unconsumed bytes stay
// with the caller. Beast itself is confined to the .cpp (it is heavy to compile).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace tlsbridge::protocols::http {

enum class parse_errc {
  header_too_large = 1,   // the head did not end within the limit (RFC 6585 §5: 431)
  malformed,              // start line, field syntax, line endings, version
  bad_content_length,     // not a number, or several differing values
  bad_transfer_encoding,  // with Content-Length, or chunked not last
  bad_chunk,              // chunk size line or chunk framing
  partial_message,        // EOF inside a message
};

const std::error_category& parse_category();
std::error_code make_error_code(parse_errc e);

struct header_field {
  std::string name;   // as received
  std::string value;  // OWS trimmed
};

// What the parser learnt from a message head.
struct message_head {
  std::string method;     // requests
  std::string target;     // requests, as received
  unsigned status = 0;    // responses
  unsigned version = 11;  // 10 or 11
  std::vector<header_field> fields;
  bool keep_alive = true;
  bool chunked = false;
  std::optional<std::uint64_t> content_length;
  bool upgrade = false;   // Connection: upgrade with an Upgrade field
  bool need_eof = false;  // responses whose body ends with the connection

  // Every value of a field (case-insensitive name), in order.
  std::vector<std::string_view> values(std::string_view name) const;
  // The first value of a field, or nullptr.
  const std::string* find(std::string_view name) const;
};

class message_parser {
 public:
  enum class kind { request, response };
  // skip_body: a response to HEAD (RFC 9110 §9.3.2) has a head only.
  message_parser(kind k, std::size_t header_limit, bool skip_body = false);
  ~message_parser();
  message_parser(message_parser&&) noexcept;
  message_parser& operator=(message_parser&&) noexcept;

  // Consumes bytes up to the end of the header, or body bytes up to the end of the message, and
  // returns how many. Fewer than offered without an error means "need more": the caller keeps
  // the rest and offers it again with what follows.
  std::size_t put(std::string_view data, std::error_code& ec);
  // The peer closed: completes a message delimited by EOF, else partial_message.
  void put_eof(std::error_code& ec);

  bool got_some() const;
  bool header_done() const;
  bool done() const;
  const message_head& head() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace tlsbridge::protocols::http

template <>
struct std::is_error_code_enum<tlsbridge::protocols::http::parse_errc> : std::true_type {};
