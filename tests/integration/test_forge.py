"""The forge side of the real daemon (docs/forge.md) against the fake
Gitea/Forgejo (fakeforge.py): `!testme` comments found by polling, the
trigger grammar, authorisation, exactly-once acceptance across forge faults
and kill -9, the reactions, commit statuses and results comment posted back,
SIGHUP, and the token kept out of every log, reply and file.

Each test has its own fake forge (org `org`: the bot `ccci-bot` and member
`alice`; `mallory` is no member, `carol` is allowlisted), the enrolled repo
`org/recipe` polled every second (the minimum), capacity 2, and a harness
that records its environment and writes a complete results.json. Runs are
seen through the `ps` op (`trigger.kind == "forge"`, `trigger.comment_id`);
what the daemon wrote to the forge through the fake's statuses(),
comments_of(), reactions_of() and request log. Waits are bounded by WAIT; no
assert is about speed (the Retry-After checks are lower bounds)."""

import json
import os
import secrets
import signal
import sys
import time

from itest import WAIT, CcciTestCase, request, run_cli, wait_for
from fakeforge import FakeForge

PY = sys.executable
ORG = "org"
REPO = "org/recipe"
BOT = "ccci-bot"
CONTEXT = "ccci/testme"
MARKER = "<!-- ccci:results -->"
PUBLIC_URL = "https://ci.example.org"
COMMENTS_LIST = "GET /repos/{owner}/{repo}/issues/comments"

# The harness: appends {"event": "start"|"end", "run", "t", "env"} lines to
# $FORGE_RECORD (one write each), behaves as $FORGE_HARNESS_CTL says (a JSON
# object read at start: sleep, exit, wait_pending), writes a complete
# results.json. With wait_pending it waits (bounded) until the fake forge has
# the run's `pending` status, so the test can see pending-then-final without
# racing the outbox's "newer status replaces a waiting one".
HARNESS = r"""
import json, os, sys, time, urllib.parse, urllib.request
run = os.environ["CCCI_RUN_ID"]
ctl_path = os.environ.get("FORGE_HARNESS_CTL", "")
ctl = json.load(open(ctl_path)) if ctl_path and os.path.exists(ctl_path) else {}
def event(what, **kw):
    d = {"event": what, "run": run, "t": time.time()}
    d.update(kw)
    fd = os.open(os.environ["FORGE_RECORD"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.write(fd, (json.dumps(d) + "\n").encode())
    os.close(fd)
event("start", env=dict(os.environ))
print("harness: run %s sha %s pr %s quick %s" % (run, os.environ.get("CCCI_SHA"),
      os.environ.get("CCCI_PR"), os.environ.get("CCCI_QUICK")), flush=True)
print("~~~ step install", flush=True)
if ctl.get("wait_pending"):
    q = urllib.parse.urlencode({"repo": os.environ.get("FORGE_REPO", ""),
                                "sha": os.environ.get("CCCI_SHA", "")})
    end = time.monotonic() + 30
    while time.monotonic() < end:
        with urllib.request.urlopen(os.environ["FORGE_URL"] + "/_fake/statuses?" + q) as r:
            ss = json.load(r)
        if any(s["status"] == "pending" and s["target_url"].endswith("/runs/" + run) for s in ss):
            break
        time.sleep(0.05)
    else:
        print("harness: no pending status seen", flush=True)
time.sleep(ctl.get("sleep", 0.1))
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
sys.exit(ctl.get("exit", 0))
"""


class ForgeTest(CcciTestCase):
    def setUp(self):
        super().setUp()
        self.forge = FakeForge()
        self.forge.start()
        self.addCleanup(self.forge.stop)
        f = self.forge
        self.token = f.add_user(BOT)
        f.add_user("alice")
        f.add_user("mallory")
        f.add_user("carol")
        f.add_org(ORG, members=[BOT, "alice"])
        f.add_repo(REPO)
        self.token_file = os.path.join(self.tmp, "token")
        fd = os.open(self.token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(self.token + "\n")
        self.record = os.path.join(self.tmp, "record.jsonl")
        self.ctl = os.path.join(self.tmp, "harness-ctl.json")
        self.harness_ctl()
        self.harness = os.path.join(self.tmp, "harness.py")
        with open(self.harness, "w") as fh:
            fh.write(HARNESS)

    # -- set-up helpers -----------------------------------------------------

    def harness_ctl(self, **ctl):
        with open(self.ctl, "w") as fh:
            json.dump(ctl, fh)

    def config(self, public_url=True, extra="", min_free="0", repos=(REPO,), command=None):
        command = command or "%s, %s" % (PY, self.harness)
        text = (
            "min_free_bytes: %s\ncapacity: 2\nkill_grace: 2s\n"
            "harness:\n  command: [%s]\n  teardown_command: [/bin/true]\n"
            "  env: {FORGE_RECORD: %s, FORGE_HARNESS_CTL: %s, FORGE_URL: '%s', FORGE_REPO: %s}\n"
            "forge:\n  url: '%s'\n  token_file: %s\n  repos: [%s]\n  poll_interval: 1s\n"
            "  allowlist: [carol]\n"
            % (min_free, command, self.record, self.ctl, self.forge.url, REPO,
               self.forge.url, self.token_file, ", ".join(repos))
        )
        if public_url:
            text += "http:\n  listen: 127.0.0.1:0\n  public_url: '%s'\n" % PUBLIC_URL
        return text + extra

    def serve(self, **kw):
        d = self.daemon(config=self.config(**kw))
        return d.start()

    # -- observation helpers -----------------------------------------------

    def ps(self, d):
        r = request(d.socket, {"v": 1, "op": "ps"})
        self.assertTrue(r["ok"], r)
        return r["runs"]

    def forge_runs(self, d):
        return [r for r in self.ps(d) if (r.get("trigger") or {}).get("kind") == "forge"]

    def runs_of(self, d, comment_id):
        return [r for r in self.forge_runs(d) if r["trigger"].get("comment_id") == comment_id]

    def wait_run(self, d, comment, state="finished", timeout=WAIT):
        cid = comment["id"] if isinstance(comment, dict) else comment

        def found():
            rs = self.runs_of(d, cid)
            return rs and (state is None or rs[0]["state"] == state) and rs[0]

        return wait_for(found, timeout, "a %s forge run for comment %d" % (state or "any", cid))

    def records(self):
        try:
            with open(self.record) as fh:
                return [json.loads(line) for line in fh if line.strip()]
        except FileNotFoundError:
            return []

    def starts(self, run_id=None):
        return [r for r in self.records() if r["event"] == "start" and run_id in (None, r["run"])]

    def polls(self, ok=True, repo=REPO):
        path = "/api/v1/repos/%s/issues/comments" % repo
        return [r for r in self.forge.requests
                if r["template"] == COMMENTS_LIST and r["path"] == path
                and (not ok or r["status"] == 200)]

    def wait_first_poll(self, repo=REPO):
        wait_for(lambda: self.polls(repo=repo), what="the first poll of %s" % repo)

    def wait_polls(self, n=2, after=None, repo=REPO):
        """Wait for n polls answered 200 that the fake received after `after`
        (default: now): everything commented before was read by then."""
        t = time.time() if after is None else after
        wait_for(lambda: len([p for p in self.polls(repo=repo) if p["real_time"] > t]) >= n,
                 what="%d more polls of %s" % (n, repo))

    def bot_comments(self, n, repo=REPO):
        return [c for c in self.forge.comments_of(repo, n) if c["user"]["login"] == BOT]

    def results_comments(self, n, repo=REPO):
        return [c for c in self.bot_comments(n, repo) if MARKER in c["body"]]

    def statuses(self, sha, repo=REPO):
        return [s for s in self.forge.statuses(repo, sha) if s["context"] == CONTEXT]

    def wait_status(self, sha, state, count=1, repo=REPO):
        return wait_for(lambda: (len([s for s in self.statuses(sha, repo) if s["status"] == state]) >= count
                                 and self.statuses(sha, repo)),
                        what="%d %s status(es) on %s: %s" % (count, state, sha, self.statuses(sha, repo)))

    def eyes(self, comment_id):
        return [x for x in self.forge.reactions_of(comment_id)
                if x["content"] == "eyes" and x["user"]["login"] == BOT]

    def counters(self, d):
        return d.status()["counters"]

    def outbox_backlog(self, d):
        c = self.counters(d)
        if "outbox_backlog" in c:
            return c["outbox_backlog"]
        try:
            return len(os.listdir(os.path.join(d.state_dir, "outbox")))
        except FileNotFoundError:
            return 0

    def assert_token_kept_secret(self, d, tokens=None):
        tokens = tokens or [self.token]
        for tok in tokens:
            self._assert_token_absent(d, tok)
        for req in self.forge.requests:
            self.assertTrue(any(self.forge.sent_token(req, t) for t in tokens),
                            (req["method"], req["path"], req["auth"]))
            self.assertEqual(req["headers"].get("Authorization", "").split(" ")[0].lower(), "token",
                             req["headers"])

    def _assert_token_absent(self, d, tok):
        tokb = tok.encode()
        self.assertNotIn(tok, d.logtext(), "the token is in the daemon's log")
        for args in (("status",), ("status", "--json"), ("ps",), ("ps", "--json")):
            r = run_cli("-s", d.socket, *args)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertNotIn(tok, r.stdout + r.stderr, "the token is in `ccci %s`" % " ".join(args))
        self.assertNotIn(tok, json.dumps(d.status()))
        if d.proc.poll() is None:
            with open("/proc/%d/cmdline" % d.proc.pid, "rb") as fh:
                self.assertNotIn(tokb, fh.read())
        for root, _, files in os.walk(d.state_dir):
            for name in files:
                p = os.path.join(root, name)
                if not os.path.isfile(p) or os.path.islink(p):
                    continue
                with open(p, "rb") as fh:
                    self.assertNotIn(tokb, fh.read(), "the token is in %s" % p)
        for rec in self.records():
            self.assertNotIn(tok, json.dumps(rec), "the token reached the harness")
        for req in self.forge.requests:
            self.assertNotIn(tok, req["path"])
            self.assertNotIn(tok, json.dumps(req["query"]))
            self.assertNotIn(tokb, req["body"])

    def assert_fake_clean(self):
        self.assertEqual(self.forge.errors, [], "exceptions inside the fake forge")

    # -- tests ----------------------------------------------------------------

    def test_member_testme_runs_once_reports_and_edits_the_results_comment(self):
        f = self.forge
        self.harness_ctl(wait_pending=True)
        pr = f.open_pr(REPO, user="alice", head_ref="feature")
        sha = f.pr(REPO, pr)["head"]["sha"]
        d = self.serve()
        self.wait_first_poll()
        forge = d.status().get("forge")
        self.assertIsInstance(forge, dict, "status has no forge object")
        self.assertEqual(forge.get("bot"), BOT, forge)
        self.assertIn(f.url, json.dumps(forge.get("url")))
        self.assertIn(REPO, json.dumps(forge.get("repos")))
        wait_for(lambda: d.status()["forge"].get("self_check") == "ok",
                 what="self_check ok: %s" % d.status().get("forge"))
        self.assertEqual(d.status()["problems"], [])
        self.assertTrue(any(r["template"] == "GET /user" for r in f.requests))
        self.assertTrue(any(r["path"] == "/api/v1/orgs/%s/members/%s" % (ORG, BOT) for r in f.requests))

        c1 = f.comment(REPO, pr, "alice", "!testme")
        run1 = self.wait_run(d, c1)
        self.assertEqual(run1["reason"], "success", run1)
        self.assertEqual(run1["sha"], sha)
        self.assertEqual(run1["pr"], pr)
        self.assertEqual(run1["repo"], REPO)
        self.assertEqual(run1["ref"], "feature")
        self.assertFalse(run1["quick"])
        self.assertTrue(run1["id"].endswith("-c%d" % c1["id"]), run1["id"])
        trig = run1["trigger"]
        self.assertEqual((trig["repo"], trig["pr"], trig["commenter"]), (REPO, pr, "alice"), trig)
        self.assertIn("comment_url", trig)
        starts = self.starts(run1["id"])
        self.assertEqual(len(starts), 1, starts)
        env = starts[0]["env"]
        self.assertEqual((env["CCCI_SHA"], env["CCCI_PR"], env["CCCI_QUICK"], env["CCCI_RUN_ID"]),
                         (sha, str(pr), "0", run1["id"]))
        self.assertEqual(env["CCCI_RECIPE"], "recipe")
        self.assertEqual(env["CCCI_REF"], "feature")

        # The eyes reaction, pending then success, one results comment.
        wait_for(lambda: self.eyes(c1["id"]), what="the eyes reaction")
        ss = self.wait_status(sha, "success")
        self.assertEqual([s["status"] for s in ss], ["pending", "success"], ss)
        for s in ss:
            self.assertEqual(s["target_url"], "%s/runs/%s" % (PUBLIC_URL, run1["id"]), s)
            self.assertEqual(s["creator"]["login"], BOT)
        self.assertEqual(ss[0]["description"], "ccci: queued")
        self.assertIn("L1", ss[1]["description"])
        rc = wait_for(lambda: self.results_comments(pr), what="the results comment")
        self.assertEqual(len(rc), 1, rc)
        first_body, rc_id = rc[0]["body"], rc[0]["id"]
        self.assertIn("%s/runs/%s" % (PUBLIC_URL, run1["id"]), first_body)
        self.assertEqual(len(self.bot_comments(pr)), 1)

        # A second !testme after the first run finished: a second run, the
        # results comment edited in place.
        c2 = f.comment(REPO, pr, "alice", "!testme")
        run2 = self.wait_run(d, c2)
        self.assertNotEqual(run2["id"], run1["id"])
        self.assertEqual(run2["reason"], "success", run2)
        wait_for(lambda: any(s["status"] == "success" and s["target_url"].endswith(run2["id"])
                             for s in self.statuses(sha)), what="run 2's success status")
        wait_for(lambda: run2["id"] in self.results_comments(pr)[0]["body"],
                 what="the results comment edited for run 2")
        rc = self.results_comments(pr)
        self.assertEqual([c["id"] for c in rc], [rc_id])
        self.assertEqual(len(self.bot_comments(pr)), 1, self.bot_comments(pr))
        self.assertTrue(any(r["method"] == "PATCH" and r["path"].endswith("/issues/comments/%d" % rc_id)
                            for r in f.requests))
        posts = [r for r in f.requests
                 if r["method"] == "POST" and r["path"] == "/api/v1/repos/%s/issues/%d/comments" % (REPO, pr)]
        self.assertEqual(len(posts), 1, "the results comment was created more than once")
        wait_for(lambda: self.eyes(c2["id"]), what="the eyes reaction on the second comment")
        self.assertEqual([s["status"] for s in self.statuses(sha)],
                         ["pending", "success", "pending", "success"])

        # Exactly once: more polls change nothing.
        self.wait_polls(3)
        self.assertEqual(len(self.runs_of(d, c1["id"])), 1)
        self.assertEqual(len(self.runs_of(d, c2["id"])), 1)
        self.assertEqual(len(self.forge_runs(d)), 2)
        self.assertEqual(len(self.starts()), 2)
        c = self.counters(d)
        self.assertEqual(c.get("forge_triggers"), 2, c)
        self.assertGreaterEqual(c.get("forge_polls", 0), 3, c)
        self.assertGreater(c.get("forge_requests", 0), c.get("forge_polls", 0), c)
        self.assertEqual(c.get("forge_unauthorised"), 0, c)
        self.assertEqual(c.get("outbox_backlog"), 0, c)
        self.assertGreaterEqual(c.get("outbox_sent", 0), 7, c)  # 2 eyes, 4 statuses, create + edit
        self.assertEqual(len(self.eyes(c1["id"])), 1)
        self.assertIn("run=%s" % run1["id"], d.logtext())
        self.assert_token_kept_secret(d)
        self.assert_fake_clean()

    # -- the harness's results.json shape (docs/results.schema.json) ---------

    def sh_harness(self, results, then="exit 0", steps=("deploy",), artifacts=()):
        """A tiny sh harness: a step marker and a line per step in `steps`,
        one deploy counted, the files `artifacts` (run-dir-relative) saved,
        the new-shape results.json written (atomically), then `then` (a
        stopped harness exits 143)."""
        src = os.path.join(self.tmp, "results-src.json")
        with open(src, "w") as fh:
            json.dump(results, fh)
        path = os.path.join(self.tmp, "harness.sh")
        body = "".join("echo '~~~ step %s'\necho 'in %s'\n" % (st, st) for st in steps)
        for a in artifacts:
            body += ("mkdir -p \"$(dirname \"$CCCI_RESULTS_FILE\")/%s\" && "
                     "echo x > \"$(dirname \"$CCCI_RESULTS_FILE\")/%s\"\n"
                     % (os.path.dirname(a), a))
        with open(path, "w") as fh:
            fh.write("#!/bin/sh\ntrap 'exit 143' TERM\n%s"
                     "echo 1 > \"$CCCI_DEPLOYS_FILE\"\n"
                     "cp %s \"$CCCI_RESULTS_FILE.tmp\" && mv \"$CCCI_RESULTS_FILE.tmp\" \"$CCCI_RESULTS_FILE\"\n"
                     "%s\n" % (body, src, then))
        os.chmod(path, 0o755)
        return "/bin/sh, %s" % path

    def new_shape(self, tiers, level, **kw):
        r = {"version": 1, "run": "x", "recipe": "recipe", "repo": REPO, "pr": None, "sha": None,
             "ref": None, "domain": "recipe-pr1.example", "server": "default", "base_version": "1.0.0+1.0",
             "quick": False, "tiers": tiers, "level": level, "deploys": 1,
             "invariants": {"deploy_budget_ok": True, "teardown_clean": True, "secrets_clean": True},
             "error": None, "started_at": "2026-12-07T03:00:00Z", "duration_s": 42.1}
        r.update(kw)
        return r

    @staticmethod
    def tier(status, reason=None, duration=1.0, data_checked=None, step=None, artifacts=None):
        t = {"status": status, "reason": reason, "started_at": "2026-12-07T03:00:00Z",
             "duration_s": duration, "step": step}
        if data_checked is not None:
            t["data_checked"] = data_checked
        if artifacts is not None:
            t["artifacts"] = artifacts
        return t

    def explained_run(self, secret):
        """L2 capped by a skipped backup (its reason carries `secret`), the
        steps init(0) deploy(1) upgrade(2) install(3), the install's
        screenshot an artifact of the tier and of the run."""
        shot = "artifacts/install.png"
        tiers = {
            "deploy": self.tier("pass", step="deploy"),
            "upgrade": self.tier("pass", step="upgrade", data_checked=True),
            "install": self.tier("pass", step="install", artifacts=[shot, "../meta.json"]),
            "backup": self.tier("skip", "no backupbot label " + secret + "\nsee the docs"),
            "restore": self.tier("skip", "backup skipped", data_checked=False),
            "custom": self.tier("skip", "an earlier tier was skipped"),
        }
        return self.sh_harness(self.new_shape(tiers, "L2", level_name="upgrade",
                                              artifacts=[shot, "/etc/passwd"]),
                               steps=("deploy", "upgrade", "install"), artifacts=(shot,))

    def secret_config(self):
        # The explanation line escapes "_": a secret must be masked before
        # that, or its escaped form would slip past the whole comment's
        # redaction.
        secret = "s3cr3t_" + secrets.token_hex(8)
        secret_file = os.path.join(self.tmp, "app-secret")
        with open(secret_file, "w") as fh:
            fh.write(secret + "\n")
        return secret, "secret_files: [%s]\n" % secret_file

    def finished_body(self, d, pr):
        run = self.wait_run(d, self.forge.comment(REPO, pr, "alice", "!testme"))
        self.assertEqual(run["reason"], "success", run)
        body = wait_for(lambda: self.results_comments(pr), what="the results comment")[0]["body"]
        return run, body

    def test_results_comment_explains_the_level_and_links_tier_logs_and_artifacts(self):
        secret, extra = self.secret_config()
        cmd = self.explained_run(secret)
        pr = self.forge.open_pr(REPO, user="alice")
        d = self.serve(command=cmd, extra=extra)
        self.wait_first_poll()
        run, body = self.finished_body(d, pr)
        page = "%s/runs/%s" % (PUBLIC_URL, run["id"])
        lines = body.splitlines()
        # The explanation right under the headline; the blocking tier's
        # reason masked before it is cut to its first line and escaped.
        head = [i for i, ln in enumerate(lines) if ln.startswith("**ccci** run")][0]
        self.assertIn("level **L2** upgrade", lines[head])
        self.assertEqual(lines[head + 2],
                         "L2: backup skipped, no backupbot label \\*\\*\\*\\*\\*\\*\\*\\*", body)
        self.assertNotIn(secret, body)
        self.assertNotIn(secret.replace("_", "\\_"), body)
        self.assertNotIn("see the docs", lines[head + 2])
        # Each tier that ran links its step on the run page (#s<n>: n as in
        # logs/<n>-<name>.jsonl, 0 is init); a tier that did not run has none.
        self.assertIn("| tier | status | duration | reason | log |", body)
        rows = {r.split(" | ")[0][2:]: r for r in lines if r.startswith("| ") and not r.startswith("| tier")}
        self.assertTrue(rows["deploy"].endswith(" | [deploy](%s#s1) |" % page), rows["deploy"])
        self.assertTrue(rows["upgrade"].endswith(" | [upgrade](%s#s2) |" % page), rows["upgrade"])
        self.assertTrue(rows["install"].endswith(
            " | [install](%s#s3) · [install.png](%s/artifacts/install.png) |" % (page, page)),
            rows["install"])
        self.assertTrue(rows["backup"].endswith(" | - |"), rows["backup"])
        for r in rows.values():
            self.assertEqual(r.count(" | "), 4, r)  # five cells, whatever the reason
        # The run's artifacts, the unsafe paths dropped.
        self.assertIn("\nartifacts: [install.png](%s/artifacts/install.png)\n" % page, body)
        self.assertNotIn("passwd", body)
        self.assertNotIn("meta.json", body)
        self.assertTrue(os.path.exists(os.path.join(d.state_dir, "runs", run["id"], "artifacts", "install.png")))
        # `ccci show` prints the explanation and the artifacts.
        out = run_cli("-s", d.socket, "show", run["id"])
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("why              L2: backup skipped, no backupbot label", out.stdout)
        self.assertIn("artifacts/install.png", out.stdout)
        self.assert_fake_clean()

    def test_results_comment_without_public_url_links_the_listen_address(self):
        """SPEC 3: an unset http.public_url defaults to http://<http.listen>,
        with a warning that it is not reachable from outside."""
        secret, extra = self.secret_config()
        cmd = self.explained_run(secret)
        pr = self.forge.open_pr(REPO, user="alice")
        d = self.serve(command=cmd, extra=extra, public_url=False)
        self.wait_first_poll()
        run, body = self.finished_body(d, pr)
        page = "http://%s/runs/%s" % (d.http_address(), run["id"])
        self.assertIn("L2: backup skipped, no backupbot label", body)
        self.assertNotIn(secret, body)
        rows = {r.split(" | ")[0][2:]: r for r in body.splitlines()
                if r.startswith("| ") and not r.startswith("| tier")}
        self.assertTrue(rows["install"].endswith(
            " | [install](%s#s3) · [install.png](%s/artifacts/install.png) |" % (page, page)),
            rows["install"])
        self.assertTrue(rows["deploy"].endswith(" | [deploy](%s#s1) |" % page), rows["deploy"])
        self.assertIn("http.public_url is not set", d.logtext())
        self.assertIn("not reachable from outside", d.logtext())

    def test_results_comment_has_the_tier_table_and_the_level(self):
        f = self.forge
        secret = "s3cr3t-" + secrets.token_hex(8)
        secret_file = os.path.join(self.tmp, "app-secret")
        with open(secret_file, "w") as fh:
            fh.write(secret + "\n")
        # A secret with what the table escapes in it: masked before the
        # escaping, so no escaped form of it reaches the comment.
        piped = "p|pe`" + secrets.token_hex(8)
        piped_file = os.path.join(self.tmp, "piped-secret")
        with open(piped_file, "w") as fh:
            fh.write(piped + "\n")
        tiers = {  # file order is not run order
            "custom": self.tier("skip", "an earlier tier failed", 0),
            "install": self.tier("pass", None, 1.5),
            "deploy": self.tier("pass", "took " + piped, 75),
            "upgrade": self.tier("fail", "marker gone | after `redeploy` " + secret + "\nline 2", 3.25,
                                 data_checked=True),
            "backup": self.tier("skip", "an earlier tier failed", 0),
            "restore": self.tier("skip", "an earlier tier failed", 0, data_checked=False),
        }
        cmd = self.sh_harness(self.new_shape(tiers, "L1", level_name="install"))
        pr = f.open_pr(REPO, user="alice")
        sha = f.pr(REPO, pr)["head"]["sha"]
        d = self.serve(command=cmd, extra="secret_files: [%s, %s]\n" % (secret_file, piped_file))
        self.wait_first_poll()
        c = f.comment(REPO, pr, "alice", "!testme")
        run = self.wait_run(d, c)
        # The harness exited 0, but results.json says the upgrade failed.
        self.assertEqual(run["reason"], "failure", run)
        ss = self.wait_status(sha, "failure")
        self.assertEqual(ss[-1]["description"], "ccci: failure in upgrade (L1 install)")
        self.assertLessEqual(len(ss[-1]["description"].encode()), 140)
        body = wait_for(lambda: self.results_comments(pr), what="the results comment")[0]["body"]
        self.assertIn("**failure** · level **L1** install", body)
        self.assertIn("deploys 1", body)
        self.assertIn("%s/runs/%s" % (PUBLIC_URL, run["id"]), body)
        rows = [ln for ln in body.splitlines() if ln.startswith("| ") and not ln.startswith("| tier")]
        self.assertEqual([r.split(" | ")[0][2:] for r in rows],
                         ["deploy", "upgrade", "install", "backup", "restore", "custom"], body)
        self.assertIn("| tier | status | duration | reason |", body)
        self.assertIn("| deploy | pass | 1m15s | `took ********` |", body)
        for form in (piped, piped.replace("|", "\\|"), piped.replace("`", "'"),
                     piped.replace("|", "\\|").replace("`", "'"), piped[5:]):
            self.assertNotIn(form, body)
        self.assertIn("| install | pass | 1.5s |  |", body)
        up = rows[1]
        self.assertTrue(up.startswith("| upgrade | fail | 3.2s | `marker gone \\| after 'redeploy' "), up)
        self.assertNotIn(secret, body)
        self.assertIn("********", up)
        self.assertIn(" line 2` |", up)
        self.assertIn("| custom | skip | 0.0s | `an earlier tier failed` |", body)
        self.assert_fake_clean()

    def test_success_status_names_the_level(self):
        f = self.forge
        tiers = {t: self.tier("pass") for t in ("deploy", "upgrade", "install", "backup", "restore")}
        tiers["custom"] = self.tier("skip", "no tests/test_*.py")
        cmd = self.sh_harness(self.new_shape(tiers, "L3", level_name="backup and restore"))
        pr = f.open_pr(REPO, user="alice")
        sha = f.pr(REPO, pr)["head"]["sha"]
        d = self.serve(command=cmd)
        self.wait_first_poll()
        run = self.wait_run(d, f.comment(REPO, pr, "alice", "!testme"))
        self.assertEqual(run["reason"], "success", run)
        ss = self.wait_status(sha, "success")
        self.assertEqual(ss[-1]["description"], "ccci: L3 backup and restore")
        body = wait_for(lambda: self.results_comments(pr), what="the results comment")[0]["body"]
        self.assertIn("**success** · level **L3** backup and restore", body)
        self.assertIn("| custom | skip | 1.0s | `no tests/test_*.py` |", body)

    def test_cancelled_run_shows_no_level(self):
        f = self.forge
        tiers = {"deploy": self.tier("pass"), "upgrade": self.tier("pass"),
                 "install": self.tier("pass"), "backup": self.tier("cancelled", "stopped")}
        # results.json (with a level) is on disk before the run is cancelled.
        cmd = self.sh_harness(self.new_shape(tiers, "L2", level_name="upgrade"),
                              then="echo ready; sleep 60 & wait")
        pr = f.open_pr(REPO, user="alice")
        sha = f.pr(REPO, pr)["head"]["sha"]
        d = self.serve(command=cmd)
        self.wait_first_poll()
        c = f.comment(REPO, pr, "alice", "!testme")
        run = self.wait_run(d, c, state="running")
        wait_for(lambda: os.path.exists(os.path.join(d.state_dir, "runs", run["id"], "results.json")),
                 what="results.json written")
        self.assertEqual(run_cli("-s", d.socket, "cancel", run["id"]).returncode, 0)
        run = self.wait_run(d, c)
        self.assertEqual(run["reason"], "cancelled", run)
        ss = self.wait_status(sha, "error")
        self.assertEqual(ss[-1]["description"], "ccci: cancelled")
        body = wait_for(lambda: self.results_comments(pr), what="the results comment")[0]["body"]
        self.assertIn("**cancelled**", body)
        self.assertNotIn("level", body)
        self.assertNotIn("L2", body)
        # The table still says how far it got.
        self.assertIn("| backup | cancelled |", body)

    def test_non_member_gets_one_reply_and_allowlisted_quick_runs(self):
        f = self.forge
        pr_m = f.open_pr(REPO, user="mallory")
        pr_c = f.open_pr(REPO, user="carol")
        pr_a = f.open_pr(REPO, user="alice")
        d = self.serve(public_url=False)
        self.wait_first_poll()

        m1 = f.comment(REPO, pr_m, "mallory", "!testme")
        reply = wait_for(lambda: self.bot_comments(pr_m), what="the reply to a non-member")
        self.assertEqual(len(reply), 1, reply)
        self.assertNotIn(MARKER, reply[0]["body"])
        self.assertTrue(any(r["path"] == "/api/v1/orgs/%s/members/mallory" % ORG for r in f.requests))

        c = f.comment(REPO, pr_c, "carol", "!testme --quick")
        run = self.wait_run(d, c)
        self.assertEqual(run["reason"], "success", run)
        self.assertTrue(run["quick"])
        self.assertEqual(run["trigger"]["commenter"], "carol")
        env = self.starts(run["id"])[0]["env"]
        self.assertEqual(env["CCCI_QUICK"], "1")
        self.assertEqual(env["CCCI_PR"], str(pr_c))
        sha_c = f.pr(REPO, pr_c)["head"]["sha"]
        ss = self.wait_status(sha_c, "success")
        self.assertEqual(ss[-1]["target_url"], "http://%s/runs/%s" % (d.http_address(), run["id"]),
                         "without public_url the link is the listen address")
        wait_for(lambda: self.results_comments(pr_c), what="carol's results comment")

        # The same non-member again on the same PR: still one reply.
        m2 = f.comment(REPO, pr_m, "mallory", "!testme")
        sentinel = f.comment(REPO, pr_a, "alice", "!testme")
        self.wait_run(d, sentinel, state=None)
        self.wait_polls(3)
        self.assertEqual(len(self.bot_comments(pr_m)), 1, self.bot_comments(pr_m))
        self.assertEqual(self.runs_of(d, m1["id"]) + self.runs_of(d, m2["id"]), [])
        self.assertEqual(self.forge.reactions_of(m1["id"]) + self.forge.reactions_of(m2["id"]), [])
        self.assertEqual(self.statuses(f.pr(REPO, pr_m)["head"]["sha"]), [])
        self.assertGreaterEqual(self.counters(d).get("forge_unauthorised", 0), 1)
        self.assertEqual(len([ln for ln in d.logtext().splitlines() if "public_url" in ln]), 1,
                         "the missing public_url is warned about once")
        self.assert_fake_clean()

    def test_comments_that_must_not_trigger(self):
        f = self.forge
        pr1 = f.open_pr(REPO, user="alice")
        pr_old = f.open_pr(REPO, user="alice")
        pr_pos = f.open_pr(REPO, user="alice")
        pr_sent = f.open_pr(REPO, user="alice")
        prc = f.open_pr(REPO, user="alice")
        issue = f.open_issue(REPO, user="alice")
        # Before the first poll: a !testme just now and an old comment; the
        # forge's clock then moves on so the first poll's Date is later.
        before = f.comment(REPO, pr_old, "alice", "!testme")
        old = f.comment(REPO, pr_old, "alice", "hello", created_at=f.now() - 3600)
        f.advance(3)
        d = self.serve(public_url=False)
        self.wait_first_poll()

        # Read once as a harmless comment, then edited into a trigger.
        hi = f.comment(REPO, pr1, "alice", "hi")
        self.wait_polls(1)
        f.close_pr(REPO, prc)
        neg = [
            f.comment(REPO, pr1, "alice", "!testmexyz"),
            f.comment(REPO, pr1, "alice", "!testme foo"),
            f.comment(REPO, pr1, "alice", "please !testme"),
            f.comment(REPO, pr1, "alice", "!testme --quick now"),
            f.comment(REPO, pr1, "alice", "```\n!testme\n```"),
            f.comment(REPO, pr1, "alice", "look:\n```sh\n  !testme\n```\nok"),
            f.comment(REPO, issue, "alice", "!testme"),
            f.comment(REPO, prc, "alice", "!testme"),
            f.comment(REPO, pr1, BOT, "!testme"),
            f.edit_comment(REPO, hi["id"], "!testme"),
            f.edit_comment(REPO, old["id"], "!testme"),
            before,
            old,
        ]
        # Triggers: a trimmed line among others, then the sentinel.
        pos = f.comment(REPO, pr_pos, "alice", "Looks good.\n  !testme  \r\nthanks")
        sentinel = f.comment(REPO, pr_sent, "alice", "!testme")
        self.assertEqual(self.wait_run(d, pos)["reason"], "success")
        self.assertEqual(self.wait_run(d, sentinel)["reason"], "success")
        wait_for(lambda: self.eyes(sentinel["id"]), what="the sentinel's eyes")
        self.wait_polls(3)

        runs = self.forge_runs(d)
        self.assertEqual(sorted(r["trigger"]["comment_id"] for r in runs),
                         sorted([pos["id"], sentinel["id"]]), runs)
        self.assertEqual(len(self.starts()), 2)
        for c in neg:
            self.assertEqual(self.forge.reactions_of(c["id"]), [], "reaction on %r" % c["body"])
        for n in (pr1, pr_old, prc):
            self.assertEqual(self.statuses(f.pr(REPO, n)["head"]["sha"]), [], "status on PR %d" % n)
            self.assertEqual([c for c in self.bot_comments(n) if c["body"] != "!testme"], [],
                             "the bot commented on PR %d" % n)
        self.assertEqual(self.bot_comments(issue), [])
        # Nobody asked the forge about the closed PR's head on behalf of a run.
        self.assertEqual(self.counters(d).get("forge_triggers"), 2)
        self.assertEqual(self.counters(d).get("forge_unauthorised"), 0)
        self.assert_fake_clean()

    def test_comment_in_the_second_of_the_first_poll_never_runs(self):
        """SPEC 3: the first poll records every comment id it returns as seen,
        so a `!testme` made before enrolment never runs even when its
        `created_at` is the very second of that poll's `Date` (the forge's
        clock stands still until the first poll has been answered)."""
        f = self.forge
        pr_early = f.open_pr(REPO, user="alice")
        pr_sent = f.open_pr(REPO, user="alice")
        t0 = int(f.now()) + 1
        f.set_clock(t0, frozen=True)
        early = f.comment(REPO, pr_early, "alice", "!testme")
        self.assertEqual(early["created_at"], f._t(t0))
        d = self.serve(public_url=False)
        self.wait_first_poll()
        first = self.polls()[0]
        self.assertEqual(int(first["time"]), t0)
        f.set_clock(t0 + 2)
        sentinel = f.comment(REPO, pr_sent, "alice", "!testme")
        self.assertEqual(self.wait_run(d, sentinel)["reason"], "success")
        self.wait_polls(2)
        self.assertEqual(self.runs_of(d, early["id"]), [])
        self.assertEqual(self.forge.reactions_of(early["id"]), [])
        self.assertEqual(len(self.starts()), 1)
        self.assertEqual(self.counters(d).get("forge_triggers"), 1)
        self.assert_fake_clean()

    def test_forge_failures_then_recovery_trigger_runs_once(self):
        f = self.forge
        flaky = "org/flaky"
        f.add_repo(flaky)
        pr = f.open_pr(REPO, user="alice")
        sha = f.pr(REPO, pr)["head"]["sha"]
        pr2 = f.open_pr(flaky, user="alice")
        sha2 = f.pr(flaky, pr2)["head"]["sha"]
        d = self.serve(repos=(REPO, flaky))
        self.wait_first_poll()
        self.wait_first_poll(flaky)
        # org/recipe: 500 for three polls, then a 429 whose Retry-After is
        # longer than the backoff reached by then (8 s), then recovery.
        retry_after = 10
        comments = r"^/api/v1/repos/%s/issues/comments$"
        f.fault(comments % REPO, "status", count=3, method="GET", status=500)
        f.fault(comments % REPO, "429", count=1, method="GET", retry_after=retry_after)
        # org/flaky, meanwhile: bad answers and a reset connection.
        f.fault(comments % flaky, "malformed", count=1, method="GET")
        f.fault(comments % flaky, "oversized", count=1, method="GET")
        f.fault(comments % flaky, "reset", count=1, method="GET")
        # Writes fail too: the reaction twice, and the results comment's
        # answer is lost after it was created (the retry must find it by its
        # marker, not create a second one).
        f.fault(r"/repos/org/recipe/issues/comments/\d+/reactions$", "status", count=2, method="POST",
                status=502)
        f.fault(r"^/api/v1/repos/org/recipe/issues/%d/comments$" % pr, "reset_after", count=1,
                method="POST")
        # The outbox honours Retry-After too.
        f.fault(r"^/api/v1/repos/org/flaky/statuses/", "429", count=1, method="POST", retry_after=4)
        c = f.comment(REPO, pr, "alice", "!testme")
        c2 = f.comment(flaky, pr2, "alice", "!testme")
        run2 = self.wait_run(d, c2, timeout=WAIT * 2)
        self.assertEqual(run2["reason"], "success", run2)
        run = self.wait_run(d, c, timeout=WAIT * 2)
        self.assertEqual(run["reason"], "success", run)

        lst = self.polls(ok=False)
        codes = [r["status"] for r in lst]
        i = codes.index(500)
        self.assertEqual(codes[i:i + 5], [500, 500, 500, 429, 200], codes)
        # Retry-After was honoured: no poll before it ran out (a lower
        # bound, not a speed assert).
        gap = lst[i + 4]["real_time"] - lst[i + 3]["real_time"]
        self.assertGreaterEqual(gap, retry_after - 0.05,
                                "polled again %.2f s after a 429 with Retry-After: %d" % (gap, retry_after))
        posts = [r for r in f.requests if r["method"] == "POST" and r["path"].startswith("/api/v1/repos/org/flaky/statuses/")]
        self.assertEqual(posts[0]["status"], 429)
        gap = posts[1]["real_time"] - posts[0]["real_time"]
        self.assertGreaterEqual(gap, 4 - 0.05, "outbox retried %.2f s after a 429 with Retry-After: 4" % gap)
        kinds = [r["fault"] for r in self.polls(ok=False, repo=flaky)]
        self.assertEqual([k for k in kinds if k], ["malformed", "oversized", "reset"], kinds)

        wait_for(lambda: self.eyes(c["id"]), what="the eyes reaction after 502s")
        self.wait_status(sha, "success")
        self.wait_status(sha2, "success", repo=flaky)
        wait_for(lambda: self.outbox_backlog(d) == 0, what="the outbox to empty")
        rc = self.results_comments(pr)
        self.assertEqual(len(rc), 1, [x["body"] for x in self.bot_comments(pr)])
        self.assertEqual(len(self.bot_comments(pr)), 1)
        self.assertEqual(len(self.results_comments(pr2, flaky)), 1)

        self.wait_polls(3)
        self.wait_polls(1, repo=flaky)
        self.assertEqual(len(self.runs_of(d, c["id"])), 1)
        self.assertEqual(len(self.runs_of(d, c2["id"])), 1)
        self.assertEqual(len(self.forge_runs(d)), 2)
        self.assertEqual(len(self.starts()), 2)
        self.assertEqual([s["status"] for s in self.statuses(sha)].count("success"), 1)
        cnt = self.counters(d)
        # 3 x 500, the 429, malformed, oversized (libcurl may retry a reset
        # reused connection by itself).
        self.assertGreaterEqual(cnt.get("forge_poll_errors", 0), 6, cnt)
        self.assertGreaterEqual(cnt.get("outbox_errors", 0), 3, cnt)
        self.assertEqual(cnt.get("forge_triggers"), 2, cnt)
        self.assertEqual(d.status()["problems"], [])
        self.assert_fake_clean()

    def test_kill_after_acceptance_before_start_runs_once_after_restart(self):
        f = self.forge
        pr = f.open_pr(REPO, user="alice")
        sha = f.pr(REPO, pr)["head"]["sha"]
        # No free space is ever enough: triggers are accepted, none starts.
        d = self.serve(min_free="1024TiB")
        self.wait_first_poll()
        state_file = os.path.join(d.state_dir, "forge", "org", "recipe.json")
        wait_for(lambda: os.path.exists(state_file), what=state_file)
        self.wait_polls(1)
        with open(state_file, "rb") as fh:
            before = fh.read()
        c = f.comment(REPO, pr, "alice", "!testme")
        run = self.wait_run(d, c, state="queued")
        meta = os.path.join(d.state_dir, "runs", run["id"], "meta.json")
        self.assertTrue(os.path.exists(meta))
        self.assertEqual(run["sha"], sha)
        # A push after acceptance: the run keeps the SHA it pinned.
        f.push(REPO, pr)
        d.kill()
        self.assertEqual(self.starts(), [])
        # As if the kill came before the repo's state was saved: the comment
        # is read again after the restart; its run dir says it was accepted.
        with open(state_file, "wb") as fh:
            fh.write(before)

        restart = time.time()
        d2 = self.daemon(config=self.config())
        d2.start()
        done = self.wait_run(d2, c)
        self.wait_polls(1, after=restart)
        since = [p["query"].get("since", [""])[0] for p in self.polls() if p["real_time"] > restart]
        self.assertTrue(any(x and x <= c["created_at"] for x in since),
                        "the comment (%s) was not read again: since=%s" % (c["created_at"], since))
        self.assertEqual(done["id"], run["id"])
        self.assertEqual(done["reason"], "success", done)
        self.wait_status(sha, "success")
        wait_for(lambda: self.results_comments(pr), what="the results comment")
        wait_for(lambda: self.outbox_backlog(d2) == 0, what="the outbox to empty")
        self.wait_polls(3)
        self.assertEqual(len(self.runs_of(d2, c["id"])), 1)
        self.assertEqual(len(self.starts(run["id"])), 1)
        self.assertEqual(len(self.starts()), 1)
        self.assertEqual(self.starts()[0]["env"]["CCCI_SHA"], sha)
        self.assertEqual(done["sha"], sha)
        ss = [s["status"] for s in self.statuses(sha)]
        self.assertEqual(ss.count("success"), 1, ss)
        self.assertEqual(ss[-1], "success", ss)
        self.assertEqual(len(self.eyes(c["id"])), 1)
        self.assertEqual(len(self.results_comments(pr)), 1)
        self.assertEqual(len(self.bot_comments(pr)), 1)
        self.assert_token_kept_secret(d2)
        self.assert_fake_clean()

    def test_kill_after_run_end_before_status_post_reports_once_after_restart(self):
        f = self.forge
        pr = f.open_pr(REPO, user="alice")
        sha = f.pr(REPO, pr)["head"]["sha"]
        d = self.serve()
        self.wait_first_poll()
        # Every status post fails until after the kill.
        f.fault(r"^/api/v1/repos/org/recipe/statuses/", "status", count=None, method="POST", status=500)
        c = f.comment(REPO, pr, "alice", "!testme")
        run = self.wait_run(d, c)
        self.assertEqual(run["reason"], "success", run)
        finished = time.time()
        # The final status is in the outbox and being retried.
        wait_for(lambda: self.outbox_backlog(d) >= 1, what="the outbox to hold the report")
        wait_for(lambda: any(r["method"] == "POST" and "/statuses/" in r["path"] and r["real_time"] > finished
                             for r in f.requests), what="a status post after the run ended")
        self.assertEqual([s["status"] for s in self.statuses(sha)], [])
        d.kill()
        f.clear_faults()

        d2 = self.daemon(config=self.config())
        d2.start()
        ss = self.wait_status(sha, "success")
        self.assertEqual(ss[-1]["target_url"], "%s/runs/%s" % (PUBLIC_URL, run["id"]))
        wait_for(lambda: self.results_comments(pr), what="the results comment")
        wait_for(lambda: self.outbox_backlog(d2) == 0, what="the outbox to empty")
        self.wait_polls(3)
        ss = [s["status"] for s in self.statuses(sha)]
        self.assertEqual(ss.count("success"), 1, ss)
        self.assertEqual(ss[-1], "success", ss)
        self.assertLessEqual(ss.count("pending"), 1, ss)
        self.assertEqual(len(self.results_comments(pr)), 1)
        self.assertEqual(len(self.bot_comments(pr)), 1)
        self.assertEqual(len(self.runs_of(d2, c["id"])), 1)
        self.assertEqual(len(self.starts()), 1)
        self.assertEqual(self.runs_of(d2, c["id"])[0]["reason"], "success")
        self.assert_token_kept_secret(d2)
        self.assert_fake_clean()

    def test_sighup_reads_the_new_token_and_follows_the_repos(self):
        f = self.forge
        other = "org/other"
        f.add_repo(other)
        pr = f.open_pr(other, user="alice")
        d = self.serve()
        self.wait_first_poll()
        old = self.token
        # The token is rotated (the fake forgets the old one) and the repos
        # change: org/recipe out, org/other in.
        new = f.add_user(BOT, token=secrets.token_hex(20))
        with open(self.token_file, "w") as fh:
            fh.write(new + "\n")
        with open(d.config_path, "w") as fh:
            fh.write("state_dir: %s\nsocket: %s\n" % (d.state_dir, d.socket) + self.config(repos=(other,)))
        reloads = self.counters(d)["config_reloads"]
        t = time.time()
        d.send(signal.SIGHUP)
        wait_for(lambda: self.counters(d)["config_reloads"] > reloads, what="the reload")
        self.wait_first_poll(other)
        self.wait_polls(2, repo=other)
        t2 = self.polls(repo=other)[1]["real_time"]
        self.assertEqual([p for p in self.polls(ok=False) if p["real_time"] > t2], [],
                         "org/recipe is still polled")
        after = [r for r in f.requests if r["real_time"] > t]
        self.assertTrue(any(r["template"] == "GET /user" and r["status"] == 200 for r in after),
                        "no self-check after SIGHUP")
        self.assertTrue(all(f.sent_token(r, new) for r in self.polls(ok=False, repo=other)))
        c = f.comment(other, pr, "alice", "!testme")
        run = self.wait_run(d, c)
        self.assertEqual(run["reason"], "success", run)
        self.assertEqual(run["repo"], other)
        self.wait_status(f.pr(other, pr)["head"]["sha"], "success", repo=other)
        self.assertEqual(d.status()["problems"], [])
        repos = json.dumps(d.status()["forge"]["repos"])
        self.assertIn(other, repos)
        self.assertNotIn(REPO, repos)
        self.assertTrue(f.sent_token(f.requests[-1], new))
        self.assert_token_kept_secret(d, tokens=[old, new])
        self.assert_fake_clean()

    def test_each_repo_polls_on_its_own_period_with_a_random_phase(self):
        """Every enrolled repo is polled once per poll_interval (1 s here), on
        its own phase: consecutive polls of a repo are never back to back nor
        much later than the interval plus a slot (250 ms), and the repos'
        first polls are spread over the interval, not all at once."""
        repos = ["%s/p%d" % (ORG, i) for i in range(12)]
        for r in repos:
            self.forge.add_repo(r)
        d = self.serve(repos=repos)
        t0 = time.time()
        wait_for(lambda: all(len(self.polls(repo=r)) >= 5 for r in repos), what="5 polls of every repo")
        firsts = []
        for r in repos:
            times = [p["real_time"] for p in self.polls(repo=r)]
            firsts.append(times[0])
            gaps = [b - a for a, b in zip(times, times[1:])]
            self.assertGreaterEqual(min(gaps), 0.7, (r, gaps))
            # Generous above: a loaded CI machine delays timers.
            self.assertLessEqual(max(gaps), 2.5, (r, gaps))
        self.assertGreater(max(firsts) - min(firsts), 0.25, "every repo polled in the same slot")
        self.assertLess(min(firsts) - t0, 1.5)
        self.assertEqual(self.counters(d).get("forge_poll_errors", 0), 0)
        self.assert_fake_clean()

    def test_self_check_reports_a_bot_outside_the_org(self):
        f = self.forge
        f.remove_member(ORG, BOT)
        d = self.serve()
        self.wait_first_poll()  # polling still starts
        wait_for(lambda: d.status()["problems"], what="a problem in status")
        st = d.status()
        self.assertNotEqual(st["forge"].get("self_check"), "ok", st["forge"])
        self.assertIn("error forge:", d.logtext())
        # The fake answers a non-member asking about itself 404 (Gitea does).
        self.assertTrue(any(r["path"] == "/api/v1/orgs/%s/members/%s" % (ORG, BOT) and r["status"] == 404
                            for r in f.requests))
        self.assertNotIn(self.token, d.logtext())
        self.assert_fake_clean()

    # -- placement input: the head's tests/recipe_meta.yml --------------------

    POOL = "servers:\n  - name: a\n    capacity: 2\n    labels: [heavy]\n"
    META_PATH = "/api/v1/repos/%s/raw/tests/recipe_meta.yml" % REPO

    def meta_reads(self):
        return [r for r in self.forge.requests if r["path"] == self.META_PATH]

    def test_recipe_meta_is_read_at_the_pinned_head(self):
        """The bot reads tests/recipe_meta.yml at the head sha the PR
        lookup pinned (the raw endpoint's `ref`), after the PR and before
        acceptance, once; its placement keys reach meta.json."""
        f = self.forge
        pr = f.open_pr(REPO, user="alice", head_ref="feature",
                       files={"tests/recipe_meta.yml": "SERVER_LABELS: [heavy]\n"})
        sha = f.pr(REPO, pr)["head"]["sha"]
        f.set_files(REPO, f.repos[REPO]["branches"]["main"],
                    {"tests/recipe_meta.yml": "SERVER_LABELS: [other]\n"})
        d = self.serve(extra=self.POOL)
        self.wait_first_poll()
        c = f.comment(REPO, pr, "alice", "!testme")
        run = self.wait_run(d, c)
        self.assertEqual(run["reason"], "success", run)
        reads = self.meta_reads()
        self.assertEqual(len(reads), 1, reads)
        self.assertEqual(reads[0]["query"], {"ref": [sha]})
        self.assertEqual(reads[0]["status"], 200)
        self.assertEqual(reads[0]["method"], "GET")
        self.assertTrue(f.sent_token(reads[0], self.token))
        pulls = [r for r in f.requests if r["path"] == "/api/v1/repos/%s/pulls/%d" % (REPO, pr)]
        self.assertLess(pulls[0]["real_time"], reads[0]["real_time"])
        self.assertEqual(run["placement"]["labels"], ["heavy"], run)
        self.assertEqual(run["placement"].get("servers", []), [], run)
        self.assert_token_kept_secret(d)
        self.assert_fake_clean()

    def test_recipe_meta_missing_gives_a_run_placed_anywhere(self):
        f = self.forge
        pr = f.open_pr(REPO, user="alice", files={"README.md": "no tests/ here"})
        sha = f.pr(REPO, pr)["head"]["sha"]
        d = self.serve(extra=self.POOL)
        self.wait_first_poll()
        c = f.comment(REPO, pr, "alice", "!testme")
        run = self.wait_run(d, c)
        self.assertEqual(run["reason"], "success", run)
        reads = self.meta_reads()
        self.assertEqual([(r["query"], r["status"]) for r in reads], [({"ref": [sha]}, 404)])
        placement = run.get("placement") or {}
        self.assertEqual((placement.get("servers") or [], placement.get("labels") or []), ([], []), run)
        self.assert_fake_clean()

    def test_recipe_meta_failure_then_success_runs_once(self):
        """A 500 on the file, then a 429: the comment is read again after
        the backoff, as when the PR cannot be read; one run, one eyes
        reaction, one pending status, once the file is read."""
        f = self.forge
        pr = f.open_pr(REPO, user="alice",
                       files={"tests/recipe_meta.yml": "SERVERS: [a]\n"})
        sha = f.pr(REPO, pr)["head"]["sha"]
        d = self.serve(extra=self.POOL)
        self.wait_first_poll()
        f.fault(r"/raw/tests/recipe_meta\.yml$", "status", count=1, method="GET", status=500)
        f.fault(r"/raw/tests/recipe_meta\.yml$", "429", count=1, method="GET", retry_after=1)
        c = f.comment(REPO, pr, "alice", "!testme")
        run = self.wait_run(d, c, timeout=WAIT * 2)
        self.assertEqual(run["reason"], "success", run)
        self.assertEqual([r["status"] for r in self.meta_reads()], [500, 429, 200])
        self.wait_polls(2)
        self.assertEqual(len(self.runs_of(d, c["id"])), 1)
        self.assertEqual(len(self.starts()), 1)
        self.assertEqual(len(self.meta_reads()), 3)
        self.wait_status(sha, "success")
        self.assertEqual([s["status"] for s in self.statuses(sha)], ["pending", "success"])
        self.assertEqual(len(self.eyes(c["id"])), 1)
        self.assertIn("reading tests/recipe_meta.yml failed (HTTP 500)", d.logtext())
        self.assertEqual(self.counters(d).get("forge_triggers"), 1)
        self.assertEqual(run["placement"]["servers"], ["a"], run)
        self.assert_fake_clean()

    def test_recipe_meta_too_large_is_placed_anywhere_and_said(self):
        f = self.forge
        big = "# padding\n" * 7000  # 70000 bytes, past the 64 KiB limit
        pr = f.open_pr(REPO, user="alice", files={"tests/recipe_meta.yml": big})
        d = self.serve(extra=self.POOL)
        self.wait_first_poll()
        c = f.comment(REPO, pr, "alice", "!testme")
        run = self.wait_run(d, c)
        self.assertEqual(len(self.runs_of(d, c["id"])), 1)
        self.assertIn("tests/recipe_meta.yml at %s is 70000 bytes, over the 65536"
                      % f.pr(REPO, pr)["head"]["sha"][:12], d.logtext())
        placement = run.get("placement") or {}
        self.assertEqual((placement.get("servers") or [], placement.get("labels") or []), ([], []), run)
        self.assert_fake_clean()


if __name__ == "__main__":
    import unittest

    unittest.main()
