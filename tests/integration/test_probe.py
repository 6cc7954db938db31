"""`tlsbridge probe` and `tlsbridge inspect-cert` (README, "Command line"; issue #3 item 4) against
real local servers and the generated test PKI, and `check-config` on an expired own certificate
(item 3).

Exit codes: 0 the policy would let the peer through (clean, or findings it only logs), 2 it would
refuse, 1 no connection / no TLS version accepted / unreadable file. The test CA is not in the
system trust store, so without --ca every chain carries an `untrusted` finding, whose default
action is log: a good chain probes as exit 0 with verdict "logged"; with --ca ca.crt it is clean.
"""

import json
import os
import shutil
import unittest

import lab

VERSIONS = ["TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"]


def setUpModule():
    lab.shared_certs()


class ChainPostfix(lab.PostfixBackend):
    """A Postfix offering STARTTLS with the chain `chain` (NAME.chain.pem / NAME.key from the
    test PKI) and the protocol range `protocols` (Postfix syntax)."""

    def __init__(self, certs_dir, chain, protocols=">=TLSv1.2"):
        super().__init__(certs_dir, tls="tls1.0-starttls")
        self.chain = chain
        self.protocols = protocols

    def configure(self):
        super().configure()
        for name in (f"{self.chain}.key", f"{self.chain}.chain.pem"):
            shutil.copy(os.path.join(self.certs_dir, name), os.path.join(self.dir, "certs"))
            os.chmod(os.path.join(self.dir, "certs", name), 0o644)
        path = os.path.join(self.etc, "main.cf")
        with open(path) as f:
            main = f.read()
        main = main.replace("certs/sha1.key", f"certs/{self.chain}.key")
        main = main.replace("certs/sha1.chain.pem", f"certs/{self.chain}.chain.pem")
        main = main.replace(">=TLSv1, <=TLSv1", self.protocols)
        with open(path, "w") as f:
            f.write(main)


def binary():
    return os.environ.get("TLSBRIDGE_BINARY") or lab.DEFAULT_BINARY


def tlsbridge(*args, timeout=60):
    return lab.run([binary(), *args], timeout=timeout)


def describe(proc):
    return f"\nexit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"


class ConfigFiles:
    """Complete tlsbridge configs (a listener and a certificate, as load_config requires) that
    differ in their [policy] / own certificate, written under one lab directory."""

    def __init__(self, certs):
        self.certs = certs
        self.dir = lab.make_lab_dir("tlsbridge-probe-conf.")
        self.count = 0

    def write(self, extra_toml="", cert="server"):
        self.count += 1
        proxy = lab.Tlsbridge(
            [lab.smtp_listener(lab.free_port(), lab.free_port())],
            [(f"{self.certs}/{cert}.chain.pem", f"{self.certs}/{cert}.key")],
            extra_toml=extra_toml, directory=self.dir)
        path = os.path.join(self.dir, f"tlsbridge-{self.count}.toml")
        with open(path, "w") as f:
            f.write(proxy.config_text())
        return path

    def cleanup(self):
        if not lab.keep_lab():
            shutil.rmtree(self.dir, ignore_errors=True)


class ProbeTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.certs = lab.shared_certs()
        cls.configs = ConfigFiles(cls.certs)
        cls.addClassCleanup(cls.configs.cleanup)
        cls.tls10 = lab.PostfixBackend(cls.certs, tls="tls1.0-starttls")
        cls.implicit = lab.PostfixBackend(cls.certs, tls="tls1.0-implicit")
        cls.md5 = ChainPostfix(cls.certs, "md5leaf")
        cls.clean = ChainPostfix(cls.certs, "server")
        for backend in (cls.tls10, cls.implicit, cls.md5, cls.clean):
            cls.addClassCleanup(backend.cleanup)
            backend.start()

    def probe(self, port, *args, host="127.0.0.1"):
        return tlsbridge("probe", *args, f"{host}:{port}")

    def probe_json(self, port, *args, host="127.0.0.1"):
        proc = self.probe(port, "--json", *args, host=host)
        try:
            report = json.loads(proc.stdout)
        except json.JSONDecodeError as e:
            self.fail(f"--json output does not parse: {e}" + describe(proc))
        return proc, report

    def accepted(self, report):
        return [v["version"] for v in report["versions"] if v["accepted"]]

    def test_tls10_only_postfix(self):
        proc = self.probe(self.tls10.port, "--starttls", "smtp")
        self.assertEqual(proc.returncode, 2, "SHA-1 leaf is refused by default" + describe(proc))
        lines = proc.stdout.splitlines()
        table = {line.split()[0]: line.split()[1] for line in lines
                 if line.split() and line.split()[0] in VERSIONS}
        self.assertEqual(table, {"TLSv1": "accepted", "TLSv1.1": "refused",
                                 "TLSv1.2": "refused", "TLSv1.3": "refused"}, describe(proc))
        self.assertRegex(proc.stdout, r"weak_signature\s+depth 0\s+refuse\s+sha1WithRSAEncryption")
        self.assertIn("sig_alg     sha1WithRSAEncryption", proc.stdout)
        self.assertRegex(proc.stdout, r"(?m)^verdict: refused")

        proc, report = self.probe_json(self.tls10.port, "--starttls", "smtp")
        self.assertEqual(proc.returncode, 2, describe(proc))
        self.assertEqual(self.accepted(report), ["TLSv1"], report)
        self.assertEqual([v["version"] for v in report["versions"]], VERSIONS)
        self.assertTrue(report["versions"][0]["cipher"], report)
        self.assertTrue(all(v.get("reason") for v in report["versions"][1:]), report)
        self.assertEqual(report["target"], f"127.0.0.1:{self.tls10.port}")
        self.assertEqual(report["verdict"], "refused")
        self.assertEqual(report["chain"]["verdict"], "refused")
        leaf = report["chain"]["certs"][0]
        self.assertEqual(leaf["sig_alg"], "sha1WithRSAEncryption")
        self.assertEqual(leaf["key"], "rsa:2048")
        self.assertEqual(len(leaf["sha256"]), 64)
        self.assertIn({"kind": "weak_signature", "depth": 0, "detail": "sha1WithRSAEncryption",
                       "action": "refuse"}, report["chain"]["findings"])

    def test_md5_intermediate_exit_2_finding_at_depth_1(self):
        proc, report = self.probe_json(self.md5.port, "--starttls", "smtp")
        self.assertEqual(proc.returncode, 2, describe(proc))
        self.assertNotIn("TLSv1", self.accepted(report))
        self.assertIn("TLSv1.2", self.accepted(report))
        self.assertIn({"kind": "weak_signature", "depth": 1, "detail": "md5WithRSAEncryption",
                       "action": "refuse"}, report["chain"]["findings"], report)
        self.assertEqual(report["chain"]["certs"][1]["sig_alg"], "md5WithRSAEncryption")
        self.assertEqual(report["verdict"], "refused")

    def test_clean_chain_exit_0(self):
        # System store: the test CA is unknown, untrusted is logged, verdict logged, exit 0.
        proc, report = self.probe_json(self.clean.port, "--starttls", "smtp")
        self.assertEqual(proc.returncode, 0, describe(proc))
        self.assertEqual(report["verdict"], "logged", report)
        self.assertEqual([f["kind"] for f in report["chain"]["findings"]], ["untrusted"], report)
        self.assertEqual(report["chain_version"], "TLSv1.3", report)
        self.assertEqual(self.accepted(report), ["TLSv1.2", "TLSv1.3"], report)
        # Trusting the test CA, and the name matching, the chain is clean.
        proc, report = self.probe_json(self.clean.port, "--starttls", "smtp", "--ca",
                                       f"{self.certs}/ca.crt", "--servername", "mail.test")
        self.assertEqual(proc.returncode, 0, describe(proc))
        self.assertEqual(report["verdict"], "clean", report)
        self.assertEqual(report["sni"], "mail.test")
        # A name the certificate does not carry: name_mismatch, logged by default.
        proc, report = self.probe_json(self.clean.port, "--starttls", "smtp", "--ca",
                                       f"{self.certs}/ca.crt", "--servername", "other.test")
        self.assertEqual(proc.returncode, 0, describe(proc))
        self.assertEqual([f["kind"] for f in report["chain"]["findings"]], ["name_mismatch"])

    def test_implicit_tls_without_starttls(self):
        proc, report = self.probe_json(self.implicit.port)
        self.assertEqual(proc.returncode, 2, describe(proc))
        self.assertEqual(self.accepted(report), ["TLSv1"], report)
        self.assertEqual(report["starttls"], "none")

    def test_starttls_on_an_implicit_tls_port_is_exit_1(self):
        # The server waits for a ClientHello, the probe for a POP3 greeting: the read times out
        # (10 s), the dialogue fails, the other versions are not tried.
        proc, report = self.probe_json(self.implicit.port, "--starttls", "pop3")
        self.assertEqual(proc.returncode, 1, describe(proc))
        self.assertIn("could not connect", proc.stderr)
        self.assertEqual([v["tried"] for v in report["versions"]], [True, False, False, False])

    def test_nothing_listening_exit_1(self):
        port = lab.free_port()
        proc = self.probe(port, "--starttls", "smtp")
        self.assertEqual(proc.returncode, 1, describe(proc))
        self.assertIn(f"could not connect to 127.0.0.1:{port}", proc.stderr)
        self.assertIn("refused", proc.stderr)
        proc, report = self.probe_json(port)
        self.assertEqual(proc.returncode, 1)
        self.assertIsNone(report["verdict"])
        self.assertIn("connect", report["error"])

    def test_config_policy_log_turns_refusal_into_exit_0(self):
        config = self.configs.write('[policy]\non_weak_signature = "log"\n')
        proc, report = self.probe_json(self.tls10.port, "--starttls", "smtp", "--config", config)
        self.assertEqual(proc.returncode, 0, describe(proc))
        self.assertEqual(report["verdict"], "logged")

    def test_config_rule_by_host_glob(self):
        # The probe's peer is the host it was given: a [[policy.rule]] peer glob matches it.
        config = self.configs.write('[[policy.rule]]\npeer = "localhost"\n'
                                    'on_weak_signature = "log"\n')
        proc = self.probe(self.tls10.port, "--starttls", "smtp", "--config", config,
                          host="localhost")
        self.assertEqual(proc.returncode, 0, describe(proc))
        proc = self.probe(self.tls10.port, "--starttls", "smtp", "--config", config)
        self.assertEqual(proc.returncode, 2, "127.0.0.1 is not localhost" + describe(proc))

    def test_bad_command_lines_and_configs_exit_1(self):
        for args in (["probe"], ["probe", "nohostport"], ["probe", "--starttls", "ftp", "h:25"],
                     ["probe", "::1:25"],
                     ["probe", "--config", "/nonexistent.toml", f"127.0.0.1:{self.clean.port}"]):
            proc = tlsbridge(*args)
            self.assertEqual(proc.returncode, 1, f"{args}" + describe(proc))
            self.assertTrue(proc.stderr.strip(), args)

    def test_ipv6_target_syntax(self):
        # Postfix listens on IPv4 only: [::1]:PORT parses and fails to connect (exit 1).
        proc = tlsbridge("probe", f"[::1]:{self.clean.port}")
        self.assertEqual(proc.returncode, 1, describe(proc))
        self.assertIn("could not connect to [::1]:", proc.stderr)


class InspectCertTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.certs = lab.shared_certs()
        cls.configs = ConfigFiles(cls.certs)
        cls.addClassCleanup(cls.configs.cleanup)

    def inspect(self, *args):
        return tlsbridge("inspect-cert", *args)

    def path(self, name):
        return os.path.join(self.certs, name)

    def test_good_chain_exit_0(self):
        proc = self.inspect(self.path("server.chain.pem"))
        self.assertEqual(proc.returncode, 0, describe(proc))
        self.assertRegex(proc.stdout, r"(?m)^verdict: logged")
        proc = self.inspect("--ca", self.path("ca.crt"), self.path("server.chain.pem"))
        self.assertEqual(proc.returncode, 0, describe(proc))
        self.assertRegex(proc.stdout, r"(?m)^verdict: clean")

    def test_md5_intermediate_exit_2_depth_1(self):
        proc = self.inspect("--json", self.path("md5leaf.chain.pem"))
        self.assertEqual(proc.returncode, 2, describe(proc))
        report = json.loads(proc.stdout)
        self.assertEqual(report["files"], [self.path("md5leaf.chain.pem")])
        self.assertEqual(report["verdict"], "refused")
        self.assertIn({"kind": "weak_signature", "depth": 1, "detail": "md5WithRSAEncryption",
                       "action": "refuse"}, report["chain"]["findings"])

    def test_leaf_and_intermediate_in_separate_files(self):
        proc = self.inspect("--json", self.path("md5leaf.crt"), self.path("md5inter.crt"))
        self.assertEqual(proc.returncode, 2, describe(proc))
        self.assertEqual(len(json.loads(proc.stdout)["chain"]["certs"]), 2)

    def test_expired_exit_2(self):
        proc = self.inspect(self.path("expired.chain.pem"))
        self.assertEqual(proc.returncode, 2, describe(proc))
        self.assertRegex(proc.stdout, r"expired\s+depth 0\s+refuse")

    def test_config_on_weak_signature_log(self):
        config = self.configs.write('[policy]\non_weak_signature = "log"\n')
        proc = self.inspect("--config", config, self.path("md5leaf.chain.pem"))
        self.assertEqual(proc.returncode, 0, describe(proc))
        self.assertRegex(proc.stdout, r"weak_signature\s+depth 1\s+log\s+md5WithRSAEncryption")

    def test_unreadable_or_empty_files_exit_1(self):
        for path in ("/nonexistent/x.pem", self.path("server.key"), self.certs):
            proc = self.inspect(self.path("server.chain.pem"), path)
            self.assertEqual(proc.returncode, 1, f"{path}" + describe(proc))
            self.assertIn(path, proc.stderr)

    def test_check_config_refuses_expired_own_certificate(self):
        config = self.configs.write(cert="expired")
        proc = tlsbridge("check-config", "--config", config)
        self.assertEqual(proc.returncode, 1, describe(proc))
        self.assertIn("expired", proc.stderr)
        self.assertNotIn("ok", proc.stdout)
        config = self.configs.write("[policy]\nallow_expired_own_cert = true\n", cert="expired")
        proc = tlsbridge("check-config", "--config", config)
        self.assertEqual(proc.returncode, 0, describe(proc))
        self.assertEqual(proc.stdout.strip(), "ok")


if __name__ == "__main__":
    unittest.main()
