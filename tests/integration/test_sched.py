"""Scheduling, domain locks and the janitor on the real daemon: a harness
that records when it starts and ends, runs that must not overlap, a daemon
killed with SIGKILL and started again, retention."""

import fcntl
import json
import os
import signal
import subprocess
import sys
import time

from itest import CCCI, WAIT, CcciTestCase, request, run_cli, wait_for

PY = sys.executable

# The harness: behaviour from recipe/behaviour.json, events appended to
# $EVENTS as "<what> <run> <domain> <monotonic time>".
HARNESS = r"""
import json, os, signal, sys, time
b = json.load(open(os.path.join(os.environ["CCCI_RECIPE_DIR"], "behaviour.json")))
run, dom, ev = os.environ["CCCI_RUN_ID"], os.environ["CCCI_DOMAIN"], os.environ["EVENTS"]
def event(what):
    with open(ev, "a") as f:
        f.write("%s %s %s %.6f\n" % (what, run, dom, time.monotonic()))
def on_term(sig, frame):
    event("term")
    time.sleep(b.get("term_sleep", 0))
    event("end")
    sys.exit(143)
signal.signal(signal.SIGTERM, on_term)
event("start")
print("deploying", dom, flush=True)
if "deploys" in b:
    open(os.environ["CCCI_DEPLOYS_FILE"], "w").write(str(b["deploys"]) + "\n")
if "deps" in b:
    open(os.environ["CCCI_DEPS_FILE"], "w").write(b["deps"])
open(os.environ["CCCI_OPSTATE_FILE"], "w").write("deployed\n")
mine = (os.environ["CCCI_DEPLOYS_FILE"], os.environ["CCCI_OPSTATE_FILE"])
snap = [open(p).read() if os.path.exists(p) else None for p in mine]
time.sleep(b.get("sleep", 0))
# The seed's bug: another run of the domain must not have touched our files.
if [open(p).read() if os.path.exists(p) else None for p in mine] != snap:
    event("clobbered")
    sys.exit(3)
open(os.environ["CCCI_OPSTATE_FILE"], "w").write("torn-down\n")
event("end")
sys.exit(b.get("exit", 0))
"""

TEARDOWN = r"""
import os, time
with open(os.environ["EVENTS"], "a") as f:
    f.write("teardown %s %s %.6f\n" % (os.environ["CCCI_RUN_ID"], os.environ["CCCI_DOMAIN"], time.monotonic()))
"""


class SchedTest(CcciTestCase):
    def setUp(self):
        super().setUp()
        self.events = os.path.join(self.tmp, "events")
        open(self.events, "w").close()
        self.harness = os.path.join(self.tmp, "harness.py")
        with open(self.harness, "w") as f:
            f.write(HARNESS)
        self.teardown = os.path.join(self.tmp, "teardown.py")
        with open(self.teardown, "w") as f:
            f.write(TEARDOWN)

    def serve(self, capacity=4, extra=""):
        d = self.daemon(
            config="min_free_bytes: 0\ncapacity: %d\nkill_grace: 2s\n"
            "harness:\n  command: [%s, %s]\n  teardown_command: [%s, %s]\n"
            "  env: {EVENTS: %s}\n%s" % (capacity, PY, self.harness, PY, self.teardown, self.events, extra)
        )
        return d.start()

    def recipe(self, name, **behaviour):
        path = os.path.join(self.tmp, name)
        os.makedirs(path, exist_ok=True)
        with open(os.path.join(path, "behaviour.json"), "w") as f:
            json.dump(behaviour, f)
        return path

    def submit(self, d, recipe, pr=None):
        req = {"v": 1, "op": "submit", "dir": recipe}
        if pr is not None:
            req["pr"] = pr
        r = request(d.socket, req)
        self.assertTrue(r["ok"], r)
        return r["id"]

    def show(self, d, run_id):
        return request(d.socket, {"v": 1, "op": "show", "id": run_id})["run"]

    def wait_finished(self, d, ids, timeout=WAIT * 2):
        def done():
            runs = {r["id"]: r for r in request(d.socket, {"v": 1, "op": "ps"})["runs"]}
            return all(runs[i]["state"] == "finished" for i in ids) and runs

        return wait_for(done, timeout, "runs to finish")

    def read_events(self):
        out = []
        with open(self.events) as f:
            for line in f:
                what, run, dom, t = line.split()
                out.append((what, run, dom, float(t)))
        return out

    def spans(self):
        ev = self.read_events()
        start = {r: t for w, r, _, t in ev if w == "start"}
        end = {r: t for w, r, _, t in ev if w == "end"}
        return start, end

    def test_one_domain_never_overlaps(self):
        d = self.serve()
        rec = self.recipe("app", sleep=0.6)
        first = self.submit(d, rec, pr=5)
        second = self.submit(d, rec, pr=5)
        wait_for(lambda: self.show(d, second)["state"] == "waiting-lock", what="the second run to wait")
        runs = self.wait_finished(d, [first, second])
        self.assertEqual(runs[first]["domain"], runs[second]["domain"])
        self.assertEqual([runs[first]["reason"], runs[second]["reason"]], ["success", "success"])
        start, end = self.spans()
        self.assertGreaterEqual(start[second], end[first])

    def test_capacity_and_round_robin(self):
        d = self.serve(capacity=4)
        a = self.recipe("alpha", sleep=0.3)
        b = self.recipe("beta", sleep=0.3)
        ids_a = [self.submit(d, a, pr=n) for n in range(1, 21)]
        ids_b = [self.submit(d, b) for _ in range(3)]
        runs = self.wait_finished(d, ids_a + ids_b)
        self.assertTrue(all(runs[i]["reason"] == "success" for i in ids_a + ids_b))
        start, end = self.spans()
        # Never more than 4 at once.
        points = sorted([(t, 1) for t in start.values()] + [(t, -1) for t in end.values()])
        level = peak = 0
        for _, delta in points:
            level += delta
            peak = max(peak, level)
        self.assertLessEqual(peak, 4)
        self.assertEqual(len(start), 23)
        # beta was not starved behind alpha's queue: round-robin gave it
        # every other slot, so all of it started before alpha's last five.
        last_a = sorted(start[i] for i in ids_a)[-5]
        self.assertTrue(all(start[i] < last_a for i in ids_b), (sorted(start[i] for i in ids_b), last_a))

    def test_second_run_of_a_domain_leaves_the_first_alone(self):
        d = self.serve()
        first = self.submit(d, self.recipe("seed", sleep=1.0, deploys=1), pr=9)
        wait_for(lambda: any(e[0] == "start" for e in self.read_events()), what="the first run")
        second = self.submit(d, self.recipe("seed", deploys=1), pr=9)
        runs = self.wait_finished(d, [first, second])
        self.assertEqual(runs[first]["reason"], "success")
        self.assertEqual(runs[second]["reason"], "success")
        self.assertNotIn("clobbered", [e[0] for e in self.read_events()])
        with open(os.path.join(self.show(d, first)["dir"], "state", "deploys")) as f:
            self.assertEqual(f.read(), "1\n")
        with open(os.path.join(self.show(d, first)["dir"], "state", "opstate")) as f:
            self.assertEqual(f.read(), "torn-down\n")

    def test_deploy_budget(self):
        d = self.serve()
        cases = [
            (dict(deploys=1), "success"),
            (dict(deploys=3, deps="db cold\nredis cold\nmail warm\n"), "success"),
            (dict(deploys=2), "deploy-budget"),
            (dict(deploys=2, deps="db warm\n"), "deploy-budget"),
            (dict(deploys="many"), "deploy-budget"),
            (dict(), "success"),
            (dict(deploys=2, exit=1), "deploy-budget"),
        ]
        ids = [self.submit(d, self.recipe("budget%d" % i, **b)) for i, (b, _) in enumerate(cases)]
        runs = self.wait_finished(d, ids)
        self.assertEqual([runs[i]["reason"] for i in ids], [want for _, want in cases])
        self.assertEqual(run_cli("-s", d.socket, "show", ids[2]).returncode, 1)

    def test_superseded_while_pending(self):
        d = self.serve(capacity=1)
        blocker = self.submit(d, self.recipe("blocker", sleep=1.0))
        rec = self.recipe("pending")
        p1 = self.submit(d, rec, pr=3)
        p2 = self.submit(d, rec, pr=3)
        p3 = self.submit(d, rec, pr=3)
        other = self.submit(d, rec, pr=4)
        runs = self.wait_finished(d, [blocker, p1, p2, p3, other])
        self.assertEqual([runs[i]["reason"] for i in (p1, p2, p3, other)], ["superseded", "superseded", "success", "success"])
        self.assertEqual(runs[p1]["trigger"]["superseded_by"], p2)
        started = {r for w, r, _, _ in self.read_events() if w == "start"}
        self.assertEqual(started, {blocker, p3, other})

    def test_kill_daemon_then_restart_tears_down_orphans_once(self):
        d = self.serve(capacity=2)
        rec = self.recipe("long", sleep=60)
        running = [self.submit(d, rec) for _ in range(2)]
        quick = self.recipe("quick", sleep=0.1)
        queued = [self.submit(d, quick) for _ in range(2)]
        wait_for(lambda: len([e for e in self.read_events() if e[0] == "start"]) == 2, what="two runs started")
        self.assertEqual({self.show(d, q)["state"] for q in queued}, {"queued"})
        # A line on disk survives the kill (lines still in memory may not).
        for i in running:
            log = os.path.join(self.show(d, i)["dir"], "logs", "0-init.jsonl")
            wait_for(lambda: os.path.exists(log) and b"deploying" in open(log, "rb").read(),
                     what="the first line on disk")
        d.kill()
        # The supervisors see the daemon go (PDEATHSIG): the harnesses get
        # SIGTERM and end; their locks are released when all is gone.
        wait_for(lambda: len([e for e in self.read_events() if e[0] == "end"]) == 2, what="harnesses ended")
        d2 = self.daemon(config_path=d.config_path)
        d2.start()
        runs = self.wait_finished(d2, running + queued)
        self.assertEqual([runs[i]["reason"] for i in running], ["orphaned", "orphaned"])
        self.assertEqual([runs[i]["teardown"] for i in running], ["clean", "clean"])
        self.assertEqual([runs[i]["reason"] for i in queued], ["success", "success"])
        ev = self.read_events()
        teardowns = sorted(r for w, r, _, _ in ev if w == "teardown")
        self.assertEqual(teardowns, sorted(running))
        starts = sorted(r for w, r, _, _ in ev if w == "start")
        self.assertEqual(starts, sorted(running + queued))
        # The orphan's log goes on after the dead daemon's steps.
        steps = [s["name"] for s in self.show(d2, running[0])["steps"]]
        self.assertEqual(steps[0], "init")
        self.assertEqual(steps[-2:], ["janitor", "teardown"])
        r = run_cli("-s", d2.socket, "tail", running[0])
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("deploying", r.stdout)
        self.assertIn("orphaned", r.stdout)
        # Their lock files were removed by the janitor while it held them.
        left = os.listdir(os.path.join(d2.state_dir, "locks"))
        for i in running:
            self.assertNotIn(runs[i]["domain"] + ".lock", left)

    def test_surviving_supervisor_keeps_its_lock(self):
        d = self.serve()
        rec = self.recipe("survivor", sleep=60, term_sleep=1.5)
        old = self.submit(d, rec, pr=1)
        wait_for(lambda: any(e[0] == "start" for e in self.read_events()), what="the run")
        d.kill()
        wait_for(lambda: any(e[0] == "term" for e in self.read_events()), what="the harness's SIGTERM")
        d2 = self.daemon(config_path=d.config_path)
        d2.start()
        # Its supervisor still holds the lock: detached, left alone.
        r = run_cli("-s", d2.socket, "janitor", "--dry-run", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn({"kind": "run", "id": old, "domain": self.show(d2, old)["domain"], "verdict": "detached"},
                      json.loads(r.stdout))
        ps = {x["id"]: x for x in request(d2.socket, {"v": 1, "op": "ps"})["runs"]}
        self.assertIn("detached", ps[old].get("note", ""))
        new = self.submit(d2, self.recipe("survivor", sleep=0.1), pr=1)
        wait_for(lambda: self.show(d2, new)["state"] == "waiting-lock", what="the new run to wait")
        runs = self.wait_finished(d2, [old, new])
        self.assertEqual(runs[old]["reason"], "orphaned")
        self.assertEqual(runs[new]["reason"], "success")
        ev = self.read_events()
        t = {(w, r): tt for w, r, _, tt in ev}
        self.assertLess(t[("end", old)], t[("teardown", old)])
        self.assertLess(t[("teardown", old)], t[("start", new)])

    def test_replaced_lock_file_never_gives_two_holders(self):
        d = self.serve()
        rec = self.recipe("locked", sleep=1.0)
        domain = "locked-pr2.ci.local"
        locks = os.path.join(d.state_dir, "locks")
        os.makedirs(locks, exist_ok=True)
        path = os.path.join(locks, domain + ".lock")
        held = open(path, "w")
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        run_id = self.submit(d, rec, pr=2)
        time.sleep(1.0)
        self.assertEqual(self.show(d, run_id)["state"], "waiting-lock")
        self.assertEqual(self.read_events(), [])
        # The holder replaces the file while still holding the old one (as
        # a janitor unlinks before letting go): the run may take the new
        # file, and then nobody else can.
        tmp = path + ".new"
        open(tmp, "w").close()
        os.rename(tmp, path)
        wait_for(lambda: self.show(d, run_id)["state"] == "running", what="the run to take the new lock")
        other = open(path, "r")
        with self.assertRaises(BlockingIOError):
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.close()
        runs = self.wait_finished(d, [run_id])
        self.assertEqual(runs[run_id]["reason"], "success")
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        other.close()

    def test_stray_lock_files(self):
        d = self.serve()
        locks = os.path.join(d.state_dir, "locks")
        os.makedirs(locks, exist_ok=True)
        free = os.path.join(locks, "gone-pr1.ci.local.lock")
        busy = os.path.join(locks, "busy-pr1.ci.local.lock")
        open(free, "w").close()
        holder = open(busy, "w")
        fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
        r = run_cli("-s", d.socket, "janitor", "--dry-run", "--json")
        self.assertEqual(
            sorted((x["domain"], x["verdict"]) for x in json.loads(r.stdout)),
            [("busy-pr1.ci.local", "leave"), ("gone-pr1.ci.local", "unlink")],
        )
        self.assertTrue(os.path.exists(free))
        r = run_cli("-s", d.socket, "janitor")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("unlink", r.stdout)
        self.assertFalse(os.path.exists(free))
        self.assertTrue(os.path.exists(busy))
        holder.close()

    def test_retention_never_touches_unfinished_runs(self):
        d = self.daemon(config="min_free_bytes: 1000TiB\nretention:\n  max_age: 30d\n")
        runs_dir = os.path.join(d.state_dir, "runs")
        day = 86400
        now = int(time.time())

        def fake(run_id, state, finished_days_ago):
            rd = os.path.join(runs_dir, run_id)
            os.makedirs(os.path.join(rd, "logs"))
            with open(os.path.join(rd, "logs", "0-init.jsonl"), "w") as f:
                f.write('{"pos":0,"out":"hi\\n","time":0}\n')
            fin = now - finished_days_ago * day
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(fin))
            meta = {
                "version": 1, "id": run_id, "number": 1, "repo": "local/x", "recipe": "x",
                "ref": None, "sha": None, "pr": None, "domain": "x-l1.ci.local", "quick": False,
                "state": state, "reason": "success" if state == "finished" else None,
                "trigger": {"kind": "local"}, "submitted_by_uid": 0, "daemon_instance": None,
                "created_at": stamp, "started_at": None,
                "finished_at": stamp if state == "finished" else None,
                "exit_code": 0 if state == "finished" else None, "signal": None,
                "teardown": "none", "attempt": 1,
            }
            with open(os.path.join(rd, "meta.json"), "w") as f:
                json.dump(meta, f)
            return rd

        ancient = fake("20200101-000000-000", "finished", 100)
        old = fake("20200201-000000-000", "finished", 40)
        waiting = fake("20200301-000000-000", "queued", 100)
        fresh = fake("20200401-000000-000", "finished", 1)
        d.start()
        wait_for(lambda: not os.path.exists(ancient), what="the ancient run removed")
        wait_for(lambda: os.path.exists(os.path.join(old, "logs.pruned")), what="old logs pruned")
        # The marker is written first, then the logs go.
        wait_for(lambda: not os.path.exists(os.path.join(old, "logs")), what="old logs removed")
        self.assertFalse(os.path.exists(os.path.join(old, "logs")))
        self.assertTrue(os.path.exists(os.path.join(old, "meta.json")))
        self.assertTrue(os.path.exists(os.path.join(waiting, "logs", "0-init.jsonl")))
        self.assertTrue(os.path.exists(os.path.join(fresh, "logs", "0-init.jsonl")))
        self.assertEqual(run_cli("-s", d.socket, "show", "20200101-000000-000").returncode, 3)
        self.assertEqual(self.show(d, "20200301-000000-000")["state"], "queued")
