"""Shared helpers for the integration tests (itest: not the `ccci_testlib`
module ccci ships to recipe tests, python/ccci_testlib.py): a real `ccci`
binary in a private temporary directory, driven through its CLI and its
socket."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

CCCI = os.environ.get("CCCI_BIN") or shutil.which("ccci")
SOURCE_DIR = os.environ.get(
    "CCCI_SOURCE_DIR",
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
)
SCALE = int(os.environ.get("CCCI_TEST_SCALE", "1"))
# Sanitizer builds are slower; waits are generous, never part of an assert
# about speed.
WAIT = 30.0


def wait_for(pred, timeout=WAIT, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.02)


def request(path, obj_or_bytes, timeout=WAIT):
    """Send one request (a dict or raw bytes) and read one reply line."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        data = obj_or_bytes
        if isinstance(data, dict):
            data = (json.dumps(data) + "\n").encode()
        s.sendall(data)
        return read_line(s)


def read_line(s):
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    if not buf:
        return None
    return json.loads(buf)


class Daemon:
    """A `ccci serve` on a private state dir and socket."""

    def __init__(self, tmp, config=None, env=None, config_path=None):
        self.tmp = tmp
        self.state_dir = os.path.join(tmp, "state")
        self.socket = os.path.join(tmp, "ccci.sock")
        self.config_path = config_path or os.path.join(tmp, "ccci.yml")
        self.log_path = os.path.join(tmp, "serve.log")
        if config_path is None:
            text = "state_dir: %s\nsocket: %s\n" % (self.state_dir, self.socket)
            if config:
                text += config
            # Parallel daemons must not fight over the default port 8080.
            if not config or not re.search(r"(?m)^http:", config):
                text += "http:\n  listen: 127.0.0.1:0\n"
            with open(self.config_path, "w") as f:
                f.write(text)
        self.env = dict(os.environ)
        self.env.update(env or {})
        self.proc = None

    def start(self, wait=True, args=None, preexec_fn=None):
        self.log = open(self.log_path, "ab")
        argv = [CCCI, "serve"] + (args if args is not None else ["-c", self.config_path])
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=self.log,
            env=self.env,
            preexec_fn=preexec_fn,
        )
        if wait:
            wait_for(self.ready, what="the daemon to answer")
        return self

    def ready(self):
        if self.proc.poll() is not None:
            raise AssertionError(
                "ccci serve exited with %s:\n%s" % (self.proc.returncode, self.logtext())
            )
        try:
            r = request(self.socket, {"v": 1, "op": "status"}, timeout=5)
            return r is not None and r.get("ok")
        except OSError:
            return False

    def status(self):
        return request(self.socket, {"v": 1, "op": "status"})

    def http_address(self):
        """The HTTP front's "host:port" as `status` reports it."""
        return self.status()["http"]["listen"]

    def url(self, path="/"):
        return "http://%s%s" % (self.http_address(), path)

    def logtext(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def wait_log(self, needle, timeout=WAIT):
        wait_for(lambda: needle in self.logtext(), timeout, "log line %r" % needle)

    def send(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM):
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        return self.proc.wait(WAIT)

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(WAIT)
        if self.proc is not None:
            self.log.close()


def run_cli(*args, env=None, input=None, timeout=WAIT):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run(
        [CCCI] + list(args),
        input=input,
        capture_output=True,
        text=True,
        env=e,
        timeout=timeout,
    )


class CcciTestCase(unittest.TestCase):
    """Gives each test a private short temp dir (Unix socket paths must stay
    under 108 bytes) and stops every daemon it started."""

    def setUp(self):
        self.assertTrue(CCCI and os.path.exists(CCCI), "set CCCI_BIN to the ccci binary")
        self.tmp = tempfile.mkdtemp(prefix="ccci-", dir="/tmp")
        self.daemons = []

    def tearDown(self):
        for d in self.daemons:
            d.kill()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def daemon(self, config=None, env=None, **kw):
        d = Daemon(self.tmp, config=config, env=env, **kw)
        self.daemons.append(d)
        return d
