"""Binary upgrade without a dropped or refused connection (README, "Operate: upgrade"), against
a real Postfix (SMTP), the legacy IIS stand-in (HTTPS) and Dovecot (IMAP IDLE).

The proxy runs from a copy of the build's binary; the copy is replaced the way dpkg replaces a
file (a new file renamed over it) and `tlsbridge upgrade --pid-file` makes the running process
start what is now at that path. Under continuous SMTP and HTTPS load: no failed or refused
connection, every message a client saw accepted is delivered by Postfix, an IMAP IDLE session
opened before the upgrade still gets the new-mail EXISTS after it and lives until the old
process's shutdown_grace ends, the pid file names the new process, the old one exits. The new
config has fewer worker threads than the old had sockets, so the new process must serve more
sockets than it has workers. A failing upgrade (broken config, binary not executable) reports
why and leaves the old process serving."""

import imaplib
import os
import pwd
import re
import shutil
import signal
import socket
import struct
import time
import unittest

import client_loops
import lab
import legacy_iis

USER, PASSWORD = "alice", "wonderland"
GRACE_SECONDS = 6


def until_tagged(client, tag):
    """The lines an IMAP server sends up to and including the one tagged `tag`."""
    lines = [client.read_line()]
    while not lines[-1].startswith(tag + " "):
        lines.append(client.read_line())
    return lines


def stop_by_pid(pid):
    """SIGTERM to pid, SIGKILL if it is still there after 15 s; True when SIGTERM was enough."""
    os.kill(pid, signal.SIGTERM)
    if lab.wait_until(lambda: not lab._pid_alive(pid), 15):
        return True
    os.kill(pid, signal.SIGKILL)
    return False


class UpgradeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.certs = lab.shared_certs()
        cls.postfix = lab.start_for_class(cls, lab.PostfixBackend(cls.certs))
        cls.dovecot = lab.start_for_class(
            cls, lab.DovecotBackend(cls.certs, user=USER, password=PASSWORD))
        cls.iis = legacy_iis.LegacyIis(cls.certs).start()
        cls.addClassCleanup(cls.iis.stop)
        cls.build = os.environ.get("TLSBRIDGE_BINARY") or lab.DEFAULT_BINARY

    def start_proxy(self, listeners, threads, env=None, audit_path=None, **server):
        """The proxy from a copy of the build's binary in a directory of its own, with a pid
        file (and more [server] keys); cleanup stops whichever process the pid file names at the
        end, by that PID."""
        bin_dir = lab.make_lab_dir("tlsbridge-bin.")
        self.addCleanup(shutil.rmtree, bin_dir, True)
        binary = os.path.join(bin_dir, "tlsbridge")
        shutil.copy2(self.build, binary)
        proxy = lab.Tlsbridge(listeners, [(f"{self.certs}/server.chain.pem",
                                           f"{self.certs}/server.key")],
                              binary=binary, shutdown_grace=f"{GRACE_SECONDS}s",
                              admin=f"127.0.0.1:{lab.free_port()}")
        proxy.server.update(threads=threads, pid_file=os.path.join(proxy.dir, "tlsbridge.pid"),
                            **server)
        proxy.audit_path = audit_path or proxy.audit_path
        self.addCleanup(proxy.cleanup)
        self.addCleanup(self.stop_successor, proxy)
        proxy.start(env)
        return proxy

    def stop_successor(self, proxy):
        pid = self.pid_in(proxy)
        if pid and proxy.proc and pid != proxy.proc.pid and lab._pid_alive(pid):
            stop_by_pid(pid)

    def pid_in(self, proxy):
        try:
            with open(proxy.server["pid_file"]) as f:
                return int(f.read().strip() or 0)
        except (OSError, ValueError):
            return 0

    def upgrade(self, proxy):
        return lab.run([proxy.binary, "upgrade", "--pid-file", proxy.server["pid_file"]],
                       timeout=90)

    def replace_binary(self, proxy):
        """A new file renamed over the old one, as dpkg installs a package's files."""
        fresh = proxy.binary + ".dpkg-new"
        shutil.copy2(self.build, fresh)
        os.rename(fresh, proxy.binary)
        return os.stat(proxy.binary).st_ino

    # -----------------------------------------------------------------------------------------

    def test_upgrade_under_load_drops_nothing(self):
        smtp_port, web_port, imap_port = lab.free_port(), lab.free_port(), lab.free_port()
        listeners = [
            lab.smtp_listener(smtp_port, self.postfix.port, name="smtp"),
            {"name": "web", "protocol": "https", "listen": f"127.0.0.1:{web_port}",
             "tls": "implicit",
             "backend": {"address": [f"127.0.0.1:{self.iis.port}"], "tls": "implicit",
                         "tls_profile": "legacy", "verify": "none"}},
            lab.smtp_listener(imap_port, self.dovecot.imap_port, name="imap", protocol="imap",
                              tls="starttls", backend_tls="starttls")]
        proxy = self.start_proxy(listeners, threads=3)
        old_pid = proxy.proc.pid
        self.assertEqual(lab.listening_pids(smtp_port), {old_pid})
        sockets = {port: lab.listening_sockets(port) for port in (smtp_port, web_port, imap_port)}
        self.assertEqual(len(sockets[smtp_port]), 3, "one SO_REUSEPORT socket per worker")

        # An IMAP session idling before the upgrade.
        imap = lab.SmtpClient(imap_port)
        self.addCleanup(imap.close)
        self.assertTrue(imap.read_line().startswith("* OK"))
        imap.send("a1 STARTTLS\r\n")
        self.assertRegex(until_tagged(imap, "a1")[-1], r"^a1 OK")
        imap.starttls(client_loops.unverified_context())
        for tag, command in (("a2", f"LOGIN {USER} {PASSWORD}"), ("a3", "SELECT INBOX")):
            imap.send(f"{tag} {command}\r\n")
            lines = until_tagged(imap, tag)
            self.assertRegex(lines[-1], r"^a\d OK", lines)
        exists = max(int(m.group(1)) for m in
                     (re.match(r"^\* (\d+) EXISTS", l) for l in lines) if m)
        imap.send("a4 IDLE\r\n")
        self.assertTrue(imap.read_line().startswith("+"))

        loads = [client_loops.SmtpLoad("smtp-a", smtp_port), client_loops.SmtpLoad("smtp-b", smtp_port),
                 client_loops.HttpsLoad("web-a", web_port), client_loops.HttpsLoad("web-b", web_port)]
        for load in loads:
            load.start()
            self.addCleanup(load.stopping.set)
        time.sleep(1.5)

        # The new binary at the old path, and a config with fewer workers than the old had
        # sockets per listener (3): the new process serves all three on two workers.
        new_inode = self.replace_binary(proxy)
        proxy.server["threads"] = 2
        with open(proxy.config_path, "w") as f:
            f.write(proxy.config_text())
        upgraded = self.upgrade(proxy)
        upgraded_at = time.monotonic()
        self.assertEqual(upgraded.returncode, 0, upgraded.stderr + proxy.describe())
        new_pid = self.pid_in(proxy)
        self.assertNotIn(new_pid, (0, old_pid), "the pid file names the new process")
        self.assertIn(f"PID {old_pid} -> {new_pid}", upgraded.stdout)
        self.assertTrue(lab._pid_alive(new_pid))
        self.assertEqual(os.stat(f"/proc/{new_pid}/exe").st_ino, new_inode,
                         "the new process runs the file now at the path, not the old binary")
        self.assertTrue(os.readlink(f"/proc/{old_pid}/exe").endswith("(deleted)"))
        for port in (smtp_port, web_port, imap_port):
            self.assertTrue(lab.wait_until(lambda p=port: lab.listening_pids(p) == {new_pid}, 5),
                            f"only the new process listens on {port}: "
                            f"{lab.listening_pids(port)}")
            # Every socket lives on: closing one would reset the connections in its queue.
            self.assertEqual(lab.listening_sockets(port), sockets[port])

        # New mail arrives through the new process; the IDLE session on the old one sees it.
        other = imaplib.IMAP4("127.0.0.1", imap_port, timeout=15)
        other.starttls(client_loops.unverified_context())
        other.login(USER, PASSWORD)
        other.append("INBOX", None, None, b"Subject: during upgrade\r\n\r\nnew mail\r\n")
        other.logout()
        imap.sock.settimeout(10)
        line = imap.read_line()
        while not re.match(r"^\* \d+ EXISTS", line):
            line = imap.read_line()
        self.assertGreater(int(line.split()[1]), exists, "IDLE still works after the upgrade")
        imap.send("DONE\r\n")
        self.assertRegex(until_tagged(imap, "a4")[-1], r"^a4 OK")
        imap.send("a5 NOOP\r\n")
        self.assertRegex(until_tagged(imap, "a5")[-1], r"^a5 OK")

        time.sleep(2)
        for load in loads:
            load.stopping.set()
        for load in loads:
            load.join(30)
        for load in loads:
            print(f"{load.name_prefix}: {len(load.done)} exchanges, "
                  f"{len(load.finished_after(upgraded_at))} after the upgrade")
            self.assertEqual(load.failures, [], f"{load.name_prefix}: nothing fails or is "
                             "refused across the upgrade" + proxy.describe())
            self.assertGreater(len(load.done), 3, f"{load.name_prefix} really ran")
            self.assertGreater(len(load.finished_after(upgraded_at)), 0,
                               f"{load.name_prefix} went on after the upgrade")

        # The old process keeps the IDLE session until its grace ends, then exits 0.
        self.assertIsNone(proxy.proc.poll(), "the old process still drains the IMAP session")
        self.assertEqual(proxy.proc.wait(GRACE_SECONDS + 10), 0, proxy.stderr())
        self.assertGreaterEqual(time.monotonic() - upgraded_at, GRACE_SECONDS - 1)
        # Closed, not merely quiet: a copy of it in the new process would keep it open.
        imap.read_until_closed(timeout=5)
        self.assertTrue(lab._pid_alive(new_pid))

        # Every message a client saw accepted was delivered by Postfix.
        accepted = {m for load in loads[:2] for _, m in load.done}
        def delivered():
            found = set()
            for message in self.postfix.messages():
                match = re.search(rb"^X-Lab-Marker: (\S+)", message, re.M)
                if match:
                    found.add(match.group(1).decode())
            return found
        lab.wait_until(lambda: accepted <= delivered(), 30, interval=0.2)
        self.assertEqual(accepted - delivered(), set(), "accepted but not delivered")

        # The new process stops cleanly and removes the pid file.
        self.assertTrue(stop_by_pid(new_pid))
        self.assertFalse(os.path.exists(proxy.server["pid_file"]))

    def test_failed_upgrade_leaves_the_old_process_serving(self):
        port = lab.free_port()
        # A stand-in for systemd's notification socket that sees who sends what (SO_PASSCRED).
        notify_dir = lab.make_lab_dir("tlsbridge-notify.")
        self.addCleanup(shutil.rmtree, notify_dir, True)
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(notify.close)
        notify.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        notify.bind(os.path.join(notify_dir, "notify.sock"))
        dropped_port = lab.free_port()
        proxy = self.start_proxy(
            [lab.smtp_listener(port, self.postfix.port, name="smtp"),
             lab.smtp_listener(dropped_port, self.postfix.port, name="dropped")],
            threads=2, env=dict(os.environ, NOTIFY_SOCKET=notify.getsockname()))
        old_pid = proxy.proc.pid
        good_config = proxy.config_text()

        # A broken config: the new process says why, the old one serves on.
        with open(proxy.config_path, "w") as f:
            f.write(good_config.replace('protocol = "smtp"', 'protocol = "smtq"', 1))
        failed = self.upgrade(proxy)
        self.assertEqual(failed.returncode, 1, failed.stdout + failed.stderr)
        self.assertRegex(failed.stderr, r"failed: .*smtq")
        self.assertIn(f"PID {old_pid} keeps serving", failed.stderr)
        self.assertRegex(proxy.stderr(), r"upgrade failed, still serving: .*smtq")

        # A binary that cannot be executed: the same.
        with open(proxy.config_path, "w") as f:
            f.write(good_config)
        os.chmod(proxy.binary, 0o644)
        failed = lab.run([self.build, "upgrade", "--pid-file", proxy.server["pid_file"]],
                         timeout=90)
        self.assertEqual(failed.returncode, 1, failed.stdout + failed.stderr)
        self.assertIn("cannot execute the binary (errno 13)", failed.stderr)
        os.chmod(proxy.binary, 0o755)

        self.assertEqual(self.pid_in(proxy), old_pid)
        self.assertEqual(lab.listening_pids(port), {old_pid})
        sent = lab.swaks(port)
        self.assertEqual(sent.returncode, 0, sent.stdout + proxy.describe())

        # The success path on the same port: a good config upgrades. It no longer has the
        # listener "dropped": the new process closes the socket it got for it.
        proxy.listeners = proxy.listeners[:1]
        with open(proxy.config_path, "w") as f:
            f.write(proxy.config_text())
        upgraded = self.upgrade(proxy)
        self.assertEqual(upgraded.returncode, 0, upgraded.stderr + proxy.describe())
        new_pid = self.pid_in(proxy)
        self.assertNotEqual(new_pid, old_pid)
        self.assertTrue(lab.wait_until(lambda: lab.listening_pids(port) == {new_pid}, 5))
        sent = lab.swaks(port)
        self.assertEqual(sent.returncode, 0, sent.stdout + proxy.describe())
        self.assertTrue(lab.wait_until(lambda: not lab.listening_sockets(dropped_port), 5),
                        "the dropped listener's sockets are closed, its clients refused")
        self.assertFalse(lab.port_accepts(dropped_port))
        self.assertEqual(proxy.proc.wait(GRACE_SECONDS + 10), 0, proxy.stderr())

        # systemd hears of the new main PID from the old main process, and the old one never
        # says STOPPING=1 (that would mark the service as stopping).
        from_old = []
        notify.settimeout(0.5)
        while True:
            try:
                data, ancillary, _, _ = notify.recvmsg(256, socket.CMSG_SPACE(12))
            except socket.timeout:
                break
            sender = next(struct.unpack("3i", d)[0] for level, kind, d in ancillary
                          if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS)
            if sender == old_pid:
                from_old.append(data.decode())
        self.assertEqual(from_old, ["READY=1", f"MAINPID={new_pid}"])

    def test_upgrade_after_the_privilege_drop(self):
        """The old process runs as `nobody`: so does the new one, which skips the drop it cannot
        do, and a clean exit empties the pid file it can no longer remove (root's directory)."""
        only_bind = lab.CAP_NET_BIND_SERVICE
        self.assertEqual(self.upgrade_as_nobody(), {(only_bind, only_bind)})

    def test_upgrade_keeps_cap_net_admin_for_a_transparent_back_leg(self):
        """source = "client" (proxy/back_leg_source.hpp): the old process kept CAP_NET_ADMIN
        across the drop, and hands it to the new one through the ambient set, which needs it to
        start at all (a transparent back leg on loopback: the client's address is 127.0.0.1)."""
        kept = lab.CAP_NET_BIND_SERVICE | lab.CAP_NET_ADMIN
        self.assertEqual(self.upgrade_as_nobody({"source": "client"}), {(kept, kept)})

    def upgrade_as_nobody(self, backend_extra=None):
        """Starts a proxy that drops to nobody, upgrades it, sends a message through the new
        process and stops it; answers the new process's capability sets (lab.capability_sets)."""
        nobody = pwd.getpwnam("nobody")
        port = lab.free_port()
        listeners = [lab.smtp_listener(port, self.postfix.port, name="smtp")]
        listeners[0]["backend"].update(backend_extra or {})
        # The audit file the service user will reopen, as the package's logrotate creates it.
        audit_dir = lab.make_lab_dir("tlsbridge-audit.")
        self.addCleanup(shutil.rmtree, audit_dir, True)
        audit = os.path.join(audit_dir, "audit.jsonl")
        open(audit, "a").close()
        os.chown(audit, nobody.pw_uid, -1)
        proxy = self.start_proxy(listeners, threads=2, audit_path=audit, user="nobody")
        old_pid = proxy.proc.pid
        upgraded = self.upgrade(proxy)
        self.assertEqual(upgraded.returncode, 0, upgraded.stderr + proxy.describe())
        new_pid = self.pid_in(proxy)
        with open(f"/proc/{new_pid}/status") as f:
            self.assertRegex(f.read(), rf"\nUid:\s+{nobody.pw_uid}\s+{nobody.pw_uid}\s")
        self.assertTrue(lab.wait_until(lambda: lab.listening_pids(port) == {new_pid}, 5))
        sent = lab.swaks(port)
        self.assertEqual(sent.returncode, 0, sent.stdout + proxy.describe())
        self.assertEqual(proxy.proc.wait(GRACE_SECONDS + 10), 0, proxy.stderr())
        self.assertNotEqual(new_pid, old_pid)
        capabilities = lab.capability_sets(new_pid)
        self.assertTrue(stop_by_pid(new_pid))
        with open(proxy.server["pid_file"]) as f:
            self.assertEqual(f.read(), "", "emptied: it names nobody")
        return capabilities

    def test_stale_or_missing_pid_file_is_refused_without_a_signal(self):
        directory = lab.make_lab_dir("tlsbridge-upgrade.")
        self.addCleanup(shutil.rmtree, directory, True)
        pid_path = os.path.join(directory, "stale.pid")
        with open(pid_path, "w") as f:
            f.write(f"{os.getpid()}\n")  # a live process that holds no lock: must not be signalled
        result = lab.run([self.build, "upgrade", "--pid-file", pid_path], timeout=30)
        self.assertEqual(result.returncode, 1)
        self.assertIn("is stale", result.stderr)
        result = lab.run([self.build, "upgrade", "--pid-file", pid_path + ".none"], timeout=30)
        self.assertEqual(result.returncode, 1)
        self.assertIn("names no process", result.stderr)


if __name__ == "__main__":
    unittest.main()
