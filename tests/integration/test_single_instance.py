"""One instance per configuration (README, "Operate: one instance"): `[server] pid_file` or
`run --pid-file` is locked, against a real Postfix.

* A second `run` with the same pid file exits 1 naming the running PID, binds nothing, and the
  first keeps serving on the same port (swaks through it).
* A stale pid file (a PID nobody runs, no lock) is taken over; a clean exit removes it."""

import os
import unittest

import lab


def unused_pid():
    """A PID no process has right now (the highest ones are rarely handed out)."""
    with open("/proc/sys/kernel/pid_max") as f:
        pid = int(f.read()) - 1
    while os.path.exists(f"/proc/{pid}"):
        pid -= 1
    return pid


class SingleInstanceTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.certs = lab.shared_certs()
        cls.backend = lab.start_for_class(cls, lab.PostfixBackend(cls.certs, tls="none"))

    def proxy(self, port, **server):
        proxy = lab.Tlsbridge(
            [lab.smtp_listener(port, self.backend.port, tls="none", backend_tls="none",
                               require_tls=False)],
            [lab.server_pair(self.certs)], server=server)
        self.addCleanup(proxy.cleanup)
        return proxy

    def test_second_run_is_refused_naming_the_running_pid_while_the_first_serves(self):
        port = lab.free_port()
        first = self.proxy(port)
        pid_path = os.path.join(first.dir, "run", "tlsbridge.pid")
        os.makedirs(os.path.dirname(pid_path))
        first.server["pid_file"] = pid_path
        first.start()
        with open(pid_path) as f:
            self.assertEqual(f.read(), f"{first.proc.pid}\n", "the pid file holds the PID")

        # The same config again, and a config without the key but `--pid-file` on the command
        # line: both refused before anything is bound (with SO_REUSEPORT a bind would succeed).
        no_key = os.path.join(first.dir, "no-key.toml")
        with open(no_key, "w") as f:
            f.write(first.config_text().replace(f'pid_file = "{pid_path}"\n', ""))
        for argv in (["run", "--config", first.config_path],
                     ["run", "--config", no_key, "--pid-file", pid_path]):
            second = lab.run([first.binary, *argv], timeout=20)
            self.assertEqual(second.returncode, 1, second.stderr)
            self.assertIn(f"already running as PID {first.proc.pid} (pid file {pid_path})",
                          second.stderr)
        self.assertEqual(lab.listening_pids(port), {first.proc.pid}, "the second bound nothing")

        # The first one serves on, on the same port.
        result = lab.swaks(port, tls=False)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr + first.describe())
        self.assertIsNone(first.proc.poll())
        with open(pid_path) as f:
            self.assertEqual(f.read(), f"{first.proc.pid}\n")

        self.assertEqual(first.stop(), 0, first.stderr())
        self.assertFalse(os.path.exists(pid_path), "a clean exit removes the pid file")

    def test_stale_pid_file_is_taken_over(self):
        port = lab.free_port()
        proxy = self.proxy(port)
        pid_path = os.path.join(proxy.dir, "tlsbridge.pid")
        stale = unused_pid()
        with open(pid_path, "w") as f:
            f.write(f"{stale}\n")
        proxy.server["pid_file"] = pid_path
        proxy.start()
        with open(pid_path) as f:
            self.assertEqual(f.read(), f"{proxy.proc.pid}\n")
        self.assertIn(f"PID {stale} no longer holds it, taken over", proxy.stderr())
        result = lab.swaks(port, tls=False)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertEqual(proxy.stop(), 0, proxy.stderr())
        self.assertFalse(os.path.exists(pid_path))


if __name__ == "__main__":
    unittest.main()
