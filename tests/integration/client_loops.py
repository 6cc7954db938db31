"""Continuous client load for the tests that change the proxy under traffic (reload, binary
upgrade): each loop runs one whole client exchange after another on a fresh connection until
stopped (at most 120 s), and records each success with its time and every failure."""

import http.client
import smtplib
import ssl
import threading
import time


def unverified_context():
    """A TLS client context that checks nothing (the proxy's certificate may change under us)."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    return context


class LoadLoop(threading.Thread):
    """Subclasses define exchange(marker), which raises on any failure."""

    def __init__(self, name):
        super().__init__(daemon=True)
        self.name_prefix = name
        self.stopping = threading.Event()
        self.done, self.failures = [], []   # (monotonic time, marker), "marker: error"

    def run(self):
        deadline = time.monotonic() + 120
        n = 0
        while not self.stopping.is_set() and time.monotonic() < deadline:
            marker = f"{self.name_prefix}-{n}"
            n += 1
            try:
                self.exchange(marker)
                self.done.append((time.monotonic(), marker))
            except Exception as e:  # noqa: BLE001 — every failure is the finding
                self.failures.append(f"{marker}: {e!r}")

    def finished_after(self, moment):
        return [m for t, m in self.done if t > moment]


class SmtpLoad(LoadLoop):
    """STARTTLS, one message (Subject and X-Lab-Marker: the marker), QUIT."""

    def __init__(self, name, port):
        super().__init__(name)
        self.port = port

    def exchange(self, marker):
        with smtplib.SMTP("127.0.0.1", self.port, timeout=15) as client:
            client.starttls(context=unverified_context())
            client.sendmail("load@example.test", ["x@example.test"],
                            f"Subject: {marker}\r\nX-Lab-Marker: {marker}\r\n\r\nbody\r\n")
            client.quit()


class HttpsLoad(LoadLoop):
    """GET /EWS/<marker> from the legacy IIS stand-in (legacy_iis.py) through the proxy."""

    def __init__(self, name, port):
        super().__init__(name)
        self.port = port

    def exchange(self, marker):
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=15,
                                           context=unverified_context())
        try:
            conn.request("GET", f"/EWS/{marker}")
            response = conn.getresponse()
            body = response.read()
        finally:
            conn.close()
        if response.status != 200 or f"backend saw /EWS/{marker}".encode() not in body:
            raise AssertionError(f"{response.status} {body[:80]!r}")
