"""SMTP through the real tlsbridge binary to a real Postfix (issue #2).

The front leg is TLS 1.2+ (STARTTLS or implicit), the back leg is TLS 1.0 to a Postfix that
speaks nothing newer and presents a SHA-1 certificate, or plaintext to a Postfix without TLS.
What the backend received is read back from its maildir and its command log (debug_peer_list);
what the proxy did, from its audit log. A misbehaving proxy fails these tests, never skips them;
a missing binary fails them with the path it looked for.
"""

import hashlib
import re
import smtplib
import socket
import ssl
import unittest
import uuid

import lab

CONN_KEYS = ("ts", "event", "conn", "listener", "client", "front", "backend", "bytes_in",
             "bytes_out", "duration_ms", "outcome", "reason", "starttls_injection")
FRONT_KEYS = ("tls", "cipher", "sni", "alpn", "chain")
BACKEND_KEYS = ("addr", "local", "tls", "cipher", "chain")
MODERN = ("TLSv1.2", "TLSv1.3")
RFC3339_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d\d:\d\d)$")


def setUpModule():
    lab.shared_certs()


def reply_lines(text):
    return [line for line in text.replace("\r\n", "\n").split("\n") if line]


class ProxyTestCase(unittest.TestCase):
    """One Postfix per class (starting one takes ~2 s), one tlsbridge per test."""

    backend_mode = "tls1.0-starttls"

    @classmethod
    def setUpClass(cls):
        cls.certs = lab.shared_certs()
        cls.backend = lab.start_for_class(cls, lab.PostfixBackend(cls.certs, tls=cls.backend_mode))

    def cert(self, name):
        return f"{self.certs}/{name}"

    def start_proxy(self, *listeners, certs=None):
        certs = certs or [(self.cert("server.chain.pem"), self.cert("server.key"))]
        proxy = lab.Tlsbridge(list(listeners), certs)
        self.addCleanup(proxy.cleanup)
        return proxy.start()

    def start_smtp_proxy(self, tls="starttls", backend_tls=None, backend_port=None, **extra):
        """tlsbridge with one SMTP listener "smtp-in" on a free port in front of this class's
        Postfix; returns (proxy, port)."""
        if backend_tls is None:
            backend_tls = "none" if self.backend_mode == "none" else "starttls"
        port = lab.free_port()
        listener = lab.smtp_listener(port, backend_port or self.backend.port, tls=tls,
                                     backend_tls=backend_tls, **extra)
        return self.start_proxy(listener), port

    def only_conn_record(self, proxy, where=None):
        records = proxy.wait_for_conn_records(1, listener="smtp-in", where=where)
        self.assertEqual(len(records), 1, "expected exactly one conn record for the session"
                         + proxy.describe())
        return records[0]

    def conn_record_of(self, proxy, client):
        """The conn record of the client connection whose local address is client.local_address()
        (waits for the session to close)."""
        address = client.local_address()
        return self.only_conn_record(proxy, where=lambda r: r.get("client") == address)

    def connect(self, port):
        client = lab.SmtpClient(port)
        self.addCleanup(client.close)
        return client

    def assert_delivered(self, marker, proxy=None):
        message = self.backend.wait_for_message_containing(marker.encode())
        self.assertIsNotNone(message, f"message {marker} never reached the backend's maildir"
                             + (proxy.describe() if proxy else ""))
        return message

    def ehlo_through_starttls(self, client, name="client.test"):
        """greeting, EHLO, STARTTLS, handshake (verifying the proxy's chain), EHLO again;
        returns the lines of the EHLO reply before and after TLS."""
        self.assertEqual(client.read_reply()[0], "220", "greeting")
        code, before = client.command(f"EHLO {name}")
        self.assertEqual(code, "250", f"EHLO before TLS: {before}")
        code, lines = client.command("STARTTLS")
        self.assertEqual(code, "220", f"STARTTLS: {lines}")
        client.starttls(lab.client_context(self.cert("ca.crt")), server_hostname="localhost")
        code, after = client.command(f"EHLO {name}")
        self.assertEqual(code, "250", f"EHLO after TLS: {after}")
        return before, after


def extensions(ehlo_lines):
    """EHLO keywords (upper case, first word of every line after the first)."""
    return [line[4:].split(" ")[0].upper() for line in ehlo_lines[1:]]


class StartTlsToLegacyBackendTest(ProxyTestCase):
    def test_a_swaks_starttls_delivers_and_audits_both_legs(self):
        proxy, port = self.start_smtp_proxy()
        marker = uuid.uuid4().hex
        result = lab.swaks(port, "--ehlo", "swaks.test", "--h-X-Lab-Marker", marker)
        self.assertEqual(result.returncode, 0,
                         f"swaks failed:\n{result.stdout}{result.stderr}{proxy.describe()}")
        message = self.assert_delivered(marker, proxy)
        self.assertIn("using TLSv1 with cipher", lab.first_received(message),
                      "the back leg must be TLS 1.0")

        conn = self.only_conn_record(proxy)
        self.assert_conn_shape(conn)
        self.assertIn(conn["front"]["tls"], MODERN, conn)
        self.assertEqual(conn["backend"]["tls"], "TLSv1", conn)
        self.assertEqual(conn["backend"]["addr"], f"127.0.0.1:{self.backend.port}", conn)
        self.assertEqual(conn["outcome"], "ok", conn)
        self.assertIs(conn["starttls_injection"], False, conn)
        self.assertEqual(conn["listener"], "smtp-in")
        self.assertRegex(conn["ts"], RFC3339_MS)
        chain = conn["backend"]["chain"]
        self.assertEqual(chain["certs"][0]["sig_alg"], "sha1WithRSAEncryption", chain)
        # verify = "none": the SHA-1 chain is inspected and logged, never refused (README, "What
        # works today").
        self.assertEqual(chain["verdict"], "logged", chain)
        self.assertIn("weak_signature", [f["kind"] for f in chain["findings"]], chain)

        self.assert_message_record(proxy, conn["conn"])

    def assert_conn_shape(self, conn):
        for key in CONN_KEYS:
            self.assertIn(key, conn, f"conn record lacks {key}: {conn}")
        for key in FRONT_KEYS:
            self.assertIn(key, conn["front"], f"front lacks {key}: {conn}")
        for key in BACKEND_KEYS:
            self.assertIn(key, conn["backend"], f"backend lacks {key}: {conn}")
        self.assertEqual(conn["event"], "conn")
        for key in ("bytes_in", "bytes_out", "duration_ms"):
            self.assertIsInstance(conn[key], int, f"{key} is not an integer: {conn}")
        self.assertGreater(conn["bytes_in"], 0, conn)
        self.assertGreater(conn["bytes_out"], 0, conn)

    def assert_message_record(self, proxy, conn_id):
        messages = proxy.records("smtp.message", conn=conn_id)
        self.assertEqual(len(messages), 1, "expected one smtp.message record" + proxy.describe())
        record = messages[0]
        self.assertEqual(record["helo"], "swaks.test", record)
        self.assertEqual(record["mail_from"].strip("<>"), "y@example.test", record)
        self.assertEqual([r.strip("<>") for r in record["rcpt"]], ["x@example.test"], record)
        self.assertIsInstance(record["size"], int, record)
        self.assertGreater(record["size"], 0, record)
        self.assertTrue(record["reply"].startswith("250"), record)

    def test_b_five_mib_binary_safe_message_arrives_byte_identical(self):
        proxy, port = self.start_smtp_proxy()
        marker = uuid.uuid4().hex
        message, body = lab.make_test_message(5 << 20, marker)
        with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
            client.starttls(context=lab.client_context(self.cert("ca.crt")))
            refused = client.sendmail("y@example.test", ["x@example.test"], message)
        self.assertEqual(refused, {}, "recipient refused")
        delivered = self.assert_delivered(marker, proxy)
        self.assertEqual(hashlib.sha256(lab.delivered_body(delivered)).hexdigest(),
                         hashlib.sha256(lab.as_stored(body)).hexdigest(),
                         "the body Postfix stored differs from the body smtplib sent "
                         "(LF line ends on both sides: maildir stores LF)")

    def test_c_front_refuses_tls11_and_accepts_tls12_on_the_same_port(self):
        proxy, port = self.start_smtp_proxy()
        old = lab.s_client(port, "-starttls", "smtp", "-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0")
        self.assertNotEqual(old.returncode, 0, f"TLS 1.1 handshake succeeded:\n{old.stdout}"
                            + proxy.describe())
        self.assertNotEqual(lab.tls_protocol(old.stdout), "TLSv1.1", old.stdout)
        new = lab.s_client(port, "-starttls", "smtp", "-tls1_2")
        self.assertEqual(new.returncode, 0, f"TLS 1.2 failed:\n{new.stdout}{new.stderr}"
                         + proxy.describe())
        self.assertEqual(lab.tls_protocol(new.stdout), "TLSv1.2", new.stdout)

    def test_d_mail_before_starttls_is_refused_then_starttls_works(self):
        proxy, port = self.start_smtp_proxy()
        client = self.connect(port)
        self.assertEqual(client.read_reply()[0], "220", "greeting")
        code, ehlo = client.command("EHLO client.test")
        self.assertEqual(code, "250", ehlo)
        self.assertIn("STARTTLS", extensions(ehlo), f"STARTTLS not offered before TLS: {ehlo}")
        self.assertFalse([k for k in extensions(ehlo) if k.startswith("AUTH")],
                         f"AUTH offered before TLS: {ehlo}")
        code, lines = client.command("MAIL FROM:<a@b>")
        self.assertEqual(code, "530", f"MAIL FROM before STARTTLS must get 530: {lines}")
        self.assertEqual(client.command("STARTTLS")[0], "220")
        client.starttls(lab.client_context(self.cert("ca.crt")), server_hostname="localhost")
        self.assertEqual(client.command("EHLO client.test")[0], "250")
        code, lines = client.command("MAIL FROM:<y@example.test>")
        self.assertEqual(code, "250", f"MAIL FROM after STARTTLS: {lines}")
        self.assertEqual(client.command("QUIT")[0], "221")

    def test_e_starttls_injection_never_reaches_backend(self):
        proxy, port = self.start_smtp_proxy()
        marker = uuid.uuid4().hex
        injected = f"injected-{marker}@evil.test"
        client = self.connect(port)
        self.assertEqual(client.read_reply()[0], "220")
        self.assertEqual(client.command("EHLO client.test")[0], "250")
        # CVE-2011-0411: a command pipelined in the same write as STARTTLS must be discarded.
        client.send(f"STARTTLS\r\nMAIL FROM:<{injected}>\r\n")
        code, lines = client.read_reply()
        self.assertEqual(code, "220", f"STARTTLS: {lines}")
        client.starttls(lab.client_context(self.cert("ca.crt")), server_hostname="localhost")
        code, lines = client.command(f"EHLO legit-{marker}.test")
        self.assertEqual(code, "250", f"the first reply after TLS must be the EHLO's: {lines}")
        code, lines = client.command("NOOP")
        self.assertEqual(code, "250", f"a reply to the injected command leaked: {lines}")
        self.assertEqual(client.command("QUIT")[0], "221")
        client.close()

        conn = self.conn_record_of(proxy, client)
        self.assertIs(conn["starttls_injection"], True, conn)
        self.assertIsNotNone(self.backend.wait_for_log(rf"< [^:]+: EHLO legit-{marker}\.test"),
                             "the legitimate EHLO never reached Postfix" + proxy.describe())
        self.assertNotIn(injected, self.backend.log(), "the injected MAIL FROM reached Postfix")
        commands = self.backend.received_commands()
        self.assertIn(f"EHLO legit-{marker}.test", commands)

    def test_k_ehlo_rewritten_starttls_only_before_tls(self):
        # backend_tls = "none" to this Postfix, which offers STARTTLS: the backend's own
        # STARTTLS must be removed too, not only the one Postfix stops offering after TLS.
        for backend_tls in ("starttls", "none"):
            with self.subTest(backend_tls=backend_tls):
                proxy, port = self.start_smtp_proxy(backend_tls=backend_tls)
                client = self.connect(port)
                before, after = self.ehlo_through_starttls(client)
                self.assertEqual(extensions(before).count("STARTTLS"), 1,
                                 f"exactly one STARTTLS before TLS: {before}")
                self.assertNotIn("STARTTLS", extensions(after),
                                 f"after TLS the proxy must not offer STARTTLS: {after}")
                for keyword in ("PIPELINING", "8BITMIME", "SIZE"):
                    self.assertIn(keyword, extensions(after),
                                  f"backend's {keyword} not passed on: {after}")
                self.assertEqual(client.command("QUIT")[0], "221")
                proxy.cleanup()

    def send_two_and_read_back_legs(self, proxy, port):
        """Two swaks transactions one after the other; returns the back-leg objects of their conn
        records (those that carried a message), after checking both were delivered."""
        markers = [uuid.uuid4().hex for _ in range(2)]
        for marker in markers:
            result = lab.swaks(port, "--h-X-Lab-Marker", marker)
            self.assertEqual(result.returncode, 0, result.stdout + proxy.describe())
            self.assert_delivered(marker, proxy)
        records = proxy.wait_for_conn_records(
            2, listener="smtp-in", where=lambda r: r.get("bytes_in", 0) > 200)
        self.assertEqual(len(records), 2, proxy.describe())
        return [r["backend"] for r in records]

    def test_m_back_leg_resumes_its_tls_session_and_still_records_the_chain(self):
        # The legacy host's full TLS 1.0 handshake (certificate parsing, key exchange) is most of
        # a transaction's cost; the back leg offers the session of its last connection.
        proxy, port = self.start_smtp_proxy()
        backs = self.send_two_and_read_back_legs(proxy, port)
        for back in backs:
            self.assertEqual(back["tls"], "TLSv1", back)
            self.assertIsNotNone(back["chain"], f"a resumed leg still shows the chain: {back}")
        self.assertTrue(backs[-1]["resumed"], f"the second connection resumed: {backs}")
        self.assertEqual(backs[0]["chain"], backs[-1]["chain"],
                         "the resumed leg records the chain of the handshake it resumed")

    def test_n_resume_sessions_off_makes_every_back_handshake_full(self):
        port = lab.free_port()
        listener = lab.smtp_listener(port, self.backend.port)
        listener["backend"]["resume_sessions"] = False
        proxy = self.start_proxy(listener)
        backs = self.send_two_and_read_back_legs(proxy, port)
        self.assertEqual([b["resumed"] for b in backs], [False, False], backs)
        self.assertTrue(all(b["chain"] for b in backs), backs)

    def test_l_every_audit_line_is_json(self):
        proxy, port = self.start_smtp_proxy()
        result = lab.swaks(port, "--h-X-Lab-Marker", uuid.uuid4().hex)
        self.assertEqual(result.returncode, 0, result.stdout + proxy.describe())
        client = self.connect(port)
        self.ehlo_through_starttls(client)
        # Control characters and JSON in a peer-controlled field (the proxy may refuse the
        # name; either way the audit line must stay one valid JSON object).
        client.command('EHLO evil.test\x01\x1b\x7f"} {"event":"forged"}')
        client.command("MAIL FROM:<y@example.test>")
        client.command("RCPT TO:<x@example.test>")
        if client.command("DATA")[0] == "354":
            client.send("Subject: forged helo\r\n\r\nhi\r\n.\r\n")
            client.read_reply()
        self.assertEqual(client.command("QUIT")[0], "221")
        client.close()
        proxy.wait_for_conn_records(2, listener="smtp-in")
        exit_status = proxy.stop()
        self.assertEqual(exit_status, 0, "SIGTERM must end tlsbridge with status 0"
                         + proxy.describe())
        records = proxy.audit_records()  # raises on any line that is not a JSON object
        self.assertGreaterEqual(len(records), 2, proxy.describe())
        for record in records:
            for key in ("ts", "event", "conn", "listener"):
                self.assertIn(key, record, f"audit record lacks {key}: {record}")
            self.assertRegex(record["ts"], RFC3339_MS)
            self.assertNotEqual(record["event"], "forged", "a HELO name forged an audit record")


class ImplicitTlsAndSniTest(ProxyTestCase):
    def test_h_implicit_tls_listener_delivers_to_tls10_backend(self):
        proxy, port = self.start_smtp_proxy(tls="implicit")
        marker = uuid.uuid4().hex
        message, _ = lab.make_test_message(4096, marker)
        with smtplib.SMTP_SSL("127.0.0.1", port, timeout=30,
                              context=lab.client_context(self.cert("ca.crt"))) as client:
            self.assertIn(client.sock.version(), MODERN)
            refused = client.sendmail("y@example.test", ["x@example.test"], message)
        self.assertEqual(refused, {})
        delivered = self.assert_delivered(marker, proxy)
        self.assertIn("using TLSv1 with cipher", lab.first_received(delivered))
        conn = self.only_conn_record(proxy)
        self.assertIn(conn["front"]["tls"], MODERN, conn)
        self.assertEqual(conn["backend"]["tls"], "TLSv1", conn)

    def test_i_sni_selects_the_certificate(self):
        certs = [(self.cert(f"{name}.chain.pem"), self.cert(f"{name}.key"))
                 for name in ("server", "sni-a", "sni-b")]
        port = lab.free_port()
        proxy = self.start_proxy(lab.smtp_listener(port, self.backend.port, tls="implicit"),
                                 certs=certs)
        cases = (("a.test", "sni-a.crt"), ("b.test", "sni-b.crt"), (None, "server.crt"),
                 ("unknown.test", "server.crt"))
        for server_name, expected in cases:
            with self.subTest(server_name=server_name):
                leaf = self.presented_leaf(port, server_name)
                self.assertEqual(lab.sha256_hex(leaf),
                                 lab.sha256_hex(lab.cert_der(self.cert(expected))),
                                 f"SNI {server_name!r} must select {expected}" + proxy.describe())

    def presented_leaf(self, port, server_name):
        """DER of the leaf the proxy presents for server_name (None = no SNI)."""
        context = lab.client_context()
        with socket.create_connection(("127.0.0.1", port), timeout=15) as raw:
            with context.wrap_socket(raw, server_hostname=server_name) as tls:
                return tls.getpeercert(binary_form=True)


class BackendFailureTest(ProxyTestCase):
    backend_mode = "none"  # the Postfix is unused here; the plaintext one starts fastest

    def test_f_backend_down_gives_421_and_closes(self):
        dead_port = lab.free_port()
        proxy, port = self.start_smtp_proxy(backend_tls="starttls", backend_port=dead_port)
        client = self.connect(port)
        try:
            text = client.read_until_closed(timeout=20)
        except socket.timeout:
            self.fail("the proxy neither answered 421 nor closed within 20 s" + proxy.describe())
        lines = reply_lines(text)
        self.assertTrue(lines and lines[0].startswith("421"),
                        f"greeting must be 421 when no backend answers: {lines}")
        self.assertFalse([line for line in lines if line.startswith("250")], lines)
        conn = self.conn_record_of(proxy, client)
        self.assertEqual(conn["outcome"], "backend_unavailable", conn)

    def test_g_backend_dies_during_data_never_250(self):
        fake = lab.DyingSmtpBackend(close_after=64 * 1024).start()
        self.addCleanup(fake.stop)
        proxy, port = self.start_smtp_proxy(backend_tls="none", backend_port=fake.port)
        client = self.connect(port)
        self.ehlo_through_starttls(client)
        self.assertEqual(client.command("MAIL FROM:<y@example.test>")[0], "250")
        self.assertEqual(client.command("RCPT TO:<x@example.test>")[0], "250")
        self.assertEqual(client.command("DATA")[0], "354")
        try:
            client.send((b"y" * 998 + b"\r\n") * 1024 + b".\r\n")
        except OSError:
            pass  # the proxy may close while we still send; what it answered matters
        try:
            text = client.read_until_closed(timeout=20)
        except socket.timeout:
            self.fail("after the backend died the proxy neither answered nor closed in 20 s"
                      + proxy.describe())
        lines = reply_lines(text)
        self.assertFalse([line for line in lines if line.startswith("250")],
                         f"the proxy reported success for mail the backend never took: {lines}")
        for line in lines:
            self.assertTrue(line.startswith("421"), f"only 421 may follow: {lines}")
        self.assertTrue(any(s["died_in_data"] for s in fake.sessions),
                        f"the fake backend did not get to DATA: {fake.sessions}")


class PlaintextBackendTest(ProxyTestCase):
    backend_mode = "none"

    def test_j_starttls_front_plaintext_back_delivers(self):
        proxy, port = self.start_smtp_proxy(backend_tls="none")
        marker = uuid.uuid4().hex
        result = lab.swaks(port, "--h-X-Lab-Marker", marker)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr + proxy.describe())
        message = self.assert_delivered(marker, proxy)
        self.assertNotIn("using TLS", lab.first_received(message), "back leg must be plaintext")
        conn = self.only_conn_record(proxy)
        self.assertIn(conn["front"]["tls"], MODERN, conn)
        self.assertIsNone(conn["backend"]["tls"], conn)
        self.assertEqual(conn["outcome"], "ok", conn)


if __name__ == "__main__":
    unittest.main()
