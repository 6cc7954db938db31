"""The SMTP shield (issue 12 items 4 and 8; SECURITY.md, "The shield"): the proxy and the backend
must never disagree about where a command or a message ends.

Every vector is sent through the real tlsbridge binary to a real Postfix (what Postfix received is
read back from its command log, debug_peer_list) or, for what Postfix cannot show (NUL and other
control bytes, SASL exchanges, bytes after QUIT, a tolerant backend without CHUNKING), to a
byte-logging backend that records every byte it got (smtp_shield_lab.ByteLoggingSmtpBackend).
Each refusal is checked three ways: the proxy's own reply, nothing of it at the backend, and the
success path right behind it on the same connection. The generated family (verbs x separators x
states) is the differential check: the lines the backend logged must be exactly the lines the
proxy relayed, and by SECURITY.md ("The shield") it relays none of them.
"""

import os
import time
import unittest
import uuid

import lab
import smtp_shield_lab

SYNTAX = "500 5.5.2 Syntax error, command unrecognized"
BARE = "500 5.5.2 Bare CR or LF in command line refused"
NO_CHUNKING = "502 5.5.1 BDAT not available: the server did not offer CHUNKING"
PROXY_REFUSALS = (SYNTAX, BARE)
# The backend gets the client's EHLO before and after the front STARTTLS.
EHLO2 = b"EHLO client.test\r\n" * 2

# Issue 12 item 4, and variants it does not name.
ISSUE_VECTORS = [
    b"XEXCH50\t1 2", b" XEXCH50 1 2", b"X-ANONYMOUSTLS\t", b"XSHADOW\tx", b"XRDST\t",
    b"AUTH\tPLAIN AGFsaWNlAHNlY3JldA==", b"DATA\t", b"MAIL\tFROM:<evil@example.org>",
    b"RCPT\tTO:<evil@example.org>", b"MAIL  FROM:<evil@example.org>", b" DATA", b"DATA\x0b",
    b"DATA\x0c", b"\tRSET", b"XSHADOWREQUEST\t", b"X-EXPS\tGSSAPI", b"BDAT\t5 LAST", b"",
    b"QUIT\t", b"RSET\x1b",
]

VERBS = ["EHLO", "HELO", "MAIL", "RCPT", "DATA", "BDAT", "RSET", "NOOP", "QUIT", "VRFY", "AUTH",
         "STARTTLS", "XEXCH50", "X-ANONYMOUSTLS", "XSHADOW", "XRDST", "X-EXPS"]
ARGUMENTS = {"EHLO": "c.test", "HELO": "c.test", "MAIL": "FROM:<f@example.org>",
             "RCPT": "TO:<t@example.org>", "BDAT": "5 LAST", "VRFY": "postmaster",
             "AUTH": "PLAIN AGFsaWNlAHNlY3JldA==", "XEXCH50": "10 2", "X-EXPS": "GSSAPI"}
SEPARATORS = {"TAB": b"\t", "SP SP": b"  ", "leading SP": None, "NUL": b"\x00", "VT": b"\x0b",
              "FF": b"\x0c", "CR": b"\r"}


def generated_family():
    """(name, line) for every verb x separator, with and without an argument after it."""
    family = []
    for verb in VERBS:
        argument = ARGUMENTS.get(verb, "x").encode()
        for name, sep in SEPARATORS.items():
            if sep is None:
                family.append((f"{verb} {name}", b" " + verb.encode() + b" " + argument))
                family.append((f"{verb} {name}, no argument", b" " + verb.encode()))
            else:
                family.append((f"{verb} {name}", verb.encode() + sep + argument))
                family.append((f"{verb} {name} at the end", verb.encode() + sep))
    return family


def postfix_rendering(line):
    """How Postfix's command log shows a line it received: cut at NUL, control bytes as '?'."""
    line = line.split(b"\x00", 1)[0]
    return "".join("?" if b < 0x20 or b == 0x7f else chr(b) for b in line)


class Session:
    """A raw SMTP session through the proxy: greeting, EHLO, optionally STARTTLS + EHLO."""

    def __init__(self, test, port, tls=True):
        self.client = lab.SmtpClient(port, timeout=8.0)
        test.addCleanup(self.client.close)
        code, lines = self.client.read_reply()
        test.assertEqual(code, "220", lines)
        code, self.ehlo = self.client.command("EHLO client.test")
        test.assertEqual(code, "250", self.ehlo)
        if tls:
            code, lines = self.client.command("STARTTLS")
            test.assertEqual(code, "220", lines)
            self.client.starttls(lab.client_context(os.path.join(test.certs, "ca.crt")),
                                 server_hostname="localhost")
            code, self.ehlo = self.client.command("EHLO client.test")
            test.assertEqual(code, "250", self.ehlo)

    def raw(self, line):
        """Sends line (bytes) + CRLF; returns the reply's last line."""
        self.client.send(line + b"\r\n")
        _, lines = self.client.read_reply()
        return lines[-1]

    def ok(self, test, line):
        code, lines = self.client.command(line)
        test.assertEqual(code[0], "2", f"{line}: {lines}")
        return lines


def make_proxy(test_class, listeners):
    proxy = lab.Tlsbridge(listeners, [(os.path.join(test_class.certs, "server.chain.pem"),
                                       os.path.join(test_class.certs, "server.key"))])
    test_class.addClassCleanup(proxy.cleanup)
    return proxy.start()


class ShieldAgainstPostfixTest(unittest.TestCase):
    """Real Postfix behind the proxy: one offering CHUNKING (TLS 1.0 back leg), one without it."""

    @classmethod
    def setUpClass(cls):
        cls.certs = lab.shared_certs()
        cls.postfix = lab.start_for_class(cls, lab.PostfixBackend(cls.certs, tls="tls1.0-starttls"))
        cls.chunkless = smtp_shield_lab.ChunklessPostfix(cls.certs, tls="none")
        cls.addClassCleanup(cls.chunkless.cleanup)
        cls.chunkless.start()
        cls.port, cls.open_port, cls.chunkless_port = (lab.free_port() for _ in range(3))
        cls.proxy = make_proxy(cls, [
            lab.smtp_listener(cls.port, cls.postfix.port, name="smtp-in"),
            lab.smtp_listener(cls.open_port, cls.postfix.port, name="smtp-open",
                              require_tls=False),
            lab.smtp_listener(cls.chunkless_port, cls.chunkless.port, name="smtp-chunkless",
                              backend_tls="none"),
        ])

    def commands_between(self, backend, begin, end):
        """Postfix's logged commands from "NOOP begin" to "NOOP end" (both included)."""
        self.assertIsNotNone(backend.wait_for_log(f"< [^:]+: NOOP {end}", 10),
                             "the end marker never reached Postfix's log" + self.proxy.describe())
        commands = backend.received_commands()
        first = commands.index(f"NOOP {begin}")
        last = commands.index(f"NOOP {end}")
        return commands[first:last + 1]

    def refusals(self, listener):
        return [r for r in self.proxy.records("smtp.refused") if r.get("listener") == listener]

    def test_issue_vectors_are_refused_and_never_reach_postfix(self):
        s = Session(self, self.port)
        marker = uuid.uuid4().hex
        s.ok(self, f"NOOP {marker}-begin")
        s.ok(self, "MAIL FROM:<sender@example.org>")
        s.ok(self, "RCPT TO:<rcpt@example.org>")
        for vector in ISSUE_VECTORS:
            with self.subTest(vector=vector):
                self.assertEqual(s.raw(vector), SYNTAX, f"{vector!r}" + self.proxy.describe())
        s.ok(self, f"NOOP {marker}-end")
        # The success path on the same connection: the transaction the vectors did not disturb.
        code, lines = s.client.command("DATA")
        self.assertEqual(code, "354", lines)
        s.client.send(f"Subject: {marker}\r\n\r\nshield holds\r\n.\r\n")
        code, lines = s.client.read_reply()
        self.assertEqual(code, "250", lines)
        self.assertIsNotNone(self.postfix.wait_for_message_containing(marker.encode()))
        self.assertEqual(self.commands_between(self.postfix, f"{marker}-begin", f"{marker}-end"),
                         [f"NOOP {marker}-begin", "MAIL FROM:<sender@example.org>",
                          "RCPT TO:<rcpt@example.org>", f"NOOP {marker}-end"],
                         "Postfix received a line the proxy refused" + self.proxy.describe())
        s.client.command("QUIT")
        reasons = {r["reason"] for r in self.refusals("smtp-in")}
        self.assertTrue(any(r.startswith("smtp.verb_syntax: RFC 5321 command syntax")
                            for r in reasons), reasons)
        # The conn record counts the refusals by rule (and so does tlsbridge_refusals_total).
        local = s.client.local_address()
        conn = self.proxy.wait_for_conn_records(
            1, listener="smtp-in",  # a reused client port's older record has no such refusals
            where=lambda r: r["client"] == local and "smtp.verb_syntax" in r.get("refusals", {}))
        self.assertTrue(conn, self.proxy.describe())
        self.assertGreaterEqual(conn[-1].get("refusals", {}).get("smtp.verb_syntax", 0),
                                len(ISSUE_VECTORS) - 2, conn[-1])

    def test_auth_tab_plain_before_tls_without_require_tls_is_refused(self):
        s = Session(self, self.open_port, tls=False)
        marker = uuid.uuid4().hex
        s.ok(self, f"NOOP {marker}-begin")
        self.assertEqual(s.raw(b"AUTH\tPLAIN AGFsaWNlAHNlY3JldA=="), SYNTAX)
        self.assertEqual(s.raw(b"auth\tplain"), SYNTAX)
        self.assertEqual(s.raw(b"AUTH PLAIN AGFsaWNlAHNlY3JldA=="),
                         "538 5.7.11 Encryption required for requested authentication mechanism")
        # The listener relays what it should: a transaction in the clear (require_tls = false).
        s.ok(self, "MAIL FROM:<sender@example.org>")
        s.ok(self, f"NOOP {marker}-end")
        self.assertEqual(self.commands_between(self.postfix, f"{marker}-begin", f"{marker}-end"),
                         [f"NOOP {marker}-begin", "MAIL FROM:<sender@example.org>",
                          f"NOOP {marker}-end"])
        s.client.command("QUIT")

    def test_bdat_is_refused_when_the_backend_does_not_offer_chunking(self):
        s = Session(self, self.chunkless_port)
        self.assertNotIn("CHUNKING", " ".join(s.ehlo).upper())
        marker = uuid.uuid4().hex
        s.ok(self, f"NOOP {marker}-begin")
        s.ok(self, "MAIL FROM:<sender@example.org>")
        s.ok(self, "RCPT TO:<rcpt@example.org>")
        chunk = f"NOOP chunk-{marker}\r\nRSET\r\n".encode()
        s.client.send(b"BDAT %d LAST\r\n" % len(chunk) + chunk)
        code, lines = s.client.read_reply()
        self.assertEqual(lines[-1], NO_CHUNKING, self.proxy.describe())
        # Success path: the same session goes on, the chunk was dropped (no RSET ran).
        s.ok(self, f"NOOP {marker}-end")
        code, lines = s.client.command("DATA")
        self.assertEqual(code, "354", lines)
        s.client.send(f"Subject: {marker}\r\n\r\nby DATA\r\n.\r\n")
        self.assertEqual(s.client.read_reply()[0], "250")
        self.assertIsNotNone(self.chunkless.wait_for_message_containing(marker.encode()))
        commands = self.commands_between(self.chunkless, f"{marker}-begin", f"{marker}-end")
        self.assertEqual(commands, [f"NOOP {marker}-begin", "MAIL FROM:<sender@example.org>",
                                    "RCPT TO:<rcpt@example.org>", f"NOOP {marker}-end"])
        s.client.command("QUIT")
        self.assertIn("smtp.bdat_without_chunking: BDAT without CHUNKING (RFC 3030 §2)",
                      [r["reason"] for r in self.refusals("smtp-chunkless")])

    def test_bdat_passes_when_the_backend_offers_chunking(self):
        s = Session(self, self.port)
        self.assertIn("CHUNKING", [line[4:].split(" ")[0].upper() for line in s.ehlo[1:]])
        marker = uuid.uuid4().hex
        s.ok(self, "MAIL FROM:<sender@example.org>")
        s.ok(self, "RCPT TO:<rcpt@example.org>")
        body = f"Subject: {marker}\r\n\r\nby BDAT\r\n".encode()
        s.client.send(b"BDAT %d LAST\r\n" % len(body) + body)
        self.assertEqual(s.client.read_reply()[0], "250", self.proxy.describe())
        self.assertIsNotNone(self.postfix.wait_for_message_containing(marker.encode()))
        s.client.command("QUIT")

    def test_generated_family_differential_against_postfix(self):
        """Every verb x separator in four states: Postfix's log must hold exactly the lines the
        proxy relayed (answered by the backend), and by SECURITY.md ("The shield") the proxy relays
        none."""
        family = generated_family()
        states = [("before TLS, require_tls", self.port, False, False),
                  ("before TLS, require_tls = false", self.open_port, False, False),
                  ("after TLS", self.port, True, False),
                  ("after TLS, in a transaction", self.port, True, True)]
        for state, port, tls, transaction in states:
            with self.subTest(state=state):
                s = Session(self, port, tls=tls)
                marker = uuid.uuid4().hex
                expected = [f"NOOP {marker}-begin"]
                s.ok(self, expected[0])
                if transaction:
                    for line in ("MAIL FROM:<sender@example.org>", "RCPT TO:<rcpt@example.org>"):
                        s.ok(self, line)
                        expected.append(line)
                not_refused = []
                for name, line in family:
                    reply = s.raw(line)
                    if reply not in PROXY_REFUSALS:
                        not_refused.append((name, line, reply))
                        expected.append(postfix_rendering(line))
                s.ok(self, f"NOOP {marker}-end")
                expected.append(f"NOOP {marker}-end")
                seen = self.commands_between(self.postfix, f"{marker}-begin", f"{marker}-end")
                # The differential: what the backend logged is what the proxy relayed.
                self.assertEqual(seen, expected, self.proxy.describe())
                self.assertEqual(not_refused, [],
                                 "relayed instead of 500 5.5.2 (SECURITY.md, 'The shield')")
                if transaction:
                    code, lines = s.client.command("DATA")
                    self.assertEqual(code, "354", lines)
                    s.client.send(f"Subject: {marker}\r\n\r\nfamily\r\n.\r\n")
                    self.assertEqual(s.client.read_reply()[0], "250")
                    self.assertIsNotNone(self.postfix.wait_for_message_containing(
                        marker.encode()))
                s.client.command("QUIT")


class ShieldByteLogTest(unittest.TestCase):
    """A byte-logging tolerant backend: exactly which bytes arrived, for what Postfix cannot show."""

    @classmethod
    def setUpClass(cls):
        cls.certs = lab.shared_certs()
        cls.backend = smtp_shield_lab.ByteLoggingSmtpBackend(chunking=True).start()
        cls.addClassCleanup(cls.backend.cleanup)
        cls.chunkless = smtp_shield_lab.ByteLoggingSmtpBackend(chunking=False).start()
        cls.addClassCleanup(cls.chunkless.cleanup)
        cls.port, cls.chunkless_port = lab.free_port(), lab.free_port()
        cls.proxy = make_proxy(cls, [
            lab.smtp_listener(cls.port, cls.backend.port, name="bytelog", backend_tls="none"),
            lab.smtp_listener(cls.chunkless_port, cls.chunkless.port, name="bytelog-chunkless",
                              backend_tls="none"),
        ])

    def session_bytes(self, backend, before, marker):
        """The bytes of the one backend connection whose log holds marker, after the session
        ended (the connections before `before` are other tests')."""
        def find():
            for index in range(before, backend.connections):
                data = backend.received(index)
                if marker in data and data.endswith(b"QUIT\r\n"):
                    return index, data
            return None
        found = lab.wait_until(find, 10)
        self.assertIsNotNone(found, "no backend connection carried the marker"
                             + self.proxy.describe())
        return found

    def close(self, s):
        code, _ = s.client.command("QUIT")
        self.assertEqual(code, "221")
        s.client.read_until_closed(5)

    def test_control_bytes_and_bare_line_ends_never_reach_the_backend(self):
        before = self.backend.connections
        s = Session(self, self.port)
        marker = uuid.uuid4().hex
        vectors = ISSUE_VECTORS + [
            b"MAIL FROM:<a@example.org>\x00RCPT TO:<evil@example.org>", b"DA\x00TA",
            b"\x00DATA", b"NOOP\x0bX", b"NOOP\x7f", b"VRFY a\tb", b"D\xc3\xa4TA"]
        for vector in vectors:
            with self.subTest(vector=vector):
                self.assertEqual(s.raw(vector), SYNTAX)
        for vector in (b"NOOP\rRCPT TO:<evil@example.org>", b"RSET\r"):
            self.assertEqual(s.raw(vector), BARE)
        s.client.send(b"NOOP bare-lf\nNOOP " + marker.encode() + b"\r\n")
        self.assertEqual(s.client.read_reply()[1][-1], BARE)
        self.assertEqual(s.client.read_reply()[0], "250")
        self.close(s)
        index, data = self.session_bytes(self.backend, before, marker.encode())
        self.assertEqual(data, EHLO2 + b"NOOP " + marker.encode() + b"\r\nQUIT\r\n")

    def test_sasl_responses_are_relayed_as_responses_until_the_final_reply(self):
        before = self.backend.connections
        s = Session(self, self.port)
        marker = uuid.uuid4().hex
        code, lines = s.client.command("AUTH LOGIN")
        self.assertEqual(code, "334", lines)
        # Base64 with '+', '/' and '=': a response, not a command (RFC 4954 §4).
        code, lines = s.client.command("YWxp+/ce==")
        self.assertEqual(code, "334", lines)
        code, lines = s.client.command("c2VjcmV0")
        self.assertEqual(code, "235", lines)
        s.ok(self, "MAIL FROM:<sender@example.org>")
        # What is not a response is cancelled with "*", the backend's 501 answers it.
        code, lines = s.client.command("AUTH LOGIN")
        self.assertEqual(code, "334", lines)
        code, lines = s.client.command("RCPT TO:<evil@example.org>")
        self.assertEqual(code, "501", lines)
        s.ok(self, f"NOOP {marker}")
        self.close(s)
        index, data = self.session_bytes(self.backend, before, marker.encode())
        self.assertEqual(data, EHLO2 + b"AUTH LOGIN\r\nYWxp+/ce==\r\nc2VjcmV0\r\n"
                         b"MAIL FROM:<sender@example.org>\r\nAUTH LOGIN\r\n*\r\n"
                         b"NOOP " + marker.encode() + b"\r\nQUIT\r\n")
        self.assertEqual([kind for kind, _ in self.backend.events(index)],
                         ["cmd"] * 3 + ["sasl", "sasl", "cmd", "cmd", "sasl", "cmd", "cmd"])

    def test_nothing_after_quit_reaches_the_backend(self):
        before = self.backend.connections
        s = Session(self, self.port)
        marker = uuid.uuid4().hex
        s.ok(self, f"NOOP {marker}")
        s.client.send(b"QUIT\r\nNOOP after-quit\r\nMAIL FROM:<evil@example.org>\r\n")
        self.assertEqual(s.client.read_reply()[0], "221")
        s.client.read_until_closed(5)
        _, data = self.session_bytes(self.backend, before, marker.encode())
        time.sleep(0.5)  # anything still in flight would land in the log now
        _, data = self.session_bytes(self.backend, before, marker.encode())
        self.assertNotIn(b"after-quit", data)
        self.assertTrue(data.endswith(b"NOOP " + marker.encode() + b"\r\nQUIT\r\n"), data)

    def test_bdat_without_chunking_never_runs_its_chunk_as_commands(self):
        before = self.chunkless.connections
        s = Session(self, self.chunkless_port)
        marker = uuid.uuid4().hex
        s.ok(self, "MAIL FROM:<sender@example.org>")
        chunk = b"RCPT TO:<evil@example.org>\r\nNOOP chunk-ran\r\n"
        s.client.send(b"BDAT %d LAST\r\n" % len(chunk) + chunk)
        self.assertEqual(s.client.read_reply()[1][-1], NO_CHUNKING)
        s.ok(self, f"NOOP {marker}")
        self.close(s)
        index, data = self.session_bytes(self.chunkless, before, marker.encode())
        self.assertEqual(data, EHLO2 + b"MAIL FROM:<sender@example.org>\r\n"
                         b"NOOP " + marker.encode() + b"\r\nQUIT\r\n")

    def test_bdat_sizes_two_backends_could_read_differently_close_the_session(self):
        for line in (b"BDAT 05 LAST", b"BDAT 010", b"BDAT 2147483648 LAST", b"BDAT +5 LAST",
                     b"BDAT 5  LAST", b"BDAT 18446744073709551617"):
            with self.subTest(line=line):
                before = self.backend.connections
                s = Session(self, self.port)
                s.client.send(line + b"\r\nNOOP in-chunk\r\n")
                rest = s.client.read_until_closed(5)
                self.assertTrue(rest.startswith("501 5.5.4 Malformed BDAT command"), rest)
                lab.wait_until(lambda: self.backend.connections > before, 5)
                time.sleep(0.3)
                data = b"".join(self.backend.received(i)
                                for i in range(before, self.backend.connections))
                self.assertNotIn(b"BDAT", data)
                self.assertNotIn(b"in-chunk", data)

    def test_generated_family_differential_against_a_tolerant_backend(self):
        """The same family as against Postfix; here the backend's byte log must be exactly the
        lines the proxy relayed (none of the family) and its tolerant reader must frame them
        the same way."""
        before = self.backend.connections
        s = Session(self, self.port)
        marker = uuid.uuid4().hex
        relayed = []
        for name, line in generated_family():
            reply = s.raw(line)
            if reply not in PROXY_REFUSALS:
                relayed.append(line)
        s.ok(self, f"NOOP {marker}")
        self.close(s)
        index, data = self.session_bytes(self.backend, before, marker.encode())
        expected = [b"EHLO client.test"] * 2 + relayed + [b"NOOP " + marker.encode(), b"QUIT"]
        self.assertEqual(data, b"".join(line + b"\r\n" for line in expected))
        self.assertEqual(self.backend.commands(index), expected)
        self.assertEqual(relayed, [], "relayed instead of 500 5.5.2 (SECURITY.md, 'The shield')")


class BareLfPassWarningTest(unittest.TestCase):
    """check-config (and the start) warn about smtp_bare_lf = "pass" (issue 12 item 8)."""

    def config(self, mode):
        certs = lab.shared_certs()
        proxy = lab.Tlsbridge(
            [lab.smtp_listener(lab.free_port(), lab.free_port(), name=f"smtp-{mode}",
                               smtp_bare_lf=mode)],
            [(os.path.join(certs, "server.chain.pem"), os.path.join(certs, "server.key"))])
        self.addCleanup(proxy.cleanup)
        with open(proxy.config_path, "w") as f:
            f.write(proxy.config_text())
        return proxy

    def test_check_config_warns_on_pass_and_says_why(self):
        proxy = self.config("pass")
        result = lab.run([proxy.binary, "check-config", "--config", proxy.config_path])
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("warning:", result.stderr)
        self.assertIn("smtp-pass", result.stderr)
        self.assertIn('smtp_bare_lf = "pass"', result.stderr)
        self.assertIn("CVE-2023-51764", result.stderr)
        # The same warning when the proxy starts with it.
        proxy.start()
        self.assertIn("CVE-2023-51764", proxy.stderr())

    def test_no_warning_for_reject_or_normalize(self):
        for mode in ("reject", "normalize"):
            proxy = self.config(mode)
            result = lab.run([proxy.binary, "check-config", "--config", proxy.config_path])
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertNotIn("CVE-2023-51764", result.stderr)


if __name__ == "__main__":
    unittest.main()
