"""[listener.limits] deny and connection_rate, [listener.smtp] greeting, REQUIRETLS, auth_user and
pretls_auth_attempts, [listener.http] hsts (README, "Limits"; docs/configuration.md).

Peers: the lab's real Postfix (plaintext back leg) for the limits and the greeting, the legacy IIS
stand-in (legacy_iis.py) for HTTPS, and a small byte-logging fake SMTP backend for what Debian's
Postfix cannot show here (it offers no REQUIRETLS and the lab's has no SASL). Clients on 127.0.0.2
are another address to the proxy (all of 127.0.0.0/8 is loopback on Linux), so a denied client and
an allowed one use the same port at the same time."""

import base64
import http.client
import os
import socket
import ssl
import threading
import time
import unittest

import lab
import legacy_iis
from test_scale_out_limits import connect_from
from test_scale_out_limits import read_reply as first_line


class FakeSmtpBackend:
    """Greets as "internal.backend.local", offers REQUIRETLS and AUTH PLAIN LOGIN, accepts any
    AUTH with 235 and any message with 250; logs every byte it reads."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]
        self.received = b""
        self.stop_flag = False
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.stop_flag = True
        self.thread.join(10)
        self.sock.close()

    def _serve(self):
        while not self.stop_flag:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    def _session(self, conn):
        conn.settimeout(30)
        buf = b""
        in_data = False
        auth_steps = 0
        try:
            conn.sendall(b"220 internal.backend.local ESMTP secret-internal\r\n")
            while not self.stop_flag:
                while b"\r\n" not in buf:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    self.received += chunk
                    buf += chunk
                line, buf = buf.split(b"\r\n", 1)
                if in_data:
                    if line == b".":
                        in_data = False
                        conn.sendall(b"250 2.0.0 Ok: queued as FAKE1\r\n")
                    continue
                if auth_steps:
                    auth_steps -= 1
                    conn.sendall(b"334 UGFzc3dvcmQ6\r\n" if auth_steps else b"235 2.7.0 ok\r\n")
                    continue
                verb = line.split(b" ")[0].upper()
                if verb == b"EHLO":
                    conn.sendall(b"250-internal.backend.local Hello\r\n250-PIPELINING\r\n"
                                 b"250-REQUIRETLS\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n")
                elif verb == b"AUTH":
                    parts = line.split(b" ")
                    mech = parts[1].upper()
                    if mech == b"PLAIN" and len(parts) > 2:
                        conn.sendall(b"235 2.7.0 ok\r\n")
                    elif mech == b"PLAIN":
                        auth_steps = 1
                        conn.sendall(b"334 \r\n")
                    else:  # LOGIN: user, then password
                        auth_steps = 2
                        conn.sendall(b"334 VXNlcm5hbWU6\r\n")
                elif verb == b"DATA":
                    in_data = True
                    conn.sendall(b"354 go\r\n")
                elif verb == b"QUIT":
                    conn.sendall(b"221 bye\r\n")
                    return
                else:
                    conn.sendall(b"250 ok\r\n")
        except OSError:
            pass
        finally:
            conn.close()


def proxy_certs(certs):
    return [lab.server_pair(certs)]


class SmtpLimitsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.certs = lab.shared_certs()
        cls.backend = lab.start_for_class(cls, lab.PostfixBackend(cls.certs, tls="none"))
        cls.port = lab.free_port()
        cls.rate_port = lab.free_port()
        timeouts = {"handshake": "5s", "idle": "30s", "connect": "5s"}
        deny = lab.smtp_listener(cls.port, cls.backend.port, tls="none", backend_tls="none",
                                 require_tls=False, timeouts=timeouts,
                                 limits={"deny": ["127.0.0.2/32"]},
                                 smtp={"greeting": "mx.contoso.test ESMTP"})
        rate = lab.smtp_listener(cls.rate_port, cls.backend.port, name="smtp-rate", tls="none",
                                 backend_tls="none", require_tls=False, timeouts=timeouts,
                                 limits={"connection_rate": "3/3s"})
        cls.proxy = lab.Tlsbridge([deny, rate], proxy_certs(cls.certs))
        cls.addClassCleanup(cls.proxy.cleanup)
        cls.proxy.start()

    def test_denied_cidr_refused_in_smtp_words_allowed_client_served(self):
        with connect_from("127.0.0.2", self.port) as s:
            reply = first_line(s)
            local = "%s:%d" % s.getsockname()
        self.assertRegex(reply, r"^421 4\.7\.0 ", self.proxy.describe())
        records = self.proxy.wait_for_conn_records(
            1, where=lambda r: r["client"] == local and r["outcome"] == "limit")
        self.assertTrue(records, self.proxy.describe())
        self.assertIn("deny", records[-1]["reason"])
        self.assertIsNone(records[-1]["backend"], "a denied client never reaches Postfix")
        with connect_from("127.0.0.1", self.port) as s:
            self.assertTrue(first_line(s).startswith("220 "))

    def test_connection_rate_refuses_the_n_plus_first_then_accepts_after_the_window(self):
        start = time.monotonic()
        for i in range(3):
            with connect_from("127.0.0.3", self.rate_port) as s:
                self.assertTrue(first_line(s).startswith("220"), f"connection {i + 1}")
        with connect_from("127.0.0.3", self.rate_port) as s:
            reply = first_line(s)
            local = "%s:%d" % s.getsockname()
        self.assertLess(time.monotonic() - start, 3, "the test machine was too slow to judge")
        self.assertRegex(reply, r"^421 4\.7\.0 ")
        records = self.proxy.wait_for_conn_records(
            1, where=lambda r: r["client"] == local and r["outcome"] == "limit")
        self.assertTrue(records, self.proxy.describe())
        self.assertIn("connection_rate", records[-1]["reason"])
        # Another client is not affected, at the same moment on the same port.
        with connect_from("127.0.0.4", self.rate_port) as s:
            self.assertTrue(first_line(s).startswith("220"))
        time.sleep(max(0.0, 3.3 - (time.monotonic() - start)))
        with connect_from("127.0.0.3", self.rate_port) as s:
            self.assertTrue(first_line(s).startswith("220"), "a new window accepts again")

    def test_greeting_hides_postfix_host_name_and_mail_is_delivered(self):
        c = lab.SmtpClient(self.port)
        self.addCleanup(c.close)
        code, lines = c.read_reply()
        self.assertEqual(("220", ["220 mx.contoso.test ESMTP"]), (code, lines))
        code, lines = c.command("EHLO client.test")
        self.assertEqual("250", code)
        self.assertTrue(lines[0].startswith("250-mx.contoso.test"), lines)
        marker = "greeting-marker-%d" % os.getpid()
        self.assertEqual("250", c.command("MAIL FROM:<a@example.test>")[0])
        self.assertEqual("250", c.command("RCPT TO:<b@example.test>")[0])
        self.assertEqual("354", c.command("DATA")[0])
        self.assertEqual("250", c.command(f"Subject: {marker}\r\n\r\nhello\r\n.")[0])
        c.command("QUIT")
        seen = "".join(data.decode("utf-8", "replace") for side, data in c.transcript if side == "S")
        self.assertNotIn("backend.test", seen, "Postfix's myhostname reached the client")
        self.assertTrue(self.backend.wait_for_message_containing(marker.encode()))


class SmtpFakeBackendTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.certs = lab.shared_certs()
        cls.backend = FakeSmtpBackend().start()
        cls.addClassCleanup(cls.backend.stop)
        cls.port = lab.free_port()
        cls.proxy = lab.Tlsbridge(
            [lab.smtp_listener(cls.port, cls.backend.port, tls="starttls", backend_tls="none",
                               require_tls=True, smtp={"greeting": "mx.contoso.test ESMTP"})],
            proxy_certs(cls.certs))
        cls.addClassCleanup(cls.proxy.cleanup)
        cls.proxy.start()

    def session(self):
        c = lab.SmtpClient(self.port)
        self.addCleanup(c.close)
        self.assertEqual("220", c.read_reply()[0])
        return c

    def tls_session(self, c):
        c.command("EHLO client.test")
        self.assertEqual("220", c.command("STARTTLS")[0])
        c.starttls(lab.client_context(os.path.join(self.certs, "ca.crt")),
                   server_hostname="localhost")
        code, lines = c.command("EHLO client.test")
        self.assertEqual("250", code)
        return lines

    def send_message(self, c, sender):
        """One message, QUIT; returns the session's conn records."""
        self.assertEqual("250", c.command(f"MAIL FROM:<{sender}>")[0])
        self.assertEqual("250", c.command("RCPT TO:<b@example.test>")[0])
        self.assertEqual("354", c.command("DATA")[0])
        self.assertEqual("250", c.command("Subject: x\r\n\r\nhi\r\n.")[0])
        local = c.local_address()
        c.command("QUIT")
        records = self.proxy.wait_for_conn_records(1, where=lambda r: r["client"] == local)
        self.assertTrue(records, self.proxy.describe())
        return records

    def test_requiretls_stripped_and_backend_name_hidden(self):
        c = self.session()
        lines = self.tls_session(c)
        self.assertTrue(any("AUTH" in l for l in lines), lines)  # the backend's EHLO came through
        self.assertFalse(any("REQUIRETLS" in l.upper() for l in lines), lines)
        self.assertTrue(lines[0].startswith("250-mx.contoso.test"), lines)
        self.assertNotIn(b"internal.backend.local",
                         b"".join(d for side, d in c.transcript if side == "S"))

    def test_auth_plain_user_in_smtp_message_and_pretls_attempts_counted(self):
        c = self.session()
        c.command("EHLO client.test")
        self.assertEqual("538", c.command("AUTH PLAIN " + base64.b64encode(
            b"\0early\0pw").decode())[0])
        self.assertEqual("220", c.command("STARTTLS")[0])
        c.starttls(lab.client_context(os.path.join(self.certs, "ca.crt")),
                   server_hostname="localhost")
        self.assertEqual("250", c.command("EHLO client.test")[0])
        token = base64.b64encode(b"\0alice@contoso.test\0secret").decode()
        self.assertEqual("235", c.command("AUTH PLAIN " + token)[0])
        records = self.send_message(c, "alice@contoso.test")
        self.assertEqual(1, records[-1].get("pretls_auth_attempts"), records[-1])
        messages = self.proxy.records("smtp.message", conn=records[-1]["conn"])
        self.assertEqual(["alice@contoso.test"], [m.get("auth_user") for m in messages])
        self.assertNotIn(b"secret", self.backend.received.replace(token.encode(), b""))

    def test_auth_login_user(self):
        c = self.session()
        self.tls_session(c)
        self.assertEqual("334", c.command("AUTH LOGIN")[0])
        self.assertEqual("334", c.command(base64.b64encode(b"bob").decode())[0])
        self.assertEqual("235", c.command(base64.b64encode(b"pw").decode())[0])
        records = self.send_message(c, "bob@contoso.test")
        self.assertNotIn("pretls_auth_attempts", records[-1])
        messages = self.proxy.records("smtp.message", conn=records[-1]["conn"])
        self.assertEqual(["bob"], [m.get("auth_user") for m in messages])


class HttpsLimitsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.certs = lab.shared_certs()
        cls.iis = legacy_iis.LegacyIis(cls.certs).start()
        cls.addClassCleanup(cls.iis.stop)
        cls.port, cls.off_port = lab.free_port(), lab.free_port()

        def listener(name, port, **extra):
            d = {"name": name, "protocol": "https", "listen": f"127.0.0.1:{port}",
                 "tls": "implicit", "timeouts": {"handshake": "5s", "idle": "5s", "connect": "2s"},
                 "backend": {"address": [f"127.0.0.1:{cls.iis.port}"], "tls": "implicit",
                             "tls_profile": "legacy", "verify": "none"}}
            d.update(extra)
            return d
        cls.proxy = lab.Tlsbridge(
            [listener("https-in", cls.port, limits={"deny": ["127.0.0.2"]}),
             listener("https-nohsts", cls.off_port, http={"hsts": ""})],
            proxy_certs(cls.certs))
        cls.addClassCleanup(cls.proxy.cleanup)
        cls.proxy.start()

    def context(self):
        return ssl.create_default_context(cafile=os.path.join(self.certs, "ca.crt"))

    def get(self, path, port=None):
        conn = http.client.HTTPSConnection("localhost", port or self.port, timeout=15,
                                           context=self.context())
        self.addCleanup(conn.close)
        conn.request("GET", path)
        r = conn.getresponse()
        r.read()
        return r

    def test_hsts_added_once(self):
        r = self.get("/owa/")
        self.assertEqual(200, r.status)
        self.assertEqual(["max-age=31536000"], r.headers.get_all("Strict-Transport-Security"))
        r = self.get("/EWS/hsts")
        self.assertEqual(["max-age=600"], r.headers.get_all("Strict-Transport-Security"),
                         "the backend's own policy is kept, never a second one")
        r = self.get("/owa/", port=self.off_port)
        self.assertIsNone(r.headers.get("Strict-Transport-Security"), "hsts = \"\" is off")

    def test_denied_client_gets_429(self):
        with connect_from("127.0.0.2", self.port) as raw:
            with self.context().wrap_socket(raw, server_hostname="localhost") as t:
                data = b""
                while True:
                    chunk = t.recv(4096)
                    if not chunk:
                        break
                    data += chunk
        self.assertTrue(data.startswith(b"HTTP/1.1 429 "), data)
        self.assertEqual(200, self.get("/owa/").status)


if __name__ == "__main__":
    unittest.main()
