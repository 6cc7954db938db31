"""Debian's redis-server as a private peer for [server] shared_state tests: on a free port of
127.0.0.1, nothing saved (`--save "" --appendonly no`), its log in its own lab directory, stopped
and restarted by the PID this module started."""

import os
import shutil
import signal
import socket
import subprocess
import unittest

import lab

REDIS_READY_TIMEOUT = 10.0


def why_redis_cannot_run():
    """None when redis-server is installed and runs here, else the reason (for skipTest)."""
    binary = shutil.which("redis-server")
    if binary is None:
        return "redis-server is not installed (scripts/setup installs Debian's redis-server)"
    try:
        proc = lab.run([binary, "--version"], timeout=10)
    except lab.LabError as e:
        return f"redis-server does not run here: {e}"
    if proc.returncode != 0:
        return f"redis-server --version exited {proc.returncode}: {proc.stderr.strip()}"
    return None


def skip_unless_redis_runs():
    """Raises unittest.SkipTest with the reason when redis-server cannot run here."""
    why = why_redis_cannot_run()
    if why:
        raise unittest.SkipTest(why)


class RedisServer:
    def __init__(self, port=None):
        self.port = port or lab.free_port()
        self.dir = lab.make_lab_dir("tlsbridge-redis.")
        self.log_path = os.path.join(self.dir, "redis.log")
        self.proc = None

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}"

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no", "--dir", self.dir,
             "--logfile", self.log_path],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not lab.wait_until(self.answers_ping, REDIS_READY_TIMEOUT, interval=0.05):
            self.stop()
            raise lab.LabError(f"redis-server not answering on {self.port} after "
                               f"{REDIS_READY_TIMEOUT}s; log:\n{self.log()}")
        return self

    def answers_ping(self):
        if self.proc is None or self.proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def exists(self, key):
        """Whether `key` is in this Redis (redis-cli, from Debian's redis-tools)."""
        proc = lab.run(["redis-cli", "-h", "127.0.0.1", "-p", str(self.port), "EXISTS", key],
                       check=True)
        return proc.stdout.strip() == "1"

    def kill(self):
        """SIGKILL, as a crash: the proxies see their connection reset."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def cleanup(self):
        self.stop()
        if not lab.keep_lab():
            shutil.rmtree(self.dir, ignore_errors=True)

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")[-4000:]
        except OSError:
            return "(no redis log)"
