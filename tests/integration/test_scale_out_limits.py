"""Operations (issue #7; limits in conf/tlsbridge.toml, PROXY protocol and scale-out in README,
"Scale out"): connection limits give the protocol's own refusal, PROXY v1/v2 is accepted only from
trusted proxies and carries the real client address into the audit log, malformed headers are
refused without harm, and HAProxy (Debian's) in TCP mode with send-proxy-v2 spreads clients over two
tlsbridge instances."""

import os
import socket
import struct
import subprocess
import time
import unittest

import lab


def connect_from(source_ip, port, timeout=10):
    """A TCP connection to 127.0.0.1:port from a chosen loopback address (127.0.0.0/8 is ours)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.bind((source_ip, 0))
    sock.connect(("127.0.0.1", port))
    return sock


def read_reply(sock):
    data = b""
    while not data.endswith(b"\r\n"):
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.decode("utf-8", "replace")


def proxy_v2(src, sport, dst="127.0.0.1", dport=25):
    sig = b"\r\n\r\n\x00\r\nQUIT\n"
    addrs = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!HH", sport, dport)
    return sig + bytes([0x21, 0x11]) + struct.pack("!H", len(addrs)) + addrs


class PlainBackendMixin:
    @classmethod
    def setUpClass(cls):
        cls.certs = lab.shared_certs()
        cls.backend = lab.start_for_class(cls, lab.PostfixBackend(cls.certs, tls="none"))

    def start_proxy(self, **listener_extra):
        port = lab.free_port()
        listener = lab.smtp_listener(port, self.backend.port, tls="none", backend_tls="none",
                                     require_tls=False, **listener_extra)
        proxy = lab.Tlsbridge([listener],
                              [lab.server_pair(self.certs)])
        self.addCleanup(proxy.cleanup)
        proxy.start()
        return proxy, port


class LimitsTest(PlainBackendMixin, unittest.TestCase):
    def test_listener_limit_refuses_the_next_connection_with_421(self):
        proxy, port = self.start_proxy(max_connections=2)
        held = [connect_from("127.0.0.1", port) for _ in range(2)]
        for s in held:
            self.addCleanup(s.close)
            self.assertTrue(read_reply(s).startswith("220"), "the first two are served")
        extra = connect_from("127.0.0.1", port)
        self.addCleanup(extra.close)
        self.assertRegex(read_reply(extra), r"^421 4\.7\.0 .*too many connections")
        held[0].close()
        # Once one leaves, a new client is served again (the limit counts, it does not stick).
        def served():
            s = connect_from("127.0.0.1", port)
            try:
                return read_reply(s).startswith("220")
            finally:
                s.close()
        ok = lab.wait_until(served, 10, interval=0.2)
        self.assertTrue(ok, "a slot freed by a closed connection must be usable")
        records = proxy.wait_for_conn_records(1, where=lambda r: r.get("outcome") == "limit")
        self.assertTrue(records and "max_connections" in records[0]["reason"], records)

    def test_per_ip_limit(self):
        proxy, port = self.start_proxy(max_connections_per_ip=1)
        first = connect_from("127.0.0.1", port)
        self.addCleanup(first.close)
        self.assertTrue(read_reply(first).startswith("220"))
        second = connect_from("127.0.0.1", port)
        self.addCleanup(second.close)
        self.assertRegex(read_reply(second), r"^421 4\.7\.0")
        other = connect_from("127.0.0.2", port)  # another client address is not limited
        self.addCleanup(other.close)
        self.assertTrue(read_reply(other).startswith("220"))


class MailboxLimitsTest(unittest.TestCase):
    """IMAP and POP3 answer the (N+1)th connection in their own words (limits)."""

    @classmethod
    def setUpClass(cls):
        cls.certs = lab.shared_certs()
        cls.dovecot = lab.DovecotBackend(cls.certs)
        cls.addClassCleanup(cls.dovecot.cleanup)
        cls.dovecot.start()

    def test_imap_bye_and_pop3_err_over_the_limit(self):
        imap_port, pop3_port = lab.free_port(), lab.free_port()
        listeners = []
        for name, port, backend in (("imap", imap_port, self.dovecot.imap_port),
                                    ("pop3", pop3_port, self.dovecot.pop3_port)):
            listeners.append({"name": name, "protocol": name, "listen": f"127.0.0.1:{port}",
                              "tls": "starttls", "max_connections": 1,
                              "backend": {"address": [f"127.0.0.1:{backend}"], "tls": "starttls",
                                          "tls_profile": "legacy", "verify": "none"}})
        proxy = lab.Tlsbridge(listeners,
                              [lab.server_pair(self.certs)])
        self.addCleanup(proxy.cleanup)
        proxy.start()
        self.assertTrue(proxy.wait_for_probes_done(), "the readiness probes' sessions never ended")
        for port, ok, refused in ((imap_port, "* OK", r"^\* BYE \[UNAVAILABLE\]"),
                                  (pop3_port, "+OK", r"^-ERR \[SYS/TEMP\]")):
            first = connect_from("127.0.0.1", port)
            self.addCleanup(first.close)
            self.assertTrue(read_reply(first).startswith(ok), "the first is served")
            second = connect_from("127.0.0.1", port)
            self.addCleanup(second.close)
            self.assertRegex(read_reply(second), refused)


class ProxyProtocolTest(PlainBackendMixin, unittest.TestCase):
    def start_pp_proxy(self):
        # A short handshake timeout bounds how long a truncated header can hold a connection.
        return self.start_proxy(proxy_protocol=True, trusted_proxies=["127.0.0.2/32"],
                                timeouts={"handshake": "2s", "idle": "30s", "connect": "5s"})

    def test_v1_and_v2_from_trusted_proxy_carry_the_client_address(self):
        proxy, port = self.start_pp_proxy()
        for header, client in ((b"PROXY TCP4 203.0.113.7 127.0.0.1 40001 25\r\n",
                                "203.0.113.7:40001"),
                               (proxy_v2("198.51.100.9", 40002), "198.51.100.9:40002")):
            s = connect_from("127.0.0.2", port)
            self.addCleanup(s.close)
            s.sendall(header + b"EHLO pp.test\r\n")
            self.assertTrue(read_reply(s).startswith("220"), "greeting after the header")
            s.sendall(b"QUIT\r\n")
            s.recv(4096)
            s.close()
            records = proxy.wait_for_conn_records(1, where=lambda r, c=client: r["client"] == c)
            self.assertEqual(len(records), 1, f"audit must show the real client {client}")
            self.assertTrue(records[0]["proxy"].startswith("127.0.0.2:"), records[0])

    def test_untrusted_source_and_malformed_headers_are_refused(self):
        proxy, port = self.start_pp_proxy()
        bad_inputs = [
            ("untrusted", "127.0.0.1", b"PROXY TCP4 203.0.113.7 127.0.0.1 40001 25\r\n"),
            ("truncated", "127.0.0.2", b"PROXY TCP4 203.0.113.7 127.0.0"),
            ("wrong signature", "127.0.0.2", b"EHLO no-header.test\r\n"),
            ("v2 bogus length", "127.0.0.2",
             b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\xff\xff" + b"\x00" * 32),
            ("v2 short address block", "127.0.0.2", b"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x04abcd"),
        ]
        for name, source, data in bad_inputs:
            s = connect_from(source, port, timeout=20)
            self.addCleanup(s.close)
            s.sendall(data)
            if name == "truncated":
                s.shutdown(socket.SHUT_WR)
            try:
                answer = s.recv(4096)
            except ConnectionResetError:
                answer = b""
            self.assertEqual(answer, b"", f"{name}: nothing but a close, and no greeting")
            s.close()
        refused = proxy.wait_for_conn_records(
            5, where=lambda r: r["outcome"] in ("denied", "client_closed", "timeout"))
        self.assertGreaterEqual(len(refused), 5, proxy.describe())
        records = [r for r in proxy.audit_records() if r.get("event") == "conn"]
        self.assertFalse([r for r in records if r.get("backend")],
                         "a refused PROXY connection never opens a backend connection")
        # The proxy is alive and serves a good header after all that.
        s = connect_from("127.0.0.2", port)
        self.addCleanup(s.close)
        s.sendall(b"PROXY TCP4 192.0.2.1 127.0.0.1 40003 25\r\n")
        self.assertTrue(read_reply(s).startswith("220"))


HAPROXY_CFG = """\
global
    maxconn 200
    # One thread: round robin then alternates strictly, which the tests count on.
    nbthread 1
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend fe
    bind 127.0.0.1:{port}
    default_backend tlsbridges
backend tlsbridges
    balance roundrobin
    server a 127.0.0.1:{a} send-proxy-v2
    server b 127.0.0.1:{b} send-proxy-v2
"""


def start_haproxy(test, a, b):
    """HAProxy (round robin, send-proxy-v2) on a free port in front of 127.0.0.1:a and :b, stopped
    by its PID at the test's cleanup; answers its port."""
    front = lab.free_port()
    directory = lab.make_lab_dir("tlsbridge-haproxy.")
    cfg = os.path.join(directory, "haproxy.cfg")
    with open(cfg, "w") as f:
        f.write(HAPROXY_CFG.format(port=front, a=a, b=b))
    haproxy = subprocess.Popen(["haproxy", "-db", "-f", cfg], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)

    def stop_haproxy():
        haproxy.terminate()
        try:
            haproxy.wait(10)
        except subprocess.TimeoutExpired:
            haproxy.kill()
            haproxy.wait(5)
    test.addCleanup(stop_haproxy)
    test.assertTrue(lab.wait_until(lambda: lab.port_accepts(front), 10), "haproxy is up")
    return front


class HaproxyScaleOutTest(PlainBackendMixin, unittest.TestCase):
    def test_haproxy_send_proxy_v2_in_front_of_two_instances(self):
        instances = []
        for _ in range(2):
            proxy, port = self.start_proxy(proxy_protocol=True, trusted_proxies=["127.0.0.1/32"])
            instances.append((proxy, port))
        front = start_haproxy(self, instances[0][1], instances[1][1])

        clients = []
        for i in range(6):
            s = connect_from("127.0.0.3", front)
            self.addCleanup(s.close)
            self.assertTrue(read_reply(s).startswith("220"), f"client {i} greeted")
            s.sendall(b"QUIT\r\n")
            s.recv(4096)
            clients.append("%s:%d" % s.getsockname())
            s.close()
        # A conn record is written when its session has wound down, a moment after the client
        # saw the close: wait until all six are in (or the deadline), then compare.
        def per_instance_clients():
            return [{r["client"] for r in proxy.conn_records()
                     if r.get("client", "").startswith("127.0.0.3:")} for proxy, _ in instances]
        lab.wait_until(lambda: len(set().union(*per_instance_clients())) >= len(clients), 10,
                       interval=0.1)
        per_instance = per_instance_clients()
        self.assertTrue(all(per_instance), f"both instances got traffic: {per_instance}")
        self.assertEqual(per_instance[0] | per_instance[1], set(clients),
                         "every client appears with its own address, on exactly one instance")
        self.assertFalse(per_instance[0] & per_instance[1])


if __name__ == "__main__":
    unittest.main()
