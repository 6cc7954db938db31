"""Service plumbing (issue #7): sd_notify for a Type=notify unit, SIGUSR1 audit-log reopen for
logrotate, refusal of a world-writable config, and `cmake --install` laying out the package."""

import os
import signal
import socket
import stat
import subprocess
import tempfile
import time
import unittest

import lab


class OperationsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.certs = lab.shared_certs()
        cls.backend = lab.PostfixBackend(cls.certs, tls="none")
        cls.addClassCleanup(cls.backend.cleanup)
        cls.backend.start()

    def make_proxy(self):
        port = lab.free_port()
        proxy = lab.Tlsbridge(
            [lab.smtp_listener(port, self.backend.port, tls="none", backend_tls="none",
                               require_tls=False)],
            [(f"{self.certs}/server.chain.pem", f"{self.certs}/server.key")])
        self.addCleanup(proxy.cleanup)
        return proxy, port

    def test_sd_notify_ready_reloading_stopping(self):
        proxy, port = self.make_proxy()
        with open(proxy.config_path, "w") as f:
            f.write(proxy.config_text())
        path = os.path.join(proxy.dir, "notify.sock")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(sock.close)
        sock.bind(path)
        sock.settimeout(15)
        env = dict(os.environ, NOTIFY_SOCKET=path)
        with open(proxy.stderr_path, "wb") as err:
            proc = subprocess.Popen([proxy.binary, "run", "--config", proxy.config_path],
                                    env=env, stdin=subprocess.DEVNULL, stdout=err, stderr=err)
        proxy.proc = proc  # cleanup stops it by PID
        self.assertEqual(sock.recv(256), b"READY=1")
        self.assertTrue(lab.port_accepts(port), "READY=1 comes after the port is bound")
        proc.send_signal(signal.SIGHUP)
        self.assertEqual(sock.recv(256), b"RELOADING=1")
        self.assertEqual(sock.recv(256), b"READY=1")
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(sock.recv(256), b"STOPPING=1")
        self.assertEqual(proc.wait(15), 0)

    def test_sigusr1_reopens_the_audit_log(self):
        proxy, port = self.make_proxy()
        proxy.start()
        self.assertEqual(lab.swaks(port, tls=False).returncode, 0)
        proxy.wait_for_conn_records(1, listener="smtp-in")
        rotated = proxy.audit_path + ".1"
        os.rename(proxy.audit_path, rotated)  # what logrotate does before postrotate
        proxy.proc.send_signal(signal.SIGUSR1)
        self.assertTrue(lab.wait_until(lambda: "audit log reopened" in proxy.stderr(), 10))
        self.assertEqual(lab.swaks(port, tls=False).returncode, 0)
        self.assertTrue(lab.wait_until(lambda: os.path.exists(proxy.audit_path), 10),
                        "a new audit file is created at the configured path")
        self.assertTrue(lab.wait_until(
            lambda: any(r.get("event") == "conn" for r in proxy.audit_records()), 10))
        with open(rotated) as f:
            self.assertTrue(f.read().endswith("\n"), "the rotated file holds whole lines")

    def test_world_writable_config_is_refused(self):
        proxy, _ = self.make_proxy()
        with open(proxy.config_path, "w") as f:
            f.write(proxy.config_text())
        ok = lab.run([proxy.binary, "check-config", "--config", proxy.config_path])
        self.assertEqual(ok.returncode, 0, ok.stderr)
        os.chmod(proxy.config_path, 0o666)
        bad = lab.run([proxy.binary, "check-config", "--config", proxy.config_path])
        self.assertEqual(bad.returncode, 1)
        self.assertIn("world-writable", bad.stderr)

    def test_cmake_install_lays_out_binary_unit_and_examples(self):
        build = os.path.dirname(proxy_binary())
        with tempfile.TemporaryDirectory() as prefix:
            result = lab.run(["cmake", "--install", build, "--prefix", prefix], timeout=60)
            self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
            for relative in ("bin/tlsbridge", "lib/systemd/system/tlsbridge.service",
                             "etc/logrotate.d/tlsbridge",
                             "share/doc/tlsbridge/examples/tlsbridge.toml",
                             "share/doc/tlsbridge/examples/outbound-relay.toml"):
                self.assertTrue(os.path.exists(os.path.join(prefix, relative)), relative)
            with open(os.path.join(prefix, "lib/systemd/system/tlsbridge.service")) as f:
                unit = f.read()
            self.assertIn("Type=notify", unit)
            self.assertIn("ExecReload=/bin/kill -HUP $MAINPID", unit)
            mode = os.stat(os.path.join(prefix, "bin/tlsbridge")).st_mode
            self.assertTrue(mode & stat.S_IXUSR)


def proxy_binary():
    return os.environ.get("TLSBRIDGE_BINARY") or lab.DEFAULT_BINARY


if __name__ == "__main__":
    unittest.main()
