#include "protocols/http/http_message_parser.hpp"

#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>
#include <variant>

#include "common/ascii_case.hpp"

namespace tlsbridge::protocols::http {

namespace {

namespace bhttp = boost::beast::http;
using boost::beast::string_view;

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "http"; }
  std::string message(int v) const override {
    switch (static_cast<parse_errc>(v)) {
      case parse_errc::header_too_large:
        return "header too large";
      case parse_errc::malformed:
        return "malformed message head";
      case parse_errc::bad_content_length:
        return "bad Content-Length";
      case parse_errc::bad_transfer_encoding:
        return "bad Transfer-Encoding";
      case parse_errc::bad_chunk:
        return "bad chunk framing";
      case parse_errc::partial_message:
        return "connection closed inside a message";
    }
    return "http error";
  }
};

parse_errc map_error(const boost::system::error_code& ec) {
  if (ec == bhttp::error::header_limit) return parse_errc::header_too_large;
  if (ec == bhttp::error::bad_content_length) return parse_errc::bad_content_length;
  if (ec == bhttp::error::bad_transfer_encoding) return parse_errc::bad_transfer_encoding;
  if (ec == bhttp::error::bad_chunk || ec == bhttp::error::bad_chunk_extension)
    return parse_errc::bad_chunk;
  if (ec == bhttp::error::partial_message) return parse_errc::partial_message;
  return parse_errc::malformed;
}

// Records the head; bodies are consumed whole and left to the caller, who forwards raw bytes.
template <bool IsRequest>
class recording_parser final : public bhttp::basic_parser<IsRequest> {
 public:
  explicit recording_parser(message_head& head) : head_(head) {}

 private:
  void on_request_impl(bhttp::verb, string_view method, string_view target, int version,
                       boost::system::error_code&) override {
    head_.method.assign(method.data(), method.size());
    head_.target.assign(target.data(), target.size());
    head_.version = static_cast<unsigned>(version);
  }
  void on_response_impl(int code, string_view, int version, boost::system::error_code&) override {
    head_.status = static_cast<unsigned>(code);
    head_.version = static_cast<unsigned>(version);
  }
  void on_field_impl(bhttp::field, string_view name, string_view value,
                     boost::system::error_code&) override {
    head_.fields.push_back(
        {std::string(name.data(), name.size()), std::string(value.data(), value.size())});
  }
  void on_header_impl(boost::system::error_code&) override {
    head_.keep_alive = this->keep_alive();
    head_.chunked = this->chunked();
    head_.upgrade = this->upgrade();
    head_.need_eof = this->need_eof();
    if (auto cl = this->content_length()) head_.content_length = *cl;
  }
  void on_body_init_impl(const boost::optional<std::uint64_t>&,
                         boost::system::error_code&) override {}
  std::size_t on_body_impl(string_view body, boost::system::error_code&) override {
    return body.size();
  }
  void on_chunk_header_impl(std::uint64_t, string_view, boost::system::error_code&) override {}
  std::size_t on_chunk_body_impl(std::uint64_t, string_view body,
                                 boost::system::error_code&) override {
    return body.size();
  }
  void on_finish_impl(boost::system::error_code&) override {}

  message_head& head_;
};

}  // namespace

const std::error_category& parse_category() {
  static const category c;
  return c;
}

std::error_code make_error_code(parse_errc e) {
  return {static_cast<int>(e), parse_category()};
}

std::vector<std::string_view> message_head::values(std::string_view name) const {
  std::vector<std::string_view> out;
  for (const auto& f : fields)
    if (ascii::iequals(f.name, name)) out.push_back(f.value);
  return out;
}

const std::string* message_head::find(std::string_view name) const {
  for (const auto& f : fields)
    if (ascii::iequals(f.name, name)) return &f.value;
  return nullptr;
}

struct message_parser::impl {
  impl(kind k, std::size_t limit, bool skip_body) : header_limit(limit) {
    if (k == kind::request) {
      parser.template emplace<recording_parser<true>>(head);
    } else {
      parser.template emplace<recording_parser<false>>(head);
    }
    std::visit(
        [&](auto& p) {
          if constexpr (!std::is_same_v<std::decay_t<decltype(p)>, std::monostate>) {
            // Bodies stream through and are never held, so no body limit applies here (an
            // Outlook Anywhere RPC_IN_DATA announces 1 GiB). Beast's header limit is per call;
            // the cumulative 64 KiB bound is kept in put() below.
            p.body_limit(boost::none);
            p.header_limit(static_cast<std::uint32_t>(limit));
            p.eager(false);
            if (skip_body) p.skip(true);
          }
        },
        parser);
  }
  template <typename F>
  decltype(auto) with(F&& f) {
    if (auto* p = std::get_if<recording_parser<true>>(&parser)) return f(*p);
    return f(std::get<recording_parser<false>>(parser));
  }
  template <typename F>
  decltype(auto) with(F&& f) const {
    if (auto* p = std::get_if<recording_parser<true>>(&parser)) return f(*p);
    return f(std::get<recording_parser<false>>(parser));
  }

  message_head head;
  std::variant<std::monostate, recording_parser<true>, recording_parser<false>> parser;
  std::size_t header_limit;
  std::size_t header_bytes = 0;  // consumed so far while the header was not done
};

message_parser::message_parser(kind k, std::size_t header_limit, bool skip_body)
    : impl_(std::make_unique<impl>(k, header_limit, skip_body)) {}
message_parser::~message_parser() = default;
message_parser::message_parser(message_parser&&) noexcept = default;
message_parser& message_parser::operator=(message_parser&&) noexcept = default;

std::size_t message_parser::put(std::string_view data, std::error_code& ec) {
  ec.clear();
  return impl_->with([&](auto& p) -> std::size_t {
    std::size_t used = 0;
    while (!p.is_done() && used < data.size()) {
      const bool header_before = p.is_header_done();
      boost::system::error_code bec;
      std::size_t n = p.put(boost::asio::const_buffer(data.data() + used, data.size() - used), bec);
      used += n;
      if (!header_before) impl_->header_bytes += n;
      if (bec == bhttp::error::need_more) break;
      if (bec) {
        ec = map_error(bec);
        return used;
      }
      if (!header_before && p.is_header_done()) break;  // the caller acts on the head first
      if (n == 0) break;
    }
    // Beast bounds what one call sees; a head that trickles in is bounded here, in total.
    if (!p.is_header_done() && impl_->header_bytes + (data.size() - used) >= impl_->header_limit)
      ec = parse_errc::header_too_large;
    return used;
  });
}

void message_parser::put_eof(std::error_code& ec) {
  ec.clear();
  impl_->with([&](auto& p) {
    if (!p.got_some()) {
      ec = parse_errc::partial_message;
      return;
    }
    boost::system::error_code bec;
    p.put_eof(bec);
    if (bec) ec = map_error(bec);
  });
}

bool message_parser::got_some() const {
  return impl_->with([](const auto& p) { return p.got_some(); });
}
bool message_parser::header_done() const {
  return impl_->with([](const auto& p) { return p.is_header_done(); });
}
bool message_parser::done() const {
  return impl_->with([](const auto& p) { return p.is_done(); });
}
const message_head& message_parser::head() const {
  return impl_->head;
}

}  // namespace tlsbridge::protocols::http
