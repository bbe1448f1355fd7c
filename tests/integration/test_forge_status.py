"""Which run's commit status stands on a commit (docs/forge.md,
"Reporting"), with the real daemon and the fake forge: a run's final status
is held back by a newer run of the same commit (accepted later) that is
queued, running, or finished after it started, whatever order the runs end
in or are caught up with at start; a newer run that never started
(superseded) holds nothing back, nor does a run on another commit (after a
push).

The set-up is test_forge.ForgeTest's (its helpers, not its tests: see
load_tests), with a harness that waits for a gate file per run, so the test
decides when each run ends."""

import json
import os
import signal
import time
import unittest

import test_forge
from itest import WAIT, wait_for
from test_forge import PUBLIC_URL, REPO

# The harness: records start/end like test_forge's, then waits (bounded) for
# the file gates/<run id> next to $FORGE_RECORD, then writes a complete
# results.json and exits 0.
GATED_HARNESS = r"""
import json, os, sys, time
run = os.environ["CCCI_RUN_ID"]
def event(what, **kw):
    d = {"event": what, "run": run, "t": time.time()}
    d.update(kw)
    fd = os.open(os.environ["FORGE_RECORD"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.write(fd, (json.dumps(d) + "\n").encode())
    os.close(fd)
event("start", env=dict(os.environ))
print("~~~ step install", flush=True)
gate = os.path.join(os.path.dirname(os.environ["FORGE_RECORD"]), "gates", run)
end = time.monotonic() + 120
while not os.path.exists(gate) and time.monotonic() < end:
    time.sleep(0.05)
pr = os.environ.get("CCCI_PR") or None
res = {
    "run": run, "recipe": os.environ.get("CCCI_RECIPE"), "pr": int(pr) if pr else None,
    "sha": os.environ.get("CCCI_SHA"),
    "tiers": {"install": {"status": "pass", "reason": "", "started_at": time.time(),
                          "duration_s": 0.1, "step": "install"}},
    "level": 1,
    "invariants": {"deploy_budget_ok": True, "teardown_clean": True, "secrets_clean": True},
}
with open(os.environ["CCCI_RESULTS_FILE"], "w") as f:
    json.dump(res, f)
event("end")
"""


def load_tests(loader, tests, pattern):
    """Only this module's tests, not the ForgeTest ones it inherits."""
    suite = unittest.TestSuite()
    for name in sorted(vars(StatusStandsTest)):
        if name.startswith("test_"):
            suite.addTest(StatusStandsTest(name))
    return suite


class StatusStandsTest(test_forge.ForgeTest):
    def setUp(self):
        super().setUp()
        with open(self.harness, "w") as fh:
            fh.write(GATED_HARNESS)
        self.gates = os.path.join(self.tmp, "gates")
        os.mkdir(self.gates)

    def open_gate(self, run_id):
        with open(os.path.join(self.gates, run_id), "w"):
            pass

    def url_of(self, run_id):
        return "%s/runs/%s" % (PUBLIC_URL, run_id)

    def seq(self, sha):
        """The commit's statuses as (state, run id) in the order posted."""
        return [(s["status"], s["target_url"].rsplit("/", 1)[-1]) for s in self.statuses(sha)]

    def test_push_while_a_run_runs_each_commit_gets_its_own_runs_status(self):
        f = self.forge
        pr = f.open_pr(REPO, user="alice", head_ref="feature")
        sha_x = f.pr(REPO, pr)["head"]["sha"]
        d = self.serve()
        self.wait_first_poll()

        ca = f.comment(REPO, pr, "alice", "!testme")
        a = self.wait_run(d, ca, state="running")
        self.assertEqual(a["sha"], sha_x)
        self.wait_status(sha_x, "pending")

        # A push while A runs, then a !testme at the new head: B waits for
        # the PR's domain behind A.
        sha_y = f.push(REPO, pr)
        self.assertNotEqual(sha_y, sha_x)
        cb = f.comment(REPO, pr, "alice", "!testme")
        b = self.wait_run(d, cb, state=None)
        self.assertEqual(b["sha"], sha_y)
        self.assertGreater(b["number"], a["number"])
        self.wait_status(sha_y, "pending")

        # A ends: its commit gets A's final status (B, on another commit,
        # does not hold it back), B's commit keeps B's pending.
        self.open_gate(a["id"])
        self.wait_run(d, ca)
        wait_for(lambda: ("success", a["id"]) in self.seq(sha_x), what="A's success on X")
        self.wait_run(d, cb, state="running")
        self.assertEqual(self.seq(sha_x), [("pending", a["id"]), ("success", a["id"])])
        self.assertEqual(self.seq(sha_y), [("pending", b["id"])])

        # While B runs, a third !testme on the same head: C, newer, on B's
        # commit. B's final status is held back (C's pending stands), and
        # C's final status is the commit's at the end.
        cc = f.comment(REPO, pr, "alice", "!testme")
        c = self.wait_run(d, cc, state=None)
        self.assertEqual(c["sha"], sha_y)
        wait_for(lambda: ("pending", c["id"]) in self.seq(sha_y), what="C's pending on Y")
        self.open_gate(b["id"])
        self.wait_run(d, cb)
        self.wait_run(d, cc, state="running")
        wait_for(lambda: self.outbox_backlog(d) == 0, what="the outbox to empty")
        self.assertEqual(self.seq(sha_y), [("pending", b["id"]), ("pending", c["id"])])
        self.assertIn("status not posted: the status of %s is newer run %s's"
                      % (sha_y[:12], c["id"]), d.logtext())
        self.open_gate(c["id"])
        self.wait_run(d, cc)
        wait_for(lambda: ("success", c["id"]) in self.seq(sha_y), what="C's success on Y")
        wait_for(lambda: self.outbox_backlog(d) == 0, what="the outbox to empty")
        self.wait_polls(2)
        self.assertEqual(self.seq(sha_y),
                         [("pending", b["id"]), ("pending", c["id"]), ("success", c["id"])])
        self.assertEqual(self.seq(sha_x), [("pending", a["id"]), ("success", a["id"])])
        for run, sha in ((a, sha_x), (c, sha_y)):
            self.assertIn("L1", [s for s in self.statuses(sha)
                                 if s["target_url"] == self.url_of(run["id"])][-1]["description"])
        # Every finished run was reported once (no retry of a held status).
        for run in (a, b, c):
            self.assertTrue(os.path.exists(os.path.join(d.state_dir, "runs", run["id"],
                                                         "forge-reported")), run["id"])
        self.assert_fake_clean()

    def test_newer_run_of_a_commit_wins_when_both_are_caught_up_with_at_start(self):
        """Two PRs with the same head commit, a !testme on each in the same
        second: comment ids 99 and 100, so the older run's id (…-c99) sorts
        after the newer one's (…-c100) and the start-up catch-up meets the
        newer run first. Both runs end during the daemon's shutdown_grace,
        after the bot stopped (docs/forge.md: reported at the next start)."""
        f = self.forge
        pr1 = f.open_pr(REPO, user="alice", head_ref="one")
        sha = f.pr(REPO, pr1)["head"]["sha"]
        pr2 = f.open_pr(REPO, user="alice", head_ref="two", head_sha=sha)
        self.assertEqual(f.pr(REPO, pr2)["head"]["sha"], sha)
        # Comments read by the first poll (baseline) use ids up to 98.
        issue = f.open_issue(REPO, user="alice")
        while True:
            last = f.comment(REPO, issue, "alice", "chatter")["id"]
            self.assertLessEqual(last, 98, "ids were past 98 already")
            if last == 98:
                break
        cfg = self.config(extra="shutdown_grace: %ds\n" % (WAIT * 2))
        d = self.daemon(config=cfg)
        d.start()
        self.wait_first_poll()
        wait_for(lambda: d.status()["forge"].get("self_check") == "ok", what="self_check ok")
        self.wait_polls(1)

        second = int(f.now())
        ca = f.comment(REPO, pr1, "alice", "!testme", created_at=second)
        cb = f.comment(REPO, pr2, "alice", "!testme", created_at=second)
        self.assertEqual((ca["id"], cb["id"]), (99, 100))
        a = self.wait_run(d, ca, state="running")
        b = self.wait_run(d, cb, state="running")
        self.assertGreater(b["number"], a["number"], "accepted in comment order")
        self.assertGreater(a["id"], b["id"], "the older run's id sorts after the newer one's")
        # (A's pending may be replaced by B's while it waits in the outbox.)
        wait_for(lambda: ("pending", b["id"]) in self.seq(sha), what="B's pending")
        wait_for(lambda: self.outbox_backlog(d) == 0, what="the outbox to empty")

        # The daemon stops: the bot first, then both runs end in the grace.
        d.send(signal.SIGTERM)
        d.wait_log("stopping (SIGTERM)")
        time.sleep(0.5)
        self.open_gate(a["id"])
        self.open_gate(b["id"])
        self.assertEqual(d.proc.wait(WAIT), 0, d.logtext())
        d.log.close()
        for run in (a, b):
            rdir = os.path.join(d.state_dir, "runs", run["id"])
            with open(os.path.join(rdir, "meta.json")) as fh:
                meta = json.load(fh)
            self.assertEqual((meta["state"], meta["reason"]), ("finished", "success"), meta)
            self.assertFalse(os.path.exists(os.path.join(rdir, "forge-reported")),
                             "%s was reported before the stop" % run["id"])
        self.assertEqual({s for s, _ in self.seq(sha)}, {"pending"})

        # The next start catches up with both: the newer run's status is
        # the commit's, posted last.
        d2 = self.daemon(config=cfg)
        d2.start()
        wait_for(lambda: len(self.results_comments(pr1)) == 1 and len(self.results_comments(pr2)) == 1,
                 what="both results comments")
        wait_for(lambda: self.outbox_backlog(d2) == 0, what="the outbox to empty")
        self.wait_polls(2)
        ss = self.seq(sha)
        self.assertEqual(ss[-1], ("success", b["id"]), ss)
        self.assertNotIn(("success", a["id"]), ss)
        self.assertIn("status not posted: the status of %s is newer run %s's"
                      % (sha[:12], b["id"]), d2.logtext())
        for run in (a, b):
            self.assertTrue(os.path.exists(os.path.join(d2.state_dir, "runs", run["id"],
                                                        "forge-reported")), run["id"])
        # Reported once: another start posts nothing more.
        d2.stop()
        n = len(self.statuses(sha))
        d3 = self.daemon(config=cfg)
        d3.start()
        self.wait_polls(2)
        self.assertEqual(len(self.statuses(sha)), n)
        self.assert_fake_clean()

    def test_a_run_superseded_after_a_push_does_not_hold_back_the_running_one(self):
        """A runs on X, B is a second !testme on X waiting behind it, then a
        push and a !testme on Y (C) supersede B. B never started: it posts
        `error` "ccci: superseded" on X but holds nothing back, so X ends
        with A's final status, Y with C's."""
        f = self.forge
        pr = f.open_pr(REPO, user="alice")
        sha_x = f.pr(REPO, pr)["head"]["sha"]
        d = self.serve()
        self.wait_first_poll()
        ca = f.comment(REPO, pr, "alice", "!testme")
        a = self.wait_run(d, ca, state="running")
        cb = f.comment(REPO, pr, "alice", "!testme")
        b = self.wait_run(d, cb, state=None)
        self.assertEqual(b["sha"], sha_x)
        self.assertIn(b["state"], ("queued", "waiting-lock"), b)
        wait_for(lambda: ("pending", b["id"]) in self.seq(sha_x), what="B's pending")
        sha_y = f.push(REPO, pr)
        cc = f.comment(REPO, pr, "alice", "!testme")
        done = self.wait_run(d, cb)
        self.assertEqual(done["reason"], "superseded", done)
        c = self.wait_run(d, cc, state=None)
        self.assertEqual(c["sha"], sha_y)
        self.assertEqual(done["trigger"].get("superseded_by"), c["id"], done["trigger"])
        wait_for(lambda: ("error", b["id"]) in self.seq(sha_x), what="B's superseded status")
        superseded = [s for s in self.statuses(sha_x) if s["target_url"] == self.url_of(b["id"])]
        self.assertEqual(superseded[-1]["description"], "ccci: superseded")

        self.open_gate(a["id"])
        self.wait_run(d, ca)
        wait_for(lambda: self.seq(sha_x)[-1] == ("success", a["id"]),
                 what="A's success last on X: %s" % self.seq(sha_x))
        self.open_gate(c["id"])
        self.wait_run(d, cc)
        wait_for(lambda: self.seq(sha_y)[-1:] == [("success", c["id"])],
                 what="C's success on Y: %s" % self.seq(sha_y))
        wait_for(lambda: self.outbox_backlog(d) == 0, what="the outbox to empty")
        self.wait_polls(2)
        self.assertEqual(self.seq(sha_x)[-1], ("success", a["id"]))
        self.assertEqual(self.seq(sha_y), [("pending", c["id"]), ("success", c["id"])])
        self.assert_fake_clean()


if __name__ == "__main__":
    unittest.main()
