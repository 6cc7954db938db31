"""The soak: mixed load at a steady rate through one tlsbridge process, and the checks that it
lost nothing (Python stdlib, plus python3-jsonschema for the audit records).

One proxy fronts the lab's TLS 1.0 STARTTLS Postfix (SMTP), Dovecot (IMAP) and the IIS stand-in
(legacy_iis.py, run as its own process so that a restart really cuts its connections). For the
given duration the load runs at once:

* SMTP STARTTLS transactions (smtplib, TLS 1.2+ on the front), each message with a unique
  Message-ID, paced at `smtp_rate` per second by a few worker threads;
* IMAP IDLE sessions held on one connection each, refreshed (DONE, IDLE again) every `idle_refresh`;
* ActiveSync Pings held by the backend `ping_hold` seconds on kept-alive connections, and 1 MiB
  uploads (new connection each) at `upload_rate` per second, their SHA-256 checked;
* a SIGHUP every `hup_interval`, and a backend restart (Postfix, Dovecot, IIS in turn) every
  `restart_interval` after warm-up.

Then it checks, and `Soak.run()` answers the checks with the figures behind them:

* delivery: every message a client saw accepted (250 after DATA) is in Postfix's maildir exactly
  once; one that got no 250 may be missing but is never there twice;
* flat: the proxy's RSS and open descriptors (/proc/PID), sampled at a quiet point at the end of
  warm-up and at the end (short-lived load paused, held sessions kept), grow at most 5 %; the
  whole series is summarised too;
* audit: every line validates against docs/audit-record.schema.json, there is exactly one `conn`
  record per connection the clients opened (by client address and port), and every outcome other
  than `ok`, and every refusal, belongs to a connection that overlapped a restart of its backend;
* errors: no client saw an error except around a restart of its own backend (counted by kind);
* reloads: every SIGHUP gave one "reload done" line.

bench/soak is the command line; tests/integration/test_soak.py runs the 3-minute version.
"""

import collections
import datetime
import glob
import hashlib
import http.client
import json
import os
import re
import select
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid

import lab

HERE = os.path.dirname(os.path.abspath(__file__))
SCHEMA_PATH = os.path.join(lab.SOURCE_DIR, "docs", "audit-record.schema.json")
USER, PASSWORD = "soak", "soak-password"
FLAT_LIMIT = 0.05          # at most 5 % growth of RSS and descriptors after warm-up
RESTART_GRACE = 12.0       # seconds after a backend is back in which its clients may still fail
IO_TIMEOUT = 30.0          # any one client read or write


class Settings:
    """The soak's knobs; short() and long() are the two versions, scaled()'s rates for ASan."""

    def __init__(self, duration, warmup, hup_interval, restart_interval, smtp_rate=5.0,
                 smtp_workers=6, idle_sessions=3, idle_refresh=20.0, ping_sessions=2,
                 ping_hold=5.0, upload_rate=0.2, sample_interval=2.0):
        self.duration = duration
        self.warmup = warmup
        self.hup_interval = hup_interval
        self.restart_interval = restart_interval
        self.smtp_rate = smtp_rate
        self.smtp_workers = smtp_workers
        self.idle_sessions = idle_sessions
        self.idle_refresh = idle_refresh
        self.ping_sessions = ping_sessions
        self.ping_hold = ping_hold
        self.upload_rate = upload_rate
        self.sample_interval = sample_interval

    @classmethod
    def for_duration(cls, seconds, sanitized=False):
        """Up to 5 minutes: the CI version (SIGHUP every 20 s, a restart every 30 s after a 40 s
        warm-up: at least one of each kind in 3 minutes); longer: SIGHUP every minute, a restart
        every five, warm-up the first five minutes."""
        if seconds <= 300:
            s = cls(seconds, warmup=min(40.0, seconds / 4), hup_interval=20.0,
                    restart_interval=30.0, sample_interval=2.0)
        else:
            s = cls(seconds, warmup=300.0, hup_interval=60.0, restart_interval=300.0,
                    idle_refresh=60.0, ping_hold=20.0, sample_interval=5.0)
        if sanitized:
            # An ASan build is several times slower per connection and the CI machine runs
            # other tests beside it: a third of the rate keeps the load steady, not saturating.
            s.smtp_rate /= 3
            s.upload_rate /= 2
        return s

    def restart_times(self):
        """Seconds from the start at which a backend restart begins: after warm-up, one every
        restart_interval (the first half an interval in), none in the last 25 s."""
        times = []
        t = self.warmup + self.restart_interval / 2
        while t < self.duration - 25:
            times.append(t)
            t += self.restart_interval
        return times


def parse_duration(text):
    """'30m', '3m', '180s', '180' -> seconds."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([smh]?)", text.strip())
    if not match:
        raise ValueError(f"not a duration: {text!r} (e.g. 3m, 30m, 180s)")
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]


def modern_context():
    ctx = lab.client_context()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def error_kind(exc):
    """A short name for what a client saw: the exception's class and, for a reply, its code."""
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{type(exc).__name__} {exc.smtp_code}"
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = sorted({code for code, _ in exc.recipients.values()})
        return f"SMTPRecipientsRefused {codes}"
    return type(exc).__name__


def utc_seconds(ts):
    """An audit record's "ts" (ISO 8601, Z) as a Unix time."""
    return datetime.datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


# ---------------------------------------------------------------------------------------------
# The peers

class IisProcess:
    """The IIS stand-in as a process of its own (legacy_iis.py --port), so that a restart
    closes every connection it holds, as a restarted IIS does."""

    def __init__(self, certs, directory):
        self.certs = certs
        self.port = lab.free_port()
        self.log_path = os.path.join(directory, "iis.log")
        self.proc = None

    def start(self):
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, os.path.join(HERE, "legacy_iis.py"), "--certs", self.certs,
                 "--port", str(self.port)], stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                cwd=HERE)
        if not lab.wait_until(lambda: lab.port_accepts(self.port), 20):
            self.stop()
            raise lab.LabError(f"IIS stand-in not accepting on {self.port}")
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def cleanup(self):
        self.stop()


def restart_postfix(postfix):
    """postfix stop and start on the same port and spool: what is queued stays queued. (lab's
    start() would refuse the port while the proxy's old connections sit in TIME_WAIT on it.)"""
    postfix.stop()
    proc = postfix.postfix("start", timeout=lab.POSTFIX_START_TIMEOUT)
    if proc.returncode != 0 or not lab.wait_until(lambda: lab.port_accepts(postfix.port), 20):
        raise lab.LabError(f"Postfix did not come back: {proc.stdout}{proc.stderr}")
    postfix.started = True


class SoakProxy(lab.Tlsbridge):
    """The lab's proxy at log level info: a soak measures the proxy as it runs in production."""

    def config_text(self):
        return super().config_text().replace('[log]\nlevel = "debug"', '[log]\nlevel = "info"')


# ---------------------------------------------------------------------------------------------
# The soak

class Soak:
    def __init__(self, settings, log=None):
        self.s = settings
        self.log = log or (lambda msg: print(f"[soak {time.strftime('%H:%M:%S')}] {msg}",
                                             file=sys.stderr, flush=True))
        self.run_id = uuid.uuid4().hex[:12]
        self.lock = threading.Lock()
        self.stop_load = threading.Event()     # the end: every client stops
        self.paused = threading.Event()        # a quiet point: short-lived load waits
        self.held_stop = threading.Event()     # held sessions end (after stop_load)
        self.in_flight = 0
        self.opened = collections.Counter()    # client "ip:port" -> connections opened
        self.opened_by_kind = collections.Counter()
        self.kind_of = {}                      # client "ip:port" -> the kind that last used it
        self.accepted = []                     # Message-IDs a client saw 250 after DATA for
        self.unconfirmed = []                  # sent, but no 250 seen (error around a restart)
        self.counts = collections.Counter()    # successful operations per kind
        self.errors = []                       # (time, client kind, error kind, detail)
        self.restarts = []                     # (backend, begin, end)
        self.hups = 0
        self.samples = []                      # (t, rss_kib, fds)
        self.quiet = {}                        # "warmup"/"end" -> (rss_kib, fds)
        self.peers = []

    # -- bookkeeping ------------------------------------------------------------------------

    def note_open(self, kind, sock):
        host, port = sock.getsockname()[:2]
        with self.lock:
            self.opened[f"{host}:{port}"] += 1
            self.kind_of[f"{host}:{port}"] = kind
            self.opened_by_kind[kind] += 1

    def note_error(self, kind, exc):
        with self.lock:
            self.errors.append((time.time(), kind, error_kind(exc), str(exc)[:200]))

    def count(self, kind, n=1):
        with self.lock:
            self.counts[kind] += n

    def wait_or_stop(self, event, seconds):
        """Sleeps seconds unless event is set first; True when it was set."""
        return event.wait(max(0.0, seconds))

    # -- set-up -----------------------------------------------------------------------------

    def start_lab(self):
        begin = time.monotonic()
        self.dir = lab.make_lab_dir("tlsbridge-soak.")
        self.certs = lab.shared_certs()
        self.postfix = lab.PostfixBackend(self.certs)
        self.postfix.start()
        self.peers.append(self.postfix)
        self.dovecot = lab.DovecotBackend(self.certs, user=USER, password=PASSWORD,
                                          auth_penalty=False)
        self.dovecot.start()
        self.peers.append(self.dovecot)
        self.iis = IisProcess(self.certs, self.dir).start()
        self.peers.append(self.iis)
        self.port = {name: lab.free_port() for name in ("smtp", "imap", "https")}
        listeners = [
            lab.smtp_listener(self.port["smtp"], self.postfix.port, name="smtp"),
            lab.smtp_listener(self.port["imap"], self.dovecot.imap_port, name="imap",
                              protocol="imap", tls="implicit"),
            {"name": "https", "protocol": "https", "listen": f"127.0.0.1:{self.port['https']}",
             "backend": {"address": [f"127.0.0.1:{self.iis.port}"], "tls": "implicit",
                         "tls_profile": "legacy", "verify": "none"}},
        ]
        self.backend_of = {"smtp": "postfix", "imap": "dovecot", "https": "iis",
                           "upload": "iis", "ping": "iis"}
        self.proxy = SoakProxy(listeners, [(f"{self.certs}/server.chain.pem",
                                            f"{self.certs}/server.key")],
                               directory=os.path.join(self.dir, "proxy"))
        os.makedirs(self.proxy.dir, mode=0o755)
        self.proxy.start()
        self.peers.append(self.proxy)
        self.proxy.wait_for_probes_done()
        self.log(f"lab up in {time.monotonic() - begin:.1f} s: proxy pid {self.proxy.proc.pid}, "
                 f"Postfix {self.postfix.port}, Dovecot {self.dovecot.imap_port}, "
                 f"IIS stand-in {self.iis.port}")

    def cleanup(self, remove=True):
        for peer in reversed(self.peers):
            try:
                if isinstance(peer, IisProcess):
                    peer.cleanup()
                else:
                    peer.cleanup(remove=remove)
            except lab.LabError as e:
                self.log(f"cleanup: {e}")
        self.peers = []
        if remove and not lab.keep_lab() and getattr(self, "dir", "").startswith("/tmp/"):
            shutil.rmtree(self.dir, ignore_errors=True)

    # -- the clients ------------------------------------------------------------------------

    def smtp_transaction(self, number):
        message_id = f"<soak-{self.run_id}-{number}@soak.test>"
        body = (f"From: <load@soak.test>\r\nTo: <sink@backend.test>\r\n"
                f"Subject: soak {number}\r\nMessage-ID: {message_id}\r\n\r\n"
                + f"line {number} of the soak, padding the message to a couple of KiB\r\n" * 30)
        sent_data = False
        try:
            with smtplib.SMTP(timeout=IO_TIMEOUT) as client:
                client.sock = socket.create_connection(("127.0.0.1", self.port["smtp"]),
                                                       timeout=IO_TIMEOUT)
                self.note_open("smtp", client.sock)
                client._host = "proxy.test"  # the name starttls() sends as SNI
                code, _ = client.getreply()
                if code != 220:
                    raise smtplib.SMTPConnectError(code, "greeting")
                client.ehlo("soak.test")
                client.starttls(context=modern_context())
                client.ehlo("soak.test")
                client.mail("load@soak.test")
                code, reply = client.rcpt("sink@backend.test")
                if code != 250:
                    raise smtplib.SMTPResponseException(code, reply)
                sent_data = True
                code, reply = client.data(body.encode())
                if code != 250:
                    raise smtplib.SMTPDataError(code, reply)
                with self.lock:
                    self.accepted.append(message_id)
                sent_data = False
                self.count("smtp")
                try:
                    client.quit()
                except (smtplib.SMTPException, OSError) as e:
                    self.note_error("smtp-quit", e)
        except (smtplib.SMTPException, OSError) as e:
            if sent_data:
                with self.lock:
                    self.unconfirmed.append(message_id)
            self.note_error("smtp", e)

    def paced(self, rate, work, workers, kind):
        """Runs work(n) at rate per second on `workers` threads; a tick that finds every worker
        busy waits for one (the achieved rate says so). Pauses at quiet points."""
        ticks = threading.Semaphore(0)
        free = threading.Semaphore(workers)
        counter = iter(range(1, 10 ** 9))

        def worker():
            while True:
                ticks.acquire()
                if self.stop_load.is_set():
                    return
                number = next(counter)
                try:
                    work(number)
                finally:
                    with self.lock:
                        self.in_flight -= 1
                    free.release()

        threads = [threading.Thread(target=worker, daemon=True, name=f"{kind}-{i}")
                   for i in range(workers)]
        for t in threads:
            t.start()
        interval = 1.0 / rate
        next_at = time.monotonic()
        while not self.stop_load.is_set():
            if self.paused.is_set():
                self.stop_load.wait(0.1)
                next_at = time.monotonic()
                continue
            if self.wait_or_stop(self.stop_load, next_at - time.monotonic()):
                break
            if self.paused.is_set():
                continue
            next_at += interval
            while not free.acquire(timeout=0.5):
                if self.stop_load.is_set():
                    break
            else:
                with self.lock:
                    self.in_flight += 1
                ticks.release()
        for _ in threads:
            ticks.release()
        for t in threads:
            t.join(IO_TIMEOUT * 3)

    def upload(self, number):
        payload = hashlib.sha256(f"{self.run_id}-{number}".encode()).digest() * (1 << 15)
        conn = http.client.HTTPSConnection("127.0.0.1", self.port["https"], timeout=IO_TIMEOUT,
                                           context=modern_context())
        try:
            conn.connect()
            self.note_open("upload", conn.sock)
            conn.request("POST", "/EWS/upload", body=payload,
                         headers={"Content-Type": "application/octet-stream"})
            response = conn.getresponse()
            data = response.read()
            if response.status != 200:
                raise http.client.HTTPException(f"upload status {response.status}")
            answer = json.loads(data)
            if (answer.get("sha256") != hashlib.sha256(payload).hexdigest()
                    or answer.get("length") != len(payload)):
                raise http.client.HTTPException(f"upload arrived damaged: {answer}")
            self.count("upload")
        except (http.client.HTTPException, OSError, ValueError) as e:
            self.note_error("upload", e)
        finally:
            conn.close()

    def held(self, kind, session):
        """Runs session() — one connection held until held_stop, or until the server closes it —
        again and again until held_stop; an error is counted for `kind`, then a second's pause
        before the next connection."""
        while not self.held_stop.is_set():
            try:
                session()
            except (http.client.HTTPException, OSError, ImapError) as e:
                self.note_error(kind, e)
                self.wait_or_stop(self.held_stop, 1.0)

    def ping_session(self, index):
        """Pings held by the backend on one kept-alive connection; a new connection only when the
        old one broke (counted) or was closed by the server."""
        path = (f"/Microsoft-Server-ActiveSync?Cmd=Ping&User={USER}&DeviceId=SOAK{index}"
                "&DeviceType=SmartPhone")

        def session():
            conn = http.client.HTTPSConnection("127.0.0.1", self.port["https"],
                                               context=modern_context(),
                                               timeout=self.s.ping_hold + IO_TIMEOUT)
            try:
                conn.connect()
                self.note_open("ping", conn.sock)
                while not self.held_stop.is_set() and conn.sock is not None:
                    conn.request("POST", path, body=b"\x03\x01j\x00",
                                 headers={"X-Test-Hold": str(self.s.ping_hold),
                                          "Content-Type": "application/vnd.ms-sync.wbxml"})
                    response = conn.getresponse()
                    response.read()
                    if response.status != 200:
                        raise http.client.HTTPException(f"ping status {response.status}")
                    self.count("ping")
            finally:
                conn.close()

        self.held("ping", session)

    def idle_session(self, index):
        """One IMAP connection: LOGIN, SELECT, then IDLE held idle_refresh seconds and renewed
        (DONE, IDLE) until the end; reconnects only after an error."""

        def session():
            client = ImapLines(self.port["imap"])
            try:
                self.note_open("imap", client.raw)
                client.start_tls()
                client.expect_untagged_ok()
                client.command("a1", f"LOGIN {USER} {PASSWORD}")
                client.command("a2", "SELECT INBOX")
                tag = 3
                while not self.held_stop.is_set():
                    client.send(f"a{tag} IDLE")
                    client.until_continuation()
                    deadline = time.monotonic() + self.s.idle_refresh
                    while time.monotonic() < deadline and not self.held_stop.is_set():
                        client.drain_untagged(min(1.0, deadline - time.monotonic()))
                    client.send("DONE")
                    client.until_tagged(f"a{tag}")
                    self.count("idle")
                    tag += 1
                client.command(f"a{tag}", "LOGOUT")
            finally:
                client.close()

        self.held("imap", session)

    # -- the operator: reloads, restarts, samples ---------------------------------------------

    def sample(self):
        pid = self.proxy.proc.pid
        with open(f"/proc/{pid}/status") as f:
            rss = int(re.search(r"^VmRSS:\s+(\d+)", f.read(), re.M).group(1))
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        return rss, fds

    def sampler(self):
        while not self.wait_or_stop(self.held_stop, self.s.sample_interval):
            try:
                rss, fds = self.sample()
            except (OSError, AttributeError):
                continue
            with self.lock:
                self.samples.append((time.monotonic() - self.t0, rss, fds))

    def quiet_point(self, name):
        """Pauses the short-lived load, waits for what is in flight and for the proxy to close
        those sessions, then samples: only the held sessions are open, as at the other quiet
        point."""
        self.paused.set()
        lab.wait_until(lambda: self.in_flight == 0, IO_TIMEOUT * 2, interval=0.1)
        time.sleep(2.0)
        readings = []
        for _ in range(3):
            readings.append(self.sample())
            time.sleep(0.5)
        self.quiet[name] = (min(r[0] for r in readings), min(r[1] for r in readings))
        self.log(f"quiet point {name}: RSS {self.quiet[name][0]} KiB, "
                 f"{self.quiet[name][1]} descriptors")
        self.paused.clear()

    def restart(self, backend):
        begin = time.time()
        self.log(f"restarting {backend}")
        if backend == "postfix":
            restart_postfix(self.postfix)
        elif backend == "dovecot":
            self.dovecot.stop()
            self.dovecot.start()
        else:
            self.iis.stop()
            self.iis.start()
        with self.lock:
            self.restarts.append((backend, begin, time.time()))

    def operator(self):
        """SIGHUP every hup_interval, the restarts at their times, the warm-up quiet point."""
        order = ("postfix", "dovecot", "iis")
        restarts = list(self.s.restart_times())
        next_hup = self.s.hup_interval
        warmed = False
        done = 0
        while True:
            now = time.monotonic() - self.t0
            if now >= self.s.duration:
                return
            if not warmed and now >= self.s.warmup:
                self.quiet_point("warmup")
                warmed = True
            elif now >= next_hup:
                self.proxy.proc.send_signal(signal.SIGHUP)
                self.hups += 1
                next_hup += self.s.hup_interval
            elif restarts and now >= restarts[0]:
                restarts.pop(0)
                self.restart(order[done % len(order)])
                done += 1
            else:
                time.sleep(0.2)

    # -- the run ----------------------------------------------------------------------------

    def run(self):
        """Runs the lab, the load and the checks; returns a Report (the lab is cleaned up)."""
        started = time.time()
        self.start_lab()
        load_before = os.getloadavg()
        try:
            self.t0 = time.monotonic()
            threads = [threading.Thread(target=self.paced, daemon=True, name="smtp-pacer",
                                        args=(self.s.smtp_rate, self.smtp_transaction,
                                              self.s.smtp_workers, "smtp")),
                       threading.Thread(target=self.paced, daemon=True, name="upload-pacer",
                                        args=(self.s.upload_rate, self.upload, 2, "upload"))]
            held = [threading.Thread(target=self.idle_session, args=(i,), daemon=True)
                    for i in range(self.s.idle_sessions)]
            held += [threading.Thread(target=self.ping_session, args=(i,), daemon=True)
                     for i in range(self.s.ping_sessions)]
            held.append(threading.Thread(target=self.sampler, daemon=True))
            for t in threads + held:
                t.start()
            self.operator()
            self.quiet_point("end")
            load_end = os.getloadavg()
            self.stop_load.set()
            for t in threads:
                t.join(IO_TIMEOUT * 4)
            self.held_stop.set()
            for t in held:
                t.join(self.s.ping_hold + IO_TIMEOUT)
            elapsed = time.monotonic() - self.t0
            self.log("load stopped; waiting for the records and the deliveries")
            report = Report(self, elapsed, started, load_before, load_end)
            report.check_all()
            return report
        finally:
            self.stop_load.set()
            self.held_stop.set()
            self.cleanup()

    # -- what the backends and the proxy say ----------------------------------------------------

    def delivered_ids(self):
        ids = collections.Counter()
        pattern = re.compile(rb"^Message-ID:\s*(<[^>]*>)", re.M | re.I)
        for sub in ("new", "cur"):
            for path in glob.glob(os.path.join(self.postfix.maildir, sub, "*")):
                try:
                    with open(path, "rb") as f:
                        head = f.read(65536).split(b"\n\n", 1)[0]
                except OSError:
                    continue
                for match in pattern.finditer(head):
                    ids[match.group(1).decode()] += 1
        return ids

    def reload_lines(self):
        try:
            with open(self.proxy.stderr_path, "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return 0, 0
        return (len(re.findall(r"reload done \(SIGHUP\)", text)),
                len(re.findall(r"reload rejected", text)))


class ImapError(Exception):
    pass


class ImapLines:
    """IMAP over implicit TLS, line by line (imaplib has no IDLE before Python 3.14)."""

    def __init__(self, port):
        self.raw = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
        self.sock = None
        self.buffer = b""

    def start_tls(self):
        self.sock = modern_context().wrap_socket(self.raw, server_hostname="proxy.test")

    def send(self, line):
        self.sock.sendall(line.encode() + b"\r\n")

    def line(self, timeout=IO_TIMEOUT):
        deadline = time.monotonic() + timeout
        while b"\r\n" not in self.buffer:
            if not self.sock.pending():
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not select.select([self.sock], [], [], remaining)[0]:
                    return None
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ImapError("connection closed by the server")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line.decode("utf-8", "replace")

    def must_line(self):
        line = self.line()
        if line is None:
            raise ImapError(f"no reply in {IO_TIMEOUT}s")
        return line

    def expect_untagged_ok(self):
        line = self.must_line()
        if not line.startswith("* OK"):
            raise ImapError(f"greeting: {line}")

    def until_tagged(self, tag):
        for _ in range(1000):
            line = self.must_line()
            if line.startswith(tag + " "):
                if not line.startswith(tag + " OK"):
                    raise ImapError(line)
                return line
        raise ImapError(f"no tagged reply for {tag}")

    def command(self, tag, text):
        self.send(f"{tag} {text}")
        return self.until_tagged(tag)

    def until_continuation(self):
        for _ in range(1000):
            line = self.must_line()
            if line.startswith("+"):
                return
            if not line.startswith("*"):
                raise ImapError(f"IDLE: {line}")
        raise ImapError("IDLE: no continuation")

    def drain_untagged(self, timeout):
        line = self.line(timeout)
        if line is not None and not line.startswith("*"):
            raise ImapError(f"during IDLE: {line}")

    def close(self):
        for s in (self.sock, self.raw):
            try:
                if s is not None:
                    s.close()
            except OSError:
                pass


# ---------------------------------------------------------------------------------------------
# The checks and the summary

def load_conns(records, probe_clients):
    """The `conn` records of the load: without one record per readiness probe of the lab (by
    address once each, since a later client may get a probe's port again)."""
    probes = set(probe_clients)
    conns = []
    for r in records:
        if r.get("event") != "conn":
            continue
        if r.get("client") in probes:
            probes.discard(r.get("client"))
            continue
        conns.append(r)
    return conns


class Report:
    def __init__(self, soak, elapsed, started, load_before, load_end):
        self.soak = soak
        self.elapsed = elapsed
        self.started = started
        self.load = (load_before, load_end)
        self.checks = []        # (name, passed, detail)
        self.figures = {}

    def check(self, name, passed, detail):
        self.checks.append((name, bool(passed), detail))
        self.soak.log(f"check {name}: {'PASS' if passed else 'FAIL'} — {detail}")

    @property
    def passed(self):
        return all(ok for _, ok, _ in self.checks)

    def failures(self):
        return [f"{name}: {detail}" for name, ok, detail in self.checks if not ok]

    def in_restart_window(self, backend, begin, end):
        """True when [begin, end] (Unix times) overlaps a restart of backend, widened by a
        second before and RESTART_GRACE after."""
        return any(b == backend and begin <= r_end + RESTART_GRACE and end >= r_begin - 1
                   for b, r_begin, r_end in self.soak.restarts)

    def check_all(self):
        soak = self.soak
        # The audit first: waiting for the records also lets Postfix's queue drain.
        opened = sum(soak.opened.values())
        lab.wait_until(lambda: len(load_conns(soak.proxy.audit_records(),
                                              soak.proxy.probe_clients)) >= opened,
                       60, interval=0.5)
        self.check_audit()
        self.check_delivery()
        self.check_errors()
        self.check_flat()
        self.check_reloads()

    def check_delivery(self):
        soak = self.soak
        accepted = collections.Counter(soak.accepted)
        lab.wait_until(lambda: not (set(accepted) - set(soak.delivered_ids())), 120,
                       interval=1.0)
        time.sleep(2.0)  # a late duplicate would land now
        delivered = {k: v for k, v in soak.delivered_ids().items()
                     if k.startswith(f"<soak-{soak.run_id}-")}
        missing = sorted(set(accepted) - set(delivered))
        twice = sorted(k for k, v in delivered.items() if v > 1)
        sent_twice = sorted(k for k, v in accepted.items() if v > 1)
        unknown = sorted(set(delivered) - set(accepted) - set(soak.unconfirmed))
        unconfirmed_delivered = sum(1 for k in soak.unconfirmed if k in delivered)
        self.figures["delivery"] = {
            "accepted": len(accepted), "delivered": len(delivered),
            "unconfirmed": len(soak.unconfirmed),
            "unconfirmed_delivered": unconfirmed_delivered}
        self.check("delivery", not missing and not twice and not unknown and not sent_twice,
                   f"{len(accepted)} accepted, {len(delivered)} distinct delivered, "
                   f"{len(missing)} missing {missing[:3]}, {len(twice)} delivered twice "
                   f"{twice[:3]}, {len(unknown)} never sent {unknown[:3]}; "
                   f"{len(soak.unconfirmed)} without a 250 ({unconfirmed_delivered} delivered "
                   "once anyway)")

    def check_audit(self):
        import jsonschema  # python3-jsonschema (scripts/setup)
        soak = self.soak
        with open(SCHEMA_PATH) as f:
            schema = json.load(f)
        cls = jsonschema.validators.validator_for(schema)
        validator = cls(schema)
        records = soak.proxy.audit_records()
        invalid = [(r.get("event"), e.message) for r in records
                   for e in validator.iter_errors(r)]
        # Each readiness probe of the lab has one record; a later client may get a probe's
        # port again, so the probes are taken out once each, not by address.
        conns = load_conns(records, soak.proxy.probe_clients)
        seen = collections.Counter(r.get("client") for r in conns)
        missing = [(a, n, soak.kind_of.get(a)) for a, n in sorted((soak.opened - seen).items())]
        extra = sorted((seen - soak.opened).items())
        listener_kind = {"smtp": "postfix", "imap": "dovecot", "https": "iis"}
        unexplained = collections.Counter()
        outcomes = collections.Counter()
        for r in conns:
            outcomes[(r.get("listener"), r.get("outcome"))] += 1
            if r.get("outcome") == "ok" and not r.get("refusals"):
                continue
            end = utc_seconds(r["ts"])
            begin = end - r.get("duration_ms", 0) / 1000.0
            if not self.in_restart_window(listener_kind.get(r.get("listener")), begin, end):
                unexplained[(r.get("listener"), r.get("outcome"), r.get("reason", "")[:80])] += 1
        self.figures["audit"] = {"records": len(records), "conn": len(conns),
                                 "outcomes": {f"{l} {o}": n for (l, o), n in
                                              sorted(outcomes.items())}}
        self.check("audit",
                   not invalid and not missing and not extra and not unexplained,
                   f"{len(records)} records, {len(invalid)} invalid {invalid[:2]}; "
                   f"{self.figures['audit']['conn']} conn records for "
                   f"{sum(soak.opened.values())} connections "
                   f"opened: {len(missing)} without a record {missing[:3]}, {len(extra)} "
                   f"unknown {extra[:3]}; outside a restart: {dict(unexplained) or 'none'}")

    def check_errors(self):
        soak = self.soak
        expected = collections.Counter()
        unexpected = collections.Counter()
        examples = []
        for when, kind, what, detail in soak.errors:
            backend = soak.backend_of.get(kind.split("-")[0])
            if self.in_restart_window(backend, when - 1.0, when):
                expected[f"{kind}: {what}"] += 1
            else:
                unexpected[f"{kind}: {what}"] += 1
                examples.append(f"{time.strftime('%H:%M:%S', time.gmtime(when))} {kind} {detail}")
        self.figures["errors"] = {"expected": dict(expected), "unexpected": dict(unexpected)}
        self.check("errors", not unexpected,
                   f"around restarts: {dict(expected) or 'none'}; elsewhere: "
                   f"{dict(unexpected) or 'none'} {examples[:3]}")

    def check_flat(self):
        soak = self.soak
        warm, end = soak.quiet.get("warmup"), soak.quiet.get("end")
        series = soak.samples
        summary = {}
        for index, name in ((1, "rss_kib"), (2, "fds")):
            values = [s[index] for s in series]
            if values:
                summary[name] = {"first": values[0], "last": values[-1], "max": max(values),
                                 "min": min(values), "samples": len(values)}
        self.figures["flat"] = {"series": summary, "warmup": warm, "end": end}
        if not warm or not end:
            self.check("flat", False, "no quiet point sampled")
            return
        rss_growth = (end[0] - warm[0]) / warm[0]
        fd_growth = (end[1] - warm[1]) / warm[1]
        # Under ASan freed memory stays in quarantine (up to 256 MiB) and RSS rises until it is
        # full: growth there is the sanitizer's, so only the descriptors are bounded (see lab).
        rss_ok = lab.SANITIZED or rss_growth <= FLAT_LIMIT
        self.check("flat", rss_ok and fd_growth <= FLAT_LIMIT,
                   f"RSS {warm[0]} -> {end[0]} KiB ({rss_growth:+.1%}"
                   f"{', not bounded under ASan' if lab.SANITIZED else ''}), descriptors "
                   f"{warm[1]} -> {end[1]} ({fd_growth:+.1%}); limit +{FLAT_LIMIT:.0%}; series "
                   + ", ".join(f"{k} first/last/min/max {v['first']}/{v['last']}/{v['min']}/"
                               f"{v['max']}" for k, v in summary.items()))

    def check_reloads(self):
        done, rejected = self.soak.reload_lines()
        self.figures["reloads"] = {"sent": self.soak.hups, "done": done, "rejected": rejected}
        self.check("reloads", done == self.soak.hups and rejected == 0 and self.soak.hups > 0,
                   f"{self.soak.hups} SIGHUP sent, {done} reloads done, {rejected} rejected")

    # -- rendering -------------------------------------------------------------------------

    def rates(self):
        c = self.soak.counts
        return {kind: (c[kind], c[kind] / self.elapsed) for kind in
                ("smtp", "upload", "ping", "idle")}

    def markdown(self):
        soak, s = self.soak, self.soak.s
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(self.started))
        lines = [f"# Soak {when}", "",
                 f"Duration {self.elapsed:.0f} s (asked {s.duration:.0f} s, warm-up "
                 f"{s.warmup:.0f} s); {os.cpu_count()} CPUs; load average at start "
                 f"{self.load[0][0]:.2f}, at end {self.load[1][0]:.2f}"
                 f"{'; ASan build' if lab.SANITIZED else ''}.", "",
                 "| load | done | per second | asked |", "|---|---|---|---|"]
        asked = {"smtp": f"{s.smtp_rate:g}/s", "upload": f"{s.upload_rate:g}/s (1 MiB)",
                 "ping": f"{s.ping_sessions} held {s.ping_hold:g} s",
                 "idle": f"{s.idle_sessions} sessions, renewed every {s.idle_refresh:g} s"}
        names = {"smtp": "SMTP transactions (250 after DATA)", "upload": "HTTPS uploads",
                 "ping": "ActiveSync Pings", "idle": "IMAP IDLE periods"}
        for kind, (n, rate) in self.rates().items():
            lines.append(f"| {names[kind]} | {n} | {rate:.2f} | {asked[kind]} |")
        lines += ["", "Connections opened by kind: " + ", ".join(
            f"{k} {v}" for k, v in sorted(soak.opened_by_kind.items())) + ".",
                  f"Reloads (SIGHUP): {soak.hups}. Restarts: " + (", ".join(
                      f"{b} ({e - a:.1f} s)" for b, a, e in soak.restarts) or "none") + ".", "",
                  "| check | result | detail |", "|---|---|---|"]
        for name, ok, detail in self.checks:
            lines.append(f"| {name} | {'pass' if ok else '**FAIL**'} | "
                         f"{detail.replace('|', '/')} |")
        flat = self.figures.get("flat", {}).get("series", {})
        if flat:
            lines += ["", "| proxy | first | end of warm-up (quiet) | end (quiet) | last | min | "
                          "max | samples |", "|---|---|---|---|---|---|---|---|"]
            warm = self.figures["flat"]["warmup"] or ("-", "-")
            end = self.figures["flat"]["end"] or ("-", "-")
            for i, name in enumerate(("rss_kib", "fds")):
                v = flat.get(name)
                if v:
                    lines.append(f"| {'RSS KiB' if i == 0 else 'descriptors'} | {v['first']} | "
                                 f"{warm[i]} | {end[i]} | {v['last']} | {v['min']} | {v['max']} "
                                 f"| {v['samples']} |")
        outcomes = self.figures.get("audit", {}).get("outcomes", {})
        if outcomes:
            lines += ["", "Audit `conn` outcomes: " + ", ".join(
                f"{k}: {v}" for k, v in outcomes.items()) + "."]
        return "\n".join(lines) + "\n"


def main(argv=None):
    import argparse
    parser = argparse.ArgumentParser(prog="soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", default="3m", help="3m (CI), 30m (long), or N[s|m|h]")
    parser.add_argument("--out", help="write the markdown summary here")
    parser.add_argument("--smtp-rate", type=float, help="SMTP transactions per second")
    parser.add_argument("--upload-rate", type=float, help="1 MiB uploads per second")
    args = parser.parse_args(argv)
    settings = Settings.for_duration(parse_duration(args.duration), lab.SANITIZED)
    if args.smtp_rate:
        settings.smtp_rate = args.smtp_rate
    if args.upload_rate:
        settings.upload_rate = args.upload_rate
    report = Soak(settings).run()
    text = report.markdown()
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    return 0 if report.passed else 1
