"""Strict outbound trust (docs/configuration.md, "[policy]" and "[[policy.rule]]"): an outbound
SMTP relay listener with `verify = "ca"` refuses a next hop — the lab's Postfix — whose certificate
is self-signed, from a CA that is not in ca_file, or for another name, although [policy] keeps its
`on_untrusted = "log"` / `on_name_mismatch = "log"` defaults: the sender (swaks in plain SMTP, as
Exchange's send connector) gets a 4xx and Postfix never sees a transaction. On the same listener and
port, after a reload with the right ca_file / server_name, or with a [[policy.rule]] whose `peer` is
the backend's IP address, the mail is delivered and the audit `chain.rule` names what decided.

The client connects from 127.0.0.3, so a rule for "127.0.0.1" can only match the backend address."""

import os
import shutil
import signal
import unittest

import lab
from test_outbound_relay import NextHopPostfix

CLIENT_IP = "127.0.0.3"


def setUpModule():
    lab.shared_certs()


class OutboundTrustTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.certs = lab.shared_certs()
        # selfsigned.crt: CN=selfsigned.test, SAN localhost + 127.0.0.1, in no trust store.
        cls.self_signed_hop = NextHopPostfix(cls.certs, "selfsigned", chain_pem="selfsigned.crt")
        cls.addClassCleanup(cls.self_signed_hop.cleanup)
        cls.self_signed_hop.start()
        # server.chain.pem: localhost / mail.test / 127.0.0.1, under inter <- ca.
        cls.good_hop = NextHopPostfix(cls.certs, "server")
        cls.addClassCleanup(cls.good_hop.cleanup)
        cls.good_hop.start()

    def start_proxy(self, hop, ca, server_name="localhost", policy_toml=""):
        """The relay listener to hop by IP, verify = "ca" against a copy of `ca` (so a test can
        swap the file and reload). No [policy] table unless policy_toml brings one."""
        port = lab.free_port()
        self.ca_path = os.path.join(lab.make_lab_dir("tlsbridge-trust-ca."), "ca.pem")
        self.addCleanup(shutil.rmtree, os.path.dirname(self.ca_path), True)
        shutil.copy(os.path.join(self.certs, ca), self.ca_path)
        listener = {
            "name": "smtp-out", "protocol": "smtp", "listen": f"127.0.0.1:{port}", "tls": "none",
            "require_tls": False,
            "backend": {"address": [f"127.0.0.1:{hop.port}"], "tls": "starttls",
                        "tls_profile": "modern", "verify": "ca", "ca_file": self.ca_path,
                        "server_name": server_name},
        }
        proxy = lab.Tlsbridge([listener], [], extra_toml=policy_toml)
        self.addCleanup(proxy.cleanup)
        proxy.start()
        return proxy, port

    def reload(self, proxy):
        """Rewrites the proxy's config from its (changed) attributes and sends SIGHUP."""
        before = proxy.stderr().count("reload done")
        with open(proxy.config_path, "w") as f:
            f.write(proxy.config_text())
        proxy.proc.send_signal(signal.SIGHUP)
        self.assertTrue(lab.wait_until(lambda: proxy.stderr().count("reload done") > before, 10),
                        proxy.stderr())

    def send(self, port, marker):
        return lab.swaks(port, "--header", f"Subject: {marker}", "--local-interface", CLIENT_IP,
                         tls=False)

    def record(self, proxy, n):
        """The n-th conn record (1-based) of our client on smtp-out."""
        records = proxy.wait_for_conn_records(
            n, listener="smtp-out", where=lambda r: r["client"].startswith(CLIENT_IP + ":"))
        self.assertEqual(len(records), n, proxy.describe())
        return records[n - 1]

    def assert_refused(self, proxy, hop, port, marker, kind):
        """The relay answers 4xx, the next hop never sees a transaction, the record says why."""
        log_before = len(hop.log())
        result = self.send(port, marker)
        self.assertNotEqual(result.returncode, 0, "swaks must not report success")
        self.assertRegex(result.stdout, r"<\*\* 421 4\.3\.0", "the sender gets a temporary 4xx")
        record = self.record(proxy, 1)
        self.assertEqual(record["outcome"], "refused_policy", record)
        chain = record["backend"]["chain"]
        self.assertEqual(chain["verdict"], "refused", chain)
        self.assertEqual(chain["rule"], "default", chain)
        self.assertIn(kind, [f["kind"] for f in chain["findings"]], chain)
        self.assertIn(kind, record["reason"])
        # Postfix saw EHLO, STARTTLS and the handshake, then nothing: no MAIL FROM, no queue file.
        self.assertTrue(hop.wait_for_log(r"STARTTLS", timeout=10))
        new_log = hop.log()[log_before:]
        self.assertNotRegex(new_log, r"< [^:]+: MAIL FROM", new_log)
        self.assertNotRegex(new_log, r"cleanup\[\d+\]: [0-9A-F]+: message-id", new_log)
        self.assertFalse([m for m in hop.messages() if marker.encode() in m])
        return record

    def assert_delivered(self, proxy, hop, port, marker, verdict, rule):
        result = self.send(port, marker)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertTrue(hop.wait_for_message_containing(marker.encode()))
        record = self.record(proxy, 2)
        self.assertEqual(record["outcome"], "ok", record)
        chain = record["backend"]["chain"]
        self.assertEqual((chain["verdict"], chain["rule"]), (verdict, rule), chain)
        return chain

    def test_self_signed_next_hop_refused_until_a_rule_names_its_address(self):
        proxy, port = self.start_proxy(self.self_signed_hop, "ca.crt")
        refused = self.assert_refused(proxy, self.self_signed_hop, port, "trust-self-signed",
                                      "self_signed")
        self.assertIn("untrusted", [f["kind"] for f in refused["backend"]["chain"]["findings"]])
        # Rule 0 is for someone else; rule 1 names the next hop by IP (the client is 127.0.0.3).
        proxy.extra_toml = ('[[policy.rule]]\npeer = "*.nowhere.example"\non_untrusted = "log"\n\n'
                            '[[policy.rule]]\nlistener = "smtp-out"\npeer = "127.0.0.1"\n'
                            'on_untrusted = "log"\n')
        self.reload(proxy)
        chain = self.assert_delivered(proxy, self.self_signed_hop, port, "trust-rule-by-ip",
                                      "logged", 1)
        self.assertIn("self_signed", [f["kind"] for f in chain["findings"]], chain)

    def test_ca_not_in_ca_file_refused_then_right_ca_delivered(self):
        proxy, port = self.start_proxy(self.good_hop, "otherca.crt")
        self.assert_refused(proxy, self.good_hop, port, "trust-other-ca", "untrusted")
        shutil.copy(os.path.join(self.certs, "ca.crt"), self.ca_path)
        self.reload(proxy)
        self.assert_delivered(proxy, self.good_hop, port, "trust-right-ca", "clean", "default")

    def test_wrong_name_refused_then_right_name_delivered(self):
        proxy, port = self.start_proxy(self.good_hop, "ca.crt", server_name="mx.nowhere.test")
        self.assert_refused(proxy, self.good_hop, port, "trust-wrong-name", "name_mismatch")
        proxy.listeners[0]["backend"]["server_name"] = "mail.test"
        self.reload(proxy)
        self.assert_delivered(proxy, self.good_hop, port, "trust-right-name", "clean", "default")


class PeerPatternCheckTest(unittest.TestCase):
    def test_check_config_rejects_a_peer_that_matches_nothing_with_file_and_line(self):
        directory = lab.make_lab_dir("tlsbridge-trust-conf.")
        self.addCleanup(shutil.rmtree, directory, True)
        path = os.path.join(directory, "tlsbridge.toml")
        listener = ('[[listener]]\nname = "smtp-out"\nlisten = "127.0.0.1:2526"\ntls = "none"\n'
                    '[listener.backend]\naddress = "127.0.0.1:25"\n')
        binary = os.environ.get("TLSBRIDGE_BINARY") or lab.DEFAULT_BINARY
        for peer, ok in (("127.0.0.1", True), ("mx*.example.net", True), ("127.0.0.*", False),
                         ("a..example", False)):
            with self.subTest(peer=peer):
                with open(path, "w") as f:
                    f.write(listener + f'\n[[policy.rule]]\npeer = "{peer}"\non_untrusted = "log"\n')
                result = lab.run([binary, "check-config", "--config", path])
                if ok:
                    self.assertEqual((result.returncode, result.stdout.strip()), (0, "ok"),
                                     result.stderr)
                else:
                    self.assertNotEqual(result.returncode, 0)
                    self.assertIn(f"{path}:9:", result.stderr)
                    self.assertIn("policy.rule[0].peer", result.stderr)


if __name__ == "__main__":
    unittest.main()
