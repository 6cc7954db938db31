"""conf/exchange2010-front.toml, the annotated config for a real Exchange 2010 front (README,
"Deploy in front of Exchange 2010"): `tlsbridge check-config` accepts it once its certificate and
audit paths point at files that exist here, its listeners are the ports an Exchange front needs
with the choices its comments defend, and run against real peers standing in for Exchange
(Postfix on 25/587, Dovecot on 143/110, the IIS stand-in on 443) those choices hold: mail from a
sender without STARTTLS is accepted on 25, submission refuses MAIL before STARTTLS, 465 is
implicit TLS, IMAP and POP3 log in over TLS only, and /ecp gets 404 where /EWS reaches IIS."""

import http.client
import imaplib
import os
import poplib
import re
import shutil
import smtplib
import ssl
import tomllib
import unittest

import lab
import legacy_iis

CONFIG = os.path.join(lab.SOURCE_DIR, "conf", "exchange2010-front.toml")
CERT = "/etc/ssl/certs/mail.example.com.fullchain.pem"
KEY = "/etc/ssl/private/mail.example.com.key"
AUDIT = "/var/log/tlsbridge/audit.jsonl"
EXCHANGE = "10.0.0.5"
USER, PASSWORD = "alice", "wonderland"

# name: (protocol, listen, front tls, require_tls, backend port)
EXPECTED = {
    "smtp-mx": ("smtp", "0.0.0.0:25", "starttls", False, 25),
    "smtp-submission": ("smtp", "0.0.0.0:587", "starttls", True, 587),
    "smtps": ("smtp", "0.0.0.0:465", "implicit", True, 587),
    "imap": ("imap", "0.0.0.0:143", "starttls", True, 143),
    "imaps": ("imap", "0.0.0.0:993", "implicit", True, 143),
    "pop3": ("pop3", "0.0.0.0:110", "starttls", True, 110),
    "pop3s": ("pop3", "0.0.0.0:995", "implicit", True, 110),
    "https": ("https", "0.0.0.0:443", "implicit", True, 443),
}


def replace_once(text, old, new):
    if text.count(old) != 1:
        raise AssertionError(f"{old!r} is in {CONFIG} {text.count(old)} times, expected once")
    return text.replace(old, new)


def local_text(directory, certs, ports=None, backends=None):
    """The config with its certificate and audit paths (and, for running it, user, admin, listen
    ports and backend addresses) pointed at this machine's lab."""
    with open(CONFIG) as f:
        text = f.read()
    text = replace_once(text, CERT, f"{certs}/server.chain.pem")
    text = replace_once(text, KEY, f"{certs}/server.key")
    text = replace_once(text, AUDIT, f"{directory}/audit.jsonl")
    text = replace_once(text, 'pid_file = "/run/tlsbridge/tlsbridge.pid"',
                        f'pid_file = "{directory}/tlsbridge.pid"')
    if ports:
        text = replace_once(text, 'user = "tlsbridge"', 'user = ""')
        text = replace_once(text, 'listen = "127.0.0.1:9900"', 'listen = ""')
        for public, port in ports.items():
            text = replace_once(text, f'listen = "0.0.0.0:{public}"', f'listen = "127.0.0.1:{port}"')
        for inside, port in backends.items():
            text = text.replace(f'"{EXCHANGE}:{inside}"', f'"127.0.0.1:{port}"')
        if EXCHANGE in re.sub(r"#.*", "", text):
            raise AssertionError("a backend address was left unmapped")
    return text


def local_copy(directory, certs):
    path = os.path.join(directory, "tlsbridge.toml")
    with open(path, "w") as f:
        f.write(local_text(directory, certs))
    return path


def modern_context():
    ctx = lab.client_context()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


class ExchangeFrontConfigTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.certs = lab.shared_certs()
        with open(CONFIG, "rb") as f:
            cls.config = tomllib.load(f)
        cls.listeners = {l["name"]: l for l in cls.config["listener"]}

    def check_config(self, path):
        binary = os.environ.get("TLSBRIDGE_BINARY") or lab.DEFAULT_BINARY
        return lab.run([binary, "check-config", "--config", path])

    def test_check_config_accepts_it(self):
        directory = lab.make_lab_dir("tlsbridge-exchange-front.")
        self.addCleanup(shutil.rmtree, directory, True)
        result = self.check_config(local_copy(directory, self.certs))
        self.assertEqual((result.returncode, result.stdout.strip()), (0, "ok"), result.stderr)

    def test_check_config_really_reads_it(self):
        # The same file with the real certificate paths left in: check-config names them.
        directory = lab.make_lab_dir("tlsbridge-exchange-front.")
        self.addCleanup(shutil.rmtree, directory, True)
        path = os.path.join(directory, "tlsbridge.toml")
        shutil.copy(CONFIG, path)
        result = self.check_config(path)
        self.assertEqual(result.returncode, 1)
        self.assertIn(f"certs[0].cert: file not found: {CERT}", result.stderr)

    def test_listeners_are_the_exchange_ports(self):
        seen = {}
        for name, l in self.listeners.items():
            backend = l["backend"]
            (address,) = backend["address"]
            host, port = address.rsplit(":", 1)
            self.assertEqual(host, EXCHANGE, name)
            default_tls = "implicit" if l["protocol"] == "https" else "starttls"
            seen[name] = (l["protocol"], l["listen"], l.get("tls", default_tls),
                          l.get("require_tls", True), int(port))
            # Every front is TLS 1.2+; every back leg is the legacy host's TLS, never plaintext.
            self.assertEqual(l.get("tls_profile", "modern"), "modern", name)
            self.assertEqual(backend["tls_profile"], "legacy", name)
            self.assertIn(backend["tls"], ("starttls", "implicit"), name)
            self.assertEqual(backend.get("verify", "none"), "none", name)
        self.assertEqual(seen, EXPECTED)

    def test_http_paths_are_the_ones_the_comments_defend(self):
        paths = {p.lower() for p in self.listeners["https"]["http"]["allow_paths"]}
        self.assertEqual(paths, {"/microsoft-server-activesync", "/autodiscover", "/ews", "/rpc",
                                 "/oab", "/owa"})
        self.assertEqual(self.config["listener"][0]["smtp_bare_lf"], "reject")

    def test_it_serves_every_port_against_stand_ins(self):
        postfix = lab.PostfixBackend(self.certs)
        self.addCleanup(postfix.cleanup)
        postfix.start()
        dovecot = lab.DovecotBackend(self.certs, user=USER, password=PASSWORD)
        self.addCleanup(dovecot.cleanup)
        dovecot.start()
        iis = legacy_iis.LegacyIis(self.certs).start()
        self.addCleanup(iis.stop)
        ports = {public: lab.free_port() for public in (25, 587, 465, 143, 993, 110, 995, 443)}
        backends = {25: postfix.port, 587: postfix.port, 143: dovecot.imap_port,
                    110: dovecot.pop3_port, 443: iis.port}
        # The lab's runner, with this file instead of a generated one.
        proxy = lab.Tlsbridge([], [])
        self.addCleanup(proxy.cleanup)
        text = local_text(proxy.dir, self.certs, ports, backends)
        proxy.config_text = lambda: text
        proxy.listen_ports = lambda: list(ports.values())
        proxy.start()

        # 25: a sender without STARTTLS still delivers (RFC 3207 §4), STARTTLS is offered.
        with smtplib.SMTP("127.0.0.1", ports[25], timeout=20) as s:
            s.ehlo("sender.example.org")
            self.assertTrue(s.has_extn("starttls"))
            self.assertFalse(s.has_extn("auth"), "AUTH offered before TLS on the MX")
            s.sendmail("a@example.org", ["user@example.com"], b"Subject: mx\r\n\r\nplain mx\r\n")
        # 587: MAIL before STARTTLS is refused; after it, mail goes through.
        with smtplib.SMTP("127.0.0.1", ports[587], timeout=20) as s:
            s.ehlo("client.example.org")
            code, _ = s.mail("a@example.org")
            self.assertEqual(code, 530)
            s.rset()
            s.starttls(context=modern_context())
            s.sendmail("a@example.org", ["user@example.com"], b"Subject: 587\r\n\r\nsub\r\n")
        # 465: implicit TLS 1.2+.
        with smtplib.SMTP_SSL("127.0.0.1", ports[465], timeout=20,
                              context=modern_context()) as s:
            self.assertIn(s.sock.version(), ("TLSv1.2", "TLSv1.3"))
            s.sendmail("a@example.org", ["user@example.com"], b"Subject: 465\r\n\r\nsmtps\r\n")
        postfix.wait_for_messages(3, timeout=30)
        self.assertEqual(len(postfix.messages()), 3)

        # IMAP: LOGIN refused before STARTTLS, fine on 993; POP3 on 995.
        imap = imaplib.IMAP4("127.0.0.1", ports[143], timeout=15)
        self.assertIn("LOGINDISABLED", imap.capabilities)
        imap.logout()
        imap = imaplib.IMAP4_SSL("127.0.0.1", ports[993], ssl_context=modern_context(),
                                 timeout=15)
        self.assertEqual(imap.login(USER, PASSWORD)[0], "OK")
        imap.logout()
        for stls, port in ((True, ports[110]), (False, ports[995])):
            if stls:
                pop = poplib.POP3("127.0.0.1", port, timeout=15)
                pop.stls(context=modern_context())
            else:
                pop = poplib.POP3_SSL("127.0.0.1", port, context=modern_context(), timeout=15)
            pop.user(USER)
            self.assertTrue(pop.pass_(PASSWORD).startswith(b"+OK"))
            pop.quit()

        # 443: /EWS reaches IIS, /ecp never does.
        conn = http.client.HTTPSConnection("127.0.0.1", ports[443], timeout=20,
                                           context=modern_context())
        self.addCleanup(conn.close)
        for path, status in (("/EWS/headers", 200), ("/ecp/", 404), ("/mapi/emsmdb", 404)):
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            self.assertEqual(response.status, status, path)
        self.assertEqual(iis.requests_for("/ecp"), [])

        conn.close()
        # imaplib's logout() stops reading at Dovecot's "* BYE" and closes before the tagged OK
        # arrives, so a clean IMAP session may end as client_closed.
        def listeners_seen():
            return {r["listener"] for r in proxy.conn_records()
                    if r["outcome"] in ("ok", "client_closed")}
        lab.wait_until(lambda: listeners_seen() == set(EXPECTED), 10)
        self.assertEqual(listeners_seen(), set(EXPECTED), proxy.describe())


if __name__ == "__main__":
    unittest.main()
