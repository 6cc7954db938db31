"""Front-leg client certificates (SPEC §3 `client_certs`, §4 Certificate policy; issue #3):
a client chain is judged in full inside the handshake — refused by a TLS alert, or logged — and
the `conn` record carries it. Each refusal is shown next to a success on the same port."""

import socket
import ssl
import unittest

import lab


def setUpModule():
    lab.shared_certs()


class ClientCertificateTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.certs = lab.shared_certs()
        cls.backend = lab.PostfixBackend(cls.certs, tls="none")
        cls.addClassCleanup(cls.backend.cleanup)
        cls.backend.start()

    def start_proxy(self, mode="required", extra_toml=""):
        port = lab.free_port()
        listener = lab.smtp_listener(port, self.backend.port, name="smtps-mtls", tls="implicit",
                                     backend_tls="none", client_certs=mode,
                                     client_ca=f"{self.certs}/ca.crt")
        proxy = lab.Tlsbridge([listener],
                              [(f"{self.certs}/server.chain.pem", f"{self.certs}/server.key")],
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


if __name__ == "__main__":
    unittest.main()
