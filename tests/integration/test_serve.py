"""`ccci serve` driven as a user would: start, status, refusal of a second
daemon, stale and bad socket paths, signals, reload, readiness, descriptors."""

import json
import os
import re
import resource
import signal
import socket
import stat
import subprocess

from itest import CCCI, WAIT, CcciTestCase, request, run_cli, wait_for

LOG_LINE = re.compile(r"^(debug|info|warn|error) [a-z]+: (run=[0-9A-Za-z-]+ )?\S")


class ServeTest(CcciTestCase):
    def test_status_answers(self):
        d = self.daemon().start()
        r = run_cli("-s", d.socket, "status", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        st = json.loads(r.stdout)
        self.assertEqual(st["pid"], d.proc.pid)
        self.assertRegex(st["version"], r"^\d+\.\d+\.\d+$")
        self.assertEqual(st["state"], "serving")
        self.assertEqual(st["state_dir"], d.state_dir)
        self.assertEqual(st["socket"], d.socket)
        self.assertEqual(st["config"], d.config_path)
        self.assertGreaterEqual(st["uptime_s"], 0)
        self.assertRegex(st["instance"], r"^[0-9a-f]{32}$")
        self.assertRegex(st["started_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertGreaterEqual(st["counters"]["ctl_requests"], 1)
        self.assertEqual(st["counters"]["config_reloads"], 0)
        self.assertNotIn("ok", st)
        # Human output: aligned "key value" lines.
        r = run_cli("status", "-s", d.socket)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"(?m)^pid\s+%d$" % d.proc.pid)
        self.assertRegex(r.stdout, r"(?m)^counters:$")
        self.assertRegex(r.stdout, r"(?m)^  ctl_requests\s+\d+$")

    def test_client_finds_socket_by_env_and_config(self):
        d = self.daemon().start()
        r = run_cli("status", "--json", env={"CCCI_SOCKET": d.socket})
        self.assertEqual(r.returncode, 0, r.stderr)
        r = run_cli("-c", d.config_path, "status", "--json", env={"CCCI_SOCKET": ""})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["pid"], d.proc.pid)

    def test_unreachable_daemon_exits_5(self):
        r = run_cli("-s", os.path.join(self.tmp, "nobody.sock"), "status")
        self.assertEqual(r.returncode, 5)
        self.assertIn("cannot reach the daemon at", r.stderr)
        self.assertIn("nobody.sock", r.stderr)

    def test_second_serve_is_refused(self):
        d = self.daemon().start()
        r = subprocess.run(
            [CCCI, "serve", "-c", d.config_path], capture_output=True, text=True, timeout=WAIT
        )
        self.assertEqual(r.returncode, 1)
        self.assertIn("another ccci serve (pid %d) is running" % d.proc.pid, r.stderr)
        # The first one is untouched.
        self.assertTrue(d.status()["ok"])
        with open(os.path.join(d.state_dir, "daemon.lock")) as f:
            self.assertEqual(f.read().strip(), str(d.proc.pid))

    def test_second_serve_on_same_socket_other_state_dir_is_refused(self):
        d = self.daemon().start()
        other = os.path.join(self.tmp, "other.yml")
        with open(other, "w") as f:
            f.write("state_dir: %s/state2\nsocket: %s\n" % (self.tmp, d.socket))
        r = subprocess.run([CCCI, "serve", "-c", other], capture_output=True, text=True, timeout=WAIT)
        self.assertEqual(r.returncode, 1)
        self.assertIn("another process is answering on %s" % d.socket, r.stderr)
        self.assertTrue(d.status()["ok"])

    def test_stale_socket_after_kill_is_replaced(self):
        d = self.daemon().start()
        d.kill()  # SIGKILL: the socket file stays behind
        self.assertTrue(stat.S_ISSOCK(os.lstat(d.socket).st_mode))
        d2 = self.daemon().start()
        self.assertTrue(d2.status()["ok"])
        self.assertIn("removed the stale socket %s" % d.socket, d2.logtext())

    def test_socket_path_that_is_not_a_socket(self):
        d = self.daemon()
        with open(d.socket, "w") as f:
            f.write("precious")
        d.start(wait=False)
        self.assertEqual(d.proc.wait(WAIT), 1)
        self.assertIn("%s exists and is not a socket" % d.socket, d.logtext())
        with open(d.socket) as f:
            self.assertEqual(f.read(), "precious")

    def test_socket_path_too_long(self):
        long_dir = os.path.join(self.tmp, "d" * 100)
        d = self.daemon(config="")
        with open(d.config_path, "w") as f:
            f.write("state_dir: %s/state\nsocket: %s/ccci.sock\n" % (self.tmp, long_dir))
        d.start(wait=False)
        self.assertEqual(d.proc.wait(WAIT), 1)
        log = d.logtext()
        self.assertIn("a Unix socket path must be shorter than 108 bytes", log)
        self.assertIn(long_dir, log)

    def test_sigterm_and_sigint_stop_with_exit_0(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            d = self.daemon().start()
            self.assertEqual(d.stop(sig), 0, d.logtext())
            self.assertFalse(os.path.exists(d.socket), "socket file left behind")
            self.assertIn("info serve: stopped", d.logtext())

    def test_socket_and_dir_modes(self):
        d = self.daemon(config="")
        sock = os.path.join(self.tmp, "run", "sub", "ccci.sock")
        with open(d.config_path, "w") as f:
            f.write("state_dir: %s\nsocket: %s\n" % (d.state_dir, sock))
        d.socket = sock
        d.start()
        self.assertEqual(stat.S_IMODE(os.stat(sock).st_mode), 0o660)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.dirname(sock)).st_mode), 0o750)
        self.assertEqual(stat.S_IMODE(os.stat(d.state_dir).st_mode), 0o750)

    def test_garbage_then_valid_request(self):
        d = self.daemon().start()
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(WAIT)
            s.connect(d.socket)
            f = s.makefile("rwb")
            cases = [
                (b"this is not json\n", "bad-json"),
                (b"[1,2,3]\n", "bad-request"),
                (b'{"op":"status"}\n', "bad-request"),
                (b'{"v":"1","op":"status"}\n', "bad-request"),
                (b'{"v":2,"op":"status"}\n', "unsupported-version"),
                (b'{"v":1,"op":42}\n', "bad-request"),
                (b'{"v":1,"op":"frobnicate"}\n', "unknown-op"),
                (b'{"v":1,"op":"status"} {"v":1}\n', "bad-json"),
                (b'{"v":1,"op":"status","v":1}\n', "bad-json"),
                (b"\xff\xfe{}\n", "bad-json"),
            ]
            for raw, code in cases:
                f.write(raw)
                f.flush()
                reply = json.loads(f.readline())
                self.assertFalse(reply["ok"], raw)
                self.assertEqual(reply["error"]["code"], code, raw)
                self.assertTrue(reply["error"]["message"], raw)
            # Blank lines are ignored; the same connection still works.
            f.write(b'\n  \r\n{"v":1,"op":"status"}\r\n')
            f.flush()
            self.assertTrue(json.loads(f.readline())["ok"])
        st = d.status()
        self.assertTrue(st["ok"])
        self.assertGreaterEqual(st["counters"]["ctl_errors"], 10)

    def test_oversized_request_is_refused_and_daemon_serves_on(self):
        d = self.daemon().start()
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(WAIT)
            s.connect(d.socket)
            try:
                s.sendall(b"{" + b" " * (70 * 1024))
            except BrokenPipeError:
                pass
            buf = b""
            while True:
                try:
                    chunk = s.recv(4096)
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                buf += chunk
            reply = json.loads(buf)
            self.assertEqual(reply["error"]["code"], "too-large")
        st = d.status()
        self.assertTrue(st["ok"])
        self.assertEqual(st["counters"]["ctl_too_large"], 1)

    def test_half_written_request_at_eof(self):
        d = self.daemon().start()
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(WAIT)
            s.connect(d.socket)
            s.sendall(b'{"v":1,"op":"sta')
            s.shutdown(socket.SHUT_WR)
            reply = json.loads(s.makefile("rb").readline())
            self.assertEqual(reply["error"]["code"], "bad-json")
        # A complete request without its newline is answered at EOF.
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(WAIT)
            s.connect(d.socket)
            s.sendall(b'{"v":1,"op":"status"}')
            s.shutdown(socket.SHUT_WR)
            self.assertTrue(json.loads(s.makefile("rb").readline())["ok"])
        # A client that goes away mid-request does not harm the daemon.
        s = socket.socket(socket.AF_UNIX)
        s.connect(d.socket)
        s.sendall(b'{"v":1,')
        s.close()
        self.assertTrue(d.status()["ok"])

    def test_many_clients_at_once(self):
        d = self.daemon().start()
        n = 64 * max(1, int(os.environ.get("CCCI_TEST_SCALE", "1")))
        socks = []
        for _ in range(n):
            s = socket.socket(socket.AF_UNIX)
            s.settimeout(WAIT)
            s.connect(d.socket)
            socks.append(s)
        for s in socks:
            s.sendall(b'{"v":1,"op":"status"}\n')
        for s in socks:
            buf = b""
            while not buf.endswith(b"\n"):
                buf += s.recv(65536)
            self.assertTrue(json.loads(buf)["ok"])
            s.close()
        wait_for(lambda: d.status()["counters"]["ctl_clients"] == 1, what="clients to be cleaned up")

    def test_pipelined_requests_are_answered_in_order(self):
        d = self.daemon().start()
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(WAIT)
            s.connect(d.socket)
            s.sendall(b'{"v":1,"op":"status"}\n{"v":1,"op":"nope"}\n' * 500)
            f = s.makefile("rb")
            for i in range(1000):
                reply = json.loads(f.readline())
                self.assertEqual(reply["ok"], i % 2 == 0)

    def test_sighup_with_broken_file_keeps_old_config(self):
        d = self.daemon(config="capacity: 2\n").start()
        with open(d.config_path, "a") as f:
            f.write("dedline: 5m\ncapacity: lots\n")
        d.send(signal.SIGHUP)
        d.wait_log("keeping the previous configuration")
        log = d.logtext()
        # Lines 4-5 are itest's http section.
        self.assertIn("error config: %s:6:1: unknown key 'dedline'; did you mean 'deadline'?" % d.config_path, log)
        self.assertIn("error config: %s:7:1: duplicate key 'capacity' (first set at line 3)" % d.config_path, log)
        st = d.status()
        self.assertEqual(st["counters"]["config_reload_errors"], 1)
        self.assertEqual(st["counters"]["config_reloads"], 0)
        # Fixed: the next SIGHUP swaps it in.
        with open(d.config_path, "w") as f:
            f.write("state_dir: %s\nsocket: %s\ncapacity: 3\nhttp:\n  listen: 127.0.0.1:0\n"
                    % (d.state_dir, d.socket))
        d.send(signal.SIGHUP)
        d.wait_log("(1 key changed)")
        st = d.status()
        self.assertEqual(st["counters"]["config_reloads"], 1)
        self.assertEqual(st["counters"]["config_reload_errors"], 1)

    def test_sighup_restart_only_key_warns_and_keeps_running_values(self):
        d = self.daemon().start()
        with open(d.config_path, "w") as f:
            f.write("state_dir: %s/elsewhere\nsocket: %s\nhttp:\n  listen: 127.0.0.1:0\n"
                    % (self.tmp, d.socket))
        d.send(signal.SIGHUP)
        d.wait_log("warn config: state_dir changed; it applies after a restart")
        self.assertEqual(d.status()["state_dir"], d.state_dir)

    def test_sd_notify(self):
        notify_path = os.path.join(self.tmp, "notify")
        ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        ns.bind(notify_path)
        ns.settimeout(WAIT)
        d = self.daemon(env={"NOTIFY_SOCKET": notify_path}).start()
        msg = ns.recv(4096).decode()
        self.assertEqual(msg, "READY=1\nMAINPID=%d" % d.proc.pid)
        d.send(signal.SIGHUP)
        self.assertEqual(ns.recv(4096).decode(), "RELOADING=1")
        self.assertEqual(ns.recv(4096).decode(), "READY=1")
        self.assertEqual(d.stop(), 0)
        self.assertEqual(ns.recv(4096).decode(), "STOPPING=1")
        ns.close()

    def test_process_hygiene(self):
        """Every descriptor close-on-exec, SIGPIPE ignored, NOFILE raised."""
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        low = min(256, hard)

        def lower():
            resource.setrlimit(resource.RLIMIT_NOFILE, (low, hard))

        d = self.daemon()
        d.start(preexec_fn=lower)
        # Hold a client connection open so its descriptor is checked too.
        c = socket.socket(socket.AF_UNIX)
        c.connect(d.socket)
        wait_for(lambda: d.status()["counters"]["ctl_clients"] >= 2, what="client")
        pid = d.proc.pid
        checked = 0
        for fd in os.listdir("/proc/%d/fd" % pid):
            if int(fd) <= 2:
                continue
            try:
                with open("/proc/%d/fdinfo/%s" % (pid, fd)) as f:
                    flags = int(re.search(r"flags:\s+([0-7]+)", f.read()).group(1), 8)
            except FileNotFoundError:
                continue  # the status request's own descriptor, gone already
            checked += 1
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            self.assertTrue(flags & 0o2000000, "fd %s (%s) is not close-on-exec" % (fd, target))
        self.assertGreaterEqual(checked, 4)
        c.close()
        with open("/proc/%d/limits" % pid) as f:
            line = [l for l in f if l.startswith("Max open files")][0].split()
        self.assertEqual(line[3], line[4], "RLIMIT_NOFILE soft limit not raised")
        self.assertEqual(int(line[3]), hard)
        with open("/proc/%d/status" % pid) as f:
            sigign = int(re.search(r"SigIgn:\s+([0-9a-f]+)", f.read()).group(1), 16)
        self.assertTrue(sigign & (1 << (signal.SIGPIPE - 1)), "SIGPIPE not ignored")

    def test_log_lines_are_greppable(self):
        d = self.daemon(config="http:\n  listen: 127.0.0.1:0\n").start()
        request(d.socket, b"garbage\n")
        d.send(signal.SIGHUP)
        d.wait_log("key")
        self.assertEqual(d.stop(), 0)
        lines = d.logtext().splitlines()
        self.assertGreater(len(lines), 3)
        for line in lines:
            self.assertRegex(line, LOG_LINE)
        self.assertTrue(any(l.startswith("info serve: ccci ") for l in lines))
        self.assertTrue(any(l.startswith("info http: serving on http://127.0.0.1:") for l in lines), lines)
        self.assertFalse(any("does not act on it yet" in l for l in lines), lines)

    def test_bad_config_refuses_to_start(self):
        d = self.daemon(config="capacity: 0\n")
        d.start(wait=False)
        self.assertEqual(d.proc.wait(WAIT), 1)
        self.assertIn("error config: %s:3:1: capacity: 0 is out of range (1 to 1024)" % d.config_path, d.logtext())
        self.assertFalse(os.path.exists(d.socket))

    def test_missing_config_file(self):
        d = self.daemon()
        d.start(wait=False, args=["-c", os.path.join(self.tmp, "missing.yml")])
        self.assertEqual(d.proc.wait(WAIT), 1)
        self.assertIn("missing.yml: cannot read: No such file or directory", d.logtext())

    def test_embedded_default_config(self):
        home = os.path.join(self.tmp, "home")
        xdg_state = os.path.join(self.tmp, "xs")
        os.makedirs(home)
        env = {"HOME": home, "XDG_STATE_HOME": xdg_state, "XDG_CONFIG_HOME": os.path.join(home, "cfg"), "CCCI_CONFIG": "", "CCCI_SOCKET": ""}
        probe = socket.socket()
        try:
            probe.bind(("127.0.0.1", 8080))
        except OSError:
            self.skipTest("port 8080 (the embedded default http.listen) is in use")
        finally:
            probe.close()
        d = self.daemon(env=env)
        d.socket = os.path.join(xdg_state, "ccci", "ccci.sock")
        d.start(args=[])
        st = json.loads(run_cli("status", "--json", env=env).stdout)
        self.assertEqual(st["config"], "<embedded>")
        self.assertEqual(st["http"], {"listen": "127.0.0.1:8080", "public_url": "http://127.0.0.1:8080"})
        self.assertEqual(st["state_dir"], os.path.join(xdg_state, "ccci"))
        self.assertEqual(st["socket"], d.socket)
        # SIGHUP on the embedded default has nothing to re-read.
        d.send(signal.SIGHUP)
        d.wait_log("nothing to reload")
        self.assertEqual(d.stop(), 0)

    def test_default_config_file_is_used(self):
        home = os.path.join(self.tmp, "home")
        cfgdir = os.path.join(home, ".config", "ccci")
        os.makedirs(cfgdir)
        sock = os.path.join(self.tmp, "def.sock")
        with open(os.path.join(cfgdir, "ccci.yml"), "w") as f:
            f.write("state_dir: %s/st\nsocket: %s\nhttp:\n  listen: 127.0.0.1:0\n" % (self.tmp, sock))
        env = {"HOME": home, "XDG_CONFIG_HOME": "", "CCCI_CONFIG": "", "CCCI_SOCKET": ""}
        d = self.daemon(env=env)
        d.socket = sock
        d.start(args=[])
        r = run_cli("status", "--json", env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["config"], os.path.join(cfgdir, "ccci.yml"))

    def test_serve_usage_errors(self):
        r = run_cli("serve", "extra")
        self.assertEqual(r.returncode, 64)
        self.assertIn("'serve' takes no argument 'extra'", r.stderr)
        r = run_cli("serve", "-s", "/tmp/x.sock")
        self.assertEqual(r.returncode, 64)
