"""Differential test of the PROXY protocol header through the real proxy (issue 12: "the proxy
and the backend disagree about where something ends"). For a PROXY header that is where the
client's own bytes begin and who the client is. A few hundred generated headers — valid and
invalid v1 and v2, some split across writes — are sent from a trusted proxy, each followed by
`NOOP m<N>` and `QUIT`. An independent strict reader written here from HAProxy's
proxy-protocol.txt (`reference`) decides each one; the proxy must agree:

* accepted by the reference: the client is served, the byte-logging backend's first line on that
  connection is exactly `NOOP m<N>` (nothing of the header leaked, nothing after it eaten), and
  the audit `client` is the header's source address (the real peer for UNKNOWN/LOCAL/UNSPEC);
* refused by the reference: no greeting, outcome `denied`, and `m<N>` never reaches the backend.
"""

import ipaddress
import random
import socket
import struct
import threading
import time
import unittest

import lab

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"
V1_MAX = 107
V2_MAX = 536  # the proxy's documented bound on a whole v2 header


# ---- the reference reader --------------------------------------------------------------------

def ref_ipv4(text):
    parts = text.split(".")
    if len(parts) != 4:
        return None
    out = []
    for p in parts:
        if not p or len(p) > 3 or not all("0" <= c <= "9" for c in p) or (len(p) > 1 and p[0] == "0"):
            return None
        if int(p) > 255:
            return None
        out.append(int(p))
    return bytes(out)


def ref_groups(part, v4_tail):
    if part == "":
        return []
    pieces = part.split(":")
    out = []
    for i, g in enumerate(pieces):
        if i == len(pieces) - 1 and v4_tail and "." in g:
            v4 = ref_ipv4(g)
            if v4 is None:
                return None
            out += [v4[0] << 8 | v4[1], v4[2] << 8 | v4[3]]
            continue
        if not g or len(g) > 4 or not all(c in "0123456789abcdefABCDEF" for c in g):
            return None
        out.append(int(g, 16))
    return out


def ref_ipv6(text):
    if "::" in text:
        if text.count("::") != 1 or ":::" in text:
            return None
        head_text, tail_text = text.split("::")
        head, tail = ref_groups(head_text, False), ref_groups(tail_text, True)
        if head is None or tail is None or len(head) + len(tail) > 7:
            return None
        groups = head + [0] * (8 - len(head) - len(tail)) + tail
    else:
        groups = ref_groups(text, True)
        if groups is None or len(groups) != 8:
            return None
    return b"".join(struct.pack("!H", g) for g in groups)


def ref_port(text):
    if not text or len(text) > 5 or not all("0" <= c <= "9" for c in text):
        return None
    if len(text) > 1 and text[0] == "0":
        return None
    value = int(text)
    return value if value <= 65535 else None


def reference(data):
    """("done", consumed, (ip16, port) or None) | ("error",) | ("need_more",)"""
    if data.startswith(b"PROXY "):
        window = data[:V1_MAX]
        ends = [i for i in (window.find(b"\r"), window.find(b"\n")) if i >= 0]
        if not ends:
            return ("error",) if len(data) >= V1_MAX else ("need_more",)
        eol = min(ends)
        if data[eol:eol + 1] == b"\n" or eol + 2 > V1_MAX:
            return ("error",)
        if eol + 1 == len(data):
            return ("need_more",)
        if data[eol + 1:eol + 2] != b"\n":
            return ("error",)
        fields = data[6:eol].split(b" ")
        if fields[0] == b"UNKNOWN":
            return ("done", eol + 2, None)
        if len(fields) != 5 or fields[0] not in (b"TCP4", b"TCP6"):
            return ("error",)
        try:
            texts = [f.decode("ascii") for f in fields]
        except UnicodeDecodeError:
            return ("error",)
        parse = ref_ipv6 if texts[0] == "TCP6" else ref_ipv4
        src, dst = parse(texts[1]), parse(texts[2])
        sport, dport = ref_port(texts[3]), ref_port(texts[4])
        if None in (src, dst, sport, dport):
            return ("error",)
        if len(src) == 4:
            src = b"\x00" * 10 + b"\xff\xff" + src
        return ("done", eol + 2, (src, sport))
    if data.startswith(V2_SIG):
        if len(data) < 16:
            return ("need_more",)
        version, command = data[12] >> 4, data[12] & 0x0F
        family, transport = data[13] >> 4, data[13] & 0x0F
        length = struct.unpack("!H", data[14:16])[0]
        if version != 2 or command > 1 or (command == 1 and (family > 3 or transport > 2)):
            return ("error",)
        if 16 + length > V2_MAX:
            return ("error",)
        tcp4 = command == 1 and data[13] == 0x11
        tcp6 = command == 1 and data[13] == 0x21
        if (tcp4 and length < 12) or (tcp6 and length < 36):
            return ("error",)
        if len(data) < 16 + length:
            return ("need_more",)
        if tcp4:
            return ("done", 16 + length,
                    (b"\x00" * 10 + b"\xff\xff" + data[16:20], struct.unpack("!H", data[24:26])[0]))
        if tcp6:
            return ("done", 16 + length, (data[16:32], struct.unpack("!H", data[48:50])[0]))
        return ("done", 16 + length, None)
    return ("error",)


# ---- generated headers -----------------------------------------------------------------------

GOOD_V4 = ["203.0.113.7", "0.0.0.0", "255.255.255.255", "10.1.2.3", "198.51.100.250"]
BAD_V4 = ["010.1.2.3", "256.1.2.3", "1.2.3", "1.2.3.4.5", "1.2.3.", "1..2.3", "0x1.2.3.4",
          " 1.2.3.4", "1.2.3.4 "]
GOOD_V6 = ["2001:db8::1", "::1", "::", "2001:DB8:0:0:8:800:200C:417A", "::ffff:198.51.100.7",
           "fe80::", "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8", "2001:db8:1:2:1234::1",
           "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255", "1:2:3:4:5:6:1.2.3.4", "0001::"]
BAD_V6 = ["1::2::3", "1:2:3:4:5:6:7::8", "12345::", "fe80::1%lo", "::g", ":1::", "1:2:3:4:5:6:7",
          "1.2.3.4::", "::1.2.3", "::ffff:01.2.3.4", "1:2:3:4:5:6:7:8:9", ":::"]
GOOD_PORTS = ["0", "1", "25", "65535", "40001"]
BAD_PORTS = ["65536", "025", "", "-1", "99999", "1a", "+1"]


def v1_variants(rng):
    out = []
    for _ in range(70):
        ipv6 = rng.random() < 0.5
        good, bad = (GOOD_V6, BAD_V6) if ipv6 else (GOOD_V4, BAD_V4)
        fields = ["TCP6" if ipv6 else "TCP4", rng.choice(good), rng.choice(good),
                  rng.choice(GOOD_PORTS), rng.choice(GOOD_PORTS)]
        sep, end = " ", "\r\n"
        mutation = rng.randrange(12)
        if mutation == 1:
            fields[rng.choice([1, 2])] = rng.choice(bad)
        elif mutation == 2:
            fields[rng.choice([3, 4])] = rng.choice(BAD_PORTS)
        elif mutation == 3:
            fields[1] = rng.choice(GOOD_V4 if ipv6 else GOOD_V6)  # the other family
        elif mutation == 4:
            fields[0] = rng.choice(["TCP5", "tcp4", "UDP4", "TCP", "UNKNOWN"])
        elif mutation == 5:
            sep = rng.choice(["  ", "\t"])
        elif mutation == 6:
            end = rng.choice(["\n", "\r", " \r\n", "\r\r\n"])
        elif mutation == 7:
            fields = ["UNKNOWN"] + ([] if rng.random() < 0.3 else
                                    [rng.choice(["x" * rng.randrange(80, 100), "junk here"])])
        elif mutation == 8:
            fields.append(rng.choice(["extra", ""]))
        elif mutation == 9:
            fields = fields[:rng.randrange(1, 5)]
        header = ("PROXY " + sep.join(fields) + end).encode()
        if mutation == 10:
            header = b"proxy " + header[6:]
        out.append(header)
    return out


def v2_variants(rng):
    out = []
    for _ in range(70):
        command, family = 1, rng.choice([0x11, 0x21])
        if family == 0x11:
            body = (ipaddress.IPv4Address(rng.choice(GOOD_V4)).packed
                    + ipaddress.IPv4Address(rng.choice(GOOD_V4)).packed)
        else:
            body = (ipaddress.IPv6Address(rng.choice(GOOD_V6)).packed
                    + ipaddress.IPv6Address(rng.choice(GOOD_V6)).packed)
        body += struct.pack("!HH", rng.randrange(65536), rng.randrange(65536))
        version = 2
        mutation = rng.randrange(10)
        if mutation == 1:
            version = rng.choice([0, 1, 3, 15])
        elif mutation == 2:
            command = rng.randrange(2, 16)
        elif mutation == 3:
            family = rng.choice([0x00, 0x12, 0x22, 0x31, 0x32, 0x13, 0x41, 0x23, 0xF1])
            if family == 0x31 or family == 0x32:
                body = bytes(216)
        elif mutation == 4:
            body = body[:rng.randrange(len(body))]  # too short for the family's addresses
        elif mutation == 5:
            command = 0  # LOCAL: addresses ignored
        elif mutation == 6:
            body += bytes(rng.randrange(256) for _ in range(rng.randrange(1, 60)))  # TLVs
        elif mutation == 7:
            body += bytes(rng.choice([V2_MAX - 16 - len(body), V2_MAX - 15 - len(body)]))
        header = (V2_SIG + bytes([version << 4 | command, family])
                  + struct.pack("!H", len(body)) + body)
        out.append(header)
    return out


# ---- the byte-logging backend ----------------------------------------------------------------

class LineLoggingSmtpBackend:
    """Greets, answers 250 to every line (221 to QUIT), records every line it received."""

    def __init__(self):
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(64)
        self.port = self.server.getsockname()[1]
        self.lines = []  # (connection number, line)
        self.lock = threading.Lock()
        self.stopped = False
        self.thread = threading.Thread(target=self.accept_loop, daemon=True)
        self.thread.start()

    def accept_loop(self):
        number = 0
        while not self.stopped:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            number += 1
            threading.Thread(target=self.serve, args=(conn, number), daemon=True).start()

    def serve(self, conn, number):
        conn.settimeout(30)
        buf = b""
        try:
            conn.sendall(b"220 byte-logger ESMTP\r\n")
            while True:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                buf += chunk
                while b"\r\n" in buf:
                    line, buf = buf.split(b"\r\n", 1)
                    with self.lock:
                        self.lines.append((number, line))
                    if line.upper().startswith(b"QUIT"):
                        conn.sendall(b"221 bye\r\n")
                        return
                    conn.sendall(b"250 ok\r\n")
        except OSError:
            return
        finally:
            conn.close()

    def first_lines(self):
        with self.lock:
            first = {}
            for number, line in self.lines:
                first.setdefault(number, line)
            return list(first.values()), [line for _, line in self.lines]

    def stop(self):
        self.stopped = True
        self.server.close()


class ProxyHeaderDifferentialTest(unittest.TestCase):
    def test_generated_headers_agree_with_a_strict_reader(self):
        backend = LineLoggingSmtpBackend()
        self.addCleanup(backend.stop)
        port = lab.free_port()
        listener = lab.smtp_listener(
            port, backend.port, tls="none", backend_tls="none", require_tls=False,
            proxy_protocol=True, trusted_proxies=["127.0.0.1/32"], max_connections_per_ip=1000,
            timeouts={"handshake": "2s", "idle": "30s", "connect": "5s"})
        certs = lab.shared_certs()
        proxy = lab.Tlsbridge([listener], [lab.server_pair(certs)])
        self.addCleanup(proxy.cleanup)
        proxy.start()

        rng = random.Random(12)
        headers = v1_variants(rng) + v2_variants(rng)
        cases = []
        deadline = time.monotonic() + 90
        for n, header in enumerate(headers):
            self.assertLess(time.monotonic(), deadline, "bounded in time")
            marker = b"NOOP m%d" % n
            data = header + marker + b"\r\nQUIT\r\n"
            want = reference(data)
            self.assertNotEqual(want[0], "need_more", f"generator made an incomplete case {data!r}")
            if want[0] == "done":
                # The generator never puts a line end inside a header, so an accepted header ends
                # where the generator ended it.
                self.assertEqual(want[1], len(header), f"case {data!r}")
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            local = "%s:%d" % sock.getsockname()
            try:
                try:
                    if n % 3 == 0 and len(header) > 2:  # split inside the header
                        cut = rng.randrange(1, len(header))
                        sock.sendall(data[:cut])
                        time.sleep(0.02)
                        sock.sendall(data[cut:])
                    else:
                        sock.sendall(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # refused at the first byte that settles it, before the rest was sent
                received = b""
                while True:
                    try:
                        chunk = sock.recv(4096)
                    except (ConnectionResetError, socket.timeout):
                        break
                    if not chunk:
                        break
                    received += chunk
            finally:
                sock.close()
            cases.append((n, data, want, local, received))

        records = proxy.wait_for_conn_records(
            len(cases), timeout=30, where=lambda r: r.get("client") not in proxy.probe_clients)
        # A client port can come round again within the run (the proxy closes first, so the
        # client keeps no TIME_WAIT): each address's records are taken in order, one per case.
        by_peer = {}
        for r in records:
            by_peer.setdefault(r.get("proxy") or r["client"], []).append(r)
        first_lines, all_lines = backend.first_lines()
        accepted = refused = 0
        for n, data, want, local, received in cases:
            with self.subTest(case=n, data=data):
                same_peer = by_peer.get(local) or []
                record = same_peer.pop(0) if same_peer else None
                self.assertIsNotNone(record, f"no conn record for {local}")
                marker = b"NOOP m%d" % n
                if want[0] == "done":
                    accepted += 1
                    self.assertTrue(received.startswith(b"220"), received)
                    self.assertIn(marker, first_lines,
                                  "the backend's first line is the byte after the header")
                    self.assertEqual(record["outcome"], "ok", record)
                    if want[2] is None:
                        self.assertEqual(record["client"], local, record)
                    else:
                        host, _, sport = record["client"].rpartition(":")
                        address = ipaddress.ip_address(host.strip("[]"))
                        packed = (address.packed if address.version == 6
                                  else b"\x00" * 10 + b"\xff\xff" + address.packed)
                        self.assertEqual((packed, int(sport)), want[2], record)
                else:
                    refused += 1
                    self.assertFalse(received.startswith(b"220"), received)
                    self.assertEqual(record["outcome"], "denied", record)
                    self.assertIn("PROXY", record["reason"])
                    self.assertNotIn(marker, all_lines, "a refused header's bytes never relayed")
        # Both sides of the oracle were exercised.
        self.assertGreater(accepted, 30)
        self.assertGreater(refused, 30)


if __name__ == "__main__":
    unittest.main()
