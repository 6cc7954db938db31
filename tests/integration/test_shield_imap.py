"""The shield holds for IMAP and POP3 (issue 12 item 3, SECURITY.md, "The shield"): a client cannot
make the proxy and the backend disagree about where a command ends.

Real peers: the lab's Dovecot (its auth log, auth_verbose + auth_debug, names every user it was asked
to authenticate) behind the real tlsbridge binary; for POP3 lines Dovecot does not log, a
byte-logging POP3 backend (shield_lab.py). Each attack uses a user name of its own, so "Dovecot
never saw it" is a search of Dovecot's log; each refusal is shown together with the success path
(STARTTLS, a real login and its imap.login/pop3.login record) on the same listener.

Besides the named vectors, a generated family (marker shapes x positions x before/after TLS) goes
through the proxy into Dovecot, and the oracle is the differential one: no user may reach Dovecot
before TLS, and every user Dovecot saw after TLS must have the proxy's imap.login record.
"""

import base64
import itertools
import re
import time
import unittest
import uuid

import lab
from shield_lab import ByteLoggingPop3Backend, RawClient

USER, PASSWORD = "alice", "wonderland"

proxy = None
dovecot = None
fake_pop3 = None
ports = {}


def setUpModule():
    global proxy, dovecot, fake_pop3
    certs = lab.shared_certs()
    dovecot = lab.DovecotBackend(certs, user=USER, password=PASSWORD)
    try:
        dovecot.start()
        fake_pop3 = ByteLoggingPop3Backend().start()
        for name in ("imap", "pop3", "pop3-fake"):
            ports[name] = lab.free_port()
        proxy = lab.Tlsbridge(
            [lab.smtp_listener(ports["imap"], dovecot.imap_port, name="imap-in",
                               backend_tls="starttls", protocol="imap"),
             lab.smtp_listener(ports["pop3"], dovecot.pop3_port, name="pop3-in",
                               backend_tls="starttls", protocol="pop3"),
             lab.smtp_listener(ports["pop3-fake"], fake_pop3.port, name="pop3-fake",
                               backend_tls="none", protocol="pop3")],
            [lab.server_pair(certs)])
        proxy.start()
    except Exception:
        tearDownModule()
        raise


def tearDownModule():
    if proxy is not None:
        proxy.cleanup()
    if fake_pop3 is not None:
        fake_pop3.stop()
    if dovecot is not None:
        dovecot.cleanup()


def fresh_user():
    """A user name no other test uses, of fixed length (9), so literal sizes can be computed."""
    return "m" + uuid.uuid4().hex[:8]


def dovecot_saw(user, log=None):
    return re.search(r"\b" + re.escape(user) + r"\b", log if log is not None else dovecot.log())


def login_line(tag, user):
    return f"{tag} LOGIN {user} secret\r\n"


# Marker shapes (RFC 3501 §4.3, RFC 7888, RFC 3516) and the places an attacker puts them; "{n}"
# stands for the marker, filled in with the length of the hidden line. Each line is one the proxy
# must refuse (or, for a marker where a token starts, carry as a literal the backend also reads
# as one): in no case may the hidden line be a command to Dovecot and not to the proxy.
MARKERS = ["{%d+}", "{%d}", "~{%d+}", "{00000000000000000%d+}", "{0%d+}"]
POSITIONS = [
    "a NOOP x{m}",           # the issue: marker inside an atom
    "a NOOP {m}",            # at a token start: a real literal ({n+} refused before TLS)
    'a NOOP "{m}',           # unterminated quoted string
    'a NOOP "x"{m}',         # right after a quoted string
    "a NOOP  {m}",           # after two SP
    "a NOOP\t{m}",           # after TAB
    "a\tNOOP {m}",           # TAB instead of SP after the tag
    " a NOOP {m}",           # leading SP
    "a{m}",                  # at the end of the tag
    "a NOOP{m}",             # at the end of the command name
    "a NOOP {m} ",           # followed by SP
    "a ID ({m}",             # after "(" (a token start)
    "a SEARCH TEXT {m}",     # a plausible argument position
    "a STARTTLS {m}",        # STARTTLS with a literal argument
]


class ShieldImapTest(unittest.TestCase):

    def connect(self, port):
        """A RawClient marked with the conn records written before it connected: the module's
        many connections share one proxy, and a client port comes round again."""
        mark = proxy.conn_mark()
        client = RawClient(port)
        client.mark = mark
        return client

    def conn_record(self, client, listener):
        records = proxy.wait_for_conn_records(1, listener=listener, after=client.mark,
                                              where=lambda r: r.get("client") == client.local)
        self.assertEqual(len(records), 1,
                         f"one conn record for {client.local}" + proxy.describe())
        return records[0]

    def greet(self, client):
        self.assertTrue(client.read_line().startswith("* OK"))

    def success_path(self, client, tag="s"):
        """STARTTLS and a real login on this connection: the listener still works for the client
        right after the refusal."""
        self.assertRegex(client.command(f"{tag}1", "STARTTLS")[-1], rf"^{tag}1 OK")
        client.starttls()
        self.assertRegex(client.command(f"{tag}2", f"LOGIN {USER} {PASSWORD}")[-1], rf"^{tag}2 OK")
        self.assertRegex(client.command(f"{tag}3", "SELECT INBOX")[-1], rf"^{tag}3 OK")
        client.send(f"{tag}4 LOGOUT\r\n")
        client.until_tagged(f"{tag}4")

    def send_hidden(self, client, first_line, hidden):
        """The attack: first_line (maybe ending in a marker), the hidden line, then the end of a
        command the client might still be in, then a probe NOOP; returns every line up to the
        probe's reply (so everything before it was read by Dovecot too)."""
        client.send(first_line.encode("latin-1") + b"\r\n" + hidden.encode() + b"\r\n")
        client.send(b"z NOOP\r\n")
        return client.until_tagged("z")

    # -- the vectors and their named relatives ---------------------------------------

    def test_literal_markers_where_the_grammar_has_none_hide_nothing(self):
        users = []
        vectors = ["a NOOP x{%d+}", "a NOOP ~{%d+}", 'a NOOP "{%d+}', "a NOOP x~{%d+}",
                   "a{%d+} NOOP", "a NOOP {%d+}", "a NOOP {00000000000000000%d+}",
                   "a NOOP\t{%d+}", " a NOOP {%d+}", "a STARTTLS {%d+}"]
        for vector in vectors:
            with self.subTest(vector=vector):
                user = fresh_user()
                users.append(user)
                hidden = login_line("b", user)
                client = self.connect(ports["imap"])
                try:
                    self.greet(client)
                    lines = self.send_hidden(client, vector % len(hidden), hidden)
                    refusals = [l for l in lines if "Refused by proxy" in l]
                    self.assertTrue(refusals, lines)
                    # The hidden line is either dropped with the refused command or read by
                    # the proxy as a command and refused there; never answered by Dovecot.
                    self.assertFalse([l for l in lines if l.startswith("b ")
                                      and "PRIVACYREQUIRED" not in l], lines)
                    self.success_path(client)
                finally:
                    client.close()
                record = self.conn_record(client, "imap-in")
                refused = proxy.records("imap.refused", conn=record["conn"])
                self.assertTrue(refused, proxy.describe())
                self.assertTrue(all(r.get("reason", "").startswith("imap.") for r in refused),
                                refused)
                logins = proxy.records("imap.login", conn=record["conn"])
                self.assertEqual([r.get("user") for r in logins], [USER], proxy.describe())
        time.sleep(0.3)  # Dovecot's log process writes asynchronously
        log = dovecot.log()
        self.assertTrue(dovecot_saw(USER, log))  # the log shows users: the check can see
        for user in users:
            self.assertFalse(dovecot_saw(user, log), f"Dovecot saw {user}:\n{log[-3000:]}")

    def test_malformed_lines_are_refused_by_the_proxy(self):
        users = []
        for template in ["a\tLOGIN {u} secret", " a LOGIN {u} secret", "a  LOGIN {u} secret",
                         'a LOGIN "{u} secret', "a LOGIN {u}\x00 secret", "a LOGIN {u} secret ",
                         "a LOGIN {u}\tsecret", "a LOGIN {u} s\xe9cret"]:
            with self.subTest(template=template):
                user = fresh_user()
                users.append(user)
                client = self.connect(ports["imap"])
                try:
                    self.greet(client)
                    client.send(template.format(u=user).encode("latin-1") + b"\r\n")
                    reply = client.read_line()
                    self.assertRegex(reply, r"^(\*|a) BAD \[CLIENTBUG\] Refused by proxy", reply)
                    self.success_path(client)
                finally:
                    client.close()
                # Counted by rule in the conn record (and tlsbridge_refusals_total).
                record = self.conn_record(client, "imap-in")
                self.assertEqual(record.get("refusals"), {"imap.syntax": 1}, record)
        time.sleep(0.3)
        log = dovecot.log()
        for user in users:
            self.assertFalse(dovecot_saw(user, log), f"Dovecot saw {user}:\n{log[-3000:]}")

    def test_logins_however_spelled_are_refused_before_tls(self):
        users = []
        client = RawClient(ports["imap"])
        try:
            self.greet(client)
            for n, spelling in enumerate(['LOGIN "{u}" "secret"', "login {u} secret",
                                          'AUTHENTICATE "PLAIN" {ir}', "authenticate PLAIN {ir}"]):
                user = fresh_user()
                users.append(user)
                ir = base64.b64encode(b"\0" + user.encode() + b"\0secret").decode()
                reply = client.command(f"p{n}", spelling.format(u=user, ir=ir))
                self.assertRegex(reply[-1], rf"^p{n} NO \[PRIVACYREQUIRED\]")
            # A synchronizing literal: NO at once, no "+" (the client sends nothing more).
            client.send("q1 LOGIN {9}\r\n")
            self.assertRegex(client.read_line(), r"^q1 NO \[PRIVACYREQUIRED\]")
            # A non-synchronizing one: its bytes arrive anyway and are dropped with the command.
            user = fresh_user()
            users.append(user)
            client.send(f"q2 LOGIN {{9+}}\r\n{user} {{6+}}\r\nsecret\r\n")
            self.assertRegex(client.read_line(), r"^q2 NO \[PRIVACYREQUIRED\]")
            self.success_path(client)
        finally:
            client.close()
        time.sleep(0.3)
        log = dovecot.log()
        for user in users:
            self.assertFalse(dovecot_saw(user, log), f"Dovecot saw {user}:\n{log[-3000:]}")

    def test_logins_after_tls_are_audited_however_spelled(self):
        spellings = [
            lambda c: c.command("l1", f'LOGIN "{USER}" "{PASSWORD}"'),
            lambda c: (c.send(f"l1 LOGIN {{{len(USER)}}}\r\n"), c.read_line(),
                       c.send(f"{USER} {{{len(PASSWORD)}+}}\r\n{PASSWORD}\r\n"),
                       c.until_tagged("l1"))[-1],
            lambda c: (c.send("l1 AUTHENTICATE PLAIN\r\n"), c.read_line(),
                       c.send(base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()) + b"\r\n"),
                       c.until_tagged("l1"))[-1],
        ]
        for n, spell in enumerate(spellings):
            with self.subTest(spelling=n):
                client = self.connect(ports["imap"])
                try:
                    self.greet(client)
                    self.assertRegex(client.command("t1", "STARTTLS")[-1], r"^t1 OK")
                    client.starttls()
                    lines = spell(client)
                    self.assertRegex(lines[-1], r"^l1 OK", lines)
                    # IDLE and its DONE still pass.
                    client.send("i1 IDLE\r\n")
                    self.assertTrue(client.read_line().startswith("+"))
                    client.send("DONE\r\n")
                    self.assertRegex(client.until_tagged("i1")[-1], r"^i1 OK")
                    client.send("o1 LOGOUT\r\n")
                    client.until_tagged("o1")
                finally:
                    client.close()
                record = self.conn_record(client, "imap-in")
                logins = proxy.records("imap.login", conn=record["conn"])
                self.assertEqual([r.get("user") for r in logins], [USER], proxy.describe())

    # -- the differential family --------------------------------------------------------------

    def test_generated_variants_against_dovecot_differential(self):
        """Every marker shape in every position, before TLS, after TLS and after login, through
        the proxy into Dovecot. Before login the hidden line is a login that would succeed (failed
        ones make Dovecot slow an address down); oracle, Dovecot's log against the proxy's audit
        matched by the back leg's port (Dovecot's rport): before TLS Dovecot logs no login at all,
        after TLS every login it logs has the proxy's imap.login. After login the hidden line is
        COMPRESS, which only Dovecot would answer with its own reply (Dovecot's imap process
        skips the arguments of NOOP and unknown commands to the LF, literal or not)."""
        login = login_line("b", USER).replace("secret", PASSWORD)
        # After login the hidden line is COMPRESS, which the proxy always answers itself: a "b"
        # reply from Dovecot means Dovecot read as a command what the proxy took for data.
        compress = "b COMPRESS DEFLATE\r\n"
        variants, dovecot_answers, stalled = [], [], []
        # The module's other tests share this proxy, and their client ports may come round again
        # here: only the records written after this point are this test's.
        mark = proxy.conn_mark()
        started = time.monotonic()
        for phase, position, marker in itertools.product(("plain", "tls", "login"), POSITIONS,
                                                         MARKERS):
            self.assertLess(time.monotonic() - started, 90, "variant loop over its time bound")
            hidden = compress if phase == "login" else login
            first = position.replace("{m}", marker % len(hidden))
            client = RawClient(ports["imap"], timeout=5.0)
            try:
                self.greet(client)
                if phase != "plain":
                    self.assertRegex(client.command("t1", "STARTTLS")[-1], r"^t1 OK")
                    client.starttls()
                if phase == "login":
                    self.assertRegex(client.command("t2", f"LOGIN {USER} {PASSWORD}")[-1],
                                     r"^t2 OK")
                lines = self.send_hidden(client, first, hidden)
                # The session is still in step: the probe got its own reply.
                self.assertRegex(lines[-1], r"^z (OK|BAD|NO)", (first, lines))
                if phase == "login":
                    dovecot_answers += [(first, l) for l in lines if l.startswith("b ")
                                        and "through this proxy" not in l
                                        and "Refused by proxy" not in l]
            except ConnectionError:
                pass  # the proxy may end a session it cannot keep in step; nothing hidden passes
            except TimeoutError:
                stalled.append((phase, first))  # reported after the leaks, which say more
            finally:
                client.close()
            variants.append((phase, first, client.local))
        time.sleep(0.5)
        log = dovecot.log()
        logged_ports = set(re.findall(r"Login: user=<[^>]*>.*?rport=(\d+)", log))
        leaked, unaudited, seen_after = [], [], 0
        # The variants ran one after the other: the k-th use of a client address (ports may be
        # reused over a few hundred connections) is its k-th conn record.
        by_client = {}
        ours = {local for _, _, local in variants}
        for r in proxy.wait_for_conn_records(len(variants), listener="imap-in", after=mark,
                                             where=lambda r: r.get("client") in ours):
            by_client.setdefault(r.get("client"), []).append(r)
        for phase, first, local in variants:
            self.assertTrue(by_client.get(local), f"no conn record for {local}")
            record = by_client[local].pop(0)
            if phase == "login":
                continue  # logged in on purpose; judged by the replies above
            back_port = record["backend"]["local"].rsplit(":", 1)[1]
            if back_port not in logged_ports:
                continue
            seen_after += phase == "tls"
            if phase == "plain":
                leaked.append(first)
            elif not [r for r in proxy.records("imap.login", conn=record["conn"])
                      if r.get("user") == USER and r.get("result", "").startswith("OK")]:
                unaudited.append(first)
        self.assertEqual(leaked, [], "logins that reached Dovecot before TLS")
        self.assertEqual(dovecot_answers, [], "commands Dovecot read inside what the proxy "
                                              "relayed as literal data")
        self.assertEqual(unaudited, [], "logins Dovecot took without an imap.login record")
        self.assertEqual(len(variants), 3 * len(POSITIONS) * len(MARKERS))
        self.assertEqual(stalled, [], "sessions that stopped answering")
        # The oracle can see: after TLS some variants end with the hidden line read as the
        # command it is (by the proxy and by Dovecot alike), and that login is in Dovecot's log.
        self.assertGreater(seen_after, 0, "no login seen in Dovecot's log at all")

    # -- POP3 -----------------------------------------------------------------------------------

    def test_pop3_keyword_by_grammar_never_relayed(self):
        """Against the byte-logging backend: lines the proxy cannot read alike are answered -ERR
        by the proxy and never reach a backend; a proper command on the same connection does."""
        vectors = ["USER\t{u}", " USER {u}", "PASS\t{u}", "APOP\t{u} 0123", "AUTH\tPLAIN {u}",
                   "USER  {u}", "NOOP\x00{u}", "STAT\t{u}", "USER {u}\rPASS x", "9{u}"]
        marker = fresh_user()
        client = self.connect(ports["pop3-fake"])
        try:
            self.assertTrue(client.read_line().startswith("+OK"))
            for vector in vectors:
                client.send(vector.format(u=marker).encode("latin-1") + b"\r\n")
                reply = client.read_line()
                self.assertTrue(reply.startswith("-ERR"), (vector, reply))
            client.send(b"\r\n")  # an empty line
            self.assertTrue(client.read_line().startswith("-ERR"))
            client.send(f"NOOP\r\n".encode())
            self.assertEqual(client.read_line(), "+OK")
        finally:
            client.close()
        record = self.conn_record(client, "pop3-fake")
        refused = proxy.records("pop3.refused", conn=record["conn"])
        self.assertEqual(len(refused), len(vectors) + 1, refused)
        self.assertTrue(all(r["reason"].startswith("pop3.") for r in refused), refused)
        lines = fake_pop3.lines()
        self.assertIn(b"NOOP", lines)  # the backend log shows what arrived
        self.assertFalse([l for l in lines if marker.encode() in l], lines)
        self.assertNotIn(b"", lines[:-1], "an empty line reached the backend")

    def test_pop3_credentials_however_spelled_refused_before_tls(self):
        users = []
        client = self.connect(ports["pop3"])
        try:
            self.assertTrue(client.read_line().startswith("+OK"))
            for spelling in ["user {u}", "UsEr {u}", "USER\t{u}", " USER {u}", "apop {u} 0123",
                             "auth PLAIN {ir}"]:
                user = fresh_user()
                users.append(user)
                ir = base64.b64encode(b"\0" + user.encode() + b"\0secret").decode()
                client.send(spelling.format(u=user, ir=ir).encode() + b"\r\n")
                self.assertTrue(client.read_line().startswith("-ERR"), spelling)
            # The success path on the same listener: STLS, then a login Dovecot takes.
            client.send(b"STLS\r\n")
            self.assertTrue(client.read_line().startswith("+OK"))
            client.starttls()
            client.send(f"USER {USER}\r\n".encode())
            self.assertTrue(client.read_line().startswith("+OK"))
            client.send(f"PASS {PASSWORD}\r\n".encode())
            self.assertTrue(client.read_line().startswith("+OK"))
            client.send(b"QUIT\r\n")
            client.read_line()
        finally:
            client.close()
        record = self.conn_record(client, "pop3-in")
        logins = proxy.records("pop3.login", conn=record["conn"])
        self.assertEqual([r.get("user") for r in logins], [USER], proxy.describe())
        time.sleep(0.3)
        log = dovecot.log()
        for user in users:
            self.assertFalse(dovecot_saw(user, log), f"Dovecot saw {user}:\n{log[-3000:]}")


if __name__ == "__main__":
    unittest.main()
