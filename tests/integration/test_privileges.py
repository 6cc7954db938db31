"""Privileges that survive a certificate renewal (README, "Operate"; proxy/privileges.hpp).

After `[server] user = "nobody"` the proxy keeps CAP_NET_BIND_SERVICE alone (permitted, effective
and bounding sets, every thread) and nobody's groups, so a reload still reads a renewed key laid
out the Debian way (root:<the user's group> 0640) and may bind a new port below 1024. It runs
under `setpriv --no-new-privs`, as the unit's NoNewPrivileges=true does: keeping a capability
across setuid with PR_SET_KEEPCAPS does not need an execve, so it works there. A key only root can
read is a warning at start. Each reload's result is a log line and tlsbridge_last_reload_success."""

import os
import signal
import subprocess
import unittest

import cert_renewal
import lab

CAP_NET_BIND_SERVICE = 1 << 10
NOBODY = "65534"


def free_low_port():
    """A port below 1024 that no socket uses in any state (binding it needs the capability)."""
    in_use = lab._ports_in_use()
    for port in range(900, 600, -1):
        if port not in in_use and not lab.port_accepts(port, timeout=0.2):
            return port
    raise lab.LabError("no free port between 601 and 900")


def task_status(pid):
    """Every thread's /proc status as {tid: {field: value}}."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/status") as f:
            out[tid] = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
    return out


class PrivilegesTest(cert_renewal.RenewalTestCase):
    def make_renewable_proxy(self, key_group, key_mode, name="front"):
        """A proxy running as nobody with the watch off, so only SIGHUP reloads it."""
        cert, key, serial = self.issue(name, key_group, key_mode)
        proxy, port, admin = self.make_proxy(cert, key, 'user = "nobody"\nwatch_certs = false\n')
        return proxy, port, admin, (cert, key, serial)

    def start_without_new_privileges(self, proxy):
        """`setpriv --no-new-privs tlsbridge run`: what NoNewPrivileges=true does to the unit."""
        with open(proxy.config_path, "w") as f:
            f.write(proxy.config_text())
        with open(proxy.stderr_path, "wb") as err:
            proxy.proc = subprocess.Popen(
                ["setpriv", "--no-new-privs", proxy.binary, "run", "--config", proxy.config_path],
                stdin=subprocess.DEVNULL, stdout=err, stderr=err, cwd=proxy.dir)
        proxy._wait_ready()

    def reload(self, proxy, admin, reloads_before):
        os.kill(proxy.proc.pid, signal.SIGHUP)
        done = lab.wait_until(lambda: reloads(admin) > reloads_before, 10, interval=0.1)
        self.assertTrue(done, "the reload's result is counted" + proxy.describe())

    def test_keeps_only_net_bind_service_and_reloads_a_renewed_key_and_a_low_port(self):
        proxy, port, admin, (cert, key, serial) = self.make_renewable_proxy("nogroup", 0o640)
        self.start_without_new_privileges(proxy)

        threads = task_status(proxy.proc.pid)
        self.assertGreater(len(threads), 1, "worker threads run")
        for tid, status in threads.items():
            where = f"thread {tid}: {status}"
            self.assertEqual(status["NoNewPrivs"], "1", where)
            self.assertEqual(set(status["Uid"].split()), {NOBODY}, where)
            self.assertEqual(set(status["Gid"].split()), {NOBODY}, where)
            self.assertEqual(status["Groups"].split(), [NOBODY], where)
            self.assertEqual(int(status["CapPrm"], 16), CAP_NET_BIND_SERVICE, where)
            self.assertEqual(int(status["CapEff"], 16), CAP_NET_BIND_SERVICE, where)
            self.assertEqual(int(status["CapInh"], 16), 0, where)
            self.assertEqual(int(status["CapAmb"], 16), 0, where)
            self.assertEqual(int(status["CapBnd"], 16), CAP_NET_BIND_SERVICE, where)
        self.assertEqual(cert_renewal.served_serial(port), serial)
        self.assertEqual(cert_renewal.metric(admin, "tlsbridge_last_reload_success"), 1,
                         "1 at start")

        # Renewal: a new certificate and key (new serial), laid out root:nogroup 0640 again.
        new_cert, new_key, new_serial = self.issue("renewed")
        os.rename(new_cert, cert)
        os.rename(new_key, key)
        self.reload(proxy, admin, 0)
        self.assertEqual(cert_renewal.served_serial(port), new_serial,
                         "the renewed certificate is served after the drop" + proxy.describe())
        self.assertEqual(cert_renewal.metric(admin, "tlsbridge_last_reload_success"), 1,
                         proxy.describe())
        done = [line for line in proxy.stderr().splitlines() if "reload done (SIGHUP)" in line]
        self.assertEqual(len(done), 1, proxy.describe())
        self.assertIn("1 listener(s); changed", done[0])
        self.assertIn(cert, done[0], "the line says what changed")
        self.assertIn(key, done[0])

        # A listener below 1024 added by a reload binds and serves.
        low = free_low_port()
        proxy.listeners = proxy.listeners + [
            cert_renewal.tls_listener(low, self.backend.port, name="low")]
        with open(proxy.config_path, "w") as f:
            f.write(proxy.config_text())
        self.reload(proxy, admin, 1)
        self.assertEqual(cert_renewal.metric(admin, "tlsbridge_last_reload_success"), 1,
                         proxy.describe())
        self.assertIn("added low", proxy.stderr())
        self.assertEqual(cert_renewal.echo_through(low, self.certs), b"ping\n")
        self.assertEqual(cert_renewal.served_serial(low), new_serial)

    def test_a_rejected_reload_sets_the_gauge_to_zero_and_says_why(self):
        proxy, port, admin, (_, _, serial) = self.make_renewable_proxy("nogroup", 0o640)
        proxy.start()
        with open(proxy.config_path, "w") as f:
            f.write(proxy.config_text().replace('protocol = "tls"', 'protocol = "tlz"', 1))
        self.reload(proxy, admin, 0)
        self.assertEqual(cert_renewal.metric(admin, "tlsbridge_last_reload_success"), 0)
        failure = [line for line in proxy.stderr().splitlines() if "reload rejected" in line]
        self.assertEqual(len(failure), 1, "one line for the result" + proxy.describe())
        self.assertIn("(SIGHUP)", failure[0])
        self.assertIn("protocol", failure[0], "the line says why")
        self.assertEqual(cert_renewal.served_serial(port), serial, "the running config stays")
        # The same config fixed: success again, on the same proxy.
        with open(proxy.config_path, "w") as f:
            f.write(proxy.config_text())
        self.reload(proxy, admin, 1)
        self.assertEqual(cert_renewal.metric(admin, "tlsbridge_last_reload_success"), 1)
        self.assertGreater(cert_renewal.metric(admin, "tlsbridge_last_reload_timestamp_seconds"),
                           1.7e9)

    def test_a_key_only_root_can_read_is_a_warning_at_start(self):
        warning = "reload after the privilege drop cannot read it"
        proxy, port, _, (_, key, serial) = self.make_renewable_proxy("root", 0o600)
        proxy.start()
        lines = [line for line in proxy.stderr().splitlines() if warning in line]
        self.assertEqual(len(lines), 1, proxy.describe())
        self.assertIn(key, lines[0])
        self.assertIn("warning", lines[0])
        self.assertEqual(cert_renewal.served_serial(port), serial, "it starts all the same")
        # The Debian layout (root:<the user's group> 0640) is not warned about.
        good, _, _, _ = self.make_renewable_proxy("nogroup", 0o640, name="debian")
        good.start()
        self.assertNotIn(warning, good.stderr())


def reloads(admin):
    return sum(cert_renewal.metric(admin, f'tlsbridge_config_reloads_total{{result="{r}"}}') or 0
               for r in ("success", "failure"))


if __name__ == "__main__":
    unittest.main()
