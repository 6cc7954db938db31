"""Raw TLS relay (protocol = "tls") under bulk load: the driver writes what it reads straight from
its read buffer and copies only what a slow receiver does not take at once. Tens of MiB each
way, with the receiver stalled first, must arrive intact (SHA-256 on both ends), the half-close
must carry the backend's answer back, and a stalled receiver must not make the proxy buffer what
the sender pushes. The TLS back leg covers a TLS write that stops part way and is finished from
the copy (OpenSSL's moving write buffer)."""

import hashlib
import os
import socket
import ssl
import threading
import time
import unittest

import lab

BULK = 40 << 20  # more than every socket buffer on the path holds together
STALL = 1.5  # seconds the receiver reads nothing at first
RSS_BOUND_KIB = 8 << 10  # what the proxy may grow by while the receiver stalls


def pattern(n):
    """n deterministic bytes that are not one repeated block."""
    out, block, i = bytearray(), b"", 0
    while len(out) < n:
        block = hashlib.sha256(block + i.to_bytes(8, "big")).digest() * 512  # 16 KiB
        out += block
        i += 1
    return bytes(out[:n])


DATA = pattern(BULK)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def read_line(sock):
    line = b""
    while not line.endswith(b"\n") and len(line) < 200:
        chunk = sock.recv(1)
        if not chunk:
            break
        line += chunk
    return line


class BulkBackend:
    """A one-connection-at-a-time backend, plain or implicit TLS (Python's ssl). The first line
    says what to do: `UP <stall>` — stall, then read to EOF and answer `<bytes> <sha256>`;
    `DOWN <bytes>` — send that many bytes of the pattern, then close."""

    def __init__(self, certs, tls):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(1.0)
        self.port = self.listener.getsockname()[1]
        self.context = None
        if tls:
            self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.context.load_cert_chain(*lab.server_pair(certs))
        self.stopping = False
        self.errors = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        deadline = time.monotonic() + 170
        while not self.stopping and time.monotonic() < deadline:
            try:
                conn, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                conn.settimeout(60)
                if self.context:
                    conn = self.context.wrap_socket(conn, server_side=True)
                self.handle(conn)
            except (OSError, ssl.SSLError, ValueError) as e:
                self.errors.append(repr(e))
            finally:
                conn.close()

    def handle(self, conn):
        words = read_line(conn).split()
        if words[:1] == [b"UP"]:
            time.sleep(float(words[1]))
            digest, count = hashlib.sha256(), 0
            while True:
                chunk = conn.recv(1 << 16)
                if not chunk:
                    break
                digest.update(chunk)
                count += len(chunk)
            conn.sendall(f"{count} {digest.hexdigest()}\n".encode())
        elif words[:1] == [b"DOWN"]:
            view = memoryview(DATA)[:int(words[1])]
            for i in range(0, len(view), 1 << 16):
                conn.sendall(view[i:i + (1 << 16)])

    def stop(self):
        self.stopping = True
        self.listener.close()
        self.thread.join(5)


class TlsRelayBulkTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.certs = lab.shared_certs()

    def start(self, backend_tls):
        backend = BulkBackend(self.certs, backend_tls)
        self.addCleanup(backend.stop)
        port = lab.free_port()
        listener = {
            "name": "raw-bulk", "protocol": "tls", "listen": f"127.0.0.1:{port}",
            "tls": "implicit",
            "backend": {"address": [f"127.0.0.1:{backend.port}"],
                        "tls": "implicit" if backend_tls else "none", "verify": "none"},
        }
        proxy = lab.Tlsbridge([listener], [lab.server_pair(self.certs)])
        self.addCleanup(proxy.cleanup)
        proxy.start()
        client = lab.client_context(f"{self.certs}/ca.crt").wrap_socket(
            socket.create_connection(("127.0.0.1", port), timeout=60),
            server_hostname="localhost")
        self.addCleanup(client.close)
        return backend, proxy, client

    def upload(self, backend_tls):
        backend, proxy, client = self.start(backend_tls)
        client.sendall(f"UP {STALL}\n".encode())
        time.sleep(0.2)
        before = rss_kib(proxy.proc.pid)
        sent = threading.Event()

        def push():
            view = memoryview(DATA)
            for i in range(0, len(view), 1 << 16):
                client.sendall(view[i:i + (1 << 16)])
            sent.set()
        pusher = threading.Thread(target=push, daemon=True)
        pusher.start()
        time.sleep(STALL - 0.4)
        grown = rss_kib(proxy.proc.pid) - before
        self.assertFalse(sent.is_set(), "the stalled backend must hold the client back")
        self.assertLess(grown, RSS_BOUND_KIB, "the proxy buffered what the backend did not read")
        pusher.join(60)
        self.assertTrue(sent.is_set(), "the upload never finished" + proxy.describe())
        # Half-close (a bare FIN: SSLSocket.shutdown would drop the TLS layer for the reading
        # too): the backend's answer must still come back.
        with socket.socket(fileno=os.dup(client.fileno())) as raw:
            raw.shutdown(socket.SHUT_WR)
        answer = read_line(client).decode(errors="replace").split()
        self.assertEqual(answer, [str(BULK), hashlib.sha256(DATA).hexdigest()],
                         f"backend errors {backend.errors}" + proxy.describe())

    def download(self, backend_tls):
        backend, proxy, client = self.start(backend_tls)
        client.sendall(f"DOWN {BULK}\n".encode())
        time.sleep(0.2)
        before = rss_kib(proxy.proc.pid)
        time.sleep(STALL)
        grown = rss_kib(proxy.proc.pid) - before
        self.assertLess(grown, RSS_BOUND_KIB, "the proxy buffered what the client did not read")
        digest, count = hashlib.sha256(), 0
        deadline = time.monotonic() + 60
        while count < BULK and time.monotonic() < deadline:
            chunk = client.recv(1 << 16)
            if not chunk:
                break
            digest.update(chunk)
            count += len(chunk)
        self.assertEqual(count, BULK, f"backend errors {backend.errors}" + proxy.describe())
        self.assertEqual(digest.hexdigest(), hashlib.sha256(DATA).hexdigest())

    def test_upload_to_a_stalled_plain_backend(self):
        self.upload(backend_tls=False)

    def test_upload_to_a_stalled_tls_backend(self):
        self.upload(backend_tls=True)

    def test_download_to_a_stalled_client_from_a_tls_backend(self):
        self.download(backend_tls=True)

    def test_download_to_a_stalled_client_from_a_plain_backend(self):
        self.download(backend_tls=False)


if __name__ == "__main__":
    unittest.main()
