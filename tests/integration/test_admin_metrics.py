"""The admin endpoint (README, "Operate"; issue #7): /healthz, /readyz and /metrics in the
Prometheus text format, parsed here (promtool is not in Debian 12), with counters that move as this
test's own traffic says they must."""

import re
import unittest
import urllib.request

import lab

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})? (-?[0-9.eE+-]+|\+Inf|NaN)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_prometheus(text):
    """{(name, frozenset(labels)): value}; raises on any line that is not valid exposition."""
    samples, types = {}, {}
    for line in text.splitlines():
        if not line:
            continue
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            assert kind in ("counter", "gauge", "histogram", "summary", "untyped"), line
            types[name] = kind
            continue
        match = SAMPLE.match(line)
        if not match:
            raise ValueError(f"not a Prometheus sample line: {line!r}")
        labels = frozenset(LABEL.findall(match.group(3) or ""))
        samples[(match.group(1), labels)] = float(match.group(4))
    return samples, types


def value(samples, name, **labels):
    want = set(labels.items())
    return sum(v for (n, l), v in samples.items() if n == name and want <= set(l))


class AdminMetricsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.certs = lab.shared_certs()
        cls.backend = lab.start_for_class(cls, lab.PostfixBackend(cls.certs, tls="tls1.0-starttls"))

    def setUp(self):
        self.port = lab.free_port()
        self.admin = lab.free_port()
        self.proxy = lab.Tlsbridge(
            [lab.smtp_listener(self.port, self.backend.port)],
            [lab.server_pair(self.certs)],
            admin=f"127.0.0.1:{self.admin}")
        self.addCleanup(self.proxy.cleanup)
        self.proxy.start()

    def get(self, path):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.admin}{path}", timeout=10) as r:
                return r.status, r.headers.get("Content-Type", ""), r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, "", e.read().decode()

    def scrape(self):
        status, ctype, body = self.get("/metrics")
        self.assertEqual(status, 200)
        self.assertIn("text/plain", ctype)
        return parse_prometheus(body)

    def test_health_and_readiness(self):
        self.assertEqual(self.get("/healthz")[0], 200)
        self.assertEqual(self.get("/readyz")[0], 200)
        self.assertEqual(self.get("/nothing")[0], 404)

    def test_counters_follow_traffic(self):
        before, types = self.scrape()
        self.assertEqual(types.get("tlsbridge_connections_total"), "counter")
        self.assertEqual(types.get("tlsbridge_backend_connect_seconds"), "histogram")
        self.assertEqual(types.get("tlsbridge_certificate_not_after_timestamp_seconds"), "gauge")

        for i in range(3):
            result = lab.swaks(self.port, "--header", f"Subject: metrics-{i}")
            self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        # One injection attempt: STARTTLS with a pipelined MAIL FROM.
        client = lab.SmtpClient(self.port)
        self.addCleanup(client.close)
        client.read_reply()
        client.command("EHLO metrics.test")
        client.send(b"STARTTLS\r\nMAIL FROM:<x@evil.test>\r\n")
        client.read_reply()
        client.close()
        self.proxy.wait_for_conn_records(4, listener="smtp-in")

        after, _ = self.scrape()
        ok = value(after, "tlsbridge_connections_total", listener="smtp-in", outcome="ok")
        ok_before = value(before, "tlsbridge_connections_total", listener="smtp-in", outcome="ok")
        self.assertGreaterEqual(ok - ok_before, 3, "three delivered sessions counted as ok")
        self.assertGreaterEqual(
            value(after, "tlsbridge_tls_versions_total", side="back", version="TLSv1")
            - value(before, "tlsbridge_tls_versions_total", side="back", version="TLSv1"), 3)
        front = sum(value(after, "tlsbridge_tls_versions_total", side="front", version=v)
                    for v in ("TLSv1.2", "TLSv1.3"))
        self.assertGreaterEqual(front, 3)
        self.assertGreaterEqual(
            value(after, "tlsbridge_policy_findings_total", side="back", kind="weak_signature",
                  action="log"), 3, "the legacy SHA-1 chain is logged, never refused")
        self.assertGreater(value(after, "tlsbridge_bytes_total", direction="in"),
                           value(before, "tlsbridge_bytes_total", direction="in"))
        self.assertGreaterEqual(value(after, "tlsbridge_starttls_injections_total",
                                      listener="smtp-in"), 1)
        self.assertGreaterEqual(value(after, "tlsbridge_backend_connect_seconds_count",
                                      listener="smtp-in"), 4)
        expiry = value(after, "tlsbridge_certificate_not_after_timestamp_seconds")
        self.assertGreater(expiry, 1.7e9, "notAfter of the front certificate as a timestamp")


if __name__ == "__main__":
    unittest.main()
