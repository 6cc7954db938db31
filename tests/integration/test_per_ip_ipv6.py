"""max_connections_per_ip counts IPv6 clients by /64 (issue 12; README, "Deviations": IPv6 per /64).
One host owns a whole /64, so counting each /128 let it open the limit again from every address. The
lab has only ::1, so the clients' IPv6 addresses come in PROXY v2 headers from a trusted proxy on
::1, to a listener bound to [::1] (an IPv6 socket end to end); IPv4-mapped IPv6 and IPv4 count as
the same client. Backend: the lab's real Postfix."""

import ipaddress
import socket
import struct
import subprocess
import unittest

import lab

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def proxy_v2_tcp6(src, sport, dst="::1", dport=25):
    """PROXY v2, PROXY command, TCP over IPv6 (0x21), 36 address bytes."""
    addrs = (ipaddress.IPv6Address(src).packed + ipaddress.IPv6Address(dst).packed +
             struct.pack("!HH", sport, dport))
    return V2_SIGNATURE + bytes([0x21, 0x21]) + struct.pack("!H", len(addrs)) + addrs


def proxy_v2_tcp4(src, sport, dst="127.0.0.1", dport=25):
    addrs = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!HH", sport, dport)
    return V2_SIGNATURE + bytes([0x21, 0x11]) + struct.pack("!H", len(addrs)) + addrs


class Ipv6Tlsbridge(lab.Tlsbridge):
    """The lab's proxy, probed for readiness on ::1 (its listener is bound to [::1])."""

    def _probe(self, port):
        try:
            with socket.create_connection(("::1", port), timeout=0.5) as s:
                host, local_port = s.getsockname()[:2]
                self.probe_clients.add(f"[{host}]:{local_port}")
                return True
        except OSError:
            return False


class PerIpIpv6Test(unittest.TestCase):
    LIMIT = 2

    @classmethod
    def setUpClass(cls):
        try:
            with socket.socket(socket.AF_INET6) as s:
                s.bind(("::1", 0))
        except OSError:
            raise unittest.SkipTest("no IPv6 loopback here")
        cls.certs = lab.shared_certs()
        cls.backend = lab.start_for_class(cls, lab.PostfixBackend(cls.certs, tls="none"))

    def setUp(self):
        self.port = lab.free_port()
        listener = lab.smtp_listener(
            self.port, self.backend.port, tls="none", backend_tls="none", require_tls=False,
            listen=f"[::1]:{self.port}", proxy_protocol=True, trusted_proxies=["::1/128"],
            max_connections_per_ip=self.LIMIT,
            timeouts={"handshake": "5s", "idle": "30s", "connect": "5s"})
        self.proxy = Ipv6Tlsbridge(
            [listener], [lab.server_pair(self.certs)])
        self.addCleanup(self.proxy.cleanup)
        self.proxy.start()
        self.sport = 40000

    def client(self, header):
        """Connects from ::1, sends the header, returns (socket, first reply line)."""
        sock = socket.create_connection(("::1", self.port), timeout=10)
        self.addCleanup(sock.close)
        sock.sendall(header)
        data = b""
        while not data.endswith(b"\r\n"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
        return sock, data.decode("utf-8", "replace")

    def header(self, src):
        self.sport += 1
        if ":" in src:
            return proxy_v2_tcp6(src, self.sport)
        return proxy_v2_tcp4(src, self.sport)

    def assert_served(self, src):
        sock, reply = self.client(self.header(src))
        self.assertTrue(reply.startswith("220"), f"{src}: {reply!r}\n{self.proxy.describe()}")
        return sock

    def assert_limited(self, src):
        _, reply = self.client(self.header(src))
        self.assertRegex(reply, r"^421 4\.7\.0", f"{src} is over max_connections_per_ip")
        prefixes = (f"[{src}]:", f"{src}:")  # IPv6 or IPv4 "ip:port"
        records = self.proxy.wait_for_conn_records(
            1, where=lambda r: r["outcome"] == "limit" and r["client"].startswith(prefixes))
        self.assertTrue(records, self.proxy.describe())
        self.assertIn("max_connections_per_ip", records[-1]["reason"])
        self.assertIsNone(records[-1]["backend"], "a refused client never reaches Postfix")

    def test_addresses_of_one_slash64_share_the_limit(self):
        held = [self.assert_served("2001:db8:1:2::a"),
                self.assert_served("2001:db8:1:2:ffff:ffff:ffff:fffe")]
        # A third address in the same /64 is the same host.
        self.assert_limited("2001:db8:1:2:1234::1")
        # Another /64 is another client (the success path on the same port, same moment).
        self.assert_served("2001:db8:1:3::a")
        # Leaving frees the slot for the whole /64.
        held[0].close()
        ok = lab.wait_until(lambda: self.client(self.header("2001:db8:1:2::77"))[1]
                            .startswith("220"), 10, interval=0.2)
        self.assertTrue(ok, "a slot freed in the /64 must be usable again")

    def test_ipv4_mapped_ipv6_counts_as_its_ipv4_address(self):
        self.assert_served("198.51.100.7")
        self.assert_served("::ffff:198.51.100.7")
        self.assert_limited("198.51.100.7")
        self.assert_served("198.51.100.8")  # the neighbouring IPv4 address is another client


class TrustedProxiesIpv4MappedTest(unittest.TestCase):
    def test_check_config_warns_when_an_ipv6_entry_trusts_all_of_ipv4(self):
        """IPv4 clients are stored IPv4-mapped, so trusted_proxies = ["::/0"] (or "::/64", the
        /64 of ::1) also trusts every IPv4 host to claim any client address."""
        certs = lab.shared_certs()
        for entries, warned in ((["::/0"], True), (["::/64"], True), (["::1/128"], False),
                                (["2001:db8::/32", "10.0.0.0/8"], False)):
            with self.subTest(trusted_proxies=entries):
                listener = lab.smtp_listener(lab.free_port(), 2525, tls="none", backend_tls="none",
                                             proxy_protocol=True, trusted_proxies=entries)
                proxy = lab.Tlsbridge(
                    [listener], [lab.server_pair(certs)])
                self.addCleanup(proxy.cleanup)
                with open(proxy.config_path, "w") as f:
                    f.write(proxy.config_text())
                result = subprocess.run(
                    [proxy.binary, "check-config", "--config", proxy.config_path],
                    capture_output=True, text=True, timeout=30)
                self.assertEqual(result.returncode, 0, result.stderr)
                self.assertEqual("covers every IPv4 address" in result.stderr, warned,
                                 result.stderr)


if __name__ == "__main__":
    unittest.main()
