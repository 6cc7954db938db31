"""Front-leg client certificates (`client_certs` in conf/tlsbridge.toml, the certificate policy in
policy/; issue #3): a client chain is judged in full inside the handshake — refused by a TLS alert,
or logged — and the `conn` record carries it. Each refusal is shown next to a success on the same
port."""

import socket
import ssl
import subprocess
import time
import unittest

import lab


def setUpModule():
    lab.shared_certs()


class ClientCertificateTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.certs = lab.shared_certs()
        cls.backend = lab.start_for_class(cls, lab.PostfixBackend(cls.certs, tls="none"))

    def start_proxy(self, mode="required", extra_toml=""):
        port = lab.free_port()
        listener = lab.smtp_listener(port, self.backend.port, name="smtps-mtls", tls="implicit",
                                     backend_tls="none", client_certs=mode,
                                     client_ca=f"{self.certs}/ca.crt")
        proxy = lab.Tlsbridge([listener],
                              [lab.server_pair(self.certs)],
                              extra_toml=extra_toml)
        self.addCleanup(proxy.cleanup)
        proxy.start()
        return proxy, port

    def client_context(self, name=None):
        context = ssl.create_default_context(cafile=f"{self.certs}/ca.crt")
        # The client's own SHA-1 certificate only loads at security level 0.
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
        if name:
            context.load_cert_chain(f"{self.certs}/{name}.chain.pem", f"{self.certs}/{name}.key")
        return context

    def converse(self, port, name):
        """TLS to the proxy with the named client chain; returns (greeting or None, local addr).
        With TLS 1.3 the server judges the client's chain after the client thinks the handshake
        is done, so a refusal shows as an alert on the first read."""
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.addCleanup(raw.close)
        address = "%s:%d" % raw.getsockname()
        try:
            tls = self.client_context(name).wrap_socket(raw, server_hostname="localhost")
            self.addCleanup(tls.close)
            greeting = tls.recv(4096)
            if greeting:
                tls.sendall(b"QUIT\r\n")
                tls.recv(4096)
            return greeting or None, address
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
            return None, address

    def conn_record(self, proxy, address):
        records = proxy.wait_for_conn_records(1, where=lambda r: r.get("client") == address)
        self.assertEqual(len(records), 1, "one conn record per connection" + proxy.describe())
        return records[0]

    def test_good_client_chain_is_clean_and_sha1_chain_is_refused(self):
        proxy, port = self.start_proxy()
        greeting, address = self.converse(port, "client")
        self.assertTrue(greeting and greeting.startswith(b"220"), greeting)
        record = self.conn_record(proxy, address)
        chain = record["front"]["chain"]
        self.assertEqual(chain["verdict"], "clean", chain)
        self.assertEqual(record["outcome"], "ok", record)

        greeting, address = self.converse(port, "client-sha1")
        self.assertIsNone(greeting, "a SHA-1 client chain must be refused by default policy")
        record = self.conn_record(proxy, address)
        self.assertEqual(record["outcome"], "refused_policy", record)
        chain = record["front"]["chain"]
        self.assertEqual(chain["verdict"], "refused", chain)
        kinds = {(f["kind"], f["depth"]) for f in chain["findings"]}
        self.assertIn(("weak_signature", 0), kinds, chain)
        # The refused connection never reached the backend.
        self.assertIsNone(record["backend"], record)

    def test_rule_logs_sha1_client_chain_instead(self):
        rule = ('[[policy.rule]]\nlistener = "smtps-mtls"\npeer = "127.0.0.0/8"\n'
                'on_weak_signature = "log"\n')
        proxy, port = self.start_proxy(extra_toml=rule)
        greeting, address = self.converse(port, "client-sha1")
        self.assertTrue(greeting and greeting.startswith(b"220"), greeting)
        chain = self.conn_record(proxy, address)["front"]["chain"]
        self.assertEqual(chain["verdict"], "logged", chain)
        self.assertIn("weak_signature", [f["kind"] for f in chain["findings"]])

    def test_required_refuses_a_client_without_certificate(self):
        proxy, port = self.start_proxy("required")
        greeting, address = self.converse(port, None)
        self.assertIsNone(greeting, "no client certificate with client_certs = required")
        self.assertEqual(self.conn_record(proxy, address)["outcome"], "tls_failed")
        greeting, _ = self.converse(port, "client")
        self.assertTrue(greeting and greeting.startswith(b"220"), "same port, with a certificate")

    def test_optional_lets_a_client_without_certificate_in(self):
        proxy, port = self.start_proxy("optional")
        greeting, address = self.converse(port, None)
        self.assertTrue(greeting and greeting.startswith(b"220"), greeting)
        self.assertIsNone(self.conn_record(proxy, address)["front"]["chain"])


class ClientChainTrustTest(unittest.TestCase):
    """Issue 12 item 5 (SECURITY.md, "What it trusts"): `client_certs` accepts only chains that
    end in `client_ca`.
    At 0646f06 a self-signed MD5 client certificate was accepted (`outcome ok`, no finding for
    its MD5 signature): the default on_untrusted = "log" only logged the untrusted chain. Every
    variant here is refused on the listener whose client_ca is ca.crt — whatever on_untrusted
    says — while a chain from ca.crt is served on the same port. Certificates come from
    tests/certs/make_test_certs.sh, generated at test time."""

    # (presented chain, what it is, the extra finding it must carry besides untrusted)
    UNTRUSTED = (
        ("client-md5self", "self-signed MD5 leaf (openssl req -x509 -md5)",
         ("weak_signature", 0)),
        ("client-md5self-eku", "self-signed MD5 clientAuth leaf", ("weak_signature", 0)),
        ("client-other", "leaf issued by another CA (that CA presented)", None),
        ("client-impostor", "leaf issued by a CA with client_ca's name but not its key", None),
        ("client-rooted-elsewhere", "chain carrying client_ca's certificate, rooted elsewhere",
         None),
        ("server", "a certificate from client_ca's tree that is not for clientAuth", None),
    )

    # The fixtures of ClientCertificateTest, without running its tests a second time.
    setUpClass = ClientCertificateTest.__dict__["setUpClass"]
    start_proxy = ClientCertificateTest.start_proxy
    converse = ClientCertificateTest.converse
    conn_record = ClientCertificateTest.conn_record

    def client_context(self, name=None):
        if name != "client-rooted-elsewhere":
            return ClientCertificateTest.client_context(self, name)
        context = ClientCertificateTest.client_context(self, None)
        context.load_cert_chain(f"{self.certs}/client-rooted-elsewhere.chain.pem",
                                f"{self.certs}/client-other.key")
        return context

    def maillog_connects(self):
        try:
            with open(self.backend.maillog, "rb") as f:
                return f.read().count(b" connect from ")
        except OSError:
            return 0

    def assert_refused(self, proxy, port, name, what, extra):
        greeting, address = self.converse(port, name)
        self.assertIsNone(greeting, f"{what}: must be refused in the handshake")
        record = self.conn_record(proxy, address)
        self.assertEqual(record["outcome"], "refused_policy", f"{what}: {record}")
        self.assertIn("client_certs", record["reason"], f"{what}: the reason names the rule")
        self.assertIn("client_ca", record["reason"], record)
        chain = record["front"]["chain"]
        self.assertEqual(chain["verdict"], "refused", f"{what}: {chain}")
        kinds = {(f["kind"], f["depth"]) for f in chain["findings"]}
        self.assertIn("untrusted", {k for k, _ in kinds}, f"{what}: {chain}")
        if extra:
            self.assertIn(extra, kinds, f"{what}: the weak signature is still a finding")
        self.assertIsNone(record["backend"], f"{what}: never reached the backend: {record}")

    def check_listener(self, mode, extra_toml=""):
        proxy, port = self.start_proxy(mode, extra_toml=extra_toml)
        greeting, address = self.converse(port, "client")
        self.assertTrue(greeting and greeting.startswith(b"220"),
                        f"{mode}: a chain from client_ca is served on the same port")
        self.assertEqual(self.conn_record(proxy, address)["outcome"], "ok")
        connects = self.maillog_connects()
        for name, what, extra in self.UNTRUSTED:
            with self.subTest(mode=mode, chain=name):
                self.assert_refused(proxy, port, name, what, extra)
        time.sleep(0.5)
        self.assertEqual(self.maillog_connects(), connects,
                         "Postfix saw no connection for any refused client")
        greeting, _ = self.converse(port, "client")
        self.assertTrue(greeting and greeting.startswith(b"220"), f"{mode}: still serving")
        return proxy, port

    def test_required_accepts_only_chains_ending_in_client_ca(self):
        self.check_listener("required")

    def test_on_untrusted_ignore_does_not_weaken_the_rule(self):
        self.check_listener("required", extra_toml='[policy]\non_untrusted = "ignore"\n')

    def test_optional_refuses_a_presented_chain_that_does_not_end_in_client_ca(self):
        # `optional`: no certificate is fine (test_optional_lets_a_client_without_certificate_in);
        # one that is presented is an identity claim and must verify, as with nginx/Apache.
        proxy, port = self.check_listener("optional")
        greeting, address = self.converse(port, None)
        self.assertTrue(greeting and greeting.startswith(b"220"), "no certificate: served")

    def test_check_config_refuses_client_certs_without_client_ca(self):
        port = lab.free_port()
        listener = lab.smtp_listener(port, self.backend.port, name="smtps-mtls", tls="implicit",
                                     backend_tls="none", client_certs="required")
        proxy = lab.Tlsbridge([listener],
                              [lab.server_pair(self.certs)])
        self.addCleanup(proxy.cleanup)
        with open(proxy.config_path, "w") as f:
            f.write(proxy.config_text())
        result = subprocess.run([proxy.binary, "check-config", "--config", proxy.config_path],
                                capture_output=True, text=True, timeout=30)
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        self.assertIn("needs client_ca", result.stderr)


if __name__ == "__main__":
    unittest.main()
