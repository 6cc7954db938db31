#include "proxy/server.hpp"

#include <fcntl.h>
#include <grp.h>
#include <malloc.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <csignal>
#include <functional>
#include <future>
#include <map>
#include <set>
#include <thread>
#include <unordered_map>
#include <utility>

#include "config/value_parsers.hpp"
#include "proxy/acme_service.hpp"
#include "proxy/admin_server.hpp"
#include "proxy/back_leg_source.hpp"
#include "proxy/backend_health_checker.hpp"
#include "proxy/cert_watch.hpp"
#include "proxy/config_validation.hpp"
#include "proxy/listener.hpp"
#include "proxy/log_file_sink.hpp"
#include "proxy/metrics.hpp"
#include "proxy/own_certificates.hpp"
#include "proxy/pid_file.hpp"
#include "proxy/privileges.hpp"
#include "proxy/process_metrics.hpp"
#include "proxy/reload_report.hpp"
#include "proxy/session.hpp"
#include "proxy/status_json.hpp"
#include "proxy/systemd_notify.hpp"

namespace tlsbridge::proxy {

namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);
using reuse_port = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

// One listener on one worker. `rt` is swapped by reload (on the worker's thread); the accept loop
// reads it at every accept, so new connections get the new generation.
struct listener_slot {
  explicit listener_slot(asio::io_context& io) : acceptor(io) {}
  tcp::acceptor acceptor;
  std::shared_ptr<listener_runtime> rt;
};

// One worker thread: its io_context, its listener slots and the sessions it runs. Only its own
// thread touches `slots` and `sessions` once it runs. A listener has one slot per worker, or more
// after a binary upgrade from a process that had more workers (every handed socket is served).
struct worker {
  asio::io_context io{1};
  std::multimap<std::string, std::shared_ptr<listener_slot>> slots;
  // Keyed by the session's address, which stays unique while it lives (no copy of its id).
  std::unordered_map<const session*, std::weak_ptr<session>> sessions;
  std::thread thread;
};

// Binds a listener's acceptor on a worker's io_context (callable from the main thread).
std::shared_ptr<listener_slot> bind_slot(worker& w, const config::listener_config& l) {
  auto slot = std::make_shared<listener_slot>(w.io);
  boost::system::error_code ec;
  auto address = asio::ip::make_address(l.listen.host, ec);
  if (ec) throw std::runtime_error("listener " + l.name + ": bad listen address " + l.listen.host);
  tcp::endpoint ep(address, l.listen.port);
  auto& acc = slot->acceptor;
  acc.open(ep.protocol(), ec);
  if (!ec) acc.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acc.set_option(reuse_port(true), ec);
  if (!ec && ep.address().is_v6()) acc.set_option(asio::ip::v6_only(true), ec);
  if (!ec) acc.bind(ep, ec);
  if (!ec) acc.listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    throw std::runtime_error("listener " + l.name + ": cannot listen on " + l.listen.to_string() +
                             ": " + ec.message());
  return slot;
}

// A listener at start: the sockets an upgrading old process handed over for its address, spread
// over the workers (a worker shares one when there are fewer: binding a fresh one would fail for
// a service user, as SO_REUSEPORT joins only sockets of the same user), else one fresh socket
// per worker.
void open_listener(std::vector<std::unique_ptr<worker>>& workers, const std::string& name,
                   const std::shared_ptr<listener_runtime>& rt, upgrade_handoff* handoff) {
  const auto& l = *rt->settings;
  boost::system::error_code ec;
  tcp::endpoint ep(asio::ip::make_address(l.listen.host, ec), l.listen.port);
  std::vector<int> fds;
  if (handoff && !ec) fds = handoff->take_listeners(ep);
  if (fds.empty()) {
    for (auto& w : workers) {
      auto slot = bind_slot(*w, l);
      slot->rt = rt;
      w->slots.emplace(name, std::move(slot));
    }
    return;
  }
  // Slot i: on worker i % workers, socket i % sockets (a duplicate once every socket has one).
  for (std::size_t i = 0; i < std::max(fds.size(), workers.size()); ++i) {
    worker& w = *workers[i % workers.size()];
    int fd = i < fds.size() ? fds[i] : ::fcntl(fds[i % fds.size()], F_DUPFD_CLOEXEC, 3);
    auto slot = std::make_shared<listener_slot>(w.io);
    slot->acceptor.assign(ep.protocol(), fd);
    slot->rt = rt;
    w.slots.emplace(name, std::move(slot));
  }
  spdlog::info("listener {}: {} socket(s) handed over by the old process", name, fds.size());
}

asio::awaitable<void> accept_loop(worker& w, std::shared_ptr<listener_slot> slot) {
  for (;;) {
    tcp::endpoint peer;  // filled by accept() itself: no getpeername per connection
    auto [ec, socket] = co_await slot->acceptor.async_accept(peer, use_nothrow);
    if (ec == asio::error::operation_aborted || !slot->acceptor.is_open()) co_return;
    if (ec) {
      // EMFILE/ENFILE and friends: do not spin; the next accept may succeed once fds free up.
      spdlog::warn("listener {}: accept failed: {}", slot->rt->settings->name, ec.message());
      asio::steady_timer pause(slot->acceptor.get_executor(), std::chrono::milliseconds(100));
      co_await pause.async_wait(use_nothrow);
      continue;
    }
    auto s = std::make_shared<session>(slot->rt, std::move(socket), peer, next_connection_id());
    w.sessions.insert_or_assign(s.get(), s);
    // A session outlives run(): its relay runs on callbacks. It is forgotten when destroyed;
    // the erase is posted, as the destructor may run while the drain walks the map. A new
    // session at the same address before the erase runs replaces the expired entry (emplace
    // would keep it), and the erase then leaves a live one alone.
    s->on_destroy(
        [](void* arg, const session* gone) {
          auto& wk = *static_cast<worker*>(arg);
          asio::post(wk.io, [&wk, gone] {
            auto it = wk.sessions.find(gone);
            if (it != wk.sessions.end() && it->second.expired()) wk.sessions.erase(it);
          });
        },
        &w);
    asio::co_spawn(
        w.io, [s] { return s->run(); }, asio::detached);
  }
}

class server {
 public:
  server(std::filesystem::path path, std::shared_ptr<const config::config> cfg, run_options opts)
      : opts_(std::move(opts)),
        path_(std::move(path)),
        cfg_(std::move(cfg)),
        audit_(cfg_->audit.path, owners_for(cfg_->server.user)) {}

  int run();

 private:
  std::map<std::string, std::shared_ptr<listener_runtime>> build_runtimes(
      const std::shared_ptr<const config::config>& cfg,
      const std::shared_ptr<shared_state>& shared);
  void reload(const std::string& trigger);
  // The files a reload re-reads, as on disk at the last successful load; and the watch on them.
  file_states loaded_files() const;
  void follow_files();
  void shutdown(int sig);
  void drain(bool ask_sessions);
  pid_file open_pid_file();
  void upgrade();
  void finish_upgrade(const upgrade_result& result);
  void start_acme();
  boost::json::object status() const;
  std::size_t active() const { return process_active_.load(); }

  run_options opts_;
  pid_file pid_file_;  // first member, last destroyed: removed once everything else has closed
  std::filesystem::path path_;
  std::shared_ptr<const config::config> cfg_;
  audit_log audit_;
  proxy::metrics metrics_;
  status_board status_;  // the status page's per-worker figures
  std::vector<own_certificate> own_certs_;
  std::int64_t started_ = std::chrono::duration_cast<std::chrono::seconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count();
  operational_warnings warnings_;  // kept across reloads, as the listeners' counters
  std::atomic<std::size_t> process_active_{0};
  std::map<std::string, std::shared_ptr<listener_runtime>> runtimes_;  // current generation
  std::shared_ptr<shared_state> shared_;  // [server] shared_state; null = counting alone
  std::vector<std::unique_ptr<worker>> workers_;
  asio::io_context main_io_;
  asio::steady_timer grace_{main_io_};
  bool draining_ = false;
  file_states loaded_files_;
  cert_watch watch_{main_io_, [this](const std::vector<std::filesystem::path>& changed) {
                      if (!draining_) reload("certificate change: " + join_paths(changed));
                    }};
  bool upgrading_ = false;    // SIGUSR2: a new process is starting
  bool handed_over_ = false;  // it took over; we only drain
  admin_server* admin_ = nullptr;
  std::function<void()> drain_check_;
  std::unique_ptr<acme_service> acme_;  // when [[certs]] has acme entries; after the drop
};

std::map<std::string, std::shared_ptr<listener_runtime>> server::build_runtimes(
    const std::shared_ptr<const config::config>& cfg, const std::shared_ptr<shared_state>& shared) {
  std::map<std::string, std::shared_ptr<listener_runtime>> out;
  for (const auto& l : cfg->listeners) {
    auto rt = make_listener_runtime(cfg, l, &audit_);
    rt->metrics = &metrics_;
    rt->status = &status_;
    rt->warnings = &warnings_;
    rt->process_active = &process_active_;
    rt->health = std::make_shared<backend_health>(l, &metrics_);
    rt->shared = shared;
    // A listener that lives on keeps its counters: its old sessions still count against limits.
    if (auto old = runtimes_.find(l.name); old != runtimes_.end()) {
      rt->counters = old->second->counters;
      rt->health->adopt(*old->second->health);  // unchanged addresses keep their state
    }
    out.emplace(l.name, std::move(rt));
  }
  return out;
}

int server::run() {
  // Signal sets first: a SIGHUP or SIGTERM that arrives while we start must be queued for its
  // handler, not take the default action (terminate) — systemd may reload right after READY=1.
  std::signal(SIGPIPE, SIG_IGN);
  asio::signal_set stop_signals(main_io_, SIGTERM, SIGINT);
  asio::signal_set reload_signals(main_io_, SIGHUP, SIGUSR1, SIGUSR2);
  pid_file_ = open_pid_file();  // before binding: a second instance must not share our ports
  shared_ = shared_state_for(cfg_->server.shared_state, nullptr, &metrics_);
  runtimes_ = build_runtimes(cfg_, shared_);
  for (auto& [name, rt] : runtimes_) rt->counters->auth_sharing.attach(shared_, name);
  own_certs_ = read_own_certificates(*cfg_);
  record_certificate_expiry(own_certs_, metrics_);
  record_build_info(metrics_, opts_.build);
  unsigned threads = cfg_->server.threads ? cfg_->server.threads
                                          : std::max(1u, std::thread::hardware_concurrency());
  for (unsigned i = 0; i < threads; ++i) workers_.push_back(std::make_unique<worker>());

  // Bind everything before anything runs: a port in use stops the start with a clear reason.
  for (const auto& [name, rt] : runtimes_) open_listener(workers_, name, rt, opts_.handoff);

  admin_server admin(
      main_io_, metrics_, [this] { return !draining_; },
      [this] {
        for (const auto& [name, rt] : runtimes_)
          metrics_.set("tlsbridge_active_connections", {{"listener", name}},
                       static_cast<double>(rt->counters->active.load()));
        metrics_.set("tlsbridge_audit_write_failures_total", {},
                     static_cast<double>(audit_.failures()));
        refresh_process_metrics(metrics_);
      },
      [this] { return status(); });
  if (!cfg_->admin.listen.empty()) {
    auto ep = config::parse_endpoint(cfg_->admin.listen);
    if (!ep) throw std::runtime_error("[admin] listen: bad endpoint " + cfg_->admin.listen);
    admin.start(*ep, opts_.handoff);
    admin_ = &admin;
    spdlog::info("admin endpoint on {}", cfg_->admin.listen);
  }
  drop_privileges(cfg_->server.user, uses_transparent_source(*cfg_));
  if (shared_) shared_->start();
  start_acme();
  record_start(metrics_);
  follow_files();
  start_health_checks(main_io_, runtimes_);

  for (auto& w : workers_)
    for (auto& [name, slot] : w->slots)
      asio::co_spawn(w->io, accept_loop(*w, slot), asio::detached);
  for (const auto& [name, rt] : runtimes_)
    spdlog::info("listener {} ({}) on {}", name, protocol_name(rt->settings->protocol),
                 rt->settings->listen.to_string());

  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
  for (auto& w : workers_) {
    guards.push_back(asio::make_work_guard(w->io));
    w->thread = std::thread([&io = w->io] { io.run(); });
  }

  std::function<void(const boost::system::error_code&, int)> on_stop =
      [&](const boost::system::error_code& ec, int sig) {
        if (ec) return;
        shutdown(sig);
        stop_signals.async_wait(on_stop);
      };
  stop_signals.async_wait(on_stop);
  std::function<void(const boost::system::error_code&, int)> on_signal =
      [&](const boost::system::error_code& ec, int sig) {
        if (ec || draining_) return;
        if (sig == SIGHUP) {
          reload("SIGHUP");
        } else if (sig == SIGUSR2) {
          upgrade();
        } else {
          if (auto error = audit_.reopen(); error.empty())
            spdlog::info("SIGUSR1: audit log reopened");
          else
            spdlog::error("SIGUSR1: audit log not reopened, still writing the old file: {}", error);
          // [log] file too, with the same checks.
          for (auto& sink : spdlog::default_logger()->sinks())
            if (auto* file = dynamic_cast<log_file_sink*>(sink.get())) {
              if (auto error = file->reopen(); error.empty())
                spdlog::info("SIGUSR1: log file reopened");
              else
                spdlog::error("SIGUSR1: log file not reopened: {}", error);
            }
        }
        reload_signals.async_wait(on_signal);
      };
  reload_signals.async_wait(on_signal);
  if (opts_.handoff) opts_.handoff->report_ready();
  systemd_notify("READY=1");

  // After a burst (a storm of half-open handshakes, a mass reconnect) glibc keeps the freed
  // per-connection memory in its arenas; give it back to the system every few seconds, so the
  // RSS a monitor sees follows the connections that are really open.
  asio::steady_timer trim(main_io_);
  std::function<void()> arm_trim = [&] {
    trim.expires_after(std::chrono::seconds(5));
    trim.async_wait([&](const boost::system::error_code& ec) {
      if (ec) return;
      ::malloc_trim(0);
      arm_trim();
    });
  };
  arm_trim();
  main_io_.run();

  guards.clear();
  for (auto& w : workers_) w->io.stop();
  for (auto& w : workers_)
    if (w->thread.joinable()) w->thread.join();
  if (shared_) shared_->stop();  // no answer is posted to a worker's io_context after this
  spdlog::info("stopped");
  return 0;
}

file_states server::loaded_files() const {
  auto files = cfg_->tls_files();
  files.push_back(path_);
  return stat_files(files);
}

void server::follow_files() {
  loaded_files_ = loaded_files();
  watch_.follow(cfg_->server.watch_certs ? cfg_->tls_files()
                                         : std::vector<std::filesystem::path>{});
}

void server::reload(const std::string& trigger) {
  spdlog::info("{}: reloading {}", trigger, path_.string());
  systemd_notify("RELOADING=1");
  struct ready_again {
    ~ready_again() { systemd_notify("READY=1"); }
  } notify_when_done;
  auto report = load_and_validate(path_, /*reloading=*/true);
  for (const auto& w : report.warnings) spdlog::warn("reload: {}", w);
  if (!report.config) {
    std::string errors;
    for (const auto& e : report.errors) errors += (errors.empty() ? "" : "; ") + e;
    record_reload(metrics_, trigger, false, errors);
    return;
  }
  auto next = report.config;
  std::map<std::string, std::shared_ptr<listener_runtime>> next_rts;
  // Listeners whose address is new (added, or moved) need acceptors: bind them all first, so a
  // port in use rejects the whole reload and nothing has changed.
  std::vector<std::map<std::string, std::shared_ptr<listener_slot>>> fresh(workers_.size());
  std::shared_ptr<shared_state> next_shared;
  try {
    next_shared = shared_state_for(next->server.shared_state, shared_, &metrics_);
    next_rts = build_runtimes(next, next_shared);
    for (const auto& [name, rt] : next_rts) {
      auto old = runtimes_.find(name);
      bool same_address = old != runtimes_.end() && old->second->settings->listen.to_string() ==
                                                        rt->settings->listen.to_string();
      if (same_address) continue;
      for (std::size_t i = 0; i < workers_.size(); ++i) {
        auto slot = bind_slot(*workers_[i], *rt->settings);
        slot->rt = rt;
        fresh[i].emplace(name, std::move(slot));
      }
    }
  } catch (const std::exception& e) {
    record_reload(metrics_, trigger, false, e.what());
    return;  // the fresh acceptors close as `fresh` goes
  }
  if (next->audit.path != cfg_->audit.path)
    spdlog::warn("reload: [audit] path changed; it takes effect at the next restart");
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    asio::post(workers_[i]->io, [w = workers_[i].get(), rts = next_rts, add = std::move(fresh[i])] {
      for (auto it = w->slots.begin(); it != w->slots.end();) {
        auto next_rt = rts.find(it->first);
        bool moved = add.count(it->first) > 0;
        if (next_rt == rts.end() || moved) {  // removed or moved: stop accepting here
          boost::system::error_code ignored;
          it->second->acceptor.close(ignored);
          it = w->slots.erase(it);
        } else {
          it->second->rt = next_rt->second;  // new connections get the new generation
          ++it;
        }
      }
      for (auto& [name, slot] : add) {
        w->slots.emplace(name, slot);
        asio::co_spawn(w->io, accept_loop(*w, slot), asio::detached);
      }
    });
  }
  std::set<std::string> before, after;
  for (const auto& [name, rt] : runtimes_) before.insert(name);
  for (const auto& [name, rt] : next_rts) after.insert(name);
  const auto files_before = loaded_files_;
  cfg_ = next;
  retire_health_checks(runtimes_, next_rts);
  shared_ = replace_shared_state(shared_, next_shared, metrics_);
  runtimes_ = std::move(next_rts);
  for (auto& [name, rt] : runtimes_) rt->counters->auth_sharing.attach(shared_, name);
  start_health_checks(main_io_, runtimes_);
  auto previous_certs = std::exchange(own_certs_, read_own_certificates(*cfg_));
  record_certificate_expiry(previous_certs, own_certs_, metrics_);
  follow_files();
  std::string acme_note;
  if (acme_)
    acme_note = acme_->reconfigure(*cfg_);
  else
    start_acme();
  if (!acme_note.empty()) spdlog::info("reload: {}", acme_note);
  record_reload(metrics_, trigger, true,
                describe_reload(before, after, changed_files(files_before, loaded_files_)));
}

// The ACME thread runs as [server] user (started after the drop). A certificate it installs is
// served through the one reload, on the main thread.
void server::start_acme() {
  const bool any = std::any_of(cfg_->certs.begin(), cfg_->certs.end(),
                               [](const config::cert_entry& c) { return c.is_acme(); });
  if (!any || acme_) return;
  acme_ = std::make_unique<acme_service>(*cfg_, &metrics_,
                                         [this](const std::vector<std::string>& names) {
                                           asio::post(main_io_, [this, first = names.front()] {
                                             if (!draining_)
                                               reload("acme: new certificate for " + first);
                                           });
                                         });
}

boost::json::object server::status() const {
  const auto acme = acme_ ? acme_->status() : std::vector<acme_entry_status>{};
  return status_json({&runtimes_, &status_, &own_certs_, opts_.build, started_, draining_,
                      acme_ ? &acme : nullptr},
                     std::chrono::system_clock::now());
}

pid_file server::open_pid_file() {
  if (opts_.handoff) {
    auto [fd, path] = opts_.handoff->take_pid_file();
    if (fd >= 0) {
      if (path != opts_.pid_file)
        spdlog::warn("pid file {} kept from the old process; {} takes effect at the next restart",
                     path.string(), opts_.pid_file.string());
      return pid_file::adopt(fd, path);  // the old process writes our PID once we are ready
    }
  }
  return opts_.pid_file.empty() ? pid_file{} : pid_file::acquire(opts_.pid_file);
}

// SIGUSR2: our own duplicates of every listening socket (each worker's, the admin endpoint's),
// collected on the threads that own them, go to the new process (proxy/binary_upgrade).
void server::upgrade() {
  if (upgrading_) {
    spdlog::warn("SIGUSR2: an upgrade is already in progress");
    return;
  }
  upgrading_ = true;
  std::vector<handed_socket> sockets;
  auto add = [&sockets](tcp::acceptor& acceptor) {
    boost::system::error_code ec;
    auto ep = acceptor.local_endpoint(ec);
    int fd = ec ? -1 : ::fcntl(acceptor.native_handle(), F_DUPFD_CLOEXEC, 3);
    if (fd >= 0) sockets.push_back({fd, endpoint_text(ep)});
  };
  for (auto& w : workers_) {
    std::promise<void> collected;
    asio::post(w->io, [&] {
      for (auto& [name, slot] : w->slots)
        if (slot->acceptor.is_open()) add(slot->acceptor);
      collected.set_value();
    });
    collected.get_future().wait();
  }
  if (admin_ && admin_->acceptor() && admin_->acceptor()->is_open()) add(*admin_->acceptor());
  spdlog::info("SIGUSR2: upgrade: starting {}", opts_.self.path);
  start_upgrade(main_io_, opts_.self, std::move(sockets), pid_file_.fd(), pid_file_.path(),
                [this](upgrade_result result) { finish_upgrade(result); });
}

void server::finish_upgrade(const upgrade_result& result) {
  upgrading_ = false;
  if (!result.ok) {
    spdlog::error("upgrade failed, still serving: {}", result.reason);
    send_upgrade_result(result);
    return;
  }
  if (draining_) {  // SIGTERM came first: the service is stopping, so is the new process
    ::kill(result.child, SIGTERM);
    send_upgrade_result({false, result.child, "the old process is stopping (SIGTERM)"});
    return;
  }
  // The pid file and systemd learn the new PID before we stop accepting.
  if (pid_file_) {
    try {
      pid_file_.write_pid(result.child);
    } catch (const std::exception& e) {
      spdlog::error("upgrade: {}", e.what());
    }
    pid_file_.hand_over();
  }
  systemd_notify("MAINPID=" + std::to_string(result.child));
  handed_over_ = true;
  if (admin_) admin_->stop();
  spdlog::info("upgrade: PID {} took over; stop accepting, {} session(s) may finish within {} ms",
               result.child, active(), cfg_->server.shutdown_grace.count());
  send_upgrade_result(result);
  drain(false);
}

void server::shutdown(int sig) {
  if (acme_) acme_->stop();  // an order in progress returns at its next step
  if (handed_over_) {
    // SIGTERM while an upgrade's drain runs (systemd stops the whole cgroup): ask the sessions
    // left to end at their next safe point, within the grace already counting.
    spdlog::info("signal {}: asking {} session(s) to finish", sig, active());
    for (auto& w : workers_)
      asio::post(w->io, [&w = *w] {
        for (auto& [id, weak] : w.sessions)
          if (auto s = weak.lock()) s->request_shutdown();
      });
    return;
  }
  if (draining_) return;
  systemd_notify("STOPPING=1");
  spdlog::info("signal {}: stop accepting, draining {} session(s) for up to {} ms", sig, active(),
               cfg_->server.shutdown_grace.count());
  drain(true);
}

// Stops accepting (our copies of the sockets close; after an upgrade the new process holds them)
// and ends once every session has, or force-closes the rest at shutdown_grace. ask_sessions:
// SIGTERM's drain (SMTP 421 4.3.2 at a command boundary); an upgrade's drain lets each session
// run its course, as nothing forces its client elsewhere.
void server::drain(bool ask_sessions) {
  draining_ = true;
  watch_.stop();
  for (auto& w : workers_) {
    asio::post(w->io, [&w = *w, ask_sessions] {
      for (auto& [name, slot] : w.slots) {
        boost::system::error_code ignored;
        slot->acceptor.close(ignored);
      }
      if (ask_sessions)
        for (auto& [id, weak] : w.sessions)
          if (auto s = weak.lock()) s->request_shutdown();
    });
  }
  auto deadline = std::chrono::steady_clock::now() + cfg_->server.shutdown_grace;
  // Poll for the drain to finish; at the deadline, force the rest closed.
  drain_check_ = [this, deadline] {
    if (active() == 0) {
      main_io_.stop();
      return;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      for (auto& w : workers_)
        asio::post(w->io, [&w = *w] {
          for (auto& [id, weak] : w.sessions)
            if (auto s = weak.lock()) s->force_close();
        });
      grace_.expires_after(std::chrono::milliseconds(2000));
      grace_.async_wait([this](const boost::system::error_code&) { main_io_.stop(); });
      return;
    }
    grace_.expires_after(std::chrono::milliseconds(50));
    grace_.async_wait([this](const boost::system::error_code& e) {
      if (!e) drain_check_();
    });
  };
  drain_check_();
}

}  // namespace

int run_server(const std::filesystem::path& path, std::shared_ptr<const config::config> cfg,
               run_options options) {
  server s(path, std::move(cfg), std::move(options));
  return s.run();
}

}  // namespace tlsbridge::proxy
