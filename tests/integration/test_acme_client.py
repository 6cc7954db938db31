"""The ACME client library (acme/, RFC 8555) against a real pebble: acme::obtain() run by the test
driver build/release/tests/acme_obtain_check, which answers the tls-alpn-01 challenges (RFC 8737)
with the certificates obtain() publishes, on the port where pebble validates them. pebble refuses
a share of nonces (badNonce), so the retries run too. Checked as an operator would: the chain
verifies with `openssl verify` to pebble's root, the key is the leaf's, the leaf names every name;
a name nobody answers for fails at its authorization and is named; pebble down fails at the
directory; an ACME server the trust does not cover, or whose certificate names another host, is
refused at the directory."""

import json
import os
import re
import tempfile
import unittest

import lab

BUILD_DIR = os.path.join(lab.SOURCE_DIR, "build", "release")
CHECK = os.environ.get("TLSBRIDGE_ACME_CHECK",
                       os.path.join(BUILD_DIR, "tests", "acme_obtain_check"))
PEM_CERT = re.compile(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----\n?", re.S)


class AcmeClientTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.access(CHECK, os.X_OK):
            raise lab.LabError(f"{CHECK} is not built: cmake --build --preset release "
                               "--target acme_obtain_check (or set TLSBRIDGE_ACME_CHECK)")
        cls.pebble = lab.Pebble(env={"PEBBLE_WFE_NONCEREJECT": "20"}).start()

    @classmethod
    def tearDownClass(cls):
        cls.pebble.cleanup()

    def obtain(self, names, unserved=(), directory=None, ca_file=None):
        out = tempfile.mkdtemp(dir=self.pebble.dir)
        argv = [CHECK, "--directory", directory or self.pebble.directory_url,
                "--ca-file", ca_file or self.pebble.ca_file,
                "--tls-port", str(self.pebble.tls_port), "--out", out,
                "--email", "ops@example.test", "--timeout", "60"]
        for name in names:
            argv += ["--name", name]
        for name in unserved:
            argv += ["--unserved", name]
        proc = lab.run(argv, timeout=90)
        with open(os.path.join(out, "result.json")) as f:
            result = json.load(f)
        context = f"{result}\n{proc.stderr}\npebble:\n{self.pebble.log()[-4000:]}"
        return proc, result, out, context

    def openssl(self, *argv):
        return lab.run(["openssl", *argv], check=True).stdout

    def test_obtains_a_chain_that_verifies_to_pebbles_root(self):
        names = ["mail.example.test", "owa.example.test", "autodiscover.example.test"]
        proc, result, out, context = self.obtain(names)
        self.assertTrue(result["ok"], context)
        self.assertEqual(proc.returncode, 0, context)
        self.assertEqual(result["still_published"], 0, "every challenge was withdrawn")
        for name in names:
            self.assertIn(f"publish {name}", proc.stderr)
            self.assertIn(f"challenge handshake for {name}", proc.stderr)
            self.assertIn(f"withdraw {name}", proc.stderr)

        with open(os.path.join(out, "chain.pem")) as f:
            certs = PEM_CERT.findall(f.read())
        self.assertGreaterEqual(len(certs), 2, "leaf and pebble's intermediate")
        files = {}
        for part, text in (("leaf", certs[0]), ("untrusted", "".join(certs[1:])),
                           ("root", self.pebble.root_pem())):
            files[part] = os.path.join(out, f"{part}.pem")
            with open(files[part], "w") as f:
                f.write(text)
        verify = lab.run(["openssl", "verify", "-CAfile", files["root"],
                          "-untrusted", files["untrusted"], files["leaf"]])
        self.assertEqual(verify.returncode, 0, verify.stdout + verify.stderr)
        self.assertIn(": OK", verify.stdout)
        # Not just any chain to that root: the one of this order.
        other_root = lab.run(["openssl", "verify", "-CAfile", self.pebble.ca_file,
                              "-untrusted", files["untrusted"], files["leaf"]])
        self.assertNotEqual(other_root.returncode, 0)

        self.assertEqual(self.openssl("x509", "-in", files["leaf"], "-noout", "-pubkey"),
                         self.openssl("pkey", "-in", os.path.join(out, "key.pem"), "-pubout"),
                         "key.pem is the leaf's key")
        san = self.openssl("x509", "-in", files["leaf"], "-noout", "-ext", "subjectAltName")
        self.assertEqual(sorted(re.findall(r"DNS:([\w.-]+)", san)), sorted(names))

    def test_a_name_nobody_answers_for_fails_its_authorization_and_is_named(self):
        proc, result, out, context = self.obtain(
            ["mail.example.test", "nobody.example.test"], unserved=["nobody.example.test"])
        self.assertFalse(result["ok"], context)
        self.assertEqual(proc.returncode, 1)
        self.assertIn(result["step"], ("authorization", "challenge"), context)
        self.assertEqual(result["failed_names"], ["nobody.example.test"], context)
        self.assertIn("nobody.example.test", result["error"])
        self.assertEqual(result["still_published"], 0, "the failed challenge was withdrawn")
        self.assertFalse(os.path.exists(os.path.join(out, "chain.pem")))
        # The name that answered is good on this very pebble and port.
        proc, result, _, context = self.obtain(["mail.example.test"])
        self.assertTrue(result["ok"], context)

    def test_pebble_down_fails_at_the_directory(self):
        port = lab.free_port()
        _, result, _, context = self.obtain(["mail.example.test"],
                                            directory=f"https://127.0.0.1:{port}/dir")
        self.assertFalse(result["ok"])
        self.assertEqual(result["step"], "directory", context)
        self.assertIn(f"cannot connect to 127.0.0.1:{port}", result["error"])
        self.assertIn("Connection refused", result["error"])

    def test_an_acme_server_outside_the_trust_is_refused_at_the_directory(self):
        other = os.path.join(self.pebble.dir, "other-ca.pem")
        lab.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                 "ec_paramgen_curve:P-256", "-nodes", "-keyout", other + ".key", "-out", other,
                 "-days", "1", "-subj", "/CN=not pebble"], check=True)
        _, result, _, context = self.obtain(["mail.example.test"], ca_file=other)
        self.assertFalse(result["ok"])
        self.assertEqual(result["step"], "directory", context)
        self.assertEqual(result["error"],
                         "TLS handshake with 127.0.0.1 failed: self-signed certificate", context)

    def test_the_acme_servers_name_is_verified(self):
        # By name (SNI and host name check) the shared pebble is good...
        _, result, _, context = self.obtain(
            ["mail.example.test"], directory=f"https://localhost:{self.pebble.port}/dir")
        self.assertTrue(result["ok"], context)
        # ...and a pebble whose certificate names another host is refused, by name and by address.
        with lab.Pebble(https_san="DNS:acme.invalid") as wrong:
            for host, why in (("localhost", "hostname mismatch"), ("127.0.0.1", "IP address mismatch")):
                _, result, _, context = self.obtain(
                    ["mail.example.test"], directory=f"https://{host}:{wrong.port}/dir",
                    ca_file=wrong.ca_file)
                self.assertFalse(result["ok"])
                self.assertEqual(result["step"], "directory", context)
                self.assertEqual(result["error"], f"TLS handshake with {host} failed: {why}")


if __name__ == "__main__":
    unittest.main()
