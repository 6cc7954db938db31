"""Several instances share [listener.auth_guard]'s counters through Redis ([server] shared_state;
README, "Deploy: several instances"; proxy/shared_auth_counters.hpp).

Peers: Debian's HAProxy (round robin, send-proxy-v2, so each instance sees the real client) in
front of two tlsbridge instances, the lab's real Dovecot behind them (its log names the user of
every auth request; its own auth penalty is off, as in test_auth_guard.py), and one redis-server
this test starts on a free port. A spray of wrong passwords for one user alternates between the
instances: with shared_state Dovecot sees exactly failures_per_user (3) of them and both instances
answer `NO [UNAVAILABLE]` afterwards; without it each instance lets its own 3 through (6). The
right password from an address that succeeded before (on whichever instance) still logs in.
Redis lost: each instance counts alone, and nobody else is refused."""

import unittest

import lab
import redis_peer
from test_auth_guard import imap_login
from test_shared_state import start_instances, start_redis, wait_for_gauge

PER_USER = 3
USERS = {"alice": "wonderland", "bob": "builder", "carol": "christmas", "dave": "diver"}


class SharedAuthGuardTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        redis_peer.skip_unless_redis_runs()
        cls.certs = lab.shared_certs()
        more = {u: p for u, p in USERS.items() if u != "alice"}
        cls.dovecot = lab.DovecotBackend(cls.certs, more_users=more, auth_penalty=False)
        cls.addClassCleanup(cls.dovecot.cleanup)
        cls.dovecot.start()

    def start_instances(self, shared_state):
        """Two instances with one guarded IMAP listener each behind one HAProxy."""
        def listener_for(port):
            return lab.smtp_listener(
                port, self.dovecot.imap_port, name="imap-guard", protocol="imap",
                tls="implicit", backend_tls="starttls", proxy_protocol=True,
                trusted_proxies=["127.0.0.1/32"],
                auth_guard={"failures_per_ip": 50, "failures_per_user": PER_USER,
                            "window": "10m", "block": "15m", "tarpit": "0s"})
        return start_instances(self, self.certs, shared_state, listener_for)

    def backend_failures(self, user):
        return sum(1 for line in self.dovecot.log().splitlines()
                   if f"passwd-file({user}," in line and "Password mismatch" in line)

    def spray(self, front, user, n, source="127.0.0.10"):
        """n wrong passwords for `user` through HAProxy, one connection each (round robin spreads
        them over the instances); the tagged replies."""
        return [imap_login(front, source, user, "guess") for _ in range(n)]

    def per_instance(self, instances, event, user):
        """How many `event` records for `user` each instance wrote."""
        return [len([r for r in proxy.records(event) if r.get("user") == user])
                for proxy, _ in instances]

    def assert_on_both(self, instances, event, user):
        lab.wait_until(lambda: all(self.per_instance(instances, event, user)), 5)
        self.assertTrue(all(self.per_instance(instances, event, user)),
                        f"{event} for {user} on both instances: "
                        f"{self.per_instance(instances, event, user)}")

    def assert_each_instance_counts_alone(self, instances, front, user, source):
        """A spray of 4 * PER_USER reaches Dovecot PER_USER times per instance."""
        replies = self.spray(front, user, 4 * PER_USER, source=source)
        verdicts = [r.split("]")[0] + "]" for r in replies]
        self.assertEqual(verdicts.count("NO [AUTHENTICATIONFAILED]"), 2 * PER_USER, replies)
        self.assertEqual(verdicts.count("NO [UNAVAILABLE]"), 2 * PER_USER, replies)
        self.assertEqual(self.backend_failures(user), 2 * PER_USER)
        self.assert_on_both(instances, "auth.blocked", user)

    def test_a_spray_split_across_instances_meets_one_threshold(self):
        redis = start_redis(self)
        instances, front = self.start_instances(redis.url)
        self.assertTrue(wait_for_gauge(instances, 1, 10), "both instances reach Redis")
        # The success path, and the address alice is known from (on one instance only).
        self.assertTrue(imap_login(front, "127.0.0.5", "alice", "wonderland").startswith("OK"))
        replies = self.spray(front, "alice", 3 * PER_USER)
        self.assertEqual([r.split("]")[0] + "]" for r in replies],
                         ["NO [AUTHENTICATIONFAILED]"] * PER_USER
                         + ["NO [UNAVAILABLE]"] * (2 * PER_USER), replies)
        self.assertEqual(self.backend_failures("alice"), PER_USER, "3 in all, not 3 per instance")
        # The 3 failures were split between the instances, and both refuse afterwards.
        self.assert_on_both(instances, "auth.failure", "alice")
        self.assert_on_both(instances, "auth.blocked", "alice")
        self.assertTrue(redis.exists("tlsbridge:authblock:imap-guard:user:alice"))
        # The address alice succeeded from still logs in, on either instance ...
        for _ in range(4):
            self.assertTrue(imap_login(front, "127.0.0.5", "alice", "wonderland")
                            .startswith("OK"), self.describe(instances))
        def logged_in():  # per instance: the first login, then the 4 during the block
            return [len([r for r in proxy.records("imap.login")
                         if r.get("user") == "alice" and r["result"].startswith("OK")])
                    for proxy, _ in instances]
        lab.wait_until(lambda: sum(logged_in()) == 5, 5)
        self.assertGreaterEqual(min(logged_in()), 2, f"both exempt the known address: "
                                f"{logged_in()}")
        # ... but not from another one, right password or not; another user is not touched.
        for _ in range(2):
            self.assertTrue(imap_login(front, "127.0.0.20", "alice", "wonderland")
                            .startswith("NO [UNAVAILABLE]"))
        self.assertTrue(imap_login(front, "127.0.0.10", "bob", "builder").startswith("OK"))

    def test_without_shared_state_each_instance_lets_its_own_three_through(self):
        instances, front = self.start_instances("")
        self.assert_each_instance_counts_alone(instances, front, "carol", "127.0.0.10")

    def test_redis_lost_means_counting_alone_never_refusing_everyone(self):
        redis = start_redis(self)
        instances, front = self.start_instances(redis.url)
        self.assertTrue(wait_for_gauge(instances, 1, 10), "both instances reach Redis")
        redis.kill()
        self.assertTrue(wait_for_gauge(instances, 0, 10), "both instances see Redis gone")
        for _ in range(2):  # round robin: one login on each instance
            self.assertTrue(imap_login(front, "127.0.0.30", "bob", "builder").startswith("OK"))
        self.assert_each_instance_counts_alone(instances, front, "dave", "127.0.0.31")

    def describe(self, instances):
        return "".join(p.describe() for p, _ in instances)


if __name__ == "__main__":
    unittest.main()
