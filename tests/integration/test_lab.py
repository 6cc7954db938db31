"""The lab's own peers, checked without tlsbridge: the TLS-1.0/SHA-1 Postfix really refuses what a
modern client offers and takes what a legacy one offers, the plaintext Postfix offers no STARTTLS,
deliveries read back byte for byte, the command log shows what arrived, and the dying fake backend
dies. If these fail, a failure in test_smtp.py says nothing about the proxy."""

import hashlib
import smtplib
import unittest
import uuid

import lab


def setUpModule():
    lab.shared_certs()


def start_postfix(testcase_class, tls):
    backend = lab.PostfixBackend(lab.shared_certs(), tls=tls)
    testcase_class.addClassCleanup(backend.cleanup)
    return backend.start()


class Tls10PostfixTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.backend = start_postfix(cls, "tls1.0-starttls")

    def test_modern_swaks_cannot_start_tls(self):
        result = lab.swaks(self.backend.port, "--h-Subject", "modern")
        self.assertNotEqual(result.returncode, 0, "a TLS 1.2+ client must fail against the "
                            f"TLS 1.0 backend:\n{result.stdout}")
        self.assertIn("TLS startup failed", result.stdout + result.stderr)

    def test_tls12_with_seclevel0_still_refused(self):
        result = lab.swaks(self.backend.port, "--tls-protocol", "tlsv1_2",
                           "--tls-cipher", "DEFAULT:@SECLEVEL=0")
        self.assertNotEqual(result.returncode, 0, f"TLS 1.2 must be refused:\n{result.stdout}")

    def test_legacy_swaks_delivers_over_tls10(self):
        marker = uuid.uuid4().hex
        result = lab.swaks(self.backend.port, "--tls-protocol", "tlsv1",
                           "--tls-cipher", "DEFAULT:@SECLEVEL=0", "--h-X-Lab-Marker", marker)
        self.assertEqual(result.returncode, 0, f"swaks failed:\n{result.stdout}{result.stderr}")
        message = self.backend.wait_for_message_containing(marker.encode())
        self.assertIsNotNone(message, "message not delivered to the maildir")
        self.assertIn("using TLSv1 with cipher", lab.first_received(message))

    def test_presents_sha1_certificate(self):
        result = lab.s_client(self.backend.port, "-starttls", "smtp", "-tls1",
                              "-cipher", "DEFAULT:@SECLEVEL=0")
        self.assertEqual(lab.tls_protocol(result.stdout), "TLSv1", result.stdout + result.stderr)
        self.assertIn("legacy.test", result.stdout)

    def test_big_message_reads_back_byte_identical(self):
        marker = uuid.uuid4().hex
        message, body = lab.make_test_message(1 << 20, marker)
        with smtplib.SMTP("127.0.0.1", self.backend.port, timeout=60) as client:
            client.starttls(context=lab.legacy_client_context())
            client.sendmail("y@example.test", ["x@example.test"], message)
        delivered = self.backend.wait_for_message_containing(marker.encode())
        self.assertIsNotNone(delivered, "message not delivered")
        self.assertEqual(hashlib.sha256(lab.delivered_body(delivered)).hexdigest(),
                         hashlib.sha256(lab.as_stored(body)).hexdigest(),
                         "delivered body differs from the body sent")

    def test_log_shows_each_command_received(self):
        marker = uuid.uuid4().hex
        client = lab.SmtpClient(self.backend.port)
        self.addCleanup(client.close)
        self.assertEqual(client.read_reply()[0], "220")
        self.assertEqual(client.command(f"EHLO {marker}.test")[0], "250")
        self.assertEqual(client.command("QUIT")[0], "221")
        self.assertIsNotNone(self.backend.wait_for_log(rf"< [^:]+: EHLO {marker}\.test"),
                             "EHLO line not in the maillog")
        self.assertIn(f"EHLO {marker}.test", self.backend.received_commands())
        self.assertIn("QUIT", self.backend.received_commands())


class PlainPostfixTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.backend = start_postfix(cls, "none")

    def test_no_starttls_offered(self):
        client = lab.SmtpClient(self.backend.port)
        self.addCleanup(client.close)
        client.read_reply()
        code, lines = client.command("EHLO lab.test")
        self.assertEqual(code, "250")
        self.assertFalse(any("STARTTLS" in line for line in lines), lines)

    def test_plain_swaks_delivers(self):
        marker = uuid.uuid4().hex
        result = lab.swaks(self.backend.port, "--h-X-Lab-Marker", marker, tls=False)
        self.assertEqual(result.returncode, 0, result.stdout)
        message = self.backend.wait_for_message_containing(marker.encode())
        self.assertIsNotNone(message, "message not delivered")
        self.assertNotIn("using TLS", lab.first_received(message))


class ImplicitTls10PostfixTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.backend = start_postfix(cls, "tls1.0-implicit")

    def test_legacy_smtp_ssl_delivers(self):
        marker = uuid.uuid4().hex
        message, _ = lab.make_test_message(1024, marker)
        with smtplib.SMTP_SSL("127.0.0.1", self.backend.port, timeout=30,
                              context=lab.legacy_client_context()) as client:
            client.sendmail("y@example.test", ["x@example.test"], message)
        delivered = self.backend.wait_for_message_containing(marker.encode())
        self.assertIsNotNone(delivered, "message not delivered")
        self.assertIn("using TLSv1 with cipher", lab.first_received(delivered))


class PostfixLifecycleTest(unittest.TestCase):
    def test_stop_ends_master_and_frees_port(self):
        backend = lab.PostfixBackend(lab.shared_certs(), tls="none")
        self.addCleanup(backend.cleanup)
        backend.start()
        pid = backend.master_pid()
        self.assertIsNotNone(pid, "no master pid after start")
        backend.stop()
        self.assertFalse(lab._pid_alive(pid), f"master {pid} still alive after stop")
        self.assertFalse(lab.port_accepts(backend.port), "port still accepts after stop")
        backend.stop()  # idempotent


class DyingBackendTest(unittest.TestCase):
    def test_closes_during_data_without_a_reply(self):
        fake = lab.DyingSmtpBackend(close_after=8192).start()
        self.addCleanup(fake.stop)
        client = lab.SmtpClient(fake.port)
        self.addCleanup(client.close)
        self.assertEqual(client.read_reply()[0], "220")
        self.assertEqual(client.command("EHLO lab.test")[0], "250")
        self.assertEqual(client.command("MAIL FROM:<y@example.test>")[0], "250")
        self.assertEqual(client.command("RCPT TO:<x@example.test>")[0], "250")
        self.assertEqual(client.command("DATA")[0], "354")
        try:
            client.send((b"x" * 75 + b"\r\n") * 1000 + b".\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # it died while we were still sending: that is the point
        rest = client.read_until_closed(timeout=10)
        self.assertNotIn("250", rest)
        self.assertTrue(fake.sessions[0]["died_in_data"], fake.sessions)


class FreePortTest(unittest.TestCase):
    def test_nothing_listens_on_a_free_port(self):
        port = lab.free_port()
        self.assertTrue(lab.port_is_free(port))
        self.assertFalse(lab.port_accepts(port))


if __name__ == "__main__":
    unittest.main()
