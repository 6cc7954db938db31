#!/usr/bin/env python3
"""Writes the hand-made seed inputs of tests/fuzz/corpus/<target>/seed-*: real SMTP dialogues
(an Exchange EHLO reply, STARTTLS with pipelined plaintext, DATA with bare LF, BDAT), configs
(conf/tlsbridge.toml and broken ones), PROXY protocol headers and DER certificates of the test
PKI (public certificates only, never keys). Inputs the fuzzer found (crash-*, regression-*) live
next to them and are not touched. Usage: tests/fuzz/make_seed_corpus.py [PKI_DIR]  (PKI_DIR from
tests/certs/make_test_certs.sh; without it the cert_evidence seeds are left as they are)."""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CORPUS = os.path.join(HERE, "corpus")


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("latin-1")
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


# --- line_framer: [limit-1][4 chunk-size bytes][stream] ---------------------------------------
def framer(name, limit, pattern, stream):
    write("line_framer", name, bytes([limit - 1]) + bytes(pattern) + stream.encode("latin-1"))


framer("commands", 64, [0, 5, 17, 3], "EHLO client.example\r\nMAIL FROM:<a@b>\r\nQUIT\r\n")
framer("at-limit-cr-split", 3, [3, 3, 3, 3], "abc\r\nabcd\r\nab\r\r\n")
framer("too-long-then-short", 8, [1, 2, 3, 4], "x" * 40 + "\r\nshort\r\n" + "y" * 20)
framer("bare-lf", 16, [7, 0, 0, 31], "one\ntwo\r\nthree\n\n\r\n")

# --- smtp_reply: a backend byte stream ---------------------------------------------------------
EXCHANGE_EHLO = (
    "250-mx.legacy.example Hello [127.0.0.1]\r\n250-SIZE 37748736\r\n250-PIPELINING\r\n"
    "250-DSN\r\n250-ENHANCEDSTATUSCODES\r\n250-STARTTLS\r\n250-X-ANONYMOUSTLS\r\n"
    "250-AUTH NTLM LOGIN\r\n250-X-EXPS GSSAPI NTLM\r\n250-8BITMIME\r\n250-BINARYMIME\r\n"
    "250-CHUNKING\r\n250-XEXCH50\r\n250-XRDST\r\n250 XSHADOW\r\n")
write("smtp_reply", "exchange-ehlo", EXCHANGE_EHLO)
write("smtp_reply", "dialogue",
      "220 mx.legacy.example Microsoft ESMTP MAIL Service ready\r\n" + EXCHANGE_EHLO +
      "250 2.1.0 Sender OK\r\n250 2.1.5 Recipient OK\r\n354 Start mail input\r\n"
      "250 2.6.0 <id@mx> Queued mail for delivery\r\n221 2.0.0 Bye\r\n")
write("smtp_reply", "bare-code-and-lf", "250\r\n220 ok\n354\r\n")
write("smtp_reply", "code-change", "250-a\r\n251 b\r\n")
write("smtp_reply", "garbage", "HTTP/1.1 400 Bad Request\r\n")
write("smtp_reply", "long-line", "250 " + "x" * 4092 + "\r\n250 " + "y" * 4093 + "\r\n")

# --- smtp_command: one command line -------------------------------------------------------------
for i, line in enumerate([
        "MAIL FROM:<alice@example.org> SIZE=42 BODY=8BITMIME", "mail from: alice@example.org",
        "RCPT TO:<bob@example.net> NOTIFY=NEVER", "rcpt to:<unterminated", "BDAT 1024 LAST",
        "BDAT 18446744073709551616", "bdat 0 last ", "EHLO client.example", "X-EXPS GSSAPI",
        "STARTTLS", "XEXCH50 10 2", ""]):
    write("smtp_command", "%02d" % i, line)

# --- data_scanner: [mode][chunk-1][data]; modes 0 reject, 1 normalize, 2 pass -----------------
for mode, mname in enumerate(["reject", "normalize", "pass"]):
    write("data_scanner", mname + "-plain",
          bytes([mode, 4]) + b"Subject: hi\r\n\r\nbody\r\n..dot-stuffed\r\n.\r\nQUIT\r\n")
    write("data_scanner", mname + "-bare-lf",
          bytes([mode, 0]) + b"a\n.\nMAIL FROM:<x@y>\r\nb\r\n.\r\n")
    write("data_scanner", mname + "-bare-cr",
          bytes([mode, 2]) + b"a\r.\r\nb\r\n.\rc\r\n.\r\n")
    write("data_scanner", mname + "-immediate-end", bytes([mode, 1]) + b".\r\n")

# --- smtp_session: [mode][line limit][held limit][pending limit] then events -------------------
# mode: front % 3 (0 starttls, 1 implicit, 2 none) | 0x04 require_tls off | bare-LF mode << 3
# events: 0 client raw, 1 backend raw (length byte + bytes), 2 client piece, 3 backend piece
# (index byte; client piece | 0x80 appends the injection marker after a STARTTLS line),
# 4 front TLS established, 5 client EOF, 6 backend EOF, 7 idle, 8 shutdown.
C = {"ehlo": 0, "helo": 1, "starttls": 2, "ehlo+starttls": 3, "mail": 4, "rcpt": 5, "data": 6,
     "body": 7, "smuggled": 8, "bare-cr": 9, "stuffed": 10, "bdat6": 11, "bdat0last": 12,
     "bdat5last": 13, "rset": 14, "noop": 15, "quit": 16, "auth": 17, "x-exps": 18,
     "xexch50": 19, "pipelined": 20, "dot": 21, "empty": 22, "starttls+ehlo": 23}
B = {"250": 0, "exchange-ehlo": 1, "250-host": 2, "354": 3, "queued": 4, "220": 5, "221": 6,
     "421": 7, "550": 8, "503": 9, "451": 10, "250-a": 11, "250 b": 12, "garbage": 13}


def script(name, mode, events, limits=(255, 255, 63)):
    out = bytearray([mode, *limits])
    for e in events:
        kind = e[0]
        if kind == "c":
            out += bytes([2, C[e[1]] | (0x80 if len(e) > 2 and e[2] else 0)])
        elif kind == "b":
            out += bytes([3, B[e[1]]])
        elif kind in ("craw", "braw"):
            data = e[1].encode("latin-1")
            assert len(data) < 256
            out += bytes([0 if kind == "craw" else 1, len(data)]) + data
        else:
            out += bytes([{"tls": 4, "ceof": 5, "beof": 6, "idle": 7, "shutdown": 8}[kind]])
    write("smtp_session", name, bytes(out))


transaction = [("c", "mail"), ("b", "250"), ("c", "rcpt"), ("b", "250"), ("c", "data"),
               ("b", "354"), ("c", "body"), ("b", "queued")]
script("starttls-dialogue", 0,
       [("c", "ehlo"), ("b", "exchange-ehlo"), ("c", "starttls", True), ("tls",), ("c", "ehlo"),
        ("b", "exchange-ehlo")] + transaction + [("c", "quit"), ("b", "221")])
script("starttls-pipelined-plaintext", 0,
       [("c", "ehlo"), ("b", "exchange-ehlo"),
        ("craw", "STARTTLS\r\nMAIL FROM:<evil@example>\r\nRCPT TO:<x@y>\r\n"),
        ("craw", "more plaintext while paused\r\n"), ("tls",), ("c", "mail"), ("c", "ehlo"),
        ("b", "exchange-ehlo")])
script("starttls-behind-noop-then-backend-closes", 0,
       [("c", "noop"), ("c", "starttls", True), ("b", "250"), ("b", "421"), ("tls",),
        ("c", "ehlo"), ("b", "250")])
script("require-tls-refusals", 0,
       [("c", "ehlo"), ("b", "exchange-ehlo"), ("c", "mail"), ("c", "auth"), ("c", "x-exps"),
        ("c", "xexch50"), ("c", "data"), ("c", "bdat6"), ("c", "quit"), ("b", "221")])
for lf_mode, lf_name in enumerate(["reject", "normalize", "pass"]):
    script("implicit-bare-lf-" + lf_name, 1 | (lf_mode << 3),
           [("c", "ehlo"), ("b", "exchange-ehlo"), ("c", "mail"), ("b", "250"), ("c", "rcpt"),
            ("b", "250"), ("c", "data"), ("b", "354"), ("c", "smuggled"), ("c", "bare-cr"),
            ("c", "stuffed"), ("b", "queued"), ("c", "quit"), ("b", "221")])
script("implicit-bdat", 1,
       [("c", "ehlo"), ("b", "exchange-ehlo"), ("c", "mail"), ("b", "250"), ("c", "rcpt"),
        ("b", "250"), ("c", "bdat6"), ("b", "250"), ("c", "bdat5last"), ("b", "queued"),
        ("c", "bdat0last"), ("b", "503")])
script("implicit-pipelined", 1,
       [("c", "pipelined"), ("braw", "250-mx\r\n250 PIPELINING\r\n250 ok\r\n250 ok\r\n"),
        ("b", "354"), ("craw", "Subject: x\r\n\r\nhello\r\n.\r\nQUIT\r\n"), ("b", "queued"),
        ("b", "221")])
script("data-held-before-354", 1,
       [("c", "ehlo"), ("b", "250-host"), ("b", "250 b"), ("c", "mail"), ("b", "250"),
        ("c", "data"), ("c", "body"), ("c", "quit"), ("b", "354"), ("b", "queued"), ("b", "221")])
script("data-refused-held-commands", 1,
       [("c", "helo"), ("b", "250"), ("c", "data"), ("c", "rset"), ("b", "503"), ("b", "250")])
script("backend-failures", 1,
       [("c", "ehlo"), ("b", "garbage"), ("c", "noop")])
script("eofs-and-timeouts", 2,
       [("c", "ehlo"), ("b", "250"), ("c", "mail"), ("b", "250"), ("c", "rcpt"), ("b", "250"),
        ("c", "data"), ("b", "354"), ("craw", "partial message"), ("idle",), ("ceof",),
        ("beof",), ("shutdown",)])
script("shutdown-drain", 4,
       [("c", "ehlo"), ("shutdown",), ("b", "exchange-ehlo"), ("c", "noop")])
script("unsolicited-421", 2, [("b", "421"), ("c", "ehlo")])
script("small-limits", 1,
       [("craw", "EHLO " + "x" * 80 + "\r\n"), ("c", "pipelined"), ("c", "pipelined"),
        ("c", "pipelined")], limits=(0, 0, 2))

# --- proxy_header: the first bytes of a connection (PROXY v1 line or v2 binary header) -------
V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v2(ver_cmd, fam, body, length=None):
    n = len(body) if length is None else length
    return V2_SIG + bytes([ver_cmd, fam]) + n.to_bytes(2, "big") + body


V2_TCP4 = (bytes([192, 0, 2, 1, 198, 51, 100, 7]) + (56324).to_bytes(2, "big") +
           (25).to_bytes(2, "big"))
V2_TCP6 = (bytes([0x20, 0x01, 0x0d, 0xb8]) + bytes(11) + b"\x01" + bytes(15) + b"\x01" +
           (1111).to_bytes(2, "big") + (2222).to_bytes(2, "big"))
write("proxy_header", "v1-tcp4", "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nEHLO x\r\n")
write("proxy_header", "v1-tcp6", "PROXY TCP6 2001:db8::1 ::ffff:1.2.3.4 1111 65535\r\n")
write("proxy_header", "v1-unknown", "PROXY UNKNOWN\r\n")
write("proxy_header", "v1-unknown-worst-case",
      "PROXY UNKNOWN " + " ".join(["ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"] * 2) +
      " 65535 65535\r\n")
write("proxy_header", "v1-bad-port", "PROXY TCP4 1.2.3.4 5.6.7.8 65536 025\r\n")
write("proxy_header", "v2-tcp4-then-payload", v2(0x21, 0x11, V2_TCP4) + b"EHLO x\r\n")
write("proxy_header", "v2-tcp6-tlvs", v2(0x21, 0x21, V2_TCP6 + b"\x04\x00\x02ab\x02\x00\x01x"))
write("proxy_header", "v2-local", v2(0x20, 0x00, b""))
write("proxy_header", "v2-unix", v2(0x21, 0x31, bytes(216)))
write("proxy_header", "v2-length-40000", v2(0x21, 0x11, V2_TCP4, 40000))
write("proxy_header", "v2-short-block", v2(0x21, 0x21, V2_TCP4))

# --- config: TOML text ------------------------------------------------------------------------
with open(os.path.join(ROOT, "conf", "tlsbridge.toml"), encoding="utf-8") as f:
    write("config", "conf-tlsbridge.toml", f.read().encode("utf-8"))
MINIMAL = ('[[certs]]\ncert = "cert.pem"\nkey = "key.pem"\n\n[[listener]]\nname = "smtp-in"\n'
           'listen = "127.0.0.1:2525"\n[listener.backend]\naddress = "127.0.0.1:25"\n')
write("config", "minimal.toml", MINIMAL)
write("config", "full.toml", MINIMAL.replace('address = "127.0.0.1:25"\n', "") + (
    'address = ["127.0.0.1:25", "[::1]:25"]\ntls = "starttls"\nverify = "ca"\n'
    'ca_file = "ca.pem"\nserver_name = "mx.example"\npin_sha256 = ["' + "ab" * 32 + '"]\n'
    '[server]\nthreads = 2\nshutdown_grace = "500ms"\nhostname = "mail.example"\n'
    '[tls.profiles.modern]\nmin_version = "TLS1.3"\n'
    '[policy]\nmin_rsa_bits = 1024\non_untrusted = "refuse"\n'
    '[[policy.rule]]\npeer = "10.0.0.0/8"\non_weak_signature = "log"\n'))
write("config", "broken-values.toml", MINIMAL + (
    'timeouts = { idle = "5 parsecs", handshake = -1 }\nsmtp_bare_lf = "sometimes"\n'
    'allow = ["10.0.0.0/33", "::1/129"]\nmax_connections = -5\n'))
write("config", "broken-duplicates.toml", MINIMAL + MINIMAL.replace("[[certs]]", "[[cert]]"))
write("config", "broken-syntax.toml", '[listener\nname = "x\nlisten = 127.0.0.1:25\n')
write("config", "wrong-types.toml", '[server]\nthreads = "four"\n[[listener]]\nname = 5\n'
      'listen = ["a"]\n[listener.backend]\naddress = 25\n')
write("config", "empty.toml", "")

# --- cert_evidence: DER certificates (public only) ----------------------------------------------
if len(sys.argv) > 1:
    pki = sys.argv[1]

    def der(name):
        return subprocess.run(["openssl", "x509", "-in", os.path.join(pki, name + ".crt"),
                               "-outform", "DER"], check=True, capture_output=True).stdout

    for name in ["ca", "server", "sha1", "rsa1024", "expired", "selfsigned", "md5leaf"]:
        write("cert_evidence", name + ".der", der(name))
    write("cert_evidence", "server-chain.der", der("server") + der("inter") + der("ca"))
    write("cert_evidence", "md5-chain.der", der("md5leaf") + der("md5inter") + der("ca"))
