"""Runs on the real daemon: supervised harness processes streaming through
the redactor into Drone-format step logs, and always ended (by themselves,
by cancel, by deadline, or when the daemon goes) with nothing left."""

import json
import os
import random
import signal
import sys
import time

from itest import SCALE, SOURCE_DIR, WAIT, CcciTestCase, request, run_cli, wait_for

PY = sys.executable
EXAMPLE = os.path.join(SOURCE_DIR, "examples", "example-harness")
SECRET = "Sup3r-s3cret-t0ken-4242"


def procs_with(marker):
    """Pids of live processes whose environment holds marker."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/environ" % pid, "rb") as f:
                env = f.read()
            with open("/proc/%s/stat" % pid) as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker.encode() in env and state != "Z":
            found.append(int(pid))
    return found


class RunsTest(CcciTestCase):
    def setUp(self):
        super().setUp()
        self.marker = "TEST_MARKER_CCCI_%d_%d" % (os.getpid(), random.randrange(1 << 30))
        self.secrets = os.path.join(self.tmp, "secrets")
        os.makedirs(self.secrets)
        with open(os.path.join(self.secrets, "token"), "w") as f:
            f.write(SECRET + "\n")
        self.recipe = os.path.join(self.tmp, "myrecipe")
        os.makedirs(self.recipe)
        with open(os.path.join(self.recipe, "compose.yml"), "w") as f:
            f.write("version: '3.8'\n")

    def tearDown(self):
        for pid in procs_with(self.marker):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        super().tearDown()

    def start(self, harness, extra="", teardown=None):
        path = os.path.join(self.tmp, "harness.py")
        with open(path, "w") as f:
            f.write(harness)
        cfg = (
            "secrets_dir: %s\nkill_grace: 1s\ndrain_timeout: 1s\n"
            "harness:\n  command: [%s, %s]\n  env: {%s: '1'}\n"
            % (self.secrets, PY, path, self.marker)
        )
        if teardown is not None:
            tpath = os.path.join(self.tmp, "teardown.py")
            with open(tpath, "w") as f:
                f.write(teardown)
            cfg += "  teardown_command: [%s, %s]\n" % (PY, tpath)
        else:
            # The example's empty teardown (the default is `ccci harness`).
            cfg += "  teardown_command: [%s, --teardown]\n" % EXAMPLE
        self.d = self.daemon(config=cfg + extra).start()
        return self.d

    def submit(self, *args):
        r = run_cli("-s", self.d.socket, "submit", self.recipe, *args)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"^[0-9A-Za-z-]{1,40}\n$")
        return r.stdout.strip()

    def show(self, rid):
        r = request(self.d.socket, {"v": 1, "op": "show", "id": rid})
        self.assertTrue(r["ok"], r)
        return r["run"]

    def wait_finished(self, rid, timeout=WAIT):
        return wait_for(
            lambda: (lambda m: m if m["state"] == "finished" else None)(self.show(rid)),
            timeout,
            "run %s to finish" % rid,
        )

    def wait_output(self, rid, line):
        """Wait until the run's log holds @line (the harness is set up)."""
        wait_for(
            lambda: any(line in [l["out"] for l in ls] for ls in self.step_lines(rid).values()),
            what="%r in the log" % line,
        )

    def step_lines(self, rid, n=None):
        logs = os.path.join(self.d.state_dir, "runs", rid, "logs")
        out = {}
        if not os.path.isdir(logs):
            return out
        for name in sorted(os.listdir(logs)):
            if not name.endswith(".jsonl"):
                continue
            with open(os.path.join(logs, name), "rb") as f:
                lines = [json.loads(l) for l in f.read().splitlines()]
            # The daemon's own notes ("[ccci] finished: ...") are left out.
            out[name] = [l for l in lines if not l["out"].startswith("[ccci] ")]
        return out

    def test_run_succeeds_with_env_contract_and_steps(self):
        self.start(
            "import os,sys\n"
            "print('before any marker')\n"
            "print('~~~ step install')\n"
            "for k in sorted(os.environ):\n"
            "    if k.startswith('CCCI_') or k == 'ABRA_DIR': print(k + '=' + os.environ[k])\n"
            "print('secret is %s here', flush=True)\n"
            "print('~~~ step custom', flush=True)\n"
            "sys.stderr.write('to stderr\\n')\n"
            "open(os.environ['CCCI_RESULTS_FILE'], 'w').write('{}')\n" % SECRET
        )
        rid = self.submit("--ref", "main", "--pr", "7")
        m = self.wait_finished(rid)
        self.assertEqual(m["reason"], "success")
        self.assertEqual(m["exit_code"], 0)
        self.assertEqual(m["state"], "finished")
        self.assertEqual(m["repo"], "local/myrecipe")
        self.assertEqual(m["recipe"], "myrecipe")
        self.assertEqual(m["number"], 1)
        self.assertEqual(m["ref"], "main")
        self.assertEqual(m["pr"], 7)
        self.assertEqual(m["submitted_by_uid"], os.getuid())
        self.assertEqual(m["teardown"], "none")
        self.assertRegex(m["domain"], r"^myrecipe-pr7\.ci\.local$")
        self.assertEqual(m["daemon_instance"], self.d.status()["instance"])
        steps = self.step_lines(rid)
        self.assertEqual(sorted(steps), ["0-init.jsonl", "1-install.jsonl", "2-custom.jsonl"])
        self.assertEqual(steps["0-init.jsonl"][0], {"pos": 0, "out": "before any marker\n", "time": 0})
        text = "".join(l["out"] for l in steps["1-install.jsonl"])
        run_dir = os.path.join(self.d.state_dir, "runs", rid)
        self.assertIn("CCCI_RUN_ID=%s\n" % rid, text)
        self.assertIn("CCCI_RECIPE=myrecipe\n", text)
        self.assertIn("CCCI_RECIPE_DIR=%s/recipe\n" % run_dir, text)
        self.assertIn("CCCI_PR=7\n", text)
        self.assertIn("CCCI_REF=main\n", text)
        self.assertIn("CCCI_QUICK=0\n", text)
        self.assertIn("CCCI_DOMAIN=myrecipe-pr7.ci.local\n", text)
        self.assertIn("CCCI_OPSTATE_FILE=%s/state/opstate\n" % run_dir, text)
        self.assertIn("ABRA_DIR=%s/abra\n" % run_dir, text)
        self.assertIn("CCCI_DEADLINE_IN=3600\n", text)
        self.assertNotIn("CCCI_DAEMON_PID", text)
        self.assertIn("secret is ******** here\n", text)
        self.assertNotIn(SECRET, text)
        self.assertEqual([l["pos"] for l in steps["1-install.jsonl"]], list(range(len(steps["1-install.jsonl"]))))
        self.assertEqual(steps["2-custom.jsonl"][-1]["out"], "to stderr\n")
        # The recipe was copied at submit time.
        self.assertTrue(os.path.exists(os.path.join(run_dir, "recipe", "compose.yml")))
        with open(os.path.join(run_dir, "logs", "index.json")) as f:
            index = json.load(f)
        self.assertEqual([s["name"] for s in index], ["init", "install", "custom"])
        self.assertFalse(any(s["open"] for s in index))
        self.assertEqual(index[1]["lines"], len(steps["1-install.jsonl"]))
        # ccci show's exit code follows the reason.
        r = run_cli("-s", self.d.socket, "show", rid)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("install", r.stdout)
        st = self.d.status()
        self.assertEqual(st["counters"]["runs_by_reason"]["success"], 1)

    def test_ccci_as_the_program_is_the_daemons_binary(self):
        # `[ccci, ...]` runs the daemon's own binary even with no ccci on PATH.
        self.d = self.daemon(
            config="secrets_dir: %s\nharness:\n  command: [ccci, version]\n" % self.secrets,
            env={"PATH": "/usr/bin:/bin"},
        ).start()
        rid = self.submit()
        m = self.wait_finished(rid)
        self.assertEqual(m["reason"], "success")
        text = "".join(l["out"] for ls in self.step_lines(rid).values() for l in ls)
        self.assertRegex(text, r"ccci \d+\.\d+\.\d+\n")

    def test_failure_and_exec_error_reasons(self):
        self.start("import sys; print('bad'); sys.exit(3)\n")
        m = self.wait_finished(self.submit())
        self.assertEqual((m["reason"], m["exit_code"]), ("failure", 3))
        r = run_cli("-s", self.d.socket, "show", m["id"])
        self.assertEqual(r.returncode, 1)
        r = run_cli("-s", self.d.socket, "show", "no-such-run-id")
        self.assertEqual(r.returncode, 3)

    def test_big_output_both_pipes_no_secret_every_line(self):
        mib = 100 * SCALE
        self.start(
            "import os, random, sys\n"
            "rnd = random.Random(7)\n"
            "S = %r\n"
            "target = %d * 1024 * 1024\n"
            "def lines(tag):\n"
            "    i = 0\n"
            "    while True:\n"
            "        pad = 'x' * rnd.randrange(0, 120)\n"
            "        sec = S if i %% 97 == 0 else ''\n"
            "        yield ('%%s %%d %%s%%s\\n' %% (tag, i, pad, sec)).encode()\n"
            "        i += 1\n"
            "gens = {1: lines('out'), 2: lines('err')}\n"
            "bufs = {1: b'', 2: b''}\n"
            "written = 0\n"
            "while written < target:\n"
            "    fd = rnd.choice((1, 2))\n"
            "    while len(bufs[fd]) < 70000: bufs[fd] += next(gens[fd])\n"
            "    n = rnd.randrange(1, 65536)\n"
            "    os.write(fd, bufs[fd][:n]); written += n; bufs[fd] = bufs[fd][n:]\n"
            "for fd in (1, 2):\n"
            "    cut = bufs[fd].rfind(b'\\n') + 1\n"
            "    os.write(fd, bufs[fd][:cut])\n" % (SECRET, mib)
        )
        m = self.wait_finished(self.submit(), timeout=WAIT * 4)
        self.assertEqual(m["reason"], "success")
        logs = os.path.join(self.d.state_dir, "runs", m["id"], "logs", "0-init.jsonl")
        last = {"out": -1, "err": -1}
        total = 0
        with open(logs, "rb") as f:
            for n, raw in enumerate(f):
                line = json.loads(raw)
                self.assertEqual(line["pos"], n)
                out = line["out"]
                if out.startswith("[ccci] "):
                    continue
                self.assertNotIn("Sup3r", out)
                tag, i, rest = out.split(" ", 2)
                i = int(i)
                self.assertEqual(i, last[tag] + 1, "line lost or reordered in %s" % tag)
                last[tag] = i
                if i % 97 == 0:
                    self.assertTrue(rest.endswith("********\n"), rest)
                total += len(out)
        self.assertGreater(total, mib * 1024 * 1024 * 0.9)

    def test_cancel_kills_everything(self):
        self.start(
            "import os, signal, subprocess, sys, time\n"
            "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "code = 'import os,signal,time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)'\n"
            "subprocess.Popen([sys.executable, '-c', code])\n"
            "subprocess.Popen([sys.executable, '-c', 'import os; os.setsid(); ' + code])\n"
            "print('started', flush=True)\n"
            "time.sleep(600)\n"
        )
        rid = self.submit()
        wait_for(lambda: len(procs_with(self.marker)) >= 4, what="the harness and its children")
        self.wait_output(rid, "started\n")
        t0 = time.monotonic()
        r = run_cli("-s", self.d.socket, "cancel", rid)
        self.assertEqual(r.returncode, 0, r.stderr)
        m = self.wait_finished(rid)
        self.assertEqual(m["reason"], "cancelled")
        self.assertLess(time.monotonic() - t0, 1.0 + 5.0)
        self.assertEqual(procs_with(self.marker), [])

    def test_deadline(self):
        self.start("import time\nprint('sleeping', flush=True)\ntime.sleep(600)\n", extra="deadline: 2s\n")
        rid = self.submit()
        t0 = time.monotonic()
        m = self.wait_finished(rid)
        took = time.monotonic() - t0
        self.assertEqual(m["reason"], "timeout")
        self.assertLess(took, 2 + 1 + max(1.0, 0.25 * 3) + 1.0)
        self.assertEqual(procs_with(self.marker), [])

    def test_grandchild_holding_stdout(self):
        self.start(
            "import os, subprocess, sys\n"
            "subprocess.Popen([sys.executable, '-c', 'import os,time; os.setsid(); time.sleep(600)'])\n"
            "print('harness done', flush=True)\n"
        )
        m = self.wait_finished(self.submit())
        self.assertEqual(m["reason"], "success")
        wait_for(lambda: procs_with(self.marker) == [], what="the grandchild to be gone")

    def test_dev_stdout_by_path(self):
        self.start(
            "open('/dev/stdout', 'w').write('via path out\\n')\n"
            "open('/dev/stderr', 'w').write('via path err\\n')\n"
        )
        m = self.wait_finished(self.submit())
        self.assertEqual(m["reason"], "success")
        outs = [l["out"] for l in self.step_lines(m["id"])["0-init.jsonl"]]
        self.assertIn("via path out\n", outs)
        self.assertIn("via path err\n", outs)

    def test_line_encoding_markers_cut_utf8(self):
        self.start(
            "import os\n"
            "w = lambda b: os.write(1, b)\n"
            "w(b'~~~ step fancy-step.1\\n')\n"
            "w(b'\\x1b[31mred\\x1b[0m\\n')\n"
            "w(b'bad \\xff\\xfe utf8 \\xe2\\x82 end\\n')\n"
            "w(b'~~~ step NotAMarker\\n')\n"
            "w(b'x' * 70000 + b'\\n')\n"
            "w(b'e' * 65535 + '\u20ac'.encode() + b'tail\\n')\n"
            "w(b'no newline at the end')\n"
        )
        m = self.wait_finished(self.submit())
        steps = self.step_lines(m["id"])
        self.assertEqual(sorted(steps), ["0-init.jsonl", "1-fancy-step.1.jsonl"])
        self.assertEqual(steps["0-init.jsonl"], [])
        outs = [l["out"] for l in steps["1-fancy-step.1.jsonl"]]
        self.assertEqual(outs[0], "\x1b[31mred\x1b[0m\n")
        self.assertEqual(outs[1], "bad \ufffd\ufffd utf8 \ufffd end\n")
        self.assertEqual(outs[2], "~~~ step NotAMarker\n")
        self.assertEqual(outs[3], "x" * 65536)
        self.assertEqual(outs[4], "x" * (70000 - 65536) + "\n")
        self.assertEqual(outs[5], "e" * 65535)
        self.assertEqual(outs[6], "\u20actail\n")
        self.assertEqual(outs[7], "no newline at the end")
        with open(os.path.join(self.d.state_dir, "runs", m["id"], "logs", "1-fancy-step.1.jsonl"), "rb") as f:
            raw = f.read()
        self.assertIn(b'"\\u001b[31mred\\u001b[0m\\n"', raw)

    def test_teardown_after_cancel(self):
        self.start(
            "import os, time\n"
            "open(os.environ['CCCI_OPSTATE_FILE'], 'w').write('deployed\\n')\n"
            "print('deployed', flush=True)\n"
            "time.sleep(600)\n",
            teardown="import os\nprint('tearing down ' + os.environ['CCCI_DOMAIN'])\n"
            "open(os.environ['CCCI_OPSTATE_FILE'], 'w').write('clean\\n')\n",
        )
        rid = self.submit()
        wait_for(lambda: os.path.exists(os.path.join(self.d.state_dir, "runs", rid, "state", "opstate")), what="deploy")
        self.assertEqual(run_cli("-s", self.d.socket, "cancel", rid).returncode, 0)
        m = self.wait_finished(rid)
        self.assertEqual((m["reason"], m["teardown"]), ("cancelled", "clean"))
        steps = self.step_lines(rid)
        td = [k for k in steps if k.endswith("-teardown.jsonl")]
        self.assertEqual(len(td), 1)
        self.assertIn("tearing down myrecipe-l1.ci.local\n", [l["out"] for l in steps[td[0]]])

    def test_daemon_stop_requeues_and_next_start_runs_again(self):
        self.start(
            "import os, signal, sys, time\n"
            "signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))\n"
            "print('attempt', flush=True)\n"
            "if os.path.exists(os.environ['CCCI_RESULTS_FILE'] + '.seen'): sys.exit(0)\n"
            "open(os.environ['CCCI_RESULTS_FILE'] + '.seen', 'w').close()\n"
            "time.sleep(600)\n"
        )
        rid = self.submit()
        self.wait_output(rid, "attempt\n")
        self.assertEqual(self.d.stop(), 0)
        self.assertEqual(procs_with(self.marker), [])
        with open(os.path.join(self.d.state_dir, "runs", rid, "meta.json")) as f:
            meta = json.load(f)
        self.assertEqual((meta["state"], meta["reason"], meta["attempt"]), ("queued", None, 1))
        d2 = self.daemon(config_path=self.d.config_path)
        d2.state_dir, d2.socket = self.d.state_dir, self.d.socket
        self.d = d2.start()
        m = self.wait_finished(rid)
        self.assertEqual((m["reason"], m["attempt"]), ("success", 2))
        self.assertTrue(os.path.isdir(os.path.join(self.d.state_dir, "runs", rid, "logs.attempt-1")))

    def test_daemon_killed_harness_tears_down(self):
        done = os.path.join(self.tmp, "teardown-done")
        self.start(
            "import os, signal, sys, time\n"
            "def term(*a):\n"
            "    for i in range(3000): print('teardown line %%d' %% i, flush=True)\n"
            "    open(%r, 'w').close()\n"
            "    sys.exit(0)\n"
            "signal.signal(signal.SIGTERM, term)\n"
            "print('up', flush=True)\n"
            "time.sleep(600)\n" % done
        )
        rid = self.submit()
        self.wait_output(rid, "up\n")
        self.d.kill()
        wait_for(lambda: os.path.exists(done), what="the harness's teardown to finish")
        wait_for(lambda: procs_with(self.marker) == [], what="every process of the run to end")

    def test_supervisor_killed_while_deployed_no_teardown_beside_the_harness(self):
        # A supervisor killed by a signal ccci did not send (the OOM killer,
        # a stray kill -9) leaves its harness running in its own session:
        # the daemon must not start the teardown command next to it (two
        # abra writers on one app).
        ppid = os.path.join(self.tmp, "supervisor-pid")
        ended = os.path.join(self.tmp, "harness-ended")
        td = os.path.join(self.tmp, "teardown-ran")
        self.start(
            "import os, time\n"
            "open(os.environ['CCCI_OPSTATE_FILE'], 'w').write('deployed\\n')\n"
            "open(%r, 'w').write(str(os.getppid()))\n"
            "print('deployed', flush=True)\n"
            "time.sleep(3)\n"
            "open(%r, 'w').close()\n" % (ppid, ended),
            teardown="import os\n"
            "open(%r, 'w').write('after' if os.path.exists(%r) else 'overlap')\n"
            "open(os.environ['CCCI_OPSTATE_FILE'], 'w').write('clean\\n')\n" % (td, ended),
        )
        rid = self.submit()
        self.wait_output(rid, "deployed\n")
        with open(ppid) as f:
            os.kill(int(f.read()), signal.SIGKILL)
        m = self.wait_finished(rid)
        self.assertEqual(m["reason"], "error")
        wait_for(lambda: os.path.exists(ended), what="the harness to end by itself")
        wait_for(lambda: procs_with(self.marker) == [], what="every process of the run to end")
        if os.path.exists(td):
            with open(td) as f:
                self.assertEqual(f.read(), "after")

    def test_submit_errors(self):
        self.start("print('x')\n")
        r = request(self.d.socket, {"v": 1, "op": "submit", "dir": "relative/path"})
        self.assertEqual(r["error"]["code"], "refused")
        self.assertIn("absolute", r["error"]["message"])
        r = request(self.d.socket, {"v": 1, "op": "submit", "dir": self.tmp + "/missing"})
        self.assertEqual(r["error"]["code"], "refused")
        r = request(self.d.socket, {"v": 1, "op": "submit", "dir": 42})
        self.assertEqual(r["error"]["code"], "bad-request")
        r = run_cli("-s", self.d.socket, "submit", os.path.join(self.tmp, "nope"))
        self.assertEqual(r.returncode, 64)
        self.assertEqual(r.stdout, "")

    def test_new_secret_reaches_an_open_run(self):
        """A secret added while a run is open is masked in that run's later
        output (the set is re-read before the next run starts)."""
        go = os.path.join(self.tmp, "go")
        self.start(
            "import os, sys, time\n"
            "if os.environ.get('CCCI_PR') == '2':\n"
            "    print('second run'); sys.exit(0)\n"
            "print('waiting', flush=True)\n"
            "while not os.path.exists(%r): time.sleep(0.02)\n"
            "print('late NEW-secret-value-77 and %s', flush=True)\n" % (go, SECRET),
            extra="capacity: 2\n",
        )
        first = self.submit("--pr", "1")
        self.wait_output(first, "waiting\n")
        with open(os.path.join(self.secrets, "added"), "w") as f:
            f.write("NEW-secret-value-77\n")
        os.remove(os.path.join(self.secrets, "token"))  # removed: still masked in the open run
        second = self.submit("--pr", "2")
        self.assertEqual(self.wait_finished(second)["reason"], "success")
        open(go, "w").close()
        m = self.wait_finished(first)
        self.assertEqual(m["reason"], "success")
        outs = [l["out"] for l in self.step_lines(first)["0-init.jsonl"]]
        self.assertIn("late ******** and ********\n", outs)

    def test_sighup_brings_a_new_secret_into_an_open_run(self):
        """SIGHUP alone (no other run starting) re-reads the secrets: the
        open run's later output masks the new value, and the removed one
        stays masked until its stream ends."""
        go = os.path.join(self.tmp, "go")
        self.start(
            "import os, sys, time\n"
            "print('waiting', flush=True)\n"
            "while not os.path.exists(%r): time.sleep(0.02)\n"
            "print('late HUP-secret-value-99 and %s', flush=True)\n" % (go, SECRET),
        )
        rid = self.submit()
        self.wait_output(rid, "waiting\n")
        before = self.d.logtext()
        with open(os.path.join(self.secrets, "added"), "w") as f:
            f.write("HUP-secret-value-99\n")
        os.remove(os.path.join(self.secrets, "token"))
        os.kill(self.d.proc.pid, signal.SIGHUP)
        # The daemon says it has the new set (one value now) before the run
        # prints again.
        wait_for(lambda: self.d.logtext().count("1 secret value (") > before.count("1 secret value ("),
                 what="the new secret set in the daemon's log")
        open(go, "w").close()
        m = self.wait_finished(rid)
        self.assertEqual(m["reason"], "success")
        outs = [l["out"] for l in self.step_lines(rid)["0-init.jsonl"]]
        self.assertIn("late ******** and ********\n", outs)

    def test_unreadable_secret_is_a_problem_at_start(self):
        """The secrets are read when the daemon starts: status names an
        unreadable file before any run is submitted."""
        bad = os.path.join(self.secrets, "dangling")
        os.symlink(os.path.join(self.tmp, "nowhere"), bad)
        self.start("print('ran')\n")
        wait_for(lambda: any(bad in p for p in self.d.status()["problems"]), what="the problem naming the file")
        os.remove(bad)
        os.kill(self.d.proc.pid, signal.SIGHUP)  # fixed and reloaded: the problem goes
        wait_for(lambda: self.d.status()["problems"] == [], what="the problem to clear")
        rid = self.submit()
        self.assertEqual(self.wait_finished(rid)["reason"], "success")

    def test_log_max_bytes_keeps_the_head(self):
        self.start(
            "import sys\n"
            "for i in range(5000): print('line %05d ' % i + 'x' * 60)\n"
            "print('the end')\n",
            extra="log_max_bytes: 64KiB\n",
        )
        m = self.wait_finished(self.submit())
        self.assertEqual(m["reason"], "success")
        path = os.path.join(self.d.state_dir, "runs", m["id"], "logs", "0-init.jsonl")
        with open(path, "rb") as f:
            raw = f.read()
        lines = [json.loads(l) for l in raw.splitlines()]
        self.assertLessEqual(len(raw), 64 * 1024 + 1024)
        self.assertTrue(lines[0]["out"].startswith("line 00000 "))
        trunc = [l["out"] for l in lines if "log_max_bytes" in l["out"]]
        self.assertEqual(len(trunc), 1)
        self.assertNotIn("the end\n", [l["out"] for l in lines])

    def test_low_disk_stops_admission(self):
        self.start("print('ran')\n", extra="min_free_bytes: 1000TiB\n")
        rid = self.submit()
        wait_for(
            lambda: any("min_free_bytes" in p for p in self.d.status()["problems"]),
            what="the low-disk problem in status",
        )
        self.assertEqual(self.show(rid)["state"], "queued")
        r = run_cli("-s", self.d.socket, "show", rid)
        self.assertEqual(r.returncode, 4)
        self.assertEqual(run_cli("-s", self.d.socket, "cancel", rid).returncode, 0)
        self.assertEqual(self.show(rid)["reason"], "cancelled")

    def test_unreadable_secret_fails_closed(self):
        bad = os.path.join(self.secrets, "dangling")
        os.symlink(os.path.join(self.tmp, "nowhere"), bad)
        self.start("print('ran')\n")
        rid = self.submit()
        wait_for(lambda: any(bad in p for p in self.d.status()["problems"]), what="the problem naming the file")
        self.assertEqual(self.show(rid)["state"], "queued")
        os.remove(bad)  # fixed: admission is retried
        m = self.wait_finished(rid)
        self.assertEqual(m["reason"], "success")
        self.assertEqual(self.d.status()["problems"], [])
