"""The outbound relay (issue #3; README, "Deploy"; conf/outbound-relay.toml): the legacy host sends
plain SMTP to the proxy, which delivers to a next hop over STARTTLS with the modern profile,
`verify = "ca"` and `server_name`, judging the next hop's chain by policy. The next hop is a real
Postfix on loopback presenting either an MD5-signed intermediate (TLS 1.2+) or — the other failure —
only TLS 1.0. The sending side is swaks speaking plain SMTP, as Exchange 2010's send connector
would."""

import os
import shutil
import unittest

import lab


def setUpModule():
    lab.shared_certs()


class NextHopPostfix(lab.PostfixBackend):
    """A Postfix that offers STARTTLS with the given chain (NAME.key and NAME.chain.pem of the
    test PKI, or chain_pem when given), TLS 1.2 and later only."""

    def __init__(self, certs_dir, chain="md5leaf", chain_pem=None):
        super().__init__(certs_dir, tls="tls1.0-starttls")
        self.key, self.chain_pem = f"{chain}.key", chain_pem or f"{chain}.chain.pem"

    def configure(self):
        super().configure()
        for name in (self.key, self.chain_pem):
            shutil.copy(os.path.join(self.certs_dir, name), os.path.join(self.dir, "certs"))
            os.chmod(os.path.join(self.dir, "certs", name), 0o644)
        path = os.path.join(self.etc, "main.cf")
        with open(path) as f:
            main = f.read()
        main = main.replace("certs/sha1.key", f"certs/{self.key}")
        main = main.replace("certs/sha1.chain.pem", f"certs/{self.chain_pem}")
        main = main.replace(">=TLSv1, <=TLSv1", ">=TLSv1.2")
        with open(path, "w") as f:
            f.write(main)


def relay_listener(port, next_hop_port, **extra):
    listener = {
        "name": "smtp-out", "protocol": "smtp", "listen": f"127.0.0.1:{port}", "tls": "none",
        "require_tls": False,
        # A host name, so [[policy.rule]] can match the next hop by a glob.
        "backend": {"address": [f"localhost:{next_hop_port}"], "tls": "starttls",
                    "tls_profile": "modern", "verify": "ca", "server_name": "localhost"},
    }
    listener.update(extra)
    return listener


class OutboundRelayTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.certs = lab.shared_certs()
        cls.md5_hop = NextHopPostfix(cls.certs, chain="md5leaf")
        cls.addClassCleanup(cls.md5_hop.cleanup)
        cls.md5_hop.start()
        cls.good_hop = NextHopPostfix(cls.certs, chain="server")
        cls.addClassCleanup(cls.good_hop.cleanup)
        cls.good_hop.start()
        cls.tls10_hop = lab.PostfixBackend(cls.certs, tls="tls1.0-starttls")
        cls.addClassCleanup(cls.tls10_hop.cleanup)
        cls.tls10_hop.start()

    def start_proxy(self, next_hop, policy_toml=""):
        port = lab.free_port()
        listener = relay_listener(port, next_hop.port)
        listener["backend"]["ca_file"] = f"{self.certs}/ca.crt"
        proxy = lab.Tlsbridge([listener], [], extra_toml=policy_toml)
        self.addCleanup(proxy.cleanup)
        proxy.start()
        return proxy, port

    def send(self, port, marker):
        return lab.swaks(port, "--header", f"Subject: {marker}", tls=False)

    def only_record(self, proxy):
        records = proxy.wait_for_conn_records(1, listener="smtp-out")
        self.assertEqual(len(records), 1, proxy.describe())
        return records[0]

    def delivered(self, hop, marker):
        return [m for m in hop.messages() if marker.encode() in m]

    def test_good_next_hop_gets_the_mail_over_tls12(self):
        proxy, port = self.start_proxy(self.good_hop)
        result = self.send(port, "outbound-good")
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertTrue(self.good_hop.wait_for_message_containing(b"outbound-good"))
        record = self.only_record(proxy)
        self.assertIn(record["backend"]["tls"], ("TLSv1.2", "TLSv1.3"), record)
        self.assertIsNone(record["front"]["tls"], "the legacy host's side is plain SMTP")
        self.assertEqual(record["backend"]["chain"]["verdict"], "clean", record["backend"]["chain"])

    def test_md5_intermediate_refused_sender_gets_4xx_nothing_delivered(self):
        proxy, port = self.start_proxy(self.md5_hop)
        log_before = len(self.md5_hop.log())
        result = self.send(port, "outbound-md5-refused")
        self.assertNotEqual(result.returncode, 0, "swaks must not report success")
        self.assertRegex(result.stdout, r"<\*\* 421 4\.3\.0", "the sender gets a temporary 4xx")
        self.assertNotRegex(result.stdout, r"<\*?\s*250 .*queued", result.stdout)
        record = self.only_record(proxy)
        self.assertEqual(record["outcome"], "refused_policy", record)
        chain = record["backend"]["chain"]
        self.assertEqual(chain["verdict"], "refused", chain)
        self.assertIn({"kind": "weak_signature", "depth": 1, "detail": "md5WithRSAEncryption"},
                      chain["findings"])
        self.assertIn("md5WithRSAEncryption", record["reason"])
        # The next hop saw the TLS handshake but never a MAIL FROM.
        self.assertFalse(self.delivered(self.md5_hop, "outbound-md5-refused"))
        # The next hop saw EHLO and STARTTLS, then the handshake, and no transaction. Postfix logs
        # asynchronously: wait for the TLS line of this session before looking for its absence.
        self.md5_hop.wait_for_log(r"STARTTLS", timeout=10)
        new_log = self.md5_hop.log()[log_before:]
        self.assertNotRegex(new_log, r"< [^:]+: MAIL FROM", "no transaction may reach a refused "
                            "next hop")

    def test_md5_intermediate_logged_is_delivered_with_the_finding(self):
        proxy, port = self.start_proxy(self.md5_hop, '[policy]\non_weak_signature = "log"\n')
        result = self.send(port, "outbound-md5-logged")
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertTrue(self.md5_hop.wait_for_message_containing(b"outbound-md5-logged"))
        chain = self.only_record(proxy)["backend"]["chain"]
        self.assertEqual(chain["verdict"], "logged", chain)
        self.assertIn({"kind": "weak_signature", "depth": 1, "detail": "md5WithRSAEncryption"},
                      chain["findings"])

    def test_rule_for_that_peer_wins_over_policy(self):
        rules = ('[policy]\non_weak_signature = "refuse"\n\n'
                 '[[policy.rule]]\nlistener = "smtp-out"\npeer = "*.nowhere.example"\n'
                 'on_weak_signature = "refuse"\n\n'
                 '[[policy.rule]]\nlistener = "smtp-out"\npeer = "localhost"\n'
                 'on_weak_signature = "log"\n')
        proxy, port = self.start_proxy(self.md5_hop, rules)
        result = self.send(port, "outbound-md5-rule")
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertTrue(self.md5_hop.wait_for_message_containing(b"outbound-md5-rule"))
        self.assertEqual(self.only_record(proxy)["backend"]["chain"]["verdict"], "logged")

    def test_tls10_only_next_hop_refused_by_modern_profile(self):
        proxy, port = self.start_proxy(self.tls10_hop)
        result = self.send(port, "outbound-tls10")
        self.assertNotEqual(result.returncode, 0)
        self.assertRegex(result.stdout, r"<\*\* 421 4\.3\.0")
        record = self.only_record(proxy)
        self.assertEqual(record["outcome"], "backend_unavailable", record)
        self.assertRegex(record["reason"], r"backend TLS handshake: .*(unsupported protocol|"
                                           r"no protocols available|version)", record["reason"])
        self.assertFalse(self.delivered(self.tls10_hop, "outbound-tls10"))


class SampleConfigTest(unittest.TestCase):
    def test_conf_outbound_relay_is_valid(self):
        binary = os.environ.get("TLSBRIDGE_BINARY") or lab.DEFAULT_BINARY
        result = lab.run([binary, "check-config", "--config",
                          os.path.join(lab.SOURCE_DIR, "conf", "outbound-relay.toml")])
        self.assertEqual((result.returncode, result.stdout.strip()), (0, "ok"), result.stderr)


if __name__ == "__main__":
    unittest.main()
