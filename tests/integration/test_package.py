"""The Debian package (scripts/package, debian/): built with dpkg-buildpackage, checked by lintian,
installed into this very system with apt-get, inspected file by file, run from its own
configuration in front of a real Postfix, and purged.

It installs as root into the real system, so it runs only as root, refuses to touch a tlsbridge
package it did not install, and purges what it installed even when a check fails. No systemd runs
as PID 1 here: the unit is checked with systemd-analyze (verify, security --offline), and the
installed binary is started directly the way the unit would start it."""

import grp
import json
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import tempfile
import time
import unittest

import lab

PACKAGE_TIMEOUT = 1800.0  # a cold build on 2 busy cores; ccache makes the next one ~1 min
APT_TIMEOUT = 300.0
CONFIG = "/etc/tlsbridge/tlsbridge.toml"
UNIT = "/lib/systemd/system/tlsbridge.service"
LOGROTATE = "/etc/logrotate.d/tlsbridge"
LOG_DIR = "/var/log/tlsbridge"
MAN_PAGES = {"/usr/share/man/man8/tlsbridge.8.gz": "tlsbridge - TLS-upgrading proxy",
             "/usr/share/man/man5/tlsbridge.toml.5.gz": "tlsbridge.toml - configuration file"}
ENABLED_LINK = "/etc/systemd/system/multi-user.target.wants/tlsbridge.service"
SNAKEOIL_CERT = "/etc/ssl/certs/ssl-cert-snakeoil.pem"
SNAKEOIL_KEY = "/etc/ssl/private/ssl-cert-snakeoil.key"
STATE_DIR = "/var/lib/tlsbridge"  # the unit's StateDirectory=; [acme] state_dir's default below it
ACME_NAME = "mail.package.test"
MAX_EXPOSURE = 3.0  # systemd-analyze security: 8.9 before the unit was hardened, 2.5 after

deb_path = None


def package_state():
    """dpkg's status of tlsbridge: "install ok installed", "deinstall ok config-files", or ""."""
    result = lab.run(["dpkg-query", "-W", "-f=${Status}", "tlsbridge"])
    return result.stdout.strip() if result.returncode == 0 else ""


def apt_env():
    return dict(os.environ, DEBIAN_FRONTEND="noninteractive")


def install():
    # Every dependency is on the machine already (scripts/setup): no download, no recommends.
    result = subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", deb_path],
                            env=apt_env(), stdin=subprocess.DEVNULL, capture_output=True,
                            text=True, timeout=APT_TIMEOUT)
    if result.returncode != 0:
        raise lab.LabError(f"apt-get install {deb_path} exited {result.returncode}:\n"
                           f"{result.stdout}\n{result.stderr}")


def purge():
    if package_state():
        subprocess.run(["apt-get", "purge", "-y", "tlsbridge"], env=apt_env(),
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=APT_TIMEOUT)


def cmake_version():
    with open(os.path.join(lab.SOURCE_DIR, "CMakeLists.txt")) as f:
        return re.search(r"project\(tlsbridge VERSION ([0-9.]+)", f.read()).group(1)


def unit_privileges():
    """setpriv(1) with the installed unit's CapabilityBoundingSet= and NoNewPrivileges=: what
    systemd would leave a root service, without a systemd to start it."""
    with open(UNIT) as f:
        unit = f.read()
    caps = re.search(r"^CapabilityBoundingSet=(.+)$", unit, re.M).group(1).split()
    assert re.search(r"^NoNewPrivileges=true$", unit, re.M), "the unit sets NoNewPrivileges"
    bounding = ",".join(["-all"] + ["+" + cap.lower().removeprefix("cap_") for cap in caps])
    return ["setpriv", "--no-new-privs", f"--bounding-set={bounding}"]


def https_listener(port):
    """An implicit-TLS listener: pebble's tls-alpn-01 validation comes to it (its backend never
    needed: nothing but handshakes arrive)."""
    return {"name": "https-in", "protocol": "https", "listen": f"127.0.0.1:{port}",
            "tls": "implicit",
            "backend": {"address": [f"127.0.0.1:{lab.free_port()}"], "tls": "implicit",
                        "tls_profile": "legacy", "verify": "none"}}


def served_der(port, server_name):
    """The leaf an implicit-TLS port shows for server_name (DER), unverified."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=server_name) as tls:
            return tls.getpeercert(binary_form=True)


def low_free_port():
    """A free port below 1024 on 127.0.0.1 (only CAP_NET_BIND_SERVICE may bind it)."""
    for port in range(1023, 899, -1):
        if not lab.port_is_free(port):
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise lab.LabError("no free port in 900..1023")


def setUpModule():
    global deb_path
    if os.geteuid() != 0:
        raise unittest.SkipTest("the package test installs into the system: run it as root")
    if lab.SANITIZED:
        raise unittest.SkipTest("the package is built with Debian's flags, not the sanitizers'; "
                                "the release suite builds and installs it")
    state = package_state()
    if state:
        raise unittest.SkipTest(f"a tlsbridge package is on this machine already ({state}); this "
                                "test installs and purges its own and will not remove that one "
                                "(apt-get purge tlsbridge, then run it again)")
    start = time.monotonic()
    result = lab.run(["bash", os.path.join(lab.SOURCE_DIR, "scripts", "package")],
                     timeout=PACKAGE_TIMEOUT)
    if result.returncode != 0:
        raise lab.LabError(f"scripts/package exited {result.returncode}:\n{result.stderr}")
    deb_path = result.stdout.strip().splitlines()[-1]
    print(f"scripts/package: {deb_path} in {time.monotonic() - start:.0f} s")


def tearDownModule():
    purge()  # whatever a class left behind


class BuiltPackageTest(unittest.TestCase):
    """The .deb itself, before anything is installed."""

    def test_named_after_the_cmake_version_and_the_architecture(self):
        arch = lab.run(["dpkg", "--print-architecture"], check=True).stdout.strip()
        self.assertEqual(os.path.basename(deb_path), f"tlsbridge_{cmake_version()}_{arch}.deb")
        fields = lab.run(["dpkg-deb", "-f", deb_path, "Version", "Depends"], check=True).stdout
        self.assertIn(f"Version: {cmake_version()}", fields)
        # dh_shlibdeps found the libraries the binary links: OpenSSL 3 and Boost among them.
        self.assertRegex(fields, r"libssl3 \(>= 3")
        self.assertIn("libboost-json1.81.0", fields)
        self.assertIn("ssl-cert", fields)
        self.assertIn("adduser", fields)

    def test_lintian_reports_no_error(self):
        result = lab.run(["lintian", "--no-tag-display-limit", deb_path], timeout=300)
        errors = [line for line in result.stdout.splitlines() if line.startswith("E:")]
        self.assertEqual(errors, [], result.stdout)
        self.assertNotIn("E:", result.stderr)


class InstalledPackageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.addClassCleanup(purge)
        install()

    def assert_owned(self, path, user, group, mode):
        st = os.stat(path)
        self.assertEqual(pwd.getpwuid(st.st_uid).pw_name, user, path)
        self.assertEqual(grp.getgrgid(st.st_gid).gr_name, group, path)
        self.assertEqual(oct(stat.S_IMODE(st.st_mode)), oct(mode), path)

    def test_files_owners_and_modes(self):
        self.assert_owned("/usr/sbin/tlsbridge", "root", "root", 0o755)
        self.assert_owned(CONFIG, "root", "root", 0o644)
        self.assert_owned(UNIT, "root", "root", 0o644)
        self.assert_owned(LOGROTATE, "root", "root", 0o644)
        self.assert_owned(LOG_DIR, "tlsbridge", "adm", 0o2750)
        for page in MAN_PAGES:
            self.assert_owned(page, "root", "root", 0o644)
        self.assertTrue(os.path.islink(ENABLED_LINK), "dh_installsystemd enables the unit")
        self.assertEqual(os.readlink(ENABLED_LINK), UNIT)
        version = lab.run(["/usr/sbin/tlsbridge", "--version"]).stdout.split()
        self.assertEqual(version[:2], ["tlsbridge", cmake_version()])
        # Built from a copy without .git, the package still names the commit it was built from.
        head = subprocess.run(["git", "-C", lab.SOURCE_DIR, "rev-parse", "--short=12", "HEAD"],
                              capture_output=True, text=True)
        if head.returncode == 0:
            self.assertEqual(version[2:4], ["(commit", head.stdout.strip() + ")"])

    def test_configuration_and_logrotate_snippet_are_conffiles(self):
        conffiles = lab.run(["dpkg-query", "-W", "-f=${Conffiles}", "tlsbridge"],
                            check=True).stdout
        listed = [line.split()[0] for line in conffiles.strip().splitlines()]
        self.assertIn(CONFIG, listed)
        self.assertIn(LOGROTATE, listed)

    def test_system_user_in_ssl_cert_without_a_login(self):
        user = pwd.getpwnam("tlsbridge")
        self.assertLess(user.pw_uid, 1000, "a system user")
        self.assertEqual(user.pw_shell, "/usr/sbin/nologin")
        self.assertEqual(user.pw_dir, "/nonexistent")
        self.assertIn("ssl-cert", lab.run(["id", "-nG", "tlsbridge"], check=True).stdout.split())
        # The packaged configuration's key: readable by ssl-cert, so by tlsbridge after the drop.
        self.assert_owned(SNAKEOIL_KEY, "root", "ssl-cert", 0o640)

    def test_man_pages_render_with_their_name_sections(self):
        for page, name_line in MAN_PAGES.items():
            with self.subTest(page=page):
                result = subprocess.run(["man", "-l", "-P", "cat", page], capture_output=True,
                                        text=True, timeout=60, env=dict(os.environ, MANWIDTH="100"))
                self.assertEqual(result.returncode, 0, result.stderr)
                self.assertRegex(result.stdout, r"(?m)^NAME$")
                self.assertIn(name_line, " ".join(result.stdout.split()))  # man justifies lines
        man8 = lab.run(["man", "-P", "cat", "8", "tlsbridge"], timeout=60).stdout
        for heading in ("SYNOPSIS", "COMMANDS", "OPTIONS", "SIGNALS", "EXIT STATUS", "FILES",
                        "SEE ALSO"):
            self.assertRegex(man8, rf"(?m)^{heading}$")
        for word in ("check-config", "inspect-cert", "probe", "--starttls", "--servername",
                     "--ca", "--json", "SIGHUP", "SIGUSR1", "SIGTERM"):
            self.assertIn(word, man8)

    def test_packaged_configuration_passes_check_config(self):
        result = lab.run(["/usr/sbin/tlsbridge", "check-config", "--config", CONFIG])
        self.assertEqual((result.returncode, result.stdout), (0, "ok\n"), result.stderr)
        self.assertNotIn("warning", result.stderr)

    def test_unit_verifies_and_is_hardened(self):
        verify = lab.run(["systemd-analyze", "verify", UNIT], timeout=60)
        self.assertEqual(verify.returncode, 0, verify.stdout + verify.stderr)
        security = lab.run(["systemd-analyze", "security", "--offline=yes", UNIT], timeout=60)
        match = re.search(r"Overall exposure level for tlsbridge\.service: ([0-9.]+)",
                          security.stdout)
        self.assertIsNotNone(match, security.stdout + security.stderr)
        self.assertLessEqual(float(match.group(1)), MAX_EXPOSURE, security.stdout)
        with open(UNIT) as f:
            unit = f.read()
        reloads = re.findall(r"^ExecReload=(.*)$", unit, re.M)
        self.assertEqual(reloads, [f"/usr/sbin/tlsbridge check-config --config {CONFIG}",
                                   "/bin/kill -HUP $MAINPID"], "validate first, then signal")
        self.assertIn(f"ExecStart=/usr/sbin/tlsbridge run --config {CONFIG}", unit)
        self.assertIn("RuntimeDirectory=tlsbridge", unit)

    def test_logrotate_rotates_into_a_file_tlsbridge_can_reopen(self):
        audit = os.path.join(LOG_DIR, "rotate-check.jsonl")
        with open(audit, "w") as f:
            f.write('{"event":"conn"}\n')
        with tempfile.TemporaryDirectory() as state_dir:
            result = lab.run(["logrotate", "--force", "--state", os.path.join(state_dir, "state"),
                              LOGROTATE], timeout=60)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertTrue(os.path.exists(audit + ".1"), os.listdir(LOG_DIR))
        self.assert_owned(audit, "tlsbridge", "adm", 0o640)  # "create": SIGUSR1 reopens it

    def test_runs_from_its_configuration_as_tlsbridge_in_front_of_postfix(self):
        # The installed binary on the installed configuration, as the unit would start it, with
        # only the ports free ones and then the backend a real TLS 1.0-only Postfix.
        with open(CONFIG) as f:
            packaged = f.read()
        port, admin = low_free_port(), lab.free_port()
        packaged = packaged.replace('"127.0.0.1:8025"', f'"127.0.0.1:{port}"')
        packaged = packaged.replace('"127.0.0.1:9900"', f'"127.0.0.1:{admin}"')
        self.assertIn(str(port), packaged)

        # As installed: the placeholder backend never resolves, so a client gets 421 and the
        # audit record says why. Started with no more than the unit allows (its capability
        # bounding set, no new privileges), it binds a port below 1024, writes the audit file in
        # the tlsbridge-owned directory and drops to tlsbridge.
        with self.run_proxy(packaged, port, prefix=unit_privileges()) as proc:
            self.assert_runs_as_tlsbridge(proc.pid)
            client = lab.SmtpClient(port, timeout=30)
            self.addCleanup(client.close)
            self.assertEqual(client.read_reply()[0], "421")
            records = self.wait_for_audit(lambda r: r.get("client") == client.local_address())
            self.assertEqual(records[-1]["outcome"], "backend_unavailable")
            self.assertIn("exchange.invalid", records[-1]["reason"])

        certs = lab.shared_certs()
        backend = lab.PostfixBackend(certs)  # STARTTLS, TLS 1.0 only, SHA-1 certificate
        self.addCleanup(backend.cleanup)
        backend.start()
        with self.run_proxy(packaged.replace('"exchange.invalid:25"',
                                             f'"127.0.0.1:{backend.port}"'), port) as proc:
            self.assert_runs_as_tlsbridge(proc.pid)
            client = lab.SmtpClient(port, timeout=30)
            self.addCleanup(client.close)
            self.assertEqual(client.read_reply()[0], "220")
            client.command("EHLO package.test")
            self.assertEqual(client.command("STARTTLS")[0], "220")
            client.starttls()
            self.assertEqual(client.sock.getpeercert(binary_form=True),
                             lab.cert_der(SNAKEOIL_CERT), "the packaged front certificate")
            self.assertEqual(client.sock.version(), "TLSv1.3")
            client.command("QUIT")
            self.assertEqual(lab.swaks(port, "--body", "via the package").returncode, 0)
            self.assertTrue(backend.wait_for_message_containing(b"via the package"))
            record = self.wait_for_audit(lambda r: r.get("backend") and
                                         r["backend"].get("tls") == "TLSv1")[-1]
            self.assertEqual(record["front"]["tls"], "TLSv1.3")

    def test_acme_certificate_issued_after_the_drop_to_tlsbridge(self):
        # An `acme` entry against pebble, the state in the default state_dir under the unit's
        # StateDirectory=, which systemd makes before the start (owned by the service user, the
        # unit's StateDirectoryMode=): ordered, installed and served by the process that already
        # runs as tlsbridge, and read back by root with `tlsbridge acme status`.
        with open(UNIT) as f:
            unit = f.read()
        self.assertIn("StateDirectory=tlsbridge", unit)
        mode = int(re.search(r"^StateDirectoryMode=([0-7]+)$", unit, re.M).group(1), 8)
        self.assertFalse(os.path.exists(STATE_DIR), f"{STATE_DIR} left by someone else")
        self.addCleanup(shutil.rmtree, STATE_DIR, ignore_errors=True)
        user = pwd.getpwnam("tlsbridge")
        os.mkdir(STATE_DIR, mode)
        os.chown(STATE_DIR, user.pw_uid, user.pw_gid)
        os.chmod(STATE_DIR, mode)

        https_port = lab.free_port()  # where pebble validates tls-alpn-01: the proxy's listener
        pebble = lab.Pebble(tls_port=https_port).start()
        self.addCleanup(pebble.cleanup)
        trust = lab.make_lab_dir("tlsbridge-package-ca.")  # 0755: tlsbridge reads the CA file
        self.addCleanup(shutil.rmtree, trust, ignore_errors=True)
        ca_file = os.path.join(trust, "pebble.pem")
        shutil.copyfile(pebble.ca_file, ca_file)
        os.chmod(ca_file, 0o644)

        with open(CONFIG) as f:
            packaged = f.read()
        port, admin = low_free_port(), lab.free_port()
        packaged = packaged.replace('"127.0.0.1:8025"', f'"127.0.0.1:{port}"')
        packaged = packaged.replace('"127.0.0.1:9900"', f'"127.0.0.1:{admin}"')
        packaged += "\n\n".join([
            "", lab.toml_table("acme", {"directory": pebble.directory_url,
                                        "email": "hostmaster@package.test", "ca_file": ca_file}),
            lab.toml_table("[certs]", {"acme": [ACME_NAME]}),
            lab.toml_table("[listener]", https_listener(https_port))])
        config_dir = lab.make_lab_dir("tlsbridge-package-config.")
        self.addCleanup(shutil.rmtree, config_dir, ignore_errors=True)
        config = os.path.join(config_dir, "tlsbridge.toml")
        with open(config, "w") as f:
            f.write(packaged)
        # check-config as root (ExecReload= runs it too) prepares the state: the start below then
        # finds it tlsbridge's already, as every start after the first does, without CAP_FOWNER.
        check = lab.run(["/usr/sbin/tlsbridge", "check-config", "--config", config])
        self.assertEqual(check.returncode, 0, check.stderr)

        status_file = os.path.join(STATE_DIR, "acme", "status.json")

        def entry():
            try:
                with open(status_file) as f:
                    return json.load(f)["entries"][0]
            except (OSError, ValueError, KeyError, IndexError):
                return {}

        with self.run_proxy(packaged, port, prefix=unit_privileges()) as proc:
            self.assert_runs_as_tlsbridge(proc.pid)
            issued = lab.wait_until(lambda: entry().get("result") == "ok", 150, interval=0.5)
            self.assertTrue(issued, f"{entry()}\n{pebble.log()[-3000:]}")
            # Served on the listener after the reload the ACME thread posts (bounded poll).
            served = lab.wait_until(lambda: served_der(https_port, ACME_NAME) ==
                                    lab.cert_der(os.path.join(STATE_DIR, "acme",
                                                              ACME_NAME + ".crt")), 30)
            self.assertTrue(served, "the issued certificate is served on the listener")
            leaf = served_der(https_port, ACME_NAME)
            self.assertEqual(self.verify(leaf, pebble), 0, "the leaf verifies to pebble's root")
            # root reads the state tlsbridge wrote.
            status = lab.run(["/usr/sbin/tlsbridge", "acme", "status", "--config", config])
            self.assertEqual(status.returncode, 0, status.stderr)
            self.assertRegex(status.stdout, rf"{re.escape(ACME_NAME)}\s+(?!placeholder)")
            self.assertNotIn("placeholder", status.stdout)
        # Every file and directory in the state is tlsbridge's, private to it.
        self.assert_owned(STATE_DIR, "tlsbridge", "tlsbridge", mode)
        self.assert_owned(os.path.join(STATE_DIR, "acme"), "tlsbridge", "tlsbridge", 0o700)
        files = os.listdir(os.path.join(STATE_DIR, "acme"))
        for name in ("account.key", ACME_NAME + ".crt", ACME_NAME + ".key", "status.json"):
            self.assertIn(name, files)
        for name in files:
            path = os.path.join(STATE_DIR, "acme", name)
            self.assert_owned(path, "tlsbridge", "tlsbridge",
                              0o700 if os.path.isdir(path) else 0o600)

    # -- helpers ---------------------------------------------------------------------------------

    def run_proxy(self, config_text, port, prefix=()):
        test = self

        class Running:
            def __enter__(self):
                self.dir = lab.make_lab_dir("tlsbridge-package.")
                config = os.path.join(self.dir, "tlsbridge.toml")
                with open(config, "w") as f:
                    f.write(config_text)
                self.stderr = open(os.path.join(self.dir, "stderr"), "w+b")
                self.proc = subprocess.Popen([*prefix, "/usr/sbin/tlsbridge", "run", "--config",
                                              config],
                                             stdin=subprocess.DEVNULL, stdout=self.stderr,
                                             stderr=self.stderr)
                listening = lab.wait_until(lambda: lab.port_accepts(port) or
                                           self.proc.poll() is not None, lab.PROXY_READY_TIMEOUT)
                if not listening or self.proc.poll() is not None:
                    output = self.output()
                    self.__exit__()
                    raise lab.LabError(f"the installed tlsbridge does not listen on {port}: "
                                       f"{output}")
                return self.proc

            def output(self):
                self.stderr.seek(0)
                return self.stderr.read().decode("utf-8", "replace")

            def __exit__(self, *exc):
                if self.proc.poll() is None:
                    self.proc.send_signal(signal.SIGTERM)
                    try:
                        code = self.proc.wait(lab.PROXY_STOP_TIMEOUT)
                    except subprocess.TimeoutExpired:
                        self.proc.kill()
                        self.proc.wait(5)
                        code = None
                    if exc and exc[0] is None:
                        test.assertEqual(code, 0, self.output())
                self.stderr.close()
                shutil.rmtree(self.dir, ignore_errors=True)
                return False

        return Running()

    def verify(self, leaf_der, pebble):
        with tempfile.TemporaryDirectory() as d:
            paths = {}
            for name, text in (("root", pebble.root_pem()), ("inter", pebble.intermediate_pem()),
                               ("leaf", ssl.DER_cert_to_PEM_cert(leaf_der))):
                paths[name] = os.path.join(d, name + ".pem")
                with open(paths[name], "w") as f:
                    f.write(text)
            return lab.run(["openssl", "verify", "-CAfile", paths["root"], "-untrusted",
                            paths["inter"], paths["leaf"]]).returncode

    def assert_runs_as_tlsbridge(self, pid):
        user = pwd.getpwnam("tlsbridge")
        with open(f"/proc/{pid}/status") as f:
            status = dict(line.split(":", 1) for line in f)
        self.assertEqual(set(status["Uid"].split()), {str(user.pw_uid)})
        self.assertIn(str(grp.getgrnam("ssl-cert").gr_gid), status["Groups"].split())

    def wait_for_audit(self, predicate, timeout=30):
        path = os.path.join(LOG_DIR, "audit.jsonl")

        def matching():
            try:
                with open(path) as f:
                    records = [json.loads(line) for line in f if line.strip()]
            except OSError:
                return []
            return [r for r in records if r.get("event") == "conn" and predicate(r)]

        records = lab.wait_until(matching, timeout)
        self.assertTrue(records, f"no matching conn record in {path}")
        return records


class PurgeTest(unittest.TestCase):
    def test_purge_removes_what_the_package_added(self):
        self.addCleanup(purge)
        install()
        with open(os.path.join(LOG_DIR, "audit.jsonl"), "a") as f:
            f.write('{"event":"conn"}\n')
        with open(CONFIG, "a") as f:
            f.write("# edited by the operator\n")  # a changed conffile goes on purge as well
        os.makedirs(os.path.join(STATE_DIR, "acme"), exist_ok=True)  # what the ACME service keeps
        self.addCleanup(shutil.rmtree, STATE_DIR, ignore_errors=True)
        result = subprocess.run(["apt-get", "purge", "-y", "tlsbridge"], env=apt_env(),
                                stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                timeout=APT_TIMEOUT)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertEqual(package_state(), "")
        for path in ["/usr/sbin/tlsbridge", "/etc/tlsbridge", UNIT, LOGROTATE, LOG_DIR,
                     STATE_DIR, ENABLED_LINK, *MAN_PAGES]:
            self.assertFalse(os.path.lexists(path), f"{path} survived the purge")
        # Debian keeps system users on purge (files they owned elsewhere must not pass to a new
        # user given the same uid); README "Install the Debian package" says so.
        self.assertEqual(lab.run(["id", "-u", "tlsbridge"]).returncode, 0)


if __name__ == "__main__":
    unittest.main()
