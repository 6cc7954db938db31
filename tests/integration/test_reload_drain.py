"""Reload without drops and drain on SIGTERM (README, "Operate"; issue #7), against a real Postfix.

* SIGHUP ten times under a steady SMTP load, swapping the front certificate and adding/removing a
  listener: no session on the kept listener fails, new handshakes show the new certificate's
  fingerprint, the added listener opens, the removed one stops accepting, and a broken config on
  reload changes nothing.
* SIGTERM with sessions open: they finish within shutdown_grace, the exit status is 0, every audit
  line is whole JSON."""

import hashlib
import os
import signal
import smtplib
import socket
import ssl
import time
import unittest

import client_loops
import lab
import legacy_iis


def front_fingerprint(port, certs):
    """SHA-256 of the leaf the proxy presents after STARTTLS on 127.0.0.1:port."""
    context = ssl.create_default_context(cafile=f"{certs}/ca.crt")
    context.check_hostname = False
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        client.ehlo("reload.test")
        client.starttls(context=context)
        der = client.sock.getpeercert(binary_form=True)
        client.quit()
    return hashlib.sha256(der).hexdigest()


def pem_fingerprint(path):
    return hashlib.sha256(lab.cert_der(path)).hexdigest()


class ReloadTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.certs = lab.shared_certs()
        cls.backend = lab.start_for_class(cls, lab.PostfixBackend(cls.certs, tls="tls1.0-starttls"))
        cls.iis = legacy_iis.LegacyIis(cls.certs).start()
        cls.addClassCleanup(cls.iis.stop)

    def test_ten_reloads_under_load(self):
        kept_port, extra_port, web_port = lab.free_port(), lab.free_port(), lab.free_port()
        web = {"name": "web", "protocol": "https", "listen": f"127.0.0.1:{web_port}",
               "tls": "implicit",
               "backend": {"address": [f"127.0.0.1:{self.iis.port}"], "tls": "implicit",
                           "tls_profile": "legacy", "verify": "none"}}
        kept = lab.smtp_listener(kept_port, self.backend.port, name="kept")
        extra = lab.smtp_listener(extra_port, self.backend.port, name="extra")
        server_pair = lab.server_pair(self.certs)
        sni_pair = (f"{self.certs}/sni-a.chain.pem", f"{self.certs}/sni-a.key")
        proxy = lab.Tlsbridge([kept, web, extra], [server_pair])
        self.addCleanup(proxy.cleanup)
        proxy.start()

        load = client_loops.SmtpLoad("reload-smtp", kept_port)
        load.start()
        self.addCleanup(load.stopping.set)
        web_load = client_loops.HttpsLoad("reload-web", web_port)
        web_load.start()
        self.addCleanup(web_load.stopping.set)
        expected = {server_pair: pem_fingerprint(server_pair[0]),
                    sni_pair: pem_fingerprint(sni_pair[0])}
        for i in range(10):
            pair = sni_pair if i % 2 == 0 else server_pair
            listeners = [kept, web] if i % 2 == 0 else [kept, web, extra]
            proxy.listeners, proxy.certs = listeners, [pair]
            with open(proxy.config_path, "w") as f:
                f.write(proxy.config_text())
            os.kill(proxy.proc.pid, signal.SIGHUP)
            ok = lab.wait_until(lambda p=pair: front_fingerprint(kept_port, self.certs)
                                == expected[p], 10, interval=0.1)
            self.assertTrue(ok, f"reload {i}: new handshakes show the new certificate"
                            + proxy.describe())
            if extra not in listeners:
                self.assertTrue(lab.wait_until(lambda: not lab.port_accepts(extra_port), 5),
                                f"reload {i}: the removed listener stops accepting")
            else:
                self.assertTrue(lab.wait_until(lambda: lab.port_accepts(extra_port), 5),
                                f"reload {i}: the added listener opens")
        # A broken config is rejected and the running one stays.
        with open(proxy.config_path, "w") as f:
            f.write(proxy.config_text().replace('protocol = "smtp"', 'protocol = "smtq"', 1))
        os.kill(proxy.proc.pid, signal.SIGHUP)
        self.assertTrue(lab.wait_until(lambda: "reload rejected" in proxy.stderr(), 10),
                        proxy.stderr())
        self.assertEqual(front_fingerprint(kept_port, self.certs), expected[server_pair])
        self.assertTrue(lab.port_accepts(extra_port))

        load.stopping.set()
        web_load.stopping.set()
        load.join(30)
        web_load.join(30)
        self.assertEqual(load.failures, [], "no SMTP session on the kept listener may fail")
        self.assertGreater(len(load.done), 5, "the SMTP load loop really ran during the reloads")
        self.assertEqual(web_load.failures, [], "no HTTPS request may fail")
        self.assertGreater(len(web_load.done), 5, "the HTTPS load loop really ran during the reloads")
        self.assertIsNone(proxy.proc.poll(), "the proxy is still running")


class DrainTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.certs = lab.shared_certs()
        cls.backend = lab.start_for_class(cls, lab.PostfixBackend(cls.certs, tls="none"))

    def test_sigterm_lets_open_sessions_finish_then_exits_zero(self):
        port = lab.free_port()
        proxy = lab.Tlsbridge(
            [lab.smtp_listener(port, self.backend.port, tls="none", backend_tls="none",
                               require_tls=False)],
            [lab.server_pair(self.certs)],
            shutdown_grace="10s")
        self.addCleanup(proxy.cleanup)
        proxy.start()
        # A session in the middle of a transaction when SIGTERM arrives.
        client = smtplib.SMTP("127.0.0.1", port, timeout=15)
        client.ehlo("drain.test")
        client.mail("drain@example.test")
        client.rcpt("x@example.test")
        # An idle session at a command boundary: it gets 421 4.3.2 right away.
        idle = lab.SmtpClient(port)
        self.addCleanup(idle.close)
        idle.read_reply()
        started = time.monotonic()
        proxy.proc.send_signal(signal.SIGTERM)
        self.assertRegex(" ".join(idle.read_reply()[1]), r"4\.3\.2 .*shutting down")
        # New connections are refused while draining...
        self.assertTrue(lab.wait_until(lambda: not lab.port_accepts(port), 5))
        # ...but the session in a transaction may finish it: the message is accepted.
        code, _ = client.data(b"Subject: drain\r\n\r\nfinished during the drain\r\n")
        self.assertEqual(code, 250, "the open transaction completes during the grace period")
        try:
            client.quit()
        except smtplib.SMTPServerDisconnected:
            pass
        status = proxy.proc.wait(15)
        self.assertEqual(status, 0, proxy.stderr())
        self.assertLess(time.monotonic() - started, 10, "done well within shutdown_grace")
        self.assertTrue(self.backend.wait_for_message_containing(b"finished during the drain"))
        with open(proxy.audit_path) as f:
            text = f.read()
        self.assertTrue(text.endswith("\n"), "no half-written audit line")
        proxy.audit_records()  # raises if any line is not JSON


if __name__ == "__main__":
    unittest.main()
