"""The server pool (issue 17, SPEC section 12) on the real daemon, the real
`ccci harness` and the fake abra/docker holding several server contexts
($ABRA_DIR/servers/<name>/, one fake swarm and one gateway per server):
runs spread by capacity, label and name matching, drain, an unhealthy server
and its recovery, kill -9 of the daemon with runs on two servers, SIGHUP
adding, resizing and removing servers.

Every run is a `--quick` local submit of a copy of the pages example whose
`tests/install_steps.sh` is a gate: once the app is deployed on its server it
records where it is and waits until the test lets it go, so the tests see
what runs at once without ever relying on timing. harness.command wraps the
real harness in a script that records the run's environment and the moments
its slot is held (start/end lines), from which the tests check that no server
ever ran more runs than its capacity."""

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

from itest import CCCI, SOURCE_DIR, WAIT, CcciTestCase, request, run_cli, wait_for
from test_runs import procs_with

SUPPORT = os.path.join(SOURCE_DIR, "tests", "support")
EXAMPLE = os.path.join(SOURCE_DIR, "examples", "recipes", "pages")
# Bound on one quick run of the example against the fakes (a few seconds
# normally; sanitizer builds are slower). Never part of an assertion about
# speed: a run that hangs fails the test instead of blocking it.
RUN_WAIT = 120

# harness.command (and teardown_command): `sh WRAPPER ROLE CMD...` runs CMD
# (the real `ccci harness`), keeps the environment the daemon gave it and
# the run's meta.json as it is on disk when the daemon starts it, and
# appends `<role>-start|<role>-end <run> <CCCI_SERVER> <ns>` to events. It
# stays until its child is gone whatever signal the group gets, so its
# start/end span is inside the run's slot.
WRAPPER = r"""#!/bin/sh
trap : TERM INT HUP
role=$1
shift
d=$POOL_DIR
env | grep -E '^(CCCI_[A-Z_]*|ABRA_DIR)=' | sort > "$d/$CCCI_RUN_ID.$role.env"
cp "$(dirname "$CCCI_RESULTS_FILE")/meta.json" "$d/$CCCI_RUN_ID.$role.meta.json"
echo "$role-start $CCCI_RUN_ID $CCCI_SERVER $(date +%s%N)" >> "$d/events"
"$@" &
pid=$!
while :; do
  wait $pid
  rc=$?
  kill -0 $pid 2>/dev/null || break
done
echo "$role-end $CCCI_RUN_ID $CCCI_SERVER $(date +%s%N)" >> "$d/events"
exit $rc
"""

# The recipe's install_steps.sh, run on the deployed app: the gate.
GATE = r"""#!/bin/sh
d=$POOL_DIR
{
  echo "CCCI_SERVER=$CCCI_SERVER"
  echo "CCCI_APP_DOMAIN=$CCCI_APP_DOMAIN"
} > "$d/$CCCI_RUN_ID.hook.tmp"
mv "$d/$CCCI_RUN_ID.hook.tmp" "$d/$CCCI_RUN_ID.hook"
while [ ! -e "$d/$CCCI_RUN_ID.go" ] && [ ! -e "$d/all.go" ]; do
  sleep 0.05
done
"""

# Every command of an abra or docker that needs the server (not `app new`
# --offline or `app remove`, which only touch local files), for a rule that
# makes a server unreachable.
SERVER_COMMANDS = ("app secret", "app deploy", "app undeploy", "app volume", "app backup",
                   "app restore", "app run", "docker")


def read_env_file(path):
    with open(path) as f:
        return dict(line.rstrip("\n").split("=", 1) for line in f if "=" in line)


def placement(meta):
    """meta.json's placement without its empty lists."""
    return {k: v for k, v in meta.get("placement", {}).items() if v}


def stack_of(domain):
    return domain.replace(".", "_")[:45]


class PoolCase(CcciTestCase):
    """Servers with their abra contexts and gateways, recipes with the gate,
    a daemon whose config the test writes and rewrites."""

    NAMES = ("alpha", "bravo", "charlie", "delta")

    def setUp(self):
        super().setUp()
        self.swarm = os.path.join(self.tmp, "swarm")
        self.real = os.path.join(self.tmp, "real")
        self.overlays = os.path.join(self.tmp, "overlays")
        self.pool = os.path.join(self.tmp, "pool")
        for d in (self.swarm, self.overlays, self.pool, os.path.join(self.real, "recipes")):
            os.makedirs(d)
        for name in self.NAMES:
            os.makedirs(os.path.join(self.real, "servers", name))
        self.wrapper = os.path.join(self.tmp, "wrap.sh")
        with open(self.wrapper, "w") as f:
            f.write(WRAPPER)
        self.marker = "POOL_TEST_MARK_%d_%d" % (os.getpid(), id(self))
        self.gws = {}
        self.gw_logs = []
        self.recipes = {}
        self.d = None

    def tearDown(self):
        for d in self.daemons:
            d.kill()
        for pid in procs_with(self.marker):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        for proc, _, _ in self.gws.values():
            proc.terminate()
            proc.wait(WAIT)
        for f in self.gw_logs:
            f.close()
        super().tearDown()

    # ------------------------------------------------------------ fixtures

    def gateway(self, name):
        """The gateway of server @p name ("default": harness.gateway's), as
        http://127.0.0.1:PORT; its request log is gw-<name>.log."""
        if name not in self.gws:
            port_file = os.path.join(self.tmp, "gw-%s.port" % name)
            log = os.path.join(self.tmp, "gw-%s.log" % name)
            out = open(os.path.join(self.tmp, "gw-%s.out" % name), "wb")
            self.gw_logs.append(out)
            proc = subprocess.Popen(
                [sys.executable, os.path.join(SUPPORT, "gateway.py"), "--swarm", self.swarm,
                 "--port-file", port_file, "--log", log], stdout=out, stderr=out)

            def port():
                if not os.path.exists(port_file):
                    return None
                with open(port_file) as f:
                    return f.read().strip()
            wait_for(port, what="the gateway of %s" % name)
            self.gws[name] = (proc, "http://127.0.0.1:%s" % port(), log)
        return self.gws[name][1]

    def gateway_hosts(self, name):
        """The Host headers server @p name's gateway was asked for."""
        log = self.gws[name][2]
        if not os.path.exists(log):
            return set()
        with open(log) as f:
            return {line.split()[0] for line in f if line.strip()}

    def recipe(self, name, meta="", files=None):
        """A copy of the pages example named @p name with the gate and @p meta
        appended to its tests/recipe_meta.yml."""
        d = os.path.join(self.tmp, "recipes", name)
        shutil.copytree(EXAMPLE, d)
        with open(os.path.join(d, "tests", "recipe_meta.yml"), "a") as f:
            f.write(meta)
        path = os.path.join(d, "tests", "install_steps.sh")
        with open(path, "w") as f:
            f.write(GATE)
        os.chmod(path, 0o755)
        for rel, text in (files or {}).items():
            with open(os.path.join(d, rel), "w") as f:
                f.write(text)
        self.recipes[name] = d
        return d

    def overlay(self, recipe, text):
        d = os.path.join(self.overlays, recipe)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "recipe_meta.yml"), "w") as f:
            f.write(text)

    def config_text(self, servers, extra=""):
        """The daemon's config: @p servers a list of (name, capacity, labels)
        (None: no `servers:` at all), each with domain suffix <name>.test
        and its own gateway."""
        fake = {"FAKE_SWARM_DIR": self.swarm, "POOL_DIR": self.pool, self.marker: "1"}
        text = (
            "min_free_bytes: 0\n"
            "kill_grace: 2s\n"
            "teardown_grace: 60s\n"
            "harness:\n"
            "  command: [sh, %s, run, %s, harness]\n"
            "  teardown_command: [sh, %s, teardown, %s, harness, --teardown]\n"
            "  abra_dir: %s\n"
            "  overlays_dir: %s\n"
            "  gateway: %s\n"
            "  env: %s\n"
            % (self.wrapper, CCCI, self.wrapper, CCCI, self.real, self.overlays,
               self.gateway("default"), json.dumps(fake)))
        if servers is not None:
            text += "servers:\n"
            for name, capacity, labels in servers:
                text += ("  - name: %s\n    capacity: %d\n    domain_suffix: %s.test\n"
                         "    gateway: %s\n    labels: %s\n"
                         % (name, capacity, name, self.gateway(name), json.dumps(labels)))
        return text + extra

    def start(self, servers, extra=""):
        self.d = self.daemon(config=self.config_text(servers, extra),
                             env={"PATH": SUPPORT + os.pathsep + os.environ["PATH"]})
        self.d.start()
        return self.d

    def write_config(self, servers, extra=""):
        """Rewrite the running daemon's config file (the same state dir,
        socket and http section as itest's Daemon writes)."""
        text = "state_dir: %s\nsocket: %s\nhttp:\n  listen: 127.0.0.1:0\n" % (
            self.d.state_dir, self.d.socket)
        with open(self.d.config_path, "w") as f:
            f.write(text + self.config_text(servers, extra))

    def reload(self, servers, extra=""):
        before = self.d.status()["counters"]["config_reloads"]
        self.write_config(servers, extra)
        self.d.send(signal.SIGHUP)
        wait_for(lambda: self.d.status()["counters"]["config_reloads"] > before,
                 what="the reload\n" + self.d.logtext())

    def faults(self, rules):
        with open(os.path.join(self.swarm, "faults.json"), "w") as f:
            json.dump(rules, f)

    def unreachable(self, server):
        """Fault rules: every call of @p server that needs it fails as an
        unreachable server does."""
        return [{"match": m, "server": server, "action": "unreachable"}
                for m in SERVER_COMMANDS]

    # ------------------------------------------------------------ the daemon

    def submit(self, recipe, *args):
        r = run_cli("-s", self.d.socket, "submit", self.recipes[recipe], "--quick", *args)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return r.stdout.strip()

    def show(self, rid):
        r = request(self.d.socket, {"v": 1, "op": "show", "id": rid})
        self.assertTrue(r["ok"], r)
        return r["run"]

    def ps(self):
        return {r["id"]: r for r in request(self.d.socket, {"v": 1, "op": "ps"})["runs"]}

    def servers(self):
        """`ccci server ls --json` as {name: server}."""
        r = run_cli("-s", self.d.socket, "--json", "server", "ls")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        got = json.loads(r.stdout)
        if isinstance(got, dict):
            got = got["servers"]
        return {s["name"]: s for s in got}

    def server_cmd(self, verb, name):
        return run_cli("-s", self.d.socket, "server", verb, name)

    def meta_on_disk(self, rid):
        with open(os.path.join(self.d.state_dir, "runs", rid, "meta.json")) as f:
            return json.load(f)

    def gated(self, rid):
        """Wait until run @p rid is deployed and waits at its gate; its hook's
        view {CCCI_SERVER, CCCI_APP_DOMAIN}."""
        path = os.path.join(self.pool, rid + ".hook")

        def there():
            if os.path.exists(path):
                return True
            m = self.show(rid)
            if m["state"] == "finished":
                raise AssertionError("run %s finished (%s) before its gate:\n%s\n%s" % (
                    rid, m["reason"], self.log_text(rid), self.d.logtext()))
            return False
        wait_for(there, RUN_WAIT, "run %s at its gate" % rid)
        return read_env_file(path)

    def release(self, *rids):
        for rid in rids:
            open(os.path.join(self.pool, rid + ".go"), "w").close()

    def release_all(self):
        open(os.path.join(self.pool, "all.go"), "w").close()

    def finished(self, rid, timeout=RUN_WAIT):
        def done():
            m = self.show(rid)
            return m if m["state"] == "finished" else None
        return wait_for(done, timeout, "run %s to finish\n%s" % (rid, self.d.logtext()))

    def succeeded(self, rid):
        m = self.finished(rid)
        self.assertEqual(m["reason"], "success", self.log_text(rid))
        return m

    def log_text(self, rid):
        logs = os.path.join(self.d.state_dir, "runs", rid, "logs")
        out = []
        if os.path.isdir(logs):
            for name in sorted(os.listdir(logs)):
                if name.endswith(".jsonl"):
                    with open(os.path.join(logs, name), "rb") as f:
                        out += [json.loads(l)["out"] for l in f.read().splitlines()]
        return "".join(out)

    def notes(self, rid):
        """The daemon's own lines in the run's log ("[ccci] ...")."""
        return [l for l in self.log_text(rid).splitlines() if l.startswith("[ccci] ")]

    def run_env(self, rid, role="run"):
        return read_env_file(os.path.join(self.pool, "%s.%s.env" % (rid, role)))

    def results(self, rid):
        with open(os.path.join(self.d.state_dir, "runs", rid, "results.json")) as f:
            return json.load(f)

    # ------------------------------------------------------------ the fakes

    def calls(self):
        path = os.path.join(self.swarm, "calls.log")
        if not os.path.exists(path):
            return []
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]

    def abra(self, calls, command, domain):
        """The abra calls of @p command (e.g. "app undeploy") for @p domain."""
        words = command.split()
        return [c for c in calls if os.path.basename(c["argv"][0]) == "abra"
                and c["argv"][1:1 + len(words)] == words and domain in c["argv"]]

    def docker_contexts(self, calls, domain):
        """The --context of every docker call about @p domain's stack."""
        stack = stack_of(domain)
        out = []
        for c in calls:
            argv = c["argv"]
            if os.path.basename(argv[0]) != "docker" or not any(stack in a for a in argv):
                continue
            out.append(argv[argv.index("--context") + 1] if "--context" in argv else None)
        return out

    def stacks(self, server):
        path = os.path.join(self.swarm, server, "state.json")
        state = {}
        if os.path.exists(path):
            with open(path) as f:
                state = json.load(f)
        return {k: state.get(k) or {} for k in ("stacks", "volumes", "secrets")}

    def env_files(self):
        """{server: [app env files]} of the operator's abra dir."""
        d = os.path.join(self.real, "servers")
        return {s: sorted(os.listdir(os.path.join(d, s))) for s in os.listdir(d)}

    def events(self):
        path = os.path.join(self.pool, "events")
        if not os.path.exists(path):
            return []
        with open(path) as f:
            return [line.split() for line in f if line.strip()]

    # ------------------------------------------------------------ checks

    def assert_placed(self, rid, server):
        """Run @p rid (at its gate) is on @p server, as recorded in meta.json
        before it started and as the harness and the fakes saw it."""
        hook = self.gated(rid)
        m = self.meta_on_disk(rid)
        self.assertEqual(m.get("server"), server, json.dumps(m, indent=1))
        domain = m["domain"]
        self.assertTrue(domain.endswith("." + server + ".test"), domain)
        # On disk before the harness started.
        with open(os.path.join(self.pool, rid + ".run.meta.json")) as f:
            at_start = json.load(f)
        self.assertEqual((at_start.get("server"), at_start["domain"]), (server, domain))
        self.assertEqual(self.show(rid)["server"], server)
        env = self.run_env(rid)
        self.assertEqual(env.get("CCCI_SERVER"), server, env)
        self.assertEqual(env.get("CCCI_DOMAIN"), domain, env)
        self.assertEqual(env.get("CCCI_GATEWAY"), self.gateway(server), env)
        self.assertEqual(env.get("CCCI_SERVER_FILE"),
                         os.path.join(self.d.state_dir, "runs", rid, "state", "server"), env)
        self.assertEqual(hook, {"CCCI_SERVER": server, "CCCI_APP_DOMAIN": domain})
        # Its app env file is in that server's abra dir and nowhere else.
        where = [s for s, files in self.env_files().items() if domain + ".env" in files]
        self.assertEqual(where, [server])
        # The fakes: created with --server, checked with --context, deployed
        # on that server's swarm, its health checked through its gateway.
        calls = self.calls()
        new = self.abra(calls, "app new", domain)
        self.assertEqual(len(new), 1, new)
        self.assertEqual(new[0]["argv"][new[0]["argv"].index("--server") + 1], server)
        ctx = self.docker_contexts(calls, domain)
        self.assertTrue(ctx, "no docker call for %s" % domain)
        self.assertEqual(set(ctx), {server}, ctx)
        self.assertIn(stack_of(domain), self.stacks(server)["stacks"])
        for other in self.gws:
            if other != server:
                self.assertNotIn(domain, self.gateway_hosts(other), other)
        self.assertIn(domain, self.gateway_hosts(server))
        return m

    def assert_queued(self, rid):
        m = self.show(rid)
        self.assertEqual(m["state"], "queued", json.dumps(m, indent=1))
        self.assertIsNone(m.get("server"), json.dumps(m, indent=1))
        self.assertFalse(os.path.exists(os.path.join(self.pool, rid + ".run.env")),
                         "run %s started" % rid)

    def assert_capacity_kept(self, capacity):
        """From the wrapper's spans: at no moment did a server hold more runs
        than @p capacity {server: n} allows (a span ends before the next run's
        starts, so overlapping spans are runs at once)."""
        spans = {}
        for what, rid, server, t in self.events():
            if what == "run-start":
                spans[rid] = [server, int(t), None]
            elif what == "run-end":
                spans[rid][2] = int(t)
        points = []
        for rid, (server, t0, t1) in spans.items():
            points.append((t0, 1, server, rid))
            points.append((t1 if t1 is not None else float("inf"), -1, server, rid))
        points.sort(key=lambda p: (p[0], p[1]))
        now = {}
        for t, delta, server, rid in points:
            now[server] = now.get(server, 0) + delta
            self.assertLessEqual(now[server], capacity.get(server, 0),
                                 "%s over capacity when %s started: %r" % (server, rid, spans))

    def assert_swarm_empty(self, *servers):
        for s in servers:
            self.assertEqual(self.stacks(s), {"stacks": {}, "volumes": {}, "secrets": {}}, s)
        left = {s: f for s, f in self.env_files().items() if f}
        self.assertEqual(left, {}, "env files left")


ABC = [("alpha", 2, []), ("bravo", 1, []), ("charlie", 1, ["heavy"])]


class TestSpread(PoolCase):

    def test_runs_spread_by_capacity_least_loaded_first(self):
        self.recipe("pages")
        self.recipe("hello")
        d = self.start(ABC)
        st = json.loads(run_cli("-s", d.socket, "status", "--json").stdout)
        self.assertEqual(st["counters"]["servers"], 3)
        self.assertEqual([s["name"] for s in st["servers"]], ["alpha", "bravo", "charlie"])
        # One at a time, so each decision sees the ones before it running:
        # all empty -> the first in config order; then the least loaded
        # (running/capacity), the next after the last chosen among equals.
        r1 = self.submit("pages", "--pr", "1")
        self.assert_placed(r1, "alpha")     # 0, 0, 0: the first
        r2 = self.submit("hello", "--pr", "1")
        self.assert_placed(r2, "bravo")     # 1/2, 0, 0: bravo comes after alpha
        r3 = self.submit("pages", "--pr", "2")
        self.assert_placed(r3, "charlie")   # 1/2, 1/1, 0: labels do not keep it off
        self.release(r3)
        self.succeeded(r3)
        r4 = self.submit("hello", "--pr", "2")
        self.assert_placed(r4, "charlie")   # 1/2, 1/1, 0: less loaded than alpha
        r5 = self.submit("pages", "--pr", "3")
        self.assert_placed(r5, "alpha")     # the only free slot
        r6 = self.submit("hello", "--pr", "3")
        r7 = self.submit("pages", "--pr", "4")
        # Every slot is taken: the two wait, counted as queued for every
        # server they could go to.
        def full():
            s = self.servers()
            return all(s[n]["queued"] == 2 for n in s) and s
        s = wait_for(full, what="two queued runs in server ls: %r" % self.servers())
        self.assertEqual({n: (v["capacity"], v["running"]) for n, v in s.items()},
                         {"alpha": (2, 2), "bravo": (1, 1), "charlie": (1, 1)})
        self.assertEqual(s["charlie"]["labels"], ["heavy"])
        self.assertEqual(s["alpha"]["domain_suffix"], "alpha.test")
        self.assertTrue(all(v["healthy"] and not v["drained"] for v in s.values()), s)
        self.assert_queued(r6)
        self.assert_queued(r7)
        table = run_cli("-s", d.socket, "server", "ls")
        self.assertEqual(table.returncode, 0, table.stderr)
        self.assertRegex(table.stdout.splitlines()[0],
                         r"^NAME +CAPACITY +RUNNING +QUEUED +HEALTHY +DRAINED +LABELS")
        self.assertRegex(table.stdout, r"(?m)^charlie +1 +1 +2 .*heavy")
        # bravo's run ends: r6 goes to bravo, the one free slot.
        self.release(r2)
        self.succeeded(r2)
        self.assert_placed(r6, "bravo")
        self.assert_queued(r7)
        self.release(r1)
        self.succeeded(r1)
        self.assert_placed(r7, "alpha")
        self.release_all()
        for rid in (r4, r5, r6, r7):
            self.succeeded(rid)
        # All empty again: round-robin goes on after the last chosen (alpha).
        r8 = self.submit("pages", "--pr", "5")
        self.assert_placed(r8, "bravo")
        self.succeeded(r8)
        self.assert_capacity_kept({"alpha": 2, "bravo": 1, "charlie": 1})
        s = self.servers()
        self.assertEqual({n: v["runs_started"] for n, v in s.items()},
                         {"alpha": 3, "bravo": 3, "charlie": 2})
        self.assertEqual({n: (v["running"], v["queued"]) for n, v in s.items()},
                         {n: (0, 0) for n in s})
        self.assert_swarm_empty("alpha", "bravo", "charlie")

    def test_without_servers_the_implicit_server_ignores_placement(self):
        # No `servers:`: today's single server (harness.server, capacity,
        # harness.domain_suffix), and a placement no server could match is
        # ignored.
        self.recipe("pages", meta="SERVER_LABELS: [gpu]\nSERVERS: [nowhere]\n")
        os.makedirs(os.path.join(self.real, "servers", "default"))
        d = self.start(None)
        rid = self.submit("pages", "--pr", "1")
        hook = self.gated(rid)
        self.assertEqual(hook["CCCI_SERVER"], "default")
        self.assertEqual(hook["CCCI_APP_DOMAIN"], "pages-pr1.ci.local")
        self.assertEqual(self.run_env(rid)["CCCI_GATEWAY"], self.gateway("default"))
        self.assertIn(self.meta_on_disk(rid).get("server"), (None, "default"))
        s = self.servers()
        self.assertEqual(list(s), ["default"])
        self.assertEqual((s["default"]["capacity"], s["default"]["running"]), (2, 1))
        self.release(rid)
        self.succeeded(rid)
        self.assert_swarm_empty("default")


class TestPlacement(PoolCase):

    def test_labels_and_names_choose_the_server(self):
        self.recipe("heavy", meta="SERVER_LABELS: [heavy]\n")
        self.recipe("pinned", meta="SERVERS: [bravo]\n")
        self.recipe("gpu", meta="SERVER_LABELS: [gpu]\n")
        self.recipe("plain")
        # The operator's overlay wins over the recipe's own SERVERS.
        self.recipe("ovl", meta="SERVERS: [alpha, bravo]\n")
        self.overlay("ovl", "SERVERS: [charlie]\n")
        servers = [("alpha", 1, []), ("bravo", 1, []), ("charlie", 1, ["heavy", "ssd"])]
        d = self.start(servers)
        # Each run below has a free server it would take without its
        # placement (an unplaced run goes to the least loaded, the first
        # after the last chosen among equals).
        h1 = self.submit("heavy", "--pr", "1")
        self.assert_placed(h1, "charlie")   # not alpha
        self.assertEqual(placement(self.meta_on_disk(h1)), {"labels": ["heavy"]})
        k1 = self.submit("pinned", "--pr", "1")
        self.assert_placed(k1, "bravo")     # not alpha
        self.assertEqual(placement(self.meta_on_disk(k1)), {"servers": ["bravo"]})
        # A second heavy run waits for charlie although alpha is free: a
        # run submitted after it goes past it to alpha.
        h2 = self.submit("heavy", "--pr", "2")
        p1 = self.submit("plain", "--pr", "1")
        self.assert_placed(p1, "alpha")
        self.assert_queued(h2)
        # No server has the label: it waits, and says why.
        g1 = self.submit("gpu", "--pr", "1")
        note = "waiting: no server in the pool matches (labels: gpu)"
        wait_for(lambda: self.ps()[g1].get("note") == note,
                 what="the note of %s: %r" % (g1, self.ps()[g1]))
        self.assert_queued(g1)
        r = run_cli("-s", d.socket, "ps")
        self.assertIn(note, [l for l in r.stdout.splitlines() if l.startswith(g1)][0])
        s = self.servers()
        self.assertEqual({n: v["queued"] for n, v in s.items()},
                         {"alpha": 0, "bravo": 0, "charlie": 1})  # h2 only
        # The overlay's SERVERS wins: alpha frees (a later plain run takes
        # it), the overlay's run still waits for charlie.
        o1 = self.submit("ovl", "--pr", "1")
        self.assertEqual(placement(self.show(o1)), {"servers": ["charlie"]})
        self.release(p1)
        self.succeeded(p1)
        p2 = self.submit("plain", "--pr", "2")
        self.assert_placed(p2, "alpha")
        self.assert_queued(o1)
        self.assert_queued(h2)
        # charlie frees: h2 and o1 (two repos, round-robin) both end up
        # there, one after the other.
        self.release(h1)
        self.succeeded(h1)
        first = wait_for(lambda: [r for r in (h2, o1)
                                  if os.path.exists(os.path.join(self.pool, r + ".hook"))],
                         RUN_WAIT, "a run on charlie")[0]
        self.assert_placed(first, "charlie")
        second = o1 if first == h2 else h2
        self.assert_queued(second)
        self.release(first)
        self.succeeded(first)
        self.assert_placed(second, "charlie")
        self.assert_queued(g1)
        self.assertEqual(self.ps()[g1].get("note"), note)
        # A server with the label arrives: the waiting run goes there.
        self.reload(servers + [("delta", 1, ["gpu"])])
        self.assert_placed(g1, "delta")
        self.release_all()
        for rid in (second, p2, k1, g1):
            self.succeeded(rid)
        self.assert_capacity_kept({"alpha": 1, "bravo": 1, "charlie": 1, "delta": 1})
        self.assert_swarm_empty("alpha", "bravo", "charlie", "delta")


class TestDrain(PoolCase):

    def test_drain_keeps_new_runs_off_and_survives_a_restart(self):
        self.recipe("pages")
        servers = [("alpha", 1, []), ("bravo", 1, []), ("charlie", 1, [])]
        d = self.start(servers)
        r1 = self.submit("pages", "--pr", "1")
        self.assert_placed(r1, "alpha")
        r = self.server_cmd("drain", "alpha")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        s = self.servers()
        self.assertTrue(s["alpha"]["drained"])
        self.assertEqual(s["alpha"]["running"], 1)
        self.assertFalse(s["bravo"]["drained"])
        with open(os.path.join(d.state_dir, "servers.json")) as f:
            self.assertEqual(json.load(f), {"version": 1, "drained": ["alpha"]})
        self.assertEqual(d.status()["counters"]["servers_drained"], 1)
        with urllib.request.urlopen(d.url("/metrics"), timeout=WAIT) as resp:
            metrics = resp.read().decode()
        self.assertIn('ccci_server_drained{server="alpha"} 1', metrics)
        self.assertIn('ccci_server_drained{server="bravo"} 0', metrics)
        # An unknown name is an error naming the servers there are.
        bad = self.server_cmd("drain", "zulu")
        self.assertNotEqual(bad.returncode, 0)
        for name in ("zulu", "alpha", "bravo", "charlie"):
            self.assertIn(name, bad.stderr)
        r2 = self.submit("pages", "--pr", "2")
        self.assert_placed(r2, "bravo")
        r3 = self.submit("pages", "--pr", "3")
        self.assert_placed(r3, "charlie")
        r4 = self.submit("pages", "--pr", "4")
        # The drained server's run finishes normally; its free slot takes
        # nothing.
        self.release(r1)
        m = self.succeeded(r1)
        self.assertEqual(m["server"], "alpha")
        self.assertEqual(self.servers()["alpha"]["running"], 0)
        self.assert_queued(r4)
        r = self.server_cmd("undrain", "alpha")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assert_placed(r4, "alpha")
        self.assertFalse(self.servers()["alpha"]["drained"])
        # A drain is kept across a restart.
        self.assertEqual(self.server_cmd("drain", "bravo").returncode, 0)
        self.release_all()
        for rid in (r2, r3, r4):
            self.succeeded(rid)
        self.assertEqual(d.stop(), 0, d.logtext())
        with open(os.path.join(d.state_dir, "servers.json")) as f:
            self.assertEqual(json.load(f), {"version": 1, "drained": ["bravo"]})
        os.remove(os.path.join(self.pool, "all.go"))
        self.d = self.daemon(config_path=d.config_path,
                             env={"PATH": SUPPORT + os.pathsep + os.environ["PATH"]})
        self.d.start()
        s = self.servers()
        self.assertEqual({n: v["drained"] for n, v in s.items()},
                         {"alpha": False, "bravo": True, "charlie": False})
        r5 = self.submit("pages", "--pr", "5")
        r6 = self.submit("pages", "--pr", "6")
        on = {self.gated(r5)["CCCI_SERVER"], self.gated(r6)["CCCI_SERVER"]}
        self.assertEqual(on, {"alpha", "charlie"})
        r7 = self.submit("pages", "--pr", "7")
        self.assert_queued(r7)
        self.assertEqual(self.server_cmd("undrain", "bravo").returncode, 0)
        self.assert_placed(r7, "bravo")
        self.release_all()
        for rid in (r5, r6, r7):
            self.succeeded(rid)
        self.assert_capacity_kept({"alpha": 1, "bravo": 1, "charlie": 1})
        self.assert_swarm_empty("alpha", "bravo", "charlie")


class TestUnhealthy(PoolCase):

    POOL = "pool:\n  unhealthy_after: 2\n  probe_min: 1s\n  probe_max: 1s\n  probe_timeout: 30s\n"

    def harness_ended(self, rid):
        wait_for(lambda: any(e[0] == "run-end" and e[1] == rid for e in self.events()),
                 RUN_WAIT, "the harness of %s to end\n%s" % (rid, self.d.logtext()))

    def test_unreachable_server_fails_fast_gets_nothing_and_recovers(self):
        self.recipe("pages")
        # bravo has room for the failing runs (their teardown may wait for
        # the server to come back) and one slot more.
        d = self.start([("alpha", 1, []), ("bravo", 3, [])], self.POOL)
        # alpha busy: every next run goes to bravo while bravo is open.
        r1 = self.submit("pages", "--pr", "1")
        self.assert_placed(r1, "alpha")
        self.faults(self.unreachable("bravo"))
        failed = []
        for pr in (2, 3):
            rid = self.submit("pages", "--pr", str(pr))
            failed.append(rid)
            # Never hangs: the harness stops at the first connection error,
            # long before the run's deadline (1h by default).
            self.harness_ended(rid)
            self.assertEqual(self.meta_on_disk(rid)["server"], "bravo")
            res = self.results(rid)
            self.assertIn("server bravo unreachable: ", res["error"])
            self.assertEqual(res["tiers"]["deploy"]["status"], "error")
            self.assertIn("server bravo unreachable: ", res["tiers"]["deploy"]["reason"])
            with open(os.path.join(d.state_dir, "runs", rid, "state", "server")) as f:
                state = f.read()
            self.assertRegex(state, r"(?m)^server bravo$")
            self.assertRegex(state, r"(?m)^connection_errors [1-9][0-9]*$")
            self.assertRegex(state, r"(?m)^error \S")
            self.assertRegex(state, r"(?m)^unreachable \S")
            # The daemon counts them at the run's end.
            wait_for(lambda: self.servers()["bravo"]["connection_errors_total"] >= len(failed),
                     what="bravo's connection errors counted: %r" % self.servers()["bravo"])
            if not self.servers()["bravo"]["healthy"]:
                break
        # At most unhealthy_after runs (each had at least one error in a row).
        s = self.servers()["bravo"]
        self.assertFalse(s["healthy"], s)
        self.assertGreaterEqual(s["connection_errors"], 2)
        self.assertTrue(s["last_error"], s)
        self.assertTrue(self.servers()["alpha"]["healthy"])
        st = d.status()
        self.assertEqual(st["counters"]["servers_unhealthy"], 1)
        self.assertTrue(any("bravo" in p for p in st["problems"]), st["problems"])
        self.assertTrue(any(l.startswith("warn ") and "bravo" in l
                            for l in d.logtext().splitlines()), d.logtext())
        with urllib.request.urlopen(d.url("/metrics"), timeout=WAIT) as resp:
            metrics = resp.read().decode()
        self.assertIn('ccci_server_healthy{server="bravo"} 0', metrics)
        self.assertIn('ccci_server_healthy{server="alpha"} 1', metrics)
        # Unhealthy: a new run waits although bravo has a free slot, while
        # the probes (with the fault still there) keep failing.
        rq = self.submit("pages", "--pr", "9")
        wait_for(lambda: self.servers()["bravo"]["probe_failures"] >= 2, RUN_WAIT,
                 "two failed probes of bravo: %r" % self.servers()["bravo"])
        s = self.servers()["bravo"]
        self.assertLess(s["running"], s["capacity"], s)
        self.assertEqual(s["queued"], 1, s)
        self.assert_queued(rq)
        probes = [c for c in self.calls() if os.path.basename(c["argv"][0]) == "docker"
                  and c["argv"][1:4] == ["--context", "bravo", "info"]]
        self.assertGreaterEqual(len(probes), 2)
        # The server is back: a probe makes it healthy and it takes the run.
        self.faults([])
        self.assert_placed(rq, "bravo")
        s = self.servers()["bravo"]
        self.assertTrue(s["healthy"], s)
        self.assertEqual(s["connection_errors"], 0)
        self.assertEqual(d.status()["counters"]["servers_unhealthy"], 0)
        # The failed runs end `error`, their note naming the server.
        for rid in failed:
            # What they left on bravo (their app env files) is torn down by
            # the daemon, tried again until the server answers.
            m = self.finished(rid)
            self.assertEqual(m["reason"], "error", self.log_text(rid))
            self.assertEqual(m["teardown"], "clean", self.log_text(rid))
            self.assertTrue(any("server bravo unreachable: " in n for n in self.notes(rid)),
                            self.notes(rid))
        self.release_all()
        self.succeeded(r1)
        self.succeeded(rq)
        self.assert_swarm_empty("alpha", "bravo")


class TestKill(PoolCase):

    def crash(self):
        """The daemon and every process of its runs die at once (kill -9,
        as in a power cut): nothing tears anything down."""
        d = self.d
        d.send(signal.SIGSTOP)
        wait_for(lambda: not self.kill_all(), what="the runs' processes to die")
        d.kill()

    def kill_all(self):
        left = procs_with(self.marker)
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        return left

    def lock_free(self, domain):
        path = os.path.join(self.d.state_dir, "locks", domain + ".lock")
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            return True
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False
        finally:
            os.close(fd)

    def test_kill9_each_orphan_torn_down_on_its_own_server_once(self):
        self.recipe("pages")
        self.recipe("hello")
        servers = [("alpha", 1, []), ("bravo", 1, []), ("charlie", 1, [])]
        self.start(servers)
        r1 = self.submit("pages", "--pr", "1")
        m1 = self.assert_placed(r1, "alpha")
        r2 = self.submit("hello", "--pr", "1")
        m2 = self.assert_placed(r2, "bravo")
        orphans = {r1: ("alpha", m1["domain"]), r2: ("bravo", m2["domain"])}
        self.crash()
        for rid, (server, domain) in orphans.items():
            wait_for(lambda: self.lock_free(domain), what="the lock of %s to be free" % domain)
            self.assertEqual(self.meta_on_disk(rid)["state"], "running")
            self.assertIn(stack_of(domain), self.stacks(server)["stacks"])
        before = len(self.calls())
        self.assertEqual([c for c in self.calls() if c["argv"][1:3] == ["app", "undeploy"]], [],
                         "something was torn down before the restart")
        # bravo leaves the config while the daemon is down.
        self.write_config([("alpha", 1, []), ("charlie", 1, [])])
        old = self.d
        self.d = self.daemon(config_path=old.config_path,
                             env={"PATH": SUPPORT + os.pathsep + os.environ["PATH"]})
        self.d.start()
        for rid in orphans:
            m = self.finished(rid)
            self.assertEqual((m["reason"], m["teardown"]), ("orphaned", "clean"),
                             self.log_text(rid))
        # Another sweep finds nothing more to do.
        r = run_cli("-s", self.d.socket, "janitor")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        calls = self.calls()[before:]
        for rid, (server, domain) in orphans.items():
            env = self.run_env(rid, "teardown")
            self.assertEqual(env["CCCI_SERVER"], server)
            self.assertEqual(env["CCCI_DOMAIN"], domain)
            # The removed server's gateway falls back to harness.gateway.
            self.assertEqual(env["CCCI_GATEWAY"],
                             self.gateway(server if server != "bravo" else "default"))
            starts = [e for e in self.events() if e[0] == "teardown-start" and e[1] == rid]
            self.assertEqual(len(starts), 1, self.events())
            for command in ("app undeploy", "app volume remove", "app secret remove",
                            "app remove"):
                self.assertEqual(len(self.abra(calls, command, domain)), 1,
                                 "%s of %s: %r" % (command, domain, self.abra(calls, command, domain)))
            ctx = self.docker_contexts(calls, domain)
            self.assertTrue(ctx, "no docker check of %s's teardown" % domain)
            self.assertEqual(set(ctx), {server}, ctx)
        self.assert_swarm_empty("alpha", "bravo", "charlie")
        # Nothing of the removed server is left in the pool.
        self.assertNotIn("bravo", wait_for(
            lambda: (lambda s: "bravo" not in s and s)(self.servers()),
            what="bravo to leave server ls"))


class TestReload(PoolCase):

    def test_sighup_adds_resizes_and_removes_servers(self):
        self.recipe("pages")
        self.start([("alpha", 1, []), ("bravo", 2, [])])
        r1 = self.submit("pages", "--pr", "1")
        self.assert_placed(r1, "alpha")
        r2 = self.submit("pages", "--pr", "2")
        self.assert_placed(r2, "bravo")
        # bravo goes (its run goes on), charlie comes, alpha doubles.
        self.reload([("alpha", 2, []), ("charlie", 1, [])])
        s = self.servers()
        self.assertEqual(list(s), ["alpha", "charlie", "bravo"])
        self.assertEqual((s["alpha"]["capacity"], s["alpha"]["removed"]), (2, False))
        self.assertEqual((s["charlie"]["capacity"], s["charlie"]["running"]), (1, 0))
        self.assertEqual((s["bravo"]["removed"], s["bravo"]["running"]), (True, 1))
        r3 = self.submit("pages", "--pr", "3")
        self.assert_placed(r3, "charlie")   # 0/1 beats 1/2
        r4 = self.submit("pages", "--pr", "4")
        self.assert_placed(r4, "alpha")     # the new capacity
        # bravo has a free slot but is removed: the next run waits.
        r5 = self.submit("pages", "--pr", "5")
        self.release(r2)
        m = self.succeeded(r2)
        self.assertEqual(m["server"], "bravo")
        wait_for(lambda: "bravo" not in self.servers(), what="bravo to leave server ls")
        self.assert_queued(r5)
        # alpha shrinks below its running count: nothing more goes there
        # until fewer than the new capacity run.
        self.reload([("alpha", 1, []), ("charlie", 1, [])])
        self.assertEqual((self.servers()["alpha"]["capacity"], self.servers()["alpha"]["running"]),
                         (1, 2))
        self.release(r1)
        self.succeeded(r1)
        self.assert_queued(r5)
        self.release(r4)
        self.succeeded(r4)
        self.assert_placed(r5, "alpha")
        self.release_all()
        self.succeeded(r3)
        self.succeeded(r5)
        self.assert_capacity_kept({"alpha": 2, "bravo": 2, "charlie": 1})
        self.assert_swarm_empty("alpha", "bravo", "charlie")


if __name__ == "__main__":
    import unittest
    unittest.main()
