"""Fixtures for the HTTPS shield tests (issue 12): a byte-logging HTTP backend and two independent
readers of what a backend receives.

* ByteLoggingBackend — plain TCP on 127.0.0.1 (the proxy's back leg with tls = "none"). It
  records exactly the bytes each connection delivered, and answers every request its *tolerant*
  reader finds: lines end at LF with or without CR (RFC 9112 §2.2 lets a recipient do so), field
  names are folded as IIS folds them ('_' read as '-'), chunk sizes are read up to ';' or
  whitespace, extensions ignored. That is the backend the issue's smuggling vectors were shown
  against: whatever it takes as a request boundary, it answers. No real server does all of this on
  demand, hence a small fake that records exactly which bytes arrived.
* tolerant_requests(data) — that reader, as a pure function.
* strict_requests(data) — h11 (Debian's python3-h11, 0.14), the strict reader of the backend's
  side: the requests an RFC 9112 parser finds in the same bytes, or the error it stops at.

Every wait is bounded; the server thread and its connections stop when stop() is called.
"""

import select
import socket
import threading
import time

import h11

import lab

READ_TIMEOUT = 0.1
MAX_CONNECTION_SECONDS = 60.0


def _fold(name):
    return name.strip().lower().replace("_", "-")


def tolerant_requests(data):
    """(requests, rest): every complete request in data as (method, target, fields), and the
    bytes after the last one. Lines end at LF (a CR before it dropped); empty lines before a
    request line are skipped; Transfer-Encoding containing "chunked" wins over Content-Length."""
    requests = []
    pos = 0

    def line_at(p):
        end = data.find(b"\n", p)
        if end < 0:
            return None, p
        line = data[p:end]
        if line.endswith(b"\r"):
            line = line[:-1]
        return line, end + 1

    while True:
        start = pos
        line, p = line_at(pos)
        while line is not None and line == b"":
            start = p
            line, p = line_at(p)
        if line is None:
            return requests, data[start:]
        parts = line.split(b" ")
        method = parts[0]
        target = parts[1] if len(parts) > 1 else b""
        fields = []
        complete = False
        while True:
            field, p = line_at(p)
            if field is None:
                break
            if field == b"":
                complete = True
                break
            name, _, value = field.partition(b":")
            fields.append((_fold(name.decode("latin-1")), value.strip()))
        if not complete:
            return requests, data[start:]
        te = b",".join(v for n, v in fields if n == "transfer-encoding").lower()
        lengths = [v for n, v in fields if n == "content-length"]
        if b"chunked" in te:
            while True:
                size_line, p = line_at(p)
                if size_line is None:
                    return requests, data[start:]
                digits = size_line.split(b";")[0].strip()
                try:
                    size = int(digits or b"0", 16)
                except ValueError:
                    size = 0
                if size == 0:
                    while True:
                        trailer, p = line_at(p)
                        if trailer is None:
                            return requests, data[start:]
                        if trailer == b"":
                            break
                    break
                if len(data) < p + size:
                    return requests, data[start:]
                p += size
                _, p = line_at(p)  # the line end after the data
                if p > len(data):
                    return requests, data[start:]
        elif lengths:
            try:
                length = int(lengths[0])
            except ValueError:
                length = 0
            if len(data) < p + length:
                return requests, data[start:]
            p += length
        requests.append((method.decode("latin-1"), target.decode("latin-1"), fields))
        pos = p


def strict_requests(data):
    """(requests, error): what h11 reads in data as a server — each request as (method, target,
    headers) once its whole message arrived — and the RemoteProtocolError it stopped at, if any
    (None when the bytes end in a partial request, cleanly, or after a Connection: close)."""
    conn = h11.Connection(h11.SERVER)
    # No EOF is fed: a request cut short (the proxy aborted the back leg inside a body it found
    # malformed) is a partial request, not an error of the relayed bytes.
    conn.receive_data(data)
    requests = []
    current = None
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as e:
            return requests, str(e) or type(e).__name__
        if event is h11.NEED_DATA or isinstance(event, h11.ConnectionClosed):
            return requests, None
        if event is h11.PAUSED:
            if conn.our_state is h11.SEND_RESPONSE:
                # Not 2xx/101: a CONNECT or an Upgrade request does not switch protocols here.
                conn.send(h11.Response(status_code=404, headers=[("Content-Length", "0")]))
                conn.send(h11.EndOfMessage())
            if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                return requests, None
            try:
                conn.start_next_cycle()
            except h11.LocalProtocolError:
                return requests, None
            continue
        if isinstance(event, h11.Request):
            current = (event.method.decode("latin-1"), event.target.decode("latin-1"),
                       [(n.decode("latin-1"), v) for n, v in event.headers.raw_items()])
        elif isinstance(event, h11.EndOfMessage):
            requests.append(current)
            current = None


class ByteLoggingBackend:
    """See the module docstring. connections: one dict per accepted connection, in order:
    {"peer": "ip:port" of the proxy's back leg, "bytes": bytes received so far, "closed": whether
    it ended, "answered": requests answered}."""

    def __init__(self, port=None):
        self.port = lab.free_port() if port is None else port
        self.lock = threading.Lock()
        self.connections = []
        self.stopping = threading.Event()
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", self.port))
        self.listener.listen(64)
        self.threads = []

    def start(self):
        t = threading.Thread(target=self._accept_loop, daemon=True)
        t.start()
        self.threads.append(t)
        return self

    def stop(self):
        self.stopping.set()
        for t in list(self.threads):
            t.join(5)
        self.listener.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def snapshot(self):
        with self.lock:
            return [dict(c) for c in self.connections]

    def count(self):
        with self.lock:
            return len(self.connections)

    def received_from(self, peer, timeout=5.0):
        """The bytes of the connection from peer ("ip:port", the proxy's back-leg address as its
        conn record gives it) once it has ended; b"" if it never arrived within timeout."""
        def ended():
            with self.lock:
                for c in self.connections:
                    if c["peer"] == peer and c["closed"]:
                        return c["bytes"]
            return None
        found = lab.wait_until(ended, timeout, interval=0.02)
        return found if found is not None else b""

    def _accept_loop(self):
        while not self.stopping.is_set():
            ready, _, _ = select.select([self.listener], [], [], READ_TIMEOUT)
            if not ready:
                continue
            try:
                conn, addr = self.listener.accept()
            except OSError:
                continue
            record = {"peer": f"{addr[0]}:{addr[1]}", "bytes": b"", "closed": False,
                      "answered": 0}
            with self.lock:
                self.connections.append(record)
            t = threading.Thread(target=self._serve, args=(conn, record), daemon=True)
            t.start()
            self.threads.append(t)

    def _serve(self, conn, record):
        deadline = time.monotonic() + MAX_CONNECTION_SECONDS
        conn.settimeout(READ_TIMEOUT)
        answered = 0
        try:
            while not self.stopping.is_set() and time.monotonic() < deadline:
                try:
                    data = conn.recv(65536)
                except socket.timeout:
                    continue
                except OSError:
                    break
                if not data:
                    break
                with self.lock:
                    record["bytes"] += data
                    received = record["bytes"]
                requests, _ = tolerant_requests(received)
                close = False
                for method, target, fields in requests[answered:]:
                    body = f"backend saw {method} {target}".encode("latin-1")
                    wants_close = any(n == "connection" and v.lower() == b"close"
                                      for n, v in fields)
                    head = (f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n" +
                            ("Connection: close\r\n" if wants_close else "") + "\r\n")
                    try:
                        conn.sendall(head.encode() + body)
                    except OSError:
                        close = True
                        break
                    answered += 1
                    if wants_close:
                        close = True
                        break
                with self.lock:
                    record["answered"] = answered
                if close:
                    break
        finally:
            try:
                conn.close()
            finally:
                with self.lock:
                    record["closed"] = True
