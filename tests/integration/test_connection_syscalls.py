"""What one relayed TLS connection costs in system calls (BENCHMARKS.md, "Handshakes: the kernel
side"): the client's address comes from accept() itself (no getpeername), the back leg's connect
is finished by one wait and SO_ERROR (no extra poll), and each socket is made non-blocking by
one ioctl. strace, attached to the running proxy, counts the calls over 20 connections through a
`protocol = "tls"` listener to a plain echo backend.

The same connections prove what the calls were for: each `conn` record names the client's own
address and port, and the back leg's local address. A backend port with nothing listening is a
`backend_unavailable` record whose reason says the connection was refused; the same listener
relays again once a backend listens there."""

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
import unittest

import lab

CONNECTIONS = 20


class EchoBackend:
    """A plain TCP echo server on 127.0.0.1:port, one thread per connection, stopped by stop()."""

    def __init__(self, port):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.stopping = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        deadline = time.monotonic() + 300
        while not self.stopping and time.monotonic() < deadline:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    @staticmethod
    def _echo(conn):
        conn.settimeout(10)
        with conn:
            for _ in range(1000):
                try:
                    data = conn.recv(4096)
                except OSError:
                    return
                if not data:
                    return
                conn.sendall(data)

    def stop(self):
        self.stopping = True
        self.thread.join(5)
        self.sock.close()


class ConnectionSyscallsTest(unittest.TestCase):
    def setUp(self):
        certs = lab.shared_certs()
        self.port, self.backend_port = lab.free_port(), lab.free_port()
        self.proxy = lab.Tlsbridge(
            [{"name": "relay", "protocol": "tls", "listen": f"127.0.0.1:{self.port}",
              "tls": "implicit",
              "backend": {"address": [f"127.0.0.1:{self.backend_port}"], "tls": "none"}}],
            [lab.server_pair(certs)])
        self.addCleanup(self.proxy.cleanup)
        self.proxy.start()
        self.client_ctx = ssl.create_default_context()
        self.client_ctx.check_hostname = False
        self.client_ctx.verify_mode = ssl.CERT_NONE

    def round_trip(self, payload=b"ping-through-the-relay"):
        """One TLS connection: send, read the echo; returns (client address text, echo)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as raw:
            local = "%s:%d" % raw.getsockname()[:2]
            with self.client_ctx.wrap_socket(raw, server_hostname="proxy.test") as tls:
                tls.sendall(payload)
                got = b""
                deadline = time.monotonic() + 10
                while len(got) < len(payload) and time.monotonic() < deadline:
                    chunk = tls.recv(4096)
                    if not chunk:
                        break
                    got += chunk
        return local, got

    def conn_records(self, want, timeout=10):
        """The `conn` records, the readiness probe's left out, once there are `want`."""
        records = []

        def enough():
            records[:] = []
            try:
                with open(self.proxy.audit_path) as f:
                    for line in f:
                        rec = json.loads(line)
                        if (rec.get("event") == "conn"
                                and rec["client"] not in self.proxy.probe_clients):
                            records.append(rec)
            except FileNotFoundError:
                pass
            return len(records) >= want

        lab.wait_until(enough, timeout)
        return records

    def test_each_connection_costs_no_getpeername_no_poll_and_one_ioctl_per_socket(self):
        if not shutil.which("strace"):
            self.skipTest("strace is not installed (scripts/setup installs it)")
        backend = EchoBackend(self.backend_port)
        self.addCleanup(backend.stop)
        self.round_trip()  # warm: the first connection sets up per-thread state
        summary = os.path.join(self.proxy.dir, "strace.txt")
        tracer = subprocess.Popen(["strace", "-c", "-f", "-o", summary, "-p",
                                   str(self.proxy.proc.pid)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            time.sleep(1.0)  # strace attaches to every thread
            if tracer.poll() is not None:
                self.skipTest(f"strace cannot attach here: {tracer.stderr.read().decode()[:200]}")
            clients = [self.round_trip() for _ in range(CONNECTIONS)]
            time.sleep(0.5)  # the last records are written after the client's close
        finally:
            if tracer.poll() is None:
                tracer.send_signal(signal.SIGINT)
                tracer.wait(20)
            tracer.stderr.close()
        calls = {}
        with open(summary) as f:
            for line in f:
                fields = line.split()
                if len(fields) >= 5 and fields[0][0].isdigit() and fields[-1] != "total":
                    calls[fields[-1]] = int(fields[3])
        self.assertGreaterEqual(calls.get("accept", 0) + calls.get("accept4", 0), CONNECTIONS,
                                calls)
        self.assertGreaterEqual(calls.get("connect", 0), CONNECTIONS, calls)
        self.assertEqual(calls.get("getpeername", 0), 0, calls)
        self.assertEqual(calls.get("poll", 0), 0, calls)
        self.assertLessEqual(calls.get("ioctl", 0), 2 * CONNECTIONS, calls)

        # What the calls were for: every client's own address, every back leg's local address.
        records = self.conn_records(CONNECTIONS + 1)
        by_client = {r["client"]: r for r in records}
        for local, echo in clients:
            self.assertEqual(echo, b"ping-through-the-relay")
            self.assertIn(local, by_client)
            rec = by_client[local]
            self.assertEqual(rec["outcome"], "ok", rec)
            self.assertEqual(rec["backend"]["addr"], f"127.0.0.1:{self.backend_port}", rec)
            self.assertRegex(rec["backend"]["local"], r"^127\.0\.0\.1:\d+$", rec)

    def test_a_refused_backend_is_reported_and_the_same_listener_relays_once_it_listens(self):
        local, echo = self.round_trip()
        self.assertEqual(echo, b"")  # nothing listens on the backend port: no relay
        records = self.conn_records(1)
        self.assertEqual(records[0]["client"], local)
        self.assertEqual(records[0]["outcome"], "backend_unavailable", records[0])
        self.assertIn("refused", records[0]["reason"].lower(), records[0])

        backend = EchoBackend(self.backend_port)
        self.addCleanup(backend.stop)
        # A refused connect is a passive health failure; the listener has no active checks, so
        # the address is tried again at the next connection.
        local, echo = self.round_trip()
        self.assertEqual(echo, b"ping-through-the-relay")
        records = self.conn_records(2)
        self.assertEqual(records[1]["client"], local)
        self.assertEqual(records[1]["outcome"], "ok", records[1])


if __name__ == "__main__":
    unittest.main()
