"""Files the proxy writes (issue 12 item 7; SECURITY.md, "What it trusts": "The audit file is opened
with O_NOFOLLOW and never through a symlink"). The proxy opens the audit file and `[log] file` as
root, before the privilege drop; at 0646f06 it followed a symlink planted in their directory, so
whoever could write there (the service user, after a compromise) could make root append to any file
at the next start. Each refusal sits next to the normal path working, and `check-config` reports the
same problem. Runs as root, as CI does (the privilege drop and chown need it)."""

import os
import pwd
import signal
import socket
import stat
import subprocess
import time
import unittest

import lab


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


class OutputFileTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise unittest.SkipTest("needs root: the proxy must open its files as root to matter")
        cls.certs = lab.shared_certs()
        cls.backend = lab.start_for_class(cls, lab.PostfixBackend(cls.certs, tls="none"))

    def make_proxy(self, server_extra="", log_file=None):
        port = lab.free_port()
        proxy = lab.Tlsbridge(
            [lab.smtp_listener(port, self.backend.port, tls="none", backend_tls="none",
                               require_tls=False)],
            [lab.server_pair(self.certs)])
        self.addCleanup(proxy.cleanup)
        original = proxy.config_text

        def config_text():
            text = original()
            if server_extra:
                text = text.replace("[server]\n", "[server]\n" + server_extra + "\n", 1)
            if log_file:
                text = text.replace("[log]\n", f'[log]\nfile = "{log_file}"\n', 1)
            return text
        proxy.config_text = config_text
        return proxy, port

    def victim(self, content=b"precious: must never be appended to\n"):
        """A file outside the proxy's directory that a planted symlink points at."""
        directory = lab.make_lab_dir("tlsbridge-victim.")
        self.addCleanup(lambda: subprocess.run(["rm", "-rf", directory], check=False))
        path = os.path.join(directory, "target")
        with open(path, "wb") as f:
            f.write(content)
        os.chmod(path, 0o600)
        return path, content

    def check_config(self, proxy):
        with open(proxy.config_path, "w") as f:
            f.write(proxy.config_text())
        return subprocess.run([proxy.binary, "check-config", "--config", proxy.config_path],
                              capture_output=True, text=True, timeout=30)

    def assert_refused_at_start(self, proxy, *needles):
        result = self.check_config(proxy)
        self.assertEqual(result.returncode, 1, "check-config must refuse it: " + result.stdout +
                         result.stderr)
        for needle in needles:
            self.assertIn(needle, result.stderr)
        with self.assertRaises(lab.LabError, msg="run must refuse to start"):
            proxy.start()
        self.assertTrue(lab.wait_until(lambda: proxy.proc.poll() is not None, 10))
        self.assertEqual(proxy.proc.returncode, 1, proxy.stderr())
        for needle in needles:
            self.assertIn(needle, proxy.stderr())

    def assert_serves(self, proxy, port):
        self.assertEqual(lab.swaks(port, tls=False).returncode, 0, proxy.describe())
        self.assertTrue(proxy.wait_for_conn_records(1, where=lambda r: r["outcome"] == "ok"),
                        proxy.describe())

    def test_normal_path_is_created_0640_and_written(self):
        proxy, port = self.make_proxy()
        old_umask = os.umask(0o022)
        try:
            proxy.start()
        finally:
            os.umask(old_umask)
        self.assert_serves(proxy, port)
        mode = stat.S_IMODE(os.stat(proxy.audit_path).st_mode)
        self.assertEqual(mode, 0o640, f"audit file mode {mode:o}: records are not for everyone")
        self.assertEqual(self.check_config(proxy).returncode, 0)

    def test_planted_symlink_is_refused_and_its_target_untouched(self):
        for dangling in (False, True):
            with self.subTest(dangling=dangling):
                target, content = self.victim()
                if dangling:
                    os.unlink(target)
                proxy, _ = self.make_proxy()
                os.symlink(target, proxy.audit_path)
                self.assert_refused_at_start(proxy, "symbolic link", proxy.audit_path)
                if dangling:
                    self.assertFalse(os.path.lexists(target), "no file created through it")
                else:
                    self.assertEqual(read_bytes(target), content, "nothing written through it")
                self.assertTrue(os.path.islink(proxy.audit_path))

    def test_hard_link_is_refused(self):
        target, content = self.victim()
        proxy, _ = self.make_proxy()
        os.link(target, proxy.audit_path)
        self.assert_refused_at_start(proxy, "hard links")
        self.assertEqual(read_bytes(target), content)

    def test_directory_writable_by_others_is_refused_unless_sticky(self):
        for mode, refused in ((0o777, True), (0o775, True), (0o1777, False)):
            with self.subTest(mode=oct(mode)):
                proxy, port = self.make_proxy()
                logs = os.path.join(proxy.dir, "logs")
                os.mkdir(logs)
                os.chmod(logs, mode)
                proxy.audit_path = os.path.join(logs, "audit.jsonl")
                if refused:
                    self.assert_refused_at_start(proxy, "writable by group or others", logs)
                    self.assertFalse(os.path.lexists(proxy.audit_path))
                else:  # as /tmp: others cannot rename or unlink our file
                    proxy.start()
                    self.assert_serves(proxy, port)

    def test_directory_owned_by_another_user_is_refused(self):
        proxy, _ = self.make_proxy()
        logs = os.path.join(proxy.dir, "logs")
        os.mkdir(logs, 0o755)
        os.chown(logs, pwd.getpwnam("daemon").pw_uid, 0)
        proxy.audit_path = os.path.join(logs, "audit.jsonl")
        self.assert_refused_at_start(proxy, "owned by uid", logs)

    def test_log_file_symlink_is_refused(self):
        target, content = self.victim()
        log_dir = lab.make_lab_dir("tlsbridge-log.")
        self.addCleanup(lambda: subprocess.run(["rm", "-rf", log_dir], check=False))
        log_file = os.path.join(log_dir, "tlsbridge.log")
        os.symlink(target, log_file)
        proxy, _ = self.make_proxy(log_file=log_file)
        self.assert_refused_at_start(proxy, "log.file", "symbolic link")
        self.assertEqual(read_bytes(target), content)
        # The normal path: the log is written to a plain file there.
        os.unlink(log_file)
        proxy2, port = self.make_proxy(log_file=log_file)
        proxy2.start()
        self.assert_serves(proxy2, port)
        self.assertTrue(lab.wait_until(lambda: b"listener" in read_bytes(log_file), 10))
        self.assertEqual(stat.S_IMODE(os.lstat(log_file).st_mode), 0o640)

    def test_sigusr1_reopens_the_log_file_with_the_same_checks(self):
        """README, "Operate": [log] file is reopened on SIGUSR1 (logrotate), never through a
        symlink."""
        log_dir = lab.make_lab_dir("tlsbridge-log.")
        self.addCleanup(lambda: subprocess.run(["rm", "-rf", log_dir], check=False))
        log_file = os.path.join(log_dir, "tlsbridge.log")
        proxy, port = self.make_proxy(log_file=log_file)
        proxy.start()
        os.rename(log_file, log_file + ".1")  # what logrotate does
        proxy.proc.send_signal(signal.SIGUSR1)
        self.assertTrue(lab.wait_until(lambda: os.path.exists(log_file) and
                                       b"log file reopened" in read_bytes(log_file), 10),
                        "the new log file gets the lines after SIGUSR1")
        self.assertEqual(stat.S_IMODE(os.lstat(log_file).st_mode), 0o640)
        # A symlink planted in its place is not followed; the current file stays in use.
        target, content = self.victim()
        os.rename(log_file, log_file + ".2")
        os.symlink(target, log_file)
        proxy.proc.send_signal(signal.SIGUSR1)
        self.assertTrue(lab.wait_until(
            lambda: b"log file not reopened" in read_bytes(log_file + ".2"), 10))
        self.assert_serves(proxy, port)
        self.assertEqual(read_bytes(target), content)

    def test_service_user_cannot_aim_root_at_a_file(self):
        """The attack in full: the directory belongs to the service user (as /var/log/tlsbridge
        does), the service user plants a symlink after the privilege drop; neither SIGHUP,
        SIGUSR1 nor the next start as root writes through it."""
        nobody = pwd.getpwnam("nobody")
        proxy, port = self.make_proxy(server_extra='user = "nobody"')
        logs = os.path.join(proxy.dir, "logs")
        os.mkdir(logs, 0o755)
        os.chown(logs, nobody.pw_uid, nobody.pw_gid)
        proxy.audit_path = os.path.join(logs, "audit.jsonl")
        proxy.start()
        self.assert_serves(proxy, port)
        target, content = self.victim()
        # What the service user can do in its own directory.
        os.rename(proxy.audit_path, proxy.audit_path + ".1")
        os.symlink(target, proxy.audit_path)
        os.lchown(proxy.audit_path, nobody.pw_uid, nobody.pw_gid)

        proxy.proc.send_signal(signal.SIGHUP)
        self.assertTrue(lab.wait_until(lambda: "reload rejected" in proxy.stderr(), 10),
                        proxy.stderr())
        self.assertIn("symbolic link", proxy.stderr())
        proxy.proc.send_signal(signal.SIGUSR1)
        self.assertTrue(lab.wait_until(lambda: "audit log not reopened" in proxy.stderr(), 10),
                        proxy.stderr())
        self.assertEqual(lab.swaks(port, tls=False).returncode, 0, "the old config still serves")
        self.assertEqual(read_bytes(target), content)

        proxy.stop()
        # The next start runs as root until the drop.
        with self.assertRaises(lab.LabError):
            proxy.start()
        self.assertTrue(lab.wait_until(lambda: proxy.proc.poll() is not None, 10))
        self.assertIn("symbolic link", proxy.stderr())
        self.assertEqual(read_bytes(target), content, "root appended to the symlink's target")


if __name__ == "__main__":
    unittest.main()
