"""`tlsbridge report` over an audit file the real proxy wrote (README, "Report").

The proxy runs in front of the lab's Postfix (TLS 1.0 only, a SHA-1-signed certificate: a weak
chain) and real clients make a known set of connections: two messages over STARTTLS, a client
refused by `require_tls` before STARTTLS, a client outside `allow`, `openssl s_client -tls1` and
`-tls1_1` against an implicit TLS 1.2+ listener (refused in version negotiation, so their `conn`
records carry `client_hello`) and a TLS 1.3 client on that same port. The audit file (without the
lab's readiness probes) is then summarised plain, gzip-compressed and both together, and the
JSON's counts must be exactly those connections; the text and the HTML renderings are checked
too (the HTML parses with balanced tags and has SVG charts; Debian's chromium renders it headless
and keeps a screenshot next to the lab's files)."""

import gzip
import html.parser
import json
import os
import shutil
import smtplib
import socket
import ssl
import subprocess
import unittest

import lab

SNI = "old-outlook.example.test"


class TagBalance(html.parser.HTMLParser):
    """Counts the tags left open or closed out of order (void elements need no end tag)."""
    VOID = {"meta", "br", "img", "input", "link", "hr", "rect", "path", "circle", "line"}

    def __init__(self):
        super().__init__()
        self.stack, self.errors, self.tags = [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append(tag)

    def handle_endtag(self, tag):
        if tag in self.VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:]}")
        else:
            self.stack.pop()


class ReportTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.certs = certs = lab.shared_certs()
        cls.postfix = lab.start_for_class(cls, lab.PostfixBackend(certs))
        cls.port = {n: lab.free_port() for n in ("smtp", "smtps", "denied")}
        pf = cls.postfix.port
        listeners = [
            lab.smtp_listener(cls.port["smtp"], pf, name="smtp"),
            lab.smtp_listener(cls.port["smtps"], pf, name="smtps", tls="implicit"),
            lab.smtp_listener(cls.port["denied"], pf, name="denied", allow=["192.0.2.0/24"]),
        ]
        cls.proxy = lab.Tlsbridge(listeners, [lab.server_pair(certs)])
        cls.addClassCleanup(cls.proxy.cleanup)
        cls.proxy.start()
        cls.proxy.wait_for_probes_done()
        cls.make_traffic()
        cls.conns = cls.proxy.wait_for_conn_records(7, timeout=20)
        cls.dir = cls.proxy.dir
        # The generated audit file: every record but those of the lab's readiness probes.
        probes = cls.proxy.probe_clients
        probe_ids = {r["conn"] for r in cls.proxy.audit_records()
                     if r.get("event") == "conn" and r.get("client") in probes}
        cls.audit = os.path.join(cls.dir, "report-audit.jsonl")
        with open(cls.audit, "w") as out:
            for r in cls.proxy.audit_records():
                if r.get("conn") not in probe_ids:
                    out.write(json.dumps(r) + "\n")
        cls.audit_gz = cls.audit + ".1.gz"
        with open(cls.audit, "rb") as f, gzip.open(cls.audit_gz, "wb") as g:
            shutil.copyfileobj(f, g)

    @classmethod
    def make_traffic(cls):
        for _ in range(2):
            with smtplib.SMTP("127.0.0.1", cls.port["smtp"], timeout=20) as s:
                s.starttls(context=lab.client_context())
                s.sendmail("a@example.test", ["b@example.test"], b"Subject: r\r\n\r\nreport\r\n")
        c = lab.SmtpClient(cls.port["smtp"])
        try:
            c.read_reply()
            c.command("EHLO client.test")
            code, _ = c.command("MAIL FROM:<a@example.test>")
            assert code == "530", code
            c.command("QUIT")
        finally:
            c.close()
        c = lab.SmtpClient(cls.port["denied"])
        try:
            c.read_until_closed(timeout=20)
        finally:
            c.close()
        for flag in ("-tls1", "-tls1_1"):
            subprocess.run(["openssl", "s_client", flag, "-cipher", "DEFAULT:@SECLEVEL=0",
                            "-servername", SNI, "-connect", f"127.0.0.1:{cls.port['smtps']}"],
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=20)
        # The success path on the same port: a TLS 1.3 client is served.
        raw = socket.create_connection(("127.0.0.1", cls.port["smtps"]), timeout=15)
        with lab.client_context().wrap_socket(raw, server_hostname="localhost") as tls:
            assert tls.recv(4096).startswith(b"220"), "no greeting over implicit TLS"
            tls.sendall(b"QUIT\r\n")
            tls.recv(4096)

    def report(self, *args, check=True):
        run = subprocess.run([self.proxy.binary, "report", *args], capture_output=True,
                             timeout=60, text=True)
        if check:
            self.assertEqual(run.returncode, 0, run.stderr)
        return run

    def report_json(self, *files):
        return json.loads(self.report("--format", "json", *files).stdout)

    def test_a_failed_handshake_records_what_the_client_offered(self):
        failed = [r for r in self.conns if r["outcome"] == "tls_failed"]
        self.assertEqual(sorted(r["client_hello"]["max_version"] for r in failed),
                         ["TLSv1", "TLSv1.1"], self.proxy.describe())
        for r in failed:
            self.assertEqual(r["client_hello"]["sni"], SNI)
            self.assertIn("ECDHE-RSA-AES256-SHA", r["client_hello"]["ciphers"])
            self.assertEqual(r["v"], 1)
        served = [r for r in self.conns if r["listener"] == "smtps" and r["outcome"] == "ok"]
        self.assertEqual(len(served), 1, "the same port serves a TLS 1.2+ client")
        self.assertEqual(served[0]["front"]["tls"], "TLSv1.3")
        self.assertNotIn("client_hello", served[0])

    def test_the_json_counts_are_exact(self):
        s = self.report_json(self.audit)
        port = self.postfix.port
        self.assertEqual(s["records"]["unreadable"], 0)
        self.assertEqual(s["records"]["schema_versions"], {"1": s["records"]["read"]})
        conns = s["connections"]
        self.assertEqual(conns["total"], 7)
        self.assertEqual(conns["outcomes"], {"ok": 4, "tls_failed": 2, "denied": 1})
        self.assertEqual(conns["front_tls"], {"none": 4, "TLSv1.3": 3})
        self.assertEqual(conns["backend_tls"], {"TLSv1": 4})
        self.assertEqual(s["refusals"], {"denied": 1, "smtp.require_tls": 1})
        self.assertEqual(s["failed_handshakes"],
                         {"total": 2, "too_old_for_tls12": 2,
                          "by_max_version": {"TLSv1": 1, "TLSv1.1": 1}})
        self.assertEqual(list(s["client_networks"]), ["127.0.0.0/24"])
        net = s["client_networks"]["127.0.0.0/24"]
        self.assertEqual(net["connections"], 7)
        self.assertEqual(net["failed_handshakes"], {"TLSv1": 1, "TLSv1.1": 1})
        backend = s["backends"][f"127.0.0.1:{port}"]
        self.assertEqual(list(s["backends"]), [f"127.0.0.1:{port}"])
        self.assertEqual(backend["connections"], 4)
        self.assertEqual(backend["tls"], {"TLSv1": 4})
        self.assertEqual(backend["verdicts"], {"logged": 4})
        self.assertEqual(backend["weakest_finding"]["kind"], "weak_signature")
        self.assertEqual(backend["weakest_finding"]["detail"], "sha1WithRSAEncryption")
        self.assertEqual(s["auth_failures"]["total"], 0)
        self.assertEqual(s["activesync"]["requests"], 0)

    def test_gzip_reads_as_plain_and_files_add_up(self):
        plain = self.report_json(self.audit)
        self.assertEqual(self.report_json(self.audit_gz), plain)
        both = self.report_json(self.audit, self.audit_gz)
        self.assertEqual(both["connections"]["total"], 14)
        self.assertEqual(both["failed_handshakes"]["by_max_version"], {"TLSv1": 2, "TLSv1.1": 2})

    def test_since_leaves_out_older_records(self):
        self.assertEqual(self.report_json(self.audit)["records"]["skipped_before_since"], 0)
        run = self.report("--since", "1h", "--format", "json", self.audit)
        self.assertEqual(json.loads(run.stdout)["connections"]["total"], 7)
        old = os.path.join(self.dir, "old.jsonl")
        with open(self.audit) as f, open(old, "w") as out:
            for line in f:
                r = json.loads(line)
                r["ts"] = "2020-01-01T00:00:00.000Z"
                out.write(json.dumps(r, separators=(",", ":")) + "\n")
        s = json.loads(self.report("--since", "7d", "--format", "json", old, self.audit).stdout)
        self.assertEqual(s["connections"]["total"], 7)
        self.assertGreater(s["records"]["skipped_before_since"], 7)

    def test_bad_arguments_and_files_exit_1(self):
        self.assertEqual(self.report("--format", "xml", self.audit, check=False).returncode, 1)
        self.assertEqual(self.report("--since", "soon", self.audit, check=False).returncode, 1)
        missing = self.report(os.path.join(self.dir, "missing.jsonl"), check=False)
        self.assertEqual(missing.returncode, 1)
        self.assertIn("missing.jsonl", missing.stderr)

    def test_text_rendering(self):
        text = self.report(self.audit).stdout
        for expected in ("Client networks", "127.0.0.0/24", "weak_signature",
                         "Failed front handshakes", "TLSv1.1", "smtp.require_tls"):
            self.assertIn(expected, text)

    def test_html_rendering_is_well_formed_with_charts(self):
        page = self.report("--format", "html", self.audit_gz).stdout
        path = os.path.join(self.dir, "report.html")
        with open(path, "w") as f:
            f.write(page)
        parser = TagBalance()
        parser.feed(page)
        parser.close()
        self.assertEqual(parser.errors, [])
        self.assertEqual(parser.stack, [], "tags left open")
        self.assertGreaterEqual(parser.tags.count("svg"), 5)
        self.assertNotIn("http://", page.replace('xmlns="http://www.w3.org/2000/svg"', ""),
                         "no external asset")
        chromium = shutil.which("chromium")
        if not chromium:
            self.fail("chromium is missing: run scripts/setup")
        args = [chromium, "--headless", "--no-sandbox", "--disable-gpu",
                f"--user-data-dir={self.dir}/chromium"]
        dom = subprocess.run(args + ["--dump-dom", f"file://{path}"], capture_output=True,
                             text=True, timeout=120)
        self.assertIn("<svg", dom.stdout, dom.stderr[-2000:])
        self.assertIn("127.0.0.0/24", dom.stdout)
        shot = os.path.join(self.dir, "report.png")
        subprocess.run(args + [f"--screenshot={shot}", "--window-size=1200,1600", f"file://{path}"],
                       capture_output=True, timeout=120)
        self.assertTrue(os.path.getsize(shot) > 10000, "chromium rendered no screenshot")


if __name__ == "__main__":
    unittest.main()
