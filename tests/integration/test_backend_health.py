"""Backend health and balance ([listener.backend] health_check, balance; README, "Backend health
and balance"): a real Postfix killed mid-test is marked down within fall*interval and clients go
on being served by the second address; restarted, it is up again (log line and
tlsbridge_backend_up); a backend that accepts but never greets is marked down and then costs a
client nothing; round_robin spreads connections, least_conn prefers the idle backend; IMAP and POP3 checks
read their protocol's greeting (Dovecot passes, an SMTP server fails); an HTTPS check with
health_path takes an IIS stand-in whose OWA logon page answers 503 down, and up again at 200,
clients going to the other address meanwhile; a reload that removes an address or a listener
removes its tlsbridge_backend_up gauge."""

import http.client
import os
import re
import signal
import socket
import ssl
import threading
import time
import unittest
import urllib.request

import lab
import legacy_iis
import smtp_shield_lab


class SilentBackend:
    """Accepts TCP connections on 127.0.0.1 and never sends a byte (a hung legacy host)."""

    def __init__(self):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.conns = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        for _ in range(10000):
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.conns.append(conn)

    def stop(self):
        self.listener.close()
        for conn in self.conns:
            conn.close()
        self.thread.join(5)


def greeting(port, timeout=10):
    """Connects to the proxy, reads its greeting line; answers (line, seconds, client)."""
    started = time.monotonic()
    client = lab.SmtpClient(port, timeout=timeout)
    line = client.read_line()
    return line, time.monotonic() - started, client


def served(port, name):
    """One client session: greeting, EHLO <name>, QUIT. Answers the greeting and its delay."""
    line, seconds, client = greeting(port)
    try:
        if line.startswith("220"):
            client.command(f"EHLO {name}")
            client.command("QUIT")
    finally:
        client.close()
    return line, seconds


def clients_of(backend):
    """The EHLO names a ByteLoggingSmtpBackend was greeted with by relayed clients (the proxy's
    own EHLO names the proxy; the health checker sends none)."""
    names = []
    for index in range(backend.connections):
        for command in backend.commands(index):
            words = command.split()
            if len(words) == 2 and words[0].upper() == b"EHLO" and words[1].startswith(b"c-"):
                names.append(words[1].decode())
    return names


class BackendHealthTest(unittest.TestCase):
    def setUp(self):
        self.certs = lab.shared_certs()

    def logging_backend(self):
        backend = smtp_shield_lab.ByteLoggingSmtpBackend().start()
        self.addCleanup(backend.cleanup)
        return backend

    def start_proxy(self, addresses, backend_extra, timeouts=None):
        self.port = lab.free_port()
        self.admin = lab.free_port()
        listener = lab.smtp_listener(self.port, 0, backend_tls="none",
                                     timeouts=timeouts or {"handshake": "5s", "connect": "5s"})
        listener["backend"] = {"address": [f"127.0.0.1:{p}" for p in addresses], "tls": "none",
                               **backend_extra}
        proxy = lab.Tlsbridge([listener], [self.certs_pair()], admin=f"127.0.0.1:{self.admin}")
        self.addCleanup(proxy.cleanup)
        proxy.start()
        self.proxy = proxy
        return proxy

    def certs_pair(self):
        return (os.path.join(self.certs, "server.chain.pem"), os.path.join(self.certs, "server.key"))

    def backend_up(self, address):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin}/metrics", timeout=10) as r:
            text = r.read().decode()
        m = re.search(r'^tlsbridge_backend_up\{[^}]*address="' + re.escape(address) +
                      r'"[^}]*\} (\S+)$', text, re.M)
        return None if m is None else float(m.group(1))

    def wait_log(self, pattern, timeout):
        ok = lab.wait_until(lambda: re.search(pattern, self.proxy.stderr()), timeout)
        self.assertTrue(ok, f"no log line /{pattern}/ within {timeout}s\n{self.proxy.describe()}")

    def test_killed_postfix_is_marked_down_and_back_up(self):
        postfix = lab.PostfixBackend(self.certs, tls="none")
        self.addCleanup(postfix.cleanup)
        postfix.start()
        spare = self.logging_backend()
        interval, fall, rise = 1.0, 2, 2
        self.start_proxy([postfix.port, spare.port],
                         {"health_check": {"interval": "1s", "timeout": "1s", "fall": fall,
                                           "rise": rise}})
        first = f"127.0.0.1:{postfix.port}"
        line, _ = served(self.port, "c-before")
        self.assertIn("tlsbridge-lab", line)  # Postfix's banner: the first address serves
        self.assertEqual(clients_of(spare), [])
        self.assertEqual(self.backend_up(first), 1)

        pid = postfix.master_pid()
        self.assertIsNotNone(pid)
        os.kill(pid, signal.SIGKILL)
        self.assertTrue(lab.wait_until(lambda: not lab.port_accepts(postfix.port), 15),
                        "Postfix still accepts after its master was killed")
        killed = time.monotonic()
        # Checks run every interval, each bounded by timeout: fall failures take at most
        # fall * (interval + timeout); a little slack for a loaded machine.
        self.wait_log(rf"backend {re.escape(first)} is down \(", fall * 2 * interval + 3)
        marked = time.monotonic() - killed
        print(f"\n  marked down {marked:.2f}s after the kill (fall={fall}, interval={interval}s)")
        self.assertEqual(self.backend_up(first), 0)
        for i in range(5):
            line, _ = served(self.port, f"c-down-{i}")
            self.assertTrue(line.startswith("220 bytelog.test"),
                            f"client {i} got {line!r}\n{self.proxy.describe()}")
        self.assertEqual(clients_of(spare), [f"c-down-{i}" for i in range(5)])

        # Started again on the same port, which its clients' connections still hold in
        # TIME_WAIT (PostfixBackend.start wants a port no socket uses; Postfix binds with
        # SO_REUSEADDR).
        restarted = postfix.postfix("start", timeout=lab.POSTFIX_START_TIMEOUT)
        self.assertEqual(restarted.returncode, 0, restarted.stdout + restarted.stderr)
        self.assertTrue(lab.wait_until(lambda: lab.port_accepts(postfix.port), 20),
                        f"restarted Postfix does not accept\n{postfix.log()}")
        self.wait_log(rf"backend {re.escape(first)} is up \(", rise * 2 * interval + 5)
        self.assertEqual(self.backend_up(first), 1)
        line, _ = served(self.port, "c-after")
        self.assertIn("tlsbridge-lab", line)
        self.assertEqual(len(clients_of(spare)), 5)

    def test_silent_backend_is_skipped_once_down(self):
        silent = SilentBackend()
        self.addCleanup(silent.stop)
        spare = self.logging_backend()
        handshake_timeout = 4.0
        self.start_proxy([silent.port, spare.port],
                         {"health_check": {"interval": "1s", "timeout": "1s", "fall": 1,
                                           "rise": 2}},
                         timeouts={"handshake": "4s", "connect": "4s"})
        silent_address = f"127.0.0.1:{silent.port}"
        self.wait_log(rf"backend {re.escape(silent_address)} is down \(check timed out", 6)
        self.assertEqual(self.backend_up(silent_address), 0)
        delays = []
        for i in range(5):
            line, seconds = served(self.port, f"c-{i}")
            self.assertTrue(line.startswith("220 bytelog.test"),
                            f"client {i} got {line!r}\n{self.proxy.describe()}")
            delays.append(seconds)
        print(f"\n  greeting delays after the mark: {', '.join(f'{d * 1000:.0f}ms' for d in delays)}")
        self.assertLess(max(delays), handshake_timeout / 4)
        self.assertEqual(len(clients_of(spare)), 5)

    def test_round_robin_spreads_connections(self):
        a, b = self.logging_backend(), self.logging_backend()
        self.start_proxy([a.port, b.port], {"balance": "round_robin"})
        for i in range(6):
            line, _ = served(self.port, f"c-{i}")
            self.assertTrue(line.startswith("220"), f"client {i} got {line!r}")
        # Alternating (the readiness probe of Tlsbridge.start may have taken the first turn).
        self.assertEqual(sorted([clients_of(a), clients_of(b)]),
                         [["c-0", "c-2", "c-4"], ["c-1", "c-3", "c-5"]])

    def test_least_conn_prefers_the_idle_backend(self):
        a, b = self.logging_backend(), self.logging_backend()
        self.start_proxy([a.port, b.port], {"balance": "least_conn"})
        time.sleep(0.5)  # the readiness probe's session is over
        _, _, held = greeting(self.port)
        self.addCleanup(held.close)
        held.command("EHLO c-held")  # stays open on one backend
        busy, idle = (a, b) if "c-held" in clients_of(a) else (b, a)
        self.assertIn("c-held", clients_of(busy))
        before = len(self.proxy.conn_records())
        for i in range(3):
            served(self.port, f"c-{i}")
            # The session's record is written after both legs closed: only then is its back leg
            # no longer counted active, and the next choice compares 1 (held) with 0 again.
            self.proxy.wait_for_conn_records(before + i + 1)
        self.assertEqual(clients_of(idle), ["c-0", "c-1", "c-2"])
        self.assertEqual(clients_of(busy), ["c-held"])
        held.command("QUIT")
        held.close()
        self.assertTrue(lab.wait_until(
            lambda: served(self.port, "c-again") and "c-again" in clients_of(busy), 5),
            "the backend that was busy is never chosen again once idle")

    def https_get(self, path):
        """GET path through the HTTPS listener; answers (status, body)."""
        ctx = ssl.create_default_context(cafile=os.path.join(self.certs, "ca.crt"))
        conn = http.client.HTTPSConnection("localhost", self.port, timeout=15, context=ctx)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def test_https_health_path_answering_503_takes_the_address_down(self):
        first, second = (legacy_iis.LegacyIis(self.certs).start() for _ in range(2))
        for iis in (first, second):
            self.addCleanup(iis.stop)
        self.port = lab.free_port()
        self.admin = lab.free_port()
        listener = {
            "name": "https-in", "protocol": "https", "listen": f"127.0.0.1:{self.port}",
            "tls": "implicit", "timeouts": {"handshake": "5s", "connect": "2s"},
            "backend": {"address": [f"127.0.0.1:{first.port}", f"127.0.0.1:{second.port}"],
                        "tls": "implicit", "tls_profile": "legacy", "verify": "none",
                        "health_check": {"interval": "1s", "timeout": "2s", "fall": 2,
                                         "rise": 2},
                        "health_path": "/owa/auth/logon.aspx"}}
        self.proxy = lab.Tlsbridge([listener], [self.certs_pair()],
                                   admin=f"127.0.0.1:{self.admin}")
        self.addCleanup(self.proxy.cleanup)
        self.proxy.start()
        address = f"127.0.0.1:{first.port}"
        self.assertTrue(lab.wait_until(lambda: first.requests_for("/owa/auth/logon.aspx"), 5),
                        "the check never asked for health_path\n" + self.proxy.describe())

        def served_by(tag):
            status, body = self.https_get(f"/EWS/{tag}")
            self.assertEqual(status, 200, body)
            return [name for name, iis in (("first", first), ("second", second))
                    if iis.requests_for(f"/EWS/{tag}")]

        self.assertEqual(served_by("before"), ["first"])
        self.assertEqual(self.backend_up(address), 1)

        first.set_logon_status(503)  # OWA stopped; IIS itself still completes handshakes
        self.wait_log(rf"\[warning\] listener https-in: backend {re.escape(address)} is down "
                      r"\(check failed: GET /owa/auth/logon\.aspx: 503 Service Unavailable\)",
                      2 * 3 + 3)
        self.assertEqual(self.backend_up(address), 0)
        self.assertEqual([served_by(f"down-{i}") for i in range(3)], [["second"]] * 3)

        first.set_logon_status(200)
        self.wait_log(rf"listener https-in: backend {re.escape(address)} is up \(check passed",
                      2 * 3 + 3)
        self.assertEqual(self.backend_up(address), 1)
        self.assertEqual(served_by("after"), ["first"])

    def test_reload_removes_the_gauges_of_removed_addresses_and_listeners(self):
        a, b, c = self.logging_backend(), self.logging_backend(), self.logging_backend()
        check = {"health_check": {"interval": "1s", "timeout": "1s"}}
        self.start_proxy([a.port, b.port], check)
        other_port = lab.free_port()
        other = lab.smtp_listener(other_port, 0, name="other-in", backend_tls="none")
        other["backend"] = {"address": [f"127.0.0.1:{c.port}"], "tls": "none", **check}
        self.proxy.listeners.append(other)
        self.reload_proxy()
        for port in (a.port, b.port, c.port):
            self.assertEqual(self.backend_up(f"127.0.0.1:{port}"), 1)

        # One address of smtp-in and the whole of other-in go; a stays.
        self.proxy.listeners[0]["backend"]["address"] = [f"127.0.0.1:{a.port}"]
        del self.proxy.listeners[1]
        self.reload_proxy()
        self.assertEqual(self.backend_up(f"127.0.0.1:{a.port}"), 1)
        for port in (b.port, c.port):
            self.assertIsNone(self.backend_up(f"127.0.0.1:{port}"),
                              f"the gauge of 127.0.0.1:{port} outlived its reload")
        time.sleep(2.5)  # the retired checkers' last results bring no gauge back
        self.assertIsNone(self.backend_up(f"127.0.0.1:{b.port}"))

    def reload_proxy(self):
        def done():
            with open(self.proxy.stderr_path, "rb") as f:
                return f.read().count(b"reload done (SIGHUP)")
        done_before = done()
        with open(self.proxy.config_path, "w") as f:
            f.write(self.proxy.config_text())
        os.kill(self.proxy.proc.pid, signal.SIGHUP)
        self.assertTrue(lab.wait_until(lambda: done() > done_before, 10),
                        "reload not done\n" + self.proxy.describe())

    def test_imap_and_pop3_checks_read_the_protocols_greeting(self):
        dovecot = lab.DovecotBackend(self.certs)
        self.addCleanup(dovecot.cleanup)
        dovecot.start()
        smtp = self.logging_backend()  # answers, but with an SMTP greeting
        ports = {"imap": lab.free_port(), "pop3": lab.free_port()}
        check = {"health_check": {"interval": "1s", "timeout": "1s", "fall": 1, "rise": 1}}
        listeners = [
            lab.smtp_listener(ports[name], 0, name=f"{name}-in", protocol=name,
                              backend={"address": [f"127.0.0.1:{smtp.port}",
                                                   f"127.0.0.1:{backend_port}"],
                                       "tls": "starttls", "tls_profile": "legacy",
                                       "verify": "none", **check})
            for name, backend_port in (("imap", dovecot.imap_port), ("pop3", dovecot.pop3_port))]
        self.admin = lab.free_port()
        self.proxy = lab.Tlsbridge(listeners, [self.certs_pair()],
                                   admin=f"127.0.0.1:{self.admin}")
        self.addCleanup(self.proxy.cleanup)
        self.proxy.start()
        wrong = re.escape(f"127.0.0.1:{smtp.port}")
        self.wait_log(rf"listener imap-in: backend {wrong} is down \(check failed: greeting 220 "
                      r"bytelog\.test ESMTP tolerant is not \* OK\)", 6)
        self.wait_log(rf"listener pop3-in: backend {wrong} is down \(check failed: greeting 220 "
                      r"bytelog\.test ESMTP tolerant is not \+OK\)", 6)
        time.sleep(2.5)  # two more rounds of checks: Dovecot's greetings pass
        self.assertNotRegex(self.proxy.stderr(), rf"backend 127\.0\.0\.1:({dovecot.imap_port}|"
                            rf"{dovecot.pop3_port}) is down")
        self.assertEqual(self.backend_up(f"127.0.0.1:{dovecot.imap_port}"), 1)
        self.assertEqual(self.backend_up(f"127.0.0.1:{smtp.port}"), 0)
        for name, expect in (("imap", "* OK"), ("pop3", "+OK")):
            line, seconds, client = greeting(ports[name])
            client.close()
            self.assertTrue(line.startswith(expect), f"{name}: {line!r}")


if __name__ == "__main__":
    unittest.main()
