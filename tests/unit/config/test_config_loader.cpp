// Loader tests: real files in a scratch directory, so relative paths and "file not found" behave
// as in production. Bad configs assert the exact "file:line:column: key" of each error.
#include <catch2/catch.hpp>
#include <sstream>

#include "config/config_loader.hpp"
#include "tests/unit/config/temp_config_dir.hpp"

using namespace tlsbridge::config;
using tlsbridge::config::test::temp_config_dir;

namespace {

// A scratch dir with the certificate files every listener needs (contents are not checked here).
struct lab {
  temp_config_dir dir;
  lab() {
    dir.write("cert.pem", "dummy\n");
    dir.write("key.pem", "dummy\n");
  }
  std::vector<config_error> errors_of(std::string_view text) const {
    const auto file = dir.write("tlsbridge.toml", text);
    try {
      load_config(file);
    } catch (const config_load_error& e) {
      return e.errors();
    }
    return {};
  }
  std::string file() const { return (dir.path() / "tlsbridge.toml").string(); }
};

// "FILE:LINE:COL: KEY", the column taken from where `needle` sits on that line of `text`.
std::string position(const lab& l, std::string_view text, int line, std::string_view needle,
                     std::string_view key) {
  std::istringstream in{std::string(text)};
  std::string current;
  for (int i = 0; i < line; ++i) std::getline(in, current);
  const auto column = current.find(needle);
  REQUIRE(column != std::string::npos);
  return l.file() + ":" + std::to_string(line) + ":" + std::to_string(column + 1) + ": " +
         std::string(key);
}

// The one error whose key is `key`; fails the test if there is not exactly one.
config_error error_for(const std::vector<config_error>& errors, std::string_view key) {
  std::vector<config_error> found;
  for (const auto& e : errors)
    if (e.key == key) found.push_back(e);
  INFO("errors:\n" << config_load_error(errors).what());
  REQUIRE(found.size() == 1);
  return found.front();
}

constexpr std::string_view minimal = R"([[certs]]
cert = "cert.pem"
key = "key.pem"

[[listener]]
name = "smtp-in"
listen = "127.0.0.1:2525"
[listener.backend]
address = "127.0.0.1:25"
)";

}  // namespace

TEST_CASE("a minimal config gets the documented defaults", "[config][loader]") {
  lab l;
  const auto cfg = load_config(l.dir.write("tlsbridge.toml", minimal));
  const auto base = l.dir.path().lexically_normal();
  CHECK(cfg->source == base / "tlsbridge.toml");
  CHECK(cfg->server.threads == 0);
  CHECK(cfg->server.user.empty());
  CHECK(cfg->server.shutdown_grace == std::chrono::seconds(30));
  CHECK(cfg->server.hostname == "localhost");
  CHECK(cfg->server.watch_certs);
  CHECK(cfg->server.pid_file.empty());
  CHECK(cfg->log.level == "info");
  CHECK(cfg->log.file.empty());
  CHECK(cfg->audit.path == (base / "audit.jsonl").string());
  CHECK(cfg->audit.envelope);
  CHECK(cfg->admin.listen == "127.0.0.1:9900");

  REQUIRE(cfg->tls_profiles.size() == 2);
  const tls_profile* modern = cfg->find_profile("modern");
  REQUIRE(modern);
  CHECK(modern->min_version == tls1_2);
  CHECK(modern->max_version == tls1_3);
  CHECK(modern->ciphers == "ECDHE+AESGCM:ECDHE+CHACHA20");
  CHECK(modern->ciphersuites ==
        "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256");
  CHECK(modern->groups == "X25519:P-256:P-384");
  const tls_profile* legacy = cfg->find_profile("legacy");
  REQUIRE(legacy);
  CHECK(legacy->min_version == tls1_0);
  CHECK(legacy->max_version == tls1_2);
  CHECK(legacy->ciphers == "DEFAULT:@SECLEVEL=0");
  CHECK(cfg->find_profile("nope") == nullptr);

  REQUIRE(cfg->certs.size() == 1);
  CHECK(cfg->certs[0].cert == base / "cert.pem");
  CHECK(cfg->certs[0].key == base / "key.pem");
  CHECK(cfg->certs[0].names.empty());

  const policy_config& p = cfg->policy;
  CHECK(p.weak_signatures == std::vector<std::string>{"md2", "md4", "md5", "sha1"});
  CHECK(p.min_rsa_bits == 2048);
  CHECK_FALSE(p.check_anchor_signature);
  CHECK_FALSE(p.allow_expired_own_cert);
  CHECK(p.on_weak_signature == policy_action::refuse);
  CHECK(p.on_weak_key == policy_action::refuse);
  CHECK(p.on_expired == policy_action::refuse);
  CHECK(p.on_untrusted == policy_action::log);
  CHECK(p.on_name_mismatch == policy_action::log);
  CHECK(p.rules.empty());

  REQUIRE(cfg->listeners.size() == 1);
  const listener_config& ls = cfg->listeners[0];
  CHECK(ls.name == "smtp-in");
  CHECK(ls.protocol == protocol::smtp);
  CHECK(ls.listen.to_string() == "127.0.0.1:2525");
  CHECK(ls.tls == front_tls::starttls);
  CHECK(ls.tls_profile == "modern");
  CHECK(ls.require_tls);
  CHECK(ls.smtp_bare_lf == bare_lf_mode::reject);
  CHECK(ls.client_certs == client_cert_mode::none);
  CHECK(ls.client_ca.empty());
  CHECK(ls.allow == std::vector<std::string>{"0.0.0.0/0", "::/0"});
  CHECK_FALSE(ls.proxy_protocol);
  CHECK(ls.trusted_proxies.empty());
  CHECK(ls.max_connections == 10000);
  CHECK(ls.max_connections_per_ip == 100);
  CHECK(ls.session_tickets == 1);
  CHECK(ls.timeouts.handshake == std::chrono::seconds(15));
  CHECK(ls.timeouts.idle == std::chrono::minutes(5));
  CHECK(ls.timeouts.connect == std::chrono::seconds(10));
  CHECK(ls.timeouts.request_head == std::chrono::seconds(30));  // SECURITY.md, "The shield"
  REQUIRE(ls.backend.addresses.size() == 1);
  CHECK(ls.backend.addresses[0].to_string() == "127.0.0.1:25");
  CHECK(ls.backend.tls == back_tls::none);
  CHECK(ls.backend.tls_profile == "legacy");
  CHECK(ls.backend.verify == verify_mode::none);
  CHECK(ls.backend.require_tls);
  CHECK(ls.backend.resume_sessions);
  CHECK(ls.http.request_timeout == std::chrono::minutes(65));
  CHECK(ls.http.allow_paths.size() == 8);
  CHECK(ls.http.forwarded_headers);
}

TEST_CASE("the full example config parses with every value", "[config][loader]") {
  lab l;
  l.dir.write("certs/mail.pem", "dummy\n");
  l.dir.write("certs/mail.key", "dummy\n");
  l.dir.write("ca/backend.pem", "dummy\n");
  const auto cfg = load_config(l.dir.write("tlsbridge.toml", R"(
[server]
threads = 4
user = "tlsbridge"
shutdown_grace = "500ms"
hostname = "mail.contoso.com"
pid_file = "run/tlsbridge.pid"

[log]
level = "debug"
file = "logs/tlsbridge.log"

[audit]
path = "syslog"
envelope = false

[admin]
listen = ""

[tls.profiles.modern]
min_version = "TLS1.3"

[tls.profiles.strict]
min_version = "TLS1.3"
max_version = "TLS1.3"
groups = "X25519"

[[certs]]
cert = "certs/mail.pem"
key = "certs/mail.key"
names = ["mail.contoso.com", "*.contoso.com"]

[policy]
weak_signatures = ["md5", "sha1", "sha224"]
min_rsa_bits = 3072
check_anchor_signature = true
allow_expired_own_cert = true
on_weak_signature = "log"
on_weak_key = "ignore"
on_expired = "log"
on_untrusted = "refuse"
on_name_mismatch = "ignore"

[[policy.rule]]
listener = "smtp-out"
peer = "10.0.0.0/8"
on_weak_signature = "log"

[[policy.rule]]
peer = "*.partner.example"
on_expired = "ignore"

[[listener]]
name = "smtp-out"
protocol = "smtp"
listen = "[::]:25"
tls = "starttls"
tls_profile = "strict"
require_tls = false
smtp_bare_lf = "normalize"
client_certs = "optional"
client_ca = "ca/backend.pem"
allow = ["10.0.0.0/8", "2001:db8::/32", "192.0.2.7"]
proxy_protocol = true
trusted_proxies = ["127.0.0.1"]
max_connections = 50
max_connections_per_ip = 5
session_tickets = 0
timeouts = { handshake = "5s", idle = "1h", connect = "2s" }

[listener.backend]
address = ["10.0.0.5:25", "[2001:db8::5]:25", "mx.contoso.com:2525"]
tls = "implicit"
tls_profile = "modern"
verify = "pin"
pin_sha256 = ["AB0123456789abcdef0123456789abcdef0123456789abcdef0123456789ABCD"]
server_name = "mx.contoso.com"
require_tls = false
resume_sessions = false

[[listener]]
name = "owa"
protocol = "https"
listen = "0.0.0.0:443"

[listener.timeouts]
idle = "10m"
request_head = "12s"

[listener.backend]
address = "10.0.0.6:443"
tls = "implicit"
verify = "ca"
ca_file = "ca/backend.pem"

[listener.http]
allow_paths = ["/owa"]
request_timeout = "1h"
forwarded_headers = false
)"));
  const auto base = l.dir.path().lexically_normal();
  CHECK(cfg->server.threads == 4);
  CHECK(cfg->server.user == "tlsbridge");
  CHECK(cfg->server.shutdown_grace == std::chrono::milliseconds(500));
  CHECK(cfg->server.hostname == "mail.contoso.com");
  CHECK(cfg->server.pid_file == base / "run/tlsbridge.pid");
  CHECK(cfg->log.level == "debug");
  CHECK(cfg->log.file == base / "logs/tlsbridge.log");
  CHECK(cfg->audit.path == "syslog");
  CHECK_FALSE(cfg->audit.envelope);
  CHECK(cfg->admin.listen.empty());

  // Overriding one key of a built-in profile keeps the rest of it.
  CHECK(cfg->find_profile("modern")->min_version == tls1_3);
  CHECK(cfg->find_profile("modern")->ciphers == "ECDHE+AESGCM:ECDHE+CHACHA20");
  REQUIRE(cfg->find_profile("strict"));
  CHECK(cfg->find_profile("strict")->groups == "X25519");
  CHECK(cfg->find_profile("strict")->name == "strict");

  CHECK(cfg->certs[0].names == std::vector<std::string>{"mail.contoso.com", "*.contoso.com"});
  CHECK(cfg->policy.weak_signatures == std::vector<std::string>{"md5", "sha1", "sha224"});
  CHECK(cfg->policy.min_rsa_bits == 3072);
  CHECK(cfg->policy.check_anchor_signature);
  CHECK(cfg->policy.allow_expired_own_cert);
  CHECK(cfg->policy.on_weak_key == policy_action::ignore);
  CHECK(cfg->policy.on_untrusted == policy_action::refuse);
  REQUIRE(cfg->policy.rules.size() == 2);
  CHECK(cfg->policy.rules[0].listener == "smtp-out");
  CHECK(cfg->policy.rules[0].peer == "10.0.0.0/8");
  CHECK(cfg->policy.rules[0].actions.on_weak_signature == policy_action::log);
  CHECK_FALSE(cfg->policy.rules[0].actions.on_expired);
  CHECK_FALSE(cfg->policy.rules[1].listener);
  CHECK(cfg->policy.rules[1].actions.on_expired == policy_action::ignore);

  REQUIRE(cfg->listeners.size() == 2);
  const listener_config& smtp = cfg->listeners[0];
  CHECK(smtp.listen.to_string() == "[::]:25");
  CHECK(smtp.tls_profile == "strict");
  CHECK_FALSE(smtp.require_tls);
  CHECK(smtp.smtp_bare_lf == bare_lf_mode::normalize);
  CHECK(smtp.client_certs == client_cert_mode::optional);
  CHECK(smtp.client_ca == base / "ca/backend.pem");
  CHECK(smtp.allow.size() == 3);
  CHECK(smtp.proxy_protocol);
  CHECK(smtp.max_connections == 50);
  CHECK(smtp.session_tickets == 0);
  CHECK(smtp.max_connections_per_ip == 5);
  CHECK(smtp.timeouts.handshake == std::chrono::seconds(5));
  CHECK(smtp.timeouts.idle == std::chrono::hours(1));
  CHECK(smtp.timeouts.connect == std::chrono::seconds(2));
  REQUIRE(smtp.backend.addresses.size() == 3);
  CHECK(smtp.backend.addresses[1].host == "2001:db8::5");
  CHECK(smtp.backend.addresses[2].to_string() == "mx.contoso.com:2525");
  CHECK(smtp.backend.tls == back_tls::implicit);
  CHECK(smtp.backend.verify == verify_mode::pin);
  CHECK(smtp.backend.pin_sha256[0] ==
        "ab0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd");
  CHECK(smtp.backend.server_name == "mx.contoso.com");
  CHECK_FALSE(smtp.backend.require_tls);
  CHECK_FALSE(smtp.backend.resume_sessions);

  const listener_config& owa = cfg->listeners[1];
  CHECK(owa.protocol == protocol::https);
  CHECK(owa.tls == front_tls::implicit);                 // the default for https
  CHECK(owa.timeouts.idle == std::chrono::minutes(10));  // [listener.timeouts] sub-table
  CHECK(owa.timeouts.handshake == std::chrono::seconds(15));
  CHECK(owa.timeouts.request_head == std::chrono::seconds(12));
  CHECK(owa.backend.ca_file == base / "ca/backend.pem");
  CHECK(owa.http.allow_paths == std::vector<std::string>{"/owa"});
  CHECK(owa.http.request_timeout == std::chrono::hours(1));
  CHECK_FALSE(owa.http.forwarded_headers);
}

TEST_CASE("conf/tlsbridge.toml loads once the lab files exist", "[config][loader]") {
  // The sample points at ../lab/, which the lab script creates; recreate that layout around a copy.
  temp_config_dir dir;
  const auto conf = dir.path() / "conf" / "tlsbridge.toml";
  std::filesystem::create_directories(conf.parent_path());
  std::filesystem::copy_file(std::filesystem::path(TLSBRIDGE_SOURCE_DIR) / "conf/tlsbridge.toml",
                             conf);
  dir.write("lab/certs/server.chain.pem", "dummy\n");
  dir.write("lab/certs/server.key", "dummy\n");

  std::shared_ptr<const config> cfg;
  try {
    cfg = load_config(conf);
  } catch (const config_load_error& e) {
    FAIL(e.what());
  }
  const auto lab_dir = dir.path().lexically_normal() / "lab";
  CHECK(cfg->certs.at(0).cert == lab_dir / "certs/server.chain.pem");
  CHECK(cfg->audit.path == (lab_dir / "audit.jsonl").string());
  REQUIRE(cfg->listeners.size() == 3);
  CHECK(cfg->listeners[0].name == "smtp-in");
  CHECK(cfg->listeners[0].listen.to_string() == "127.0.0.1:2525");
  CHECK(cfg->listeners[0].backend.tls == back_tls::starttls);
  CHECK(cfg->listeners[0].backend.tls_profile == "legacy");
  CHECK(cfg->listeners[1].name == "smtps-in");
  CHECK(cfg->listeners[1].tls == front_tls::implicit);
  CHECK(cfg->listeners[1].backend.addresses.at(0).to_string() == "127.0.0.1:10025");
  CHECK(cfg->listeners[2].protocol == protocol::tls);
  CHECK(cfg->listeners[2].backend.tls == back_tls::none);
}

TEST_CASE("unknown key names its dotted path and a suggestion", "[config][loader]") {
  lab l;
  constexpr std::string_view text = R"([[certs]]
cert = "cert.pem"
key = "key.pem"
[[listener]]
name = "a"
listen = "127.0.0.1:2525"
[listener.backend]
address = "127.0.0.1:25"
[[listener]]
name = "b"
listen = "127.0.0.1:2526"
[listener.backend]
address = "127.0.0.1:25"
adress = "127.0.0.1:26"
)";
  const auto errors = l.errors_of(text);
  REQUIRE(errors.size() == 1);
  const auto e = error_for(errors, "listener[1].backend.adress");
  CHECK(e.to_string() == position(l, text, 14, "adress", "listener[1].backend.adress") +
                             ": unknown key (did you mean \"address\"?)");
}

TEST_CASE("wrong type says what was expected and what was found", "[config][loader]") {
  lab l;
  const std::string text = "[server]\nthreads = \"4\"\n" + std::string(minimal);
  const auto e = error_for(l.errors_of(text), "server.threads");
  CHECK(e.to_string() ==
        position(l, text, 2, "\"4\"", "server.threads") + ": expected integer, got string");
}

TEST_CASE("bad duration in an inline timeouts table", "[config][loader]") {
  lab l;
  const std::string text = std::string(minimal) +
                           "[[listener]]\nname = \"b\"\nlisten = \"127.0.0.1:2526\"\n"
                           "timeouts = { handshake = \"10x\", idle = \"5m\" }\n"
                           "[listener.backend]\naddress = \"127.0.0.1:25\"\n";
  const auto e = error_for(l.errors_of(text), "listener[1].timeouts.handshake");
  CHECK_THAT(e.to_string(),
             Catch::StartsWith(position(l, text, 13, "\"10x\"", "listener[1].timeouts.handshake") +
                               ": invalid duration \"10x\""));
}

TEST_CASE("timeouts.request_head must be a positive duration", "[config][loader]") {
  lab l;
  for (const char* value : {"\"0s\"", "\"soon\""}) {
    INFO(value);
    const std::string text = std::string(minimal) +
                             "[[listener]]\nname = \"b\"\nlisten = \"127.0.0.1:2526\"\n"
                             "timeouts = { request_head = " +
                             value +
                             " }\n"
                             "[listener.backend]\naddress = \"127.0.0.1:25\"\n";
    const auto e = error_for(l.errors_of(text), "listener[1].timeouts.request_head");
    CHECK_THAT(e.to_string(), Catch::StartsWith(position(l, text, 13, value,
                                                         "listener[1].timeouts.request_head")));
  }
}

TEST_CASE("duplicate listener name points at both", "[config][loader]") {
  lab l;
  const std::string text = std::string(minimal) +
                           "[[listener]]\nname = \"smtp-in\"\nlisten = \"127.0.0.1:2526\"\n"
                           "[listener.backend]\naddress = \"127.0.0.1:25\"\n";
  const auto e = error_for(l.errors_of(text), "listener[1].name");
  CHECK(e.to_string() ==
        position(l, text, 11, "\"smtp-in\"", "listener[1].name") +
            ": duplicate listener name \"smtp-in\", first used by listener[0] (line 6)");
}

TEST_CASE("duplicate listen endpoint, including behind a wildcard", "[config][loader]") {
  lab l;
  const std::string text = std::string(minimal) +
                           "[[listener]]\nname = \"other\"\nlisten = \"0.0.0.0:2525\"\n"
                           "[listener.backend]\naddress = \"127.0.0.1:25\"\n";
  const auto e = error_for(l.errors_of(text), "listener[1].listen");
  CHECK(e.to_string() == position(l, text, 12, "\"0.0.0.0:2525\"", "listener[1].listen") +
                             ": duplicate listener: \"other\" on 0.0.0.0:2525 collides with "
                             "\"smtp-in\" on 127.0.0.1:2525 (line 7)");
}

// Dual stack: IPv6 listeners are bound IPV6_V6ONLY, so the two wildcards of one port are two
// sockets; each family's wildcard still collides with its own addresses, and copies collide.
TEST_CASE("0.0.0.0:P and [::]:P may both listen; copies and same-family wildcards may not",
          "[config][loader]") {
  lab l;
  const auto two = [](std::string_view a, std::string_view b) {
    return std::string("[[certs]]\ncert = \"cert.pem\"\nkey = \"key.pem\"\n") +
           "[[listener]]\nname = \"a\"\nlisten = \"" + std::string(a) +
           "\"\n[listener.backend]\naddress = \"127.0.0.1:25\"\n" +
           "[[listener]]\nname = \"b\"\nlisten = \"" + std::string(b) +
           "\"\n[listener.backend]\naddress = \"127.0.0.1:25\"\n";
  };
  for (const auto& [a, b] : {std::pair{"0.0.0.0:2525", "[::]:2525"},
                             {"[::]:2525", "0.0.0.0:2525"},
                             {"127.0.0.1:2525", "[::1]:2525"},
                             {"0.0.0.0:2525", "[::1]:2525"}}) {
    INFO(a << " + " << b);
    CHECK(l.errors_of(two(a, b)).empty());
  }
  for (const auto& [a, b] : {std::pair{"0.0.0.0:2525", "0.0.0.0:2525"},
                             {"[::]:2525", "[::]:2525"},
                             {"[::]:2525", "[::1]:2525"},
                             {"[::1]:2525", "[::]:2525"},
                             {"127.0.0.1:2525", "0.0.0.0:2525"}}) {
    INFO(a << " + " << b);
    const auto text = two(a, b);
    const auto e = error_for(l.errors_of(text), "listener[1].listen");
    CHECK_THAT(e.message, Catch::StartsWith("duplicate listener: \"b\""));
  }
}

TEST_CASE("a listen address with port 0 is refused, the admin endpoint's too", "[config][loader]") {
  lab l;
  std::string text(minimal);
  text.replace(text.find("127.0.0.1:2525"), 14, "127.0.0.1:0");
  CHECK(error_for(l.errors_of(text), "listener[0].listen").to_string() ==
        position(l, text, 7, "\"127.0.0.1:0\"", "listener[0].listen") +
            ": invalid listen address \"127.0.0.1:0\", expected IP:port (port 1-65535) such as "
            "\"0.0.0.0:25\" or \"[::]:25\"");
  const std::string admin = "[admin]\nlisten = \"[::1]:0\"\n" + std::string(minimal);
  CHECK(error_for(l.errors_of(admin), "admin.listen").line == 2);
}

// Checks made after loading (OpenSSL, the file system) place their errors with error_at_key.
TEST_CASE("error_at_key places a key where it was written, else at its table", "[config][loader]") {
  lab l;
  const std::string text =
      "[audit]\nenvelope = false\n[tls.profiles.weird]\nciphers = \"X\"\n" + std::string(minimal);
  const auto cfg = load_config(l.dir.write("tlsbridge.toml", text));
  CHECK(error_at_key(*cfg, "tls.profiles.weird.ciphers", "bad").to_string() ==
        position(l, text, 4, "\"X\"", "tls.profiles.weird.ciphers") + ": bad");
  CHECK(error_at_key(*cfg, "audit.path", "bad").line == 1);  // default path: at [audit]
  CHECK(error_at_key(*cfg, "log.file", "bad").to_string() == l.file() + ": log.file: bad");
}

TEST_CASE("starttls is refused on https", "[config][loader]") {
  lab l;
  constexpr std::string_view text = R"([[certs]]
cert = "cert.pem"
key = "key.pem"
[[listener]]
name = "web"
protocol = "https"
listen = "127.0.0.1:8443"
tls = "starttls"
[listener.backend]
address = "127.0.0.1:80"
)";
  const auto e = error_for(l.errors_of(text), "listener[0].tls");
  CHECK(e.to_string() == position(l, text, 8, "\"starttls\"", "listener[0].tls") +
                             ": tls = \"starttls\" is not possible with protocol = \"https\" (use "
                             "\"implicit\")");
}

TEST_CASE("missing certificate file names the absolute path", "[config][loader]") {
  lab l;
  constexpr std::string_view text = R"([[certs]]
cert = "missing.pem"
key = "key.pem"
[[listener]]
name = "a"
listen = "127.0.0.1:2525"
[listener.backend]
address = "127.0.0.1:25"
)";
  const auto errors = l.errors_of(text);
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].to_string() ==
        position(l, text, 2, "\"missing.pem\"", "certs[0].cert") +
            ": file not found: " + (l.dir.path().lexically_normal() / "missing.pem").string());
}

TEST_CASE("unknown TLS profile lists the defined ones", "[config][loader]") {
  lab l;
  const std::string text = std::string(minimal) + "tls_profile = \"nope\"\n";
  const auto e = error_for(l.errors_of(text), "listener[0].backend.tls_profile");
  CHECK(e.to_string() == position(l, text, 10, "\"nope\"", "listener[0].backend.tls_profile") +
                             ": unknown TLS profile \"nope\" (defined: \"legacy\", \"modern\")");
}

TEST_CASE("TOML syntax errors carry toml++'s position", "[config][loader]") {
  lab l;
  const auto errors = l.errors_of("[server]\nthreads = 4\n[log\n");
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].line == 3);
  CHECK_THAT(errors[0].to_string(), Catch::StartsWith(l.file() + ":3:"));
}

TEST_CASE("every error is collected, in file order, one per line of what()", "[config][loader]") {
  lab l;
  constexpr std::string_view text = R"([server]
threads = 2000
hostname = 5
[log]
level = "verbose"
[policy]
weak_signatures = ["md5", "sha256"]
on_expired = "deny"
[[policy.rule]]
listener = "nobody"
peer = "10.0.0.0/40"
[tls.profiles.modern]
min_version = "TLS1.3"
max_version = "TLS1.2"
[[certs]]
cert = "cert.pem"
key = "key.pem"
[[listener]]
name = "a"
protocol = "ftp"
listen = "localhost:25"
allow = ["10.0.0.0/8", "nonsense"]
proxy_protocol = true
max_connections = 0
[listener.backend]
address = []
tls = "starttls"
verify = "pin"
pin_sha256 = ["abc"]
ca_file = "nowhere.pem"
)";
  const auto errors = l.errors_of(text);
  const std::pair<const char*, int> expected[] = {
      {"server.threads", 2},
      {"server.hostname", 3},
      {"log.level", 5},
      {"policy.weak_signatures[1]", 7},
      {"policy.on_expired", 8},
      {"policy.rule[0].listener", 10},
      {"policy.rule[0].peer", 11},
      {"tls.profiles.modern.min_version", 13},
      {"listener[0].protocol", 20},
      {"listener[0].listen", 21},
      {"listener[0].allow[1]", 22},
      {"listener[0].proxy_protocol", 23},
      {"listener[0].max_connections", 24},
      {"listener[0].backend.address", 26},
      {"listener[0].backend.pin_sha256[0]", 29},
      {"listener[0].backend.ca_file", 30},
  };
  INFO(config_load_error(errors).what());
  REQUIRE(errors.size() == std::size(expected));
  for (std::size_t i = 0; i < errors.size(); ++i) {
    CHECK(errors[i].key == expected[i].first);
    CHECK(errors[i].line == expected[i].second);
  }
  CHECK_THAT(error_for(errors, "log.level").message,
             Catch::Contains("\"trace\" | \"debug\" | \"info\" | \"warn\" | \"error\""));
  CHECK_THAT(error_for(errors, "server.threads").message, Catch::Contains("between 0 and 1024"));
  const std::string what = config_load_error(errors).what();
  CHECK(std::count(what.begin(), what.end(), '\n') == static_cast<long>(errors.size()) - 1);
}

TEST_CASE("structural requirements: listeners, certs, backend, required keys", "[config][loader]") {
  lab l;
  SECTION("no listener at all") {
    const auto errors = l.errors_of("[server]\nthreads = 1\n");
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].to_string() == l.file() + ": listener: at least one [[listener]] is required");
  }
  SECTION("a TLS listener without [[certs]]") {
    const auto errors = l.errors_of(
        "[[listener]]\nname = \"t\"\nprotocol = \"tls\"\nlisten = \"127.0.0.1:1\"\n"
        "[listener.backend]\naddress = \"127.0.0.1:2\"\n");
    CHECK(error_for(errors, "listener[0].tls").line == 1);  // defaulted: at the [[listener]]
  }
  SECTION("a plaintext listener needs no certs") {
    CHECK(l.errors_of("[[listener]]\nname = \"p\"\nlisten = \"127.0.0.1:1\"\ntls = \"none\"\n"
                      "[listener.backend]\naddress = \"127.0.0.1:2\"\n")
              .empty());
  }
  SECTION("missing keys are reported at their table") {
    const auto errors = l.errors_of("[[certs]]\ncert = \"cert.pem\"\n[[listener]]\nname = \"x\"\n");
    CHECK(error_for(errors, "certs[0].key").line == 1);
    CHECK(error_for(errors, "listener[0].listen").line == 3);
    CHECK(error_for(errors, "listener[0].backend").line == 3);
  }
  SECTION("wrong shapes of whole sections") {
    const auto errors = l.errors_of("server = 1\nlistener = \"x\"\n");
    CHECK(error_for(errors, "server").message == "expected table, got integer");
    CHECK(error_for(errors, "listener").message ==
          "expected array of tables ([[listener]]), got string");
  }
}

TEST_CASE("load_config on a file that cannot be read", "[config][loader]") {
  temp_config_dir dir;
  const auto missing = dir.path() / "absent.toml";
  try {
    load_config(missing);
    FAIL("no exception");
  } catch (const config_load_error& e) {
    REQUIRE(e.errors().size() == 1);
    CHECK_THAT(e.what(), Catch::StartsWith(missing.string() + ": cannot read file"));
  }
}

TEST_CASE("backend balance and health_check: defaults, values, off and errors",
          "[config][loader]") {
  lab l;
  {
    const auto cfg = load_config(l.dir.write("tlsbridge.toml", minimal));
    const auto& b = cfg->listeners[0].backend;
    CHECK(b.balance == balance_mode::first);
    CHECK(b.health_check.interval.count() == 0);  // off
    CHECK(b.health_path.empty());
  }
  {
    const auto cfg = load_config(l.dir.write(
        "tlsbridge.toml", std::string(minimal) + "balance = \"least_conn\"\n"
                                                 "health_check = { interval = \"2s\", rise = 4 }\n"
                                                 "health_path = \"/owa/healthcheck.htm\"\n"));
    const auto& b = cfg->listeners[0].backend;
    CHECK(b.balance == balance_mode::least_conn);
    CHECK(b.health_check.interval == std::chrono::seconds(2));
    CHECK(b.health_check.timeout == std::chrono::seconds(3));
    CHECK(b.health_check.fall == 3);
    CHECK(b.health_check.rise == 4);
    CHECK(b.health_path == "/owa/healthcheck.htm");
  }
  {
    const auto cfg = load_config(l.dir.write("tlsbridge.toml", std::string(minimal) +
                                                                   "health_check = {}\n"
                                                                   "balance = \"round_robin\"\n"));
    CHECK(cfg->listeners[0].backend.health_check.interval == std::chrono::seconds(10));
    CHECK(cfg->listeners[0].backend.balance == balance_mode::round_robin);
  }
  {
    const auto cfg =
        load_config(l.dir.write("tlsbridge.toml", std::string(minimal) + "health_check = \"\"\n"));
    CHECK(cfg->listeners[0].backend.health_check.interval.count() == 0);
  }
  const auto errors = l.errors_of(std::string(minimal) +
                                  "balance = \"random\"\n"
                                  "health_check = { interval = \"0s\", fall = 0, x = 1 }\n"
                                  "health_path = \"healthz\"\n");
  error_for(errors, "listener[0].backend.balance");
  error_for(errors, "listener[0].backend.health_check.interval");
  error_for(errors, "listener[0].backend.health_check.fall");
  error_for(errors, "listener[0].backend.health_check.x");
  error_for(errors, "listener[0].backend.health_path");
}

TEST_CASE("backend source: \"\", an address, \"client\"; family and syntax errors",
          "[config][loader]") {
  lab l;
  CHECK(load_config(l.dir.write("tlsbridge.toml", minimal))->listeners[0].backend.source.empty());
  for (const char* value : {"client", "10.0.0.2"}) {
    const auto cfg = load_config(
        l.dir.write("tlsbridge.toml", std::string(minimal) + "source = \"" + value + "\"\n"));
    CHECK(cfg->listeners[0].backend.source == value);
    CHECK(cfg->listeners[0].backend.source_is_client() == (std::string(value) == "client"));
  }
  CHECK(error_for(l.errors_of(std::string(minimal) + "source = \"::1\"\n"),
                  "listener[0].backend.source")
            .message ==
        "source \"::1\" is IPv6 but backend address \"127.0.0.1:25\" is IPv4: a "
        "back leg binds to an address of the backend's family");
  for (const char* bad : {"10.0.0.0/8", "proxy.example", "Client"})
    CHECK_THAT(error_for(l.errors_of(std::string(minimal) + "source = \"" + bad + "\"\n"),
                         "listener[0].backend.source")
                   .message,
               Catch::StartsWith("invalid source"));
}
