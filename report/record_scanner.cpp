#include "report/record_scanner.hpp"

#include <array>
#include <boost/json/basic_parser_impl.hpp>
#include <cstdint>
#include <string>

namespace tlsbridge::report {

namespace {

namespace json = boost::json;
using boost::system::error_code;

// The member names the report reads; every other name is `other` and its value is skipped.
enum class key : std::uint8_t {
  none,
  other,
  element,
  ts,
  v,
  event,
  client,
  outcome,
  user,
  refusals,
  front,
  backend,
  chain,
  findings,
  tls,
  cipher,
  addr,
  verdict,
  kind,
  detail,
  client_hello,
  max_version,
  activesync,
  device_type,
  device_id,
};

struct key_name {
  std::string_view name;
  key id;
};
constexpr key_name key_names[] = {
    {"ts", key::ts},
    {"v", key::v},
    {"event", key::event},
    {"client", key::client},
    {"client_ip", key::client},  // auth.failure and auth.blocked name the address alone
    {"outcome", key::outcome},
    {"user", key::user},
    {"refusals", key::refusals},
    {"front", key::front},
    {"backend", key::backend},
    {"chain", key::chain},
    {"findings", key::findings},
    {"tls", key::tls},
    {"cipher", key::cipher},
    {"addr", key::addr},
    {"verdict", key::verdict},
    {"kind", key::kind},
    {"detail", key::detail},
    {"client_hello", key::client_hello},
    {"max_version", key::max_version},
    {"activesync", key::activesync},
    {"device_type", key::device_type},
    {"device_id", key::device_id},
};

// Names indexed by their length and first letter, so a member name is compared with at most
// the one or two known names that could be it (a linear scan of every name was a sixth of the
// report's time).
struct key_index {
  static constexpr std::size_t max_len = 16;
  std::array<std::array<std::uint8_t, 26>, max_len + 1> first{};  // index + 1 into key_names

  constexpr key_index() {
    for (std::size_t i = 0; i < std::size(key_names); ++i) {
      const auto name = key_names[i].name;
      auto& slot = first[name.size()][static_cast<std::size_t>(name[0] - 'a')];
      if (slot == 0) slot = static_cast<std::uint8_t>(i + 1);
    }
  }
};
constexpr key_index index_of_keys;

key classify(std::string_view name) {
  if (name.empty() || name.size() > key_index::max_len || name[0] < 'a' || name[0] > 'z')
    return key::other;
  const auto slot = index_of_keys.first[name.size()][static_cast<std::size_t>(name[0] - 'a')];
  if (slot == 0) return key::other;
  // Names sharing a length and first letter follow each other in key_names only by chance:
  // look at every name from the first candidate on.
  for (std::size_t i = slot - 1u; i < std::size(key_names); ++i)
    if (key_names[i].name == name) return key_names[i].id;
  return key::other;
}

// Deeper than any record the proxy writes (root, backend, chain, findings, a finding: 5).
constexpr std::size_t max_depth = 8;

class handler {
 public:
  static constexpr std::size_t max_object_size = -1;
  static constexpr std::size_t max_array_size = -1;
  static constexpr std::size_t max_key_size = -1;
  static constexpr std::size_t max_string_size = -1;

  record_fields fields;

  void start() {
    fields.clear();
    depth_ = 0;
    current_ = key::none;
    key_text_.clear();
    text_.clear();
  }

  bool on_document_begin(error_code&) { return true; }
  bool on_document_end(error_code&) { return true; }

  bool on_object_begin(error_code& ec) {
    if (depth_ == 0) {
      if (current_ != key::none) return fail(ec);  // only an object is a record
    } else if (auto* leg = leg_at_depth1()) {
      if (depth_ == 1) leg->present = true;
      if (depth_ == 2 && current_ == key::chain) leg->chain = true;
      if (depth_ == 4 && path(3) == key::chain && path(4) == key::findings &&
          current_ == key::element)
        leg->add_finding();
    } else if (depth_ == 1 && current_ == key::client_hello) {
      fields.client_hello = true;
    } else if (depth_ == 1 && current_ == key::activesync) {
      fields.activesync = true;
    }
    return push(ec, false);
  }
  bool on_object_end(std::size_t, error_code&) { return pop(); }
  bool on_array_begin(error_code& ec) {
    if (depth_ == 0) return fail(ec);
    return push(ec, true);
  }
  bool on_array_end(std::size_t, error_code&) { return pop(); }

  bool on_key_part(json::string_view s, std::size_t, error_code&) {
    key_text_.append(s.data(), s.size());
    return true;
  }
  bool on_key(json::string_view s, std::size_t, error_code&) {
    key_text_.append(s.data(), s.size());
    current_ = classify(key_text_);
    return true;
  }
  bool on_string_part(json::string_view s, std::size_t, error_code&) {
    text_.append(s.data(), s.size());
    return true;
  }
  bool on_string(json::string_view s, std::size_t, error_code& ec) {
    if (std::string* out = string_target()) {
      if (text_.empty()) {
        out->assign(s.data(), s.size());
      } else {
        text_.append(s.data(), s.size());
        out->assign(text_);
      }
    }
    text_.clear();
    return value_done(ec);
  }
  bool on_number_part(json::string_view, error_code&) { return true; }
  bool on_int64(std::int64_t i, json::string_view, error_code& ec) {
    if (depth_ == 1 && current_ == key::v) fields.v = i;
    if (depth_ == 2 && path(2) == key::refusals) {
      auto& r = fields.add_refusal();
      r.first = key_text_;
      r.second = i;
    }
    return value_done(ec);
  }
  bool on_uint64(std::uint64_t, json::string_view, error_code& ec) { return value_done(ec); }
  bool on_double(double, json::string_view, error_code& ec) { return value_done(ec); }
  bool on_bool(bool, error_code& ec) { return value_done(ec); }
  bool on_null(error_code& ec) { return value_done(ec); }
  bool on_comment_part(json::string_view, error_code&) { return true; }
  bool on_comment(json::string_view, error_code&) { return true; }

 private:
  // The key the open container at depth d sits under (depth 1 is the record itself, so path(2)
  // is a member of the record); an array's elements are `element`.
  key path(std::size_t d) const { return d <= depth_ ? under_[d - 1] : key::none; }

  // The leg whose object (or a part of it) is open: front or backend at depth 1.
  leg_fields* leg_at_depth1() {
    const key top = depth_ == 1 ? current_ : path(2);
    if (top == key::front) return &fields.front;
    if (top == key::backend) return &fields.backend;
    return nullptr;
  }

  std::string* string_target() {
    switch (depth_) {
      case 1:
        switch (current_) {
          case key::ts:
            return &fields.ts;
          case key::event:
            return &fields.event;
          case key::client:
            return &fields.client;
          case key::outcome:
            return &fields.outcome;
          case key::user:
            return &fields.user;
          default:
            return nullptr;
        }
      case 2: {
        const key parent = path(2);
        leg_fields* leg = parent == key::front     ? &fields.front
                          : parent == key::backend ? &fields.backend
                                                   : nullptr;
        if (leg) {
          if (current_ == key::tls) return &leg->tls;
          if (current_ == key::cipher) return &leg->cipher;
          if (current_ == key::addr) return &leg->addr;
          return nullptr;
        }
        if (parent == key::client_hello && current_ == key::max_version) return &fields.max_version;
        if (parent == key::activesync) {
          if (current_ == key::device_type) return &fields.device_type;
          if (current_ == key::device_id) return &fields.device_id;
        }
        return nullptr;
      }
      case 3: {
        leg_fields* leg = path(2) == key::front     ? &fields.front
                          : path(2) == key::backend ? &fields.backend
                                                    : nullptr;
        if (leg && path(3) == key::chain && current_ == key::verdict) return &leg->verdict;
        return nullptr;
      }
      case 5: {
        leg_fields* leg = path(2) == key::front     ? &fields.front
                          : path(2) == key::backend ? &fields.backend
                                                    : nullptr;
        if (!leg || path(3) != key::chain || path(4) != key::findings || !leg->findings_used)
          return nullptr;
        auto& f = leg->findings[leg->findings_used - 1];
        if (current_ == key::kind) return &f.kind;
        if (current_ == key::detail) return &f.detail;
        return nullptr;
      }
      default:
        return nullptr;
    }
  }

  // `under_[d]` is the key of the container at depth d + 1. depth_ counts open containers.
  bool push(error_code& ec, bool is_array) {
    if (depth_ == max_depth) return fail(ec);
    array_[depth_] = is_array;
    under_[depth_++] = current_;
    current_ = key::element;  // an array's elements; an object's first key replaces it
    key_text_.clear();
    return true;
  }
  bool pop() {
    current_ = under_[--depth_];
    return scalar_done();
  }
  // After a value: the next key starts afresh; inside an array the next value is an element.
  bool scalar_done() {
    key_text_.clear();
    if (depth_ > 0 && in_array()) current_ = key::element;
    return true;
  }
  // A scalar: a record is an object, never a scalar alone.
  bool value_done(error_code& ec) { return depth_ == 0 ? fail(ec) : scalar_done(); }
  bool in_array() const { return array_[depth_ - 1]; }
  bool fail(error_code& ec) {
    ec = json::error::syntax;
    return false;
  }

  std::array<bool, max_depth> array_{};  // whether the container at each depth is an array
  std::array<key, max_depth> under_{};
  std::size_t depth_ = 0;
  key current_ = key::none;
  std::string key_text_;
  std::string text_;
};

}  // namespace

struct record_scanner::impl {
  // The proxy writes valid UTF-8 (proxy/audit_log.cpp sanitises every string), so the parser
  // need not check it again; the strings the report keeps are only compared and re-serialised.
  static json::parse_options options() {
    json::parse_options o;
    o.allow_invalid_utf8 = true;
    return o;
  }
  json::basic_parser<handler> parser{options()};
};

record_scanner::record_scanner() : impl_(std::make_unique<impl>()) {}
record_scanner::~record_scanner() = default;

const record_fields* record_scanner::scan(std::string_view line) {
  auto& p = impl_->parser;
  p.reset();
  p.handler().start();
  error_code ec;
  const std::size_t used = p.write_some(false, line.data(), line.size(), ec);
  if (ec || used != line.size() || !p.done()) return nullptr;
  return &p.handler().fields;
}

}  // namespace tlsbridge::report
