"""[listener.auth_guard] (README, "Deploy"; docs/configuration.md): the proxy counts the
backend's own authentication verdicts per client address and per user name and, past a
threshold, answers the attempt itself so the backend (and Active Directory behind it) never
sees the credentials.

Peers: the lab's real Dovecot (IMAP and POP3; its log names the user of every auth request, so
the test counts what the backend was spared; its own growing delay for failures from one
address is turned off, since behind the proxy every login comes from one address) and the legacy
IIS stand-in (legacy_iis.py) answering 401 to wrong Basic credentials on /EWS/basic. Clients
connect from distinct 127.0.0.x addresses (all of 127.0.0.0/8 is loopback on Linux). One worker
thread, so the tarpit test shows the delay does not hold the thread."""

import base64
import http.client
import re
import select
import socket
import ssl
import time
import unittest
import urllib.request

import lab
import legacy_iis
from test_scale_out_limits import connect_from

PASSWORDS = {"alice": "wonderland", "bob": "builder"}


def modern_context():
    ctx = lab.client_context()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


class LineSession:
    """A TLS line client from a chosen source address (implicit TLS listeners)."""

    def __init__(self, port, source):
        raw = connect_from(source, port, timeout=15)
        self.sock = modern_context().wrap_socket(raw, server_hostname="localhost")
        self.buf = b""

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError(f"closed; had {self.buf!r}")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line.decode("utf-8", "replace")

    def send(self, text):
        self.sock.sendall(text.encode() + b"\r\n")

    def until_tagged(self, tag):
        while True:
            line = self.line()
            if line.startswith(tag + " "):
                return line[len(tag) + 1:]

    def pending(self):
        return bool(self.buf) or self.sock.pending() > 0

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def imap_login(port, source, user, password):
    """LOGIN on a new connection; the tagged reply after the tag ("OK ...", "NO ...")."""
    s = LineSession(port, source)
    try:
        s.line()  # greeting
        s.send(f'a1 LOGIN {user} "{password}"')
        reply = s.until_tagged("a1")
        s.send("a2 LOGOUT")
        return reply
    finally:
        s.close()


def pop3_login(port, source, user, password):
    """USER and PASS on a new connection; the PASS reply."""
    s = LineSession(port, source)
    try:
        s.line()
        s.send(f"USER {user}")
        s.line()
        s.send(f"PASS {password}")
        reply = s.line()
        s.send("QUIT")
        return reply
    finally:
        s.close()


def guard(**keys):
    return {"failures_per_ip": 50, "failures_per_user": 50, "window": "10m", "block": "15m",
            "tarpit": "0s", **keys}


class AuthGuardTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.certs = lab.shared_certs()
        cls.dovecot = lab.DovecotBackend(cls.certs, more_users={"bob": "builder"},
                                         auth_penalty=False)
        cls.addClassCleanup(cls.dovecot.cleanup)
        cls.dovecot.start()
        cls.iis = legacy_iis.LegacyIis(cls.certs)
        cls.addClassCleanup(cls.iis.stop)
        cls.iis.start()
        cls.ports = {n: lab.free_port() for n in ("imap", "pop3", "tarpit", "https")}
        cls.admin = lab.free_port()

        def mail(name, protocol, backend_port, auth_guard):
            return lab.smtp_listener(cls.ports[name], backend_port, name=name + "-guard",
                                     tls="implicit", backend_tls="starttls",
                                     protocol=protocol, auth_guard=auth_guard)

        https = {"name": "https-guard", "protocol": "https",
                 "listen": f"127.0.0.1:{cls.ports['https']}", "tls": "implicit",
                 "backend": {"address": [f"127.0.0.1:{cls.iis.port}"], "tls": "implicit",
                             "tls_profile": "legacy", "verify": "none"},
                 "auth_guard": guard(failures_per_user=3)}
        cls.proxy = lab.Tlsbridge(
            [mail("imap", "imap", cls.dovecot.imap_port, guard(failures_per_user=3)),
             mail("pop3", "pop3", cls.dovecot.pop3_port, guard(failures_per_ip=4)),
             mail("tarpit", "imap", cls.dovecot.imap_port, guard(tarpit="1s")),
             https],
            [lab.server_pair(cls.certs)],
            admin=f"127.0.0.1:{cls.admin}", server={"threads": 1})
        cls.addClassCleanup(cls.proxy.cleanup)
        cls.proxy.start()

    def backend_failures(self, user):
        """Failed auth requests Dovecot handled for `user` (its log, one line per request)."""
        spelled = re.compile(r"passwd-file\(" + re.escape(user) + r"(@[^,]*)?,", re.IGNORECASE)
        return sum(1 for line in self.dovecot.log().splitlines()
                   if spelled.search(line)
                   and ("Password mismatch" in line or "unknown user" in line))

    def metrics(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin}/metrics", timeout=10) as r:
            return r.read().decode()

    def test_imap_spray_reaches_dovecot_threshold_times_and_spares_a_known_address(self):
        port = self.ports["imap"]
        # The success path, and the address alice is known from.
        self.assertTrue(imap_login(port, "127.0.0.5", "alice", "wonderland").startswith("OK"))
        users = ("alice", "bob", "nosuchuser")
        replies = {u: [] for u in users}
        for _ in range(4):
            for source in ("127.0.0.10", "127.0.0.11", "127.0.0.12"):
                for user in users:
                    # Spelled as a client may: the guard counts the account, not the spelling.
                    spelled = {"127.0.0.10": user, "127.0.0.11": user.upper(),
                               "127.0.0.12": user + "@contoso.test"}[source]
                    replies[user].append(imap_login(port, source, spelled, "guess"))
        for user in users:
            refused = [r for r in replies[user] if r.startswith("NO [AUTHENTICATIONFAILED]")]
            blocked = [r for r in replies[user] if r.startswith("NO [UNAVAILABLE]")]
            self.assertEqual((len(refused), len(blocked)), (3, 9), replies[user])
        lab.wait_until(lambda: self.backend_failures("bob") >= 3, 5)
        self.assertEqual(self.backend_failures("alice"), 3)
        self.assertEqual(self.backend_failures("bob"), 3)
        self.assertEqual(self.backend_failures("nosuchuser"), 3)

        # alice is blocked, yet logs in from the address she succeeded from before ...
        self.assertTrue(imap_login(port, "127.0.0.5", "alice", "wonderland").startswith("OK"))
        # ... but not from elsewhere, right password or not; bob has no such address.
        self.assertTrue(imap_login(port, "127.0.0.20", "alice", "wonderland")
                        .startswith("NO [UNAVAILABLE]"))
        self.assertTrue(imap_login(port, "127.0.0.5", "bob", "builder")
                        .startswith("NO [UNAVAILABLE]"))

        failures = [r for r in self.proxy.records("auth.failure")
                    if r["listener"] == "imap-guard"]
        blocked = [r for r in self.proxy.records("auth.blocked")
                   if r["listener"] == "imap-guard"]
        self.assertEqual(len(failures), 9)
        self.assertEqual({r["user"] for r in failures}, set(users))
        self.assertEqual(len(blocked), 29)
        self.assertEqual({r["scope"] for r in blocked}, {"user"})
        text = self.metrics()
        self.assertIn('tlsbridge_auth_failures_total{listener="imap-guard"} 9', text)
        self.assertIn('tlsbridge_auth_blocked_total{listener="imap-guard",scope="user"} 29', text)

    def test_pop3_address_over_failures_per_ip_is_answered_by_the_proxy(self):
        port = self.ports["pop3"]
        replies = [pop3_login(port, "127.0.0.30", f"pspray{n}", "guess") for n in range(8)]
        self.assertEqual([r.startswith("-ERR [AUTH]") for r in replies], [True] * 4 + [False] * 4)
        self.assertTrue(all(r.startswith("-ERR [SYS/TEMP]") for r in replies[4:]), replies)
        lab.wait_until(lambda: self.backend_failures("pspray3") >= 1, 5)
        self.assertEqual(sum(self.backend_failures(f"pspray{n}") for n in range(8)), 4)
        # The same port, another address: the right password works.
        self.assertTrue(pop3_login(port, "127.0.0.31", "alice", "wonderland").startswith("+OK"))
        blocked = [r for r in self.proxy.records("auth.blocked")
                   if r["listener"] == "pop3-guard"]
        self.assertEqual([r["scope"] for r in blocked], ["ip"] * 4)
        self.assertEqual({r["client_ip"] for r in blocked}, {"127.0.0.30"})

    def test_tarpit_delays_the_failed_reply_not_other_sessions(self):
        port = self.ports["tarpit"]
        other = LineSession(port, "127.0.0.41")
        failing = LineSession(port, "127.0.0.40")
        try:
            other.line()
            failing.line()
            failing.send('t1 LOGIN bob "guess"')
            started = time.monotonic()
            round_trips = []
            reply = None
            for i in range(200):  # bounded: the reply comes within ~1 s
                readable, _, _ = select.select([failing.sock], [], [], 0)
                if readable or failing.pending():
                    reply = failing.until_tagged("t1")
                    break
                t = time.monotonic()
                other.send(f"n{i} NOOP")
                other.until_tagged(f"n{i}")
                round_trips.append(time.monotonic() - t)
                time.sleep(0.02)
            elapsed = time.monotonic() - started
            self.assertIsNotNone(reply, "no reply to the failed LOGIN")
            self.assertTrue(reply.startswith("NO [AUTHENTICATIONFAILED]"), reply)
            self.assertGreaterEqual(elapsed, 1.0)
            self.assertGreaterEqual(len(round_trips), 5)
            self.assertLess(max(round_trips), 0.5, round_trips)
            # A right password is answered at once.
            t = time.monotonic()
            failing.send('t2 LOGIN alice "wonderland"')
            self.assertTrue(failing.until_tagged("t2").startswith("OK"))
            self.assertLess(time.monotonic() - t, 0.9)
        finally:
            other.close()
            failing.close()

    def test_https_basic_401s_then_429_and_iis_is_spared(self):
        def get(user, password):
            conn = http.client.HTTPSConnection("127.0.0.1", self.ports["https"],
                                               context=modern_context(), timeout=15)
            try:
                token = base64.b64encode(f"{user}:{password}".encode()).decode()
                conn.request("GET", "/EWS/basic", headers={"Authorization": "Basic " + token})
                response = conn.getresponse()
                response.read()
                return response.status
            finally:
                conn.close()

        before = len(self.iis.requests_for("/EWS/basic"))
        statuses = [get("CONTOSO\\eve", "guess") for _ in range(5)]
        self.assertEqual(statuses, [401, 401, 401, 429, 429])
        self.assertEqual(get("eve@contoso.com", "wonderland"), 429)  # the same account
        self.assertEqual(len(self.iis.requests_for("/EWS/basic")) - before, 3)
        self.assertEqual(get("CONTOSO\\frank", "wonderland"), 200)  # success path, same port


class SmtpAuthGuardTest(unittest.TestCase):
    """SMTP AUTH: the lab's Postfix authenticating against the test's Dovecot (smtpd_sasl_type =
    dovecot over a unix socket of that Dovecot), so Dovecot's log shows every attempt Postfix
    passed on."""

    @classmethod
    def setUpClass(cls):
        cls.certs = lab.shared_certs()
        cls.dovecot = lab.DovecotBackend(
            cls.certs, more_users={"carol": "carolpw"}, auth_penalty=False,
            extra_conf="service auth {\n  unix_listener auth-postfix {\n    mode = 0666\n"
                       "  }\n}\n")
        cls.addClassCleanup(cls.dovecot.cleanup)
        cls.dovecot.start()
        cls.postfix = lab.PostfixBackend(cls.certs, extra_main_cf=(
            "smtpd_sasl_auth_enable = yes\n"
            "smtpd_sasl_type = dovecot\n"
            f"smtpd_sasl_path = {cls.dovecot.run_dir}/auth-postfix\n"))
        cls.addClassCleanup(cls.postfix.cleanup)
        cls.postfix.start()
        cls.port = lab.free_port()
        cls.proxy = lab.Tlsbridge(
            [lab.smtp_listener(cls.port, cls.postfix.port, name="smtp-guard", tls="implicit",
                               auth_guard=guard(failures_per_user=3))],
            [lab.server_pair(cls.certs)])
        cls.addClassCleanup(cls.proxy.cleanup)
        cls.proxy.start()

    def auth(self, source, user, password):
        s = LineSession(self.port, source)
        try:
            s.line()  # 220
            s.send("EHLO client.test")
            while not s.line().startswith("250 "):
                pass
            token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
            s.send("AUTH PLAIN " + token)
            reply = s.line()
            s.send("QUIT")
            return reply
        finally:
            s.close()

    def test_535_counted_then_454_and_dovecot_spared(self):
        replies = [self.auth(f"127.0.0.{50 + i}", "carol", "guess") for i in range(5)]
        self.assertEqual([r[:3] for r in replies], ["535", "535", "535", "454", "454"], replies)
        self.assertTrue(replies[3].startswith("454 4.7.0"), replies[3])
        failures = sum(1 for line in self.dovecot.log().splitlines()
                       if "passwd-file(carol," in line and "Password mismatch" in line)
        self.assertEqual(failures, 3)
        # The same port: another user with the right password.
        self.assertTrue(self.auth("127.0.0.60", "alice", "wonderland").startswith("235"))
        self.assertEqual(len(self.proxy.records("auth.failure")), 3)


if __name__ == "__main__":
    unittest.main()
