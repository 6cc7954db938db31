"""Backend health and balance ([listener.backend] health_check, balance; README, "Backend health
and balance"): a real Postfix killed mid-test is marked down within fall*interval and clients go
on being served by the second address; restarted, it is up again (log line and
tlsbridge_backend_up); a backend that accepts but never greets is marked down and then costs a
client nothing; round_robin spreads connections, least_conn prefers the idle backend."""

import os
import re
import signal
import socket
import threading
import time
import unittest
import urllib.request

import lab


class FakeSmtp:
    """A byte-logging SMTP server on 127.0.0.1: greets, answers EHLO, 250 to the rest, 221 to
    QUIT. `sessions` counts connections that sent EHLO (the proxy's back legs; the health
    checker only reads the greeting and QUITs). greet=False: accepts and never says a word."""

    def __init__(self, name, greet=True):
        self.name = name
        self.greet = greet
        self.sessions = 0
        self.lock = threading.Lock()
        self.conns = []
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.stopped = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stopped:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                self.conns.append(conn)
            if self.greet:
                threading.Thread(target=self._converse, args=(conn,), daemon=True).start()

    def _converse(self, conn):
        try:
            conn.settimeout(30)
            conn.sendall(f"220 {self.name} ESMTP fake\r\n".encode())
            buffer = b""
            while True:
                data = conn.recv(4096)
                if not data:
                    return
                buffer += data
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    verb = line.strip().upper()
                    if verb.startswith(b"EHLO"):
                        with self.lock:
                            self.sessions += 1
                        conn.sendall(f"250-{self.name}\r\n250 8BITMIME\r\n".encode())
                    elif verb.startswith(b"QUIT"):
                        conn.sendall(b"221 bye\r\n")
                        return
                    else:
                        conn.sendall(b"250 ok\r\n")
        except OSError:
            pass
        finally:
            conn.close()

    def count(self):
        with self.lock:
            return self.sessions

    def stop(self):
        self.stopped = True
        self.listener.close()
        with self.lock:
            for conn in self.conns:
                try:
                    conn.close()
                except OSError:
                    pass


def greeting(port, timeout=10):
    """Connects to the proxy, reads its greeting line; answers (line, seconds, socket)."""
    started = time.monotonic()
    client = lab.SmtpClient(port, timeout=timeout)
    line = client.read_line()
    return line, time.monotonic() - started, client


def served(port):
    """One client session: greeting, EHLO, QUIT. Answers the greeting and its delay."""
    line, seconds, client = greeting(port)
    try:
        if line.startswith("220"):
            client.command("EHLO client.test")
            client.command("QUIT")
    finally:
        client.close()
    return line, seconds


class BackendHealthTest(unittest.TestCase):
    def setUp(self):
        self.certs = lab.shared_certs()

    def fake(self, name, greet=True):
        f = FakeSmtp(name, greet)
        self.addCleanup(f.stop)
        return f

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

    def settled(self, *fakes):
        """The fakes' counts once the readiness probe's session (Tlsbridge.start connects and
        leaves) is over at the backends."""
        counts = None
        for _ in range(20):
            time.sleep(0.25)
            now = tuple(f.count() for f in fakes)
            if now == counts:
                return now
            counts = now
        return counts

    def test_killed_postfix_is_marked_down_and_back_up(self):
        postfix = lab.PostfixBackend(self.certs, tls="none")
        self.addCleanup(postfix.cleanup)
        postfix.start()
        spare = self.fake("spare")
        interval, fall, rise = 1.0, 2, 2
        self.start_proxy([postfix.port, spare.port],
                         {"health_check": {"interval": "1s", "timeout": "1s", "fall": fall,
                                           "rise": rise}})
        first = f"127.0.0.1:{postfix.port}"
        line, _ = served(self.port)
        self.assertIn("tlsbridge-lab", line)  # Postfix's banner: the first address serves
        self.assertEqual(spare.count(), 0)
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
            line, seconds = served(self.port)
            self.assertTrue(line.startswith("220") and "spare" in line,
                            f"client {i} got {line!r}\n{self.proxy.describe()}")
        self.assertEqual(spare.count(), 5)

        # Started again on the same port, which its clients' connections still hold in
        # TIME_WAIT (PostfixBackend.start wants a port no socket uses; Postfix binds with
        # SO_REUSEADDR).
        restarted = postfix.postfix("start", timeout=lab.POSTFIX_START_TIMEOUT)
        self.assertEqual(restarted.returncode, 0, restarted.stdout + restarted.stderr)
        self.assertTrue(lab.wait_until(lambda: lab.port_accepts(postfix.port), 20),
                        f"restarted Postfix does not accept\n{postfix.log()}")
        self.wait_log(rf"backend {re.escape(first)} is up \(", rise * 2 * interval + 5)
        self.assertEqual(self.backend_up(first), 1)
        line, _ = served(self.port)
        self.assertIn("tlsbridge-lab", line)
        self.assertEqual(spare.count(), 5)

    def test_silent_backend_is_skipped_once_down(self):
        silent = self.fake("silent", greet=False)
        spare = self.fake("spare")
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
            line, seconds = served(self.port)
            self.assertTrue(line.startswith("220") and "spare" in line,
                            f"client {i} got {line!r}\n{self.proxy.describe()}")
            delays.append(seconds)
        print(f"\n  greeting delays after the mark: {', '.join(f'{d * 1000:.0f}ms' for d in delays)}")
        self.assertLess(max(delays), handshake_timeout / 4)

    def test_round_robin_spreads_connections(self):
        a, b = self.fake("alpha"), self.fake("beta")
        self.start_proxy([a.port, b.port], {"balance": "round_robin"})
        before = self.settled(a, b)  # the readiness probe's back leg took one turn
        for i in range(6):
            line, _ = served(self.port)
            self.assertTrue(line.startswith("220"), f"client {i} got {line!r}")
        self.assertEqual((a.count() - before[0], b.count() - before[1]), (3, 3))

    def test_least_conn_prefers_the_idle_backend(self):
        a, b = self.fake("alpha"), self.fake("beta")
        self.start_proxy([a.port, b.port], {"balance": "least_conn"})
        self.settled(a, b)
        held_line, _, held = greeting(self.port)  # stays open on alpha (ties go in order)
        self.addCleanup(held.close)
        self.assertIn("alpha", held_line)
        for i in range(3):
            line, _ = served(self.port)
            self.assertIn("beta", line, f"client {i} while alpha is busy")
        held.close()
        self.assertTrue(lab.wait_until(lambda: "alpha" in served(self.port)[0], 5),
                        "alpha never chosen again once idle")


if __name__ == "__main__":
    unittest.main()
