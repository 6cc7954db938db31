#include "config/redis_url.hpp"

#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include "common/ascii_case.hpp"

namespace tlsbridge::config {

namespace {

redis_url_result failed(std::string why) {
  return {std::nullopt, std::move(why)};
}

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

}  // namespace

std::string redis_url::to_string() const {
  std::string text = "redis://";
  text += host.find(':') != std::string::npos ? "[" + host + "]" : host;
  text += ":" + std::to_string(port);
  if (database != 0) text += "/" + std::to_string(database);
  return text;
}

redis_url_result parse_redis_url(std::string_view text) {
  auto parsed = boost::urls::parse_uri(text);
  if (!parsed) return failed("is not a URL, expected \"redis://host:port\"");
  const boost::urls::url_view& u = *parsed;
  // RFC 3986 §3.1: schemes are case-insensitive.
  if (ascii::iequals(u.scheme(), "rediss"))
    return failed("rediss:// (TLS to Redis) is not supported; use redis:// on a trusted network");
  if (!ascii::iequals(u.scheme(), "redis"))
    return failed("must start with redis://, e.g. \"redis://127.0.0.1:6379\"");
  if (!u.has_authority() || u.encoded_host().empty()) return failed("names no host");
  if (u.host_type() == boost::urls::host_type::ipvfuture) return failed("names no usable host");
  if (u.has_query() || u.has_fragment()) return failed("must not have a query or fragment");

  redis_url out;
  out.host = u.host_address();
  if (u.has_port()) {
    const std::string_view port = u.port();
    if (!all_digits(port) || port.size() > 5 || std::stoul(std::string(port)) == 0 ||
        std::stoul(std::string(port)) > 65535)
      return failed("has a bad port, expected 1 to 65535");
    out.port = static_cast<std::uint16_t>(std::stoul(std::string(port)));
  }
  if (u.has_userinfo()) {
    out.user = u.user();
    if (u.has_password()) out.password = u.password();
    // "redis://user@host": a user without a password cannot log in (AUTH needs both).
    if (out.password.empty()) return failed("has a user but no password, expected user:password@");
  }
  std::string_view path = u.encoded_path();
  if (!path.empty() && path != "/") {
    path.remove_prefix(1);
    if (!all_digits(path) || path.size() > 5)
      return failed("has a bad database number, expected /0, /1, ...");
    out.database = static_cast<unsigned>(std::stoul(std::string(path)));
  }
  return {std::move(out), {}};
}

}  // namespace tlsbridge::config
