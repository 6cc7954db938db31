"""Real-peer test lab for tlsbridge's integration tests (Python stdlib only).

Fixtures: free ports, the shared test PKI (tests/certs/make_test_certs.sh), a private Postfix
instance as the legacy backend (TLS 1.0 only with a SHA-1 certificate, or plaintext), a private
Dovecot (IMAP and POP3, STARTTLS capped at TLS 1.0, SHA-1 certificate), the one
allowed fake (an SMTP backend that dies in the middle of DATA, which no real server does on
demand), a raw line-level SMTP client, and a runner for the tlsbridge binary itself.

Every wait is bounded and every process is stopped by the PID (or the Postfix instance) this
module started. Facts behind the Postfix set-up are in tests/lab/README.md.

Also a small CLI for scripts/lab:
    python3 lab.py start-postfix --dir DIR --port PORT --certs CERTDIR [--tls tls1.0-starttls|none]
    python3 lab.py stop-postfix --dir DIR
    python3 lab.py status-postfix --dir DIR
"""

import base64
import glob
import hashlib
import json
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

SOURCE_DIR = os.environ.get(
    "TLSBRIDGE_SOURCE_DIR",
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
DEFAULT_BINARY = os.path.join(SOURCE_DIR, "build", "release", "tlsbridge")
POSTFIX_START_TIMEOUT = 20.0
POSTFIX_STOP_TIMEOUT = 15.0
PROXY_READY_TIMEOUT = 10.0
PROXY_STOP_TIMEOUT = 10.0
SUBPROCESS_TIMEOUT = 30.0


# True when the proxy under test is an ASan/UBSan build (cmake --preset sanitize): ASan keeps freed
# memory in quarantine, so bounds on the proxy's RSS say nothing there and are not checked.
SANITIZED = os.environ.get("TLSBRIDGE_SANITIZED", "").upper() in ("1", "ON", "TRUE")
SANITIZER_REPORT = re.compile(r"ERROR: (AddressSanitizer|LeakSanitizer)|runtime error: |"
                              r"UndefinedBehaviorSanitizer")
# UBSan's own false report when the process has no descriptor left: on a miss in its small type
# cache the vptr check probes the vtable's memory through pipe(), and when pipe() fails with EMFILE
# it calls a valid object's vptr invalid and its memory unreadable. A real bad vptr in readable
# memory prints the bytes; only this exact form is set aside, and only for a proxy a test starves
# of descriptors on purpose (Tlsbridge.starved_of_descriptors).
UBSAN_VPTR_WITHOUT_DESCRIPTORS = re.compile(
    r"[^\n]*runtime error: member access within address (0x[0-9a-f]+) which does not point to an "
    r"object of type '[^'\n]*'\n\1: note: object has invalid vptr\n<memory cannot be printed>\n"
    r"(?:\s+#\d+ [^\n]*\n)*")


class LabError(Exception):
    """A fixture could not be set up or torn down; the message says what and why."""


# ---------------------------------------------------------------------------------------------
# Ports and waiting

def wait_until(predicate, timeout, interval=0.05):
    """Poll predicate() until it returns a truthy value or timeout seconds pass; returns the
    last value (falsy on timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


def _tcp_sockets():
    """(local port, state, inode) of every TCP socket on this host, from /proc/net/tcp{,6}
    (state 0A is LISTEN)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    yield int(fields[1].rsplit(":", 1)[1], 16), fields[3], fields[9]
        except OSError:
            continue


def _ports_in_use():
    """Local ports of every TCP socket in any state (LISTEN, ESTABLISHED, TIME_WAIT, ...)."""
    return {port for port, _, _ in _tcp_sockets()}


def port_is_free(port):
    """True when no TCP socket of any state uses port on this host."""
    return port not in _ports_in_use()


def free_port():
    """A TCP port on 127.0.0.1 that the kernel just handed out and nothing uses in any state."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port_is_free(port) and not port_accepts(port, timeout=0.2):
            return port
    raise LabError("free_port: no free port after 50 tries")


def listening_sockets(port):
    """The inodes ("socket:[N]") of every listening TCP socket on port: one per SO_REUSEPORT
    acceptor."""
    return {f"socket:[{inode}]" for local, state, inode in _tcp_sockets()
            if local == port and state == "0A"}


def listening_pids(port):
    """PIDs holding a listening TCP socket on port (listening_sockets matched against every
    process's /proc/PID/fd links)."""
    inodes = listening_sockets(port)
    pids = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") in inodes:
                    pids.add(int(pid))
                    break
            except OSError:
                continue
    return pids


def port_accepts(port, host="127.0.0.1", timeout=0.5):
    """True when a TCP connection to host:port is accepted (then closed at once)."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


CAP_NET_BIND_SERVICE = 1 << 10  # capabilities(7) bits, as /proc/PID/status shows them
CAP_NET_ADMIN = 1 << 12


def capability_sets(pid):
    """{(CapEff, CapPrm)} over every thread of pid: one pair when all threads agree."""
    sets = set()
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/status") as f:
            fields = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
        sets.add((int(fields["CapEff"], 16), int(fields["CapPrm"], 16)))
    return sets


def run(argv, timeout=SUBPROCESS_TIMEOUT, input_bytes=None, check=False):
    """Runs argv bounded in time; returns CompletedProcess with text stdout/stderr."""
    try:
        proc = subprocess.run(argv, input=input_bytes, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise LabError(f"{argv[0]} did not finish within {timeout}s: {argv}") from e
    proc.stdout = proc.stdout.decode("utf-8", "replace")
    proc.stderr = proc.stderr.decode("utf-8", "replace")
    if check and proc.returncode != 0:
        raise LabError(f"{argv} exited {proc.returncode}\nstdout:\n{proc.stdout}\n"
                       f"stderr:\n{proc.stderr}")
    return proc


def make_lab_dir(prefix):
    """A fresh directory under /tmp, mode 0755 so daemons that drop root can enter it
    (mktemp -d makes 0700, which breaks Postfix in odd ways)."""
    path = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
    os.chmod(path, 0o755)
    return path


# ---------------------------------------------------------------------------------------------
# Certificates

CERT_SCRIPT = os.path.join(SOURCE_DIR, "tests", "certs", "make_test_certs.sh")


def make_certs(directory):
    """Generates the shared test PKI into directory (must be under /tmp) with
    tests/certs/make_test_certs.sh; the directory is made 0755 and every file world-readable so
    Postfix can read the keys. Returns directory."""
    directory = os.path.abspath(directory)
    if not directory.startswith("/tmp/"):
        raise LabError(f"make_certs: {directory} is not under /tmp (daemons must reach it)")
    if not os.path.isfile(CERT_SCRIPT):
        raise LabError(f"make_certs: {CERT_SCRIPT} does not exist")
    os.makedirs(directory, exist_ok=True)
    run(["bash", CERT_SCRIPT, directory], timeout=120, check=True)
    os.chmod(directory, 0o755)
    for path in glob.glob(os.path.join(directory, "*")):
        os.chmod(path, 0o644)
    for name in ("ca.crt", "server.chain.pem", "server.key", "sha1.chain.pem", "sha1.key"):
        if not os.path.isfile(os.path.join(directory, name)):
            raise LabError(f"make_certs: {CERT_SCRIPT} did not produce {name}")
    return directory


def cert_der(pem_path):
    """DER bytes of the first certificate in a PEM file."""
    with open(pem_path) as f:
        pem = f.read()
    match = re.search(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", pem, re.S)
    if not match:
        raise LabError(f"no certificate in {pem_path}")
    return base64.b64decode("".join(match.group(1).split()))


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


def client_context(cafile=None):
    """TLS client context: verifies against cafile when given, else verifies nothing."""
    if cafile:
        return ssl.create_default_context(cafile=cafile)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def legacy_client_context():
    """A client that speaks TLS 1.0 to the legacy backend (needs SECLEVEL=0 and the minimum
    version lowered: OpenSSL 3 allows TLS 1.0 only at security level 0 on both ends; see
    docs/legacy-peers.md)."""
    import warnings
    ctx = client_context()
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = ssl.TLSVersion.TLSv1
    return ctx


# ---------------------------------------------------------------------------------------------
# Postfix: the legacy backend

MASTER_CF = """\
# service type  private unpriv  chroot  wakeup  maxproc command
{listen} inet n       -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""

MAIN_CF = """\
# Private Postfix instance for tlsbridge's lab (tests/integration/lab.py). Nothing leaves it:
# every recipient of every domain goes to one maildir, everything else is an error transport.
compatibility_level = 3.6
queue_directory = {dir}/spool
data_directory = {dir}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = backend.test
mydomain = backend.test
myorigin = backend.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
local_recipient_maps =
alias_maps =
alias_database =
relay_domains =
virtual_mailbox_domains = static:all
virtual_mailbox_base = {dir}/mail
virtual_mailbox_maps = static:sink/
virtual_uid_maps = static:65534
virtual_gid_maps = static:65534
virtual_mailbox_limit = 0
mailbox_size_limit = 0
message_size_limit = 67108864
default_transport = error:tlsbridge lab delivers nothing remote
relay_transport = error:tlsbridge lab delivers nothing remote
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_banner = $myhostname ESMTP tlsbridge-lab
smtpd_error_sleep_time = 0
smtpd_soft_error_limit = 100
smtpd_hard_error_limit = 200
in_flow_delay = 0
biff = no
maillog_file = {dir}/maillog
maillog_file_prefixes = {dir}
# Every command line a client sends is logged as "< host[addr]: LINE" so a test can prove what
# reached the backend and what did not.
debug_peer_list = 127.0.0.1
debug_peer_level = 2
"""

MAIN_CF_TLS10 = """\
# TLS 1.0 only, SHA-1 certificate: the legacy host tlsbridge fronts. The certificate loads before
# any smtpd cipher setting applies, so the security level is lowered in tls_config_file.
smtpd_tls_security_level = may
smtpd_tls_chain_files = {dir}/certs/sha1.key, {dir}/certs/sha1.chain.pem
smtpd_tls_protocols = >=TLSv1, <=TLSv1
smtpd_tls_mandatory_protocols = >=TLSv1, <=TLSv1
smtpd_tls_received_header = yes
smtpd_tls_loglevel = 1
tls_config_file = {dir}/etc/openssl.cnf
tls_config_name = postfix
"""

MAIN_CF_PLAIN = """\
# Plaintext backend: no STARTTLS offered.
smtpd_tls_security_level = none
"""

OPENSSL_CNF = """\
postfix = postfix_settings
[postfix_settings]
ssl_conf = postfix_ssl_settings
[postfix_ssl_settings]
system_default = baseline_postfix_settings
[baseline_postfix_settings]
CipherString = DEFAULT:@SECLEVEL=0
"""

POSTFIX_MODES = ("tls1.0-starttls", "tls1.0-implicit", "none")


class PostfixBackend:
    """A private Postfix instance on 127.0.0.1:port under /tmp.

    tls = "tls1.0-starttls": STARTTLS offered, TLS 1.0 only, SHA-1 certificate (sha1.chain.pem).
    tls = "tls1.0-implicit": the same, but TLS from the first byte (465-style wrapper mode).
    tls = "none": plaintext, no STARTTLS offered.
    Every recipient is delivered to one maildir; messages() reads them back byte for byte.
    """

    def __init__(self, certs_dir, tls="tls1.0-starttls", port=None, directory=None,
                 host="127.0.0.1", extra_main_cf=""):
        if tls not in POSTFIX_MODES:
            raise LabError(f"PostfixBackend: tls must be one of {POSTFIX_MODES}, not {tls!r}")
        self.certs_dir = certs_dir
        self.tls = tls
        self.host = host  # the address smtpd listens on (another one in a network namespace)
        self.port = free_port() if port is None else port
        self.dir = directory or make_lab_dir("tlsbridge-postfix.")
        self.etc = os.path.join(self.dir, "etc")
        self.maildir = os.path.join(self.dir, "mail", "sink")
        self.maillog = os.path.join(self.dir, "maillog")
        self.extra_main_cf = extra_main_cf  # appended to main.cf (e.g. Dovecot SASL)
        self.started = False

    @classmethod
    def attach(cls, directory):
        """The instance configured in directory (by an earlier start, maybe another process),
        with its port read back from master.cf."""
        try:
            with open(os.path.join(directory, "etc", "master.cf")) as f:
                match = re.search(r"^127\.0\.0\.1:(\d+)\s+inet", f.read(), re.M)
        except OSError:
            match = None
        backend = cls("", port=int(match.group(1)) if match else 0, directory=directory)
        return backend

    # -- set-up ------------------------------------------------------------------------------

    def _write(self, relative, text, mode=0o644):
        path = os.path.join(self.dir, relative)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)

    def _smtpd_line(self):
        listen = f"{self.host}:{self.port}"
        if self.tls == "tls1.0-implicit":
            return (f"{listen} inet n - n - - smtpd\n"
                    "  -o smtpd_tls_wrappermode=yes\n  -o smtpd_tls_security_level=encrypt")
        return f"{listen} inet n - n - - smtpd"

    def configure(self):
        """Writes etc/main.cf, master.cf, openssl.cnf and copies the certificate and key into the
        instance directory (so they are readable whatever the checkout's permissions)."""
        for sub in ("etc", "certs", "data", "spool", "mail"):
            os.makedirs(os.path.join(self.dir, sub), exist_ok=True)
            os.chmod(os.path.join(self.dir, sub), 0o755)
        os.chown(os.path.join(self.dir, "mail"), 65534, 65534)
        postfix_user = pwd.getpwnam("postfix")
        os.chown(os.path.join(self.dir, "data"), postfix_user.pw_uid, postfix_user.pw_gid)
        main = MAIN_CF.format(dir=self.dir)
        if self.tls.startswith("tls1.0"):
            for name in ("sha1.key", "sha1.chain.pem"):
                shutil.copy(os.path.join(self.certs_dir, name), os.path.join(self.dir, "certs"))
                os.chmod(os.path.join(self.dir, "certs", name), 0o644)
            main += MAIN_CF_TLS10.format(dir=self.dir)
            self._write("etc/openssl.cnf", OPENSSL_CNF)
        else:
            main += MAIN_CF_PLAIN
        self._write("etc/main.cf", main + self.extra_main_cf)
        listen_line = self._smtpd_line()
        self._write("etc/master.cf", MASTER_CF.replace(
            "{listen} inet n       -       n       -       -       smtpd", listen_line))
        open(self.maillog, "a").close()
        os.chmod(self.maillog, 0o644)

    # -- lifecycle ---------------------------------------------------------------------------

    def postfix(self, *args, timeout=SUBPROCESS_TIMEOUT):
        return run(["postfix", "-c", self.etc, *args], timeout=timeout)

    def master_pid(self):
        """PID of this instance's master process, or None when it is not running."""
        try:
            with open(os.path.join(self.dir, "spool", "pid", "master.pid")) as f:
                pid = int(f.read().strip())
        except (OSError, ValueError):
            return None
        return pid if _pid_alive(pid) else None

    def start(self):
        """Configures and starts the instance; returns when its port accepts connections."""
        if self.master_pid():
            raise LabError(f"Postfix in {self.dir} is already running")
        if not port_is_free(self.port):
            raise LabError(f"PostfixBackend: port {self.port} is in use")
        self.configure()
        proc = self.postfix("start", timeout=POSTFIX_START_TIMEOUT)
        self.started = True
        if proc.returncode != 0:
            raise LabError(f"postfix -c {self.etc} start exited {proc.returncode}:\n"
                           f"{proc.stdout}{proc.stderr}\nmaillog:\n{self.log()}")
        if not wait_until(lambda: port_accepts(self.port), POSTFIX_START_TIMEOUT):
            raise LabError(f"Postfix in {self.dir} does not accept on port {self.port} after "
                           f"{POSTFIX_START_TIMEOUT}s\nmaillog:\n{self.log()}")
        return self

    def stop(self):
        """Stops the instance (postfix stop, then SIGKILL to the recorded master PID if it
        lingers) and verifies the master process is gone."""
        pid = self.master_pid()
        if pid is None:
            self.started = False
            return
        self.postfix("stop", timeout=POSTFIX_STOP_TIMEOUT)
        if not wait_until(lambda: not _pid_alive(pid), POSTFIX_STOP_TIMEOUT):
            os.kill(pid, signal.SIGKILL)
            if not wait_until(lambda: not _pid_alive(pid), 5):
                raise LabError(f"Postfix master {pid} in {self.dir} survived SIGKILL")
        # Its children (smtpd holds the listening socket too) exit once the master is gone.
        if self.port and not wait_until(lambda: not port_accepts(self.port),
                                        POSTFIX_STOP_TIMEOUT):
            raise LabError(f"port {self.port} still accepts after Postfix in {self.dir} stopped")
        self.started = False

    def cleanup(self, remove=True):
        """stop() and, unless told otherwise, remove the instance directory."""
        self.stop()
        if remove and not keep_lab() and self.dir.startswith("/tmp/"):
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()

    # -- what the backend saw ------------------------------------------------------------------

    def message_paths(self):
        paths = []
        for sub in ("new", "cur"):
            paths += glob.glob(os.path.join(self.maildir, sub, "*"))
        return sorted(paths, key=lambda p: (os.stat(p).st_mtime_ns, p))

    def messages(self):
        """Every delivered message as the bytes of its maildir file, oldest first. Postfix
        stores lines LF-terminated and adds Return-Path, Delivered-To and Received on top."""
        result = []
        for path in self.message_paths():
            with open(path, "rb") as f:
                result.append(f.read())
        return result

    def wait_for_messages(self, n, timeout=20.0):
        """Waits until at least n messages are delivered; returns messages() (asserts nothing:
        the caller checks the count, so its failure message can say what it expected)."""
        wait_until(lambda: len(self.message_paths()) >= n, timeout, interval=0.1)
        return self.messages()

    def wait_for_message_containing(self, needle, timeout=20.0):
        """The first delivered message that contains needle (bytes), or None after timeout."""
        def find():
            for message in self.messages():
                if needle in message:
                    return message
            return None
        return wait_until(find, timeout, interval=0.1)

    def log(self):
        """The instance's maillog as text."""
        try:
            with open(self.maillog, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def wait_for_log(self, pattern, timeout=10.0):
        """Waits until the maillog matches regex pattern; returns the match or None."""
        regex = re.compile(pattern)
        return wait_until(lambda: regex.search(self.log()), timeout, interval=0.1)

    def received_commands(self):
        """Every client command line smtpd logged ("< host[addr]: LINE"), in order."""
        return re.findall(r"smtpd\[\d+\]: < [^:]+: (.*)$", self.log(), re.M)


def _pid_alive(pid):
    """True when pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except OSError:
        return False


def start_for_class(test_class, peer):
    """Starts a peer (anything with start() and cleanup(): PostfixBackend, DovecotBackend) for a
    TestCase class, its cleanup registered with the class first; returns it."""
    test_class.addClassCleanup(peer.cleanup)
    peer.start()
    return peer


def make_test_message(payload_bytes, marker, dot_lines=True):
    """A MIME message (CRLF line ends, as it goes on the wire before dot-stuffing) carrying
    payload_bytes of random data base64-encoded, plus, when dot_lines, body lines that start with
    '.' (a lone '.', '..', '.x') to exercise dot-stuffing. Returns (message, body) where body is
    everything after the header/body separator."""
    boundary = "lab-" + marker
    payload = base64.encodebytes(os.urandom(payload_bytes)).replace(b"\n", b"\r\n")
    dots = b".\r\n..\r\n.leading dot\r\n...three\r\n" if dot_lines else b""
    body = (f"--{boundary}\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n".encode()
            + dots + b"plain line\r\n" + dots
            + f"--{boundary}\r\nContent-Type: application/octet-stream\r\n"
              f"Content-Transfer-Encoding: base64\r\n\r\n".encode()
            + payload + dots + f"--{boundary}--\r\n".encode())
    headers = (f"From: <y@example.test>\r\nTo: <x@example.test>\r\nSubject: lab {marker}\r\n"
               f"X-Lab-Marker: {marker}\r\nMIME-Version: 1.0\r\n"
               f"Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n").encode()
    return headers + body, body


def delivered_body(message):
    """The body of a message as Postfix's maildir delivery stored it (after the first empty
    line; LF line ends)."""
    parts = message.split(b"\n\n", 1)
    return parts[1] if len(parts) == 2 else b""


def as_stored(body):
    """A CRLF body as a maildir stores it: LF line ends."""
    return body.replace(b"\r\n", b"\n")


def header_block(message):
    """The header part of a delivered message (before the first empty line)."""
    return message.split(b"\n\n", 1)[0]


def first_received(message):
    """The first (topmost, i.e. the backend's own) Received header, unfolded."""
    headers = header_block(message).decode("utf-8", "replace")
    match = re.search(r"^Received:(.*(?:\n[ \t].*)*)", headers, re.M)
    return " ".join(match.group(1).split()) if match else ""


# ---------------------------------------------------------------------------------------------
# Clients

def swaks(port, *extra, tls=True, to="x@example.test", sender="y@example.test", timeout=30):
    """Runs swaks against 127.0.0.1:port (with --tls unless tls=False); returns the
    CompletedProcess (returncode 0 = delivered)."""
    argv = ["swaks", "--server", "127.0.0.1", "--port", str(port), "--to", to, "--from", sender,
            "--timeout", "20"]
    if tls:
        argv.append("--tls")
    return run(argv + list(extra), timeout=timeout)


def s_client(port, *extra, timeout=20, input_bytes=b""):
    """Runs `openssl s_client -connect 127.0.0.1:port EXTRA...` with input_bytes as stdin (empty:
    s_client ends after the handshake; -quiet implies -ign_eof, so give it a QUIT to send);
    returns the CompletedProcess. Read the negotiated version from tls_protocol(), not the
    "New," line (that one shows the cipher's minimum version)."""
    return run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", *extra],
               timeout=timeout, input_bytes=input_bytes)


def tls_protocol(s_client_output):
    """The `Protocol :` line of s_client's session summary (e.g. "TLSv1.2"), or None when no
    session was established (a failed handshake still prints "Protocol : <what it offered>",
    with "Cipher is (NONE)" and "Cipher : 0000")."""
    if re.search(r"Cipher is \(NONE\)|^\s*Cipher\s*:\s*0000\s*$", s_client_output, re.M):
        return None
    match = re.search(r"^\s*Protocol\s*:\s*(\S+)", s_client_output, re.M)
    return match.group(1) if match else None


_shared_certs = None


def shared_certs():
    """One test PKI per process (generating it takes seconds), removed at exit."""
    global _shared_certs
    if _shared_certs is None:
        import atexit
        directory = make_lab_dir("tlsbridge-certs.")
        atexit.register(shutil.rmtree, directory, True)
        _shared_certs = make_certs(directory)
    return _shared_certs


def server_pair(certs):
    """The lab's front certificate (chain) and key, as a [[certs]] entry for Tlsbridge."""
    return (f"{certs}/server.chain.pem", f"{certs}/server.key")


# A raw SMTP client, for things smtplib and swaks will not do (pipelining an injection, reading
# every byte until the connection closes)

class SmtpClient:
    """Line-level SMTP client over a socket that can be upgraded to TLS in place."""

    def __init__(self, port, host="127.0.0.1", timeout=15.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        host, port = self.sock.getsockname()[:2]
        self.local = f"{host}:{port}"
        self.buffer = b""
        self.transcript = []

    def local_address(self):
        """"ip:port" of our end: the audit record's `client` for this connection."""
        return self.local

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.transcript.append(("C", data))
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed by peer")
        self.buffer += chunk
        self.transcript.append(("S", chunk))

    def read_line(self):
        while b"\n" not in self.buffer:
            if len(self.buffer) > 65536:
                raise ConnectionError("reply line over 64 KiB")
            self._fill()
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.rstrip(b"\r").decode("utf-8", "replace")

    def read_reply(self):
        """One (possibly multi-line) reply: (code, [lines]) with the code as a 3-char string."""
        lines = []
        while True:
            line = self.read_line()
            lines.append(line)
            if len(line) < 4 or line[3] != "-":
                return line[:3], lines

    def command(self, line):
        self.send(line + "\r\n")
        return self.read_reply()

    def starttls(self, context=None, server_hostname=None):
        """Upgrades the socket to TLS (after the caller got 220 to STARTTLS). Bytes the server
        sent after its 220 line would be lost in the plaintext buffer: that is an error."""
        if self.buffer:
            raise ConnectionError(f"plaintext bytes after the 220: {self.buffer!r}")
        context = context or client_context()
        self.sock = context.wrap_socket(self.sock, server_hostname=server_hostname)

    def read_until_closed(self, timeout=15.0):
        """Everything the server sends until it closes (the buffered rest included). Raises
        socket.timeout when the server neither sends nor closes within timeout."""
        self.sock.settimeout(timeout)
        data = self.buffer
        self.buffer = b""
        while True:
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionResetError, ssl.SSLError, ssl.SSLEOFError):
                break
            if not chunk:
                break
            data += chunk
        return data.decode("utf-8", "replace")

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# ---------------------------------------------------------------------------------------------
# The one allowed fake: an SMTP backend that dies in the middle of DATA

class DyingSmtpBackend:
    """Plaintext SMTP server on 127.0.0.1 that greets, answers EHLO/HELO/MAIL/RCPT/NOOP/RSET with
    2xx and DATA with 354, then closes the connection once it has received close_after bytes of
    message data. It never answers the end of data: a real server will not die on demand."""

    def __init__(self, close_after=16384, port=None):
        self.close_after = close_after
        self.port = free_port() if port is None else port
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", self.port))
        self.listener.listen(16)
        self.listener.settimeout(0.2)
        self.stopping = threading.Event()
        self.sessions = []          # one dict per connection: commands, data_bytes, died
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.stopping.set()
        self.thread.join(10)
        self.listener.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _serve(self):
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            session = {"commands": [], "data_bytes": 0, "died_in_data": False}
            self.sessions.append(session)
            threading.Thread(target=self._session, args=(conn, session), daemon=True).start()

    def _session(self, conn, session):
        conn.settimeout(10)
        try:
            self._converse(conn, session)
        except OSError:
            pass
        finally:
            conn.close()

    def _converse(self, conn, session):
        reader = conn.makefile("rb")
        conn.sendall(b"220 dying.test ESMTP fake\r\n")
        while True:
            line = reader.readline(4096)
            if not line:
                return
            command = line.rstrip(b"\r\n").decode("ascii", "replace")
            session["commands"].append(command)
            verb = command.split(" ", 1)[0].upper()
            if verb == "EHLO":
                conn.sendall(b"250-dying.test\r\n250-PIPELINING\r\n250-SIZE 67108864\r\n"
                             b"250 8BITMIME\r\n")
            elif verb == "DATA":
                conn.sendall(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                self._swallow_then_die(reader, session)
                return
            elif verb == "QUIT":
                conn.sendall(b"221 2.0.0 Bye\r\n")
                return
            elif verb in ("HELO", "MAIL", "RCPT", "NOOP", "RSET"):
                conn.sendall(b"250 2.0.0 Ok\r\n")
            else:
                conn.sendall(b"502 5.5.2 Error: command not recognized\r\n")

    def _swallow_then_die(self, reader, session):
        while session["data_bytes"] < self.close_after:
            chunk = reader.read1(4096)
            if not chunk:
                return
            session["data_bytes"] += len(chunk)
        session["died_in_data"] = True


# ---------------------------------------------------------------------------------------------
# Dovecot: the legacy IMAP/POP3 backend

DOVECOT_CONF = """\
# Private Dovecot instance for tlsbridge's lab (tests/integration/lab.py): IMAP and POP3 on
# 127.0.0.1, STARTTLS/STLS capped at TLS 1.0 (OPENSSL_CONF's MaxProtocol; Dovecot 2.3 has no
# ssl_max_protocol) with a SHA-1-signed certificate, one passwd-file user, a maildir.
instance_name = {instance}
base_dir = {run}
state_dir = {dir}/state
log_path = {dir}/dovecot.log
info_log_path = {dir}/dovecot.log
debug_log_path = {dir}/dovecot.log
protocols = imap pop3
listen = 127.0.0.1
import_environment = TZ OPENSSL_CONF={dir}/openssl.cnf
default_login_user = dovenull
default_internal_user = dovecot
first_valid_uid = 1
ssl = yes
ssl_cert = <{dir}/certs/sha1.chain.pem
ssl_key = <{dir}/certs/sha1.key
ssl_min_protocol = TLSv1
ssl_cipher_list = DEFAULT:@SECLEVEL=0
disable_plaintext_auth = yes
auth_mechanisms = plain login
auth_failure_delay = 0
# Every authentication request is logged with its user name, so a test can prove that a LOGIN the
# proxy refused (or an injected one) never reached Dovecot.
auth_verbose = yes
auth_debug = yes
auth_verbose_passwords = no
login_log_format_elements = user=<%u> method=%m rip=%r rport=%b lip=%l lport=%a mpid=%e %c
mail_location = maildir:{dir}/mail/%u/Maildir
mailbox_idle_check_interval = 1 secs
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {dir}/passwd
}}
userdb {{
  driver = static
  args = uid=65534 gid=65534 home={dir}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {pop3_port}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
protocol imap {{
  mail_max_userip_connections = 100
}}
protocol pop3 {{
  mail_max_userip_connections = 100
  pop3_uidl_format = %08Xu%08Xv
}}
"""

DOVECOT_OPENSSL_CNF = """\
openssl_conf = default_conf
[default_conf]
ssl_conf = ssl_sect
[ssl_sect]
system_default = system_default_sect
[system_default_sect]
MaxProtocol = TLSv1
CipherString = DEFAULT:@SECLEVEL=0
"""

DOVECOT_START_TIMEOUT = 20.0
DOVECOT_STOP_TIMEOUT = 15.0


class DovecotBackend:
    """A private Dovecot instance (IMAP and POP3) on free 127.0.0.1 ports under /tmp.

    STARTTLS/STLS only, TLS 1.0 at most, SHA-1 certificate (sha1.chain.pem): the legacy mailbox
    host tlsbridge fronts. One user (user/password) in a passwd-file with a PLAIN password; its
    maildir is DIR/mail/USER/Maildir. Every auth request is logged to DIR/dovecot.log.
    """

    def __init__(self, certs_dir, user="alice", password="wonderland", directory=None,
                 more_users=None, auth_penalty=True, extra_conf=""):
        self.certs_dir = certs_dir
        self.user = user
        self.password = password
        self.more_users = dict(more_users or {})  # more passwd-file users: name -> password
        # Dovecot delays failed logins from one address more and more (anvil's auth penalty, up
        # to 15 s); behind a proxy every login comes from one address. False turns it off.
        self.auth_penalty = auth_penalty
        self.extra_conf = extra_conf  # appended to dovecot.conf (e.g. an auth socket for Postfix)
        self.imap_port = free_port()
        self.pop3_port = free_port()
        while self.pop3_port == self.imap_port:
            self.pop3_port = free_port()
        self.dir = directory or make_lab_dir("tlsbridge-dovecot.")
        # Socket paths must stay under 108 bytes: a short base_dir of its own.
        self.run_dir = make_lab_dir("tbdv.")
        self.config_path = os.path.join(self.dir, "dovecot.conf")
        self.log_path = os.path.join(self.dir, "dovecot.log")
        self.pid = None

    def configure(self):
        for sub in ("certs", "state", "mail"):
            os.makedirs(os.path.join(self.dir, sub), exist_ok=True)
            os.chmod(os.path.join(self.dir, sub), 0o755)
        os.chown(os.path.join(self.dir, "mail"), 65534, 65534)
        for name in ("sha1.key", "sha1.chain.pem"):
            shutil.copy(os.path.join(self.certs_dir, name), os.path.join(self.dir, "certs"))
            os.chmod(os.path.join(self.dir, "certs", name), 0o644)
        with open(os.path.join(self.dir, "openssl.cnf"), "w") as f:
            f.write(DOVECOT_OPENSSL_CNF)
        with open(os.path.join(self.dir, "passwd"), "w") as f:
            f.write(f"{self.user}:{{PLAIN}}{self.password}\n")
            for name, password in self.more_users.items():
                f.write(f"{name}:{{PLAIN}}{password}\n")
        os.chmod(os.path.join(self.dir, "passwd"), 0o644)
        with open(self.config_path, "w") as f:
            f.write(DOVECOT_CONF.format(dir=self.dir, run=self.run_dir,
                                        instance=os.path.basename(self.run_dir),
                                        imap_port=self.imap_port, pop3_port=self.pop3_port))
            if not self.auth_penalty:
                f.write("service anvil {\n  unix_listener anvil-auth-penalty {\n"
                        "    mode = 0\n  }\n}\n")
            f.write(self.extra_conf)
        open(self.log_path, "a").close()

    def start(self):
        """Configures and starts the instance; returns when both ports accept connections."""
        self.configure()
        env = dict(os.environ, OPENSSL_CONF=os.path.join(self.dir, "openssl.cnf"))
        # The daemon inherits stdout/stderr: a file, not a pipe nobody would ever close.
        start_log = os.path.join(self.dir, "start.log")
        with open(start_log, "wb") as out:
            proc = subprocess.run(["dovecot", "-c", self.config_path], env=env, stdout=out,
                                  stderr=out, stdin=subprocess.DEVNULL,
                                  timeout=DOVECOT_START_TIMEOUT)
        if proc.returncode != 0:
            with open(start_log, "rb") as f:
                said = f.read().decode("utf-8", "replace")
            raise LabError(f"dovecot -c {self.config_path} exited {proc.returncode}:\n"
                           f"{said}\nlog:\n{self.log()}")
        self.pid = wait_until(self._read_pid, DOVECOT_START_TIMEOUT)
        ready = wait_until(lambda: port_accepts(self.imap_port) and port_accepts(self.pop3_port),
                           DOVECOT_START_TIMEOUT)
        if not self.pid or not ready:
            self.stop()
            raise LabError(f"Dovecot in {self.dir} not accepting on {self.imap_port}/"
                           f"{self.pop3_port} after {DOVECOT_START_TIMEOUT}s\nlog:\n{self.log()}")
        return self

    def _read_pid(self):
        try:
            with open(os.path.join(self.run_dir, "master.pid")) as f:
                pid = int(f.read().strip())
        except (OSError, ValueError):
            return None
        return pid if _pid_alive(pid) else None

    def stop(self):
        """SIGTERM to the master by the PID in its pid file, SIGKILL if it lingers."""
        pid = self.pid or self._read_pid()
        if pid and _pid_alive(pid):
            os.kill(pid, signal.SIGTERM)
            if not wait_until(lambda: not _pid_alive(pid), DOVECOT_STOP_TIMEOUT):
                os.kill(pid, signal.SIGKILL)
                wait_until(lambda: not _pid_alive(pid), 5)
        self.pid = None

    def cleanup(self, remove=True):
        self.stop()
        if remove and not keep_lab():
            for path in (self.dir, self.run_dir):
                if path.startswith("/tmp/"):
                    shutil.rmtree(path, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def maildir_messages(self):
        """Every message file in the user's INBOX maildir as bytes, oldest first."""
        base = os.path.join(self.dir, "mail", self.user, "Maildir")
        paths = []
        for sub in ("new", "cur"):
            paths += glob.glob(os.path.join(base, sub, "*"))
        result = []
        for path in sorted(paths, key=lambda p: (os.stat(p).st_mtime_ns, p)):
            with open(path, "rb") as f:
                result.append(f.read())
        return result


# ---------------------------------------------------------------------------------------------
# tlsbridge itself

def toml_value(value):
    """A Python value as a TOML value: str, bool, int, float, list, dict (inline table)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)          # a JSON string is a valid TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {value!r} as TOML")


def toml_table(header, table):
    """'[header]' (or '[[header]]' when header starts with '[') with scalar keys first and each
    nested dict as its own [header.key] sub-table after them."""
    lines = [f"[{header}]"]
    name = header.strip("[]")
    subtables = []
    for key, value in table.items():
        if isinstance(value, dict) and key in ("backend", "http"):
            subtables.append((f"{name}.{key}", value))
        else:
            lines.append(f"{key} = {toml_value(value)}")
    for sub_header, sub in subtables:
        lines.append("")
        lines.append(toml_table(sub_header, sub))
    return "\n".join(lines)


def smtp_listener(port, backend_port, name="smtp-in", tls="starttls", backend_tls="starttls",
                  **extra):
    """A [[listener]] dict for an SMTP listener on 127.0.0.1:port whose back leg goes to
    127.0.0.1:backend_port with the legacy profile and no verification (the legacy host's
    SHA-1 chain is trusted by configuration). extra overrides or adds listener keys."""
    listener = {
        "name": name, "protocol": "smtp", "listen": f"127.0.0.1:{port}", "tls": tls,
        "require_tls": True,
        "backend": {"address": [f"127.0.0.1:{backend_port}"], "tls": backend_tls,
                    "tls_profile": "legacy", "verify": "none"},
    }
    listener.update(extra)
    return listener


def keep_lab():
    """TLSBRIDGE_KEEP_LAB=1 keeps every lab directory (configs, logs, maildirs) for a post-mortem."""
    return os.environ.get("TLSBRIDGE_KEEP_LAB", "") not in ("", "0")


class Tlsbridge:
    """Runs `$TLSBRIDGE_BINARY run --config DIR/tlsbridge.toml` with stderr to DIR/stderr.log.

    listeners: list of dicts (one [[listener]] each; a nested "backend" dict becomes
    [listener.backend]) or ready TOML strings. certs: list of (cert, key) paths, first is the
    default. extra_toml: appended verbatim (e.g. a [policy] table).
    """

    def __init__(self, listeners, certs, hostname="proxy.test", shutdown_grace="2s",
                 extra_toml="", directory=None, binary=None, admin="", server=None):
        self.binary = binary or os.environ.get("TLSBRIDGE_BINARY") or DEFAULT_BINARY
        self.dir = directory or make_lab_dir("tlsbridge-proxy.")
        self.config_path = os.path.join(self.dir, "tlsbridge.toml")
        self.audit_path = os.path.join(self.dir, "audit.jsonl")
        self.stderr_path = os.path.join(self.dir, "stderr.log")
        self.listeners = listeners
        self.certs = certs
        self.hostname = hostname
        self.shutdown_grace = shutdown_grace
        self.extra_toml = extra_toml
        self.admin = admin  # [admin] listen ("" = off), e.g. f"127.0.0.1:{free_port()}"
        self.server = dict(server or {})  # more [server] keys, e.g. {"pid_file": ..., "threads": 3}
        self.proc = None
        self.probe_clients = set()  # our own readiness probes, left out of conn_records()
        self.starved_of_descriptors = False  # see UBSAN_VPTR_WITHOUT_DESCRIPTORS

    def config_text(self):
        parts = [toml_table("server", {"hostname": self.hostname,
                                       "shutdown_grace": self.shutdown_grace, **self.server}),
                 toml_table("log", {"level": "debug"}),
                 toml_table("audit", {"path": self.audit_path}),
                 toml_table("admin", {"listen": self.admin})]
        for cert, key in self.certs:
            parts.append(toml_table("[certs]", {"cert": cert, "key": key}))
        for listener in self.listeners:
            parts.append(listener if isinstance(listener, str)
                         else toml_table("[listener]", listener))
        if self.extra_toml:
            parts.append(self.extra_toml)
        return "\n\n".join(parts) + "\n"

    def listen_ports(self):
        ports = []
        for listener in self.listeners:
            text = listener if isinstance(listener, str) else f'listen = "{listener["listen"]}"'
            ports += [int(p) for p in re.findall(r'listen\s*=\s*"[^"]*:(\d+)"', text)]
        return ports

    def start(self, env=None):
        """Starts the proxy (env: its environment, default ours) and waits until every listener
        accepts."""
        if not (os.path.isfile(self.binary) and os.access(self.binary, os.X_OK)):
            raise LabError(
                f"tlsbridge binary {self.binary} does not exist or is not executable: build it "
                "(cmake --preset release && cmake --build --preset release) or set "
                "TLSBRIDGE_BINARY")
        with open(self.config_path, "w") as f:
            f.write(self.config_text())
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen([self.binary, "run", "--config", self.config_path],
                                         stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                         cwd=self.dir, env=env)
        self._wait_ready()
        return self

    def _wait_ready(self):
        deadline = time.monotonic() + PROXY_READY_TIMEOUT
        for port in self.listen_ports():
            while not self._probe(port):
                if self.proc.poll() is not None:
                    raise LabError(f"tlsbridge exited {self.proc.returncode} before listening "
                                   f"on {port}\nconfig:\n{self.config_text()}\n"
                                   f"stderr:\n{self.stderr()}")
                if time.monotonic() > deadline:
                    self.stop()
                    raise LabError(f"tlsbridge not accepting on {port} after "
                                   f"{PROXY_READY_TIMEOUT}s\nstderr:\n{self.stderr()}")
                time.sleep(0.05)
        # A probe is a client that connects and leaves at once (as a load balancer's health
        # check does); a proxy that dies of it should fail here, saying so.
        time.sleep(0.2)
        if self.proc.poll() is not None:
            raise LabError(f"tlsbridge exited {self.proc.returncode} right after the readiness "
                           f"probe (a TCP connect and close)\nstderr:\n{self.stderr()}")

    def _probe(self, port):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                host, local_port = s.getsockname()[:2]
                self.probe_clients.add(f"{host}:{local_port}")
                return True
        except OSError:
            return False

    def stop(self, timeout=PROXY_STOP_TIMEOUT):
        """SIGTERM, wait (bounded), then SIGKILL by PID. Returns the exit status (negative for a
        signal), or None when it was never started."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode

    def cleanup(self, remove=True):
        self.stop()
        # Under sanitizers a report in the proxy's stderr fails the test that ran it (ASan/UBSan
        # may not kill the process, and LSan reports only at exit), with the lab kept.
        text = self.stderr()
        if self.starved_of_descriptors:
            text = UBSAN_VPTR_WITHOUT_DESCRIPTORS.sub("", text)
        report = SANITIZER_REPORT.search(text) if SANITIZED else None
        if remove and not report and not keep_lab() and self.dir.startswith("/tmp/"):
            shutil.rmtree(self.dir, ignore_errors=True)
        if report:
            raise LabError(f"sanitizer report from tlsbridge (lab kept in {self.dir}):\n"
                           + text[max(0, report.start() - 200):report.start() + 4000])

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()

    def stderr(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")[-20000:]
        except OSError:
            return ""

    def describe(self):
        """The proxy's stderr and audit file tails, for assertion messages."""
        try:
            with open(self.audit_path, "rb") as f:
                audit = f.read()[-6000:].decode("utf-8", "replace")
        except OSError:
            audit = "(no audit file)"
        status = self.proc.poll() if self.proc else None
        exited = "" if status is None else f"\n--- tlsbridge has EXITED with status {status} ---"
        return (f"{exited}\n--- tlsbridge stderr ({self.stderr_path}) ---\n{self.stderr()[-6000:]}"
                f"\n--- audit ({self.audit_path}) ---\n{audit}")

    def audit_records(self):
        """Every complete line of the audit file parsed as JSON (a line that does not parse
        raises LabError naming it)."""
        try:
            with open(self.audit_path, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            return []
        records = []
        # The last line without its newline is still being written (a reader may see a write
        # half-copied): it is read the next time, whole.
        lines = raw.split(b"\n")
        lines.pop()
        for number, line in enumerate(lines, 1):
            try:
                record = json.loads(line.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                raise LabError(f"{self.audit_path}:{number} is not a JSON line ({e}): "
                               f"{line[:300]!r}") from e
            if not isinstance(record, dict):
                raise LabError(f"{self.audit_path}:{number} is not a JSON object: {line[:300]!r}")
            records.append(record)
        return records

    def conn_records(self, listener=None, after=0):
        """The audit `conn` records, without those of our readiness probes; with after (a
        conn_mark()), only those written after the mark was taken."""
        return [r for r in self._every_conn_record()[after:]
                if r.get("client") not in self.probe_clients
                and (listener is None or r.get("listener") == listener)]

    def _every_conn_record(self):
        return [r for r in self.audit_records() if r.get("event") == "conn"]

    def conn_mark(self):
        """How many conn records are written so far. Taken before a client connects, it sets
        apart that client's record from the record of an earlier connection that had the same
        client port (on loopback the kernel gives a port out again soon): the proxy appends a
        connection's record when it ends, so the client's comes after the mark."""
        return len(self._every_conn_record())

    def wait_for_conn_records(self, n=1, listener=None, timeout=10.0, where=None, after=0):
        """Waits until at least n conn records (matching listener and the where predicate,
        written after the mark `after`) exist; returns them (maybe fewer on timeout: the caller
        asserts the count)."""
        def matching():
            return [r for r in self.conn_records(listener, after) if where is None or where(r)]
        wait_until(lambda: len(matching()) >= n, timeout, interval=0.1)
        return matching()

    def wait_for_probes_done(self, timeout=15.0):
        """Waits until the proxy has written the conn record of every readiness probe: until
        then a probe's session may still hold a slot of a tight max_connections (a mail
        listener opens its back leg before it notices that the probe has gone)."""
        def done():
            closed = {r.get("client") for r in self.audit_records() if r.get("event") == "conn"}
            return self.probe_clients <= closed
        return wait_until(done, timeout, interval=0.1)

    def records(self, event, conn=None):
        return [r for r in self.audit_records()
                if r.get("event") == event and (conn is None or r.get("conn") == conn)]


# ---------------------------------------------------------------------------------------------
# pebble: Debian's RFC 8555 test CA, for the ACME tests

PEBBLE_READY_TIMEOUT = 20.0


class Pebble:
    """A private pebble (the ACME server) and the pebble-challtestsrv it resolves names through
    (its DNS: every name is 127.0.0.1 unless set_a says otherwise), all on free 127.0.0.1 ports.
    Prepared when made: the ports, pebble's own HTTPS certificate (ca_file trusts it) and its
    config, so a proxy can be configured against it before it runs. start() runs both; or
    start_dns() first and start_pebble() later, for a CA that is down while its names resolve.
    It validates tls-alpn-01 challenges on 127.0.0.1:tls_port (a free port unless given: the
    proxy's own listener). env: more pebble settings (PEBBLE_WFE_NONCEREJECT=<percent> makes it
    refuse that share of nonces with badNonce). https_san: the subjectAltName of pebble's HTTPS
    certificate. Stopped by PID."""

    def __init__(self, directory=None, env=None, https_san="IP:127.0.0.1,DNS:localhost",
                 tls_port=None):
        self.dir = directory or make_lab_dir("tlsbridge-pebble-")
        self.port = free_port()
        self.management_port = free_port()
        self.tls_port = tls_port or free_port()
        self.http_port = free_port()
        self.dns_port = free_port()
        self.challtest_management_port = free_port()
        self.env = {"PEBBLE_VA_NOSLEEP": "1", **(env or {})}
        self.ca_file = os.path.join(self.dir, "pebble-https.pem")
        self.config = os.path.join(self.dir, "pebble-config.json")
        self.dns = self.pebble = None
        key = os.path.join(self.dir, "pebble-https.key")
        run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", key, "-out", self.ca_file, "-days", "2", "-subj",
             "/CN=pebble test listener", "-addext", f"subjectAltName={https_san}"],
            check=True)
        with open(self.config, "w") as f:
            json.dump({"pebble": {
                "listenAddress": f"127.0.0.1:{self.port}",
                "managementListenAddress": f"127.0.0.1:{self.management_port}",
                "certificate": self.ca_file, "privateKey": key,
                "httpPort": self.http_port, "tlsPort": self.tls_port,
                "ocspResponderURL": "", "externalAccountBindingRequired": False}}, f)

    @property
    def directory_url(self):
        return f"https://127.0.0.1:{self.port}/dir"

    def _spawn(self, name, argv, env=None):
        # Appended: a pebble started again keeps the log of its first run.
        log = open(os.path.join(self.dir, f"{name}.log"), "ab")
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                cwd=self.dir, env=env)
        log.close()
        return proc

    def log(self, name="pebble"):
        try:
            with open(os.path.join(self.dir, f"{name}.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def _wait_ports(self, *ports):
        for port in ports:
            if not wait_until(lambda: port_accepts(port), PEBBLE_READY_TIMEOUT):
                self.stop()
                raise LabError(f"pebble not accepting on {port} after {PEBBLE_READY_TIMEOUT}s\n"
                               f"pebble:\n{self.log()}\nchalltestsrv:\n{self.log('challtestsrv')}")

    def start_dns(self):
        """pebble-challtestsrv alone: the names resolve, the CA is not up yet."""
        if self.dns is None:
            self.dns = self._spawn("challtestsrv", [
                "pebble-challtestsrv", "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "",
                "-dns01", f"127.0.0.1:{self.dns_port}", "-http01", "", "-https01", "",
                "-tlsalpn01", "", "-management", f"127.0.0.1:{self.challtest_management_port}"])
            self._wait_ports(self.challtest_management_port)
        return self

    def start_pebble(self):
        self.start_dns()
        if self.pebble is None:
            self.pebble = self._spawn("pebble", ["pebble", "-config", self.config,
                                                 "-dnsserver", f"127.0.0.1:{self.dns_port}"],
                                      env={**os.environ, **self.env})
            self._wait_ports(self.port, self.management_port)
        return self

    def start(self):
        return self.start_pebble()

    def set_a(self, host, address):
        """DNS: `host` resolves to `address` (instead of 127.0.0.1)."""
        body = json.dumps({"host": host, "addresses": [address]}).encode()
        urllib.request.urlopen(f"http://127.0.0.1:{self.challtest_management_port}/add-a",
                               data=body, timeout=10).read()

    def orders(self):
        """How many orders pebble was sent (newOrder requests in its log)."""
        return len(re.findall(r"POST /order-plz", self.log()))

    def management_pem(self, path):
        context = client_context(self.ca_file)
        with urllib.request.urlopen(f"https://127.0.0.1:{self.management_port}{path}",
                                    context=context, timeout=10) as response:
            return response.read().decode()

    def root_pem(self):
        """The root that pebble's issued chains lead to (it changes with every pebble run)."""
        return self.management_pem("/roots/0")

    def intermediate_pem(self):
        return self.management_pem("/intermediates/0")

    @staticmethod
    def _end(proc):
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)

    def stop_pebble(self):
        """The CA down; DNS stays."""
        self._end(self.pebble)
        self.pebble = None

    def stop(self):
        self.stop_pebble()
        self._end(self.dns)
        self.dns = None

    def cleanup(self):
        self.stop()
        if not keep_lab():
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()


# ---------------------------------------------------------------------------------------------
# CLI for scripts/lab

def _cli(argv):
    import argparse
    parser = argparse.ArgumentParser(prog="lab.py")
    sub = parser.add_subparsers(dest="action", required=True)
    start = sub.add_parser("start-postfix")
    start.add_argument("--dir", required=True)
    start.add_argument("--port", type=int, required=True)
    start.add_argument("--certs", required=True)
    start.add_argument("--tls", default="tls1.0-starttls", choices=POSTFIX_MODES)
    for action in ("stop-postfix", "status-postfix"):
        sub.add_parser(action).add_argument("--dir", required=True)
    certs = sub.add_parser("make-certs")
    certs.add_argument("--dir", required=True)
    args = parser.parse_args(argv)

    if args.action == "make-certs":
        make_certs(args.dir)
        return 0
    if args.action == "start-postfix":
        os.makedirs(args.dir, exist_ok=True)
        os.chmod(args.dir, 0o755)
        PostfixBackend(args.certs, tls=args.tls, port=args.port, directory=args.dir).start()
        return 0
    backend = PostfixBackend.attach(args.dir)
    if args.action == "stop-postfix":
        backend.stop()
        return 0
    pid = backend.master_pid()
    print(f"running (master pid {pid})" if pid else "stopped")
    return 0 if pid else 3


if __name__ == "__main__":
    try:
        sys.exit(_cli(sys.argv[1:]))
    except LabError as e:
        print(f"lab.py: {e}", file=sys.stderr)
        sys.exit(1)
