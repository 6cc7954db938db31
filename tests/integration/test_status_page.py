"""The status page and /status.json on the admin endpoint (README, "Status page"; issue 16), and
the metrics named by the Prometheus conventions. A real Postfix (TLS 1.0 only, SHA-1 chain) is the
backend; a TLS 1.0 client is refused on the implicit-TLS port whose TLS 1.2+ client then gets
through; Debian's chromium renders the page headless: the DOM it built holds the listener names
and the refusal row, and the screenshot is kept under the build directory (its path is printed)."""

import html.parser
import http.client
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import time
import unittest
import urllib.request

import lab
import legacy_iis
from test_admin_metrics import parse_prometheus, value
from test_https import https_listener

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
BROWSER_TIMEOUT = 90


def artifact_dir():
    """The build directory the tested binary lives in (build/release), else the lab's /tmp."""
    binary = os.environ.get("TLSBRIDGE_BINARY", "")
    directory = os.path.dirname(os.path.abspath(binary)) if binary else ""
    return directory if directory and os.access(directory, os.W_OK) else "/tmp"


class Tables(html.parser.HTMLParser):
    """Rows of every <table id=...> in a DOM: {id: [(tr class, [cell texts])]} (tbody rows)."""

    def __init__(self):
        super().__init__()
        self.tables, self.table, self.row, self.cell = {}, None, None, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table" and attrs.get("id"):
            self.table = self.tables.setdefault(attrs["id"], [])
        elif tag == "tr" and self.table is not None:
            self.row = (attrs.get("class") or "", [])
        elif tag in ("td", "th") and self.row is not None:
            self.cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None:
            self.row[1].append("".join(self.cell).strip())
            self.cell = None
        elif tag == "tr" and self.row is not None:
            if self.row[1] and tag == "tr":
                self.table.append(self.row)
            self.row = None
        elif tag == "table":
            self.table = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


class StatusPageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.certs = lab.shared_certs()
        cls.backend = lab.start_for_class(cls, lab.PostfixBackend(cls.certs, tls="tls1.0-starttls"))
        cls.iis = legacy_iis.LegacyIis(cls.certs).start()
        cls.addClassCleanup(cls.iis.stop)
        cls.smtp_port, cls.smtps_port, cls.https_port, cls.admin_port = (
            lab.free_port() for _ in range(4))
        cls.proxy = lab.Tlsbridge(
            [lab.smtp_listener(cls.smtp_port, cls.backend.port, name="smtp-in"),
             lab.smtp_listener(cls.smtps_port, cls.backend.port, name="smtps-in",
                               tls="implicit"),
             https_listener("https-in", cls.https_port, cls.iis.port)],
            [lab.server_pair(cls.certs)],
            admin=f"127.0.0.1:{cls.admin_port}")
        cls.addClassCleanup(cls.proxy.cleanup)
        cls.proxy.start()
        cls.make_traffic()

    @classmethod
    def make_traffic(cls):
        # One delivered message: TLS 1.2+ on the front, TLS 1.0 on the back.
        result = lab.swaks(cls.smtp_port, "--header", "Subject: status page")
        assert result.returncode == 0, result.stdout + result.stderr
        # A TLS 1.0 client on the implicit port is refused...
        with socket.create_connection(("127.0.0.1", cls.smtps_port), timeout=10) as raw:
            try:
                with lab.legacy_client_context().wrap_socket(raw) as tls:
                    tls.recv(100)
                cls.legacy_refused = False
            except (ssl.SSLError, ConnectionError):
                cls.legacy_refused = True
        # ...and a TLS 1.2+ client on the same port gets the backend's greeting.
        with socket.create_connection(("127.0.0.1", cls.smtps_port), timeout=10) as raw:
            with lab.client_context().wrap_socket(raw) as tls:
                tls.settimeout(10)
                cls.modern_greeting = tls.recv(512)
                tls.sendall(b"QUIT\r\n")
                tls.recv(512)
        # HTTPS: one answer from the backend, one 404 from the proxy (a path not allowed).
        conn = http.client.HTTPSConnection("127.0.0.1", cls.https_port, timeout=10,
                                           context=lab.client_context())
        cls.http_status = []
        for path in ("/owa/", "/not-exchange"):
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            cls.http_status.append(response.status)
        conn.close()
        cls.proxy.wait_for_conn_records(4)

    def get(self, path):
        url = f"http://127.0.0.1:{self.admin_port}{path}"
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.headers, r.read().decode()

    def status(self):
        code, headers, body = self.get("/status.json")
        self.assertEqual(code, 200)
        self.assertEqual(headers.get("Content-Type"), "application/json")
        return json.loads(body)

    def test_the_refusal_and_the_success_on_the_same_port(self):
        self.assertTrue(self.legacy_refused, "a TLS 1.0 client must not get through")
        self.assertTrue(self.modern_greeting.startswith(b"220"), self.modern_greeting)

    def test_status_json(self):
        s = self.status()
        listeners = {l["name"]: l for l in s["listeners"]}
        self.assertEqual(set(listeners), {"smtp-in", "smtps-in", "https-in"})
        self.assertEqual(listeners["https-in"]["protocol"], "https")
        self.assertEqual(listeners["smtps-in"]["tls"], "implicit")
        self.assertEqual(listeners["smtps-in"]["port"], self.smtps_port)
        self.assertEqual(listeners["smtp-in"]["tls_profile"], "modern")
        self.assertEqual(listeners["smtp-in"]["backend_tls_profile"], "legacy")
        self.assertEqual(listeners["smtp-in"]["protocol"], "smtp")

        backends = [b for b in s["backends"] if b["listener"] == "smtp-in"]
        self.assertEqual(len(backends), 1, s["backends"])
        self.assertEqual(backends[0]["address"], f"127.0.0.1:{self.backend.port}")
        self.assertIs(backends[0]["up"], True)
        self.assertEqual(set(s["sessions"]), {"smtp", "imap", "pop3", "https", "tls"})
        self.assertEqual(s["sessions"]["smtp"], 0, "every session has ended")

        refused = [r for r in s["refusals"] if r["listener"] == "smtps-in"]
        self.assertEqual(len(refused), 1, s["refusals"])
        self.assertEqual(refused[0]["reason"], "tls_version")
        self.assertTrue(refused[0]["client"].startswith("127.0.0.1:"), refused[0])
        self.assertRegex(refused[0]["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertIn("unsupported protocol", refused[0]["detail"])

        # The certificate's own notAfter, read by openssl, gives the days left.
        out = lab.run(["openssl", "x509", "-noout", "-enddate", "-in",
                       f"{self.certs}/server.chain.pem"], check=True).stdout
        not_after = time.mktime(time.strptime(out.strip().split("=", 1)[1],
                                              "%b %d %H:%M:%S %Y %Z")) - time.timezone
        self.assertEqual(len(s["certificates"]), 1, s["certificates"])
        cert = s["certificates"][0]
        self.assertEqual(cert["days_left"], int((not_after - time.time()) // 86400))
        self.assertGreater(cert["days_left"], 0)

        tls = s["tls_versions"]
        self.assertEqual(tls["window_seconds"], 3600)
        self.assertGreaterEqual(tls["back"]["TLSv1"], 2, "the delivery and the smtps session")
        self.assertGreaterEqual(tls["front"]["TLSv1.3"] + tls["front"]["TLSv1.2"], 2)
        self.assertEqual(tls["front"]["TLSv1"], 0, "the refused client negotiated nothing")

    def test_metrics_by_the_conventions(self):
        code, _, text = self.get("/metrics")
        self.assertEqual(code, 200)
        samples, types = parse_prometheus(text)
        self.assertGreater(value(samples, "process_open_fds"), 0)
        self.assertGreater(value(samples, "process_resident_memory_bytes"), 1e6)
        self.assertEqual(types.get("process_cpu_seconds_total"), "counter")
        start = value(samples, "process_start_time_seconds")
        self.assertLess(abs(start - time.time()), 3600, "the process started during this test")
        version = lab.run([self.proxy.binary, "--version"], check=True).stdout
        commit = re.search(r"\(commit (\w+)\)", version).group(1)
        self.assertEqual(value(samples, "tlsbridge_build_info", commit=commit), 1, version)
        self.assertEqual(
            value(samples, "tlsbridge_refusals_total", listener="smtps-in", reason="tls_version"),
            1)
        self.assertEqual(self.http_status, [200, 404])
        for klass, n in (("2xx", 1), ("4xx", 1), ("5xx", 0)):
            self.assertEqual(value(samples, "tlsbridge_http_responses_total", listener="https-in",
                                   **{"class": klass}), n, klass)
        self.assertEqual(value(samples, "tlsbridge_refusals_total", listener="https-in",
                               reason="http.allow_paths"), 1)
        self.assertEqual(types.get("tlsbridge_certificate_not_after_timestamp_seconds"), "gauge")
        self.assertGreater(value(samples, "tlsbridge_certificate_not_after_timestamp_seconds"),
                           time.time())
        self.assertNotIn("tlsbridge_certificate_expiry_seconds", text)
        les = re.findall(r'[{,]le="([^"]*)"', text)
        self.assertIn("0.0025", les)
        for le in les:
            self.assertRegex(le, r"^(\+Inf|[0-9.]+)$", "bucket labels in their shortest form")

    def test_page_in_a_browser(self):
        code, headers, page = self.get("/")
        self.assertEqual(code, 200)
        self.assertTrue(headers.get("Content-Type", "").startswith("text/html"))
        self.assertIn("default-src 'none'", headers.get("Content-Security-Policy", ""))
        # No external asset: nothing the page loads comes from anywhere else.
        self.assertIsNone(re.search(r'(src|href)\s*=\s*"(https?:)?//', page), "external asset")

        profile = lab.make_lab_dir("tlsbridge-chromium.")
        self.addCleanup(shutil.rmtree, profile, True)
        screenshot = os.path.join(artifact_dir(), "status-page.png")
        url = f"http://127.0.0.1:{self.admin_port}/"
        common = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                  f"--user-data-dir={profile}", "--hide-scrollbars", "--window-size=1280,900",
                  "--virtual-time-budget=3000"]
        env = dict(os.environ, HOME=profile)
        shot = subprocess.run(common + [f"--screenshot={screenshot}", url], env=env,
                              capture_output=True, text=True, timeout=BROWSER_TIMEOUT,
                              stdin=subprocess.DEVNULL)
        self.assertEqual(shot.returncode, 0, shot.stderr[-2000:])
        with open(screenshot, "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
        print(f"\nstatus page screenshot: {screenshot}", flush=True)

        dom = subprocess.run(common + ["--dump-dom", url], env=env, capture_output=True,
                             text=True, timeout=BROWSER_TIMEOUT, stdin=subprocess.DEVNULL)
        self.assertEqual(dom.returncode, 0, dom.stderr[-2000:])
        tables = Tables()
        tables.feed(dom.stdout)
        listeners = [cells[0] for cls, cells in tables.tables.get("listeners", [])
                     if cls == "listener"]
        self.assertEqual(sorted(listeners), ["https-in", "smtp-in", "smtps-in"],
                         dom.stdout[-3000:])
        refusals = [cells for cls, cells in tables.tables.get("refusals", []) if cls == "refusal"]
        self.assertTrue(any(c[2] == "smtps-in" and c[3] == "tls_version" and
                            c[1].startswith("127.0.0.1:") for c in refusals), refusals)
        backends = [cells for cls, cells in tables.tables.get("backends", []) if cls == "backend"]
        self.assertTrue(any(c[2].startswith("up") for c in backends), backends)
        self.assertIn('data-version="TLSv1"', dom.stdout, "the TLS chart was drawn")


if __name__ == "__main__":
    unittest.main()
