"""Raw TLS listeners (protocol = "tls", README, "Protocol `tls`"): implicit TLS 1.2+ at the front,
bytes relayed unchanged to the back leg — plaintext to a Postfix without TLS, or implicit TLS 1.0 to
a 465-style Postfix. The relayed SMTP dialogue proves the bytes went through both ways."""

import socket
import time
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
        cls.plain = lab.start_for_class(cls, lab.PostfixBackend(cls.certs, tls="none"))
        cls.implicit = lab.start_for_class(
            cls, lab.PostfixBackend(cls.certs, tls="tls1.0-implicit"))

    def start_proxy(self, backend, backend_tls, **listener_keys):
        port = lab.free_port()
        listener = tls_listener(port, backend.port, backend_tls)
        listener.update(listener_keys)
        proxy = lab.Tlsbridge([listener],
                              [lab.server_pair(self.certs)])
        self.addCleanup(proxy.cleanup)
        proxy.start()
        return proxy, port

    def converse(self, proxy, port, context=None, session=None, keep=None):
        """Over TLS to the proxy: read the backend's greeting, EHLO, QUIT. Returns the client's
        local address and the negotiated front version. session: a TLS session to offer; keep: a
        list that gets the socket's (session, session_reused) after the dialogue."""
        context = context or lab.client_context(f"{self.certs}/ca.crt")
        client = lab.SmtpClient(port)
        self.addCleanup(client.close)
        client.sock = context.wrap_socket(client.sock, server_hostname="localhost",
                                          session=session)
        version = client.sock.version()
        code, greeting = client.read_reply()
        self.assertEqual(code, "220", f"greeting: {greeting}" + proxy.describe())
        self.assertIn("backend.test", greeting[0], "the greeting must be Postfix's, relayed")
        code, ehlo = client.command("EHLO raw.test")
        self.assertEqual(code, "250", ehlo)
        self.assertEqual(client.command("QUIT")[0], "221")
        address = client.local_address()
        if keep is not None:
            keep.append((client.sock.session, client.sock.session_reused))
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

    def resumed_twice(self, proxy, port):
        """Two connections, the second offering the first one's TLS session (a TLS 1.3 ticket
        arrives with the first data, so the session is taken after the dialogue). Returns whether
        the second was resumed; both dialogues must have worked."""
        context = lab.client_context(f"{self.certs}/ca.crt")
        first, second = [], []
        self.converse(proxy, port, context=context, keep=first)
        self.converse(proxy, port, context=context, session=first[0][0], keep=second)
        self.assertFalse(first[0][1])
        return second[0][1]

    def test_front_resumes_a_session_ticket_by_default(self):
        proxy, port = self.start_proxy(self.plain, "none")
        self.assertTrue(self.resumed_twice(proxy, port),
                        "a client offering its ticket skips the full handshake" + proxy.describe())

    def test_session_tickets_zero_means_every_front_handshake_is_full(self):
        proxy, port = self.start_proxy(self.plain, "none", session_tickets=0)
        self.assertFalse(self.resumed_twice(proxy, port))

    def test_client_cert_listener_sends_no_ticket_and_still_serves_a_returning_client(self):
        # A resumed session would skip the client-chain policy; OpenSSL would also fail such a
        # resumption outright ("session id context uninitialized").
        proxy, port = self.start_proxy(self.plain, "none", client_certs="optional",
                                       client_ca=f"{self.certs}/ca.crt")
        self.assertFalse(self.resumed_twice(proxy, port))

    def test_idle_timeout_cuts_a_quiet_relay_and_activity_keeps_a_busy_one(self):
        # The idle watchdog (one timing wheel per worker): a relay quiet for `idle` is closed
        # with the outcome "timeout" — not early, and at most a tick late — while a relay that
        # talks every 0.7 s through the same period stays up and works.
        proxy, port = self.start_proxy(self.plain, "none",
                                       timeouts={"handshake": "5s", "idle": "2s",
                                                 "connect": "5s"})
        context = lab.client_context(f"{self.certs}/ca.crt")

        def open_client():
            client = lab.SmtpClient(port)
            self.addCleanup(client.close)
            client.sock = context.wrap_socket(client.sock, server_hostname="localhost")
            self.assertEqual(client.read_reply()[0], "220", proxy.describe())
            return client

        quiet, busy = open_client(), open_client()
        addresses = [quiet.local_address(), busy.local_address()]
        quiet_since = time.monotonic()
        busy_since = time.monotonic()
        for _ in range(5):  # 3.5 s of activity, well past the 2 s idle limit
            time.sleep(0.7)
            self.assertEqual(busy.command("NOOP")[0], "250", "the busy relay was cut")
            busy_since = time.monotonic()
        quiet.read_until_closed(timeout=10)
        # The quiet one was closed within the loop above (read_until_closed returned at once).
        self.assertLess(time.monotonic() - quiet_since, 5.0)
        self.assertEqual(busy.command("NOOP")[0], "250", "the busy relay still works")
        busy_since = time.monotonic()
        busy.read_until_closed(timeout=10)
        waited = time.monotonic() - busy_since
        self.assertGreaterEqual(waited, 1.9, "closed before the idle limit")
        self.assertLess(waited, 3.5, "closed long after the idle limit")
        records = [self.conn_record(proxy, address) for address in addresses]
        for record in records:
            self.assertEqual(record["outcome"], "timeout", record)
            self.assertEqual(record["reason"], "idle timeout", record)
        quiet_record = records[0]
        self.assertGreaterEqual(quiet_record["duration_ms"], 1900, quiet_record)
        self.assertLess(quiet_record["duration_ms"], 3500, quiet_record)

    def test_openssl_s_client_reads_greeting(self):
        proxy, port = self.start_proxy(self.plain, "none")
        result = lab.s_client(port, "-quiet", "-verify_return_error",
                              "-CAfile", f"{self.certs}/ca.crt", input_bytes=b"QUIT\r\n")
        self.assertIn("220 backend.test", result.stdout, result.stdout + result.stderr
                      + proxy.describe())
        self.assertIn("221", result.stdout, "QUIT's reply must come back through the proxy")


if __name__ == "__main__":
    unittest.main()
