"""Fixtures for test_shield_smtp.py (issue 12 items 4 and 8), kept apart from lab.py.

* ChunklessPostfix: the lab's real Postfix with `smtpd_discard_ehlo_keywords = chunking`, the
  Exchange set-up where CHUNKING is switched off. Postfix then answers BDAT with 502 and does not
  read its chunk: the chunk runs as commands, which its command log shows.
* ByteLoggingSmtpBackend: a tolerant plaintext SMTP backend that records every byte it receives
  per connection in a file (DIR/conn-N.bin). It is for what Postfix cannot show: bytes Postfix
  logs differently or not at all (NUL, control characters, what follows QUIT) and SASL
  exchanges (the lab's Postfix has no SASL). It reads as a lenient legacy server would: lines end
  at a bare LF, the verb is the first word after any leading blanks, split at any blank or
  control character, NUL bytes ignored, and the end of data is "." alone on such a line.

Every loop is bounded in count and time; the server thread and its sockets are closed by stop().
"""

import os
import re
import shutil
import socket
import threading

import lab


class ChunklessPostfix(lab.PostfixBackend):
    """lab.PostfixBackend whose EHLO reply leaves CHUNKING out (BDAT is then refused by Postfix
    with 502, its chunk read as commands)."""

    def configure(self):
        super().configure()
        with open(os.path.join(self.etc, "main.cf"), "a") as f:
            f.write("\n# Exchange can switch CHUNKING off; so can Postfix.\n"
                    "smtpd_discard_ehlo_keywords = chunking\n")


BLANKS = b" \t\x0b\x0c\r\x00"


def tolerant_verb(line):
    """The verb a lenient server reads in a line (bytes, no terminator): NUL bytes dropped,
    leading blanks skipped, cut at the first blank or control character, upper-cased."""
    line = line.replace(b"\x00", b"").lstrip(BLANKS)
    match = re.match(rb"[^\x00-\x20\x7f]*", line)
    return match.group(0).upper().decode("latin-1")


class ByteLoggingSmtpBackend:
    """Plaintext SMTP on 127.0.0.1:port. EHLO offers PIPELINING, 8BITMIME, AUTH PLAIN LOGIN and
    (unless chunking=False) CHUNKING. AUTH is answered with 334 challenges until two responses
    arrived, then 235 ("*" gets 501, RFC 4954 §4). Each connection's bytes go to DIR/conn-N.bin
    as they arrive; commands() gives what a tolerant reader made of them."""

    def __init__(self, chunking=True, port=None):
        self.chunking = chunking
        self.port = lab.free_port() if port is None else port
        self.dir = lab.make_lab_dir("tlsbridge-bytelog.")
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", self.port))
        self.listener.listen(16)
        self.listener.settimeout(0.2)
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.connections = 0
        self.sessions = []  # per connection: list of ("cmd"|"sasl"|"data_end"|"chunk", bytes)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.workers = []

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.stopping.set()
        self.thread.join(10)
        for worker in self.workers:
            worker.join(10)
        self.listener.close()

    def cleanup(self):
        self.stop()
        if not lab.keep_lab() and self.dir.startswith("/tmp/"):
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()

    # -- what arrived ----------------------------------------------------------------------------

    def log_path(self, index):
        return os.path.join(self.dir, f"conn-{index}.bin")

    def received(self, index):
        """Every byte connection `index` (0-based, in accept order) sent, read from its file."""
        try:
            with open(self.log_path(index), "rb") as f:
                return f.read()
        except FileNotFoundError:
            return b""

    def all_received(self):
        with self.lock:
            count = self.connections
        return b"".join(self.received(i) for i in range(count))

    def events(self, index):
        with self.lock:
            return list(self.sessions[index]) if index < len(self.sessions) else []

    def commands(self, index):
        """The command lines connection `index` carried, as the tolerant reader framed them."""
        return [value for kind, value in self.events(index) if kind == "cmd"]

    # -- the server ------------------------------------------------------------------------------

    def _serve(self):
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                index = self.connections
                self.connections += 1
                self.sessions.append([])
            worker = threading.Thread(target=self._session, args=(conn, index), daemon=True)
            self.workers.append(worker)
            worker.start()

    def _session(self, conn, index):
        conn.settimeout(10)
        reader = _LoggingReader(conn, self.log_path(index), self.stopping)
        try:
            self._converse(conn, reader, self.sessions[index])
        except OSError:
            pass
        finally:
            reader.close()
            conn.close()

    def _record(self, events, kind, value):
        with self.lock:
            events.append((kind, value))

    def _converse(self, conn, reader, events):
        conn.sendall(b"220 bytelog.test ESMTP tolerant\r\n")
        auth_responses = None  # None: commands; n: inside AUTH, n responses so far
        for _ in range(100000):
            line = reader.line()
            if line is None:
                return
            if auth_responses is not None:
                self._record(events, "sasl", line)
                if line.strip() == b"*":
                    conn.sendall(b"501 5.7.0 Authentication aborted\r\n")
                    auth_responses = None
                elif auth_responses + 1 >= 2:
                    conn.sendall(b"235 2.7.0 Authentication successful\r\n")
                    auth_responses = None
                else:
                    auth_responses += 1
                    conn.sendall(b"334 UGFzc3dvcmQ6\r\n")
                continue
            self._record(events, "cmd", line)
            verb = tolerant_verb(line)
            words = line.replace(b"\x00", b"").split()
            if verb == "EHLO":
                conn.sendall(b"250-bytelog.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n"
                             + (b"250-CHUNKING\r\n" if self.chunking else b"")
                             + b"250 AUTH PLAIN LOGIN\r\n")
            elif verb == "AUTH":
                if len(words) > 2:
                    conn.sendall(b"235 2.7.0 Authentication successful\r\n")
                else:
                    auth_responses = 0
                    conn.sendall(b"334 VXNlcm5hbWU6\r\n")
            elif verb == "DATA":
                conn.sendall(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                if not reader.until_end_of_data():
                    return
                self._record(events, "data_end", b"")
                conn.sendall(b"250 2.0.0 Ok: queued as BYTELOG\r\n")
            elif verb == "BDAT" and not self.chunking:
                # As Exchange with CHUNKING switched off: the chunk is not read, it runs as
                # commands.
                conn.sendall(b"502 5.5.1 Error: command not implemented\r\n")
            elif verb == "BDAT":
                size = words[1] if len(words) > 1 else b""
                if not size.isdigit():
                    conn.sendall(b"501 5.5.4 Syntax: BDAT count [LAST]\r\n")
                    continue
                chunk = reader.exactly(int(size))
                if chunk is None:
                    return
                self._record(events, "chunk", chunk)
                conn.sendall(b"250 2.0.0 Ok: " + size + b" octets\r\n")
            elif verb == "QUIT":
                conn.sendall(b"221 2.0.0 Bye\r\n")
                reader.drain()  # keep recording whatever else arrives until the proxy closes
                return
            elif verb in ("HELO", "MAIL", "RCPT", "NOOP", "RSET", "VRFY"):
                conn.sendall(b"250 2.0.0 Ok\r\n")
            else:
                conn.sendall(b"502 5.5.2 Error: command not recognized\r\n")


class _LoggingReader:
    """Reads a socket, appending every byte to a file as it arrives; frames lines at a bare LF
    (the lenient reading), raw byte counts, and dot-terminated data. Bounded: lines 64 KiB."""

    def __init__(self, conn, path, stopping):
        self.conn = conn
        self.file = open(path, "wb")
        self.buffer = b""
        self.stopping = stopping

    def close(self):
        self.file.close()

    def _fill(self):
        if self.stopping.is_set():
            return False
        try:
            chunk = self.conn.recv(65536)
        except (socket.timeout, OSError):
            return False
        if not chunk:
            return False
        self.file.write(chunk)
        self.file.flush()
        self.buffer += chunk
        return True

    def line(self):
        """The next line without its LF (and one CR before it), or None at EOF/timeout."""
        while b"\n" not in self.buffer:
            if len(self.buffer) > 65536 or not self._fill():
                return None
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line[:-1] if line.endswith(b"\r") else line

    def exactly(self, n):
        while len(self.buffer) < n:
            if not self._fill():
                return None
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def until_end_of_data(self):
        for _ in range(1000000):
            line = self.line()
            if line is None:
                return False
            if line == b".":
                return True
        return False

    def drain(self):
        for _ in range(1000):
            if not self._fill():
                return
