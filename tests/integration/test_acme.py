"""ACME inside the proxy ([acme], [[certs]] acme = [...]; README "Deploying with ACME").

Without a CA (AcmeStateTest): an acme entry starts on a self-signed placeholder, served by SNI on
an implicit-TLS listener and on a STARTTLS SMTP listener in front of the lab's Postfix; a CA that
does not answer is reported (warn line, tlsbridge_acme_failures_total, status.json, /status.json,
`tlsbridge acme status`, `tlsbridge acme renew` exiting 1) and never swaps what is served; a valid
certificate already in state_dir is served at start with no order; "acme-tls/1" for a name with
no challenge in progress fails its handshake while an ordinary one on the same port succeeds.

Against Debian's pebble (PebbleTest): the certificate is obtained through tls-alpn-01 answered on
the proxy's own listener, its chain verifies against pebble's roots, a restart reuses it, `acme
renew` serves a new one while an older connection keeps working, pebble down at start is
retried, and a name whose validation fails is reported while another entry gets its
certificate. Skipped while the ACME client is the placeholder that fails every order.
"""

import json
import os
import re
import smtplib
import socket
import ssl
import subprocess
import tempfile
import time
import unittest
import urllib.request

import lab
import test_audit_schema
from test_admin_metrics import parse_prometheus
from test_https import https_listener

NAMES = ["mail.acme.test", "autodiscover.acme.test"]
PLACEHOLDER_CN = "tlsbridge ACME placeholder (not yet issued)"


def peer_der(port, server_name, alpn=None, timeout=10):
    """The leaf the proxy shows on an implicit-TLS port for server_name (DER)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(alpn)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw:
        with ctx.wrap_socket(raw, server_hostname=server_name) as tls:
            return tls.getpeercert(binary_form=True)


def starttls_der(port, server_name, timeout=15):
    """The leaf the proxy shows after STARTTLS on an SMTP port for server_name (DER)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with smtplib.SMTP("127.0.0.1", port, local_hostname="client.test", timeout=timeout) as smtp:
        smtp._host = server_name  # the SNI smtplib sends
        smtp.starttls(context=ctx)
        der = smtp.sock.getpeercert(binary_form=True)
        smtp.noop()
        return der


def cert_fields(der):
    """subject CN, serial (hex) and SHA-256 fingerprint of a DER certificate."""
    out = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-subject", "-serial",
                          "-fingerprint", "-sha256", "-nameopt", "multiline"],
                         input=der, capture_output=True, timeout=20, check=True).stdout.decode()
    cn = re.search(r"commonName\s*=\s*(.+)", out)
    return {"cn": cn.group(1).strip() if cn else "",
            "serial": re.search(r"serial=(\w+)", out).group(1),
            "sha256": re.search(r"Fingerprint=(\S+)", out).group(1)}


def acme_failures(samples, **labels):
    """tlsbridge_acme_failures_total summed over the samples carrying every label given (its
    `name` label cannot be a keyword of test_admin_metrics.value)."""
    want = set(labels.items())
    return sum(v for (n, l), v in samples.items()
               if n == "tlsbridge_acme_failures_total" and want <= set(l))


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def client_missing(entry):
    """True when the order failed because the ACME client is still the placeholder."""
    return entry.get("result") == "failed" and (
        "not built yet" in entry.get("error", "") or entry.get("step") == "account_key")


def acme_cli(binary, *args, timeout=120):
    return subprocess.run([binary, "acme", *args], capture_output=True, text=True,
                          timeout=timeout)


class AcmeLab:
    """A proxy with acme entries: an implicit-TLS https listener (the tls-alpn-01 port), a
    STARTTLS SMTP listener in front of Postfix, the admin endpoint and a pid file."""

    def __init__(self, postfix_port, directory_url, ca_file="", entries=(NAMES,),
                 state_dir=None, tls_port=None):
        self.tls_port = tls_port or lab.free_port()
        self.smtp_port = lab.free_port()
        self.admin_port = lab.free_port()
        self.dir = lab.make_lab_dir("tlsbridge-acme.")
        self.state_dir = state_dir or os.path.join(self.dir, "acme")
        self.pid_file = os.path.join(self.dir, "tlsbridge.pid")
        acme = {"directory": directory_url, "email": "hostmaster@acme.test",
                "ca_file": ca_file, "state_dir": self.state_dir, "renew_before": "30d"}
        extra = [lab.toml_table("acme", acme)]
        for names in entries:
            extra.append(lab.toml_table("[certs]", {"acme": list(names)}))
        self.proxy = lab.Tlsbridge(
            [https_listener("https-in", self.tls_port, lab.free_port()),
             lab.smtp_listener(self.smtp_port, postfix_port)],
            [], directory=self.dir, admin=f"127.0.0.1:{self.admin_port}",
            server={"pid_file": self.pid_file}, extra_toml="\n\n".join(extra))

    def start(self):
        self.proxy.start()
        return self

    def config(self):
        return self.proxy.config_path

    def status_file(self):
        return read_json(os.path.join(self.state_dir, "status.json")) or {}

    def entry(self, first_name):
        for e in self.status_file().get("entries", []):
            if e["names"][0] == first_name:
                return e
        return {}

    def admin(self, path):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}{path}", timeout=10) as r:
            return r.read().decode()

    def served(self, name=NAMES[0]):
        return cert_fields(peer_der(self.tls_port, name))


class AcmeTestCase(unittest.TestCase):
    """The lab's Postfix behind the SMTP listener, and acme_lab(): a started AcmeLab against
    the CA that ca() names, cleaned up after the test."""

    @classmethod
    def setUpClass(cls):
        cls.certs = lab.shared_certs()
        cls.postfix = lab.PostfixBackend(cls.certs, tls="tls1.0-starttls")
        cls.addClassCleanup(cls.postfix.cleanup)
        cls.postfix.start()

    def ca(self):
        """(directory URL, ca_file, tls-alpn-01 port or None)."""
        raise NotImplementedError

    def acme_lab(self, **kw):
        directory, ca_file, tls_port = self.ca()
        l = AcmeLab(self.postfix.port, directory, ca_file=ca_file, tls_port=tls_port, **kw)
        self.addCleanup(l.proxy.cleanup)
        return l.start()


class AcmeStateTest(AcmeTestCase):
    def ca(self):
        # Nothing listens on this port: every order fails at its first step.
        return (f"https://127.0.0.1:{lab.free_port()}/dir", os.path.join(self.certs, "ca.crt"),
                None)

    def test_placeholder_served_and_a_failed_order_reported(self):
        l = self.acme_lab()
        served = l.served()
        self.assertEqual(served["cn"], PLACEHOLDER_CN, l.proxy.describe())
        # The same certificate by SNI after STARTTLS on the mail listener (shared [[certs]]).
        self.assertEqual(cert_fields(starttls_der(l.smtp_port, NAMES[1]))["sha256"],
                         served["sha256"])
        # The failed first order: warn line, metric, status.json, /status.json.
        self.assertTrue(lab.wait_until(lambda: l.entry(NAMES[0]).get("result") == "failed", 60),
                        l.proxy.describe())
        entry = l.entry(NAMES[0])
        self.assertTrue(entry["step"], entry)
        self.assertGreater(entry["next_attempt"], entry["last_attempt"])
        self.assertRegex(l.proxy.stderr(), r"warn.*acme: order for mail\.acme\.test, "
                                           r"autodiscover\.acme\.test failed at step")
        samples, _ = parse_prometheus(l.admin("/metrics"))
        self.assertGreaterEqual(acme_failures(samples, name=NAMES[0], step=entry["step"]), 1)
        page = json.loads(l.admin("/status.json"))
        self.assertEqual(page["acme"][0]["names"], NAMES)
        self.assertEqual(page["acme"][0]["result"], "failed")
        self.assertTrue(page["acme"][0]["placeholder"])
        # acme status: works from the files, whether or not the proxy runs.
        status = acme_cli(l.proxy.binary, "status", "--config", l.config())
        self.assertEqual(status.returncode, 0, status.stderr)
        self.assertRegex(status.stdout, r"mail\.acme\.test,autodiscover\.acme\.test\s+placeholder"
                                        r".*failed at ")
        # acme renew: a forced attempt, its failure, exit 1; the placeholder still served.
        before = l.entry(NAMES[0])["last_attempt"]
        renew = acme_cli(l.proxy.binary, "renew", "--config", l.config(), "--timeout", "90",
                         NAMES[1])
        self.assertEqual(renew.returncode, 1, renew.stdout + renew.stderr)
        self.assertIn("failed at", renew.stdout)
        self.assertGreaterEqual(l.entry(NAMES[0])["last_attempt"], before)
        self.assertIn("requested (tlsbridge acme renew)", l.proxy.stderr())
        self.assertEqual(l.served()["sha256"], served["sha256"])
        # A failure never swaps a certificate in: the files are the placeholder's still.
        self.assertNotIn("acme: new certificate", l.proxy.stderr())
        l.proxy.stop()
        status = acme_cli(l.proxy.binary, "status", "--config", l.config())
        self.assertEqual(status.returncode, 0, status.stderr)
        self.assertIn("placeholder", status.stdout)
        renew = acme_cli(l.proxy.binary, "renew", "--config", l.config(), "--timeout", "5")
        self.assertEqual(renew.returncode, 1)
        self.assertIn("not running", renew.stderr)

    def test_acme_alpn_without_a_challenge_fails_ordinary_handshakes_do_not(self):
        l = self.acme_lab()
        with self.assertRaises((ssl.SSLError, ConnectionError, OSError)):
            peer_der(l.tls_port, NAMES[0], alpn=["acme-tls/1"])
        # The same port and name, ordinary ALPN: served, http/1.1 as before.
        self.assertEqual(l.served()["cn"], PLACEHOLDER_CN)
        records = l.proxy.wait_for_conn_records(
            1, "https-in", where=lambda r: r["outcome"] == "tls_failed")
        self.assertTrue(records, l.proxy.describe())

    def test_a_valid_certificate_in_state_dir_is_reused_without_an_order(self):
        state = tempfile.mkdtemp(prefix="tlsbridge-acme-state.", dir="/tmp")
        self.addCleanup(subprocess.run, ["rm", "-rf", state])
        os.chmod(state, 0o700)
        crt, key = (os.path.join(state, NAMES[0] + ext) for ext in (".crt", ".key"))
        ext = os.path.join(state, "san.ext")
        with open(ext, "w") as f:
            f.write("subjectAltName=" + ",".join("DNS:" + n for n in NAMES) + "\n")
        lab.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-nodes", "-keyout", key, "-subj", "/CN=" + NAMES[0], "-out", crt + ".csr"],
                check=True)
        lab.run(["openssl", "x509", "-req", "-in", crt + ".csr", "-CA",
                 os.path.join(self.certs, "inter.crt"), "-CAkey",
                 os.path.join(self.certs, "inter.key"), "-set_serial", "4242", "-days", "80",
                 "-extfile", ext, "-out", crt], check=True)
        os.chmod(key, 0o600)
        l = self.acme_lab(state_dir=state)
        self.assertEqual(l.served()["cn"], NAMES[0], l.proxy.describe())
        self.assertTrue(lab.wait_until(lambda: l.entry(NAMES[0]), 20), l.proxy.describe())
        entry = l.entry(NAMES[0])
        self.assertEqual(entry["last_attempt"], 0, entry)
        self.assertFalse(entry["placeholder"])
        # Renewal planned 30 days before notAfter (80 days): about 50 days from now.
        self.assertGreater(entry["next_attempt"], time.time() + 45 * 86400)
        self.assertNotIn("acme: ordering", l.proxy.stderr())


# --- against pebble ------------------------------------------------------------------------


class PebbleTest(AcmeTestCase):
    def setUp(self):
        # Prepared and resolving names; each test starts the CA itself, or first without it.
        self.pebble = lab.Pebble(tls_port=lab.free_port(), env={"PEBBLE_WFE_NONCEREJECT": "0"})
        self.addCleanup(self.pebble.cleanup)
        self.pebble.start_dns()

    def ca(self):
        return self.pebble.directory_url, self.pebble.ca_file, self.pebble.tls_port

    def wait_issued(self, l, first_name=NAMES[0], timeout=150, after=0):
        def issued():
            e = l.entry(first_name)
            if client_missing(e):
                raise unittest.SkipTest("the ACME client (acme/obtain.cpp) is the placeholder")
            return e.get("result") == "ok" and e.get("last_attempt", 0) >= after
        ok = lab.wait_until(issued, timeout, interval=0.25)
        self.assertTrue(ok, f"{l.entry(first_name)}\n{l.proxy.describe()}\n{self.pebble.log()[-4000:]}")

    def verify_chain(self, der):
        d = tempfile.mkdtemp(prefix="tlsbridge-verify.", dir="/tmp")
        self.addCleanup(subprocess.run, ["rm", "-rf", d])
        for name, text in (("root.pem", self.pebble.root_pem()),
                           ("inter.pem", self.pebble.intermediate_pem())):
            with open(os.path.join(d, name), "w") as f:
                f.write(text)
        leaf = os.path.join(d, "leaf.pem")
        with open(leaf, "w") as f:
            f.write(ssl.DER_cert_to_PEM_cert(der))
        return lab.run(["openssl", "verify", "-CAfile", os.path.join(d, "root.pem"),
                        "-untrusted", os.path.join(d, "inter.pem"), leaf])

    def test_obtained_served_reused_and_renewed(self):
        self.pebble.start()
        l = self.acme_lab()
        self.wait_issued(l)
        # Served through the reload: poll until the listener shows it (bounded).
        self.assertTrue(lab.wait_until(lambda: l.served()["cn"] != PLACEHOLDER_CN, 30),
                        l.proxy.describe())
        der = peer_der(l.tls_port, NAMES[1])
        verified = self.verify_chain(der)
        self.assertEqual(verified.returncode, 0, verified.stdout + verified.stderr)
        self.assertEqual(cert_fields(starttls_der(l.smtp_port, NAMES[0]))["sha256"],
                         cert_fields(der)["sha256"])
        challenges = l.proxy.wait_for_conn_records(
            1, "https-in", where=lambda r: r["outcome"] == "acme_challenge")
        self.assertTrue(challenges, l.proxy.describe())
        # The validation handshakes' records are valid audit records, named as such.
        schema = test_audit_schema.validator(test_audit_schema.load_schema())
        for record in challenges:
            schema.validate(record)
            self.assertIn("tls-alpn-01 validation handshake for", record["reason"])
        first = cert_fields(der)
        # Restart: the certificate in state_dir is served, no new order.
        orders = self.pebble.orders()
        l.proxy.stop()
        l.proxy.start()
        self.assertEqual(l.served()["sha256"], first["sha256"])
        self.assertTrue(lab.wait_until(lambda: l.entry(NAMES[0]).get("next_attempt", 0) >
                                       time.time() + 86400, 20))
        self.assertEqual(self.pebble.orders(), orders)
        # acme renew: a new certificate, while a connection opened before keeps working.
        smtp = smtplib.SMTP("127.0.0.1", l.smtp_port, local_hostname="client.test", timeout=30)
        self.addCleanup(smtp.close)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        smtp._host = NAMES[0]
        smtp.starttls(context=ctx)
        renew = acme_cli(l.proxy.binary, "renew", "--config", l.config(), "--timeout", "150")
        self.assertEqual(renew.returncode, 0, renew.stdout + renew.stderr + l.proxy.describe())
        self.assertTrue(lab.wait_until(lambda: l.served()["serial"] != first["serial"], 30))
        self.assertEqual(smtp.noop()[0], 250)
        self.assertEqual(smtp.sock.getpeercert(binary_form=True), der)

    def test_pebble_down_at_start_then_up(self):
        l = self.acme_lab()
        self.assertEqual(l.served()["cn"], PLACEHOLDER_CN)
        self.assertTrue(lab.wait_until(lambda: l.entry(NAMES[0]).get("result") == "failed", 60))
        if client_missing(l.entry(NAMES[0])):
            self.skipTest("the ACME client (acme/obtain.cpp) is the placeholder")
        self.assertRegex(l.proxy.stderr(), r"warn.*acme: order for mail\.acme\.test")
        self.pebble.start()
        # The first retry comes 45 to 60 s after the failure.
        self.wait_issued(l, timeout=120)
        self.assertTrue(lab.wait_until(lambda: l.served()["cn"] != PLACEHOLDER_CN, 30))

    def test_a_failing_name_is_reported_while_another_entry_is_issued(self):
        self.pebble.set_a("bad.acme.test", "127.0.0.2")  # nothing listens there
        self.pebble.start()
        l = self.acme_lab(entries=(["bad.acme.test"], NAMES))
        self.wait_issued(l, NAMES[0])
        self.assertTrue(lab.wait_until(lambda: l.entry("bad.acme.test").get("result") == "failed",
                                       60))
        self.assertEqual(l.served("bad.acme.test")["cn"], PLACEHOLDER_CN)
        self.assertRegex(l.proxy.stderr(), r"warn.*acme: order for bad\.acme\.test failed")
        samples, _ = parse_prometheus(l.admin("/metrics"))
        self.assertGreaterEqual(acme_failures(samples, name="bad.acme.test"), 1)


if __name__ == "__main__":
    unittest.main()
