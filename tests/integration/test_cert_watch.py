"""The certificate watch ([server] watch_certs, proxy/cert_watch.hpp): a renewed certificate and
key go live within 5 s without a signal, however the renewal writes them — rewritten in place,
renamed over (acme.sh, and certbot's archive files), or a certbot-style live/ symlink re-pointed
into archive/ — while the proxy runs as `nobody`. A half-written key fails its reload and
changes nothing; finishing the write retries. With watch_certs = false nothing is reloaded until
SIGHUP. The served certificate's serial is read with openssl s_client."""

import os
import shutil
import signal
import time
import unittest

import cert_renewal
import lab

PICKUP_LIMIT = 5.0  # seconds (README, "Operate")


class CertWatchTest(cert_renewal.RenewalTestCase):
    def start(self, cert, key, watch_certs=None):
        server = 'user = "nobody"\n'
        if watch_certs is not None:
            server += f"watch_certs = {str(watch_certs).lower()}\n"
        proxy, port, admin = self.make_proxy(cert, key, server)
        proxy.start()
        return proxy, port, admin

    def wait_for_serial(self, port, serial, limit=PICKUP_LIMIT):
        """Seconds until the proxy serves `serial` (polled), or None after `limit`."""
        started = time.monotonic()
        served = lab.wait_until(lambda: cert_renewal.served_serial(port) == serial, limit,
                                interval=0.2)
        return time.monotonic() - started if served else None

    def test_rewritten_in_place(self):
        cert, key, _ = self.issue("live")
        proxy, port, admin = self.start(cert, key)
        new_cert, new_key, new_serial = self.issue("next")
        inode = os.stat(key).st_ino
        for source, target in ((new_cert, cert), (new_key, key)):
            with open(source, "rb") as f, open(target, "r+b") as out:
                out.truncate(0)
                out.write(f.read())
        self.assertEqual(os.stat(key).st_ino, inode, "the same file, rewritten")
        took = self.wait_for_serial(port, new_serial)
        self.assertIsNotNone(took, "the rewritten certificate is served within 5 s"
                             + proxy.describe())
        print(f"\n  in-place rewrite served after {took:.2f} s", flush=True)
        self.assertIn("reload done (certificate change: ", proxy.stderr())
        self.assertEqual(cert_renewal.metric(admin, "tlsbridge_last_reload_success"), 1)

    def test_renamed_over(self):
        cert, key, _ = self.issue("live")
        proxy, port, _ = self.start(cert, key)
        new_cert, new_key, new_serial = self.issue("next")
        os.rename(new_cert, cert)
        os.rename(new_key, key)
        took = self.wait_for_serial(port, new_serial)
        self.assertIsNotNone(took, "the renamed-over certificate is served within 5 s"
                             + proxy.describe())
        print(f"\n  rename-over served after {took:.2f} s", flush=True)

    def test_certbot_symlink_repointed(self):
        archive, live = os.path.join(self.keys, "archive"), os.path.join(self.keys, "live")
        os.makedirs(archive)
        os.makedirs(live)
        os.chmod(archive, 0o755)
        os.chmod(live, 0o755)
        first_cert, first_key, _ = self.issue("cert1")
        links = {}
        for name, target in (("fullchain.pem", first_cert), ("privkey.pem", first_key)):
            shutil.move(target, os.path.join(archive, os.path.basename(target)))
            links[name] = os.path.join(live, name)
            os.symlink(os.path.join("..", "archive", os.path.basename(target)), links[name])
        proxy, port, _ = self.start(links["fullchain.pem"], links["privkey.pem"])
        next_cert, next_key, new_serial = self.issue("cert2")
        for name, target in (("fullchain.pem", next_cert), ("privkey.pem", next_key)):
            shutil.move(target, os.path.join(archive, os.path.basename(target)))
            os.unlink(links[name])  # certbot's update_symlinks: unlink, then symlink anew
            os.symlink(os.path.join("..", "archive", os.path.basename(target)), links[name])
        took = self.wait_for_serial(port, new_serial)
        self.assertIsNotNone(took, "the re-pointed certificate is served within 5 s"
                             + proxy.describe())
        print(f"\n  symlink re-pointed, served after {took:.2f} s", flush=True)

    def test_a_half_written_key_changes_nothing_and_the_next_write_retries(self):
        cert, key, serial = self.issue("live")
        proxy, port, admin = self.start(cert, key)
        new_cert, new_key, new_serial = self.issue("next")
        with open(new_key, "rb") as f:
            key_bytes = f.read()
        os.rename(new_cert, cert)
        with open(key, "r+b") as out:  # the new certificate with half of its key: no pair
            out.truncate(0)
            out.write(key_bytes[:len(key_bytes) // 2])
        failed = lab.wait_until(
            lambda: cert_renewal.metric(admin, "tlsbridge_last_reload_success") == 0,
            PICKUP_LIMIT, interval=0.2)
        self.assertTrue(failed, "the half-written key is tried and rejected" + proxy.describe())
        self.assertEqual(cert_renewal.served_serial(port), serial, "the old pair keeps serving")
        self.assertEqual(cert_renewal.echo_through(port, self.certs), b"ping\n")
        with open(key, "r+b") as out:  # the write completes
            out.seek(len(key_bytes) // 2)
            out.write(key_bytes[len(key_bytes) // 2:])
        took = self.wait_for_serial(port, new_serial)
        self.assertIsNotNone(took, "the completed key is retried and served" + proxy.describe())
        self.assertEqual(cert_renewal.metric(admin, "tlsbridge_last_reload_success"), 1)
        rejected = [line for line in proxy.stderr().splitlines() if "reload rejected" in line]
        self.assertEqual(len(rejected), 1, proxy.describe())
        self.assertIn("(certificate change: ", rejected[0])

    def test_watch_certs_false_is_not_reloaded(self):
        cert, key, serial = self.issue("live")
        proxy, port, admin = self.start(cert, key, watch_certs=False)
        new_cert, new_key, new_serial = self.issue("next")
        os.rename(new_cert, cert)
        os.rename(new_key, key)
        time.sleep(PICKUP_LIMIT + 1)
        self.assertEqual(cert_renewal.served_serial(port), serial, proxy.describe())
        self.assertNotIn("reload", proxy.stderr())
        # The same files do go live on SIGHUP: the files were fine, the watch was off.
        os.kill(proxy.proc.pid, signal.SIGHUP)
        self.assertIsNotNone(self.wait_for_serial(port, new_serial), proxy.describe())


if __name__ == "__main__":
    unittest.main()
