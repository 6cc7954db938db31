"""Operating tlsbridge as a service (issue 14; README, "Operate" and "Command line"): `--version`
says which build and which OpenSSL answer; under systemd every stderr line carries its syslog
priority, found through JOURNAL_STREAM; a backend that cannot be reached and each refusal by
policy are rate-limited `warn` lines; logrotate's own snippet rotates the operational log too and
no line is lost; `check-config` refuses audit/log paths run could not write, a malformed admin
address and a bad cipher string (once, at its line); 0.0.0.0:P and [::]:P listen side by side.
Each refusal is shown next to the same set-up working. Runs as root, as CI does."""

import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import threading
import time
import unittest

import lab

WARNING_INTERVAL_S = 60  # proxy/operational_warnings.hpp: at most one line a minute per key


def read_text(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


def smtp_hello(port, host="127.0.0.1"):
    """Greeting, EHLO and QUIT through the proxy; returns (greeting code, EHLO code, our
    address as the audit record's `client`)."""
    client = lab.SmtpClient(port, host=host)
    try:
        greeting, _ = client.read_reply()
        ehlo = client.command("EHLO client.test")[0] if greeting == "220" else None
        if ehlo:
            client.command("QUIT")
        ip, local_port = client.sock.getsockname()[:2]
        return greeting, ehlo, (f"[{ip}]:{local_port}" if ":" in ip else f"{ip}:{local_port}")
    finally:
        client.close()


CERTS = None
PLAIN_BACKEND = None  # one plaintext Postfix for the tests that need a working backend


def setUpModule():
    global CERTS, PLAIN_BACKEND
    CERTS = lab.shared_certs()
    PLAIN_BACKEND = lab.PostfixBackend(CERTS, tls="none")
    unittest.addModuleCleanup(PLAIN_BACKEND.cleanup)
    PLAIN_BACKEND.start()


def plain_listener(port, backend_port=None, **extra):
    """A plaintext SMTP listener on 127.0.0.1:port in front of backend_port (default: the
    module's Postfix)."""
    return lab.smtp_listener(port, backend_port or PLAIN_BACKEND.port, tls="none",
                             backend_tls="none", require_tls=False, **extra)


def make_proxy(test, listeners):
    """A lab.Tlsbridge (not started) with the test PKI's server certificate, cleaned up after
    `test`."""
    proxy = lab.Tlsbridge(listeners, [(f"{CERTS}/server.chain.pem", f"{CERTS}/server.key")])
    test.addCleanup(proxy.cleanup)
    return proxy


def start_with_env(proxy, env, stderr_path=None):
    """Starts the proxy like lab.Tlsbridge.start, with `env` and stderr to `stderr_path` (created
    beforehand by the caller, whose inode it keeps)."""
    with open(proxy.config_path, "w") as f:
        f.write(proxy.config_text())
    with open(stderr_path or proxy.stderr_path, "ab") as err:
        proxy.proc = subprocess.Popen([proxy.binary, "run", "--config", proxy.config_path],
                                      env=env, stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                      cwd=proxy.dir)
    proxy._wait_ready()


def check_config(proxy, binary=None, prefix=()):
    with open(proxy.config_path, "w") as f:
        f.write(proxy.config_text())
    return lab.run([*prefix, binary or proxy.binary, "check-config", "--config",
                    proxy.config_path])


def line_of(path, needle, last=False):
    """1-based number of the first (or last) line of the file at path holding needle."""
    with open(path) as f:
        found = [number for number, line in enumerate(f, 1) if needle in line]
    if not found:
        raise AssertionError(f"{needle!r} not in {path}")
    return found[-1] if last else found[0]


class VersionTest(unittest.TestCase):
    def test_version_names_the_commit_and_the_openssl_in_use(self):
        binary = os.environ.get("TLSBRIDGE_BINARY") or lab.DEFAULT_BINARY
        result = lab.run([binary, "--version"])
        self.assertEqual(result.returncode, 0, result.stderr)
        match = re.fullmatch(r"tlsbridge (\d+\.\d+\.\d+) \(commit ([0-9a-f]{7,}|unknown)\) "
                             r"(OpenSSL .+)\n", result.stdout)
        self.assertIsNotNone(match, result.stdout)
        # The libssl loaded now (Python's ssl module loads the same system library).
        self.assertEqual(match.group(3), ssl.OPENSSL_VERSION)
        top = lab.run(["git", "-C", lab.SOURCE_DIR, "rev-parse", "--show-toplevel"])
        if top.returncode == 0 and os.path.realpath(top.stdout.strip()) == \
                os.path.realpath(lab.SOURCE_DIR):
            head = lab.run(["git", "-C", lab.SOURCE_DIR, "log", "-1", "--format=%H %ct"],
                           check=True).stdout.split()
            if not head[0].startswith(match.group(2)):
                # Only a binary built before the latest commit may name an older one (a commit
                # made since, and ctest run without building): never one built after it.
                self.assertLess(os.stat(binary).st_mtime, int(head[1]),
                                f"built from {match.group(2)} after {head[0]} was committed")
                ancestor = lab.run(["git", "-C", lab.SOURCE_DIR, "merge-base", "--is-ancestor",
                                    match.group(2), "HEAD"])
                self.assertEqual(ancestor.returncode, 0, f"{match.group(2)} is not in HEAD's history")
        else:
            self.assertEqual(match.group(2), "unknown")

    def test_commit_header_follows_head_and_is_rewritten_only_when_it_changes(self):
        """cmake/build_commit.cmake, which the build runs every time: a commit made after
        configuring shows, an unchanged one leaves the header alone (nothing recompiles)."""
        script = os.path.join(lab.SOURCE_DIR, "cmake", "build_commit.cmake")
        self.assertTrue(os.path.isfile(script), script)
        work = lab.make_lab_dir("tlsbridge-commit.")
        self.addCleanup(shutil.rmtree, work, True)
        repo = os.path.join(work, "repo")
        header = os.path.join(work, "build_commit.hpp")
        git = ["git", "-C", repo, "-c", "user.name=t", "-c", "user.email=t@example.test"]

        def generate(source):
            lab.run(["cmake", f"-DSOURCE_DIR={source}", f"-DOUTPUT={header}", "-P", script],
                    check=True)
            return re.search(r'TLSBRIDGE_BUILD_COMMIT "([^"]*)"', read_text(header)).group(1)

        def commit(n):
            with open(os.path.join(repo, "file"), "w") as f:
                f.write(f"{n}\n")
            lab.run([*git, "add", "file"], check=True)
            lab.run([*git, "commit", "-q", "-m", f"change {n}"], check=True)
            return lab.run([*git, "rev-parse", "HEAD"], check=True).stdout.strip()

        os.mkdir(repo)
        self.assertEqual(generate(repo), "unknown", "not a git checkout")
        lab.run(["git", "init", "-q", repo], check=True)
        first = commit(1)
        self.assertTrue(first.startswith(generate(repo)))
        before = os.stat(header).st_mtime_ns
        time.sleep(0.05)
        generate(repo)
        self.assertEqual(os.stat(header).st_mtime_ns, before, "unchanged commit: not rewritten")
        second = commit(2)
        self.assertTrue(second.startswith(generate(repo)), "a new commit shows at the next build")
        inner = os.path.join(repo, "sub")
        os.mkdir(inner)
        self.assertEqual(generate(inner), "unknown",
                         "a tree inside another repository is not that repository's commit")


class ServiceLogTest(unittest.TestCase):
    """Priorities on stderr under the journal, and the rate-limited warnings."""

    def closed_port_listener(self, name="dead-in"):
        port, backend_port = lab.free_port(), lab.free_port()
        return port, backend_port, plain_listener(port, backend_port, name=name)

    def test_priority_prefixes_only_when_stderr_is_the_journal_stream(self):
        port, _, listener = self.closed_port_listener()
        for mode in ("journal", "other stream", "no variable"):
            with self.subTest(mode=mode):
                proxy = make_proxy(self, [listener])
                open(proxy.stderr_path, "wb").close()
                st = os.stat(proxy.stderr_path)
                env = dict(os.environ)
                env.pop("JOURNAL_STREAM", None)
                if mode == "journal":
                    env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
                elif mode == "other stream":  # inherited from a unit, stderr redirected elsewhere
                    env["JOURNAL_STREAM"] = f"{st.st_dev}:{os.stat(proxy.dir).st_ino}"
                start_with_env(proxy, env)
                self.assertEqual(smtp_hello(port)[0], "421")  # backend down: a warning
                self.assertTrue(lab.wait_until(lambda: "unreachable" in proxy.stderr(), 10),
                                proxy.describe())
                self.assertEqual(proxy.stop(), 0)
                lines = [l for l in proxy.stderr().splitlines() if l]
                self.assertTrue(lines)
                if mode == "journal":
                    for line in lines:
                        self.assertRegex(line, r"^<[0-7]>", "every line carries its priority")
                    self.assertTrue(any(re.match(r"<4>.*unreachable", l) for l in lines), lines)
                    self.assertTrue(any(re.match(r"<6>.*listener dead-in", l) for l in lines))
                    self.assertTrue(any(l.startswith("<7>") for l in lines), "debug is <7>")
                else:
                    for line in lines:
                        self.assertNotRegex(line, r"^<\d>", "not the journal: no prefix")

    def test_unreachable_backend_is_one_warning_then_one_info_when_back(self):
        port, backend_port, listener = self.closed_port_listener()
        proxy = make_proxy(self, [listener]).start()
        connections = 8
        for _ in range(connections):
            self.assertEqual(smtp_hello(port)[0], "421", proxy.describe())
        records = proxy.wait_for_conn_records(connections, listener="dead-in")
        self.assertEqual(len(records), connections, proxy.describe())
        for record in records:
            self.assertEqual(record["outcome"], "backend_unavailable", record)
        warnings = [l for l in proxy.stderr().splitlines() if "unreachable" in l]
        self.assertEqual(len(warnings), 1, "one line, not one per connection:\n" +
                         proxy.stderr())
        self.assertIn("[warning]", warnings[0])
        self.assertIn("listener dead-in", warnings[0])
        self.assertIn(f"127.0.0.1:{backend_port}", warnings[0])
        # The backend comes back: one info line, with the count held back since the warning
        # (our connections and the readiness probe's, all within the minute).
        backend = lab.PostfixBackend(CERTS, tls="none", port=backend_port)
        self.addCleanup(backend.cleanup)
        backend.start()
        self.assertEqual(smtp_hello(port)[:2], ("220", "250"), proxy.describe())
        self.assertTrue(lab.wait_until(lambda: "reachable again" in proxy.stderr(), 10))
        back = [l for l in proxy.stderr().splitlines() if "reachable again" in l]
        self.assertEqual(len(back), 1, proxy.stderr())
        self.assertIn("[info]", back[0])
        self.assertIn(f"listener dead-in: backend reachable again at 127.0.0.1:{backend_port}",
                      back[0])
        self.assertRegex(back[0], r"\((\d+) more since the last line\)")
        self.assertEqual(smtp_hello(port)[:2], ("220", "250"))
        self.assertEqual(len([l for l in proxy.stderr().splitlines()
                              if "reachable again" in l]), 1, "said once")

    def test_policy_refusal_is_one_warning_per_listener_and_kind(self):
        backend = lab.PostfixBackend(CERTS, tls="tls1.0-starttls")
        self.addCleanup(backend.cleanup)
        backend.start()
        port, ok_port = lab.free_port(), lab.free_port()
        # The legacy host's SHA-1 chain judged in full (verify = "ca"): refused by [policy].
        strict = lab.smtp_listener(port, backend.port, name="strict-in", tls="none",
                                   require_tls=False)
        strict["backend"].update({"verify": "ca", "ca_file": f"{CERTS}/ca.crt",
                                  "server_name": "localhost"})
        trusting = lab.smtp_listener(ok_port, backend.port, name="trusting-in", tls="none",
                                     require_tls=False)
        proxy = make_proxy(self, [strict, trusting]).start()
        self.assertEqual(smtp_hello(ok_port)[:2], ("220", "250"), "same backend, trusted leg")
        connections = 5
        for _ in range(connections):
            self.assertEqual(smtp_hello(port)[0], "421")
        records = proxy.wait_for_conn_records(connections, listener="strict-in")
        self.assertEqual(len(records), connections, proxy.describe())
        for record in records:
            self.assertEqual(record["outcome"], "refused_policy", record)
        refusals = [l for l in proxy.stderr().splitlines() if "refused by policy" in l and
                    "[warning]" in l]
        self.assertEqual(len(refusals), 1, proxy.stderr())
        self.assertIn("listener strict-in", refusals[0])
        self.assertIn(f"backend 127.0.0.1:{backend.port}", refusals[0])
        self.assertIn("weak_signature", refusals[0])
        self.assertNotIn("unreachable", proxy.stderr(), "a refused backend was reachable")


class LogRotateTest(unittest.TestCase):
    """conf/tlsbridge.logrotate, run by the real logrotate, rotates the audit file and the
    operational log; SIGUSR1 reopens both; every connection's log line is in one of the two
    files exactly once."""

    def test_logrotate_snippet_rotates_the_log_file_and_no_line_is_lost(self):
        if shutil.which("logrotate") is None:
            raise lab.LabError("logrotate is not installed (scripts/setup installs it)")
        port = lab.free_port()
        proxy = make_proxy(self, [plain_listener(port)])
        logs = os.path.join(proxy.dir, "logs")  # stands for /var/log/tlsbridge
        os.mkdir(logs, 0o755)
        proxy.audit_path = os.path.join(logs, "audit.jsonl")
        log_file = os.path.join(logs, "tlsbridge.log")
        original = proxy.config_text
        proxy.config_text = lambda: original().replace("[log]\n", f'[log]\nfile = "{log_file}"\n',
                                                       1)
        proxy.start()

        with open(os.path.join(lab.SOURCE_DIR, "conf", "tlsbridge.logrotate")) as f:
            snippet = f.read()
        self.assertIn("/var/log/tlsbridge/", snippet)
        snippet = (snippet.replace("/var/log/tlsbridge/", logs + "/")
                   .replace("create 0640 tlsbridge adm", "create 0640 root root")
                   .replace("systemctl kill --signal=SIGUSR1 --kill-who=main tlsbridge.service",
                            f"kill -USR1 {proxy.proc.pid}"))
        rotate_conf = os.path.join(proxy.dir, "logrotate.conf")
        with open(rotate_conf, "w") as f:
            f.write(snippet)

        # Connections keep coming while logrotate renames the files and signals.
        stop = threading.Event()
        failures = []

        def traffic():
            for _ in range(400):
                if stop.is_set():
                    return
                try:
                    if smtp_hello(port)[:2] != ("220", "250"):
                        failures.append("not served")
                except OSError as e:
                    failures.append(str(e))
        worker = threading.Thread(target=traffic)
        worker.start()
        self.addCleanup(worker.join, 60)
        self.addCleanup(stop.set)
        self.assertTrue(lab.wait_until(lambda: len(proxy.conn_records()) >= 10, 20))
        result = lab.run(["logrotate", "-f", "-s", os.path.join(proxy.dir, "logrotate.state"),
                          rotate_conf])
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertTrue(os.path.exists(log_file + ".1"), "the operational log was rotated: " +
                        str(sorted(os.listdir(logs))))
        self.assertTrue(os.path.exists(proxy.audit_path + ".1"))
        self.assertTrue(lab.wait_until(lambda: "log file reopened" in read_text(log_file), 10),
                        "the new log file gets the lines after SIGUSR1")
        rotated_at = len(proxy.conn_records())
        self.assertTrue(lab.wait_until(lambda: len(proxy.conn_records()) >= rotated_at + 10, 20),
                        "traffic goes on after the rotation")
        stop.set()
        worker.join(60)
        self.assertEqual(proxy.stop(), 0)
        self.assertEqual(failures, [])

        audited = []
        for path in (proxy.audit_path + ".1", proxy.audit_path):
            records = [json.loads(line) for line in read_text(path).splitlines()]
            audited += [r["conn"] for r in records if r.get("event") == "conn"]
        logged = []
        for path in (log_file + ".1", log_file):
            logged += re.findall(r"\] conn (\S+) ", read_text(path))
        self.assertGreater(len(audited), 20)
        self.assertEqual(sorted(logged), sorted(audited),
                         "each connection's line is in the old or the new file, once")
        self.assertRegex(read_text(log_file + ".1"), r"\] conn \S+ ",
                         "lines before the rotation stayed in the rotated file")


class CheckConfigTest(unittest.TestCase):
    """`tlsbridge check-config` on what `run` would open, with exit codes and file:line."""

    def config_proxy(self, listeners=None):
        return make_proxy(self, listeners or [plain_listener(lab.free_port())])

    def assert_refused(self, proxy, key, *needles, binary=None, prefix=()):
        result = check_config(proxy, binary, prefix)
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        errors = [l for l in result.stderr.splitlines() if not l.startswith("warning:")]
        self.assertEqual(len(errors), 1, result.stderr)
        self.assertTrue(errors[0].startswith(f"{proxy.config_path}:"), errors[0])
        self.assertIn(f": {key}: ", errors[0])
        for needle in needles:
            self.assertIn(needle, errors[0])
        return errors[0]

    def assert_ok(self, proxy, binary=None, prefix=()):
        result = check_config(proxy, binary, prefix)
        self.assertEqual((result.returncode, result.stdout), (0, "ok\n"), result.stderr)

    def test_audit_path_in_a_missing_directory_or_a_directory(self):
        proxy = self.config_proxy()
        proxy.audit_path = os.path.join(proxy.dir, "missing", "audit.jsonl")
        error = self.assert_refused(proxy, "audit.path", "No such file or directory")
        line = line_of(proxy.config_path, "path = ")
        self.assertIn(f"{proxy.config_path}:{line}:", error)
        proxy.audit_path = proxy.dir
        self.assert_refused(proxy, "audit.path", "is a directory")
        proxy.audit_path = os.path.join(proxy.dir, "audit.jsonl")
        self.assert_ok(proxy)

    def test_log_file_in_a_missing_directory(self):
        proxy = self.config_proxy()
        original = proxy.config_text
        target = [os.path.join(proxy.dir, "missing", "tlsbridge.log")]
        proxy.config_text = lambda: original().replace(
            "[log]\n", f'[log]\nfile = "{target[0]}"\n', 1)
        error = self.assert_refused(proxy, "log.file", "No such file or directory")
        self.assertIn(f":{line_of(proxy.config_path, 'file = ')}:", error)
        target[0] = os.path.join(proxy.dir, "tlsbridge.log")
        self.assert_ok(proxy)

    def test_paths_the_checking_user_cannot_write(self):
        """check-config run as another user (here nobody, through setpriv) says what it could
        not write; the same config is ok when that user may write there."""
        if shutil.which("setpriv") is None:
            self.skipTest("setpriv (util-linux) is not installed")
        proxy = self.config_proxy()
        binary = os.path.join(proxy.dir, "tlsbridge")  # reachable by nobody wherever CI clones
        shutil.copy(proxy.binary, binary)
        os.chmod(binary, 0o755)
        as_nobody = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
        logs = os.path.join(proxy.dir, "logs")
        os.mkdir(logs, 0o755)  # root's: nobody cannot create the audit file here
        proxy.audit_path = os.path.join(logs, "audit.jsonl")
        self.assert_refused(proxy, "audit.path", "is not writable", logs, binary=binary,
                            prefix=as_nobody)
        nobody = lab.pwd.getpwnam("nobody")
        os.chown(logs, nobody.pw_uid, nobody.pw_gid)
        self.assert_ok(proxy, binary=binary, prefix=as_nobody)
        # An existing file nobody may not write (root's, 0640) in that directory.
        with open(proxy.audit_path, "w"):
            pass
        os.chmod(proxy.audit_path, 0o640)
        self.assert_refused(proxy, "audit.path", "is not writable", binary=binary,
                            prefix=as_nobody)

    def test_reload_after_the_privilege_drop_does_not_ask_to_write_open_files(self):
        """A reload runs as `[server] user` and opens no output file: an audit file of root's
        (0640, there before the start; one the proxy creates is the service user's) is still in
        use, not a reason to reject the reload."""
        proxy = self.config_proxy()
        original = proxy.config_text
        proxy.config_text = lambda: original().replace("[server]\n", '[server]\nuser = "nobody"\n')
        logs = os.path.join(proxy.dir, "logs")
        os.mkdir(logs, 0o755)
        nobody = lab.pwd.getpwnam("nobody")
        os.chown(logs, nobody.pw_uid, nobody.pw_gid)
        proxy.audit_path = os.path.join(logs, "audit.jsonl")
        with open(proxy.audit_path, "w"):
            pass
        os.chmod(proxy.audit_path, 0o640)
        proxy.start()
        self.assertEqual(os.stat(proxy.audit_path).st_uid, 0)
        proxy.proc.send_signal(signal.SIGHUP)
        self.assertTrue(lab.wait_until(lambda: "reload done" in proxy.stderr(), 10),
                        proxy.stderr())
        self.assertNotIn("reload rejected", proxy.stderr())

    def test_admin_address_must_be_ip_and_port(self):
        proxy = self.config_proxy()
        for bad in ("localhost:9900", "127.0.0.1", "127.0.0.1:0", "[::1]:99999", "::1:9900"):
            with self.subTest(admin=bad):
                proxy.admin = bad
                error = self.assert_refused(proxy, "admin.listen", "invalid listen address")
                self.assertIn(f":{line_of(proxy.config_path, f'listen = {chr(34)}{bad}')}:", error)
        proxy.admin = f"127.0.0.1:{lab.free_port()}"
        self.assert_ok(proxy)

    def test_bad_cipher_string_is_reported_once_at_its_line(self):
        port_a, port_b = lab.free_port(), lab.free_port()
        front = lab.smtp_listener(port_a, lab.free_port(), name="a", tls="starttls",
                                  backend_tls="none", tls_profile="custom")
        back = lab.smtp_listener(port_b, lab.free_port(), name="b", tls="starttls")
        back["backend"]["tls_profile"] = "custom"
        proxy = self.config_proxy([front, back])
        ciphers = ["NOT-A-CIPHER:ALSO-NOT"]
        original = proxy.config_text
        proxy.config_text = lambda: original() + (
            "\n[tls.profiles.custom]\nmin_version = \"TLS1.0\"\n"
            f"ciphers = \"{ciphers[0]}\"\n")
        error = self.assert_refused(proxy, "tls.profiles.custom.ciphers", "bad ciphers",
                                    ciphers[0], "no cipher match")
        self.assertIn(f"{proxy.config_path}:{line_of(proxy.config_path, 'ciphers = ')}:", error)
        ciphers[0] = "DEFAULT:@SECLEVEL=0"
        self.assert_ok(proxy)


class DualStackTest(unittest.TestCase):
    """0.0.0.0:P and [::]:P both configured (the IPv6 socket is v6-only): an IPv4 client and an
    IPv6 client each come in on their own listener."""

    @classmethod
    def setUpClass(cls):
        if not os.path.exists("/proc/net/if_inet6"):
            raise unittest.SkipTest("no IPv6 on this host")

    @staticmethod
    def listeners(port, v4="0.0.0.0", v6="[::]"):
        a, b = plain_listener(port, name="smtp-v4"), plain_listener(port, name="smtp-v6")
        a["listen"], b["listen"] = f"{v4}:{port}", f"{v6}:{port}"
        return [a, b]

    def test_both_wildcards_on_one_port_each_get_their_clients(self):
        port = lab.free_port()
        proxy = make_proxy(self, self.listeners(port))
        result = check_config(proxy)
        self.assertEqual((result.returncode, result.stdout), (0, "ok\n"), result.stderr)
        proxy.start()
        v4 = smtp_hello(port, "127.0.0.1")
        v6 = smtp_hello(port, "::1")
        self.assertEqual(v4[:2], ("220", "250"), proxy.describe())
        self.assertEqual(v6[:2], ("220", "250"), proxy.describe())
        records = proxy.wait_for_conn_records(2, where=lambda r: r.get("client") in (v4[2], v6[2]))
        by_client = {r["client"]: r for r in records}
        self.assertEqual(by_client[v4[2]]["listener"], "smtp-v4", records)
        self.assertEqual(by_client[v6[2]]["listener"], "smtp-v6", records)
        for record in records:
            self.assertEqual(record["outcome"], "ok", record)

    def test_two_copies_of_one_address_are_still_refused(self):
        port = lab.free_port()
        for v4, v6 in (("0.0.0.0", "0.0.0.0"), ("[::]", "[::]"), ("[::1]", "[::]"),
                       ("127.0.0.1", "0.0.0.0")):
            with self.subTest(first=v4, second=v6):
                listeners = self.listeners(port)
                listeners[0]["listen"], listeners[1]["listen"] = f"{v4}:{port}", f"{v6}:{port}"
                proxy = make_proxy(self, listeners)
                result = check_config(proxy)
                self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
                self.assertIn("listener[1].listen: duplicate listener", result.stderr)
                second = line_of(proxy.config_path, f'listen = "{v6}:{port}"', last=True)
                self.assertIn(f"{proxy.config_path}:{second}:", result.stderr)


if __name__ == "__main__":
    unittest.main()
