"""The 3-minute soak (tests/integration/soak.py, also bench/soak --duration 3m): SMTP STARTTLS
transactions, IMAP IDLE sessions, ActiveSync Pings and 1 MiB uploads through one proxy, with a
SIGHUP every 20 s and a restart of Postfix, Dovecot and the IIS stand-in in turn. Each check is
one assertion, so a failure names what was lost, duplicated or leaked:

* every message a client saw accepted is delivered exactly once (Postfix's maildir);
* the proxy's RSS and descriptors grow at most 5 % from the end of warm-up to the end (RSS not
  bounded under ASan, whose quarantine grows it by design);
* one schema-valid `conn` record per client connection, no outcome the restarts do not explain;
* no client error except around a restart of its own backend;
* every SIGHUP reloaded.
Rates are a third lower under TLSBRIDGE_SANITIZED (Settings.for_duration)."""

import unittest

import lab
import soak

DURATION = 180.0


class SoakTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        settings = soak.Settings.for_duration(DURATION, lab.SANITIZED)
        cls.report = soak.Soak(settings).run()
        print("\n" + cls.report.markdown())

    def assert_check(self, name):
        results = [(ok, detail) for n, ok, detail in self.report.checks if n == name]
        self.assertEqual(len(results), 1, f"check {name} did not run")
        ok, detail = results[0]
        self.assertTrue(ok, f"{name}: {detail}")

    def test_every_accepted_message_delivered_once(self):
        self.assert_check("delivery")
        self.assertGreater(self.report.figures["delivery"]["accepted"], 100)

    def test_rss_and_descriptors_flat_after_warmup(self):
        self.assert_check("flat")

    def test_one_valid_conn_record_per_connection(self):
        self.assert_check("audit")

    def test_no_error_but_around_a_restart(self):
        self.assert_check("errors")

    def test_every_sighup_reloaded(self):
        self.assert_check("reloads")

    def test_the_load_ran(self):
        counts = self.report.soak.counts
        restarted = {backend for backend, _, _ in self.report.soak.restarts}
        self.assertEqual(restarted, {"postfix", "dovecot", "iis"})
        for kind in ("smtp", "upload", "ping", "idle"):
            self.assertGreater(counts[kind], 0, f"no {kind} completed: {dict(counts)}")


if __name__ == "__main__":
    unittest.main()
