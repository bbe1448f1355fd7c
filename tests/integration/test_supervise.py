"""`ccci supervise`, the per-run supervisor (docs/supervisor.md), started the
way the daemon starts it: its own session, CCCI_DAEMON_PID, real pipes."""

import fcntl
import json
import os
import pwd
import signal
import subprocess
import sys
import time
import uuid

from itest import CCCI, WAIT, CcciTestCase, run_cli, wait_for

GRACE_MS = 500
# Every process of a run carries this variable with the test's own value, so
# the test finds them in /proc even after they left the process group.
MARKER = "CCCI_TEST_RUN_MARKER"

# A fake daemon: spawns the supervisor as its own child the way the daemon
# does (lock fd handed over then closed, duplicates of the pipes' read ends),
# writes the supervisor's pid, then does nothing until it is killed.
FAKE_DAEMON = r"""
import fcntl, json, os, subprocess, sys, time
lock_path, info_path, marker, ccci, state, grace = sys.argv[1:7]
harness = sys.argv[7:]
lock = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
fcntl.flock(lock, fcntl.LOCK_EX)
out_r, out_w = os.pipe()
err_r, err_w = os.pipe()
dup_o, dup_e = os.dup(out_r), os.dup(err_r)
env = dict(os.environ, CCCI_DAEMON_PID=str(os.getpid()))
env[%r] = marker
argv = [ccci, "supervise", "--state", state, "--kill-grace", grace,
        "--lock-fd", str(lock), "--drain-fd", str(dup_o),
        "--drain-fd", str(dup_e), "--"] + harness
p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out_w,
                     stderr=err_w, pass_fds=(lock, dup_o, dup_e),
                     start_new_session=True, env=env)
for fd in (out_w, err_w, dup_o, dup_e, lock):
    os.close(fd)
with open(info_path + ".tmp", "w") as f:
    json.dump({"pid": p.pid}, f)
os.rename(info_path + ".tmp", info_path)
while True:
    time.sleep(60)
""" % (MARKER,)

# A harness whose teardown (its TERM trap) writes far more than a pipe holds
# (64 KiB) to stdout, then leaves a file saying it got to its end.
TEARDOWN_SH = r"""
trap 'touch "$1/got-term"
i=0
while [ $i -lt 2000 ]; do
  echo "teardown line $i: ................................................................"
  i=$((i + 1))
done
echo "teardown done" >&2
touch "$1/teardown-done"
exit 0' TERM
touch "$1/started"
sleep 120 &
wait
"""

# A harness that ignores SIGTERM, with descendants that ignore it too: one in
# its group, one that called setsid(), and an orphan (double fork) that the
# supervisor inherits as subreaper.
STUBBORN_PY = r"""
import os, signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
def linger():
    time.sleep(120)
    os._exit(0)
if os.fork() == 0:
    linger()
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        linger()
    linger()
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        linger()
    os._exit(0)
open(sys.argv[1], "w").close()
while True:
    time.sleep(1)
"""

# A harness that exits at once, leaving a detached grandchild that keeps
# stdout open.
LEAVER_PY = r"""
import os, sys, time
ready = sys.argv[1]
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        open(ready, "w").close()
        time.sleep(120)
        os._exit(0)
    os._exit(0)
os.wait()
while not os.path.exists(ready):
    time.sleep(0.01)
print("harness done", flush=True)
"""


def marker_pids(marker):
    """Live processes whose environment holds MARKER=marker (a zombie's
    environment reads as empty)."""
    needle = ("%s=%s" % (MARKER, marker)).encode()
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/environ" % name, "rb") as f:
                env = f.read()
        except OSError:
            continue
        if needle in env.split(b"\0"):
            pids.append(int(name))
    return pids


def try_flock(path):
    fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


class SuperviseTest(CcciTestCase):
    def setUp(self):
        super().setUp()
        self.marker = uuid.uuid4().hex
        self.state = os.path.join(self.tmp, "state")
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait(WAIT)
            for f in (p.stdout, p.stderr):
                if f is not None:
                    f.close()
        # A failed test must not leave processes behind.
        for pid in marker_pids(self.marker):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        super().tearDown()

    def path(self, name):
        return os.path.join(self.tmp, name)

    def write(self, name, text):
        with open(self.path(name), "w") as f:
            f.write(text)
        return self.path(name)

    def env(self, **extra):
        e = dict(os.environ)
        e["CCCI_DAEMON_PID"] = str(os.getpid())
        e[MARKER] = self.marker
        e.update(extra)
        return e

    def start(self, harness, args=(), grace=GRACE_MS, env=None, **kw):
        argv = [CCCI, "supervise", "--state", self.state, "--kill-grace", str(grace)]
        argv += list(args) + ["--"] + list(harness)
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        p = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=env if env is not None else self.env(),
            **kw,
        )
        self.procs.append(p)
        return p

    def run_sup(self, harness, **kw):
        p = self.start(harness, **kw)
        out, err = p.communicate(timeout=WAIT)
        return p.returncode, out.decode(), err.decode()

    def detail(self):
        with open(os.path.join(self.state, "exit")) as f:
            return json.load(f)

    def expect_detail(self, **want):
        d = {
            "exit_code": None,
            "signal": None,
            "core_dumped": False,
            "killed_after_grace": False,
            "daemon_died": False,
        }
        d.update(want)
        self.assertEqual(self.detail(), d)

    def test_exit_code_passes_through(self):
        for code in (0, 3):
            rc, out, err = self.run_sup(["sh", "-c", "echo hello; exit %d" % code])
            self.assertEqual(rc, code, err)
            self.assertEqual(out, "hello\n")
            self.assertEqual(err, "")
            self.expect_detail(exit_code=code)
            with open(os.path.join(self.state, "exit")) as f:
                self.assertTrue(f.read().endswith("}\n"))

    def test_signal_gives_128_plus_signal(self):
        rc, _, err = self.run_sup(["sh", "-c", "kill -USR1 $$"])
        self.assertEqual(rc, 128 + signal.SIGUSR1, err)
        self.expect_detail(signal=signal.SIGUSR1)

    def test_harness_environment_and_process_state(self):
        env = self.env(CCCI_TEST_OTHER="kept as is")
        rc, out, err = self.run_sup(
            ["sh", "-c", 'echo "pid $$"; cat /proc/$$/stat; env'], env=env
        )
        self.assertEqual(rc, 0, err)
        lines = out.splitlines()
        pid = int(lines[0].split()[1])
        stat = lines[1].rsplit(")", 1)[1].split()
        self.assertEqual(int(stat[2]), pid, "the harness leads its own group")
        self.assertIn("CCCI_TEST_OTHER=kept as is", lines)
        self.assertIn("%s=%s" % (MARKER, self.marker), lines)
        self.assertFalse([l for l in lines if l.startswith("CCCI_DAEMON_PID=")])
        # The mask and the ignored set survive exec: read them from the
        # harness's own first image (a shell would show its own, briefly).
        rc, out, err = self.run_sup(["grep", "-E", "^Sig(Blk|Ign):", "/proc/self/status"])
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n")

    def test_exec_failure(self):
        missing = self.path("no-such-harness")
        rc, out, err = self.run_sup([missing, "arg"])
        self.assertEqual(rc, 127)
        self.assertEqual(out, "")
        self.assertEqual(
            err, "error supervise: cannot run '%s': No such file or directory\n" % missing
        )
        self.expect_detail(exit_code=127)

    def test_cancel_harness_exits_from_its_trap(self):
        # A long grace that must not be waited for: the harness exits on TERM.
        script = self.write(
            "trap.sh",
            'trap \'echo "stopping on TERM"; exit 0\' TERM\n'
            'touch "$1"\nsleep 120 &\nwait\n',
        )
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            with self.subTest(signal=sig.name):
                started = self.path("started-%s" % sig.name)
                p = self.start(["sh", script, started], grace=20000)
                wait_for(lambda: os.path.exists(started), what="the harness to start")
                t0 = time.monotonic()
                p.send_signal(sig)
                out, err = p.communicate(timeout=WAIT)
                self.assertLess(time.monotonic() - t0, 10.0)
                self.assertEqual(p.returncode, 0, err)
                self.assertEqual(out, b"stopping on TERM\n")
                self.assertIn(
                    "info supervise: %s: SIGTERM to the harness (group " % sig.name,
                    err.decode(),
                )
                self.expect_detail(exit_code=0)
                self.assertEqual(marker_pids(self.marker), [])

    def test_cancel_kills_stubborn_descendants_after_grace(self):
        script = self.write("stubborn.py", STUBBORN_PY)
        started = self.path("started")
        p = self.start([sys.executable, script, started])
        wait_for(lambda: os.path.exists(started), what="the harness to start")
        # The supervisor, the harness, and four live descendants.
        wait_for(
            lambda: len(marker_pids(self.marker)) == 6, what="the run's processes to start"
        )
        t0 = time.monotonic()
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=WAIT)
        self.assertGreaterEqual(time.monotonic() - t0, GRACE_MS / 1000.0)
        self.assertEqual(p.returncode, 128 + signal.SIGKILL, err)
        self.assertEqual(marker_pids(self.marker), [])
        self.assertIn(
            "warn supervise: the harness is still running %d ms after SIGTERM; "
            "SIGKILL to every process of the run\n" % GRACE_MS,
            err.decode(),
        )
        self.expect_detail(signal=signal.SIGKILL, killed_after_grace=True)

    def test_second_stop_does_not_restart_the_grace(self):
        script = self.write("stubborn.py", STUBBORN_PY)
        started = self.path("started")
        p = self.start([sys.executable, script, started], grace=1500)
        wait_for(lambda: os.path.exists(started), what="the harness to start")
        t0 = time.monotonic()
        p.send_signal(signal.SIGTERM)
        time.sleep(1.2)
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=WAIT)
        # A restarted grace would end 2.7 s after the first signal.
        self.assertLess(time.monotonic() - t0, 2.5)
        self.assertEqual(p.returncode, 128 + signal.SIGKILL, err)
        text = err.decode()
        self.assertIn("info supervise: SIGTERM: already stopping; SIGKILL in ", text)
        left = int(text.split("already stopping; SIGKILL in ")[1].split()[0])
        self.assertLessEqual(left, 1000)
        self.assertEqual(marker_pids(self.marker), [])
        self.expect_detail(signal=signal.SIGKILL, killed_after_grace=True)

    def test_harness_exit_kills_what_it_left(self):
        script = self.write("leaver.py", LEAVER_PY)
        t0 = time.monotonic()
        # communicate() returns only at EOF on both pipes: the detached
        # grandchild holding stdout must be gone.
        rc, out, err = self.run_sup([sys.executable, script, self.path("ready")])
        self.assertLess(time.monotonic() - t0, 20.0)
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, "harness done\n")
        self.assertEqual(
            err, "info supervise: the harness exited; SIGKILL to 1 leftover process\n"
        )
        self.assertEqual(marker_pids(self.marker), [])
        self.expect_detail(exit_code=0)

    def test_daemon_death_drains_pipes_and_keeps_the_lock_to_the_end(self):
        script = self.write("teardown.sh", TEARDOWN_SH)
        lock = self.path("domain.lock")
        info = self.path("daemon.json")
        env = dict(os.environ)
        env.pop(MARKER, None)
        fake = subprocess.Popen(
            [sys.executable, "-c", FAKE_DAEMON, lock, info, self.marker, CCCI,
             self.state, "10000", "sh", script, self.tmp],
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=env,
        )
        self.procs.append(fake)
        wait_for(lambda: os.path.exists(info), what="the fake daemon")
        wait_for(lambda: os.path.exists(self.path("started")), what="the harness")
        self.assertFalse(try_flock(lock), "the supervisor holds the domain lock")
        fake.kill()
        fake.wait(WAIT)
        # The lock is free only once every process of the run is gone.
        deadline = time.monotonic() + WAIT
        while not try_flock(lock):
            self.assertLess(time.monotonic(), deadline, "the lock was never released")
            time.sleep(0.01)
        self.assertEqual(marker_pids(self.marker), [])
        self.assertTrue(os.path.exists(self.path("got-term")), "the harness got SIGTERM")
        self.assertTrue(
            os.path.exists(self.path("teardown-done")),
            "the teardown ran to its end (no SIGPIPE)",
        )
        self.expect_detail(exit_code=0, daemon_died=True)

    def test_daemon_gone_before_start(self):
        ran = self.path("ran")
        env = self.env(CCCI_DAEMON_PID=str(os.getppid()))
        rc, out, _ = self.run_sup(["touch", ran], env=env)
        self.assertEqual(rc, 128 + signal.SIGTERM)
        self.assertEqual(out, "")
        self.assertFalse(os.path.exists(ran), "the harness must not start")
        self.expect_detail(signal=signal.SIGTERM, daemon_died=True)

    def test_lock_and_drain_fds_are_not_inherited(self):
        lock = self.path("domain.lock")
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        r, w = os.pipe()
        # Inherited without close-on-exec and named by no option.
        extra = os.open("/dev/null", os.O_RDONLY)
        check = self.write(
            "fds.py",
            "import fcntl, json, os, sys\n"
            "def is_open(n):\n"
            "    try:\n"
            "        fcntl.fcntl(n, fcntl.F_GETFD)\n"
            "        return True\n"
            "    except OSError:\n"
            "        return False\n"
            "fds = sorted(int(x) for x in os.listdir('/proc/self/fd'))\n"
            "lock, drain, extra = [is_open(int(a)) for a in sys.argv[2:5]]\n"
            "l = os.open(sys.argv[1], os.O_RDWR)\n"
            "try:\n"
            "    fcntl.flock(l, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
            "    free = True\n"
            "except BlockingIOError:\n"
            "    free = False\n"
            "print(json.dumps({'fds': fds, 'lock': lock, 'drain': drain,\n"
            "                  'extra': extra, 'free': free}))\n",
        )
        p = self.start(
            [sys.executable, check, lock, str(fd), str(r), str(extra)],
            args=["--lock-fd", str(fd), "--drain-fd", str(r)],
            pass_fds=(fd, r, extra),
        )
        os.close(extra)
        # Like the daemon: hand the lock over and keep no copy.
        os.close(fd)
        os.close(r)
        out, err = p.communicate(timeout=WAIT)
        os.close(w)
        self.assertEqual(p.returncode, 0, err)
        seen = json.loads(out)
        # 0, 1, 2 and the one listdir() itself had open.
        self.assertEqual(seen["fds"][:3], [0, 1, 2])
        self.assertEqual(len(seen["fds"]), 4, seen)
        self.assertFalse(seen["lock"])
        self.assertFalse(seen["drain"])
        self.assertFalse(seen["extra"])
        self.assertFalse(seen["free"], "the lock is held while the harness runs")
        self.assertTrue(try_flock(lock), "the lock is released at the end")

    def test_harness_opens_dev_stdout_and_dev_stderr(self):
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        p = self.start(
            [
                "sh",
                "-c",
                "echo by-path-out > /dev/stdout; echo by-path-err > /dev/stderr; "
                "echo plain",
            ],
            stdout=out_w,
            stderr=err_w,
        )
        os.close(out_w)
        os.close(err_w)
        with os.fdopen(out_r, "rb") as f:
            out = f.read()
        with os.fdopen(err_r, "rb") as f:
            err = f.read()
        self.assertEqual(p.wait(WAIT), 0, err)
        self.assertEqual(out, b"by-path-out\nplain\n")
        self.assertEqual(err, b"by-path-err\n")

    def test_user(self):
        if os.geteuid() != 0:
            self.skipTest("needs root")
        try:
            nobody = pwd.getpwnam("nobody")
        except KeyError:
            self.skipTest("no user 'nobody'")
        os.chmod(self.tmp, 0o755)
        os.mkdir(self.state, 0o750)
        os.chown(self.state, nobody.pw_uid, nobody.pw_gid)
        p = self.start(
            ["sh", "-c", "id -u; id -g; echo by-path > /dev/stdout"],
            args=["--user", "nobody"],
            cwd="/",
        )
        out, err = p.communicate(timeout=WAIT)
        self.assertEqual(p.returncode, 0, err)
        self.assertEqual(
            out.decode(), "%d\n%d\nby-path\n" % (nobody.pw_uid, nobody.pw_gid)
        )
        self.expect_detail(exit_code=0)
        self.assertEqual(os.stat(os.path.join(self.state, "exit")).st_uid, nobody.pw_uid)
        rc, _, err = self.run_sup(["true"], args=["--user", "no-such-user-here"])
        self.assertEqual(rc, 125)
        self.assertEqual(err, "error supervise: --user no-such-user-here: no such user\n")

    def test_usage(self):
        env = self.env()
        del env["CCCI_DAEMON_PID"]
        rc, _, err = self.run_sup(["true"], env=env)
        self.assertEqual(rc, 64)
        self.assertIn("error supervise: CCCI_DAEMON_PID must hold the daemon's pid", err)
        rc, _, err = self.run_sup(["true"], env=self.env(CCCI_DAEMON_PID="12x"))
        self.assertEqual(rc, 64)
        rc, _, err = self.run_sup(["true"], args=["--drain-fd", "1"])
        self.assertEqual(rc, 64)
        self.assertIn("--drain-fd: expected a descriptor number above 2", err)
        rc, _, err = self.run_sup(["true"], args=["--lock-fd", "999"])
        self.assertEqual(rc, 64)
        self.assertIn("--lock-fd 999: not an open descriptor", err)
        rc, _, err = self.run_sup(["true"], grace="soon")
        self.assertEqual(rc, 64)
        r = run_cli("supervise", "--kill-grace", "5", "--", "true",
                    env={"CCCI_DAEMON_PID": str(os.getpid())})
        self.assertEqual(r.returncode, 64)
        self.assertIn("--state DIR is required", r.stderr)
        # Hidden: not in the help, never suggested.
        r = run_cli("--help")
        self.assertNotIn("supervise", r.stdout)
        r = run_cli("supervize")
        self.assertNotIn("supervise", r.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.state, "exit")))
