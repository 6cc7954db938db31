"""HTTPS listeners (protocol = "https", README, "HTTPS") against a TLS-1.0-only legacy IIS
stand-in (legacy_iis.py): connection pinning shown by an NTLM-style handshake that only succeeds
on one TCP connection, long-held ActiveSync requests against request_timeout and the idle
timeout, 50 MiB streamed both ways with the proxy's memory watched, smuggling refusals, allow_paths,
502, the TLS floor, ALPN, and the http.request audit records.

One proxy process runs three listeners: "https-a" (idle 2 s, request_timeout 30 s), "https-b"
(request_timeout 2 s) and "https-down" (its backend port has nobody listening)."""

import base64
import hashlib
import http.client
import json
import os
import socket
import ssl
import subprocess
import threading
import time
import unittest
import warnings

import lab
import legacy_iis
from legacy_iis import ntlm_authenticate, ntlm_negotiate

MiB = 1024 * 1024
BIG = 50 * MiB


def setUpModule():
    lab.shared_certs()


def https_listener(name, port, backend_port, idle="2s", request_timeout="30s"):
    return {
        "name": name, "protocol": "https", "listen": f"127.0.0.1:{port}", "tls": "implicit",
        "timeouts": {"handshake": "5s", "idle": idle, "connect": "2s"},
        "backend": {"address": [f"127.0.0.1:{backend_port}"], "tls": "implicit",
                    "tls_profile": "legacy", "verify": "none"},
        "http": {"request_timeout": request_timeout, "forwarded_headers": True},
    }


def vm_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


class HttpsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.certs = lab.shared_certs()
        cls.ca = os.path.join(cls.certs, "ca.crt")
        cls.iis = legacy_iis.LegacyIis(cls.certs).start()
        cls.addClassCleanup(cls.iis.stop)
        cls.port_a, cls.port_b, cls.port_down = lab.free_port(), lab.free_port(), lab.free_port()
        cls.port_pinned = lab.free_port()
        nobody = lab.free_port()
        pinned = https_listener("https-pinned", cls.port_pinned, cls.iis.port)
        pinned["backend"].update({"verify": "pin", "pin_sha256": ["00" * 32]})
        cls.proxy = lab.Tlsbridge(
            [https_listener("https-a", cls.port_a, cls.iis.port),
             https_listener("https-b", cls.port_b, cls.iis.port, idle="30s", request_timeout="2s"),
             https_listener("https-down", cls.port_down, nobody), pinned],
            [lab.server_pair(cls.certs)])
        cls.addClassCleanup(cls.proxy.cleanup)
        cls.proxy.start()

    # -- clients -------------------------------------------------------------------------------

    def context(self):
        ctx = ssl.create_default_context(cafile=self.ca)
        ctx.set_alpn_protocols(["h2", "http/1.1"])
        return ctx

    def connection(self, port=None, timeout=30):
        conn = http.client.HTTPSConnection("localhost", port or self.port_a, timeout=timeout,
                                           context=self.context())
        self.addCleanup(conn.close)
        return conn

    def request(self, conn, method, path, body=None, headers=None):
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response, response.read()

    def raw(self, wire, port=None, timeout=10):
        """Sends wire over TLS to the proxy; returns every byte until it closes."""
        with socket.create_connection(("127.0.0.1", port or self.port_a), timeout=timeout) as s:
            with self.context().wrap_socket(s, server_hostname="localhost") as t:
                t.sendall(wire)
                data = b""
                try:
                    while True:
                        chunk = t.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                except (ssl.SSLError, ConnectionError, socket.timeout):
                    pass
                return data

    def curl(self, *args, port=None):
        url_port = port or self.port_a
        argv = ["curl", "-sS", "--http1.1", "--cacert", self.ca, "--max-time", "30"]
        argv += [a.replace("PORT", str(url_port)) for a in args]
        return lab.run(argv, timeout=60)

    def http_records(self, where, n=1, timeout=10):
        def matching():
            return [r for r in self.proxy.records("http.request") if where(r)]
        lab.wait_until(lambda: len(matching()) >= n, timeout, interval=0.1)
        return matching()

    # -- pinning -------------------------------------------------------------------------------

    def test_ntlm_handshake_on_one_connection(self):
        conn = self.connection()
        first, _ = self.request(conn, "GET", "/EWS/Exchange.asmx")
        self.assertEqual(first.status, 401)
        self.assertEqual(first.getheader("WWW-Authenticate"), "NTLM")
        type1 = "NTLM " + base64.b64encode(ntlm_negotiate()).decode()
        challenge, _ = self.request(conn, "GET", "/EWS/Exchange.asmx",
                                    headers={"Authorization": type1})
        self.assertEqual(challenge.status, 401)
        self.assertTrue(challenge.getheader("WWW-Authenticate", "").startswith("NTLM T"))
        type3 = "NTLM " + base64.b64encode(ntlm_authenticate("CONTOSO", "jdoe", "PHONE")).decode()
        done, body = self.request(conn, "POST", "/EWS/Exchange.asmx", body=b"<soap/>",
                                  headers={"Authorization": type3})
        self.assertEqual(done.status, 200, body + self.proxy.describe().encode())
        seen = self.iis.requests_for("/EWS/Exchange.asmx")[-3:]
        self.assertEqual(len({r["connection"] for r in seen}), 1, seen)

        record = self.http_records(lambda r: r.get("auth", {}).get("user") == "jdoe")[-1]
        self.assertEqual(record["auth"], {"scheme": "NTLM", "ntlm_message": 3, "user": "jdoe",
                                          "domain": "CONTOSO"}, record)
        self.assertEqual(record["status"], 200)
        self.assertEqual(record["method"], "POST")
        self.assertEqual(record["path"], "/EWS/Exchange.asmx")

    def test_ntlm_type3_on_a_second_connection_fails(self):
        one, two = self.connection(), self.connection()
        type1 = "NTLM " + base64.b64encode(ntlm_negotiate()).decode()
        challenge, _ = self.request(one, "GET", "/EWS/Exchange.asmx",
                                    headers={"Authorization": type1})
        self.assertEqual(challenge.status, 401)
        type3 = "NTLM " + base64.b64encode(ntlm_authenticate("CONTOSO", "jdoe", "PHONE")).decode()
        moved, _ = self.request(two, "GET", "/EWS/Exchange.asmx", headers={"Authorization": type3})
        self.assertEqual(moved.status, 401, "a type 3 on another client connection must reach "
                         "another backend connection, where no challenge was issued")

    def test_curl_handshake_on_one_connection_and_across_two(self):
        type1 = "Authorization: NTLM " + base64.b64encode(ntlm_negotiate()).decode()
        type3 = ("Authorization: NTLM " +
                 base64.b64encode(ntlm_authenticate("CONTOSO", "curl", "WS")).decode())
        url = "https://localhost:PORT/EWS/Exchange.asmx"
        # --next keeps curl's connection: both requests travel on one TCP connection.
        same = self.curl("-o", "/dev/null", "-w", "%{http_code} %{num_connects}\\n", "-H", type1,
                         url, "--next", "--http1.1", "--cacert", self.ca, "-o", "/dev/null", "-w",
                         "%{http_code} %{num_connects}\\n", "-H", type3, url)
        self.assertEqual(same.stdout.split(), ["401", "1", "200", "0"], same.stderr)
        first = self.curl("-o", "/dev/null", "-w", "%{http_code}", "-H", type1, url)
        second = self.curl("-o", "/dev/null", "-w", "%{http_code}", "-H", type3, url)
        self.assertEqual((first.stdout, second.stdout), ("401", "401"))

    # -- timeouts ------------------------------------------------------------------------------

    def test_ping_held_5s_outlives_the_2s_idle_timeout(self):
        conn = self.connection()
        start = time.monotonic()
        response, body = self.request(
            conn, "POST", "/Microsoft-Server-ActiveSync?Cmd=Ping&User=jdoe&DeviceId=ABC123"
            "&DeviceType=iPhone", body=b"\x03\x01j\x00", headers={"X-Test-Hold": "5"})
        elapsed = time.monotonic() - start
        self.assertEqual(response.status, 200, body)
        self.assertGreaterEqual(elapsed, 4.9)
        record = self.http_records(lambda r: r.get("activesync", {}).get("cmd") == "Ping")[-1]
        self.assertEqual(record["activesync"], {"form": "plain", "cmd": "Ping", "user": "jdoe",
                                                "device_id": "ABC123", "device_type": "iPhone"})
        self.assertGreaterEqual(record["duration_ms"], 4900)
        self.assertEqual(record["path"], "/Microsoft-Server-ActiveSync")
        # The same connection, left idle past 2 s, is closed: the idle timeout was real.
        time.sleep(3)
        with self.assertRaises((http.client.HTTPException, ConnectionError, ssl.SSLError)):
            self.request(conn, "GET", "/owa/")

    def test_request_timeout_bounds_the_hold_with_504(self):
        conn = self.connection(self.port_b)
        start = time.monotonic()
        response, _ = self.request(conn, "POST", "/Microsoft-Server-ActiveSync?Cmd=Ping",
                                   body=b"", headers={"X-Test-Hold": "5"})
        elapsed = time.monotonic() - start
        self.assertEqual(response.status, 504)
        self.assertLess(elapsed, 4.5)
        self.assertGreaterEqual(elapsed, 1.9)
        record = self.http_records(lambda r: r.get("status") == 504)[-1]
        self.assertEqual(record["origin"], "proxy")

    # -- streaming -----------------------------------------------------------------------------

    def test_50mib_upload_streams(self):
        pid = self.proxy.proc.pid
        before = vm_kib(pid, "VmHWM")
        digest = hashlib.sha256()

        def body():
            for block in legacy_iis.download_bytes(BIG):
                digest.update(block)
                yield block

        conn = self.connection(timeout=120)
        response, data = self.request(conn, "POST", "/EWS/upload", body=body(),
                                      headers={"Content-Length": str(BIG)})
        self.assertEqual(response.status, 200, data)
        result = json.loads(data)
        self.assertEqual(result, {"sha256": digest.hexdigest(), "length": BIG})
        growth = vm_kib(pid, "VmHWM") - before
        print(f"\n50 MiB upload: proxy VmHWM {before} KiB -> +{growth} KiB")
        if not lab.SANITIZED:
            self.assertLess(growth, 40 * 1024, "the proxy's peak RSS grew with the body")

    def test_50mib_chunked_download_streams(self):
        pid = self.proxy.proc.pid
        before = vm_kib(pid, "VmHWM")
        expected = hashlib.sha256()
        for block in legacy_iis.download_bytes(BIG):
            expected.update(block)
        conn = self.connection(timeout=120)
        conn.request("GET", f"/EWS/download?size={BIG}")
        response = conn.getresponse()
        self.assertEqual(response.getheader("Transfer-Encoding"), "chunked")
        got, length = hashlib.sha256(), 0
        while True:
            block = response.read(256 * 1024)
            if not block:
                break
            got.update(block)
            length += len(block)
        self.assertEqual(length, BIG)
        self.assertEqual(got.hexdigest(), expected.hexdigest())
        growth = vm_kib(pid, "VmHWM") - before
        print(f"\n50 MiB chunked download: proxy VmHWM {before} KiB -> +{growth} KiB")
        if not lab.SANITIZED:
            self.assertLess(growth, 40 * 1024, "the proxy's peak RSS grew with the body")
        record = self.http_records(lambda r: r.get("path") == "/EWS/download")[-1]
        self.assertGreater(record["bytes_out"], BIG)

    def test_chunked_upload_passes_framing(self):
        blocks = [b"a" * 1000, b"b" * 70000, b"c"]
        conn = self.connection()
        conn.request("POST", "/EWS/upload", body=iter(blocks), encode_chunked=True)
        response = conn.getresponse()
        data = response.read()
        self.assertEqual(response.status, 200, data)
        self.assertEqual(json.loads(data)["sha256"], hashlib.sha256(b"".join(blocks)).hexdigest())

    # -- safety --------------------------------------------------------------------------------

    def test_smuggling_gets_400_and_never_reaches_the_backend(self):
        cases = {
            "cl-te": "POST /EWS/smuggle-cl-te HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "te-cl": "POST /EWS/smuggle-te-cl HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                     "Content-Length: 5\r\n\r\n0\r\n\r\n",
            "two-cl": "POST /EWS/smuggle-two-cl HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
                      "Content-Length: 6\r\n\r\nabcdef",
            "obs-fold": "GET /EWS/smuggle-fold HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n",
            "two-host": "GET /EWS/smuggle-host HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            "te-gzip": "POST /EWS/smuggle-gzip HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, "
                       "chunked\r\n\r\n0\r\n\r\n",
            "bad-chunk": "POST /EWS/smuggle-chunk HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: "
                         "chunked\r\n\r\nzz\r\n",
        }
        for name, wire in cases.items():
            with self.subTest(name):
                reply = self.raw(wire.encode())
                self.assertTrue(reply.startswith(b"HTTP/1.1 400 Bad Request\r\n"), reply)
        # The bad chunk's head was forwarded (its framing only failed later); none of the
        # others arrived.
        arrived = [r["path"] for r in self.iis.requests_for("/EWS/smuggle")]
        self.assertLessEqual(set(arrived), {"/EWS/smuggle-chunk"}, arrived)

    def test_paths_outside_allow_paths_get_404(self):
        conn = self.connection()
        for path in ("/foo", "/EWS/../admin", "/EWS/%2e%2e/admin", "/ews%2f..%2fadmin"):
            with self.subTest(path):
                response, _ = self.request(conn, "GET", path)
                self.assertEqual(response.status, 404)
        curl = self.curl("--path-as-is", "-o", "/dev/null", "-w", "%{http_code}",
                         "https://localhost:PORT/EWS/../admin")
        self.assertEqual(curl.stdout, "404", curl.stderr)
        allowed, _ = self.request(conn, "GET", "/ews/exchange.asmx")  # case-insensitive
        self.assertEqual(allowed.status, 401)
        paths = [r["path"] for r in self.iis.requests]
        self.assertFalse([p for p in paths if "admin" in p or p.startswith("/foo")], paths)

    def test_forwarded_headers_replace_the_clients(self):
        conn = self.connection()
        response, body = self.request(conn, "GET", "/EWS/headers",
                                      headers={"X-Forwarded-For": "10.66.66.66",
                                               "X-Forwarded-Proto": "http"})
        self.assertEqual(response.status, 200)
        seen = json.loads(body)
        self.assertEqual(seen.get("X-Forwarded-For"), "127.0.0.1", seen)
        self.assertEqual(seen.get("X-Forwarded-Proto"), "https", seen)

    def test_backend_down_gives_502(self):
        conn = self.connection(self.port_down)
        response, _ = self.request(conn, "GET", "/owa/")
        self.assertEqual(response.status, 502)
        conns = self.proxy.wait_for_conn_records(1, listener="https-down")
        self.assertEqual(conns[-1]["outcome"], "backend_unavailable", conns[-1])

    def test_backend_refused_by_policy_gives_502_recorded_as_refused_policy(self):
        # The IIS stand-in's certificate matches no pin: the on-demand back leg is refused by
        # policy, which the conn record must say (not "backend_unavailable"). The same IIS
        # answers through https-a: the refusal is the policy's, not a dead backend.
        served, _ = self.request(self.connection(), "GET", "/owa/")
        self.assertNotEqual(served.status, 502)
        response, _ = self.request(self.connection(self.port_pinned), "GET", "/owa/")
        self.assertEqual(response.status, 502)
        conns = self.proxy.wait_for_conn_records(1, listener="https-pinned")
        self.assertEqual(conns[-1]["outcome"], "refused_policy", conns[-1])
        self.assertIn("pin_sha256", conns[-1]["reason"], conns[-1])

    # -- TLS -----------------------------------------------------------------------------------

    def test_tls11_refused_tls12_accepted(self):
        old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        old.load_verify_locations(self.ca)
        old.set_ciphers("DEFAULT:@SECLEVEL=0")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            old.minimum_version = ssl.TLSVersion.TLSv1_1
            old.maximum_version = ssl.TLSVersion.TLSv1_1
        with socket.create_connection(("127.0.0.1", self.port_a), timeout=10) as s:
            with self.assertRaises((ssl.SSLError, ConnectionError)):
                old.wrap_socket(s, server_hostname="localhost")
        modern = ssl.create_default_context(cafile=self.ca)
        modern.maximum_version = ssl.TLSVersion.TLSv1_2
        conn = http.client.HTTPSConnection("localhost", self.port_a, timeout=10, context=modern)
        self.addCleanup(conn.close)
        response, _ = self.request(conn, "GET", "/owa/")
        self.assertEqual(response.status, 200)
        self.assertEqual(conn.sock.version(), "TLSv1.2")

    def test_alpn_http11_and_conn_record(self):
        with socket.create_connection(("127.0.0.1", self.port_a), timeout=10) as s:
            with self.context().wrap_socket(s, server_hostname="localhost") as t:
                self.assertEqual(t.selected_alpn_protocol(), "http/1.1")
                address = "%s:%d" % t.getsockname()[:2]
                t.sendall(b"GET /owa/ HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                while t.recv(65536):
                    pass
        conns = self.proxy.wait_for_conn_records(1, where=lambda r: r.get("client") == address)
        self.assertEqual(len(conns), 1, self.proxy.describe())
        self.assertEqual(conns[0]["front"]["alpn"], "http/1.1")
        self.assertIn(conns[0]["front"]["tls"], ("TLSv1.2", "TLSv1.3"))
        self.assertEqual(conns[0]["backend"]["tls"], "TLSv1", conns[0])

    # -- audit ---------------------------------------------------------------------------------

    def test_activesync_base64_query_and_basic_user_in_records(self):
        device_id = bytes.fromhex("0123456789abcdef0123456789abcdef")
        blob = (bytes([141, 0]) + b"\x09\x04" + bytes([len(device_id)]) + device_id +
                b"\x04" + b"\x01\x02\x03\x04" + bytes([7]) + b"Android" +
                bytes([8, 12]) + b"jdoe@contoso")
        query = base64.b64encode(blob).decode().replace("+", "%2B").replace("/", "%2F").replace(
            "=", "%3D")
        basic = "Basic " + base64.b64encode(b"CONTOSO\\jdoe:secret").decode()
        conn = self.connection()
        response, _ = self.request(conn, "POST", "/Microsoft-Server-ActiveSync?" + query,
                                   body=b"", headers={"Authorization": basic})
        self.assertEqual(response.status, 200)
        record = self.http_records(
            lambda r: r.get("activesync", {}).get("form") == "base64")[-1]
        self.assertEqual(record["activesync"], {
            "form": "base64", "cmd": "Sync", "user": "jdoe@contoso",
            "device_id": "0123456789ABCDEF0123456789ABCDEF", "device_type": "Android",
            "protocol_version": "14.1"}, record)
        self.assertEqual(record["auth"], {"scheme": "Basic", "user": "CONTOSO\\jdoe"})
        for r in self.proxy.records("http.request"):
            for key in ("event", "conn", "listener", "method", "path", "status", "bytes_in",
                        "bytes_out", "duration_ms", "ts"):
                self.assertIn(key, r, r)
        with open(self.proxy.audit_path) as audit:
            self.assertNotIn("secret", audit.read())


if __name__ == "__main__":
    unittest.main()
