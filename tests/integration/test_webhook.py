"""POST /hook (docs/http.md, "Webhook") on the real daemon against the fake
forge: the signature is checked before anything else (401, no run), a
signed `!testme` goes through the same acceptance path as polling (one run
even when polling sees the same comment), the body is capped (413), a repo
that is not enrolled is ignored (202), and without a secret /hook is 404.

The set-up (fake forge, org, members, harness) is test_forge.ForgeTest's;
its tests are not run again here."""

import hashlib
import hmac
import http.client
import json
import os
import socket
import threading
import unittest

import test_forge
from fakeforge import format_rfc3339
from itest import WAIT, wait_for
from test_forge import REPO

SECRET = b"hook-secret-7b1f0c2d9e"


class WebhookTest(test_forge.ForgeTest):
    def setUp(self):
        super().setUp()
        self.secret_file = os.path.join(self.tmp, "hook-secret")
        fd = os.open(self.secret_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(SECRET + b"\n")

    def serve_hook(self, secret=True):
        text = self.config()
        if secret:
            text = text.replace("forge:\n", "forge:\n  webhook_secret_file: %s\n" % self.secret_file, 1)
        return self.daemon(config=text).start()

    def payload(self, comment, pr, repo=REPO, action="created"):
        owner, name = repo.split("/")
        return json.dumps({
            "action": action,
            "issue": {"id": pr, "number": pr, "state": "open",
                      "pull_request": {"merged": False}, "html_url": "x", "url": "x"},
            "comment": comment,
            "repository": {"id": 1, "full_name": repo, "name": name, "owner": {"login": owner}},
            "sender": comment["user"],
            "is_pull": True,
        }).encode()

    def post(self, d, body, sig=None, event="issue_comment", forgejo=False):
        headers = {"Content-Type": "application/json"}
        pre = "X-Forgejo-" if forgejo else "X-Gitea-"
        if event is not None:
            headers[pre + "Event"] = event
        if sig is True:
            sig = hmac.new(SECRET, body, hashlib.sha256).hexdigest()
        if sig is not None:
            headers[pre + "Signature"] = sig
        host, port = d.http_address().rsplit(":", 1)
        c = http.client.HTTPConnection(host, int(port), timeout=WAIT)
        try:
            c.request("POST", "/hook", body=body, headers=headers)
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def fake_comment(self, cid, pr=1, body="!testme"):
        """A comment the forge does not have: polling never sees it."""
        t = format_rfc3339(self.forge.now())
        return {"id": cid, "body": body, "user": {"id": 2, "login": "alice"},
                "created_at": t, "updated_at": t, "html_url": "x",
                "pull_request_url": "%s/%s/pulls/%d" % (self.forge.url, REPO, pr), "issue_url": ""}

    def run_dirs(self, d, cid):
        runs = os.path.join(d.state_dir, "runs")
        return [n for n in os.listdir(runs) if n.endswith("-c%d" % cid)] if os.path.isdir(runs) else []

    def test_wrong_or_missing_signature_is_401_and_nothing_runs(self):
        pr = self.forge.open_pr(REPO, user="alice")
        d = self.serve_hook()
        self.wait_first_poll()
        c = self.fake_comment(990001, pr)
        body = self.payload(c, pr)
        good = hmac.new(SECRET, body, hashlib.sha256).hexdigest()
        last = "0" if good[-1] != "0" else "1"
        for sig in (None, "0" * 64, hmac.new(b"other", body, hashlib.sha256).hexdigest(), "zz",
                    hmac.new(SECRET, body + b" ", hashlib.sha256).hexdigest(),
                    good[:-1] + last, good[:-2], good + "00"):
            status, text = self.post(d, body, sig=sig)
            self.assertEqual(status, 401, (sig, text))
        self.wait_polls(2)
        self.assertEqual(self.runs_of(d, 990001), [])
        self.assertEqual(self.run_dirs(d, 990001), [])
        self.assertEqual(self.counters(d)["hooks_refused"], 8)
        self.assertEqual(self.counters(d)["hooks"], 0)
        self.assertNotIn(SECRET.decode(), d.logtext())

    def test_signed_comment_runs_once_even_when_polling_sees_it(self):
        f = self.forge
        pr = f.open_pr(REPO, user="alice")
        d = self.serve_hook()
        self.wait_first_poll()
        c = f.comment(REPO, pr, "alice", "!testme")
        status, text = self.post(d, self.payload(c, pr), sig=True)
        self.assertIn(status, (200, 201), text)
        ans = json.loads(text)
        self.assertIn(ans["result"], ("accept", "duplicate"), ans)
        run = self.wait_run(d, c)
        if ans["result"] == "accept":
            self.assertEqual(ans["run"], run["id"])
        # Polling reads the same comment, and a redelivery comes: still one.
        self.wait_polls(2)
        status, text = self.post(d, self.payload(c, pr), sig=True, forgejo=True)
        self.assertEqual(status, 200, text)
        self.assertIn(json.loads(text)["result"], ("duplicate", "already-seen"))
        self.wait_polls(1)
        self.assertEqual(len(self.runs_of(d, c["id"])), 1)
        self.assertEqual(len(self.run_dirs(d, c["id"])), 1)
        self.assertEqual(len(self.starts()), 1)

    def test_hook_alone_runs_a_comment(self):
        f = self.forge
        pr = f.open_pr(REPO, user="alice")
        d = self.serve_hook()
        self.wait_first_poll()
        c = self.fake_comment(990002, pr)
        body = self.payload(c, pr)
        status, text = self.post(d, body, sig=hmac.new(SECRET, body, hashlib.sha256).hexdigest().upper())
        self.assertEqual(status, 201, text)
        run = self.wait_run(d, 990002)
        self.assertEqual(json.loads(text)["run"], run["id"])
        self.assertEqual(self.counters(d)["hook_triggers"], 1)

    def test_ignored_deliveries(self):
        f = self.forge
        pr = f.open_pr(REPO, user="alice")
        d = self.serve_hook()
        self.wait_first_poll()
        c = self.fake_comment(990003, pr)
        # Not enrolled, an edit, another event, a comment that is no trigger.
        cases = [(self.payload(c, pr, repo="org/other"), "issue_comment"),
                 (self.payload(c, pr, action="edited"), "issue_comment"),
                 (self.payload(c, pr), "push"),
                 (self.payload(self.fake_comment(990004, pr, "hello"), pr), "issue_comment")]
        for body, event in cases:
            status, text = self.post(d, body, sig=True, event=event)
            self.assertEqual(status, 202, (event, text))
            self.assertEqual(json.loads(text)["result"], "ignored")
        status, text = self.post(d, b"{not json", sig=True)
        self.assertEqual(status, 400, text)
        self.wait_polls(2)
        self.assertEqual(self.runs_of(d, 990003), [])
        self.assertEqual(self.starts(), [])

    def test_waiting_delivery_gets_503_when_the_daemon_stops(self):
        f = self.forge
        pr = f.open_pr(REPO, user="alice")
        d = self.serve_hook()
        self.wait_first_poll()
        f.fault(r"/pulls/%d$" % pr, "hang", count=None)
        c = self.fake_comment(990006, pr)
        got = {}

        def post():
            got["answer"] = self.post(d, self.payload(c, pr), sig=True)

        t = threading.Thread(target=post)
        t.start()
        wait_for(lambda: [r for r in f.requests if r["path"].endswith("/pulls/%d" % pr)],
                 what="the daemon asks the forge about the PR")
        d.stop()
        t.join(WAIT)
        self.assertFalse(t.is_alive())
        self.assertEqual(got["answer"][0], 503, got)
        self.assertEqual(self.run_dirs(d, 990006), [])

    def test_poll_latency_is_counted(self):
        d = self.serve_hook()
        self.wait_polls(2)
        c = self.counters(d)
        self.assertGreaterEqual(sum(c["forge_poll_latency"].values()), 2)
        self.assertEqual(list(c["forge_poll_latency"])[-1], "+Inf")

    def test_body_past_one_mib_is_413(self):
        d = self.serve_hook()
        host, port = d.http_address().rsplit(":", 1)
        n = 1024 * 1024 + 1
        s = socket.create_connection((host, int(port)), timeout=WAIT)
        try:
            s.sendall(b"POST /hook HTTP/1.1\r\nHost: x\r\nX-Gitea-Event: issue_comment\r\n"
                      b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % n)
            try:
                s.sendall(b"x" * n)
            except OSError:
                pass
            data = b""
            while b"\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        finally:
            s.close()
        self.assertTrue(data.startswith(b"HTTP/1.1 413"), data[:80])
        # Exactly 1 MiB is taken (and refused for its signature).
        body = b"x" * (1024 * 1024)
        status, _ = self.post(d, body, sig=True)
        self.assertEqual(status, 400)

    def test_no_secret_is_404(self):
        d = self.serve_hook(secret=False)
        c = self.fake_comment(990005)
        status, _ = self.post(d, self.payload(c, 1), sig=True)
        self.assertEqual(status, 404)


# ForgeTest's own tests run in test_forge.py, not here.
for _name in dir(test_forge.ForgeTest):
    if _name.startswith("test_"):
        setattr(WebhookTest, _name, None)


if __name__ == "__main__":
    unittest.main()
