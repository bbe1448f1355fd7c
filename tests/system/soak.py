#!/usr/bin/env python3
"""System acceptance (issue 18, docs/testing.md "System acceptance"): a busy
organisation's day, compressed, with faults, and nothing lost.

    soak.py --bin CCCI [--minutes N] [--seed S] [--root DIR] [--json OUT]
            [--break skip-teardown] [--keep]

Builds the world (world.py): the real daemon and harness, the fake forge
with 50 recipe repos, the fake abra with three servers. For N minutes
members and outsiders comment as a Poisson stream (webhooks duplicated with
polling), PRs get new commits, and the faults of the schedule below happen.
Then triggering stops, every run is waited for, a janitor sweep runs, the
daemon stops, and the invariants (checks.py) are printed as a table and as
JSON. Exit 0 when every invariant holds, 1 when one does not, 2 when the
scenario itself could not run. The seed is printed first: the same seed
gives the same schedule (the processes' timing still varies)."""

import argparse
import calendar
import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import checks  # noqa: E402
import clients  # noqa: E402
import world as worldmod  # noqa: E402

# Faults in each cycle, at these fractions of it (plus jitter from the seed).
CYCLE_S = 600
# How long the end waits for every run to finish and every forge write to
# be sent. With --break skip-teardown every run holds its slot through the
# daemon's teardown retries (about 150 s): the leftovers are certain by
# then, so the end waits less and the checks name them.
IDLE_WAIT_S = 900
IDLE_WAIT_BROKEN_S = 300
# The recipes whose runs print the secrets in bulk: browsed once finished.
BULK_RECIPES = ("flood", "stubborn")


def schedule(rng, seconds):
    """[(t, action, args)] for a scenario of @p seconds, sorted by t."""
    ev = []
    # Comments: Poisson at `rate` per second, hot repos more often.
    rate = float(os.environ.get("CCCI_SYS_RATE", "0.25"))
    t = rng.expovariate(rate)
    while t < seconds:
        ev.append((t, "comment", {}))
        t += rng.expovariate(rate)
    cycles = max(1, int(round(seconds / CYCLE_S)))
    span = seconds / cycles

    def at(cycle, frac, action, **kw):
        j = rng.uniform(-0.03, 0.03)
        ev.append((span * (cycle + max(0.02, min(0.97, frac + j))), action, kw))

    for c in range(cycles):
        at(c, 0.10, "flood")
        at(c, 0.18, "forge_500")
        at(c, 0.22, "stubborn", cancel=False)
        at(c, 0.28, "forge_429")
        at(c, 0.33, "rotate")
        at(c, 0.40, "drain", server="a")
        at(c, 0.45, "forge_outage", seconds=12)
        at(c, 0.50, "stubborn", cancel=True)
        at(c, 0.55, "server_fail", server="c", seconds=25)
        at(c, 0.62, "retire")
        at(c, 0.66, "disk_full", seconds=20)
        at(c, 0.72, "undrain", server="a")
        for _ in range(2):
            at(c, rng.uniform(0.15, 0.88), "kill9")
    ev.sort(key=lambda e: e[0])
    return ev


class Scenario:
    def __init__(self, w, seconds):
        self.w = w
        self.seconds = seconds
        self.rng = random.Random(w.seed + 1)
        self.clients = clients.Clients(w)
        w.clients = self.clients  # World.close stops them, whatever happened
        w.seconds = seconds  # the scenario's length, for the checks
        self.followed = set()  # every run the watcher saw running
        self.watched = set()  # those a client followed or that were browsed
        self.lock = threading.Lock()
        self.timers = []
        self.problems = []
        self.pending_retire = False
        self.base_faults = [
            # Random failures of any command, now and then.
            {"match": "app", "action": "fail", "probability": 0.01,
             "message": "injected random failure"},
            {"match": "docker", "action": "fail", "probability": 0.005,
             "message": "injected random failure"},
        ]
        if "skip-teardown" in w.broken:
            # abra claims every undeploy worked and does nothing: the
            # harness's own checks and the invariants must both notice.
            self.base_faults.insert(0, {"match": "app undeploy", "action": "skip"})
        self.extra_faults = []
        self.write_faults()

    # ------------------------------------------------------------ helpers

    def write_faults(self):
        path = os.path.join(self.w.swarm_dir, "faults.json")
        with open(path + ".tmp", "w") as f:
            json.dump(self.base_faults + self.extra_faults, f)
        os.rename(path + ".tmp", path)

    def later(self, delay, fn, *args):
        t = threading.Timer(delay, self.guard, (fn,) + args)
        t.daemon = True
        t.start()
        self.timers.append(t)

    def guard(self, fn, *args, **kw):
        try:
            fn(*args, **kw)
        except Exception:  # noqa: BLE001 - reported as a scenario problem
            self.problems.append(traceback.format_exc())
            print("scenario: %s failed:\n%s" % (fn.__name__, traceback.format_exc()),
                  file=sys.stderr, flush=True)

    def cli(self, *args):
        return subprocess.run([self.w.ccci, "-s", self.w.socket] + list(args),
                              capture_output=True, text=True, timeout=60)

    def fault(self, what, **kw):
        self.w.event("fault", what=what, **kw)
        print("%7.1fs fault: %s %s" % (time.monotonic() - self.t0, what,
                                       " ".join("%s=%s" % i for i in kw.items())), flush=True)

    # ------------------------------------------------------------ triggers

    def do_comment(self, repo=None, body=None, user=None):
        w = self.w
        rng = self.rng
        if repo is None:
            # A few hot repos take half the comments.
            repo = rng.choice(w.repos[:5]) if rng.random() < 0.5 else rng.choice(
                [r for r in w.repos if r.split("/")[1].startswith("r")])
        prs = w.prs[repo]
        if rng.random() < 0.15 or not prs:
            n = w.open_pr(repo)
        else:
            n = rng.choice(sorted(prs))
            if rng.random() < 0.12:
                w.push(repo, n)
        if user is None:
            x = rng.random()
            user = rng.choice(worldmod.OUTSIDERS) if x < 0.1 else rng.choice(worldmod.MEMBERS)
        if body is None:
            x = rng.random()
            body = ("lgtm, thanks" if x < 0.05 else
                    "!testme --quick" if x < 0.55 else "!testme")
        hooks = 0
        x = rng.random()
        if x < 0.7:
            hooks = 2 if x < 0.15 else 1
        c = w.comment(repo, n, user, body, hooks)
        for i in range(hooks):
            self.later(rng.uniform(0, 1.5) + i * 0.3, self.hook, repo, n, c)
        return c

    def hook(self, repo, n, c):
        self.w.post_hook(repo, n, c)

    # ------------------------------------------------------------ faults

    def do_flood(self):
        self.fault("flood", bytes=self.w.flood_bytes)
        self.do_comment(repo="%s/flood" % self.w.org, body="!testme", user="m1")

    def do_stubborn(self, cancel):
        self.fault("stubborn", cancel=cancel)
        c = self.do_comment(repo="%s/stubborn" % self.w.org, body="!testme", user="m2")
        if cancel:
            self.later(0.5, self.cancel_when_running, c["id"], time.monotonic() + 120)

    def cancel_when_running(self, cid, deadline):
        """Cancel the stubborn run once its step is running (its log shows
        the step ignoring SIGTERM)."""
        suffix = "-c%d" % cid
        while time.monotonic() < deadline:
            try:
                runs = [r for r in self.w.ps() if r["id"].endswith(suffix)]
            except (OSError, ValueError, TypeError):
                runs = []
            if runs and runs[0]["state"] == "finished":
                return
            if runs and runs[0]["state"] == "running" and self.log_has(
                    runs[0]["id"], "stubborn: ignoring SIGTERM"):
                r = self.cli("cancel", runs[0]["id"])
                self.fault("cancel", run=runs[0]["id"], rc=r.returncode)
                return
            time.sleep(0.5)

    def log_has(self, rid, needle):
        logs = os.path.join(self.w.state_dir, "runs", rid, "logs")
        try:
            for name in os.listdir(logs):
                if name.endswith(".jsonl"):
                    with open(os.path.join(logs, name), "rb") as f:
                        if needle.encode() in f.read():
                            return True
        except OSError:
            pass
        return False

    def do_forge_500(self):
        self.fault("forge-500")
        f = self.w.forge
        f.fault(r"/issues/comments$", "status", count=3, method="GET", status=500)
        f.fault(r"/pulls/\d+$", "status", count=2, status=502)
        f.fault(r"/statuses/", "status", count=2, method="POST", status=500)

    def do_forge_429(self):
        self.fault("forge-429")
        f = self.w.forge
        f.fault(r"/issues/comments$", "429", count=4, retry_after=2)
        f.fault(r"/raw/", "429", count=2, retry_after=1)

    def do_forge_outage(self, seconds):
        """Every API request is reset, /raw/ (recipe_meta.yml) included;
        git smart HTTP (/<owner>/<repo>.git/...) keeps working, so runs
        that are checking out are not hit by it."""
        self.fault("forge-outage-begin", seconds=seconds, paths="^/api/")
        f = self.w.forge
        f.fault(r"^/api/", "reset", count=None)
        self.later(seconds, self.end_outage)

    def end_outage(self):
        self.w.forge.clear_faults()
        self.fault("forge-outage-end")

    def do_rotate(self):
        """A new secret value; the recipes print it only once the daemon
        masks exactly the values in force (its `secrets_values` equals
        their number; rotation and retirement hold world.secrets_lock, so
        that count cannot be an older set's)."""
        w = self.w
        with w.secrets_lock:
            value = w.rotate_secret()
            w.sighup("secret rotated")
            w.wait_masked("the new secret to be masked")
            w.publish_leak(w.leak_values())
            self.fault("rotate", values=len(w.secret_values))
        self.rotated_at = time.time()
        return value

    def do_retire(self):
        """The old value leaves once no run that may print it is alive: the
        leak file shows only the new one from now on, and runs that started
        before the rotation have ended."""
        w = self.w
        with w.secrets_lock:
            if len(w.secret_values) - w.retiring < 2:
                return
            w.retiring += 1
            w.publish_leak(w.leak_values())
        published = time.time()

        def old_runs_gone():
            for r in w.ps():
                if r["state"] in ("running", "cancelling"):
                    started = r.get("started_at") or ""
                    if not started or self.epoch(started) <= published + 1:
                        return False
            return True
        self.later(1, self.retire_when, old_runs_gone, time.monotonic() + 600)

    @staticmethod
    def epoch(text):
        return calendar.timegm(time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S"))

    def retire_when(self, pred, deadline):
        while time.monotonic() < deadline:
            try:
                if pred():
                    break
            except (OSError, ValueError, TypeError, KeyError):
                pass
            time.sleep(1)
        w = self.w
        with w.secrets_lock:
            w.retire_secret()
            w.sighup("old secret retired")
            w.wait_masked("the old secret to be retired")
            self.fault("retire", values=len(w.secret_values))

    def do_drain(self, server):
        r = self.cli("server", "drain", server)
        self.fault("drain", server=server, rc=r.returncode)

    def do_undrain(self, server):
        r = self.cli("server", "undrain", server)
        self.fault("undrain", server=server, rc=r.returncode)

    def do_server_fail(self, server, seconds):
        self.fault("server-fail-begin", server=server, seconds=seconds)
        cmds = ("app secret", "app deploy", "app undeploy", "app volume", "app backup",
                "app restore", "app run", "docker")
        self.extra_faults = [{"match": m, "server": server, "action": "unreachable"}
                             for m in cmds]
        self.write_faults()
        self.later(seconds, self.end_server_fail, server)

    def end_server_fail(self, server):
        self.extra_faults = []
        self.write_faults()
        self.fault("server-fail-end", server=server)

    def do_disk_full(self, seconds):
        w = self.w
        if w.mounted:
            st = os.statvfs(w.state_dir)
            free = st.f_bavail * st.f_frsize
            size = max(0, free - w.min_free // 2)
            ballast = os.path.join(w.state_dir, "ballast")
            with open(ballast, "wb") as f:
                f.truncate(0)
                chunk = b"\0" * (1 << 20)
                left = size
                while left > 0:
                    f.write(chunk[:min(left, len(chunk))])
                    left -= len(chunk)
            self.fault("disk-full-begin", ballast=size, mode="tmpfs")
            self.watch_disk_full(seconds)
            self.later(seconds, self.end_disk_full, ballast)
        else:
            st = os.statvfs(w.state_dir)
            free = st.f_bavail * st.f_frsize
            w.write_config(min_free=free + (1 << 30))
            w.sighup("disk nearly full")
            self.fault("disk-full-begin", min_free=free + (1 << 30), mode="min_free_bytes")
            self.watch_disk_full(seconds)
            self.later(seconds, self.end_disk_full, None)

    def watch_disk_full(self, seconds):
        """While the disk is full, look at the daemon's status every second:
        the first time its problems name min_free_bytes, a `disk-full-seen`
        event records them with the count of runs by state. The daemon
        looks at the free space only when it could admit a run (a slot
        free, runs.c admit), so a trigger is made now to have one waiting;
        without a sighting, `disk-full-not-seen` says how many looks had a
        run waiting while a slot was free (`chances`)."""
        self.disk_full_on = True
        self.guard(self.do_comment, body="!testme --quick", user="m3")
        self.later(0, self.look_disk_full, time.monotonic() + seconds)

    def look_disk_full(self, deadline):
        w = self.w
        looks = chances = 0
        while self.disk_full_on and time.monotonic() < deadline:
            looks += 1
            st = w.try_status()
            probs = [p for p in (st or {}).get("problems") or []
                     if "min_free_bytes" in json.dumps(p)]
            if probs:
                w.event("disk-full-seen", problems=probs, pid=st.get("pid"),
                        runs_by_state=st["counters"].get("runs_by_state", {}))
                return
            if st:
                by = st["counters"].get("runs_by_state", {})
                free = sum(max(0, s.get("capacity", 0) - s.get("running", 0))
                           for s in st.get("servers") or []
                           if s.get("healthy") and not s.get("drained") and not s.get("removed"))
                if by.get("queued", 0) > 0 and free > 0:
                    chances += 1
            time.sleep(1)
        w.event("disk-full-not-seen", looks=looks, chances=chances)

    def end_disk_full(self, ballast):
        self.disk_full_on = False
        if ballast:
            os.unlink(ballast)
        else:
            self.w.write_config()
            self.w.sighup("disk free again")
        self.fault("disk-full-end")

    def do_kill9(self):
        self.w.kill9(restart=True)
        self.fault("kill9")

    # ------------------------------------------------------------ watching

    def watch(self):
        """Follow new runs with clients, browse some pages."""
        while not self.stop_watch.wait(1.0):
            try:
                runs = self.w.ps()
            except (OSError, ValueError, TypeError):
                continue
            for r in runs:
                if r["state"] == "running" and r["id"] not in self.followed:
                    self.followed.add(r["id"])
                    if r.get("recipe") == "flood":
                        # A stall the server must give up (its queue full
                        # for 20 s), then a resume with Last-Event-ID.
                        self.watched.add(r["id"])
                        self.guard(self.follow_stalled, r["id"])
                    elif r.get("recipe") == "stubborn":
                        # Lives about 45 s: a 25 s stall fits, and the
                        # client resumes with Last-Event-ID.
                        self.watched.add(r["id"])
                        self.guard(self.clients.follow, r["id"], "sse-stall")
                    if self.rng.random() < 0.5:
                        self.watched.add(r["id"])
                        self.guard(self.clients.follow, r["id"])
                    if self.rng.random() < 0.3:
                        self.watched.add(r["id"])
                        self.guard(self.clients.browse, r["id"])
            if self.rng.random() < 0.2:
                self.guard(self.clients.sock, {"v": 1, "op": "status"})

    def follow_stalled(self, rid):
        """An sse-stall client that stalls at the run's first flood line
        (clients.follow's stall_on; a plain sse-stall client with a
        clients.py that has none)."""
        try:
            self.clients.follow(rid, "sse-stall", stall_on="flood ")
        except TypeError:
            self.clients.follow(rid, "sse-stall")

    # ------------------------------------------------------------ the run

    def run(self):
        w = self.w
        rng = random.Random(w.seed)
        plan = schedule(rng, self.seconds)
        print("schedule: %d comments, %d faults over %ds" % (
            sum(1 for e in plan if e[1] == "comment"),
            sum(1 for e in plan if e[1] != "comment"), self.seconds), flush=True)
        self.stop_watch = threading.Event()
        watcher = threading.Thread(target=self.watch, daemon=True)
        watcher.start()
        self.t0 = time.monotonic()
        for t, action, kw in plan:
            delay = self.t0 + t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self.guard(getattr(self, "do_" + action), **kw)
        print("%7.1fs triggers stop" % (time.monotonic() - self.t0), flush=True)
        self.finish()
        self.stop_watch.set()
        watcher.join(10)

    def finish(self):
        """Every run finished, every forge write sent, the janitor swept."""
        w = self.w
        for t in self.timers:
            t.join(700)
        w.forge.clear_faults()
        self.extra_faults = []
        self.write_faults()

        def idle():
            st = w.status()
            by = st["counters"].get("runs_by_state", {})
            busy = sum(v for k, v in by.items() if k != "finished")
            fresh = [e for e in w.ps() if e["state"] != "finished"]
            return busy == 0 and not fresh and st["counters"].get("outbox_backlog", 0) == 0
        # Comments posted just before the stop are polled within a second
        # or two; wait for them to become runs first.
        time.sleep(5)
        wait_s = IDLE_WAIT_BROKEN_S if w.broken else IDLE_WAIT_S
        try:
            w.wait(idle, wait_s, "every run to finish and every forge write to be sent")
        except RuntimeError:
            # Deployments left behind are an invariant broken (no-deployment
            # names them: exit 1), not a scenario that could not run.
            left = checks.check_no_deployment(w)
            if left["ok"]:
                raise
            try:
                busy = [(e["id"], e["state"]) for e in w.ps() if e["state"] != "finished"]
            except (OSError, ValueError, TypeError):
                busy = None
            w.event("not-idle", seconds=wait_s, left=left["detail"][:50],
                    busy=busy[:50] if busy is not None else None)
            print("%7.1fs not idle after %ds, %s: on to the checks" % (
                time.monotonic() - self.t0, wait_s, left["value"]), flush=True)
        r = self.cli("janitor")
        w.event("janitor", rc=r.returncode, out=r.stdout[-2000:])
        time.sleep(6)
        self.clients.stop_all(60)
        self.browse_finished()

    def browse_finished(self):
        """Browse again, once it has finished, every run a client followed
        or that was browsed, and every run of the flood and stubborn
        recipes: the probe prints the secrets at the end, so only now are
        they in what the pages serve. The answers go to
        records/transcripts/http-final-<run>.txt, where no-secret scans."""
        w = self.w
        rids = set(self.watched)
        try:
            runs = w.ps()
        except (OSError, ValueError, TypeError):
            runs = []
        for r in runs:
            if r.get("recipe") in BULK_RECIPES:
                rids.add(r["id"])
        statuses = {}
        for rid in sorted(rids):
            for _, st in self.clients.browse(rid, final=True):
                statuses[str(st)] = statuses.get(str(st), 0) + 1
        w.event("browse-final", runs=len(rids), answers=statuses)
        print("%7.1fs browsed %d finished runs: %s" % (
            time.monotonic() - self.t0, len(rids),
            " ".join("%s=%d" % kv for kv in sorted(statuses.items()))), flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default=os.environ.get("CCCI_BIN") or shutil.which("ccci"))
    ap.add_argument("--minutes", type=float, default=3)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--root", default=None)
    ap.add_argument("--json", default=None)
    ap.add_argument("--break", dest="broken", action="append", default=[],
                    choices=["skip-teardown"])
    ap.add_argument("--repos", type=int, default=50)
    ap.add_argument("--flood-bytes", type=int, default=1 << 30)
    ap.add_argument("--keep", action="store_true", help="keep the root directory")
    a = ap.parse_args(argv)
    seed = a.seed if a.seed is not None else int.from_bytes(os.urandom(4), "big")
    if os.environ.get("CCCI_SYS_SEED"):
        seed = int(os.environ["CCCI_SYS_SEED"])
    print("seed %d (replay: --seed %d --minutes %g)" % (seed, seed, a.minutes), flush=True)
    root = a.root or os.path.join("/tmp", "ccci-sys-%d" % seed)
    w = worldmod.World(root, a.bin, seed, a.minutes, a.broken, repos=a.repos,
                       flood_bytes=a.flood_bytes)
    t_start = time.time()
    ok = False
    try:
        w.setup()
        w.start_daemon()
        w.wait_enrolled()
        s = Scenario(w, int(a.minutes * 60))
        s.run()
        w.stop_daemon()
        results = checks.check_all(w)
        if s.problems:
            results.append({"name": "scenario", "ok": False,
                            "value": "%d driver errors" % len(s.problems),
                            "detail": [p.strip().splitlines()[-1] for p in s.problems][:20]})
        checks.print_table(results)
        extra = {"seed": seed, "minutes": a.minutes, "broken": sorted(w.broken),
                 "wall_s": round(time.time() - t_start, 1), "mounted_state": w.mounted}
        text = checks.to_json(results, extra)
        with open(os.path.join(w.records, "results.json"), "w") as f:
            f.write(text)
        if a.json:
            with open(a.json, "w") as f:
                f.write(text)
        ok = all(r["ok"] for r in results)
        print("system acceptance: %s (seed %d, root %s)" % ("PASS" if ok else "FAIL", seed,
                                                            w.root), flush=True)
        return 0 if ok else 1
    except Exception:  # noqa: BLE001
        traceback.print_exc()
        print("system acceptance: the scenario could not run (seed %d, root %s)" % (
            seed, w.root), flush=True)
        return 2
    finally:
        w.close()
        if ok and not a.keep:
            w.unmount_state()
            shutil.rmtree(w.root, ignore_errors=True)
        elif w.mounted:
            print("the state dir stays mounted at %s (umount it when done)" % w.state_dir)


if __name__ == "__main__":
    sys.exit(main())
