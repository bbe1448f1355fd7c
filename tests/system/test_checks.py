"""Unit tests of tests/system/checks.py on small synthetic worlds (no daemon):
each invariant holds on a clean world and fails, naming the offending item,
on a world broken in that way. With CCCI_BIN set, also the secret forms
against `ccci redact` and clients.py against a real `ccci serve`
(ClientsLiveTest)."""

import base64
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import checks  # noqa: E402

SECRET = "s3cr3t-Value-0123456789"
T0 = 1796000000.0  # 2026-11-30T...


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


class StubForge:
    """The parts of FakeForge the checks use, same names and shapes."""

    def __init__(self):
        self._statuses = {}  # (repo, sha) -> [status json]
        self._comments = {}  # (repo, n) -> [comment json]
        self._requests = []
        self._id = 1000

    def _next(self):
        self._id += 1
        return self._id

    def add_status(self, repo, sha, state, run, desc, context="ccci/testme"):
        self._statuses.setdefault((repo, sha), []).append({
            "id": self._next(), "status": state, "target_url": "http://h:1/runs/" + run,
            "description": desc, "context": context})

    def add_comment(self, repo, n, login, body):
        self._comments.setdefault((repo, n), []).append({
            "id": self._next(), "user": {"login": login}, "body": body})

    def statuses(self, repo, sha):
        return [dict(s) for s in self._statuses.get((repo, sha), [])]

    def comments_of(self, repo, n):
        return [dict(c) for c in self._comments.get((repo, n), [])]

    @property
    def requests(self):
        return [dict(r) for r in self._requests]

    def pr(self, repo, n):
        return {"number": n, "state": "open"}


class World:
    def __init__(self, root):
        self.root = root
        self.state_dir = os.path.join(root, "state")
        self.daemon_log = os.path.join(root, "daemon.log")
        self.forge = StubForge()
        self.org, self.bot = "sys", "ccci-bot"
        self.repos = ["sys/r00"]
        self.swarm_dir = os.path.join(root, "swarm")
        self.abra_dir = os.path.join(root, "abra")
        self.servers = ["a", "b", "c"]
        self.marker = "CHECKS_TEST_MARKER_%d_%d" % (os.getpid(), random.randrange(1 << 30))
        self.records = os.path.join(root, "records")
        self.broken = set()

    def rss_bound_kib(self, active):
        return 64 * 1024 + 256 * active


def write(path, text, mode="w"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, mode) as f:
        f.write(text)


def jsonl(path, rows, mode="w"):
    write(path, "".join(json.dumps(r) + "\n" for r in rows), mode)


class Builder:
    """A clean world: PR 1 of sys/r00 with runs A (success L2) then B
    (success L3, its comment hooked twice), a non-member's comment and a
    non-trigger comment; PR 2 with C superseded by D (failure in upgrade,
    L1)."""

    def __init__(self, root):
        self.w = World(root)
        self.runs = {}
        self.events = []
        self.harness = []
        self.comments = {}

    def comment(self, cid, pr, t, user="m1", member=True, body="!testme", hooks=1):
        e = {"t": t, "kind": "comment", "repo": "sys/r00", "pr": pr, "comment_id": cid,
             "user": user, "member": member, "body": body, "created_at": iso(t),
             "hooks": hooks, "sha": "sha%d" % pr}
        self.events.append(e)
        return e

    def run(self, cid, pr, t, reason, level=None, started=True, sha=None, tiers=None,
            trigger_extra=None, finish=None):
        rid = checks.run_id_for(iso(t), cid)
        d = os.path.join(self.w.state_dir, "runs", rid)
        trig = {"kind": "forge", "repo": "sys/r00", "pr": pr, "comment_id": cid, "commenter": "m1"}
        trig.update(trigger_extra or {})
        finish = finish if finish is not None else t + 20
        m = {"version": 1, "id": rid, "number": len(self.runs) + 1, "repo": "sys/r00",
             "recipe": "r00", "sha": sha or "sha%d" % pr, "pr": pr, "state": "finished",
             "reason": reason, "trigger": trig, "created_at": iso(t + 1),
             "started_at": iso(t + 2) if started else None, "finished_at": iso(finish),
             "attempt": 1, "server": "a"}
        jsonl(os.path.join(d, "meta.json"), [m])
        if level is not None:
            write(os.path.join(d, "results.json"), json.dumps(
                {"level": level, "tiers": tiers or {"install": {"status": "pass"}}}))
        jsonl(os.path.join(d, "logs", "0-init.jsonl"),
              [{"pos": 0, "out": "hello\n", "time": 0}, {"pos": 1, "out": "[ccci] finished: %s\n" % reason, "time": 1}])
        if started:
            self.harness.append({"event": "start", "run": rid, "role": "run", "server": "a",
                                 "pid": 1, "t": t + 3})
            self.harness.append({"event": "end", "run": rid, "role": "run", "server": "a",
                                 "pid": 1, "t": finish - 1, "rc": 0})
        self.runs[rid] = m
        return rid

    def build(self):
        w = self.w
        self.comment(101, 1, T0)
        a = self.run(101, 1, T0, "success", "L2")
        self.comment(102, 1, T0 + 100, hooks=2)
        b = self.run(102, 1, T0 + 100, "success", "L3")
        self.comment(103, 1, T0 + 110, user="o1", member=False)
        self.comment(104, 1, T0 + 111, body="```\n!testme\n```")
        self.comment(201, 2, T0 + 200)
        self.comment(202, 2, T0 + 201)
        d = checks.run_id_for(iso(T0 + 201), 202)
        c = self.run(201, 2, T0 + 200, "superseded", started=False,
                     trigger_extra={"superseded_by": d}, finish=T0 + 202)
        d2 = self.run(202, 2, T0 + 201, "failure", "L1",
                      tiers={"install": {"status": "pass"}, "upgrade": {"status": "fail"}})
        assert d == d2
        self.ids = {"A": a, "B": b, "C": c, "D": d}
        f = w.forge
        f.add_status("sys/r00", "sha1", "pending", a, "ccci: queued")
        f.add_status("sys/r00", "sha1", "success", a, "ccci: L2 upgrade")
        f.add_status("sys/r00", "sha1", "pending", b, "ccci: queued")
        f.add_status("sys/r00", "sha1", "success", b, "ccci: L3 backup and restore")
        f.add_status("sys/r00", "sha2", "pending", c, "ccci: queued")
        f.add_status("sys/r00", "sha2", "pending", d, "ccci: queued")
        f.add_status("sys/r00", "sha2", "failure", d, "ccci: failure in upgrade (L1 install)")
        f.add_comment("sys/r00", 1, "o1", "!testme")
        f.add_comment("sys/r00", 1, "ccci-bot", "sorry, only members")
        f.add_comment("sys/r00", 1, "ccci-bot", "%s\n**ccci** run `%s` of sha1: **success** · level **L3**" % (checks.MARKER, b))
        f.add_comment("sys/r00", 2, "ccci-bot", "%s\n**ccci** run `%s` of sha2: **failure** · level **L1**" % (checks.MARKER, d))
        f._requests.append({"method": "POST", "path": "/api/v1/repos/sys/r00/statuses/sha1",
                            "query": {}, "body": b'{"state":"pending"}'})
        rec = w.records
        self.events.insert(0, {"t": T0 - 10, "kind": "start", "pid": 42})
        jsonl(os.path.join(rec, "events.jsonl"), self.events)
        jsonl(os.path.join(rec, "harness.jsonl"), self.harness)
        write(os.path.join(rec, "secrets.txt"), SECRET + "\nanother-secret-value\nshort\n")
        os.makedirs(os.path.join(rec, "transcripts"))
        write(os.path.join(rec, "transcripts", "tail-1.out"), '{"type":"line"}\n')
        jsonl(os.path.join(rec, "rss.jsonl"), [{"t": T0 + i, "pid": 42, "rss_kib": 30000 + i, "active": i % 3}
                                               for i in range(10)])
        jsonl(os.path.join(rec, "viewer.jsonl"), [
            {"run": b, "t_write": T0, "t_seen": T0 + 0.01, "client": "tail"},
            {"run": b, "t_write": T0, "t_seen": T0 + 0.02, "client": "sse"}])
        jsonl(os.path.join(rec, "clients.jsonl"), [
            {"kind": "tail-fast", "run": b, "resumes": 1, "lines": 10, "gap": False, "dup": False,
             "ended": True, "error": None},
            {"kind": "sse-stall", "run": b, "resumes": 2, "lines": 10, "gap": False, "dup": False,
             "ended": True, "error": None}])
        for s in w.servers:
            os.makedirs(os.path.join(w.swarm_dir, s))
            write(os.path.join(w.swarm_dir, s, "state.json"), json.dumps(
                {"version": 1, "stacks": {}, "secrets": {}, "volumes": {}, "snapshots": {}}))
            os.makedirs(os.path.join(w.abra_dir, "servers", s))
        write(os.path.join(w.swarm_dir, "secrets.log"), "swarmsecretvalue42\n")
        write(os.path.join(w.swarm_dir, "calls.log"), '{"prog": "abra"}\n')
        write(w.daemon_log, "info runs: run=%s queued\n" % a)
        os.makedirs(os.path.join(w.state_dir, "locks"))
        return w


class ChecksTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="ccci-checks-test-")
        self.b = Builder(self.tmp)
        self.w = self.b.build()

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def results(self):
        return {r["name"]: r for r in checks.check_all(self.w)}

    def assert_fails(self, name, needle):
        r = self.results()[name]
        self.assertFalse(r["ok"], r)
        self.assertTrue(any(needle in d for d in r["detail"]), r)
        others = [n for n, x in self.results().items() if not x["ok"] and n != name]
        return r, others

    def test_clean_world_passes_every_check(self):
        res = checks.check_all(self.w)
        self.assertEqual([r["name"] for r in res], checks.NAMES)
        for r in res:
            self.assertTrue(r["ok"], r)
            self.assertIsInstance(r["value"], str)
        import io
        out = io.StringIO()
        checks.print_table(res, file=out)
        self.assertIn("all 12 invariants hold", out.getvalue())
        j = json.loads(checks.to_json(res, {"seed": 3}))
        self.assertTrue(j["ok"])
        self.assertEqual(j["seed"], 3)
        self.assertEqual(len(j["checks"]), 12)

    # 1 trigger-once
    def test_harness_started_twice(self):
        b = self.b.ids["B"]
        jsonl(os.path.join(self.w.records, "harness.jsonl"),
              [{"event": "start", "run": b, "role": "run", "t": T0 + 150}], "a")
        r, others = self.assert_fails("trigger-once", b)
        self.assertIn("started 2 times", " ".join(r["detail"]))

    def test_two_runs_for_one_comment(self):
        extra = "20261130-000000-c102"
        shutil.copytree(os.path.join(self.w.state_dir, "runs", self.b.ids["B"]),
                        os.path.join(self.w.state_dir, "runs", extra))
        self.assert_fails("trigger-once", extra)

    def test_run_for_a_non_member(self):
        self.b.run(103, 1, T0 + 110, "success", "L1")
        self.assert_fails("trigger-once", "comment 103")

    def test_missing_run_and_unfinished_run(self):
        shutil.rmtree(os.path.join(self.w.state_dir, "runs", self.b.ids["A"]))
        self.assert_fails("trigger-once", "comment 101")
        m = dict(self.b.runs[self.b.ids["B"]], state="running", reason=None)
        jsonl(os.path.join(self.w.state_dir, "runs", self.b.ids["B"], "meta.json"), [m])
        self.assert_fails("trigger-once", "not finished")

    def test_never_started_without_reason(self):
        m = dict(self.b.runs[self.b.ids["C"]], reason="timeout")
        jsonl(os.path.join(self.w.state_dir, "runs", self.b.ids["C"], "meta.json"), [m])
        self.assert_fails("trigger-once", self.b.ids["C"])
        m = dict(self.b.runs[self.b.ids["C"]], trigger={"kind": "forge", "repo": "sys/r00", "pr": 2,
                                                          "comment_id": 201, "superseded_by": "nope"})
        jsonl(os.path.join(self.w.state_dir, "runs", self.b.ids["C"], "meta.json"), [m])
        self.assert_fails("trigger-once", "superseded_by 'nope'")

    # 2 status-final
    def test_pending_status_of_the_newest_run(self):
        self.w.forge.add_status("sys/r00", "sha1", "pending", self.b.ids["B"], "ccci: queued")
        self.assert_fails("status-final", "still pending")

    def test_wrong_state_and_description(self):
        f = self.w.forge
        f._statuses[("sys/r00", "sha1")][-1]["description"] = "ccci: L2 upgrade"
        self.assert_fails("status-final", "description")
        f._statuses[("sys/r00", "sha1")][-1]["status"] = "error"
        self.assert_fails("status-final", "state error, want success")

    def test_older_run_without_final_status(self):
        ss = self.w.forge._statuses[("sys/r00", "sha1")]
        del ss[1]  # A's success
        self.assert_fails("status-final", "run %s: no final status" % self.b.ids["A"])

    def test_final_status_replaced_in_the_outbox_during_an_outage(self):
        """A's final status waited in the outbox through a forge outage and
        B's status on the commit replaced it there: no lost status. Only a
        window over the whole span from A's finish to B's acceptance
        excuses it; 429s refuse no write."""
        del self.w.forge._statuses[("sys/r00", "sha1")][1]  # A's success
        f = checks.parse_time(self.b.runs[self.b.ids["A"]]["finished_at"])
        c = checks.parse_time(self.b.runs[self.b.ids["B"]]["created_at"])
        self.assertLess(f + 2, c)
        events = os.path.join(self.w.records, "events.jsonl")

        def with_events(evs):
            jsonl(events, evs)
            return self.results()["status-final"]

        outage = [{"t": f - 1, "kind": "fault", "what": "forge-outage-begin"},
                  {"t": c - 20, "kind": "fault", "what": "forge-outage-end"}]
        self.assertTrue(with_events(outage)["ok"])
        late = [{"t": f + 1.5, "kind": "fault", "what": "forge-outage-begin"},
                {"t": c - 20, "kind": "fault", "what": "forge-outage-end"}]
        self.assertFalse(with_events(late)["ok"])
        self.assertFalse(with_events([{"t": f - 1, "kind": "fault", "what": "forge-429"}])["ok"])

    def test_older_sha_left_pending(self):
        """A PR pushed to after run A: A's commit must still end final."""
        a = self.b.ids["A"]
        m = dict(self.b.runs[a], sha="sha0")
        jsonl(os.path.join(self.w.state_dir, "runs", a, "meta.json"), [m])
        self.w.forge.add_status("sys/r00", "sha0", "pending", a, "ccci: queued")
        r, _ = self.assert_fails("status-final", "older sha sha0 left pending")
        self.assertIn("1 stale pending", r["value"])

    def test_superseded_run_posting_a_final_status(self):
        self.w.forge._statuses[("sys/r00", "sha2")].insert(
            1, {"id": 1, "status": "error", "target_url": "http://h/runs/" + self.b.ids["C"],
                "description": "ccci: superseded", "context": "ccci/testme"})
        self.assert_fails("status-final", "superseded, but posted")

    def test_other_context_is_ignored(self):
        self.w.forge.add_status("sys/r00", "sha1", "pending", self.b.ids["B"], "x", context="other")
        self.assertTrue(self.results()["status-final"]["ok"])

    # 3 one-results-comment
    def test_two_results_comments(self):
        self.w.forge.add_comment("sys/r00", 1, "ccci-bot", checks.MARKER + "\nrun `x`")
        self.assert_fails("one-results-comment", "sys/r00#1: 2 results comments")

    def test_results_comment_of_an_older_run(self):
        c = self.w.forge._comments[("sys/r00", 1)][-1]
        c["body"] = c["body"].replace(self.b.ids["B"], self.b.ids["A"])
        self.assert_fails("one-results-comment", "the newest is %s" % self.b.ids["B"])

    def test_marker_by_someone_else_does_not_count(self):
        del self.w.forge._comments[("sys/r00", 2)][-1]
        self.w.forge.add_comment("sys/r00", 2, "m1", checks.MARKER)
        self.assert_fails("one-results-comment", "sys/r00#2: 0 results comments")

    # 4 no-secret
    def test_secret_in_a_log_line_in_base64(self):
        enc = base64.b64encode(b"x" + SECRET.encode()).decode()  # alignment 1
        p = os.path.join(self.w.state_dir, "runs", self.b.ids["B"], "logs", "1-deploy.jsonl")
        jsonl(p, [{"pos": 0, "out": "token %s\n" % enc, "time": 0}])
        r, _ = self.assert_fails("no-secret", "1-deploy.jsonl")
        self.assertIn("base64@1", " ".join(r["detail"]))
        self.assertNotIn(SECRET, json.dumps(r))

    def test_secret_forms_elsewhere(self):
        write(os.path.join(self.w.records, "transcripts", "http-3.txt"),
              "x=" + SECRET.replace("-", "%2D") + "&")  # not a masked form
        self.assertTrue(self.results()["no-secret"]["ok"])
        write(os.path.join(self.w.records, "transcripts", "http-4.txt"),
              json.dumps({"v": "swarmsecretvalue42"}))
        self.assert_fails("no-secret", "http-4.txt")

    def test_secret_in_a_forge_request_and_daemon_log(self):
        self.w.forge._requests.append({"method": "PATCH", "path": "/api/v1/x", "query": {},
                                       "body": json.dumps({"body": "a\u0007 " + SECRET}).encode()})
        self.assert_fails("no-secret", "forge request 1")
        write(self.w.daemon_log, "warn x: %s\n" % SECRET, "a")
        self.assert_fails("no-secret", "daemon.log")

    def test_secret_anywhere_in_the_state_dir_records_or_gateway_out(self):
        for rel in ("state/outbox/0001.json", "records/harness.jsonl", "gateway.out",
                    "records/transcripts/http-final-x.txt"):
            shutil.rmtree(self.tmp)
            self.b = Builder(self.tmp)
            self.w = self.b.build()
            write(os.path.join(self.tmp, rel), '{"body": "x %s y"}\n' % SECRET, "a")
            r, _ = self.assert_fails("no-secret", rel)

    def test_the_files_that_hold_the_values_are_not_scanned(self):
        self.w.leak_file = os.path.join(self.w.records, "leak.txt")
        write(self.w.leak_file, SECRET + "\n")
        self.w.secrets_dir = os.path.join(self.w.root, "records", "secrets")
        write(os.path.join(self.w.secrets_dir, "s0"), "a-secret-from-the-dir\n")
        r = self.results()["no-secret"]
        self.assertTrue(r["ok"], r)
        self.assertIn("5 values", r["value"])  # the dir's value is one of them
        _, excluded = checks.no_secret_files(self.w)
        self.assertIn(self.w.leak_file, excluded)

    def test_multi_line_value_whole_forms(self):
        """A value of short lines (none masked alone): its all-LF and
        all-CRLF whole forms, JSON-escaped as a log line holds them."""
        self.w.secrets_dir = os.path.join(self.w.root, "secrets")
        write(os.path.join(self.w.secrets_dir, "pem"), "abc\ndefg\nhij\n")
        write(os.path.join(self.w.records, "secrets.jsonl"), json.dumps("second\nvalue") + "\n")
        p = os.path.join(self.w.state_dir, "runs", self.b.ids["B"], "logs", "2-x.jsonl")
        self.assertTrue(self.results()["no-secret"]["ok"])
        st = os.path.join(self.w.swarm_dir, "b", "state.json")
        write(st, json.dumps({"version": 1, "stacks": {}, "volumes": {}, "snapshots": {},
                              "secrets": {"x_pw_v1": {"value": "left\nover"}}}))
        self.assertTrue(self.results()["no-secret"]["ok"])
        jsonl(p, [{"pos": 0, "out": "x left\r\nover y", "time": 0}])
        r, _ = self.assert_fails("no-secret", "2-x.jsonl")
        self.assertIn("#2 (crlf json", " ".join(r["detail"]))
        for text, form in (("abc\ndefg\nhij", "#0 (json form"), ("abc\r\ndefg\r\nhij", "#0 (crlf json"),
                           ("second\r\nvalue", "#1 (crlf json")):
            jsonl(p, [{"pos": 0, "out": "x %s y" % text, "time": 0}])
            r, _ = self.assert_fails("no-secret", "2-x.jsonl")
            self.assertIn(form, " ".join(r["detail"]))

    def test_an_unreadable_file_is_a_failure(self):
        scan = checks.SecretScan([SECRET.encode()])
        try:
            ok = os.path.join(self.tmp, "plain.txt")
            write(ok, "nothing\n")
            hits = scan.scan_files([ok, "/proc/self/mem"])
        finally:
            scan.close()
        self.assertEqual([h[0] for h in hits], ["/proc/self/mem"], hits)
        self.assertIn("unreadable: grep exit 2", hits[0][1])

    def test_short_values_are_not_secrets(self):
        write(os.path.join(self.w.records, "transcripts", "sse-1.txt"), "short short\n")
        self.assertTrue(self.results()["no-secret"]["ok"])

    # 5 no-process
    def test_process_with_the_marker(self):
        env = dict(os.environ)
        env[self.w.marker] = "1"
        p = subprocess.Popen(["sleep", "30"], env=env)
        try:
            time.sleep(0.1)
            self.assert_fails("no-process", "pid %d" % p.pid)
        finally:
            p.kill()
            p.wait()
        self.assertTrue(self.results()["no-process"]["ok"])

    def sleeper(self, argv, **kw):
        p = subprocess.Popen(argv, **kw)
        self.addCleanup(lambda: (p.kill(), p.wait()))
        time.sleep(0.2)
        return p

    def test_process_naming_the_root(self):
        os.makedirs(os.path.join(self.w.root, "x"))
        p = self.sleeper(["sh", "-c", "sleep 30; : %s/x" % self.w.root])
        self.assert_fails("no-process", "pid %d (its command line names the root)" % p.pid)

    def test_a_sibling_of_the_root_is_not_the_root(self):
        p = self.sleeper(["sh", "-c", "sleep 30; : %s-2/x %s2" % (self.w.root, self.w.root)])
        r = self.results()["no-process"]
        self.assertFalse(any("pid %d " % p.pid in d for d in r["detail"]), r)

    def test_ccci_supervise_whose_cwd_is_under_the_root(self):
        """A supervisor without the marker and without the root in its
        argv (a relative --state): found by its binary, subcommand and
        working directory."""
        fake = os.path.join(tempfile.mkdtemp(prefix="ccci-bin-"), "ccci")
        self.addCleanup(shutil.rmtree, os.path.dirname(fake))
        shutil.copy(sys.executable, fake)
        self.w.ccci = fake
        cwd = os.path.join(self.w.state_dir, "runs", self.b.ids["B"])
        p = self.sleeper([fake, "-c", "import time; time.sleep(30)", "supervise", "--state", "state"],
                         cwd=cwd)
        self.assert_fails("no-process", "pid %d (ccci supervise under the root)" % p.pid)

    def test_a_live_daemon_is_said_not_counted(self):
        p = self.sleeper(["sh", "-c", "sleep 30; : %s/ccci.yml" % self.w.root])
        self.w.proc = p
        r = self.results()["no-process"]
        self.assertTrue(r["ok"], r)
        self.assertIn("the daemon is alive", r["value"])
        self.assertIn("the daemon (pid %d) is still alive" % p.pid, " ".join(r["detail"]))

    # 6 no-deployment
    def test_stack_left_in_state_json(self):
        p = os.path.join(self.w.swarm_dir, "b", "state.json")
        with open(p) as f:
            st = json.load(f)
        st["stacks"]["r00-pr1_ci_test"] = {"domain": "r00-pr1.ci.test"}
        st["secrets"]["r00-pr1_ci_test_pw_v1"] = {}
        write(p, json.dumps(st))
        r, _ = self.assert_fails("no-deployment", "server b: stack r00-pr1_ci_test")
        self.assertIn("server b: secret r00-pr1_ci_test_pw_v1 left", r["detail"])

    def test_env_file_left(self):
        write(os.path.join(self.w.abra_dir, "servers", "c", "r00-pr1.ci.test.env"), "TYPE=r00\n")
        self.assert_fails("no-deployment", "servers/c/r00-pr1.ci.test.env")

    # 7 no-lock
    def test_held_lock_in_a_child_process(self):
        p = os.path.join(self.w.state_dir, "locks", "r00-pr1.lock")
        child = subprocess.Popen(
            [sys.executable, "-c",
             "import fcntl,os,sys,time\n"
             "fd=os.open(sys.argv[1],os.O_RDWR|os.O_CREAT)\n"
             "fcntl.flock(fd,fcntl.LOCK_EX)\nprint('ok',flush=True)\ntime.sleep(30)", p],
            stdout=subprocess.PIPE)
        try:
            self.assertEqual(child.stdout.readline().strip(), b"ok")
            r, _ = self.assert_fails("no-lock", "r00-pr1.lock: held by another process")
            self.assertIn("1 held", r["value"])
        finally:
            child.kill()
            child.wait()
            child.stdout.close()
        self.assert_fails("no-lock", "r00-pr1.lock: left (not held)")

    # 8 rss-bound
    def test_rss_sample_over_bound(self):
        jsonl(os.path.join(self.w.records, "rss.jsonl"),
              [{"t": T0 + 50, "pid": 42, "rss_kib": 64 * 1024 + 2 * 256 + 1, "active": 2}], "a")
        self.assert_fails("rss-bound", "65537 KiB > 66048 KiB".replace("65537", str(64 * 1024 + 513)))

    def test_no_rss_samples(self):
        write(os.path.join(self.w.records, "rss.jsonl"), "")
        self.assertFalse(self.results()["rss-bound"]["ok"])

    # 9 comment-to-start
    def test_comment_to_start_figures(self):
        r = self.results()["comment-to-start"]
        self.assertTrue(r["ok"], r)
        self.assertIn("n=3", r["value"])
        self.assertIn("p50=3.000s", r["value"])
        jsonl(os.path.join(self.w.records, "harness.jsonl"),
              [{"event": "start", "run": "20261130-000000-c999", "role": "run", "t": T0}], "a")
        self.assert_fails("comment-to-start", "c999")

    # 10 write-to-viewer, 11 clients
    def custom_log(self, rid, t):
        jsonl(os.path.join(self.w.state_dir, "runs", rid, "logs", "5-custom.jsonl"),
              [{"pos": 0, "out": "VIEWER-TS %s %d\n" % (rid, int(t * 1e9)), "time": 0}])

    def test_viewer_needs_a_kind_that_followed_a_custom_tier(self):
        b = self.b.ids["B"]
        self.custom_log(b, T0 + 105)
        jsonl(os.path.join(self.w.records, "clients.jsonl"), [
            {"kind": "sse-fast", "run": b, "viewer": "sse", "resumes": 0, "lines": 3, "gap": False,
             "dup": False, "ended": True, "error": None, "t_start": T0 + 100, "t_end": T0 + 110}], "a")
        self.assertTrue(self.results()["write-to-viewer"]["ok"])
        jsonl(os.path.join(self.w.records, "viewer.jsonl"),
              [{"run": "x", "t_write": T0, "t_seen": T0 + 1, "client": "tail"}])
        r, _ = self.assert_fails("write-to-viewer", "no sse sample")
        self.assertIn(b, " ".join(r["detail"]))

    def test_viewer_without_a_followed_custom_tier_passes_with_no_samples(self):
        b = self.b.ids["B"]
        self.custom_log(b, T0 + 125)  # after the client ended
        jsonl(os.path.join(self.w.records, "clients.jsonl"), [
            {"kind": "tail-fast", "run": b, "viewer": "tail", "resumes": 0, "lines": 3, "gap": False,
             "dup": False, "ended": True, "error": None, "t_start": T0 + 100, "t_end": T0 + 110}])
        write(os.path.join(self.w.records, "viewer.jsonl"), "")
        r = self.results()["write-to-viewer"]
        self.assertTrue(r["ok"], r)
        self.assertIn("no samples", r["value"])
        jsonl(os.path.join(self.w.records, "clients.jsonl"), [
            {"kind": "tail-fast", "run": b, "resumes": 0, "lines": 3, "gap": False,
             "dup": False, "ended": True, "error": None}])  # no times: any VIEWER-TS counts
        self.assert_fails("write-to-viewer", "no tail sample")

    def client(self, **kw):
        r = {"kind": "tail-fast", "run": self.b.ids["B"], "resumes": 0, "lines": 10, "gap": False,
             "dup": False, "ended": True, "error": None}
        r.update(kw)
        jsonl(os.path.join(self.w.records, "clients.jsonl"), [r], "a")

    def test_client_with_an_error_or_not_ended(self):
        self.client(kind="tail-slow", error="gave up after 60s without a connection (last: x)")
        r, _ = self.assert_fails("clients", "tail-slow client of %s: error: gave up" % self.b.ids["B"])
        self.assertIn("1 with an error", r["value"])
        write(os.path.join(self.w.records, "clients.jsonl"), "")
        self.client(kind="drone-sse", ended=False)
        self.assert_fails("clients", "drone-sse client of %s: did not see the run's end" % self.b.ids["B"])

    def stall(self, resumes_with_id, run_end_after):
        b = self.b.ids["B"]
        m = dict(self.b.runs[b], finished_at=iso(T0 + 100 + run_end_after))
        jsonl(os.path.join(self.w.state_dir, "runs", b, "meta.json"), [m])
        write(os.path.join(self.w.records, "clients.jsonl"), "")
        self.client(kind="sse-stall", stalled=True, stall_t=T0 + 100, stall_s=25,
                    resumes_with_id=resumes_with_id, resumes=resumes_with_id, given_up=0)

    def test_stall_client_must_resume_with_last_event_id(self):
        self.stall(0, 60)
        self.assert_fails("clients", "none resumed with Last-Event-ID")
        self.stall(1, 60)
        r = self.results()["clients"]
        self.assertTrue(r["ok"], r)
        self.assertIn("1 in a long enough run, 1 resumes with Last-Event-ID", r["value"])
        self.stall(0, 20)  # the run ended within the stall: not held to it
        self.assertTrue(self.results()["clients"]["ok"])
        write(os.path.join(self.w.records, "clients.jsonl"), "")
        self.client(kind="sse-stall", stalled=True, stall_t=T0 + 100, stall_s=25,
                    resumes_with_id=0, given_up=1)  # given up: long enough, whatever the run
        self.assert_fails("clients", "none resumed with Last-Event-ID")

    def test_no_stall_client_fails_only_in_a_long_scenario(self):
        self.stall(0, 20)
        self.w.seconds = 60
        r = self.results()["clients"]
        self.assertTrue(r["ok"], r)
        self.assertIn("no stall client followed a long enough run", r["value"])
        self.w.seconds = 180
        self.assert_fails("clients", "no stall client followed a long enough run")

    def test_gap_in_clients_jsonl(self):
        jsonl(os.path.join(self.w.records, "clients.jsonl"),
              [{"kind": "drone-sse", "run": "RUNX", "resumes": 0, "lines": 3, "gap": True,
                "dup": False, "ended": True, "error": None}], "a")
        r, _ = self.assert_fails("clients", "drone-sse client of RUNX: gap")

    def test_a_broken_check_fails_alone(self):
        self.w.forge = None
        res = self.results()
        self.assertFalse(res["status-final"]["ok"])
        self.assertIn("exception", res["status-final"]["value"])
        self.assertTrue(res["no-lock"]["ok"])


class FaultsHitTest(unittest.TestCase):
    """faults-hit on a world with one fault of each kind, each hitting its
    run (passes), then broken one way at a time."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="ccci-faults-test-")
        self.w = World(self.tmp)
        self.events = [{"t": T0 - 10, "kind": "start", "pid": 42}]
        self.harness = []
        self.cid = 500
        w = self.w
        self.flood = self.fault_run("flood", 10, "failure", server="c", lines=[
            "flood " + "x" * 20, "[ccci] the log reached log_max_bytes (67108864 bytes); later lines "
            "are dropped, the run goes on"])
        self.stub = self.fault_run("stubborn", 40, "failure", cancel=False, lines=[
            "stubborn: ignoring SIGTERM",
            "custom: timeout: the recipe's tests was stopped at the run's deadline"],
            tiers={"custom": {"status": "timeout"}})
        self.cancelled = self.fault_run("stubborn", 90, "cancelled", cancel=True,
                                        lines=["stubborn: ignoring SIGTERM"])
        self.ev(95, "fault", what="cancel", run=self.cancelled, rc=0)
        self.ev(100, "fault", what="server-fail-begin", server="c", seconds=25)
        self.unreach = self.add_run(self.next_cid(), "sys/r00", 98, "error", server="c",
                                    lines=["[ccci] server c unreachable: connection refused"],
                                    finish=110)
        self.ev(125, "fault", what="server-fail-end", server="c")
        self.ev(120, "fault", what="disk-full-begin", mode="tmpfs", ballast=1)
        self.ev(121, "disk-full-seen", problems=["only 5 bytes free on x (min_free_bytes is 9); "
                                                  "no run starts"])
        self.ev(140, "fault", what="disk-full-end")
        os.makedirs(w.records, exist_ok=True)

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def next_cid(self):
        self.cid += 1
        return self.cid

    def ev(self, dt, kind, **kw):
        e = {"t": T0 + dt, "kind": kind}
        e.update(kw)
        self.events.append(e)
        return e

    def add_run(self, cid, repo, dt, reason, server="a", lines=(), tiers=None, finish=None):
        t = T0 + dt
        rid = checks.run_id_for(iso(t), cid)
        d = os.path.join(self.w.state_dir, "runs", rid)
        m = {"id": rid, "repo": repo, "pr": 1, "state": "finished", "reason": reason,
             "server": server, "created_at": iso(t), "started_at": iso(t + 1),
             "finished_at": iso(T0 + (finish if finish is not None else dt + 30)),
             "trigger": {"kind": "forge", "repo": repo, "pr": 1, "comment_id": cid}}
        jsonl(os.path.join(d, "meta.json"), [m])
        jsonl(os.path.join(d, "logs", "4-custom.jsonl"),
              [{"pos": i, "out": x + "\n", "time": i} for i, x in enumerate(lines)])
        if tiers:
            write(os.path.join(d, "results.json"), json.dumps({"level": "L3", "tiers": tiers}))
        self.harness.append({"event": "start", "run": rid, "role": "run", "server": server,
                             "t": t + 1})
        return rid

    def fault_run(self, what, dt, reason, server="a", lines=(), tiers=None, **kw):
        self.ev(dt, "fault", what=what, **kw)
        cid = self.next_cid()
        repo = "sys/" + what
        self.ev(dt + 0.001, "comment", repo=repo, pr=1, comment_id=cid, user="m1", member=True,
                body="!testme", created_at=iso(T0 + dt))
        return self.add_run(cid, repo, dt, reason, server=server, lines=lines, tiers=tiers)

    def check(self):
        jsonl(os.path.join(self.w.records, "events.jsonl"), self.events)
        jsonl(os.path.join(self.w.records, "harness.jsonl"), self.harness)
        return checks.check_faults_hit(self.w)

    def assert_fails(self, needle):
        r = self.check()
        self.assertFalse(r["ok"], r)
        self.assertTrue(any(needle in d for d in r["detail"]), r)
        return r

    def rewrite_log(self, rid, lines):
        jsonl(os.path.join(self.w.state_dir, "runs", rid, "logs", "4-custom.jsonl"),
              [{"pos": i, "out": x + "\n", "time": i} for i, x in enumerate(lines)])

    def set_meta(self, rid, **kw):
        p = os.path.join(self.w.state_dir, "runs", rid, "meta.json")
        m = checks.read_json(p)
        m.update(kw)
        write(p, json.dumps(m))

    def test_every_fault_hit(self):
        self.w.seconds = 180
        r = self.check()
        self.assertTrue(r["ok"], r)
        self.assertEqual(r["value"], "8 faults, 6 verified, 0 skipped")
        self.assertIn("1 runs ended unreachable", " ".join(r["detail"]))

    def test_flood_without_the_truncation_line(self):
        self.rewrite_log(self.flood, ["flood xxx"])
        r = self.assert_fails("flood at ")
        self.assertIn("has no `[ccci] the log reached log_max_bytes` line", " ".join(r["detail"]))
        self.assertIn("(+20.0s)", " ".join(r["detail"]))  # from the first event

    def test_flood_below_log_max_is_skipped(self):
        # A flood smaller than log_max_bytes (--flood-bytes) cannot be cut.
        self.rewrite_log(self.flood, ["flood xxx"])
        [e for e in self.events if e.get("what") == "flood"][0]["bytes"] = 1000
        r = self.check()
        self.assertTrue(r["ok"], r)
        self.assertIn("1000 bytes, not past log_max_bytes", " ".join(r["detail"]))
        # Past it, the line is still required.
        [e for e in self.events if e.get("what") == "flood"][0]["bytes"] = 1 << 30
        self.assertFalse(self.check()["ok"])

    def test_flood_cut_short_by_a_kill9_is_skipped(self):
        self.rewrite_log(self.flood, ["flood xxx"])
        self.ev(20, "kill9", pid=42)
        r = self.check()
        self.assertTrue(r["ok"], r)
        self.assertIn("1 skipped", r["value"])
        self.assertIn("a kill -9 of the daemon", " ".join(r["detail"]))

    def test_flood_without_a_run(self):
        self.events = [e for e in self.events if e.get("repo") != "sys/flood"]
        self.assert_fails("no comment on sys/flood after it")

    def test_stubborn_not_killed_at_its_timeout(self):
        self.rewrite_log(self.stub, ["stubborn: ignoring SIGTERM", "custom: fail: x"])
        write(os.path.join(self.w.state_dir, "runs", self.stub, "results.json"),
              json.dumps({"level": "L3", "tiers": {"custom": {"status": "fail"}}}))
        self.assert_fails("did not end by the TIMEOUT kill")
        self.rewrite_log(self.stub, ["install: fail: abra app deploy exited with status 1"])
        self.assert_fails("no `stubborn: ignoring SIGTERM` line")

    def test_stubborn_timeout_from_results_json_alone(self):
        self.rewrite_log(self.stub, ["stubborn: ignoring SIGTERM"])
        self.assertTrue(self.check()["ok"])

    def test_cancel_that_did_not_cancel(self):
        self.set_meta(self.cancelled, reason="failure")
        r = self.assert_fails("cancel at ")
        self.assertIn("ended failure, not cancelled", " ".join(r["detail"]))

    def test_stubborn_never_cancelled(self):
        self.events = [e for e in self.events if e.get("what") != "cancel"]
        self.assert_fails("was never cancelled")

    def test_disk_full_not_seen(self):
        self.events = [e for e in self.events if e.get("kind") != "disk-full-seen"]
        self.ev(141, "disk-full-not-seen", looks=20)
        self.assert_fails("never named min_free_bytes")

    def test_disk_full_with_no_chance_of_admission_is_skipped(self):
        self.events = [e for e in self.events if e.get("kind") != "disk-full-seen"]
        self.ev(141, "disk-full-not-seen", looks=20, chances=0)
        r = self.check()
        self.assertTrue(r["ok"], r)
        self.assertIn("skipped disk-full", " ".join(r["detail"]))
        self.events[-1]["chances"] = 3
        self.assert_fails("never named min_free_bytes")

    def test_unfinished_fault_run(self):
        self.set_meta(self.flood, state="running")
        self.assert_fails("run %s is not finished" % self.flood)

    def test_disk_full_from_the_daemon_log(self):
        self.events = [e for e in self.events if e.get("kind") != "disk-full-seen"]
        self.assert_fails("never refused admission for min_free_bytes")
        write(self.w.daemon_log, "error runs: only 1234 bytes free on /x/state (min_free_bytes is "
              "99999); no run starts\n")
        r = self.check()
        self.assertTrue(r["ok"], r)

    def test_disk_full_window_not_closed_is_skipped(self):
        self.events = [e for e in self.events if e.get("what") != "disk-full-end"
                       and e.get("kind") != "disk-full-seen"]
        r = self.check()
        self.assertTrue(r["ok"], r)
        self.assertIn("skipped disk-full", " ".join(r["detail"]))

    def test_server_fail_that_hit_nothing(self):
        self.rewrite_log(self.unreach, ["install: fail: something else"])
        r = self.check()
        self.assertTrue(r["ok"], r)  # that run started before the window
        self.assertIn("no run started on c", " ".join(r["detail"]))
        late = self.add_run(self.next_cid(), "sys/r01", 105, "success", server="c")
        self.assert_fails("1 runs started on c in the window (%s), none ended" % late)
        self.ev(107, "kill9", pid=42)
        r = self.check()
        self.assertTrue(r["ok"], r)
        self.assertIn("cut short by a kill -9", " ".join(r["detail"]))

    def test_a_scenario_needs_every_kind(self):
        self.w.minutes = 3
        self.events = [e for e in self.events if e.get("what") not in ("server-fail-begin",)]
        self.assert_fails("no server-fail fault recorded")


@unittest.skipUnless(os.environ.get("CCCI_BIN"), "set CCCI_BIN to the ccci binary")
class RedactFormsTest(unittest.TestCase):
    def test_every_form_is_masked_by_ccci_redact(self):
        tmp = tempfile.mkdtemp(prefix="ccci-forms-")
        try:
            for i, v in enumerate([b'a"b/c+d\\x\x01y~?', b"plain-token-0123456789",
                                   b"line one is long\nline two is long too\r\n"]):
                p = os.path.join(tmp, "s%d" % i)
                with open(p, "wb") as f:
                    f.write(v)
                for n, form in checks.secret_forms(v):
                    out = subprocess.run([os.environ["CCCI_BIN"], "redact", "--secret-file", p],
                                         input=b"<<" + form + b">>", capture_output=True).stdout
                    self.assertEqual(out, b"<<********>>", (v, n, form))
        finally:
            shutil.rmtree(tmp)


HARNESS = r"""import os, sys, time
rid = os.environ["CCCI_RUN_ID"]
print("init line", flush=True)
print("~~~ step install", flush=True)
pad = "x" * 180
t0 = time.time()
i = 0
while time.time() - t0 < float(os.environ.get("H_SECONDS", "10")):
    if i == 5000:
        print("~~~ step custom", flush=True)
    for _ in range(20):
        print("line %d %s" % (i, pad))
        i += 1
    print("VIEWER-TS %s %d" % (rid, time.time_ns()), flush=True)
    time.sleep(float(os.environ.get("H_SLEEP", "0.02")))
print("done", flush=True)
"""


@unittest.skipUnless(os.environ.get("CCCI_BIN"), "set CCCI_BIN to the ccci binary")
class ClientsLiveTest(unittest.TestCase):
    """Every client kind follows one run of a real daemon that is kill -9'd
    and restarted (same socket, same port) mid-run."""

    def test_clients_survive_a_daemon_restart(self):
        self.live(kill=True, kinds=None, env={})

    def test_stalled_sse_client_is_given_up_and_resumes(self):
        tr = self.live(kill=False, kinds=["sse-stall", "sse-fast"],
                       env={"H_SECONDS": "35", "H_SLEEP": "0.004"})
        # ~10 MiB while it stalls: past the kernel's socket buffers, so the
        # daemon's queue stays full for its 20 s and it gives up
        self.assertTrue("does not keep up" in tr, "no give-up in the SSE transcripts")
        st = [r for r in self.recs if r["kind"] == "sse-stall"][0]
        self.assertTrue(st["stalled"], st)
        self.assertGreaterEqual(st["given_up"], 1, st)
        self.assertGreaterEqual(st["resumes_with_id"], 1, st)
        self.assertTrue(self.clients_check["ok"], self.clients_check)
        self.assertIn("1 resumes with Last-Event-ID, 1 given up by the server",
                      self.clients_check["value"])

    def test_a_stall_the_server_keeps_ends_in_the_clients_own_resume(self):
        """Little output during the stall: the server never gives up; the
        client drops the connection after its drain and resumes with
        Last-Event-ID."""
        self.live(kill=False, kinds=["sse-stall"], env={"H_SECONDS": "40", "H_SLEEP": "0.5"})
        st = self.recs[0]
        self.assertTrue(st["stalled"], st)
        self.assertEqual(st["given_up"], 0, st)
        self.assertGreaterEqual(st["self_resumes"], 1, st)
        self.assertGreaterEqual(st["resumes_with_id"], 1, st)
        self.assertTrue(self.clients_check["ok"], self.clients_check)

    def live(self, kill, kinds, env):
        sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
        import itest
        import clients
        itest.CCCI = os.environ["CCCI_BIN"]
        tmp = tempfile.mkdtemp(prefix="ccci-cl-", dir="/tmp")
        d = None
        try:
            import socket as so
            with so.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            os.makedirs(os.path.join(tmp, "secrets"))
            recipe = os.path.join(tmp, "myrecipe")
            os.makedirs(recipe)
            write(os.path.join(recipe, "compose.yml"), "version: '3.8'\n")
            write(os.path.join(tmp, "h.py"), HARNESS)
            marker = "CLIENTS_LIVE_%d" % os.getpid()
            example = os.path.join(os.path.dirname(os.path.dirname(HERE)), "examples", "example-harness")
            cfg = ("secrets_dir: %s\nkill_grace: 1s\ndrain_timeout: 1s\n"
                   "harness:\n  command: [%s, %s]\n  env: {%s: '1'%s}\n"
                   "  teardown_command: [%s, --teardown]\n"
                   "http:\n  listen: 127.0.0.1:%d\n"
                   % (os.path.join(tmp, "secrets"), sys.executable, os.path.join(tmp, "h.py"),
                      marker, "".join(", %s: '%s'" % kv for kv in env.items()), example, port))
            d = itest.Daemon(tmp, config=cfg).start()
            rid = itest.run_cli("-s", d.socket, "submit", recipe).stdout.strip()
            self.assertTrue(rid)
            records = os.path.join(tmp, "records")
            os.makedirs(records)

            class W:
                pass
            w = W()
            w.ccci, w.socket, w.http_base = itest.CCCI, d.socket, "http://127.0.0.1:%d" % port
            w.rng, w.records = random.Random(1), records
            c = clients.Clients(w)
            itest.wait_for(lambda: (itest.request(d.socket, {"v": 1, "op": "show", "id": rid})
                                    ["run"]["state"] == "running"), what="running")
            kinds = kinds or list(clients.KINDS)
            for k in kinds:
                c.follow(rid, k)
            time.sleep(3)
            self.assertEqual(c.browse(rid)[0][1], 200)
            self.assertTrue(c.sock({"op": "ps"})["ok"])
            if kill:
                d.proc.kill()
                d.proc.wait()
                d.log.close()
                time.sleep(0.5)
                d.start()
            recs = c.stop_all(150)
            self.recs = recs
            by = {r["kind"]: r for r in recs}
            self.assertEqual(sorted(by), sorted(kinds), recs)
            for r in recs:
                self.assertFalse(r["gap"] or r["dup"], r)
                self.assertTrue(r["ended"], r)
                self.assertIsNone(r["error"], r)
                self.assertGreater(r["lines"], 100, r)
            rows, _ = checks.read_jsonl(os.path.join(records, "clients.jsonl"))
            self.assertEqual(len(rows), len(kinds))
            v, _ = checks.read_jsonl(os.path.join(records, "viewer.jsonl"))
            self.assertEqual({x["client"] for x in v},
                             {"tail" if k.startswith("tail") else "sse" for k in kinds})
            m = itest.request(d.socket, {"v": 1, "op": "show", "id": rid})["run"]
            self.assertEqual(m["state"], "finished")
            w.state_dir = d.state_dir
            self.clients_check = checks.check_clients(w)
            rr = {r["kind"]: r for r in recs}
            if "sse-stall" in rr and kill:
                self.assertGreaterEqual(rr["sse-stall"]["resumes_with_id"], 1, rr["sse-stall"])
            print("\nclients:", json.dumps(recs), "\nrun:", m["reason"], file=sys.stderr)
            tr = ""
            for n in sorted(os.listdir(os.path.join(records, "transcripts"))):
                with open(os.path.join(records, "transcripts", n), "rb") as f:
                    tr += f.read().decode("utf-8", "replace")
            return tr
        finally:
            if d is not None:
                d.kill()
            from test_runs import procs_with
            for pid in procs_with("CLIENTS_LIVE_%d" % os.getpid()):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            shutil.rmtree(tmp, ignore_errors=True)


FORGE_HARNESS = r"""import json, os, sys, time
run = os.environ["CCCI_RUN_ID"]
def rec(ev, **kw):
    d = {"event": ev, "run": run, "role": "run", "server": os.environ.get("CCCI_SERVER"),
         "pid": os.getpid(), "t": time.time()}
    d.update(kw)
    with open(os.environ["H_RECORD"], "a") as f:
        f.write(json.dumps(d) + "\n")
rec("start")
print("~~~ step install", flush=True)
time.sleep(4)
json.dump({"level": "L1", "tiers": {"install": {"status": "pass", "step": "install"}}},
          open(os.environ["CCCI_RESULTS_FILE"], "w"))
rec("end", rc=0)
"""


@unittest.skipUnless(os.environ.get("CCCI_BIN"), "set CCCI_BIN to the ccci binary")
class ForgeWorldLiveTest(unittest.TestCase):
    """The forge checks on what a real daemon and the fake forge did: one PR
    with a run, a push, a run that runs, one superseded, a non-member's
    comment; trigger-once, status-final, one-results-comment,
    comment-to-start, no-lock and no-secret hold."""

    def test_forge_checks_on_a_real_daemon(self):
        sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))
        import itest
        from fakeforge import FakeForge
        itest.CCCI = os.environ["CCCI_BIN"]
        tmp = tempfile.mkdtemp(prefix="ccci-fw-", dir="/tmp")
        f = FakeForge()
        f.start()
        d = None
        try:
            tok = f.add_user("ccci-bot")
            f.add_user("m1")
            f.add_user("o1")
            f.add_org("sys", members=["ccci-bot", "m1"])
            f.add_repo("sys/r00")
            write(os.path.join(tmp, "token"), tok + "\n")
            os.makedirs(os.path.join(tmp, "secrets"))
            write(os.path.join(tmp, "secrets", "token"), tok + "\n")
            records = os.path.join(tmp, "records")
            os.makedirs(os.path.join(records, "transcripts"))
            write(os.path.join(tmp, "h.py"), FORGE_HARNESS)
            marker = "FORGE_WORLD_%d" % os.getpid()
            cfg = ("secrets_dir: %s\nmin_free_bytes: 0\ncapacity: 2\nkill_grace: 2s\n"
                   "harness:\n  command: [%s, %s]\n  teardown_command: [/bin/true]\n"
                   "  env: {H_RECORD: %s, %s: '1'}\n"
                   "forge:\n  url: '%s'\n  token_file: %s\n  repos: [sys/r00]\n  poll_interval: 1s\n"
                   % (os.path.join(tmp, "secrets"), sys.executable, os.path.join(tmp, "h.py"),
                      os.path.join(records, "harness.jsonl"), marker, f.url,
                      os.path.join(tmp, "token")))
            d = itest.Daemon(tmp, config=cfg).start()
            events = [{"t": time.time(), "kind": "start", "pid": d.proc.pid}]
            pr = f.open_pr("sys/r00", user="m1")
            itest.wait_for(lambda: [r for r in f.requests if "issues/comments" in r["path"]
                                    and r["status"] == 200], what="the first poll")
            time.sleep(1.5)

            def comment(user, body, member=True):
                c = f.comment("sys/r00", pr, user, body)
                events.append({"t": time.time(), "kind": "comment", "repo": "sys/r00", "pr": pr,
                               "comment_id": c["id"], "user": user, "member": member,
                               "body": body, "created_at": c["created_at"], "hooks": 0,
                               "sha": f.pr("sys/r00", pr)["head"]["sha"]})
                return c

            def runs():
                return [r for r in itest.request(d.socket, {"v": 1, "op": "ps"})["runs"]
                        if (r.get("trigger") or {}).get("kind") == "forge"]

            def state_of(cid):
                rs = [r for r in runs() if r["trigger"]["comment_id"] == cid]
                return rs[0]["state"] if rs else None

            c1 = comment("m1", "!testme")
            itest.wait_for(lambda: state_of(c1["id"]) == "finished", what="run 1")
            comment("o1", "!testme", member=False)
            f.push("sys/r00", pr)
            c2 = comment("m1", "!testme")
            itest.wait_for(lambda: state_of(c2["id"]) == "running", what="run 2 running")
            c3 = comment("m1", "!testme --quick")
            itest.wait_for(lambda: state_of(c3["id"]) is not None, what="run 3")
            f.push("sys/r00", pr)
            time.sleep(1.1)
            c4 = comment("m1", "!testme")
            itest.wait_for(lambda: state_of(c4["id"]) == "finished", timeout=60, what="run 4")
            itest.wait_for(lambda: d.status()["counters"]["outbox_backlog"] == 0, what="outbox")
            time.sleep(1)
            runs_final = runs()
            r = itest.run_cli("-s", d.socket, "janitor")
            self.assertEqual(r.returncode, 0, r.stderr)
            d.stop()
            jsonl(os.path.join(records, "events.jsonl"), events)
            write(os.path.join(records, "secrets.txt"), tok + "\n")

            class W:
                pass
            w = W()
            w.root, w.state_dir, w.daemon_log, w.forge = tmp, d.state_dir, d.log_path, f
            w.org, w.bot, w.repos, w.records = "sys", "ccci-bot", ["sys/r00"], records
            w.swarm_dir, w.abra_dir, w.servers = os.path.join(tmp, "swarm"), os.path.join(tmp, "abra"), []
            w.marker = marker
            res = {r["name"]: r for r in checks.check_all(w)}
            import io
            out = io.StringIO()
            checks.print_table(list(res.values()), out)
            print("\n" + out.getvalue(), file=sys.stderr)
            print("\n" + "\n".join("%s %s %s %s" % (r["id"], r["state"], r["reason"], r["sha"][:8])
                                   for r in runs_final), file=sys.stderr)
            ms = {}
            for n in os.listdir(os.path.join(d.state_dir, "runs")):
                with open(os.path.join(d.state_dir, "runs", n, "meta.json")) as fh:
                    m = json.load(fh)
                ms[m["trigger"]["comment_id"]] = m
            self.assertEqual(ms[c3["id"]]["reason"], "superseded", ms[c3["id"]])
            for n in ("trigger-once", "status-final", "one-results-comment", "comment-to-start",
                      "no-secret", "no-process", "no-lock", "no-deployment"):
                self.assertTrue(res[n]["ok"], (n, res[n]))
            self.assertIn("0 stale pending", res["status-final"]["value"])
        finally:
            if d is not None:
                d.kill()
            f.stop()
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
