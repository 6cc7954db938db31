"""The admin endpoint (/metrics, /healthz, /readyz) has no authentication: check-config, start
and reload warn when `[admin] listen` is not a loopback address (issue 12, "look for more")."""

import subprocess
import unittest

import lab


class AdminExposureTest(unittest.TestCase):
    def test_check_config_warns_about_a_non_loopback_admin_address(self):
        certs = lab.shared_certs()
        for listen, warned in (("0.0.0.0:%d", True), ("[::]:%d", True), ("127.0.0.1:%d", False),
                               ("[::1]:%d", False), ("", False)):
            with self.subTest(listen=listen):
                admin = listen % lab.free_port() if listen else ""
                proxy = lab.Tlsbridge(
                    [lab.smtp_listener(lab.free_port(), 2525, tls="none", backend_tls="none")],
                    [lab.server_pair(certs)], admin=admin)
                self.addCleanup(proxy.cleanup)
                with open(proxy.config_path, "w") as f:
                    f.write(proxy.config_text())
                result = subprocess.run(
                    [proxy.binary, "check-config", "--config", proxy.config_path],
                    capture_output=True, text=True, timeout=30)
                self.assertEqual(result.returncode, 0, result.stderr)
                self.assertEqual("no authentication" in result.stderr, warned, result.stderr)


if __name__ == "__main__":
    unittest.main()
