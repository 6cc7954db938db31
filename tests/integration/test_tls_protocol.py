"""Raw TLS listeners (protocol = "tls", SPEC §4 "Raw TLS"): implicit TLS 1.2+ at the front, bytes
relayed unchanged to the back leg — plaintext to a Postfix without TLS, or implicit TLS 1.0 to a
465-style Postfix. The relayed SMTP dialogue proves the bytes went through both ways."""

import socket
import unittest

import lab

MODERN = ("TLSv1.2", "TLSv1.3")


def setUpModule():
    lab.shared_certs()


def tls_listener(port, backend_port, backend_tls):
    return {
        "name": "raw-tls", "protocol": "tls", "listen": f"127.0.0.1:{port}", "tls": "implicit",
        "backend": {"address": [f"127.0.0.1:{backend_port}"], "tls": backend_tls,
                    "tls_profile": "legacy", "verify": "none"},
    }


class RawTlsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.certs = lab.shared_certs()
        cls.plain = lab.PostfixBackend(cls.certs, tls="none")
        cls.addClassCleanup(cls.plain.cleanup)
        cls.plain.start()
        cls.implicit = lab.PostfixBackend(cls.certs, tls="tls1.0-implicit")
        cls.addClassCleanup(cls.implicit.cleanup)
        cls.implicit.start()

    def start_proxy(self, backend, backend_tls):
        port = lab.free_port()
        proxy = lab.Tlsbridge([tls_listener(port, backend.port, backend_tls)],
                              [(f"{self.certs}/server.chain.pem", f"{self.certs}/server.key")])
        self.addCleanup(proxy.cleanup)
        proxy.start()
        return proxy, port

    def converse(self, proxy, port):
        """Over TLS to the proxy: read the backend's greeting, EHLO, QUIT. Returns the client's
        local address and the negotiated front version."""
        context = lab.client_context(f"{self.certs}/ca.crt")
        client = lab.SmtpClient(port)
        self.addCleanup(client.close)
        client.sock = context.wrap_socket(client.sock, server_hostname="localhost")
        version = client.sock.version()
        code, greeting = client.read_reply()
        self.assertEqual(code, "220", f"greeting: {greeting}" + proxy.describe())
        self.assertIn("backend.test", greeting[0], "the greeting must be Postfix's, relayed")
        code, ehlo = client.command("EHLO raw.test")
        self.assertEqual(code, "250", ehlo)
        self.assertEqual(client.command("QUIT")[0], "221")
        address = client.local_address()
        client.close()
        return address, version

    def conn_record(self, proxy, address):
        records = proxy.wait_for_conn_records(1, listener="raw-tls",
                                              where=lambda r: r.get("client") == address)
        self.assertEqual(len(records), 1, "expected one conn record" + proxy.describe())
        return records[0]

    def test_plaintext_back_leg(self):
        proxy, port = self.start_proxy(self.plain, "none")
        address, version = self.converse(proxy, port)
        self.assertIn(version, MODERN)
        conn = self.conn_record(proxy, address)
        self.assertIn(conn["front"]["tls"], MODERN, conn)
        self.assertIsNone(conn["backend"]["tls"], conn)
        self.assertEqual(conn["outcome"], "ok", conn)

    def test_implicit_tls10_back_leg(self):
        proxy, port = self.start_proxy(self.implicit, "implicit")
        address, version = self.converse(proxy, port)
        self.assertIn(version, MODERN)
        conn = self.conn_record(proxy, address)
        self.assertEqual(conn["backend"]["tls"], "TLSv1", conn)
        self.assertEqual(conn["backend"]["chain"]["certs"][0]["sig_alg"],
                         "sha1WithRSAEncryption", conn)
        self.assertIsNotNone(self.implicit.wait_for_log(r"< [^:]+: EHLO raw\.test"),
                             "the EHLO never reached the backend")

    def test_openssl_s_client_reads_greeting(self):
        proxy, port = self.start_proxy(self.plain, "none")
        result = lab.s_client(port, "-quiet", "-verify_return_error",
                              "-CAfile", f"{self.certs}/ca.crt", input_bytes=b"QUIT\r\n")
        self.assertIn("220 backend.test", result.stdout, result.stdout + result.stderr
                      + proxy.describe())
        self.assertIn("221", result.stdout, "QUIT's reply must come back through the proxy")


if __name__ == "__main__":
    unittest.main()
