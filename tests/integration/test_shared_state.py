"""Several instances share [listener.limits] connection_rate through Redis ([server] shared_state;
README, "Deploy: several instances"; proxy/shared_state.hpp).

Peers: Debian's HAProxy (round robin, send-proxy-v2, so each instance sees the real client) in
front of two tlsbridge instances, the lab's Postfix behind them, and one redis-server this test
starts on a free port. A client's 5th connection within `4/1m` is refused with `421 4.7.0`
whichever instance gets it; without shared_state each instance admits its own 4. Redis killed:
each instance goes on counting alone (never refusing everyone), says so once in its log and in
`tlsbridge_shared_state_up`; Redis back: the gauge is 1 again and the limit is shared again."""

import signal
import unittest

import lab
import redis_peer
from cert_renewal import metric
from test_scale_out_limits import connect_from, read_reply, start_haproxy

RATE = "4/1m"
LIMIT = 4
RECONNECT_TIMEOUT = 20.0  # the proxy retries with back-off up to 5 s apart


def start_redis(test):
    """A redis-server of its own on a free port, stopped at the test's cleanup."""
    redis = redis_peer.RedisServer()
    test.addCleanup(redis.cleanup)
    return redis.start()


def start_instances(test, certs, shared_state, listener_for):
    """Two tlsbridge instances (each with an admin endpoint and the listener listener_for(port)
    gives) behind one HAProxy; answers the instances as (proxy, admin) and HAProxy's port."""
    instances = []
    for _ in range(2):
        port, admin = lab.free_port(), f"127.0.0.1:{lab.free_port()}"
        proxy = lab.Tlsbridge([listener_for(port)],
                              [lab.server_pair(certs)],
                              admin=admin, server={"shared_state": shared_state})
        test.addCleanup(proxy.cleanup)
        proxy.start()
        instances.append((proxy, admin, port))
    front = start_haproxy(test, instances[0][2], instances[1][2])
    return [(proxy, admin) for proxy, admin, _ in instances], front


def wait_for_gauge(instances, value, timeout):
    """Whether tlsbridge_shared_state_up reads `value` on every instance within timeout."""
    return lab.wait_until(
        lambda: all(metric(admin, "tlsbridge_shared_state_up") == value
                    for _, admin in instances), timeout, interval=0.2)


class SharedStateTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        redis_peer.skip_unless_redis_runs()
        cls.certs = lab.shared_certs()
        cls.backend = lab.start_for_class(cls, lab.PostfixBackend(cls.certs, tls="none"))

    def start_redis(self):
        return start_redis(self)

    def start_instances(self, shared_state):
        def listener_for(port):
            return lab.smtp_listener(port, self.backend.port, tls="none", backend_tls="none",
                                     require_tls=False, proxy_protocol=True,
                                     trusted_proxies=["127.0.0.1/32"],
                                     limits={"connection_rate": RATE})
        return start_instances(self, self.certs, shared_state, listener_for)

    def replies(self, client_ip, front, n):
        """n connections one after another from client_ip through HAProxy: each one's first
        line and the local address it came from."""
        out = []
        for _ in range(n):
            with connect_from(client_ip, front) as s:
                line = read_reply(s)
                if line.startswith("220"):
                    s.sendall(b"QUIT\r\n")
                    s.recv(4096)
                out.append((line, "%s:%d" % s.getsockname()))
        return out

    def instance_of(self, instances, client):
        """Which instance (0 or 1) wrote the conn record of `client`."""
        for i, (proxy, _) in enumerate(instances):
            if proxy.wait_for_conn_records(1, where=lambda r: r["client"] == client, timeout=0.5):
                return i
        return None

    def wait_for_gauge(self, instances, value, timeout):
        return wait_for_gauge(instances, value, timeout)

    def assert_admitted(self, got, n, instances):
        for i, (line, _) in enumerate(got[:n]):
            self.assertTrue(line.startswith("220"),
                            f"connection {i + 1} is admitted: {line!r}\n"
                            + "".join(p.describe() for p, _ in instances))

    def test_the_fifth_connection_is_refused_whichever_instance_gets_it(self):
        redis = self.start_redis()
        instances, front = self.start_instances(redis.url)
        self.assertTrue(self.wait_for_gauge(instances, 1, 10), "both instances reach Redis")
        got = self.replies("127.0.0.3", front, LIMIT + 2)
        self.assert_admitted(got, LIMIT, instances)
        refused_on = set()
        for line, client in got[LIMIT:]:
            self.assertRegex(line, r"^421 4\.7\.0 ", "over the shared rate: refused")
            refused_on.add(self.instance_of(instances, client))
        # Round robin gave each instance 3 of the 6: neither counted 4 itself, and both refused.
        self.assertEqual({0, 1}, refused_on, "the 5th and 6th went to different instances")
        for proxy, _ in instances:
            records = proxy.wait_for_conn_records(
                1, where=lambda r: r["outcome"] == "limit" and "connection_rate" in r["reason"])
            self.assertTrue(records, proxy.describe())
        # Another client, at the same moment through the same HAProxy, is served.
        self.assert_admitted(self.replies("127.0.0.4", front, 1), 1, instances)

    def test_without_shared_state_each_instance_admits_its_own_four(self):
        instances, front = self.start_instances("")
        got = self.replies("127.0.0.5", front, 2 * LIMIT + 1)
        self.assert_admitted(got, 2 * LIMIT, instances)
        self.assertRegex(got[-1][0], r"^421 4\.7\.0 ", "each instance still has its own limit")
        for proxy, admin in instances:
            self.assertIsNone(metric(admin, "tlsbridge_shared_state_up"),
                              "no shared state, no gauge")

    def test_redis_lost_means_counting_alone_and_back_means_shared_again(self):
        redis = self.start_redis()
        instances, front = self.start_instances(redis.url)
        self.assertTrue(self.wait_for_gauge(instances, 1, 10), "both instances reach Redis")
        redis.kill()
        self.assertTrue(self.wait_for_gauge(instances, 0, 10),
                        "tlsbridge_shared_state_up is 0 on both once Redis is gone")
        # Counting goes on in each process: 4 per instance, then the local limit refuses.
        got = self.replies("127.0.0.6", front, 2 * LIMIT + 2)
        self.assert_admitted(got, 2 * LIMIT, instances)
        for line, _ in got[2 * LIMIT:]:
            self.assertRegex(line, r"^421 4\.7\.0 ", "the local limit still holds")
        for proxy, _ in instances:
            lost = [l for l in proxy.stderr().splitlines()
                    if "shared state" in l and "not reachable" in l]
            self.assertEqual(1, len(lost), "one warn line, not one per connection:\n"
                             + proxy.stderr()[-3000:])
            self.assertIn("warn", lost[0])
            self.assertIn(redis.url, lost[0])

        redis.start()  # the same port again
        self.assertTrue(self.wait_for_gauge(instances, 1, RECONNECT_TIMEOUT),
                        "the instances reconnect by themselves\n"
                        + "".join(p.describe() for p, _ in instances))
        for proxy, _ in instances:
            self.assertTrue(lab.wait_until(lambda p=proxy: "reachable again" in p.stderr(), 5),
                            proxy.stderr()[-3000:])
        got = self.replies("127.0.0.7", front, LIMIT + 1)
        self.assert_admitted(got, LIMIT, instances)
        self.assertRegex(got[-1][0], r"^421 4\.7\.0 ", "shared again once Redis is back")

    def test_reload_moves_to_another_redis_and_turns_sharing_off(self):
        first, second = self.start_redis(), self.start_redis()
        port, admin = lab.free_port(), f"127.0.0.1:{lab.free_port()}"
        listener = lab.smtp_listener(port, self.backend.port, tls="none", backend_tls="none",
                                     require_tls=False, limits={"connection_rate": RATE})
        proxy = lab.Tlsbridge([listener],
                              [lab.server_pair(self.certs)],
                              admin=admin, server={"shared_state": first.url})
        self.addCleanup(proxy.cleanup)
        proxy.start()
        self.assertTrue(self.wait_for_gauge([(proxy, admin)], 1, 10), proxy.describe())
        self.assert_admitted(self.replies("127.0.0.8", port, 1), 1, [(proxy, admin)])
        self.assertTrue(first.exists("tlsbridge:rate:smtp-in:127.0.0.8"))

        def reload(shared_state, expect_line):
            before = proxy.stderr().count("reload done")
            proxy.server["shared_state"] = shared_state
            with open(proxy.config_path, "w") as f:
                f.write(proxy.config_text())
            proxy.proc.send_signal(signal.SIGHUP)
            self.assertTrue(lab.wait_until(
                lambda: proxy.stderr().count("reload done") > before and expect_line in
                proxy.stderr(), 10), proxy.describe())

        reload(second.url, f"counters shared through Redis at {second.url}")
        self.assert_admitted(self.replies("127.0.0.9", port, 1), 1, [(proxy, admin)])
        self.assertTrue(second.exists("tlsbridge:rate:smtp-in:127.0.0.9"), "the new URL is used")
        self.assertFalse(first.exists("tlsbridge:rate:smtp-in:127.0.0.9"), "the old one is not")
        reload("", f"shared state: {second.url} no longer used")
        self.assertEqual(0, metric(admin, "tlsbridge_shared_state_up"))
        self.assert_admitted(self.replies("127.0.0.10", port, 1), 1, [(proxy, admin)])
        self.assertFalse(second.exists("tlsbridge:rate:smtp-in:127.0.0.10"), "counting alone")


if __name__ == "__main__":
    unittest.main()
