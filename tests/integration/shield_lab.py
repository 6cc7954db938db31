"""Fixtures for the shield tests (test_shield_imap.py): a raw CRLF client for IMAP/POP3 that can be
upgraded to TLS in place, and a byte-logging POP3 backend for what Dovecot does not log (commands
it does not recognise). Kept next to lab.py, which holds the real peers (Dovecot, the proxy)."""

import socket
import ssl
import threading

import lab


def modern_context():
    ctx = lab.client_context()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


class RawClient:
    """Sends exactly the bytes it is given; reads lines or tagged replies, bounded in time."""

    def __init__(self, port, timeout=10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        host, local_port = self.sock.getsockname()[:2]
        self.local = f"{host}:{local_port}"
        self.buffer = b""

    def send(self, data):
        self.sock.sendall(data.encode("latin-1") if isinstance(data, str) else data)

    def _fill(self):
        try:
            chunk = self.sock.recv(65536)
        except TimeoutError as e:
            raise TimeoutError(f"no reply from the proxy; had {self.buffer!r}") from e
        if not chunk:
            raise ConnectionError("connection closed by the proxy; had " + repr(self.buffer))
        self.buffer += chunk

    def read_line(self):
        while b"\n" not in self.buffer:
            self._fill()
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.rstrip(b"\r").decode("utf-8", "replace")

    def until_tagged(self, tag, limit=200):
        lines = []
        for _ in range(limit):
            line = self.read_line()
            lines.append(line)
            if line.startswith(tag + " "):
                return lines
        raise AssertionError(f"no {tag} reply in {limit} lines: {lines}")

    def command(self, tag, text):
        self.send(f"{tag} {text}\r\n")
        return self.until_tagged(tag)

    def starttls(self):
        if self.buffer:
            raise ConnectionError(f"plaintext bytes after the STARTTLS reply: {self.buffer!r}")
        self.sock = modern_context().wrap_socket(self.sock)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class ByteLoggingPop3Backend:
    """A plaintext POP3 server on 127.0.0.1 that records every byte it receives and, like a
    tolerant server, ends a line at a bare LF. It greets and answers each line "+OK" (CAPA with
    an empty list, QUIT by closing), so a test can see exactly which lines reached a backend -
    Dovecot does not log commands it does not recognise."""

    def __init__(self):
        self.port = lab.free_port()
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", self.port))
        self.listener.listen(16)
        self.listener.settimeout(0.2)
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.received = b""  # every byte of every connection, in arrival order per connection
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.stopping.set()
        self.thread.join(10)
        self.listener.close()

    def lines(self):
        with self.lock:
            return [l.rstrip(b"\r") for l in self.received.split(b"\n")]

    def _serve(self):
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    def _session(self, conn):
        conn.settimeout(10)
        try:
            conn.sendall(b"+OK fake pop3 ready\r\n")
            pending = b""
            for _ in range(10000):
                chunk = conn.recv(4096)
                if not chunk:
                    return
                with self.lock:
                    self.received += chunk
                pending += chunk
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    word = line.rstrip(b"\r").split(b" ", 1)[0].upper()
                    if word == b"QUIT":
                        conn.sendall(b"+OK bye\r\n")
                        return
                    conn.sendall(b"+OK\r\n.\r\n" if word == b"CAPA" else b"+OK\r\n")
        except OSError:
            pass
        finally:
            conn.close()
