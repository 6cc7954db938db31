#include "proxy/acme_service.hpp"

#include <spdlog/spdlog.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <utility>

#include "acme/obtain.hpp"
#include "certs/acme_challenges.hpp"
#include "proxy/acme_state.hpp"

namespace tlsbridge::proxy {

namespace json = boost::json;

namespace {

std::int64_t unix_time(acme_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

double jitter() {
  thread_local std::mt19937 gen{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.0, 1.0)(gen);
}

}  // namespace

struct acme_service::entry {
  config::cert_entry cert;
  acme_entry_status st;
  acme_clock::time_point next;
  bool warned_lifetime = false;
  std::string pending_request;  // taken from renew.request, answered by the next attempt
};

json::array acme_status_json(const std::vector<acme_entry_status>& entries) {
  json::array out;
  for (const auto& e : entries) {
    json::array names;
    for (const auto& n : e.names) names.emplace_back(n);
    out.emplace_back(json::object{{"names", std::move(names)},
                                  {"not_after", e.not_after},
                                  {"placeholder", e.placeholder},
                                  {"last_attempt", e.last_attempt},
                                  {"result", e.result},
                                  {"step", e.step},
                                  {"error", e.error},
                                  {"next_attempt", e.next_attempt},
                                  {"failures", e.failures},
                                  {"request", e.request}});
  }
  return out;
}

std::vector<acme_entry_status> acme_status_from_json(const json::value& v) {
  std::vector<acme_entry_status> out;
  const auto* root = v.if_object();
  const auto* list = root ? root->if_contains("entries") : nullptr;
  if (!list || !list->is_array()) return out;
  for (const auto& item : list->get_array()) {
    const auto* o = item.if_object();
    if (!o) continue;
    acme_entry_status e;
    auto int_of = [&](const char* key) -> std::int64_t {
      const auto* f = o->if_contains(key);
      return f && f->is_int64()
                 ? f->get_int64()
                 : (f && f->is_uint64() ? static_cast<std::int64_t>(f->get_uint64()) : 0);
    };
    auto str_of = [&](const char* key) -> std::string {
      const auto* f = o->if_contains(key);
      return f && f->is_string() ? std::string(f->get_string()) : std::string{};
    };
    if (const auto* names = o->if_contains("names"); names && names->is_array())
      for (const auto& n : names->get_array())
        if (n.is_string()) e.names.emplace_back(n.get_string());
    e.not_after = int_of("not_after");
    const auto* ph = o->if_contains("placeholder");
    e.placeholder = ph && ph->is_bool() ? ph->get_bool() : true;
    e.last_attempt = int_of("last_attempt");
    e.result = str_of("result");
    e.step = str_of("step");
    e.error = str_of("error");
    e.next_attempt = int_of("next_attempt");
    e.failures = static_cast<unsigned>(int_of("failures"));
    e.request = str_of("request");
    out.push_back(std::move(e));
  }
  return out;
}

acme_service::acme_service(const config::config& cfg, metrics* m, installed_fn installed)
    : metrics_(m), installed_(std::move(installed)) {
  reconfigure(cfg);
  thread_ = std::jthread([this](std::stop_token stop) { run(stop); });
}

acme_service::~acme_service() {
  stop();
}

void acme_service::stop() {
  thread_.request_stop();
  wake_.notify_all();
}

std::string acme_service::reconfigure(const config::config& cfg) {
  std::lock_guard lock(mutex_);
  std::string note;
  if (cfg.acme) {
    const bool changed = !entries_.empty() && (cfg.acme->directory != acme_.directory ||
                                               cfg.acme->state_dir != acme_.state_dir);
    if (changed) note = "[acme] directory or state_dir changed: takes effect for the next orders";
    acme_ = *cfg.acme;
  }
  user_ = cfg.server.user;
  std::vector<std::shared_ptr<entry>> next;
  const auto now = acme_clock::now();
  for (const auto& c : cfg.certs) {
    if (!c.is_acme()) continue;
    std::shared_ptr<entry> e;
    for (const auto& old : entries_)
      if (old->cert.acme == c.acme) e = old;
    if (!e) {
      e = std::make_shared<entry>();
      e->st.names = c.acme;
      const auto served = read_served_certificate(c.cert, c.key, c.acme);
      if (served) {
        e->st.not_after = unix_time(served->not_after);
        e->st.placeholder = served->placeholder;
      }
      e->next =
          plan_renewal(served ? &*served : nullptr,
                       std::chrono::duration_cast<std::chrono::seconds>(acme_.renew_before), now)
              .when;
      e->st.next_attempt = unix_time(e->next);
    }
    e->cert = c;
    next.push_back(std::move(e));
  }
  entries_ = std::move(next);
  wake_.notify_all();
  return note;
}

std::vector<acme_entry_status> acme_service::status() const {
  std::lock_guard lock(mutex_);
  std::vector<acme_entry_status> out;
  for (const auto& e : entries_) out.push_back(e->st);
  return out;
}

void acme_service::write_status() {
  json::object root{{"written", unix_time(acme_clock::now())},
                    {"entries", acme_status_json(status())}};
  config::acme_config acme;
  std::string user;
  {
    std::lock_guard lock(mutex_);
    acme = acme_;
    user = user_;
  }
  if (auto e = write_private_file(acme_status_path(acme), json::serialize(root) + "\n", user);
      !e.empty())
    spdlog::warn("acme: cannot write the status: {}", e);
}

// renew.request: lines of "NAME TOKEN" (NAME "*" for every entry); the file is removed once read.
// The attempt it causes carries TOKEN into status.json, where `tlsbridge acme renew` waits for it.
void acme_service::take_requests() {
  std::filesystem::path file;
  {
    std::lock_guard lock(mutex_);
    file = acme_request_path(acme_);
  }
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) return;
  std::ifstream in(file);
  std::vector<std::pair<std::string, std::string>> wanted;  // name, token
  for (std::string line; std::getline(in, line) && wanted.size() < 1000;) {
    if (line.empty()) continue;
    const auto space = line.find(' ');
    wanted.emplace_back(line.substr(0, space),
                        space == std::string::npos ? std::string() : line.substr(space + 1));
  }
  std::filesystem::remove(file, ec);
  std::lock_guard lock(mutex_);
  for (auto& e : entries_) {
    bool match = false;
    for (const auto& [name, token] : wanted)
      if (name == "*" ||
          std::find(e->cert.acme.begin(), e->cert.acme.end(), name) != e->cert.acme.end()) {
        match = true;
        e->pending_request = token;
      }
    if (!match) continue;
    spdlog::info("acme: renewal of {} requested (tlsbridge acme renew)", join(e->st.names));
    e->next = acme_clock::now();
    e->st.next_attempt = unix_time(e->next);
  }
}

void acme_service::attempt(entry& e, std::stop_token stop) {
  config::acme_config acme;
  std::string user;
  config::cert_entry cert;
  std::string request;
  {
    std::lock_guard lock(mutex_);
    acme = acme_;
    user = user_;
    cert = e.cert;
    request = std::exchange(e.pending_request, std::string());
  }
  const std::string names = join(cert.acme);
  spdlog::info("acme: ordering a certificate for {} from {}", names, acme.directory);
  acme::order_result result;
  std::string error;
  const std::string account_key =
      load_or_create_account_key(acme, user, &acme::generate_account_key_pem, error);
  if (account_key.empty()) {
    result.step = "account_key";
    result.error = error;
  } else {
    acme::order_request request;
    request.directory_url = acme.directory;
    request.ca_file = acme.ca_file.string();
    request.email = acme.email;
    request.account_key_pem = account_key;
    request.names = cert.acme;
    result = acme::obtain(request, certs::acme_challenges::instance(), stop);
    if (stop.stop_requested()) return;  // not an attempt: the process is stopping
    if (result.ok) {
      if (auto e2 = install_acme_certificate(acme, cert, result.key_pem, result.chain_pem, user);
          !e2.empty()) {
        result.ok = false;
        result.step = "install";
        result.error = e2;
      }
    }
  }
  const auto now = acme_clock::now();
  const auto served = read_served_certificate(cert.cert, cert.key, cert.acme);
  bool warn_lifetime = false;
  {
    std::lock_guard lock(mutex_);
    e.st.last_attempt = unix_time(now);
    e.st.request = request;
    if (served) {
      e.st.not_after = unix_time(served->not_after);
      e.st.placeholder = served->placeholder;
    }
    if (result.ok) {
      e.st.result = "ok";
      e.st.step.clear();
      e.st.error.clear();
      e.st.failures = 0;
      const auto plan =
          plan_renewal(served ? &*served : nullptr,
                       std::chrono::duration_cast<std::chrono::seconds>(acme.renew_before), now);
      // A served certificate that plans "now" again (placeholder, or unreadable) waits as a
      // failure.
      e.next = plan.when > now ? plan.when : now + retry_delay(1, jitter());
      warn_lifetime = plan.renew_before_exceeds_lifetime && !e.warned_lifetime;
      e.warned_lifetime = e.warned_lifetime || warn_lifetime;
    } else {
      e.st.result = "failed";
      e.st.step = result.step;
      e.st.error = result.error;
      ++e.st.failures;
      e.next = now + retry_delay(e.st.failures, jitter());
    }
    e.st.next_attempt = unix_time(e.next);
  }
  if (result.ok) {
    spdlog::info("acme: new certificate for {} installed (valid until {}s since epoch)", names,
                 served ? unix_time(served->not_after) : 0);
    if (warn_lifetime)
      spdlog::warn(
          "acme: [acme] renew_before is not shorter than the lifetime of the certificate "
          "for {}: renewing when a third of its lifetime is left instead",
          names);
    if (installed_) installed_(cert.acme);
  } else {
    spdlog::warn(
        "acme: order for {} failed at step {}: {}; next attempt in {} s (the served "
        "certificate stays)",
        names, result.step, result.error,
        std::chrono::duration_cast<std::chrono::seconds>(e.next - now).count());
    if (metrics_)
      metrics_->add("tlsbridge_acme_failures_total",
                    {{"name", cert.acme.front()}, {"step", result.step}});
  }
  write_status();
}

void acme_service::run(std::stop_token stop) {
  write_status();
  while (!stop.stop_requested()) {
    take_requests();
    std::vector<std::shared_ptr<entry>> due;
    auto wait = std::chrono::milliseconds(1000);
    {
      std::lock_guard lock(mutex_);
      const auto now = acme_clock::now();
      for (const auto& e : entries_) {
        if (e->next <= now)
          due.push_back(e);
        else
          wait =
              std::min(wait, std::chrono::duration_cast<std::chrono::milliseconds>(e->next - now));
      }
    }
    // One at a time: an order is minutes at most (the library's timeout), and each entry keeps
    // its own schedule, so a failing one delays another by one order only.
    for (const auto& e : due) {
      if (stop.stop_requested()) return;
      attempt(*e, stop);
    }
    if (!due.empty()) continue;
    std::unique_lock lock(mutex_);
    wake_.wait_for(lock, stop, wait, [] { return false; });
  }
}

}  // namespace tlsbridge::proxy
