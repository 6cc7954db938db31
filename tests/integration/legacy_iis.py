"""A legacy IIS stand-in for the HTTPS integration tests (Python stdlib only).

HTTP/1.1 with keep-alive over TLS 1.0 *only*, with the SHA-1 test certificate (sha1.chain.pem) —
what an Exchange 2010 front end on Windows Server 2008 speaks. Its endpoints:

* /EWS/Exchange.asmx — an NTLM-style, connection-bound handshake as IIS does it: no
  Authorization → 401 `WWW-Authenticate: NTLM`; a NEGOTIATE (type 1) → 401 with a CHALLENGE
  (type 2) remembered *on this TCP connection*; an AUTHENTICATE (type 3) → 200 only when this
  same connection issued a challenge, else 401. Moving the type 3 to another connection fails,
  exactly as it does against Exchange — the property the proxy's pinning must keep.
* /Microsoft-Server-ActiveSync — 200 after holding the request `X-Test-Hold` seconds (Ping).
* /EWS/upload — reads the body (Content-Length or chunked) as it streams, answers its SHA-256
  and length.
* /EWS/download?size=N — N bytes of download_bytes(), chunked.
* /EWS/headers — the request's header fields as JSON.
* /owa/auth/logon.aspx — OWA's logon page, the health_path an Exchange 2010 check asks for:
  answers `logon_status` (200; set it to 503 for an Exchange whose OWA has stopped).
* /EWS/basic — Basic authentication as IIS does it: the password "wonderland" → 200, any other
  (or none) → 401 `WWW-Authenticate: Basic`.
* anything else (also RPC_IN_DATA/RPC_OUT_DATA) — 200 "backend saw PATH".

Every request is logged (connection number, method, path, headers) in `requests`, so a test
can show what reached the backend, on which connection, and what never arrived. Run by hand:
    python3 legacy_iis.py --certs DIR --port PORT
"""

import base64
import hashlib
import http.server
import itertools
import json
import os
import ssl
import struct
import threading
import urllib.parse
import warnings

import lab

BLOCK = 64 * 1024


def download_bytes(size):
    """The deterministic body of /EWS/download?size=N, in blocks (test and stand-in share it)."""
    block_no = 0
    while size > 0:
        seed = hashlib.sha256(block_no.to_bytes(8, "big")).digest()
        block = (seed * (BLOCK // len(seed)))[:min(size, BLOCK)]
        yield block
        size -= len(block)
        block_no += 1


def ntlm_negotiate():
    """An NTLM NEGOTIATE_MESSAGE (type 1)."""
    return b"NTLMSSP\0" + struct.pack("<II", 1, 0xA2088207) + b"\0" * 16


def ntlm_challenge():
    """An NTLM CHALLENGE_MESSAGE (type 2) with a fresh server challenge."""
    return (b"NTLMSSP\0" + struct.pack("<I", 2) + struct.pack("<HHI", 0, 0, 48) +
            struct.pack("<I", 0xA2898205) + os.urandom(8) + b"\0" * 8 +
            struct.pack("<HHI", 0, 0, 48))


def ntlm_authenticate(domain, user, workstation, unicode=True):
    """A well-formed (fake-response) NTLM AUTHENTICATE_MESSAGE (type 3), MS-NLMP §2.2.1.3."""
    enc = (lambda s: s.encode("utf-16-le")) if unicode else (lambda s: s.encode("latin-1"))
    payload = [enc(domain), enc(user), enc(workstation), b"\x11" * 24, b"\x22" * 24]
    offset = 72
    fields = []
    for item in payload:
        fields.append(struct.pack("<HHI", len(item), len(item), offset))
        offset += len(item)
    domain_f, user_f, ws_f, lm_f, nt_f = fields
    flags = 0xA2888205 if unicode else 0xA2888206
    header = (b"NTLMSSP\0" + struct.pack("<I", 3) + lm_f + nt_f + domain_f + user_f + ws_f +
              struct.pack("<HHI", 0, 0, offset) + struct.pack("<I", flags) + b"\0" * 8)
    assert len(header) == 72
    return header + b"".join(payload)


def ntlm_type(token):
    try:
        blob = base64.b64decode(token)
    except ValueError:
        return None
    if len(blob) < 12 or not blob.startswith(b"NTLMSSP\0"):
        return None
    return struct.unpack_from("<I", blob, 8)[0]


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "Microsoft-IIS/7.5"
    sys_version = ""

    def setup(self):
        super().setup()
        self.connection_no = next(self.server.connection_numbers)
        self.challenge = None  # NTLM: a challenge issued on this TCP connection

    def log_message(self, *args):
        pass

    # -- body handling ------------------------------------------------------------------------

    def read_body(self, sink):
        """Streams the request body into sink(bytes); returns its length."""
        total = 0
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return total
                remaining = size
                while remaining:
                    data = self.rfile.read(min(remaining, BLOCK))
                    if not data:
                        raise ConnectionError("body cut short")
                    sink(data)
                    remaining -= len(data)
                total += size
                self.rfile.readline()
        length = int(self.headers.get("Content-Length", "0"))
        while total < length:
            data = self.rfile.read(min(length - total, BLOCK))
            if not data:
                raise ConnectionError("body cut short")
            sink(data)
            total += len(data)
        return total

    def reply(self, status, body=b"", headers=()):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    # -- routes ------------------------------------------------------------------------------

    def handle_any(self):
        with self.server.lock:
            self.server.requests.append({
                "connection": self.connection_no, "method": self.command, "path": self.path,
                "headers": {k: v for k, v in self.headers.items()}})
        path = urllib.parse.urlsplit(self.path).path.lower()
        if path == "/ews/upload":
            digest = hashlib.sha256()
            length = self.read_body(digest.update)
            return self.reply(200, json.dumps({"sha256": digest.hexdigest(), "length": length}))
        self.read_body(lambda data: None)
        if path == "/ews/exchange.asmx":
            return self.ntlm()
        if path.startswith("/microsoft-server-activesync"):
            hold = float(self.headers.get("X-Test-Hold", "0"))
            if hold:
                threading.Event().wait(hold)
            return self.reply(200, f"held {hold}s")
        if path == "/ews/download":
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
            size = int(query.get("size", ["0"])[0])
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for block in download_bytes(size):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(block), block))
            self.wfile.write(b"0\r\n\r\n")
            return None
        if path == "/ews/hsts":  # its own HSTS policy: the proxy must not add a second one
            return self.reply(200, b"own policy",
                              headers=[("Strict-Transport-Security", "max-age=600")])
        if path == "/owa/auth/logon.aspx":
            return self.reply(self.server.logon_status, "logon page")
        if path == "/ews/basic":
            scheme, _, token = self.headers.get("Authorization", "").partition(" ")
            try:
                password = base64.b64decode(token.strip()).decode().partition(":")[2]
            except ValueError:
                password = ""
            if scheme.lower() == "basic" and password == "wonderland":
                return self.reply(200, "authenticated")
            return self.reply(401, "unauthorized", [("WWW-Authenticate", 'Basic realm="x"')])
        if path == "/ews/headers":
            return self.reply(200, json.dumps({k: v for k, v in self.headers.items()}))
        return self.reply(200, f"backend saw {self.path}")

    def ntlm(self):
        auth = self.headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        kind = ntlm_type(token.strip()) if scheme.lower() == "ntlm" else None
        if kind == 1:
            challenge = ntlm_challenge()
            self.challenge = challenge
            return self.reply(401, "challenge", [
                ("WWW-Authenticate", "NTLM " + base64.b64encode(challenge).decode())])
        if kind == 3 and self.challenge is not None:
            self.challenge = None
            return self.reply(200, f"authenticated on connection {self.connection_no}")
        # No handshake on this connection: start over (what IIS says to a type 3 out of place).
        return self.reply(401, "unauthorized", [("WWW-Authenticate", "NTLM")])

    do_GET = do_POST = do_HEAD = do_PUT = do_OPTIONS = handle_any
    # Outlook Anywhere's channels (MS-RPCH §2.1.2.1): IIS frames them by their Content-Length, as
    # read_body does, so a later request on the connection is a request of its own.
    do_RPC_IN_DATA = do_RPC_OUT_DATA = handle_any


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, context):
        super().__init__(address, _Handler)
        self.context = context
        self.connection_numbers = itertools.count(1)
        self.lock = threading.Lock()
        self.requests = []
        self.handshake_failures = 0
        self.logon_status = 200  # /owa/auth/logon.aspx

    def finish_request(self, request, client_address):
        # The TLS handshake happens here, in the connection's own thread.
        try:
            request = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            with self.lock:
                self.handshake_failures += 1
            return
        try:
            super().finish_request(request, client_address)
        finally:
            request.close()

    def handle_error(self, request, client_address):
        pass  # a client that goes away mid-response is routine here


def tls10_server_context(certs_dir):
    """TLS 1.0 only, SHA-1 certificate: the level must drop before the certificate loads."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1
    ctx.load_cert_chain(os.path.join(certs_dir, "sha1.chain.pem"),
                        os.path.join(certs_dir, "sha1.key"))
    return ctx


class LegacyIis:
    """The stand-in on 127.0.0.1:port (a free port by default), served from a thread."""

    def __init__(self, certs_dir, port=None):
        self.port = lab.free_port() if port is None else port
        self.server = _Server(("127.0.0.1", self.port), tls10_server_context(certs_dir))
        self.thread = None

    def start(self):
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        if self.thread:
            self.server.shutdown()
            self.thread.join(10)
            self.thread = None
        self.server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def requests(self):
        with self.server.lock:
            return list(self.server.requests)

    def set_logon_status(self, status):
        """What /owa/auth/logon.aspx answers from now on (503: OWA down, 200: up again)."""
        with self.server.lock:
            self.server.logon_status = status

    def requests_for(self, needle):
        return [r for r in self.requests if needle in r["path"]]


if __name__ == "__main__":
    import argparse
    parser = argparse.ArgumentParser(prog="legacy_iis.py")
    parser.add_argument("--certs", required=True)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    iis = LegacyIis(args.certs, args.port or None)
    print(f"legacy IIS stand-in on 127.0.0.1:{iis.port} (TLS 1.0 only)", flush=True)
    try:
        iis.server.serve_forever()
    except KeyboardInterrupt:
        pass
