// The certificate watch's decision (proxy/cert_watch.hpp), driven with made-up snapshots and a
// made-up clock: a change is reported once the files have been still for the settle time, a
// burst of writes is one reload, a change undone is none, a failed reload is not repeated
// until the files change again; and stat_files/changed_files on real files.
#include <catch2/catch.hpp>

#include <cstdio>
#include <fstream>

#include "proxy/cert_watch.hpp"
#include "tests/unit/config/temp_config_dir.hpp"

using tlsbridge::proxy::change_debouncer;
using tlsbridge::proxy::file_state;
using tlsbridge::proxy::file_states;
using namespace std::chrono_literals;

namespace {

file_state version(std::int64_t n) {
  file_state s;
  s.exists = true;
  s.inode = 100;
  s.size = 1000 + n;
  s.mtime_ns = s.ctime_ns = n;
  return s;
}

file_states files(std::int64_t cert, std::int64_t key) {
  return {{"/etc/ssl/cert.pem", version(cert)}, {"/etc/ssl/private/key.pem", version(key)}};
}

const change_debouncer::clock::time_point t0{};

}  // namespace

TEST_CASE("cert watch: nothing changed, nothing reported", "[proxy][cert_watch]") {
  change_debouncer d(1s);
  d.follow(files(1, 1));
  for (int i = 0; i < 10; ++i) CHECK(d.observe(files(1, 1), t0 + i * 500ms).empty());
}

TEST_CASE("cert watch: a change is reported once it has been still for the settle time",
          "[proxy][cert_watch]") {
  change_debouncer d(1s);
  d.follow(files(1, 1));
  CHECK(d.observe(files(2, 2), t0 + 500ms).empty());   // seen
  CHECK(d.observe(files(2, 2), t0 + 1000ms).empty());  // still for 0.5 s
  const auto changed = d.observe(files(2, 2), t0 + 1500ms);
  CHECK(changed ==
        std::vector<std::filesystem::path>{"/etc/ssl/cert.pem", "/etc/ssl/private/key.pem"});
  CHECK(d.observe(files(2, 2), t0 + 2000ms).empty());  // once
}

TEST_CASE("cert watch: a rewrite in several writes is one reload, after the last write",
          "[proxy][cert_watch]") {
  change_debouncer d(1s);
  d.follow(files(1, 1));
  CHECK(d.observe(files(2, 1), t0 + 500ms).empty());   // certificate written
  CHECK(d.observe(files(2, 2), t0 + 1000ms).empty());  // then the key, half
  CHECK(d.observe(files(2, 3), t0 + 1500ms).empty());  // the rest of the key
  CHECK(d.observe(files(2, 3), t0 + 2000ms).empty());
  CHECK(d.observe(files(2, 3), t0 + 2500ms).size() == 2);
}

TEST_CASE("cert watch: a change undone before it settles is no reload", "[proxy][cert_watch]") {
  change_debouncer d(1s);
  d.follow(files(1, 1));
  CHECK(d.observe(files(1, 2), t0 + 500ms).empty());
  for (int i = 2; i < 8; ++i) CHECK(d.observe(files(1, 1), t0 + i * 500ms).empty());
}

TEST_CASE("cert watch: after a reload (failed or not) only a new change reports again",
          "[proxy][cert_watch]") {
  change_debouncer d(1s);
  d.follow(files(1, 1));
  d.observe(files(1, 2), t0);
  CHECK(d.observe(files(1, 2), t0 + 1s).size() == 1);  // reloaded; say it failed
  for (int i = 3; i < 10; ++i) CHECK(d.observe(files(1, 2), t0 + i * 500ms).empty());
  CHECK(d.observe(files(1, 3), t0 + 5s).empty());  // the write completes
  CHECK(d.observe(files(1, 3), t0 + 6s) ==
        std::vector<std::filesystem::path>{"/etc/ssl/private/key.pem"});
}

TEST_CASE("cert watch: a file that disappears and comes back is a change", "[proxy][cert_watch]") {
  change_debouncer d(1s);
  d.follow(files(1, 1));
  file_states gone = files(1, 1);
  gone["/etc/ssl/cert.pem"] = file_state{};
  CHECK(d.observe(gone, t0).empty());
  CHECK(d.observe(files(1, 1), t0 + 500ms).empty());  // back as it was: nothing to do
  CHECK(d.observe(files(1, 1), t0 + 3s).empty());
  CHECK(d.observe(gone, t0 + 4s).empty());
  CHECK(d.observe(gone, t0 + 5s).size() == 1);  // gone for good: the reload says why it fails
}

TEST_CASE("cert watch: follow keeps a pending change across a new file list",
          "[proxy][cert_watch]") {
  change_debouncer d(1s);
  d.follow(files(1, 1));
  CHECK(d.observe(files(2, 1), t0).empty());
  // A SIGHUP reload adds a CA file; the certificate's change is still unreported.
  auto with_ca = files(2, 1);
  with_ca["/etc/ssl/ca.pem"] = version(7);
  d.follow(with_ca);
  CHECK(d.observe(with_ca, t0 + 500ms).empty());
  CHECK(d.observe(with_ca, t0 + 1500ms) == std::vector<std::filesystem::path>{"/etc/ssl/cert.pem"});
}

TEST_CASE("stat_files sees an in-place rewrite, a rename over and a re-pointed symlink",
          "[proxy][cert_watch]") {
  tlsbridge::config::test::temp_config_dir dir;
  const auto file = dir.write("cert.pem", "one\n");
  const auto link = dir.path() / "live.pem";
  std::filesystem::create_symlink(file, link);
  const auto before = tlsbridge::proxy::stat_files({file, link, dir.path() / "missing.pem"});
  CHECK(before.at(file).exists);
  CHECK(before.at(link) == before.at(file));  // through the link
  CHECK_FALSE(before.at(dir.path() / "missing.pem").exists);

  std::ofstream(file, std::ios::app) << "two\n";  // in place: same inode, new size
  auto after = tlsbridge::proxy::stat_files({file, link});
  CHECK(after.at(file).inode == before.at(file).inode);
  CHECK(tlsbridge::proxy::changed_files(before, after).size() == 3);  // missing.pem left the list

  const auto renewed = dir.write("cert2.pem", "one\n");
  std::filesystem::remove(link);
  std::filesystem::create_symlink(renewed, link);  // certbot: the link re-pointed
  const auto repointed = tlsbridge::proxy::stat_files({file, link});
  CHECK(tlsbridge::proxy::changed_files(after, repointed) ==
        std::vector<std::filesystem::path>{link});
  std::filesystem::rename(renewed, file);  // acme.sh: renamed over
  const auto renamed = tlsbridge::proxy::stat_files({file});
  CHECK(renamed.at(file).inode != after.at(file).inode);
}
