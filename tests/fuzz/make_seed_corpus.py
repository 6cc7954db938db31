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

# --- smtp_machine: [mode][line limit][held limit][pending limit] then events -------------------
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
    write("smtp_machine", name, bytes(out))


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

# --- imap_machine: [mode][line limits][literal limit][held|pending] then events -------------
# mode: front % 3 (0 starttls, 1 implicit, 2 none) | 0x04 require_tls off | 0x08 no audit envelope
# events: 0 client raw, 1 backend raw (length byte + bytes), 2 client piece (index; | 0x80 appends
# the injection marker after a STARTTLS line), 3 backend piece, 4 tagged reply (tag + 19 * status),
# 5 front TLS established, 6 client EOF, 7 backend EOF, 8 idle, 9 shutdown, 10 APPEND with a
# literal (how: 1 = synchronizing; length byte + bytes), 11 literal probe (how: 1 = synchronizing,
# how >> 5 split bytes; length byte + bytes). Indexes follow tests/fuzz/fuzz_imap_machine.cpp.
IC = {"capability": 0, "starttls": 1, "login": 2, "login{5}": 3, "login{5+}": 4, "auth-plain": 5,
      "sasl-plain": 6, "auth-plain-ir": 7, "idle": 8, "done": 9, "select": 10, "fetch": 11,
      "append{5}": 12, "hello": 13, "append-login-literal": 14, "noop+starttls": 15,
      "compress": 16, "logout": 17, "append-huge": 18, "append-huge+": 19, "empty": 20,
      "noop+starttls+login": 21, "literal8": 22, "login-quoted": 23, "starttls-d3": 24,
      "bare-literal": 25}
IB = {"capability": 0, "+go": 1, "+idling": 2, "+": 3, "bye": 4, "ok-capability": 5, "exists": 6,
      "fetch-literal": 7, "fetch-open": 8, "fetch-rest": 9, "garbage": 10, "search": 11, "star": 12}
ITAGS = ["a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8", "a9", "b1", "b2", "c1", "c4", "c5", "c7",
         "d1", "d2", "z1", "*"]
ISTATUS = {"ok": 0, "no": 1, "bad": 2, "ok-capability": 3, "logout": 4}


def imap(name, mode, events, limits=(255, 255, 0xff)):
    out = bytearray([mode, *limits])
    for e in events:
        kind = e[0]
        if kind == "c":
            out += bytes([2, IC[e[1]] | (0x80 if len(e) > 2 and e[2] else 0)])
        elif kind == "b":
            out += bytes([3, IB[e[1]]])
        elif kind == "t":
            out += bytes([4, ITAGS.index(e[1]) + len(ITAGS) * ISTATUS[e[2]]])
        elif kind in ("craw", "braw"):
            data = e[1].encode("latin-1")
            assert len(data) < 256
            out += bytes([0 if kind == "craw" else 1, len(data)]) + data
        elif kind in ("append", "probe"):
            data = e[2].encode("latin-1")
            assert len(data) < 256
            out += bytes([10 if kind == "append" else 11, e[1]]) + bytes(e[3] if len(e) > 3 else [])
            out += bytes([len(data)]) + data
        else:
            out += bytes([{"tls": 5, "ceof": 6, "beof": 7, "idle": 8, "shutdown": 9}[kind]])
    write("imap_machine", name, bytes(out))


MESSAGE = "Subject: x\r\n\r\nb STARTTLS\r\nc LOGIN a b\r\n* CAPABILITY\r\n"
imap("starttls-dialogue", 0,
     [("c", "capability"), ("b", "capability"), ("t", "a1", "ok"), ("c", "starttls", True),
      ("tls",), ("c", "capability"), ("b", "capability"), ("t", "a1", "ok"), ("c", "login"),
      ("t", "a3", "ok-capability"), ("c", "select"), ("t", "a8", "ok"), ("c", "logout"),
      ("b", "bye"), ("t", "c4", "logout")])
imap("starttls-pipelined-plaintext", 0,
     [("craw", "a2 STARTTLS\r\na3 LOGIN evil secret\r\n"), ("craw", "more while paused\r\n"),
      ("tls",), ("c", "login"), ("t", "a3", "ok")])
imap("starttls-behind-noop", 0,
     [("c", "noop+starttls", True), ("t", "c1", "ok"), ("tls",), ("c", "capability")])
imap("require-tls-refusals", 0,
     [("c", "login"), ("c", "auth-plain-ir"), ("c", "login{5}"), ("c", "login{5+}"),
      ("c", "compress"), ("c", "capability"), ("b", "capability"), ("t", "a1", "ok")])
imap("append-literal-before-tls", 0,
     [("append", 0, MESSAGE), ("t", "*", "ok"), ("append", 1, MESSAGE), ("b", "+go"),
      ("c", "login"), ("c", "append-login-literal")])
imap("literal-probes", 0,
     [("probe", 0, MESSAGE), ("probe", 1, "a LOGIN x y\r\n"), ("probe", 0x61, "{5}\r\nhello", [1, 2, 3]),
      ("probe", 0xe0, "", [0, 0, 0, 0, 0, 0, 0])])
imap("implicit-append-sync", 1,
     [("c", "append{5}"), ("c", "select"), ("b", "+go"), ("c", "hello"), ("t", "b1", "ok"),
      ("t", "a8", "ok"), ("c", "append{5}"), ("t", "b1", "no"), ("c", "literal8")])
imap("implicit-fetch-literal", 1,
     [("c", "fetch"), ("b", "fetch-literal"), ("t", "a9", "ok"), ("c", "fetch"),
      ("b", "fetch-open"), ("b", "fetch-rest"), ("t", "a9", "ok"), ("c", "compress")])
imap("implicit-authenticate-idle", 1,
     [("c", "auth-plain"), ("b", "+"), ("c", "sasl-plain"), ("t", "a5", "ok"), ("c", "idle"),
      ("c", "done"), ("b", "+idling"), ("b", "exists"), ("t", "a7", "ok"), ("c", "idle"),
      ("b", "+idling"), ("shutdown",)])
imap("implicit-limits", 1,
     [("c", "append-huge"), ("c", "capability"), ("c", "append-huge+")], limits=(0, 0, 0))
imap("login-literal-user", 2,
     [("c", "login{5+}"), ("t", "a4", "ok"), ("c", "login-quoted"), ("t", "d2", "no"),
      ("c", "login{5}"), ("b", "+go"), ("craw", "alice {6}\r\n"), ("b", "+go"),
      ("craw", "secret\r\n"), ("t", "a4", "ok")])
imap("eofs-and-timeouts", 1,
     [("c", "fetch"), ("b", "fetch-open"), ("idle",), ("ceof",), ("beof",)])
imap("backend-eof-after-bye", 1, [("b", "bye"), ("beof",)])
imap("tls-after-close", 0,
     [("c", "starttls", True), ("beof",), ("tls",), ("c", "capability")])

# --- pop3_machine: [mode][line limits][capa limit][held|pending] then events ----------------
# mode as for imap_machine. events: 0 client raw, 1 backend raw, 2 client piece (| 0x80 marker
# after STLS), 3 backend piece, 4 front TLS established, 5 client EOF, 6 backend EOF, 7 idle,
# 8 shutdown, 9 RETR probe (split count byte, split bytes, length byte + body lines).
PC = {"capa": 0, "stls": 1, "user": 2, "pass": 3, "user+pass": 4, "apop": 5, "auth-plain": 6,
      "sasl-plain": 7, "auth-plain-ir": 8, "auth": 9, "stat": 10, "list": 11, "list1": 12,
      "uidl": 13, "retr": 14, "top": 15, "dele": 16, "noop": 17, "quit": 18, "noop+stls": 19,
      "capa+stls": 20, "star": 21, "bare-lf": 22, "empty": 23}
PB = {"+ok": 0, "+ok-done": 1, "-err": 2, "-err-auth": 3, "capa": 4, "message": 5, "listing": 6,
      "sasl-list": 7, "+ ": 8, "+": 9, "dot": 10, "dotdot": 11, "body-line": 12, "logged-in": 13,
      "-err-inactive": 14, "bye": 15}


def pop3(name, mode, events, limits=(255, 255, 0xff)):
    out = bytearray([mode, *limits])
    for e in events:
        kind = e[0]
        if kind == "c":
            out += bytes([2, PC[e[1]] | (0x80 if len(e) > 2 and e[2] else 0)])
        elif kind == "b":
            out += bytes([3, PB[e[1]]])
        elif kind in ("craw", "braw"):
            data = e[1].encode("latin-1")
            assert len(data) < 256
            out += bytes([0 if kind == "craw" else 1, len(data)]) + data
        elif kind == "probe":
            data = e[1].encode("latin-1")
            split = bytes(e[2] if len(e) > 2 else [])
            out += bytes([9, len(split)]) + split + bytes([len(data)]) + data
        else:
            out += bytes([{"tls": 4, "ceof": 5, "beof": 6, "idle": 7, "shutdown": 8}[kind]])
    write("pop3_machine", name, bytes(out))


pop3("stls-dialogue", 0,
     [("c", "capa"), ("b", "capa"), ("c", "stls", True), ("tls",), ("c", "capa"), ("b", "capa"),
      ("c", "user"), ("b", "+ok"), ("c", "pass"), ("b", "logged-in"), ("c", "stat"),
      ("b", "+ok-done"), ("c", "retr"), ("b", "message"), ("c", "quit"), ("b", "bye")])
pop3("stls-pipelined-plaintext", 0,
     [("craw", "STLS\r\nUSER evil\r\nPASS x\r\n"), ("craw", "more while paused\r\n"), ("tls",),
      ("c", "user+pass"), ("b", "+ok"), ("b", "logged-in")])
pop3("stls-behind-noop", 0, [("c", "noop+stls", True), ("b", "+ok"), ("tls",), ("c", "noop")])
pop3("require-tls-refusals", 0,
     [("c", "user"), ("c", "pass"), ("c", "apop"), ("c", "auth-plain-ir"), ("c", "auth"),
      ("c", "bare-lf"), ("c", "noop"), ("b", "+ok")])
pop3("implicit-auth-plain", 1,
     [("c", "auth-plain"), ("b", "+ "), ("c", "sasl-plain"), ("b", "logged-in"), ("c", "auth"),
      ("b", "sasl-list"), ("c", "list"), ("b", "listing"), ("c", "uidl"), ("b", "+ok"),
      ("b", "dotdot"), ("b", "body-line"), ("b", "dot")])
pop3("implicit-pipelined", 1,
     [("craw", "STAT\r\nLIST 1\r\nTOP 1 10\r\nDELE 1\r\nQUIT\r\n"),
      ("braw", "+OK 1 120\r\n+OK 1 120\r\n+OK\r\nSubject: x\r\n\r\n.\r\n+OK deleted\r\n"),
      ("b", "bye")])
pop3("retr-probes", 2,
     [("probe", "Subject: x\n\n.\n..\n+OK fake\n.hidden\nlast"), ("probe", ".", [1, 1, 1]),
      ("probe", "", [0, 3])])
pop3("limits", 1,
     [("craw", "NOOP " + "x" * 100 + "\r\nNOOP\r\n"), ("b", "+ok"), ("c", "capa"), ("b", "capa")],
     limits=(0, 0, 0))
pop3("eofs-and-timeouts", 1,
     [("c", "retr"), ("b", "+ok"), ("b", "body-line"), ("idle",), ("ceof",), ("beof",),
      ("shutdown",)])
pop3("unsolicited-err", 1, [("b", "-err-inactive"), ("beof",)])
pop3("shutdown-drain", 1, [("c", "noop"), ("shutdown",), ("b", "+ok")])
pop3("tls-after-close", 0, [("c", "stls", True), ("idle",), ("tls",), ("c", "noop")])

# --- http_request: [mode][header limit][pending|held] then events ------------------------------
# mode: 0x01 X-Forwarded-* off | 0x02 short allow_paths | 0x04 allow "/" | 0x08 no audit
# envelope | 0x10 backend connect fails. events: 0 client raw, 1 client piece, 2 backend raw,
# 3 backend piece, 4 client EOF, 5 backend EOF, 6 idle, 7 shutdown, 8 pure-function check (which
# byte; length byte + bytes), 9 NTLM request (how; blob), 10 ActiveSync base64 request (blob),
# 11 idle_limit(). Indexes follow tests/fuzz/fuzz_http_request.cpp.
HC = {"get": 0, "post-cl": 1, "post-chunked": 2, "cl+te": 3, "te+cl": 4, "dup-cl": 5,
      "cl-list": 6, "te-twice": 7, "te-xchunked": 8, "te-http10": 9, "dotdot": 10,
      "dotdot-2f": 11, "dotdot-2e": 12, "backslash": 13, "dot-space": 14, "slashes": 15,
      "ewsadmin": 16, "absolute": 17, "asterisk": 18, "xff-spoof": 19, "obs-fold": 20,
      "no-host": 21, "two-hosts": 22, "bare-lf": 23, "rpc-in": 24, "upgrade": 25, "head": 26,
      "close": 27, "http10": 28, "expect": 29, "abc": 30, "crlf": 31, "bad-chunk": 32,
      "activesync": 33, "basic": 34, "not-allowed": 35}
HB = {"200": 0, "200-chunked": 1, "100": 2, "101": 3, "401-ntlm": 4, "204": 5, "304": 6,
      "http10-eof": 7, "200-close": 8, "dup-cl": 9, "garbage": 10, "rpc-200": 11, "200-empty": 12,
      "200-partial": 13}


def http(name, mode, events, limits=(255, 0xff)):
    out = bytearray([mode, *limits])
    for e in events:
        kind = e[0]
        if kind == "c":
            out += bytes([1, HC[e[1]]])
        elif kind == "b":
            out += bytes([3, HB[e[1]]])
        elif kind in ("craw", "braw"):
            data = e[1].encode("latin-1") if isinstance(e[1], str) else e[1]
            assert len(data) < 256
            out += bytes([0 if kind == "craw" else 2, len(data)]) + data
        elif kind in ("pure", "ntlm"):
            data = e[2].encode("latin-1") if isinstance(e[2], str) else e[2]
            out += bytes([8 if kind == "pure" else 9, e[1], len(data)]) + data
        elif kind == "activesync":
            data = e[1]
            out += bytes([10, len(data)]) + data
        else:
            out += bytes([{"ceof": 4, "beof": 5, "idle": 6, "shutdown": 7, "limit": 11}[kind]])
    write("http_request", name, bytes(out))


http("ews-keepalive", 0,
     [("c", "get"), ("b", "200"), ("c", "post-cl"), ("b", "200-chunked"), ("c", "post-chunked"),
      ("limit",), ("b", "200"), ("c", "head"), ("b", "200"), ("ceof",)])
http("smuggling-refused", 0,
     [("c", "get"), ("c", "cl+te"), ("b", "200"), ("c", "get")])
http("smuggling-variants", 0,
     [("c", "te+cl"), ("c", "dup-cl"), ("c", "cl-list"), ("c", "te-twice"), ("c", "te-xchunked"),
      ("c", "te-http10"), ("c", "obs-fold"), ("c", "no-host"), ("c", "two-hosts"),
      ("c", "bare-lf")])
for i, piece in enumerate(["dup-cl", "te-twice", "obs-fold", "bare-lf", "two-hosts"]):
    http("refused-%d-%s" % (i, piece), 0, [("c", "get"), ("b", "200"), ("c", piece), ("b", "200")])
http("traversal", 0,
     [("c", "dotdot"), ("c", "dotdot-2f"), ("c", "dotdot-2e"), ("c", "backslash"),
      ("c", "dot-space"), ("c", "slashes"), ("c", "ewsadmin"), ("c", "absolute"),
      ("c", "asterisk"), ("b", "200"), ("b", "200")], limits=(255, 0x07))
http("traversal-short-allow", 2,
     [("c", "slashes"), ("b", "200"), ("c", "dotdot"), ("c", "not-allowed")])
http("xff-spoof", 0, [("c", "xff-spoof"), ("b", "200")])
http("xff-off", 1, [("c", "xff-spoof"), ("b", "200"), ("c", "post-chunked"), ("b", "200")])
http("rpc-tunnel", 0,
     [("c", "rpc-in"), ("b", "rpc-200"), ("craw", "more rpc bytes"), ("braw", "server bytes"),
      ("ceof",), ("beof",)])
http("upgrade-declined-then-accepted", 0,
     [("c", "upgrade"), ("c", "get"), ("b", "200"), ("b", "200"), ("c", "upgrade"), ("b", "101"),
      ("craw", "frame"), ("braw", "frame")])
http("expect-continue", 0, [("c", "expect"), ("b", "100"), ("c", "abc"), ("b", "200")])
http("backend-failures", 0,
     [("c", "get"), ("b", "garbage"), ("c", "get")])
http("backend-eof-delimited", 0, [("c", "http10"), ("b", "http10-eof"), ("beof",)])
http("connect-fails", 0x10, [("c", "get"), ("c", "get")])
http("bad-chunk-aborts", 0, [("c", "bad-chunk"), ("b", "200")])
http("pipelined-limit", 0,
     [("craw", "\r\n" + "GET /EWS/a HTTP/1.1\r\nHost: a\r\n\r\n" * 3), ("b", "200"),
      ("b", "204"), ("b", "304"), ("shutdown",), ("b", "200")], limits=(255, 0x01))
http("timeouts", 0, [("c", "post-cl"), ("idle",)])
http("activesync-and-auth", 0,
     [("c", "activesync"), ("b", "200"), ("c", "basic"), ("b", "401-ntlm"),
      ("ntlm", 0, "alice" + "workstation"), ("b", "200"), ("ntlm", 3, "NTLMSSP\0\x03\0\0\0"),
      ("b", "200"), ("activesync", bytes([141, 0, 0, 0, 4]) + b"abcd\x00\x06iPhone\x08\x05alice"),
      ("b", "200")])
http("no-envelope", 0x08, [("c", "basic"), ("b", "200"), ("ntlm", 0, "bob-ws")])
http("pure-functions", 0,
     [("pure", 0, "/EWS/%2e%2e/..%5c/x/. ./..../y?Cmd=Sync&User=a"),
      ("pure", 1, bytes(range(40))),
      ("pure", 2, "NTLM TlRMTVNTUAADAAAA"),
      ("pure", 3, "\x05DOMAINuserws"),
      ("pure", 4, bytes([141, 18, 9, 4, 2]) + b"id\x00\x03Dev\x08\x03bob"),
      ("pure", 5, "GET /EWS HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"),
      ("pure", 0x85, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")])

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

# --- smtp_differential: [mode][line limit][seed x4] then events ---------------------------------
# mode: front % 3 (0 starttls, 1 implicit, 2 none) | 0x04 require_tls off | bare-LF mode << 3 |
# CHUNKING << 6 (0 per EHLO, 1 never, 2 always). events: 0 client raw (length byte + bytes),
# 1 client piece (index), 2 one backend reply, 3 all backend replies, 4 front TLS established,
# 5 piece split (index, cut), 6 client EOF, 7 idle, 8 shutdown. Piece names follow the order of
# client_pieces in tests/fuzz/fuzz_smtp_differential.cpp. Every attack of issue 12 item 4 is here.
DP = ["ehlo", "starttls", "mail", "rcpt", "data", "body", "smuggled-lf", "smuggled-cr",
      "stuffed", "bdat6", "bdat5last-quit", "bdat0last", "rset", "noop", "quit", "quit-then-more",
      "auth-login", "auth-plain-ir", "x-exps", "sasl-user", "sasl-cancel", "sasl-mail",
      "xexch50-tab", "sp-xexch50", "x-anonymoustls-tab", "xshadow-tab", "xrdst-tab",
      "auth-tab-plain", "data-tab", "mail-tab", "rcpt-sp-sp", "sp-data", "da-nul-ta", "nul-data",
      "data-vt", "data-ff", "noop-cr-data", "noop-lf-data", "empty", "bdat-tab", "bdat-010",
      "bdat-plus", "bdat-huge", "bdat-2^32+5", "bdat-sp-sp-last", "bdat3-rset-bdat0",
      "mail-nul-rcpt", "pipelined"]


def differential(name, mode, events, seed=b"\x12\x34\x56\x78", limit=255):
    out = bytearray([mode, limit]) + seed
    for e in events:
        if isinstance(e, str) and e in DP:
            out += bytes([1, DP.index(e)])
        elif e == "reply":
            out += bytes([2])
        elif e == "replies":
            out += bytes([3])
        elif e == "tls":
            out += bytes([4])
        elif isinstance(e, tuple) and e[0] == "split":
            out += bytes([5, DP.index(e[1]), e[2]])
        elif isinstance(e, tuple) and e[0] == "raw":
            data = e[1].encode("latin-1")
            assert len(data) < 256
            out += bytes([0, len(data)]) + data
        else:
            out += bytes([{"ceof": 6, "idle": 7, "shutdown": 8}[e]])
    write("smtp_differential", name, bytes(out))


IMPLICIT, STARTTLS, PLAIN, OPEN = 1, 0, 2, 0x04
NO_CHUNKING, CHUNKING = 0x40, 0x80
tls_open = ["ehlo", "replies", "starttls", "tls", "ehlo", "replies"]
envelope = ["mail", "rcpt", "replies"]
for attack in ["xexch50-tab", "sp-xexch50", "x-anonymoustls-tab", "xshadow-tab", "xrdst-tab",
               "auth-tab-plain", "data-tab", "mail-tab", "rcpt-sp-sp", "sp-data", "da-nul-ta",
               "nul-data", "data-vt", "data-ff", "noop-cr-data", "noop-lf-data", "empty",
               "bdat-tab", "mail-nul-rcpt"]:
    differential("attack-" + attack, STARTTLS,
                 tls_open + envelope + [attack, "replies", "body", "replies", "data", "replies",
                                        "body", "replies", "quit", "replies"])
    differential("attack-" + attack + "-before-tls-open", STARTTLS | OPEN,
                 ["ehlo", "replies", attack, "replies", "body", "replies", "quit", "replies"])
# BDAT without CHUNKING: the chunk must not run as commands (issue 12 item 4).
differential("bdat-without-chunking", IMPLICIT | NO_CHUNKING,
             ["ehlo", "replies"] + envelope + ["bdat5last-quit", "replies", "bdat6", "replies",
                                                "rset", "replies", "quit", "replies"])
differential("bdat-with-chunking", IMPLICIT | CHUNKING,
             ["ehlo", "replies"] + envelope + ["bdat6", "replies", "bdat3-rset-bdat0", "replies",
                                                "bdat5last-quit", "replies"])
for size in ["bdat-010", "bdat-plus", "bdat-huge", "bdat-2^32+5", "bdat-sp-sp-last"]:
    differential("bdat-size-" + size, IMPLICIT | CHUNKING,
                 ["ehlo", "replies"] + envelope + [size, "replies", "noop", "replies", "noop",
                                                    "rset", "replies"])
differential("bdat-pipelined-behind-ehlo", IMPLICIT | CHUNKING,
             ["ehlo", "replies", "ehlo", "bdat6", "replies", "noop", "replies"])
# SASL: responses, cancel, a command where a response belongs, pipelined before the 334.
differential("sasl-login", IMPLICIT,
             ["ehlo", "replies", "auth-login", "reply", "sasl-user", "reply", "sasl-user",
              "reply", "sasl-user", "reply", "mail", "replies"])
differential("sasl-pipelined", IMPLICIT,
             ["ehlo", "replies", "auth-login", "sasl-user", "sasl-mail", "sasl-cancel", "replies",
              "noop", "replies"], seed=b"\x01\x02\x03\x04")
differential("sasl-x-exps-then-eof", STARTTLS,
             tls_open + ["x-exps", "reply", "ceof"])
differential("sasl-auth-before-tls", STARTTLS | OPEN,
             ["ehlo", "replies", "auth-plain-ir", "auth-login", "sasl-user", "replies"])
# Smuggling in message data, each bare-LF mode.
for lf_mode, lf_name in enumerate(["reject", "normalize", "pass"]):
    differential("smuggling-" + lf_name, IMPLICIT | (lf_mode << 3),
                 ["ehlo", "replies"] + envelope + ["data", "replies", "smuggled-lf",
                                                    "smuggled-cr", "stuffed", "replies", "quit",
                                                    "replies"])
# QUIT then more; pipelined commands after DATA before 354; EOF while DATA awaits its reply.
differential("quit-then-more", IMPLICIT, ["ehlo", "replies", "quit-then-more", "replies"])
differential("pipelined-after-data", IMPLICIT,
             ["pipelined", "body", "mail", "reply", "reply", "reply", "reply", "replies",
              "replies"])
for n, seed in enumerate([b"\x00\x00\x00\x02", b"\x00\x00\x00\x03", b"\x00\x00\x00\x01"]):
    differential("eof-awaiting-354-%d" % n, IMPLICIT,
                 ["ehlo", "replies"] + envelope + ["data", "ceof", "replies"], seed=seed)
differential("split-pieces", IMPLICIT,
             ["ehlo", "replies", ("split", "mail", 5), ("split", "data-tab", 4), "replies",
              ("split", "rcpt", 3), ("raw", "RCPT TO:<x@y>\r\nDATA\r\n"), "replies",
              ("split", "body", 7), "replies", "shutdown", "replies"])
differential("long-line", IMPLICIT,
             ["ehlo", "replies", ("raw", "NOOP " + "x" * 200 + "\r\nNOOP\r\n"), "replies"],
             limit=0)

# --- http_differential: [flags][piece pattern][client stream] ------------------------------------
# flags: 0x01 X-Forwarded-* off, 0x02 the backend answers, 0x04 end by idle timeout, 0x08 pieces
# x37. Every HTTP vector of issue 12, and the well-formed traffic they hide in.
def http_diff(name, stream, flags=0x02, pattern=0xff):
    write("http_differential", name, bytes([flags, pattern]) + stream.encode("latin-1"))


SMUGGLED = "GET /PowerShell/ HTTP/1.1\r\nHost: a\r\n\r\n"
http_diff("outlook-anywhere",
          "RPC_IN_DATA /rpc/rpcproxy.dll?mail:6001 HTTP/1.1\r\nHost: a\r\nContent-Length: 8\r\n\r\n"
          "\x05\x00\x0b\x03rpc!GET /owa/ HTTP/1.1\r\nHost: a\r\n\r\n")
http_diff("issue12-rpc-in-data-owa",
          "RPC_IN_DATA /owa/ HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n"
          "X-Forwarded-For: 6.6.6.6\r\n\r\n" + SMUGGLED +
          "POST /ecp/DDI/DDIService.svc/GetList HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n")
http_diff("issue12-rpc-lowercase",
          "rpc_in_data /rpc/rpcproxy.dll HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n" + SMUGGLED)
http_diff("issue12-chunk-ext-lf",
          "POST /owa/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
          '2;a="\nXX\n0\n\n' + SMUGGLED.replace("\r\n", "\n") + '"\r\nab\r\n0\r\n\r\n'
          "GET /owa/ HTTP/1.1\r\nHost: a\r\n\r\n")
http_diff("chunk-ext-valid",
          "POST /owa/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
          '004 ; a = "q\\"x" ;b\r\nabcd\r\n0\r\nT: v\r\n\r\nGET /owa/ HTTP/1.1\r\nHost: a\r\n\r\n',
          pattern=0x31)
http_diff("chunk-ext-ctl", "POST /owa/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
          '2;a="\x00"\r\nab\r\n0\r\n\r\n' + SMUGGLED)
http_diff("issue12-split-head", "GET /owa/big HTTP/1.1\r\nHost: a\r\n" +
          "".join("X-%d: %s\r\n" % (i, "x" * 90) for i in range(30)) + "\r\n" + SMUGGLED,
          flags=0x0a, pattern=0x7c)
http_diff("crlf-prefix", "\r\n" * 900 + "GET /owa/ HTTP/1.1\r\nHost: a\r\n\r\n", flags=0x0a)
http_diff("issue12-lowercase-get", "get /owa/ HTTP/1.1\r\nHost: a\r\n\r\n" + SMUGGLED)
http_diff("issue12-x-forwarded-for-underscore",
          "GET /owa/ HTTP/1.1\r\nHost: a\r\nX_Forwarded_For: 6.6.6.6\r\nX-Forwarded-For: 7.7.7.7"
          "\r\nContent_Length: 38\r\n\r\n" + SMUGGLED)
http_diff("issue12-slow-head", "GET /owa/ HTTP/1.1\r\nHo", flags=0x06, pattern=0x00)
http_diff("bare-lf-head", "GET /owa/ HTTP/1.1\nHost: a\n\n" + SMUGGLED)
http_diff("bare-cr-head", "GET /owa/ HTTP/1.1\r\nHost: a\rTransfer-Encoding: chunked\r\n\r\n"
          "0\r\n\r\n" + SMUGGLED)
http_diff("cl-te", "POST /owa/ HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n"
          "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED)
http_diff("obs-fold-te", "POST /owa/ HTTP/1.1\r\nHost: a\r\nX: a\r\n Transfer-Encoding: chunked\r\n"
          "Content-Length: 5\r\n\r\n0\r\n\r\n" + SMUGGLED)
http_diff("upgrade-declined", "GET /mapi/ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n"
          "Upgrade: websocket\r\n\r\n" + SMUGGLED + "GET /owa/ HTTP/1.1\r\nHost: a\r\n\r\n")
http_diff("pipelined-bodies",
          "POST /EWS/a HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
          "POST /EWS/b HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n"
          "GET /EWS/c HTTP/1.1\r\nHost: a\r\n\r\n", flags=0x03, pattern=0x52)

# --- imap_differential: [mode] then events (tests/fuzz/fuzz_imap_differential.cpp) -------------
# mode: bit 0 implicit front, bit 1 require_tls off, bits 4-5 the greeting's capabilities
# (0 LITERAL+ BINARY, 1 none, 2 LITERAL-, 3 LITERAL+). Events: 1 n-1 i.. client pieces (n <= 4)
# in one write, 3 how answer, 4 b literal decision (0 accept), 5 next AUTHENTICATE/IDLE round,
# 6 front TLS, 7 unsolicited "+". Every attack piece of issue 12 item 3 is tried before and after
# TLS, followed by the hidden "b LOGIN alice secret" (22 bytes), the end of a command and a NOOP.
IMAP_DIFF_PIECES = 36
for greeting in (0, 1, 2):
    for phase in ("plain", "tls"):
        for i in range(IMAP_DIFF_PIECES):
            events = [1, 0, 20, 6] if phase == "tls" else []
            events += [1, 3, i, 1, 35, 30, 4, 0, 5, 3, 0, 3, 0, 4, 0, 5, 3, 0x80, 3, 0, 3, 0]
            events += [7, 1, 1, 30, 30, 3, 0, 3, 0]
            write("imap_differential", f"g{greeting}-{phase}-{i:02d}",
                  bytes([greeting << 4] + events))
write("imap_differential", "login-literals-after-tls",
      bytes([0, 1, 0, 20, 6, 1, 1, 21, 22, 4, 0, 3, 0, 1, 0, 23, 5, 1, 0, 24, 3, 0x80,
             1, 1, 26, 27, 5, 3, 0x80, 1, 1, 28, 29, 3, 0, 3, 0]))
write("imap_differential", "no-require-tls-logins",
      bytes([2, 1, 3, 21, 22, 1, 35, 4, 0, 3, 0, 1, 0, 23, 5, 1, 0, 24, 3, 0x80]))
# POP3 (mode bit 7): events 1 n-1 i.. pieces, 3 how answer, 4 next AUTH round, 5 front TLS,
# 6 unasked -ERR. Each piece before and after STLS, then USER/PASS and NOOP.
for phase in ("plain", "tls"):
    for i in range(24):
        events = [1, 0, 7, 5] if phase == "tls" else []
        events += [1, 2, i, 2, 12, 3, 0, 4, 1, 0, 6, 3, 0, 3, 0, 3, 0]
        write("imap_differential", f"pop3-{phase}-{i:02d}", bytes([0x80] + events))
