"""Fixtures for the certificate-renewal tests (test_privileges.py, test_cert_watch.py): leaves
issued by the test PKI's root with a fresh serial (what a renewal hands over), the serial the proxy
serves (openssl s_client), an echo backend behind a raw `tls` listener, and /metrics samples."""

import os
import re
import shutil
import socket
import threading
import unittest
import urllib.request

import lab


def issue_leaf(certs, directory, name):
    """A new P-256 leaf for localhost/127.0.0.1 signed by certs/ca, written to
    directory/name.pem and directory/name.key (mode 0644 / 0600). Returns (cert, key, serial)
    with serial as `openssl x509 -serial` prints it (upper-case hex)."""
    cert = os.path.join(directory, name + ".pem")
    key = os.path.join(directory, name + ".key")
    csr = os.path.join(directory, name + ".csr")
    ext = os.path.join(directory, name + ".ext")
    lab.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-out", key], check=True)
    lab.run(["openssl", "req", "-new", "-key", key, "-subj", f"/O=tlsbridge test/CN={name}",
             "-out", csr], check=True)
    with open(ext, "w") as f:
        f.write("basicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n"
                "subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    lab.run(["openssl", "x509", "-req", "-in", csr, "-CA", f"{certs}/ca.crt",
             "-CAkey", f"{certs}/ca.key", "-set_serial", "0x" + os.urandom(8).hex(),
             "-days", "30", "-sha256", "-extfile", ext, "-out", cert], check=True)
    os.remove(csr)
    os.remove(ext)
    os.chmod(key, 0o600)
    return cert, key, file_serial(cert)


def file_serial(cert):
    out = lab.run(["openssl", "x509", "-noout", "-serial", "-in", cert], check=True).stdout
    return out.strip().split("=", 1)[1]


def served_serial(port):
    """The serial of the leaf the proxy presents on an implicit-TLS port (None when no handshake)."""
    hello = lab.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}"], timeout=10)
    match = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----\n",
                      hello.stdout, re.S)
    if not match:
        return None
    out = lab.run(["openssl", "x509", "-noout", "-serial"],
                  input_bytes=match.group(0).encode()).stdout
    return out.strip().split("=", 1)[1] if "=" in out else None


def own_key(path, group, mode):
    """chown root:group and chmod, as an operator lays out a key."""
    shutil.chown(path, "root", group)
    os.chmod(path, mode)


class EchoBackend:
    """A plaintext TCP backend that sends back every byte it gets (a thread per connection)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    @staticmethod
    def _echo(conn):
        conn.settimeout(15)
        with conn:
            try:
                while data := conn.recv(4096):
                    conn.sendall(data)
            except OSError:
                pass

    def stop(self):
        self.sock.close()


def tls_listener(port, backend_port, name="front"):
    """A raw `tls` listener: implicit TLS on 127.0.0.1:port, plaintext to the echo backend."""
    return {"name": name, "protocol": "tls", "listen": f"127.0.0.1:{port}", "tls": "implicit",
            "backend": {"address": [f"127.0.0.1:{backend_port}"], "tls": "none"}}


def echo_through(port, certs, payload=b"ping\n"):
    """The bytes that come back through the proxy's TLS port from the echo backend."""
    context = lab.client_context(f"{certs}/ca.crt")
    context.check_hostname = False
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw) as tls:
            tls.sendall(payload)
            got = b""
            while len(got) < len(payload):
                chunk = tls.recv(4096)
                if not chunk:
                    break
                got += chunk
            return got


def metric(admin, name):
    """The value of an unlabelled sample (or the first sample whose line starts with name) from
    the proxy's /metrics, None when absent."""
    with urllib.request.urlopen(f"http://{admin}/metrics", timeout=10) as response:
        body = response.read().decode()
    for line in body.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return None


class RenewalTestCase(unittest.TestCase):
    """An echo backend for the class, a fresh key directory per test, and proxies with one raw
    `tls` listener, the given [[certs]] pair, an admin endpoint and extra [server] lines."""

    @classmethod
    def setUpClass(cls):
        cls.certs = lab.shared_certs()
        cls.backend = EchoBackend()
        cls.addClassCleanup(cls.backend.stop)

    def setUp(self):
        self.keys = lab.make_lab_dir("tlsbridge-keys.")
        self.addCleanup(lambda: lab.keep_lab() or shutil.rmtree(self.keys, True))

    def issue(self, name, group="nogroup", mode=0o640):
        """A new leaf in the key directory, its key laid out root:group mode."""
        cert, key, serial = issue_leaf(self.certs, self.keys, name)
        own_key(key, group, mode)
        return cert, key, serial

    def make_proxy(self, cert, key, server_lines):
        """(proxy, port, admin address), not started."""
        port, admin = lab.free_port(), f"127.0.0.1:{lab.free_port()}"
        proxy = lab.Tlsbridge([tls_listener(port, self.backend.port)], [(cert, key)], admin=admin)
        self.addCleanup(proxy.cleanup)
        original = proxy.config_text
        proxy.config_text = lambda: original().replace("[server]\n", "[server]\n" + server_lines, 1)
        return proxy, port, admin
