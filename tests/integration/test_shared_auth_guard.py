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
from cert_renewal import metric
from test_auth_guard import imap_login
from test_scale_out_limits import start_haproxy

PER_USER = 3
USERS = {"alice": "wonderland", "bob": "builder", "carol": "christmas", "dave": "diver"}


class SharedAuthGuardTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        why = redis_peer.why_redis_cannot_run()
        if why:
            raise unittest.SkipTest(why)
        cls.certs = lab.shared_certs()
        more = {u: p for u, p in USERS.items() if u != "alice"}
        cls.dovecot = lab.DovecotBackend(cls.certs, more_users=more, auth_penalty=False)
        cls.addClassCleanup(cls.dovecot.cleanup)
        cls.dovecot.start()

    def start_redis(self):
        redis = redis_peer.RedisServer()
        self.addCleanup(redis.cleanup)
        return redis.start()

    def start_instances(self, shared_state):
        """Two instances with one guarded IMAP listener each behind one HAProxy; answers the
        instances as (proxy, admin) and HAProxy's port."""
        instances = []
        for _ in range(2):
            port, admin = lab.free_port(), f"127.0.0.1:{lab.free_port()}"
            listener = lab.smtp_listener(
                port, self.dovecot.imap_port, name="imap-guard", protocol="imap",
                tls="implicit", backend_tls="starttls", proxy_protocol=True,
                trusted_proxies=["127.0.0.1/32"],
                auth_guard={"failures_per_ip": 50, "failures_per_user": PER_USER,
                            "window": "10m", "block": "15m", "tarpit": "0s"})
            proxy = lab.Tlsbridge([listener],
                                  [(f"{self.certs}/server.chain.pem", f"{self.certs}/server.key")],
                                  admin=admin, server={"shared_state": shared_state})
            self.addCleanup(proxy.cleanup)
            proxy.start()
            instances.append((proxy, admin, port))
        front = start_haproxy(self, instances[0][2], instances[1][2])
        return [(proxy, admin) for proxy, admin, _ in instances], front

    def wait_for_gauge(self, instances, value, timeout=10):
        return lab.wait_until(
            lambda: all(metric(admin, "tlsbridge_shared_state_up") == value
                        for _, admin in instances), timeout, interval=0.1)

    def backend_failures(self, user):
        return sum(1 for line in self.dovecot.log().splitlines()
                   if f"passwd-file({user}," in line and "Password mismatch" in line)

    def spray(self, front, user, n, source="127.0.0.10"):
        """n wrong passwords for `user` through HAProxy, one connection each (round robin: they
        alternate between the instances); the tagged replies."""
        return [imap_login(front, source, user, "guess") for _ in range(n)]

    def blocked_on(self, instances, user):
        """How many auth.blocked records for `user` each instance wrote."""
        return [len([r for r in proxy.records("auth.blocked") if r.get("user") == user])
                for proxy, _ in instances]

    def describe(self, instances):
        return "".join(p.describe() for p, _ in instances)

    def test_a_spray_split_across_instances_meets_one_threshold(self):
        redis = self.start_redis()
        instances, front = self.start_instances(redis.url)
        self.assertTrue(self.wait_for_gauge(instances, 1), "both instances reach Redis")
        # The success path, and the address alice is known from (on one instance only).
        self.assertTrue(imap_login(front, "127.0.0.5", "alice", "wonderland").startswith("OK"))
        replies = self.spray(front, "alice", 2 * PER_USER)
        self.assertEqual([r.split("]")[0] + "]" for r in replies],
                         ["NO [AUTHENTICATIONFAILED]"] * PER_USER + ["NO [UNAVAILABLE]"] * PER_USER,
                         self.describe(instances))
        self.assertEqual(self.backend_failures("alice"), PER_USER, "3 in all, not 3 per instance")
        lab.wait_until(lambda: all(self.blocked_on(instances, "alice")), 5)
        self.assertTrue(all(self.blocked_on(instances, "alice")),
                        f"both instances refuse: {self.blocked_on(instances, 'alice')}")
        self.assertTrue(redis.exists("tlsbridge:authblock:imap-guard:user:alice"))
        # The address alice succeeded from still logs in, on either instance (two connections:
        # one each) ...
        for _ in range(2):
            self.assertTrue(imap_login(front, "127.0.0.5", "alice", "wonderland")
                            .startswith("OK"), self.describe(instances))
        # ... but not another one, right password or not; another user is not touched.
        for _ in range(2):
            self.assertTrue(imap_login(front, "127.0.0.20", "alice", "wonderland")
                            .startswith("NO [UNAVAILABLE]"))
        self.assertTrue(imap_login(front, "127.0.0.10", "bob", "builder").startswith("OK"))

    def test_without_shared_state_each_instance_lets_its_own_three_through(self):
        instances, front = self.start_instances("")
        replies = self.spray(front, "carol", 2 * PER_USER + 2)
        refused = [r for r in replies if r.startswith("NO [AUTHENTICATIONFAILED]")]
        self.assertEqual(len(refused), 2 * PER_USER, replies)
        self.assertTrue(all(r.startswith("NO [UNAVAILABLE]") for r in replies[2 * PER_USER:]))
        self.assertEqual(self.backend_failures("carol"), 2 * PER_USER)

    def test_redis_lost_means_counting_alone_never_refusing_everyone(self):
        redis = self.start_redis()
        instances, front = self.start_instances(redis.url)
        self.assertTrue(self.wait_for_gauge(instances, 1), "both instances reach Redis")
        redis.kill()
        self.assertTrue(self.wait_for_gauge(instances, 0), "both instances see Redis gone")
        for _ in range(2):  # one login on each instance
            self.assertTrue(imap_login(front, "127.0.0.30", "bob", "builder").startswith("OK"))
        replies = self.spray(front, "dave", 2 * PER_USER + 2, source="127.0.0.31")
        refused = [r for r in replies if r.startswith("NO [AUTHENTICATIONFAILED]")]
        self.assertEqual(len(refused), 2 * PER_USER, replies)
        self.assertTrue(all(r.startswith("NO [UNAVAILABLE]") for r in replies[2 * PER_USER:]))
        self.assertEqual(self.backend_failures("dave"), 2 * PER_USER)


if __name__ == "__main__":
    unittest.main()
