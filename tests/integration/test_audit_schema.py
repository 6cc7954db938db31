"""The audit records against their JSON Schema (docs/audit-record.schema.json, described in
docs/audit-records.md).

One proxy runs in front of a real Postfix (TLS 1.0, SHA-1 certificate), a real Dovecot and the
IIS stand-in, and real clients make it write a record of every type: an SMTP message, SMTP, IMAP
and POP3 refusals, IMAP and POP3 logins, HTTPS requests (NTLM, Basic, ActiveSync, a 404 from the
proxy), a backend chain refused by policy, a client chain, a failed front handshake, a PROXY
header, a denied client and an unreachable backend. Every line of the audit file must validate,
every record type and every field the schema describes must have been seen, and the schema must
reject the same records with a field renamed, a value mistyped, or their type left out of it.

The schema is also held to the code without a lab: its outcome and finding tables equal
proxy/outcome.hpp and policy/chain_findings.hpp, every "event" the source writes is in it, and
the examples in docs/audit-records.md validate."""

import base64
import copy
import http.client
import json
import os
import re
import smtplib
import socket
import ssl
import unittest
import warnings

import lab
import legacy_iis

try:
    import jsonschema
except ImportError as e:  # scripts/setup installs python3-jsonschema
    raise ImportError("python3-jsonschema is missing: run scripts/setup") from e

SCHEMA_PATH = os.path.join(lab.SOURCE_DIR, "docs", "audit-record.schema.json")
REFERENCE_PATH = os.path.join(lab.SOURCE_DIR, "docs", "audit-records.md")
COMMON = ("ts", "v", "event", "conn", "listener")
# Fields of the schema this lab does not provoke (a WebSocket-style Upgrade tunnel, a session
# cut in the middle of a response).
# auth_user needs a SASL backend, which the lab's Postfix is not: test_limits.py provokes it against
# a fake SMTP backend.
NOT_PROVOKED = {"http.request": {"tunnel", "incomplete"}, "smtp.message": {"auth_user"}}
USER, PASSWORD = "alice", "wonderland"


def load_schema():
    with open(SCHEMA_PATH) as f:
        return json.load(f)


def validator(schema):
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def schema_events(schema):
    return schema["properties"]["event"]["enum"]


def without_event(schema, event):
    """A copy of the schema that does not know `event`."""
    out = copy.deepcopy(schema)
    out["properties"]["event"]["enum"].remove(event)
    out["allOf"] = [rule for rule in out["allOf"]
                    if rule["if"]["properties"]["event"]["const"] != event]
    del out["$defs"][event]
    return out


def errors(v, record):
    return [e.message for e in v.iter_errors(record)]


def read_source(relative):
    with open(os.path.join(lab.SOURCE_DIR, relative)) as f:
        return f.read()


class SchemaMatchesTheCodeTest(unittest.TestCase):
    """No peers: the schema's tables against the code's own, and the reference's examples."""

    @classmethod
    def setUpClass(cls):
        cls.schema = load_schema()
        cls.validator = validator(cls.schema)

    def test_outcomes_are_the_code_table(self):
        table = re.search(r"outcome_names = \{(.*?)\};", read_source("proxy/outcome.hpp"), re.S)
        self.assertIsNotNone(table, "outcome_names not found in proxy/outcome.hpp")
        self.assertEqual(re.findall(r'"(\w+)"', table.group(1)),
                         self.schema["$defs"]["outcome"]["enum"])

    def test_finding_kinds_are_the_code_table(self):
        kinds = re.findall(r'kind_\w+ = "(\w+)"', read_source("policy/chain_findings.hpp"))
        self.assertGreaterEqual(len(kinds), 8)
        self.assertEqual(sorted(kinds),
                         sorted(self.schema["$defs"]["finding"]["properties"]["kind"]["enum"]))

    def test_every_event_the_source_writes_is_in_the_schema(self):
        written = set()
        for directory in ("proxy", "protocols"):
            for root, _, names in os.walk(os.path.join(lab.SOURCE_DIR, directory)):
                for name in names:
                    if name.endswith((".cpp", ".hpp")):
                        with open(os.path.join(root, name)) as f:
                            text = f.read()
                        written.update(re.findall(r'\{"event", "([\w.]+)"\}', text))
                        written.update(re.findall(r'\["event"\] = "([\w.]+)"', text))
        self.assertGreaterEqual(len(written), 8, written)
        self.assertEqual(sorted(written), sorted(schema_events(self.schema)),
                         "record types the source writes vs. those the schema describes")

    def test_the_reference_examples_validate(self):
        with open(REFERENCE_PATH) as f:
            reference = f.read()
        blocks = re.findall(r"```json\n(.*?)```", reference, re.S)
        examples = [json.loads(line) for block in blocks for line in block.splitlines()
                    if line.strip()]
        self.assertGreaterEqual(len(examples), len(schema_events(self.schema)))
        for example in examples:
            self.assertEqual(errors(self.validator, example), [], example)
        self.assertEqual({e["event"] for e in examples}, set(schema_events(self.schema)),
                         "docs/audit-records.md shows one example of every record type")

    def test_a_renamed_or_mistyped_field_is_rejected(self):
        with open(REFERENCE_PATH) as f:
            reference = f.read()
        block = re.findall(r"```json\n(.*?)```", reference, re.S)[0]
        conn = json.loads(block.splitlines()[0])
        self.assertEqual(conn["event"], "conn")
        self.assertEqual(errors(self.validator, conn), [])
        renamed = dict(conn)
        renamed["bytes_received"] = renamed.pop("bytes_in")
        self.assertNotEqual(errors(self.validator, renamed), [], "renamed field accepted")
        mistyped = dict(conn, outcome="okay")
        self.assertNotEqual(errors(self.validator, mistyped), [], "unknown outcome accepted")
        mistyped = dict(conn, duration_ms="12")
        self.assertNotEqual(errors(self.validator, mistyped), [], "string for a number accepted")
        nested = copy.deepcopy(conn)
        nested["front"]["version"] = nested["front"].pop("tls")
        self.assertNotEqual(errors(self.validator, nested), [], "renamed nested field accepted")


def modern_context(cafile=None):
    ctx = lab.client_context(cafile)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


class LineClient:
    """A raw CRLF client for the IMAP and POP3 refusals (imaplib and poplib refuse to send what
    the proxy must refuse)."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=15)
        self.local = "%s:%d" % self.sock.getsockname()[:2]
        self.buffer = b""

    def line(self):
        while b"\r\n" not in self.buffer:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("closed")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line.decode("utf-8", "replace")

    def until(self, prefix):
        for _ in range(50):
            line = self.line()
            if line.startswith(prefix):
                return line
        raise AssertionError(f"no line starting with {prefix!r}")

    def send(self, text):
        self.sock.sendall(text.encode() + b"\r\n")

    def close(self):
        self.sock.close()


class AuditSchemaLabTest(unittest.TestCase):
    """Real records of every type, validated line by line."""

    @classmethod
    def setUpClass(cls):
        cls.schema = load_schema()
        cls.validator = validator(cls.schema)
        certs = cls.certs = lab.shared_certs()
        cls.postfix = lab.start_for_class(cls, lab.PostfixBackend(certs))
        cls.dovecot = lab.DovecotBackend(certs, user=USER, password=PASSWORD)
        cls.addClassCleanup(cls.dovecot.cleanup)
        cls.dovecot.start()
        cls.iis = legacy_iis.LegacyIis(certs).start()
        cls.addClassCleanup(cls.iis.stop)

        names = ("smtp", "smtp_ca", "smtps_mtls", "smtp_proxied", "smtp_denied", "smtp_down",
                 "imap", "pop3", "https")
        cls.port = {name: lab.free_port() for name in names}
        nobody = lab.free_port()
        pf = cls.postfix.port

        def smtp(name, backend_port=pf, **extra):
            return lab.smtp_listener(cls.port[name], backend_port, name=name, **extra)

        ca_leg = smtp("smtp_ca")
        ca_leg["backend"].update({"verify": "ca", "ca_file": f"{certs}/ca.crt"})
        listeners = [
            smtp("smtp"),
            ca_leg,
            smtp("smtps_mtls", tls="implicit", client_certs="optional",
                 client_ca=f"{certs}/ca.crt"),
            smtp("smtp_proxied", proxy_protocol=True, trusted_proxies=["127.0.0.1/32"]),
            smtp("smtp_denied", allow=["192.0.2.0/24"]),
            smtp("smtp_down", backend_port=nobody),
            smtp("imap", backend_port=cls.dovecot.imap_port, protocol="imap",
                 auth_guard={"failures_per_user": 1, "tarpit": "0s"}),
            smtp("pop3", backend_port=cls.dovecot.pop3_port, protocol="pop3"),
            {"name": "https", "protocol": "https", "listen": f"127.0.0.1:{cls.port['https']}",
             "backend": {"address": [f"127.0.0.1:{cls.iis.port}"], "tls": "implicit",
                         "tls_profile": "legacy", "verify": "none"}},
        ]
        cls.proxy = lab.Tlsbridge(listeners, [(f"{certs}/server.chain.pem",
                                               f"{certs}/server.key")])
        cls.addClassCleanup(cls.proxy.cleanup)
        cls.proxy.start()
        cls.proxy.wait_for_probes_done()
        cls.make_traffic()
        cls.records = cls.proxy.audit_records()

    # -- traffic, one piece per record type ---------------------------------------------------

    @classmethod
    def make_traffic(cls):
        cls.clients = {}
        cls.smtp_message()
        cls.smtp_refusals_and_injection()
        cls.smtp_refused_chain()
        cls.smtp_client_chain()
        cls.smtp_proxied()
        cls.smtp_denied_and_down()
        cls.tls_failed()
        cls.imap_and_pop3()
        cls.https()
        expected = len(cls.clients)
        cls.proxy.wait_for_conn_records(expected, timeout=20)

    @classmethod
    def smtp_message(cls):
        with smtplib.SMTP("127.0.0.1", cls.port["smtp"], timeout=20) as s:
            cls.clients["message"] = "%s:%d" % s.sock.getsockname()[:2]
            s.starttls(context=modern_context())
            s.sendmail("sender@example.test", ["rcpt@example.test"],
                       b"Subject: schema\r\n\r\naudit schema test\r\n")

    @classmethod
    def smtp_refusals_and_injection(cls):
        c = lab.SmtpClient(cls.port["smtp"])
        cls.clients["refusals"] = c.local_address()
        try:
            c.read_reply()
            c.command("EHLO client.test")
            code, _ = c.command("MAIL FROM:<a@example.test>")   # 530 before STARTTLS
            assert code == "530", code
            code, _ = c.command("AUTH PLAIN AGEAYg==")          # 538: pretls_auth_attempts
            assert code == "538", code
            c.send("STARTTLS\r\nNOOP\r\n")                      # NOOP is injected plaintext
            code, _ = c.read_reply()
            assert code == "220", code
            c.buffer = b""
            c.starttls(modern_context())
            c.command("QUIT")
        finally:
            c.close()

    @classmethod
    def smtp_refused_chain(cls):
        c = lab.SmtpClient(cls.port["smtp_ca"])
        cls.clients["refused_chain"] = c.local_address()
        try:
            cls.refused_chain_reply = c.read_until_closed(timeout=20)
        finally:
            c.close()

    @classmethod
    def smtp_client_chain(cls):
        ctx = ssl.create_default_context(cafile=f"{cls.certs}/ca.crt")
        ctx.load_cert_chain(f"{cls.certs}/client.chain.pem", f"{cls.certs}/client.key")
        raw = socket.create_connection(("127.0.0.1", cls.port["smtps_mtls"]), timeout=15)
        cls.clients["client_chain"] = "%s:%d" % raw.getsockname()[:2]
        with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            tls.recv(4096)
            tls.sendall(b"QUIT\r\n")
            tls.recv(4096)

    @classmethod
    def smtp_proxied(cls):
        c = lab.SmtpClient(cls.port["smtp_proxied"])
        cls.clients["proxied"] = "192.0.2.10:40000"
        try:
            c.send(f"PROXY TCP4 192.0.2.10 127.0.0.1 40000 {cls.port['smtp_proxied']}\r\n")
            c.read_reply()
            c.command("QUIT")
        finally:
            c.close()

    @classmethod
    def smtp_denied_and_down(cls):
        for name in ("smtp_denied", "smtp_down"):
            c = lab.SmtpClient(cls.port[name])
            cls.clients[name] = c.local_address()
            try:
                c.read_until_closed(timeout=20)
            finally:
                c.close()

    @classmethod
    def tls_failed(cls):
        ctx = lab.client_context()
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_1
            ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        raw = socket.create_connection(("127.0.0.1", cls.port["https"]), timeout=15)
        cls.clients["tls_failed"] = "%s:%d" % raw.getsockname()[:2]
        try:
            ctx.wrap_socket(raw).close()
            raise AssertionError("TLS 1.1 was accepted on the front")
        except (ssl.SSLError, ConnectionResetError):
            pass
        finally:
            raw.close()

    @classmethod
    def imap_and_pop3(cls):
        import imaplib
        import poplib
        imap = imaplib.IMAP4("127.0.0.1", cls.port["imap"], timeout=15)
        cls.clients["imap_login"] = "%s:%d" % imap.sock.getsockname()[:2]
        imap.starttls(ssl_context=modern_context())
        imap.login(USER, PASSWORD)
        imap.logout()
        # The auth guard: a failure (auth.failure), then the same user blocked (auth.blocked).
        imap = imaplib.IMAP4("127.0.0.1", cls.port["imap"], timeout=15)
        cls.clients["imap_guard"] = "%s:%d" % imap.sock.getsockname()[:2]
        imap.starttls(ssl_context=modern_context())
        for expected in ("AUTHENTICATIONFAILED", "UNAVAILABLE"):
            try:
                imap.login("mallory", "guess")
                raise AssertionError("a wrong password was accepted")
            except imaplib.IMAP4.error as e:
                assert expected in str(e), e
        imap.logout()
        pop = poplib.POP3("127.0.0.1", cls.port["pop3"], timeout=15)
        cls.clients["pop3_login"] = "%s:%d" % pop.sock.getsockname()[:2]
        pop.stls(context=modern_context())
        pop.user(USER)
        pop.pass_(PASSWORD)
        pop.quit()

        c = LineClient(cls.port["imap"])
        cls.clients["imap_refused"] = c.local
        c.until("* OK")
        c.send(f"a1 LOGIN {USER} {PASSWORD}")        # refused: before STARTTLS
        assert c.until("a1 ").startswith("a1 NO")
        c.send("a2 LOGOUT")
        c.until("a2 ")
        c.close()
        c = LineClient(cls.port["pop3"])
        cls.clients["pop3_refused"] = c.local
        c.until("+OK")
        c.send(f"USER {USER}")                        # refused: before STLS
        assert c.line().startswith("-ERR")
        c.send("QUIT")
        c.line()
        c.close()

    @classmethod
    def https(cls):
        ctx = modern_context(f"{cls.certs}/ca.crt")
        conn = http.client.HTTPSConnection("localhost", cls.port["https"], timeout=20,
                                           context=ctx)
        conn.connect()
        cls.clients["https"] = "%s:%d" % conn.sock.getsockname()[:2]

        def request(method, path, headers):
            conn.request(method, path, headers=headers)
            response = conn.getresponse()
            response.read()
            return response.status

        def ntlm(token):
            return {"Authorization": "NTLM " + base64.b64encode(token).decode()}

        request("GET", "/EWS/Exchange.asmx", ntlm(legacy_iis.ntlm_negotiate()))
        request("GET", "/EWS/Exchange.asmx",
                ntlm(legacy_iis.ntlm_authenticate("CONTOSO", USER, "WS1")))
        basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        request("POST", "/Microsoft-Server-ActiveSync?Cmd=Sync&User=alice&DeviceId=dev1"
                        "&DeviceType=iPhone",
                {"Authorization": "Basic " + basic, "Content-Length": "0", "X_Custom": "1"})
        status = request("GET", "/not-exchange", {})
        assert status == 404, status
        conn.close()

    # -- the checks ---------------------------------------------------------------------------

    def test_every_line_validates(self):
        self.assertGreater(len(self.records), len(self.clients), self.proxy.describe())
        for number, record in enumerate(self.records, 1):
            self.assertEqual(errors(self.validator, record), [],
                             f"audit line {number}: {json.dumps(record)}")

    def test_every_record_type_and_field_was_seen(self):
        events = {r["event"] for r in self.records}
        self.assertEqual(sorted(events), sorted(schema_events(self.schema)),
                         "the lab must produce every record type the schema describes")
        for event in schema_events(self.schema):
            described = set(self.schema["$defs"][event]["properties"])
            seen = set().union(*(r.keys() for r in self.records if r["event"] == event))
            missing = described - seen - NOT_PROVOKED.get(event, set())
            self.assertEqual(missing, set(), f"{event}: fields of the schema never written")

    def test_the_provoked_outcomes_and_details_are_recorded(self):
        by_client = {r["client"]: r for r in self.records if r["event"] == "conn"}
        outcome = {name: by_client.get(addr, {}).get("outcome")
                   for name, addr in self.clients.items()}
        self.assertEqual(outcome["message"], "ok", self.proxy.describe())
        self.assertEqual(outcome["refused_chain"], "refused_policy", self.refused_chain_reply)
        self.assertEqual(outcome["smtp_denied"], "denied")
        self.assertEqual(outcome["smtp_down"], "backend_unavailable")
        self.assertEqual(outcome["tls_failed"], "tls_failed")
        refused = by_client[self.clients["refused_chain"]]["backend"]["chain"]
        self.assertEqual(refused["verdict"], "refused", refused)
        self.assertIsNotNone(by_client[self.clients["client_chain"]]["front"]["chain"])
        self.assertIn("proxy", by_client[self.clients["proxied"]])
        injected = by_client[self.clients["refusals"]]
        self.assertTrue(injected["starttls_injection"], injected)
        self.assertIn("smtp.require_tls", injected["refusals"], injected)

    def test_a_renamed_field_or_a_wrong_value_is_rejected_in_every_type(self):
        for event in schema_events(self.schema):
            record = next(r for r in self.records if r["event"] == event)
            own = [k for k in record if k not in COMMON]
            self.assertTrue(own, record)
            renamed = dict(record)
            renamed[own[0] + "_renamed"] = renamed.pop(own[0])
            self.assertNotEqual(errors(self.validator, renamed), [],
                                f"{event}: {own[0]} renamed was accepted")
            for key in COMMON:
                mistyped = dict(record, **{key: 7})
                self.assertNotEqual(errors(self.validator, mistyped), [],
                                    f"{event}: a number for {key} was accepted")
        conn = next(r for r in self.records if r["event"] == "conn")
        self.assertNotEqual(errors(self.validator, dict(conn, outcome="fine")), [])
        self.assertNotEqual(errors(self.validator, dict(conn, event="connection")), [])

    def test_a_record_type_missing_from_the_schema_fails(self):
        for event in schema_events(self.schema):
            partial = validator(without_event(self.schema, event))
            failing = [r for r in self.records if errors(partial, r)]
            self.assertTrue(failing, f"without {event} in the schema every record still passed")
            self.assertEqual({r["event"] for r in failing}, {event})


if __name__ == "__main__":
    unittest.main()
