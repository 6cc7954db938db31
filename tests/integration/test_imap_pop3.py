"""IMAP and POP3 through the real tlsbridge binary to a real Dovecot (issue #5).

The front leg is TLS 1.2+ (STARTTLS/STLS or implicit), the back leg is STARTTLS/STLS capped at
TLS 1.0 to a Dovecot with a SHA-1 certificate. Clients are the real ones (curl, openssl s_client,
Python's imaplib/poplib) plus a raw line client for what they will not do (pipelining an
injection after STARTTLS, holding IDLE). What reached Dovecot is read from its auth log (every
auth request is logged with its user name); what the proxy did, from its audit log.
"""

import imaplib
import poplib
import re
import socket
import ssl
import threading
import time
import unittest
import uuid

import lab

MODERN = ("TLSv1.2", "TLSv1.3")
USER, PASSWORD = "alice", "wonderland"

proxy = None
dovecot = None
ports = {}


def modern_context():
    ctx = lab.client_context()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def setUpModule():
    """One Dovecot and one tlsbridge for the module (each starts in well under a second, but
    every test uses fresh connections and finds its own audit records by client address)."""
    global proxy, dovecot
    certs = lab.shared_certs()
    dovecot = lab.DovecotBackend(certs, user=USER, password=PASSWORD)
    try:
        dovecot.start()
        for name in ("imap", "imaps", "pop3", "pop3s"):
            ports[name] = lab.free_port()

        def listener(name, protocol, backend_port, tls):
            return lab.smtp_listener(ports[name], backend_port, name=name + "-in", tls=tls,
                                     backend_tls="starttls", protocol=protocol)

        proxy = lab.Tlsbridge(
            [listener("imap", "imap", dovecot.imap_port, "starttls"),
             listener("imaps", "imap", dovecot.imap_port, "implicit"),
             listener("pop3", "pop3", dovecot.pop3_port, "starttls"),
             listener("pop3s", "pop3", dovecot.pop3_port, "implicit")],
            [lab.server_pair(certs)])
        proxy.start()
    except Exception:
        tearDownModule()
        raise


def tearDownModule():
    if proxy is not None:
        proxy.cleanup()
    if dovecot is not None:
        dovecot.cleanup()


class LineClient:
    """A raw CRLF client for IMAP/POP3 that can be upgraded to TLS in place."""

    def __init__(self, port, implicit=False, timeout=15.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        host, local_port = self.sock.getsockname()[:2]
        self.local = f"{host}:{local_port}"
        self.buffer = b""
        if implicit:
            self.sock = modern_context().wrap_socket(self.sock)

    def send(self, data):
        self.sock.sendall(data.encode() if isinstance(data, str) else data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed by the proxy; had " + repr(self.buffer))
        self.buffer += chunk

    def read_line(self):
        while b"\n" not in self.buffer:
            self._fill()
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.rstrip(b"\r").decode("utf-8", "replace")

    def read_bytes(self, n):
        while len(self.buffer) < n:
            self._fill()
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def until_tagged(self, tag):
        """Lines up to and including the one tagged `tag`."""
        lines = []
        while True:
            line = self.read_line()
            lines.append(line)
            if line.startswith(tag + " "):
                return lines

    def command(self, tag, text):
        self.send(f"{tag} {text}\r\n")
        return self.until_tagged(tag)

    def starttls(self):
        if self.buffer:
            raise ConnectionError(f"plaintext bytes after the STARTTLS reply: {self.buffer!r}")
        self.sock = modern_context().wrap_socket(self.sock)

    def tls_version(self):
        return self.sock.version() if isinstance(self.sock, ssl.SSLSocket) else None

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class ImapPop3Test(unittest.TestCase):

    def setUp(self):
        # The module's tests share one proxy and a client port comes round again: a test's
        # records are those written after it started.
        self.mark = proxy.conn_mark()

    def conn_record(self, local, listener):
        records = proxy.wait_for_conn_records(1, listener=listener, after=self.mark,
                                              where=lambda r: r.get("client") == local)
        self.assertEqual(len(records), 1, f"one conn record for {local}" + proxy.describe())
        return records[0]

    def assert_legs(self, record):
        self.assertIn(record["front"]["tls"], MODERN, proxy.describe())
        self.assertEqual(record["backend"]["tls"], "TLSv1", proxy.describe())
        self.assertEqual(record["backend"]["chain"]["verdict"], "logged", record)

    def dovecot_saw_user(self, name):
        return re.search(r"\b" + re.escape(name) + r"\b", dovecot.log()) is not None

    # -- real clients ----------------------------------------------------------------------

    def test_imaplib_starttls_login_with_tls10_backend(self):
        imap = imaplib.IMAP4("127.0.0.1", ports["imap"], timeout=15)
        local = "%s:%d" % imap.sock.getsockname()[:2]
        try:
            caps = imap.capabilities
            self.assertIn("STARTTLS", caps)
            self.assertIn("LOGINDISABLED", caps)
            self.assertFalse([c for c in caps if c.startswith("AUTH=")], caps)
            imap.starttls(ssl_context=modern_context())
            caps = imap.capabilities
            self.assertNotIn("STARTTLS", caps)
            self.assertNotIn("LOGINDISABLED", caps)
            self.assertIn("AUTH=PLAIN", caps)
            typ, _ = imap.login(USER, PASSWORD)
            self.assertEqual(typ, "OK")
            self.assertEqual(imap.select("INBOX")[0], "OK")
            imap.logout()
        finally:
            imap.shutdown() if imap.state != "LOGOUT" else None
        record = self.conn_record(local, "imap-in")
        self.assert_legs(record)
        self.assertEqual(record["outcome"], "ok", record)
        logins = proxy.records("imap.login", conn=record["conn"])
        self.assertEqual(len(logins), 1, proxy.describe())
        self.assertEqual(logins[0]["user"], USER)
        self.assertTrue(logins[0]["result"].startswith("OK"), logins[0])

    def test_append_over_imap_fetched_back_over_pop3_byte_identical(self):
        marker = uuid.uuid4().hex
        message, _ = lab.make_test_message(3000, marker)
        message = message.replace(b"plain line\r\n", b"a STARTTLS\r\nA1 OK [CAPABILITY X]\r\n")
        imap = imaplib.IMAP4_SSL("127.0.0.1", ports["imaps"], ssl_context=modern_context(),
                                 timeout=15)
        imap.login(USER, PASSWORD)
        typ, _ = imap.append("INBOX", None, None, message)
        self.assertEqual(typ, "OK")
        imap.logout()

        pop = poplib.POP3("127.0.0.1", ports["pop3"], timeout=15)
        local = "%s:%d" % pop.sock.getsockname()[:2]
        caps = pop.capa()
        self.assertIn("STLS", caps)
        self.assertNotIn("SASL", caps)
        self.assertNotIn("USER", caps)
        pop.stls(context=modern_context())
        caps = pop.capa()
        self.assertNotIn("STLS", caps)
        self.assertIn("USER", caps)
        pop.user(USER)
        pop.pass_(PASSWORD)
        count, _ = pop.stat()
        found = None
        for number in range(count, 0, -1):
            _, lines, _ = pop.retr(number)
            body = b"\r\n".join(lines) + b"\r\n"
            if marker.encode() in body:
                found = body
                break
        pop.quit()
        self.assertIsNotNone(found, "the appended message is not in the POP3 mailbox")
        self.assertEqual(found, message)
        record = self.conn_record(local, "pop3-in")
        self.assert_legs(record)
        logins = proxy.records("pop3.login", conn=record["conn"])
        self.assertEqual([(r["user"], r["result"][:3]) for r in logins], [(USER, "+OK")])

    def test_curl_imap_and_pop3_with_ssl_reqd(self):
        for name, url in (("imap", f"imap://127.0.0.1:{ports['imap']}/"),
                          ("pop3", f"pop3://127.0.0.1:{ports['pop3']}/")):
            local_port = lab.free_port()  # so that the conn record can be found
            out = lab.run(["curl", "-sS", "--ssl-reqd", "-k", "--tlsv1.2", "--max-time", "20",
                           "--local-port", str(local_port), "-u", f"{USER}:{PASSWORD}", url])
            self.assertEqual(out.returncode, 0, out.stderr + proxy.describe())
            if name == "imap":
                self.assertIn("INBOX", out.stdout)
            record = self.conn_record(f"127.0.0.1:{local_port}", name + "-in")
            self.assert_legs(record)
            logins = proxy.records(name + ".login", conn=record["conn"])
            self.assertEqual([r["user"] for r in logins], [USER], proxy.describe())

    def test_openssl_s_client_starttls_imap_and_pop3(self):
        out = lab.s_client(ports["imap"], "-starttls", "imap", "-tls1_2", "-ign_eof",
                           input_bytes=f"a1 LOGIN {USER} {PASSWORD}\r\na2 LOGOUT\r\n".encode())
        self.assertEqual(lab.tls_protocol(out.stdout), "TLSv1.2", out.stdout + out.stderr)
        self.assertRegex(out.stdout, r"(?m)^a1 OK", out.stdout)
        out = lab.s_client(ports["pop3"], "-starttls", "pop3", "-ign_eof",
                           input_bytes=f"USER {USER}\r\nPASS {PASSWORD}\r\nQUIT\r\n".encode())
        self.assertIn(lab.tls_protocol(out.stdout), MODERN, out.stdout + out.stderr)
        self.assertRegex(out.stdout, r"(?m)^\+OK Logged in", out.stdout)

    # -- what never reaches the backend -----------------------------------------------------

    def test_login_before_starttls_is_refused_and_never_reaches_dovecot(self):
        client = LineClient(ports["imap"])
        try:
            self.assertTrue(client.read_line().startswith("* OK"))
            reply = client.command("a1", "LOGIN mallory secret")
            self.assertRegex(reply[-1], r"^a1 NO \[PRIVACYREQUIRED\]")
            reply = client.command("a2", "AUTHENTICATE PLAIN AG1hbGxvcnkAc2VjcmV0")
            self.assertRegex(reply[-1], r"^a2 NO \[PRIVACYREQUIRED\]")
            # The success path on the same connection: STARTTLS, then a login Dovecot sees (a
            # failing one, so that the log check below is shown to be able to see a user).
            self.assertRegex(client.command("a3", "STARTTLS")[-1], r"^a3 OK")
            client.starttls()
            self.assertRegex(client.command("a4", "LOGIN tweedledum wrong")[-1], r"^a4 NO")
            self.assertRegex(client.command("a5", f"LOGIN {USER} {PASSWORD}")[-1], r"^a5 OK")
            client.command("a6", "LOGOUT")
        finally:
            client.close()
        self.assertTrue(lab.wait_until(lambda: self.dovecot_saw_user("tweedledum"), 5),
                        dovecot.log()[-3000:])
        self.assertFalse(self.dovecot_saw_user("mallory"), dovecot.log()[-3000:])

        pop = LineClient(ports["pop3"])
        try:
            self.assertTrue(pop.read_line().startswith("+OK"))
            pop.send("USER mallory2\r\n")
            self.assertTrue(pop.read_line().startswith("-ERR"))
            pop.send("QUIT\r\n")
            self.assertTrue(pop.read_line().startswith("+OK"))
        finally:
            pop.close()
        self.assertFalse(self.dovecot_saw_user("mallory2"), dovecot.log()[-3000:])

    def test_starttls_with_pipelined_plaintext_is_discarded(self):
        client = LineClient(ports["imap"])
        try:
            client.read_line()
            client.send("a1 STARTTLS\r\na2 LOGIN injected wonderland\r\n")
            self.assertRegex(client.read_line(), r"^a1 OK")
            client.starttls()
            self.assertRegex(client.command("a3", "NOOP")[-1], r"^a3 OK")
            client.send("a4 LOGOUT\r\n")
            lines = client.until_tagged("a4")
            self.assertFalse([l for l in lines if l.startswith("a2 ")], lines)
        finally:
            client.close()
        record = self.conn_record(client.local, "imap-in")
        self.assertTrue(record["starttls_injection"], record)
        self.assertEqual(record.get("injected_bytes"), len("a2 LOGIN injected wonderland\r\n"))

        pop = LineClient(ports["pop3"])
        try:
            pop.read_line()
            pop.send("STLS\r\nUSER injected2\r\n")
            self.assertTrue(pop.read_line().startswith("+OK"))
            pop.starttls()
            pop.send("QUIT\r\n")
            self.assertTrue(pop.read_line().startswith("+OK"))
        finally:
            pop.close()
        record = self.conn_record(pop.local, "pop3-in")
        self.assertTrue(record["starttls_injection"], record)
        time.sleep(0.2)
        self.assertFalse(self.dovecot_saw_user("injected"), dovecot.log()[-3000:])
        self.assertFalse(self.dovecot_saw_user("injected2"), dovecot.log()[-3000:])

    def test_literal_with_starttls_text_is_carried_as_data(self):
        marker = uuid.uuid4().hex
        message = (f"Subject: literal {marker}\r\n\r\na STARTTLS\r\nb LOGIN x y\r\n"
                   "* CAPABILITY IMAP4rev1 STARTTLS\r\n").encode()
        client = LineClient(ports["imaps"], implicit=True)
        try:
            client.read_line()
            self.assertRegex(client.command("a1", f"LOGIN {USER} {PASSWORD}")[-1], r"^a1 OK")
            # Synchronizing literal: wait for Dovecot's "+" relayed by the proxy.
            client.send(f"a2 APPEND INBOX {{{len(message)}}}\r\n")
            self.assertTrue(client.read_line().startswith("+"))
            client.send(message + b"\r\n")
            self.assertRegex(client.until_tagged("a2")[-1], r"^a2 OK")
            # Non-synchronizing (LITERAL+), pipelined with the next command.
            client.send(f"a3 APPEND INBOX {{{len(message)}+}}\r\n".encode() + message +
                        b"\r\na4 NOOP\r\n")
            self.assertRegex(client.until_tagged("a3")[-1], r"^a3 OK")
            self.assertRegex(client.until_tagged("a4")[-1], r"^a4 OK")
            self.assertRegex(client.command("a5", "SELECT INBOX")[-1], r"^a5 OK")
            lines = client.command("a6", f"SEARCH SUBJECT {marker}")
            numbers = [l for l in lines if l.startswith("* SEARCH")][0].split()[2:]
            self.assertEqual(len(numbers), 2, lines)
            for number in numbers:
                client.send(f"a7 FETCH {number} BODY.PEEK[]\r\n")
                head = client.read_line()
                size = int(re.search(r"\{(\d+)\}$", head).group(1))
                self.assertEqual(client.read_bytes(size), message)
                self.assertRegex(client.until_tagged("a7")[-1], r"^a7 OK")
            client.command("a8", "LOGOUT")
        finally:
            client.close()
        record = self.conn_record(client.local, "imaps-in")
        self.assertFalse(record["starttls_injection"], record)

    def test_idle_held_five_seconds_gets_the_new_mail_notification(self):
        client = LineClient(ports["imaps"], implicit=True)
        try:
            client.read_line()
            client.command("a1", f"LOGIN {USER} {PASSWORD}")
            lines = client.command("a2", "SELECT INBOX")
            exists = [int(l.split()[1]) for l in lines if re.match(r"^\* \d+ EXISTS", l)][0]
            client.send("a3 IDLE\r\n")
            self.assertTrue(client.read_line().startswith("+"))
            time.sleep(5)
            other = imaplib.IMAP4_SSL("127.0.0.1", ports["imaps"], ssl_context=modern_context(),
                                      timeout=15)
            other.login(USER, PASSWORD)
            other.append("INBOX", None, None, b"Subject: idle\r\n\r\nnew mail\r\n")
            other.logout()
            client.sock.settimeout(10)
            line = client.read_line()
            while not re.match(r"^\* \d+ EXISTS", line):
                line = client.read_line()
            self.assertGreater(int(line.split()[1]), exists)
            client.send("DONE\r\n")
            self.assertRegex(client.until_tagged("a3")[-1], r"^a3 OK")
            client.command("a4", "LOGOUT")
        finally:
            client.close()
        record = self.conn_record(client.local, "imaps-in")
        self.assertEqual(record["outcome"], "ok", record)


if __name__ == "__main__":
    unittest.main()
