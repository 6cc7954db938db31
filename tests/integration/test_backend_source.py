"""The client's address at the backend ([listener.backend] source; docs/configuration.md,
README "Deploy"). In three network namespaces this test makes — a client (10.91.1.2), a router
running the proxy (10.91.1.1 towards the client; 10.91.2.1 and 10.91.2.3 towards the backend) and
a backend (10.91.2.2) running a real Postfix — a message is sent with swaks through three
listeners, and Postfix's own log and Received header name the address each back leg came from:
the proxy's 10.91.2.1 where the kernel chooses (source = ""), 10.91.2.3 with source =
"10.91.2.3", and the client's own 10.91.1.2 with source = "client" (IP_TRANSPARENT and the policy
routing the documentation gives). The proxy runs as [server] user = "nobody", so the transparent
leg also proves that the privilege drop kept CAP_NET_ADMIN.

Without root (no `ip netns add`), the namespace test is skipped, saying why. check-config's
refusals (a source of the other family, an address this host does not have, "client" without
CAP_NET_ADMIN) run on loopback, each next to a config that passes; so does a reload to "client"
in a process that dropped to nobody without it, rejected while the old config serves on."""

import ctypes
import os
import re
import signal
import subprocess
import threading
import unittest

import lab

CLONE_NEWNET = 0x40000000
CLIENT, PROXY_FRONT, PROXY_BACK, PROXY_SECOND, BACKEND = (
    "10.91.1.2", "10.91.1.1", "10.91.2.1", "10.91.2.3", "10.91.2.2")


def ip(*args):
    result = lab.run(["ip", *args])
    if result.returncode != 0:
        raise lab.LabError(f"ip {' '.join(args)}: {result.stdout}{result.stderr}")


def in_netns(name, fn, timeout=30):
    """fn() on a thread moved into network namespace `name` (setns(2) acts on the calling thread
    only, and the thread ends with it): the sockets it makes live in that namespace."""
    result = {}

    def target():
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), f"setns {name}")
            result["value"] = fn()
        except BaseException as e:  # handed to the caller's thread
            result["error"] = e
        finally:
            os.close(fd)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    if "error" in result:
        raise result["error"]
    return result.get("value")


class Network:
    """client | router | backend, named with this process's PID; cleanup() deletes exactly the
    namespaces it made (their veth pairs go with them)."""

    def __init__(self):
        tag = os.getpid()
        self.client, self.router, self.backend = (f"tbsrc{tag}{x}" for x in ("c", "r", "b"))
        self.made = []

    def create(self):
        for name in (self.client, self.router, self.backend):
            ip("netns", "add", name)
            self.made.append(name)
        tag = os.getpid()
        front, back = f"tbs{tag}f", f"tbs{tag}b"
        ip("link", "add", front + "c", "netns", self.client, "type", "veth", "peer", "name",
           front + "r", "netns", self.router)
        ip("link", "add", back + "b", "netns", self.backend, "type", "veth", "peer", "name",
           back + "r", "netns", self.router)
        for ns, dev, addresses in ((self.client, front + "c", [CLIENT]),
                                   (self.router, front + "r", [PROXY_FRONT]),
                                   (self.router, back + "r", [PROXY_BACK, PROXY_SECOND]),
                                   (self.backend, back + "b", [BACKEND])):
            for address in addresses:
                ip("-n", ns, "addr", "add", f"{address}/24", "dev", dev)
            ip("-n", ns, "link", "set", dev, "up")
            ip("-n", ns, "link", "set", "lo", "up")
        # The backend answers the client's address through the proxy (docs/configuration.md,
        # "source": its route to the clients goes via the proxy), and the router delivers what
        # arrives from the backend side to its own sockets — the transparent ones included —
        # instead of forwarding it (it does not forward at all: ip_forward is 0 in a new namespace).
        ip("-n", self.backend, "route", "add", "10.91.1.0/24", "via", PROXY_BACK)
        ip("-n", self.router, "rule", "add", "iif", back + "r", "lookup", "100")
        ip("-n", self.router, "route", "add", "local", "0.0.0.0/0", "dev", "lo", "table", "100")

    def cleanup(self):
        for name in reversed(self.made):
            lab.run(["ip", "netns", "delete", name])
        self.made = []


def namespaces_unavailable():
    """Why network namespaces cannot be made here, or None."""
    if os.geteuid() != 0:
        return "not root: network namespaces need CAP_SYS_ADMIN"
    probe = f"tbsrc{os.getpid()}probe"
    try:
        result = lab.run(["ip", "netns", "add", probe])
    except OSError as e:
        return f"no ip(8): {e}"
    if result.returncode != 0:
        return f"ip netns add failed: {result.stderr.strip()}"
    lab.run(["ip", "netns", "delete", probe])
    return None


class NetnsTlsbridge(lab.Tlsbridge):
    """The proxy started with `ip netns exec ROUTER` (which execs it: the PID is the proxy's),
    its readiness probed from inside that namespace."""

    def __init__(self, netns, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.netns = netns

    def start(self, env=None):
        with open(self.config_path, "w") as f:
            f.write(self.config_text())
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", self.netns, self.binary, "run", "--config",
                 self.config_path], stdin=subprocess.DEVNULL, stdout=err, stderr=err, cwd=self.dir)
        self._wait_ready()
        return self

    def _probe(self, port):
        def connect():
            import socket
            try:
                with socket.create_connection((PROXY_FRONT, port), timeout=0.5):
                    return True
            except OSError:
                return False
        return in_netns(self.netns, connect)


class TransparentSourceTest(unittest.TestCase):
    SOURCES = {"kernel": ("", PROXY_BACK), "fixed": (PROXY_SECOND, PROXY_SECOND),
               "client": ("client", CLIENT)}

    @classmethod
    def setUpClass(cls):
        why = namespaces_unavailable()
        if why:
            raise unittest.SkipTest(f"network namespaces cannot be made here ({why}); the "
                                    "transparent source is not tested")
        cls.certs = lab.shared_certs()
        cls.network = Network()
        cls.addClassCleanup(cls.network.cleanup)  # last: after the processes inside are gone
        cls.network.create()

        cls.postfix = lab.PostfixBackend(cls.certs, tls="none", host=BACKEND)
        cls.addClassCleanup(cls.postfix.cleanup)
        cls.postfix.configure()
        tuned = lab.run(["postconf", "-c", cls.postfix.etc, "-e", "inet_interfaces=" + BACKEND,
                         "smtpd_peername_lookup=no"])
        assert tuned.returncode == 0, tuned.stderr
        started = lab.run(["ip", "netns", "exec", cls.network.backend, "postfix", "-c",
                           cls.postfix.etc, "start"], timeout=lab.POSTFIX_START_TIMEOUT)
        assert started.returncode == 0, started.stdout + started.stderr + cls.postfix.log()
        ready = lab.wait_until(lambda: in_netns(cls.network.backend, lambda: lab.port_accepts(
            cls.postfix.port, host=BACKEND)), lab.POSTFIX_START_TIMEOUT)
        assert ready, "Postfix does not accept in its namespace\n" + cls.postfix.log()

        cls.ports = {}
        listeners = []
        for name, (source, _) in cls.SOURCES.items():
            cls.ports[name] = lab.free_port()
            listener = lab.smtp_listener(0, cls.postfix.port, name=name, backend_tls="none",
                                         require_tls=False)
            listener["listen"] = f"{PROXY_FRONT}:{cls.ports[name]}"
            listener["backend"] = {"address": [f"{BACKEND}:{cls.postfix.port}"], "tls": "none",
                                   "source": source}
            listeners.append(listener)
        cls.proxy = NetnsTlsbridge(
            cls.network.router, listeners,
            [(os.path.join(cls.certs, "server.chain.pem"), os.path.join(cls.certs, "server.key"))],
            server={"user": "nobody"})
        cls.addClassCleanup(cls.proxy.cleanup)
        cls.proxy.start()
        # The readiness probes' back legs reach Postfix too: let their sessions end before a
        # test reads the maillog.
        def sessions_over():
            log = cls.postfix.log()
            opened = len(re.findall(r"\]: connect from", log))
            return opened > 0 and opened == len(re.findall(r"\]: disconnect from", log))
        assert lab.wait_until(sessions_over, 20), \
            "the readiness probes' sessions never ended\n" + cls.postfix.log()

    def send_through(self, name):
        """swaks in the client namespace through listener `name`; answers the delivered message
        and the backend's maillog lines of that session."""
        marker = f"source-{name}-{os.getpid()}"
        log_before = len(self.postfix.log())
        sent = lab.run(["ip", "netns", "exec", self.network.client, "swaks", "--server",
                        PROXY_FRONT, "--port", str(self.ports[name]), "--tls", "--ehlo",
                        "client.test", "--to", "x@example.test", "--from", "y@example.test",
                        "--header", f"Subject: {marker}", "--timeout", "20"], timeout=40)
        self.assertEqual(sent.returncode, 0, sent.stdout + sent.stderr + self.proxy.describe())
        message = self.postfix.wait_for_message_containing(marker.encode())
        self.assertIsNotNone(message, f"{marker} not delivered\n{self.postfix.log()}")
        return message, self.postfix.log()[log_before:]

    def check_seen_as(self, name):
        _, expected = self.SOURCES[name]
        message, log = self.send_through(name)
        connects = re.findall(r"smtpd\[\d+\]: connect from [^\[]*\[([0-9.]+)\]", log)
        print(f"\n  {name}: Postfix logged connect from {connects}")
        self.assertEqual(connects, [expected], log)
        self.assertIn(f"from client.test (unknown [{expected}])", lab.first_received(message))
        record = self.proxy.wait_for_conn_records(
            1, listener=name, where=lambda r: r.get("client", "").startswith(CLIENT + ":"))
        self.assertTrue(record, self.proxy.describe())
        self.assertTrue(record[-1]["backend"]["local"].startswith(expected + ":"), record[-1])

    def test_kernel_choice_is_the_proxys_own_address(self):
        self.check_seen_as("kernel")

    def test_fixed_source_is_bound(self):
        self.check_seen_as("fixed")

    def test_client_source_is_the_clients_address(self):
        self.check_seen_as("client")

    def test_the_drop_kept_cap_net_admin_and_no_more(self):
        kept = lab.CAP_NET_BIND_SERVICE | lab.CAP_NET_ADMIN
        self.assertEqual(lab.capability_sets(self.proxy.proc.pid), {(kept, kept)})
        self.assertRegex(self.proxy.stderr(),
                         r"keeping only CAP_NET_BIND_SERVICE and CAP_NET_ADMIN")


class SourceCheckTest(unittest.TestCase):
    """check-config (the same checks as start and reload) on loopback."""

    def setUp(self):
        self.certs = lab.shared_certs()

    def check_config(self, source, address="127.0.0.1:25", prefix=()):
        listener = lab.smtp_listener(lab.free_port(), 25, backend_tls="none")
        listener["backend"] = {"address": [address], "tls": "none", "source": source}
        proxy = lab.Tlsbridge([listener], [(os.path.join(self.certs, "server.chain.pem"),
                                            os.path.join(self.certs, "server.key"))])
        self.addCleanup(proxy.cleanup)
        with open(proxy.config_path, "w") as f:
            f.write(proxy.config_text())
        return lab.run([*prefix, proxy.binary, "check-config", "--config", proxy.config_path])

    def assert_refused(self, result, needle):
        self.assertNotEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn(needle, result.stdout + result.stderr)

    def test_an_address_of_this_host_passes(self):
        for source in ("", "127.0.0.1"):
            result = self.check_config(source)
            self.assertEqual(result.returncode, 0, result.stdout + result.stderr)

    def test_the_other_family_is_refused(self):
        self.assert_refused(self.check_config("::1"),
                            'source "::1" is IPv6 but backend address "127.0.0.1:25" is IPv4')

    def test_an_address_this_host_lacks_is_refused(self):
        # 192.0.2.0/24 (RFC 5737) is documentation space: no interface here has it.
        self.assert_refused(self.check_config("192.0.2.99"),
                            'source "192.0.2.99" cannot be bound (Cannot assign requested address)')

    def test_client_needs_cap_net_admin(self):
        if os.geteuid() != 0:
            self.skipTest("not root: the passing case needs CAP_NET_ADMIN")
        result = self.check_config("client")
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        # What a unit whose CapabilityBoundingSet= lacks it gets: root without CAP_NET_ADMIN.
        self.assert_refused(
            self.check_config("client", prefix=("setpriv", "--bounding-set", "-net_admin")),
            "needs CAP_NET_ADMIN, and this process does not have it")

    def test_reload_to_client_after_a_drop_without_it_is_refused(self):
        """A process that dropped to nobody without source = "client" gave CAP_NET_ADMIN up:
        a reload that asks for it is rejected, saying why, and the running config serves on."""
        if os.geteuid() != 0:
            self.skipTest("not root: no privilege drop to test")
        backend = lab.PostfixBackend(self.certs, tls="none")
        self.addCleanup(backend.cleanup)
        backend.start()
        port = lab.free_port()
        listener = lab.smtp_listener(port, backend.port, backend_tls="none", require_tls=False)
        listener["backend"] = {"address": [f"127.0.0.1:{backend.port}"], "tls": "none"}
        proxy = lab.Tlsbridge([listener], [(os.path.join(self.certs, "server.chain.pem"),
                                            os.path.join(self.certs, "server.key"))],
                              server={"user": "nobody"})
        self.addCleanup(proxy.cleanup)
        proxy.start()
        self.assertEqual(lab.capability_sets(proxy.proc.pid),
                         {(lab.CAP_NET_BIND_SERVICE, lab.CAP_NET_BIND_SERVICE)})
        listener["backend"]["source"] = "client"
        with open(proxy.config_path, "w") as f:
            f.write(proxy.config_text())
        os.kill(proxy.proc.pid, signal.SIGHUP)
        rejected = lab.wait_until(lambda: "reload rejected (SIGHUP)" in proxy.stderr(), 10)
        self.assertTrue(rejected, proxy.describe())
        self.assertRegex(proxy.stderr(), r"reload rejected \(SIGHUP\): .*listener\[0\]\.backend"
                         r"\.source: source = \"client\" .* needs CAP_NET_ADMIN, and this process "
                         r"does not have it")
        self.assertEqual(lab.swaks(port, tls=False, timeout=40).returncode, 0,
                         "the running config no longer serves\n" + proxy.describe())


if __name__ == "__main__":
    unittest.main()
