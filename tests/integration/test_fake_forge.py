"""The fake forge itself: every endpoint's answers against both forge specs
(Gitea 1.26 and Forgejo 12 swagger), pagination, `since`, membership and
auth answers, every fault kind, the clock, the request log, the control
endpoints and the command-line mode. Needs no ccci binary."""

import base64
import email.utils
import gzip
import http.client
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse

import fakeforge
import swagger_check
from fakeforge import FakeForge

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("CCCI_SOURCE_DIR", os.path.dirname(os.path.dirname(HERE)))
SPEC_NAMES = ("gitea-v1.26-swagger.json", "forgejo-v12-swagger.json")


# The real Gitea and Forgejo OpenAPI specs (copies of the project's
# shared/forge/ kept in the repo, so a clean clone checks against them).
SPEC_DIR = os.environ.get("CCCI_FORGE_SPECS") or os.path.join(SOURCE_DIR, "tests", "fixtures", "forge")
SPECS = [swagger_check.Spec(os.path.join(SPEC_DIR, n)) for n in SPEC_NAMES]
PR_SHA = "0123456789abcdef0123456789abcdef01234567"


class Resp:
    def __init__(self, status, headers, data):
        self.status = status
        self.headers = headers
        self.data = data
        try:
            self.json = json.loads(data) if data else None
        except ValueError:
            self.json = ValueError

    def header(self, name):
        return self.headers.get(name.lower())


class FakeForgeTest(unittest.TestCase):
    def setUp(self):
        self.f = FakeForge().start()
        self.addCleanup(self.f.stop)
        self.bot = self.f.add_user("ccci-bot")
        self.alice = self.f.add_user("alice")
        self.f.add_user("mallory")
        self.f.add_org("coop", members=["ccci-bot", "alice"])
        self.f.add_repo("coop/app")
        self.pr = self.f.open_pr("coop/app", head_sha=PR_SHA, user="alice", head_ref="feature")
        self.conn = None
        self.checked = set()  # (method, template) answered 2xx and validated

    def tearDown(self):
        if self.conn is not None:
            self.conn.close()
        self.assertEqual(self.f.errors, [])

    # -- helpers -----------------------------------------------------------

    def connect(self, timeout=10):
        port = urllib.parse.urlsplit(self.f.url).port
        return http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def call(self, method, path, body=None, token="bot", ctype="application/json",
             extra_statuses=(), check=True, conn=None):
        """One request on a kept-alive connection; the answer is checked
        against both specs unless check=False."""
        if token == "bot":
            token = self.bot
        headers = {}
        if token is not None:
            headers["Authorization"] = "token " + token
        if body is not None:
            if not isinstance(body, bytes):
                body = json.dumps(body).encode()
            if ctype:
                headers["Content-Type"] = ctype
        if conn is None:
            if self.conn is None:
                self.conn = self.connect()
            conn = self.conn
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        resp = Resp(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
        self.assertIsNotNone(resp.header("Date"))
        self.assertTrue(resp.header("Content-Type").startswith("application/json")
                        or (resp.status == 200 and "/raw/" in path), resp.header("Content-Type"))
        self.assertEqual(int(resp.header("Content-Length")), len(resp.data))
        if check and path.startswith("/api/v1/"):
            self.check_specs(method, path, resp, extra_statuses)
        return resp

    def check_specs(self, method, path, resp, extra_statuses=()):
        ctype = resp.header("Content-Type")
        raw = ctype == "application/octet-stream"
        if not raw:
            self.assertIsNot(resp.json, ValueError, resp.data[:200])
        bare = urllib.parse.urlsplit(path).path
        problems = []
        for spec in SPECS:
            problems += spec.check(method, bare, resp.status, resp.data if raw else resp.json,
                                   extra_statuses, content_type=ctype)
        self.assertEqual(problems, [])
        if 200 <= resp.status < 300:
            template, _ = SPECS[0].find_operation(method, bare[len("/api/v1"):])
            self.checked.add("%s %s" % (method, template))

    def comments_url(self, **query):
        return "/api/v1/repos/coop/app/issues/comments?" + urllib.parse.urlencode(query)

    # -- schema conformance ------------------------------------------------

    def test_every_endpoint_matches_both_specs(self):
        issue = self.f.open_issue("coop/app", user="alice")
        c1 = self.f.comment("coop/app", self.pr, "alice", "!testme")
        self.f.comment("coop/app", issue, "alice", "an issue comment")
        r = self.call("GET", "/api/v1/user")
        self.assertEqual(r.json["login"], "ccci-bot")
        self.assertEqual(self.call("GET", "/api/v1/orgs/coop/members/alice").status, 204)
        self.assertEqual(self.call("GET", "/api/v1/repos/coop/app").json["full_name"], "coop/app")
        r = self.call("GET", self.comments_url(limit=50, page=1))
        self.assertEqual(len(r.json), 2)
        self.assertEqual(self.call("GET", "/api/v1/repos/coop/app/issues/comments/%d"
                                   % c1["id"]).json["body"], "!testme")
        r = self.call("GET", "/api/v1/repos/coop/app/issues/%d/comments" % self.pr)
        self.assertEqual([c["id"] for c in r.json], [c1["id"]])
        r = self.call("POST", "/api/v1/repos/coop/app/issues/%d/comments" % self.pr,
                      {"body": "results"})
        self.assertEqual(r.status, 201)
        mine = r.json["id"]
        r = self.call("PATCH", "/api/v1/repos/coop/app/issues/comments/%d" % mine,
                      {"body": "results v2"})
        self.assertEqual(r.status, 200)
        self.assertIsNone(self.call("GET", "/api/v1/repos/coop/app/issues/comments/%d/reactions"
                                    % c1["id"]).json)  # Gitea's nil slice
        r = self.call("POST", "/api/v1/repos/coop/app/issues/comments/%d/reactions" % c1["id"],
                      {"content": "eyes"})
        self.assertEqual(r.status, 201)
        self.assertEqual(len(self.call("GET", "/api/v1/repos/coop/app/issues/comments/%d/reactions"
                                       % c1["id"]).json), 1)
        self.call("GET", "/api/v1/repos/coop/app/pulls/%d" % self.pr)
        self.f.close_pr("coop/app", self.pr, merged=True)
        r = self.call("GET", "/api/v1/repos/coop/app/pulls/%d" % self.pr)
        self.assertIsInstance(r.json["merge_commit_sha"], str)
        r = self.call("POST", "/api/v1/repos/coop/app/statuses/" + PR_SHA,
                      {"state": "pending", "context": "ccci/testme", "description": "queued",
                       "target_url": "http://ci.example/r/1"})
        self.assertEqual(r.status, 201)
        self.call("GET", "/api/v1/repos/coop/app/statuses/" + PR_SHA)
        self.call("GET", "/api/v1/repos/coop/app/commits/feature/statuses")
        self.f.set_files("coop/app", PR_SHA, {"tests/recipe_meta.yml": "SERVERS: [a]\n"})
        r = self.call("GET", "/api/v1/repos/coop/app/raw/tests/recipe_meta.yml?ref=" + PR_SHA)
        self.assertEqual(r.data, b"SERVERS: [a]\n")
        self.f.add_member("coop", "alice", public=True)  # the 303's target
        self.assertEqual(self.call("GET", "/api/v1/orgs/coop/public_members/alice").status, 204)
        routes = {"%s %s" % (m, t) for m, t, _ in fakeforge.ROUTES}
        self.assertEqual(routes - self.checked, set())

    def test_checker_rejects_broken_answers(self):
        """The validator is not a rubber stamp: wrong types, undeclared
        fields, bad timestamps and undeclared statuses are all reported."""
        comment = self.f.comment("coop/app", self.pr, "alice", "!testme")
        pr = self.f.pr("coop/app", self.pr)
        path = "/repos/coop/app/issues/%d/comments" % self.pr
        for spec in SPECS:
            self.assertEqual(spec.check("GET", path, 200, [comment]), [])
            for mutate in (
                lambda c: c.update(id=str(c["id"])),
                lambda c: c.update(pull_request_url=None),
                lambda c: c.update(created_at="2024-01-01 10:00:00"),
                lambda c: c.update(bogus=1),
                lambda c: c["user"].update(is_admin="no"),
                lambda c: c.update(id=2**63),
            ):
                broken = json.loads(json.dumps(comment))
                mutate(broken)
                self.assertNotEqual(spec.check("GET", path, 200, [broken]), [], broken)
            self.assertNotEqual(spec.check("GET", path, 418, []), [])
            self.assertNotEqual(spec.check("GET", "/repos/o/r/pulls/1", 200, None), [])
            bad = json.loads(json.dumps(pr))
            bad["head"]["sha"] = 7
            self.assertNotEqual(spec.check("GET", "/repos/o/r/pulls/1", 200, bad), [])
        # Fields of one forge only would fail the other spec.
        self.assertNotEqual(SPECS[0].check("GET", "/user", 200, {"login": "x", "pronouns": ""}), [])
        # Real forges add an undeclared "username" to every User; opt-in.
        f = FakeForge(compat_username=True).start()
        self.addCleanup(f.stop)
        user = json.loads(json.dumps(f._user_json(f.add_user("u") and "u")))
        self.assertEqual(user["username"], "u")
        for spec in SPECS:
            self.assertEqual(spec.check("GET", "/user", 200, user),
                             ["%s GET /user -> 200 $.username: property not declared in User"
                              % spec.name])

    def test_checker_wants_raw_files_as_bytes(self):
        path = "/repos/coop/app/raw/tests/recipe_meta.yml"
        for spec in SPECS:
            self.assertEqual(spec.check("GET", path, 200, b"x", content_type="application/octet-stream"), [])
            self.assertNotEqual(spec.check("GET", path, 200, {"x": 1}), [])
            self.assertNotEqual(spec.check("GET", path, 200, b"x", content_type="text/plain"), [])
            self.assertNotEqual(spec.check("GET", path, 500, b"x"), [])
            self.assertEqual(spec.check("GET", path, 404, {"message": "m", "url": "u"}), [])

    # -- raw files -----------------------------------------------------------

    def test_raw_file_at_a_ref(self):
        """GET /repos/{o}/{r}/raw/{filepath}?ref=: the bytes of the file in
        that commit's tree, by sha, branch or refs/heads/ name; the default
        branch without a ref; a pushed commit keeps the files it did not
        change; 404 (JSON) for a missing file, a directory or an unknown
        ref, and for a ref before the file was added."""
        url = "/api/v1/repos/coop/app/raw/tests/recipe_meta.yml"
        self.f.set_files("coop/app", PR_SHA, {"tests/recipe_meta.yml": b"SERVER_LABELS: [heavy]\n",
                                              "README.md": "hi"})
        r = self.call("GET", url + "?ref=" + PR_SHA)
        self.assertEqual((r.status, r.data), (200, b"SERVER_LABELS: [heavy]\n"))
        self.assertEqual(r.header("Content-Type"), "application/octet-stream")
        for ref in ("feature", "refs/heads/feature"):
            self.assertEqual(self.call("GET", url + "?ref=" + ref).data, b"SERVER_LABELS: [heavy]\n")
        new = self.f.push("coop/app", self.pr, files={"tests/recipe_meta.yml": "SERVERS: [b]\n"})
        self.assertEqual(self.call("GET", url + "?ref=" + new).data, b"SERVERS: [b]\n")
        self.assertEqual(self.call("GET", "/api/v1/repos/coop/app/raw/README.md?ref=" + new).data, b"hi")
        self.assertEqual(self.call("GET", url + "?ref=" + PR_SHA).data, b"SERVER_LABELS: [heavy]\n")
        gone = self.f.push("coop/app", self.pr, files={"tests/recipe_meta.yml": None})
        for target in (url + "?ref=" + gone, url, "/api/v1/repos/coop/app/raw/tests?ref=" + PR_SHA,
                       url + "?ref=" + "f" * 40, url + "?ref=nobranch",
                       "/api/v1/repos/coop/nothere/raw/x?ref=" + PR_SHA):
            r = self.call("GET", target)
            self.assertEqual(r.status, 404, target)
            self.assertEqual(set(r.json), {"message", "url"})
        self.assertEqual(self.f.files_at("coop/app"), {})
        self.f.set_files("coop/app", self.f.repos["coop/app"]["branches"]["main"],
                         {"a/b/c.txt": "deep"})
        self.assertEqual(self.call("GET", "/api/v1/repos/coop/app/raw/a/b/c.txt").data, b"deep")
        self.assertEqual(self.f.files_at("coop/app", gone), {"README.md": b"hi"})
        rec = [x for x in self.f.requests if x["path"].endswith("/raw/tests/recipe_meta.yml")]
        self.assertEqual(rec[0]["template"], "GET /repos/{owner}/{repo}/raw/{filepath}")
        self.assertEqual(rec[0]["query"], {"ref": [PR_SHA]})
        self.assertEqual(rec[0]["status"], 200)

    # -- auth and membership -----------------------------------------------

    def test_user_needs_a_valid_token(self):
        r = self.call("GET", "/api/v1/user", token=None, extra_statuses=(401,))
        self.assertEqual(r.status, 401)
        self.assertEqual(set(r.json), {"message", "url"})
        r = self.call("GET", "/api/v1/user", token="nope", extra_statuses=(401,))
        self.assertEqual(r.status, 401)
        r = self.call("GET", "/api/v1/user", token=self.alice)
        self.assertEqual(r.json["login"], "alice")
        # Bearer works like token.
        conn = self.connect()
        conn.request("GET", "/api/v1/user", headers={"Authorization": "Bearer " + self.bot})
        resp = conn.getresponse()
        self.assertEqual(json.loads(resp.read())["login"], "ccci-bot")
        conn.close()
        # Writes too.
        r = self.call("POST", "/api/v1/repos/coop/app/issues/%d/comments" % self.pr,
                      {"body": "x"}, token=None, extra_statuses=(401,))
        self.assertEqual(r.status, 401)
        self.assertEqual(self.f.comments_of("coop/app", self.pr), [])

    def test_membership_answers(self):
        m = "/api/v1/orgs/%s/members/%s"
        self.assertEqual(self.call("GET", m % ("coop", "alice")).status, 204)
        self.assertEqual(self.call("GET", m % ("coop", "mallory")).status, 404)
        self.assertEqual(self.call("GET", m % ("coop", "nobody")).status, 404)
        self.assertEqual(self.call("GET", m % ("nosuchorg", "alice")).status, 404)
        # The bot is not a member of `other`: Gitea redirects every check.
        self.f.add_org("other", members=["alice"])
        r = self.call("GET", m % ("other", "alice"))
        self.assertEqual(r.status, 303)
        self.assertEqual(r.header("Location"), "/api/v1/orgs/other/public_members/alice")
        self.assertEqual(r.data, b"")
        r = self.call("GET", r.header("Location"))
        self.assertEqual(r.status, 404)  # membership is private by default
        self.f.add_member("other", "alice", public=True)
        self.assertEqual(self.call("GET", "/api/v1/orgs/other/public_members/alice").status, 204)
        self.assertEqual(self.call("GET", m % ("other", "mallory")).status, 303)
        # Asking about yourself in an org you are not in: 404.
        self.assertEqual(self.call("GET", m % ("other", "ccci-bot")).status, 404)
        # A site admin gets real answers anywhere.
        admin = self.f.add_user("root", admin=True)
        self.assertEqual(self.call("GET", m % ("other", "alice"), token=admin).status, 204)
        self.assertEqual(self.call("GET", m % ("other", "mallory"), token=admin).status, 404)
        self.f.remove_member("coop", "alice")
        self.assertEqual(self.call("GET", m % ("coop", "alice")).status, 404)

    # -- comments listing --------------------------------------------------

    def test_comment_urls_tell_prs_from_issues(self):
        issue = self.f.open_issue("coop/app", user="alice")
        on_pr = self.f.comment("coop/app", self.pr, "alice", "!testme")
        on_issue = self.f.comment("coop/app", issue, "alice", "!testme")
        r = self.call("GET", self.comments_url(limit=50, page=1))
        by_id = {c["id"]: c for c in r.json}
        self.assertEqual(by_id[on_pr["id"]]["pull_request_url"],
                         "%s/coop/app/pulls/%d" % (self.f.url, self.pr))
        self.assertEqual(by_id[on_pr["id"]]["issue_url"], "")
        self.assertEqual(by_id[on_issue["id"]]["pull_request_url"], "")
        self.assertEqual(by_id[on_issue["id"]]["issue_url"],
                         "%s/coop/app/issues/%d" % (self.f.url, issue))
        self.assertTrue(by_id[on_pr["id"]]["html_url"].endswith("#issuecomment-%d" % on_pr["id"]))
        self.assertEqual(by_id[on_pr["id"]]["user"]["login"], "alice")

    def test_pagination_walks_to_the_end(self):
        t0 = 1_700_000_000
        self.f.set_clock(t0 + 1000, frozen=True)
        issue = self.f.open_issue("coop/app", user="alice")
        ids = []
        for i in range(120):
            n = self.pr if i % 3 else issue
            # Same-second comments are ordered by id.
            c = self.f.comment("coop/app", n, "alice", "c%d" % i, created_at=t0 + i // 2)
            ids.append(c["id"])
        # Follow Link rel="next".
        seen, path, pages = [], self.comments_url(limit=50, page=1), 0
        while path:
            r = self.call("GET", path)
            self.assertEqual(r.header("X-Total-Count"), "120")
            seen += [c["id"] for c in r.json]
            pages += 1
            links = dict(_parse_link(r.header("Link") or ""))
            path = links.get("next")
            if path:
                self.assertTrue(path.startswith(self.f.url + "/api/v1/"))
                path = path[len(self.f.url):]
        self.assertEqual(pages, 3)
        self.assertEqual(seen, ids)
        # By page number until a short page; past the end is [].
        seen = []
        for page in range(1, 10):
            r = self.call("GET", self.comments_url(limit=50, page=page))
            seen += [c["id"] for c in r.json]
            if len(r.json) < 50:
                break
        self.assertEqual(seen, ids)
        self.assertEqual(self.call("GET", self.comments_url(limit=50, page=9)).json, [])
        links = dict(_parse_link(self.call("GET", self.comments_url(limit=50, page=2))
                                 .header("Link")))
        self.assertEqual(set(links), {"next", "last", "first", "prev"})
        # Gitea's defaults: 30 a page, at most 50, page 1.
        self.assertEqual(len(self.call("GET", self.comments_url()).json), 30)
        self.assertEqual(len(self.call("GET", self.comments_url(limit=500)).json), 50)
        self.assertEqual(self.call("GET", self.comments_url(page=0, limit=5)).json[0]["id"], ids[0])

    def test_since_and_before(self):
        t0 = 1_700_000_000
        self.f.set_clock(t0 + 100, frozen=True)
        a = self.f.comment("coop/app", self.pr, "alice", "a", created_at=t0)
        b = self.f.comment("coop/app", self.pr, "alice", "b", created_at=t0 + 10)
        c = self.f.comment("coop/app", self.pr, "alice", "c", created_at=t0 + 20)

        def ids(**q):
            r = self.call("GET", self.comments_url(limit=50, page=1, **q))
            self.assertEqual(r.status, 200)
            return [x["id"] for x in r.json]

        def ts(epoch):
            return fakeforge.format_rfc3339(epoch)

        self.assertEqual(ids(since=ts(t0 + 10)), [b["id"], c["id"]])  # inclusive
        self.assertEqual(ids(since=ts(t0 + 11)), [c["id"]])
        self.assertEqual(ids(since="2023-11-14T22:13:30.999Z"), [b["id"], c["id"]])  # whole seconds
        self.assertEqual(ids(since=ts(t0 + 21)), [])
        self.assertEqual(ids(before=ts(t0 + 10)), [a["id"], b["id"]])  # inclusive too
        # An offset is fine when the "+" is percent-encoded (urlencode does)...
        self.assertEqual(ids(since="2023-11-15T00:13:30+02:00"), [b["id"], c["id"]])
        # ...a bare "+" decodes to a space and Gitea answers 422.
        r = self.call("GET",
                      "/api/v1/repos/coop/app/issues/comments?since=2023-11-15T00:13:30+02:00",
                      extra_statuses=(422,))
        self.assertEqual(r.status, 422)
        r = self.call("GET", self.comments_url(since="yesterday"), extra_statuses=(422,))
        self.assertEqual(r.status, 422)
        # An edit moves updated_at, not created_at: the comment shows up again.
        self.f.edit_comment("coop/app", a["id"], "a, edited")
        r = self.call("GET", self.comments_url(since=ts(t0 + 50)))
        self.assertEqual([x["id"] for x in r.json], [a["id"]])
        self.assertEqual(r.json[0]["created_at"], ts(t0))
        self.assertEqual(r.json[0]["updated_at"], ts(t0 + 100))
        # The same filters on one issue's comments.
        r = self.call("GET", "/api/v1/repos/coop/app/issues/%d/comments?since=%s"
                      % (self.pr, urllib.parse.quote(ts(t0 + 15))))
        self.assertEqual([x["id"] for x in r.json], [a["id"], c["id"]])

    def test_unknown_things_are_404(self):
        for method, path in [
            ("GET", "/api/v1/repos/coop/nope/issues/comments"),
            ("GET", "/api/v1/repos/coop/app/pulls/99"),
            ("GET", "/api/v1/repos/coop/app/issues/99/comments"),
            ("PATCH", "/api/v1/repos/coop/app/issues/comments/999"),
            ("POST", "/api/v1/repos/coop/app/issues/comments/999/reactions"),
        ]:
            body = {"body": "x", "content": "eyes"} if method != "GET" else None
            r = self.call(method, path, body)
            self.assertEqual(r.status, 404, path)
            self.assertEqual(set(r.json), {"message", "url"})
        # An issue is not a pull request.
        issue = self.f.open_issue("coop/app")
        self.assertEqual(self.call("GET", "/api/v1/repos/coop/app/pulls/%d" % issue).status, 404)
        # Paths and methods the fake does not serve.
        for method, path in [("GET", "/api/v1/nope"), ("DELETE", "/api/v1/user"),
                             ("GET", "/elsewhere")]:
            r = self.call(method, path, check=False)
            self.assertEqual(r.status, 404)
            self.assertIn("message", r.json)

    # -- pull requests -------------------------------------------------------

    def test_pull_request_fields(self):
        r = self.call("GET", "/api/v1/repos/coop/app/pulls/%d" % self.pr)
        pr = r.json
        self.assertEqual(pr["number"], self.pr)
        self.assertEqual(pr["state"], "open")
        self.assertFalse(pr["merged"])
        self.assertIsNone(pr["merged_at"])
        self.assertIsNone(pr["merge_commit_sha"])
        self.assertEqual(pr["head"]["sha"], PR_SHA)
        self.assertEqual(pr["head"]["ref"], "feature")
        self.assertEqual(pr["base"]["ref"], "main")
        self.assertEqual(pr["head"]["repo"]["full_name"], "coop/app")
        self.assertEqual(pr["user"]["login"], "alice")
        self.assertEqual(pr["html_url"], "%s/coop/app/pulls/%d" % (self.f.url, self.pr))
        new = self.f.push("coop/app", self.pr)
        self.assertEqual(self.call("GET", "/api/v1/repos/coop/app/pulls/%d" % self.pr)
                         .json["head"]["sha"], new)
        self.f.close_pr("coop/app", self.pr)
        pr = self.call("GET", "/api/v1/repos/coop/app/pulls/%d" % self.pr).json
        self.assertEqual(pr["state"], "closed")
        self.assertFalse(pr["merged"])
        self.assertIsNotNone(pr["closed_at"])
        self.f.reopen_pr("coop/app", self.pr)
        self.assertEqual(self.f.pr("coop/app", self.pr)["state"], "open")
        fork = self.f.open_pr("coop/app", user="mallory", head_repo="mallory/app")
        pr = self.call("GET", "/api/v1/repos/coop/app/pulls/%d" % fork).json
        self.assertEqual(pr["head"]["repo"]["full_name"], "mallory/app")
        self.assertTrue(pr["head"]["repo"]["fork"])

    # -- writes --------------------------------------------------------------

    def test_create_and_edit_comment(self):
        self.f.set_clock(1_700_000_000, frozen=True)
        url = "/api/v1/repos/coop/app/issues/%d/comments" % self.pr
        r = self.call("POST", url, {"body": "<!-- ccci -->\nresults"})
        self.assertEqual(r.status, 201)
        c = r.json
        self.assertEqual(c["user"]["login"], "ccci-bot")
        self.assertEqual(c["created_at"], "2023-11-14T22:13:20Z")
        self.assertEqual(c["created_at"], c["updated_at"])
        listed = self.call("GET", self.comments_url(limit=50, page=1)).json
        self.assertEqual([x["id"] for x in listed], [c["id"]])
        self.assertEqual(self.f.comments_of("coop/app", self.pr)[0]["body"],
                         "<!-- ccci -->\nresults")
        self.f.advance(60)
        patch = "/api/v1/repos/coop/app/issues/comments/%d" % c["id"]
        r = self.call("PATCH", patch, {"body": "results v2"})
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json["body"], "results v2")
        self.assertEqual(r.json["updated_at"], "2023-11-14T22:14:20Z")
        self.assertEqual(r.json["created_at"], "2023-11-14T22:13:20Z")
        self.f.advance(60)
        r = self.call("PATCH", patch, {"body": "results v2"})  # unchanged: no bump
        self.assertEqual(r.json["updated_at"], "2023-11-14T22:14:20Z")
        # Someone else's comment: 403 for an outsider.
        r = self.call("PATCH", patch, {"body": "hijack"}, token=self.f.users["mallory"]["token"])
        self.assertEqual(r.status, 403)
        # Binding errors are 422 (middleware, not in the specs).
        for body, ctype in [(b'{"body": ', "application/json"), ({}, "application/json"),
                            ({"body": ""}, "application/json"), ({"body": 5}, "application/json"),
                            ({"body": "x"}, "application/x-www-form-urlencoded"),
                            ({"body": "x"}, None), (b"[1]", "application/json")]:
            r = self.call("POST", url, body, ctype=ctype, extra_statuses=(422,))
            self.assertEqual(r.status, 422, (body, ctype))
            self.assertEqual(set(r.json), {"message", "url"})
        self.assertEqual(len(self.f.comments_of("coop/app", self.pr)), 1)
        # A form body that does carry `body` is accepted, as Gitea does.
        r = self.call("POST", url, b"body=plain", ctype="application/x-www-form-urlencoded")
        self.assertEqual(r.status, 201)

    def test_reactions(self):
        c = self.f.comment("coop/app", self.pr, "alice", "!testme")
        url = "/api/v1/repos/coop/app/issues/comments/%d/reactions" % c["id"]
        r = self.call("POST", url, {"content": "eyes"})
        self.assertEqual(r.status, 201)
        self.assertEqual(r.json["content"], "eyes")
        self.assertEqual(r.json["user"]["login"], "ccci-bot")
        self.assertEqual(self.call("POST", url, {"content": "eyes"}).status, 200)  # again
        self.assertEqual(self.call("POST", url, {"content": "eyes"}, token=self.alice).status, 201)
        self.assertEqual(self.call("POST", url, {"content": "shrug"}).status, 403)
        self.assertEqual([(x["user"]["login"], x["content"]) for x in self.f.reactions_of(c["id"])],
                         [("ccci-bot", "eyes"), ("alice", "eyes")])
        # A comment of another repo is not found through this one.
        self.f.add_repo("coop/other")
        n = self.f.open_pr("coop/other")
        other = self.f.comment("coop/other", n, "alice", "hi")
        r = self.call("POST", "/api/v1/repos/coop/app/issues/comments/%d/reactions" % other["id"],
                      {"content": "eyes"})
        self.assertEqual(r.status, 404)

    def test_commit_statuses(self):
        self.f.set_clock(1_700_000_000, frozen=True)
        url = "/api/v1/repos/coop/app/statuses/" + PR_SHA
        r = self.call("POST", url, {"state": "pending", "context": "ccci/testme",
                                    "description": "queued", "target_url": "http://ci/r/1"})
        self.assertEqual(r.status, 201)
        self.assertEqual(r.json["status"], "pending")  # "state" in, "status" out
        self.assertEqual(r.json["creator"]["login"], "ccci-bot")
        self.assertEqual(r.json["context"], "ccci/testme")
        self.f.advance(5)
        self.call("POST", url, {"state": "success", "context": "ccci/testme",
                                "description": "L2 upgrade"})
        r = self.call("GET", url)
        self.assertEqual([s["status"] for s in r.json], ["success", "pending"])  # newest first
        self.assertEqual(r.header("X-Total-Count"), "2")
        r = self.call("GET", url + "?sort=oldest")
        self.assertEqual([s["status"] for s in r.json], ["pending", "success"])
        r = self.call("GET", "/api/v1/repos/coop/app/commits/feature/statuses")
        self.assertEqual([s["status"] for s in r.json], ["success", "pending"])
        r = self.call("GET", "/api/v1/repos/coop/app/commits/%s/statuses" % PR_SHA)
        self.assertEqual(len(r.json), 2)
        self.assertEqual([s["status"] for s in self.f.statuses("coop/app", PR_SHA)],
                         ["pending", "success"])
        self.assertEqual(self.call("POST", url, {"state": "done"}).status, 400)
        r = self.call("POST", "/api/v1/repos/coop/app/statuses/" + "f" * 40, {"state": "pending"})
        self.assertEqual(r.status, 404)

    # -- HTTP behaviour ----------------------------------------------------

    def test_keep_alive(self):
        conn = self.connect()
        self.addCleanup(conn.close)
        self.call("GET", "/api/v1/user", conn=conn)
        sock = conn.sock
        for _ in range(5):
            self.assertEqual(self.call("GET", self.comments_url(limit=50), conn=conn).status, 200)
            self.call("POST", "/api/v1/repos/coop/app/issues/%d/comments" % self.pr,
                      {"body": "x" * 4000}, conn=conn)  # > 1 KiB: curl sends Expect
        self.assertIs(conn.sock, sock)

    def test_date_header_follows_the_fake_clock(self):
        self.f.set_clock(1_700_000_000, frozen=True)
        r = self.call("GET", "/api/v1/user")
        self.assertEqual(r.header("Date"), "Tue, 14 Nov 2023 22:13:20 GMT")
        self.f.advance(86400)
        r = self.call("GET", "/api/v1/user")
        self.assertEqual(r.header("Date"), "Wed, 15 Nov 2023 22:13:20 GMT")
        self.assertEqual(self.f.comment("coop/app", self.pr, "alice", "x")["created_at"],
                         "2023-11-15T22:13:20Z")
        # A running (not frozen) clock far from local time.
        self.f.set_clock(time.time() - 7 * 86400)
        r = self.call("GET", "/api/v1/user")
        forge_now = email.utils.parsedate_to_datetime(r.header("Date")).timestamp()
        self.assertLess(abs(forge_now - (time.time() - 7 * 86400)), 5)

    def test_utc_offset_in_timestamps(self):
        f = FakeForge(utc_offset=2 * 3600).start()
        self.addCleanup(f.stop)
        f.set_clock(1_700_000_000, frozen=True)
        c = f.comment("coop/app", f.open_pr("coop/app"), "alice", "x")
        self.assertEqual(c["created_at"], "2023-11-15T00:13:20+02:00")
        for spec in SPECS:
            self.assertEqual(spec.validate(c, {"$ref": "#/definitions/Comment"}), [])

    def test_request_recording(self):
        self.f.clear_requests()
        self.call("GET", self.comments_url(limit=50, page=1))
        self.call("POST", "/api/v1/repos/coop/app/issues/%d/comments" % self.pr, {"body": "hi"})
        self.call("GET", "/api/v1/user", token="wrong", extra_statuses=(401,))
        self.call("GET", "/api/v1/user", token=None, extra_statuses=(401,))
        recs = self.f.requests
        self.assertEqual(len(recs), 4)
        get, post, wrong, none = recs
        self.assertEqual(get["method"], "GET")
        self.assertEqual(get["path"], "/api/v1/repos/coop/app/issues/comments")
        self.assertEqual(get["query"], {"limit": ["50"], "page": ["1"]})
        self.assertEqual(get["template"], "GET /repos/{owner}/{repo}/issues/comments")
        self.assertEqual(get["status"], 200)
        self.assertEqual(get["auth"], "ccci-bot")
        self.assertTrue(self.f.sent_token(get, self.bot))
        self.assertFalse(self.f.sent_token(get, self.alice))
        self.assertEqual(get["headers"]["Authorization"], "token <redacted>")
        self.assertNotIn(self.bot, repr(recs))
        self.assertEqual(json.loads(post["body"]), {"body": "hi"})
        self.assertEqual(post["status"], 201)
        self.assertEqual((wrong["auth"], wrong["status"]), ("", 401))
        self.assertEqual((none["auth"], none["token_sha256"], none["status"]), (None, None, 401))
        self.assertLessEqual(abs(get["time"] - self.f.now()), 5)
        counts = self.f.request_counts()
        self.assertEqual(counts["total"], 4)
        self.assertEqual(counts["by_template"]["GET /user"], 2)
        # The control endpoint reports the same, and is not itself counted.
        r = self.call("GET", "/_fake/requests/count", token=None)
        self.assertEqual(r.json, counts)
        self.assertEqual(len(self.f.requests), 4)

    # -- faults ------------------------------------------------------------

    def test_fault_status_count_and_method(self):
        self.f.fault(r"/issues/comments$", "status", count=2, status=502)
        url = self.comments_url(limit=50)
        self.assertEqual(self.call("GET", url, check=False).status, 502)
        self.assertEqual(self.call("GET", url, check=False).status, 502)
        self.assertEqual(self.call("GET", url).status, 200)
        # Method filter.
        self.f.fault(r"/statuses/", "status", method="POST", status=500)
        self.assertEqual(self.call("GET", "/api/v1/repos/coop/app/statuses/" + PR_SHA).status, 200)
        r = self.call("POST", "/api/v1/repos/coop/app/statuses/" + PR_SHA, {"state": "pending"},
                      check=False)
        self.assertEqual(r.status, 500)
        self.assertEqual(self.f.statuses("coop/app", PR_SHA), [])  # not done
        # count=None: until cleared.
        self.f.fault(r"^/api/v1/user$", "status", count=None, status=503)
        for _ in range(4):
            self.assertEqual(self.call("GET", "/api/v1/user", check=False).status, 503)
        self.f.clear_faults()
        self.assertEqual(self.call("GET", "/api/v1/user").status, 200)
        self.assertEqual([r["fault"] for r in self.f.requests].count("status"), 7)

    def test_fault_429_delay_malformed(self):
        self.f.fault("/user", "429", retry_after=7)
        r = self.call("GET", "/api/v1/user", check=False)
        self.assertEqual((r.status, r.header("Retry-After")), (429, "7"))
        self.f.fault("/user", "delay", seconds=0.3)
        t = time.monotonic()
        self.assertEqual(self.call("GET", "/api/v1/user").status, 200)
        self.assertGreaterEqual(time.monotonic() - t, 0.3)
        self.f.fault("/issues/comments", "malformed")
        r = self.call("GET", self.comments_url(), check=False)
        self.assertEqual(r.status, 200)
        self.assertIs(r.json, ValueError)
        self.assertEqual(self.call("GET", self.comments_url()).status, 200)  # same connection

    def test_fault_oversized(self):
        size = 3 << 20
        self.f.fault("/issues/comments", "oversized", size=size)
        r = self.call("GET", self.comments_url(), check=False)
        self.assertEqual(r.status, 200)
        self.assertEqual(len(r.data), size)
        self.assertTrue(r.data.startswith(b"[{"))
        self.assertIs(r.json, ValueError)
        # A client that gives up early does not upset the fake.
        self.f.fault("/issues/comments", "oversized", size=size)
        with socket.create_connection(("127.0.0.1", self.f.port)) as s:
            s.sendall(b"GET /api/v1/repos/coop/app/issues/comments HTTP/1.1\r\nHost: x\r\n"
                      b"Authorization: token " + self.bot.encode() + b"\r\n\r\n")
            self.assertIn(b"200 OK", s.recv(4096))
        self.assertEqual(self.call("GET", "/api/v1/user").status, 200)

    def test_fault_reset(self):
        self.f.fault("/user", "reset")
        with self.assertRaises((ConnectionResetError, http.client.RemoteDisconnected)):
            self.call("GET", "/api/v1/user", check=False)
        self.conn.close()
        self.assertEqual(self.call("GET", "/api/v1/user").status, 200)
        self.assertEqual(self.f.requests[0]["fault"], "reset")
        self.assertIsNone(self.f.requests[0]["status"])
        # reset_after: the write happened, the answer was lost.
        self.f.fault("/comments$", "reset_after", method="POST")
        with self.assertRaises((ConnectionResetError, http.client.RemoteDisconnected)):
            self.call("POST", "/api/v1/repos/coop/app/issues/%d/comments" % self.pr,
                      {"body": "results"}, check=False)
        self.conn.close()
        self.assertEqual([c["body"] for c in self.f.comments_of("coop/app", self.pr)], ["results"])

    def test_fault_hang_until_stop(self):
        self.f.fault("/user", "hang")
        conn = self.connect(timeout=0.3)
        self.addCleanup(conn.close)
        with self.assertRaises(socket.timeout):
            self.call("GET", "/api/v1/user", conn=conn, check=False)
        # Others are still served while one request hangs.
        self.assertEqual(self.call("GET", self.comments_url()).status, 200)
        t = time.monotonic()
        self.f.stop()
        self.assertLess(time.monotonic() - t, 3)
        # A hang with a time limit ends by closing the connection.
        f = FakeForge().start()
        self.addCleanup(f.stop)
        tok = f.add_user("u")
        f.fault("/user", "hang", seconds=0.2)
        c = http.client.HTTPConnection("127.0.0.1", f.port, timeout=5)
        self.addCleanup(c.close)
        c.request("GET", "/api/v1/user", headers={"Authorization": "token " + tok})
        with self.assertRaises((http.client.RemoteDisconnected, ConnectionResetError)):
            c.getresponse()

    # -- control endpoints -------------------------------------------------

    def test_control_endpoints(self):
        r = self.call("POST", "/_fake/open_pr", {"repo": "coop/app", "head_sha": "ab" * 20,
                                                 "user": "alice"}, token=None)
        self.assertEqual(r.status, 201)
        n = r.json["number"]
        r = self.call("POST", "/_fake/comment", {"repo": "coop/app", "number": n,
                                                 "user": "alice", "body": "!testme"}, token=None)
        self.assertEqual(r.status, 201)
        cid = r.json["id"]
        listed = self.call("GET", self.comments_url(limit=50)).json
        self.assertEqual([c["body"] for c in listed], ["!testme"])
        self.assertEqual(self.f.pr("coop/app", n)["head"]["sha"], "ab" * 20)
        r = self.call("POST", "/_fake/edit_comment", {"repo": "coop/app", "id": cid,
                                                      "body": "edited"}, token=None)
        self.assertEqual(r.json["body"], "edited")
        r = self.call("POST", "/_fake/clock", {"set": 1_700_000_000, "frozen": True}, token=None)
        self.assertEqual(r.json["now"], 1_700_000_000)
        self.call("POST", "/_fake/clock", {"advance": 10}, token=None)
        self.assertEqual(self.f.now(), 1_700_000_010)
        self.call("POST", "/_fake/fault", {"path": "/user$", "kind": "status", "status": 500},
                  token=None)
        self.assertEqual(self.call("GET", "/api/v1/user", check=False).status, 500)
        self.call("POST", "/_fake/fault", {"path": "/user$", "kind": "status", "count": None},
                  token=None)
        self.assertEqual(self.call("POST", "/_fake/clear_faults", token=None).status, 204)
        self.assertEqual(self.call("GET", "/api/v1/user").status, 200)
        self.assertEqual(self.call("POST", "/_fake/member", {"org": "coop", "user": "mallory"},
                                   token=None).status, 204)
        self.assertEqual(self.call("GET", "/api/v1/orgs/coop/members/mallory").status, 204)
        sha = self.call("POST", "/_fake/push", {"repo": "coop/app", "number": n},
                        token=None).json["sha"]
        self.call("POST", "/api/v1/repos/coop/app/statuses/" + sha, {"state": "pending"})
        r = self.call("GET", "/_fake/statuses?repo=coop/app&sha=" + sha, token=None)
        self.assertEqual([s["status"] for s in r.json], ["pending"])
        r = self.call("GET", "/_fake/comments?repo=coop/app&number=%d" % n, token=None)
        self.assertEqual(len(r.json), 1)
        r = self.call("POST", "/_fake/close_pr", {"repo": "coop/app", "number": n}, token=None)
        self.assertEqual(r.json["state"], "closed")
        self.assertEqual(self.call("POST", "/_fake/comment", {"repo": "coop/app"},
                                   token=None).status, 400)
        self.assertEqual(self.call("GET", "/_fake/nope", token=None).status, 404)


class CommandLineTest(unittest.TestCase):
    def test_benchmark_mode(self):
        tmp = tempfile.mkdtemp(prefix="ccci-fakeforge-")
        token_file = os.path.join(tmp, "token")
        proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "fakeforge.py"), "--port", "0", "--repos", "50",
             "--org", "bench", "--bot", "ccci-bot", "--token-file", token_file,
             "--member", "alice"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        ready, _, _ = select.select([proc.stdout], [], [], 20)
        self.assertTrue(ready, "no ready line")
        info = json.loads(proc.stdout.readline())
        self.assertEqual(set(info), {"url", "pid"})
        self.assertEqual(info["pid"], proc.pid)
        self.assertEqual(os.stat(token_file).st_mode & 0o777, 0o600)
        with open(token_file) as f:
            token = f.read().strip()
        port = urllib.parse.urlsplit(info["url"]).port
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        self.addCleanup(conn.close)

        def call(method, path, body=None, auth=True):
            headers = {"Authorization": "token " + token} if auth else {}
            data = None
            if body is not None:
                data = json.dumps(body).encode()
                headers["Content-Type"] = "application/json"
            conn.request(method, path, body=data, headers=headers)
            r = conn.getresponse()
            raw = r.read()
            return r.status, (json.loads(raw) if raw else None)

        self.assertEqual(call("GET", "/api/v1/user")[1]["login"], "ccci-bot")
        self.assertEqual(call("GET", "/api/v1/orgs/bench/members/ccci-bot")[0], 204)
        self.assertEqual(call("GET", "/api/v1/orgs/bench/members/alice")[0], 204)
        self.assertEqual(call("GET", "/api/v1/repos/bench/r49/issues/comments?limit=50"),
                         (200, []))
        self.assertEqual(call("GET", "/api/v1/repos/bench/r50/issues/comments")[0], 404)
        status, j = call("POST", "/_fake/open_pr", {"repo": "bench/r7"}, auth=False)
        self.assertEqual((status, j), (201, {"number": 1}))
        call("POST", "/_fake/comment", {"repo": "bench/r7", "number": 1, "user": "alice",
                                        "body": "!testme"}, auth=False)
        status, j = call("GET", "/api/v1/repos/bench/r7/issues/comments?limit=50&page=1")
        self.assertEqual([c["body"] for c in j], ["!testme"])
        counts = call("GET", "/_fake/requests/count", auth=False)[1]
        self.assertEqual(counts["by_template"]["GET /repos/{owner}/{repo}/issues/comments"], 3)
        conn.close()
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(10), 0)
        proc.stdout.close()
        proc.stderr.close()
        # A second start reuses the token already in the file.
        proc2 = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "fakeforge.py"), "--token-file", token_file],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.addCleanup(lambda: proc2.poll() is None and proc2.kill())
        info = json.loads(proc2.stdout.readline())
        port = urllib.parse.urlsplit(info["url"]).port
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        self.assertEqual(call("GET", "/api/v1/user")[1]["login"], "ccci-bot")
        conn.close()
        proc2.send_signal(signal.SIGTERM)
        self.assertEqual(proc2.wait(10), 0)
        proc2.stdout.close()
        os.unlink(token_file)
        os.rmdir(tmp)


GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid",
           "GIT_AUTHOR_DATE": "2024-02-01T12:00:00+0000",
           "GIT_COMMITTER_DATE": "2024-02-01T12:00:00+0000",
           "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_TERMINAL_PROMPT": "0"}


def git(*args, cwd=None, check=True):
    p = subprocess.run(["git"] + list(args), cwd=cwd, capture_output=True, text=True,
                       env=dict(os.environ, **GIT_ENV), timeout=120)
    if check and p.returncode != 0:
        raise AssertionError("git %s: %s%s" % (" ".join(args), p.stdout, p.stderr))
    return p


def pkt(line):
    data = line.encode() if isinstance(line, str) else line
    return b"%04x" % (len(data) + 4) + data


class GitHttpTest(unittest.TestCase):
    """git smart HTTP under git_root: clones and fetches as the harness makes
    them (docs/harness.md "Setup" step 2)."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="ccci-fakeforge-git-")
        src = os.path.join(cls.tmp, "src")
        out = subprocess.run([os.path.join(SOURCE_DIR, "examples", "make-recipe-repo"),
                              os.path.join(SOURCE_DIR, "examples", "recipes", "pages"), src,
                              "--tags"], check=True, capture_output=True, text=True).stdout
        cls.releases = [line.split()[2] for line in out.splitlines() if line.startswith("release")]
        cls.root = os.path.join(cls.tmp, "git")
        cls.bare = os.path.join(cls.root, "coop", "app.git")
        git("clone", "-q", "--bare", src, cls.bare)
        # PR 1: a commit on top of the head, only at refs/pull/1/head
        git("checkout", "-q", "-b", "pr1", cwd=src)
        with open(os.path.join(src, "PR.txt"), "w") as f:
            f.write("pull request one\n")
        git("add", "PR.txt", cwd=src)
        git("commit", "-q", "-m", "pr: one", cwd=src)
        cls.pr_sha = git("rev-parse", "HEAD", cwd=src).stdout.strip()
        git("push", "-q", cls.bare, "HEAD:refs/pull/1/head", cwd=src)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def setUp(self):
        self.f = FakeForge(git_root=self.root).start()
        self.addCleanup(self.f.stop)
        self.bot = self.f.add_user("ccci-bot")
        self.f.add_org("coop", members=["ccci-bot"])
        self.f.add_repo("coop/app")
        self.f.open_pr("coop/app", head_sha=self.pr_sha, files={"PR.txt": "pull request one\n"})
        self.work = tempfile.mkdtemp(prefix="co-", dir=self.tmp)

    def tearDown(self):
        self.assertEqual(self.f.errors, [])

    def fetch(self, url, refspec, name="co", check=True):
        co = os.path.join(self.work, name)
        git("init", "-q", co)
        return co, git("fetch", "-q", "--tags", url, refspec, cwd=co, check=check)

    def test_fetch_a_pull_request_as_the_harness_does(self):
        url = self.f.url + "/coop/app.git"
        co, _ = self.fetch(url, "+refs/pull/1/head")
        git("checkout", "-q", "-f", self.pr_sha, cwd=co)
        self.assertEqual(git("rev-parse", "HEAD", cwd=co).stdout.strip(), self.pr_sha)
        with open(os.path.join(co, "PR.txt")) as f:
            self.assertEqual(f.read(), "pull request one\n")
        self.assertTrue(os.path.isfile(os.path.join(co, "compose.yml")))
        self.assertEqual(git("tag", cwd=co).stdout.split(), ["0.9.0+1.27.0", "1.0.0+1.27.1"])
        self.assertEqual(git("rev-parse", "1.0.0+1.27.1^{commit}", cwd=co).stdout.strip(),
                         self.releases[1])
        # the code's form (src/harness/harness.c), with the user name in the URL
        port = urllib.parse.urlsplit(self.f.url).port
        co2, _ = self.fetch("http://ccci@127.0.0.1:%d/coop/app.git" % port,
                            "+refs/pull/1/head:refs/ccci/head", name="co2")
        self.assertEqual(git("rev-parse", "refs/ccci/head^{commit}", cwd=co2).stdout.strip(),
                         self.pr_sha)
        # a branch, and protocol v0 too
        co3 = os.path.join(self.work, "co3")
        git("init", "-q", co3)
        git("-c", "protocol.version=0", "fetch", "-q", url, "+refs/heads/main:refs/ccci/head",
            cwd=co3)
        # recorded in git_requests only
        self.assertEqual(self.f.requests, [])
        recs = self.f.git_requests
        self.assertIn(("GET", "/coop/app.git/info/refs", "service=git-upload-pack", 200),
                      [(r["method"], r["path"], r["query"], r["status"]) for r in recs])
        self.assertIn(("POST", "/coop/app.git/git-upload-pack", 200),
                      [(r["method"], r["path"], r["status"]) for r in recs])
        self.assertIn("version=2", [r["headers"].get("Git-Protocol") for r in recs])
        self.f.clear_requests()
        self.assertEqual(self.f.git_requests, [])

    def test_missing_repo_or_ref_is_a_git_error(self):
        _, p = self.fetch(self.f.url + "/coop/nope.git", "+refs/pull/1/head", check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("not found", p.stderr)
        self.assertEqual(self.f.git_requests[-1]["status"], 404)
        _, p = self.fetch(self.f.url + "/coop/app.git", "+refs/pull/9/head", name="co2",
                          check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("refs/pull/9/head", p.stderr)
        # a path that is not a repo's stays the API's 404 (recorded there)
        conn = http.client.HTTPConnection("127.0.0.1", urllib.parse.urlsplit(self.f.url).port,
                                          timeout=10)
        self.addCleanup(conn.close)
        for path in ("/coop/app.git", "/coop/app.git/../../../etc/passwd",
                     "/.x/app.git/info/refs"):
            conn.request("GET", path)
            r = conn.getresponse()
            r.read()
            self.assertEqual(r.status, 404, path)
        self.assertEqual(len(self.f.requests), 3)  # none went to git
        self.assertFalse([r for r in self.f.git_requests if r["path"].startswith(("/coop/app.git/..",
                                                                                 "/.x"))])

    def test_basic_auth_is_accepted_unchecked_and_redacted(self):
        conn = http.client.HTTPConnection("127.0.0.1", urllib.parse.urlsplit(self.f.url).port,
                                          timeout=10)
        self.addCleanup(conn.close)
        for cred in ("ccci:" + self.bot, "ccci:wrong", None):
            headers = {"Git-Protocol": "version=2"}
            if cred:
                headers["Authorization"] = "Basic " + base64.b64encode(cred.encode()).decode()
            conn.request("GET", "/coop/app.git/info/refs?service=git-upload-pack", headers=headers)
            r = conn.getresponse()
            data = r.read()
            self.assertEqual(r.status, 200)
            self.assertEqual(r.getheader("Content-Type"),
                             "application/x-git-upload-pack-advertisement")
            self.assertEqual(int(r.getheader("Content-Length")), len(data))
            self.assertIn(b"version 2", data)
        recs = self.f.git_requests
        self.assertEqual([r["user"] for r in recs], ["ccci", "ccci", None])
        self.assertTrue(FakeForge.sent_token(recs[0], self.bot))
        self.assertFalse(FakeForge.sent_token(recs[1], self.bot))
        self.assertEqual(recs[0]["headers"]["Authorization"], "Basic <redacted>")
        self.assertNotIn(self.bot, repr(recs))

    def test_gzip_request_body(self):
        """git gzips big POST bodies (Content-Encoding: gzip): http-backend
        inflates them."""
        body = pkt("command=ls-refs\n") + b"0001" + pkt("ref-prefix refs/pull/\n") + b"0000"
        conn = http.client.HTTPConnection("127.0.0.1", urllib.parse.urlsplit(self.f.url).port,
                                          timeout=10)
        self.addCleanup(conn.close)
        answers = []
        for data, extra in ((body, {}), (gzip.compress(body), {"Content-Encoding": "gzip"})):
            conn.request("POST", "/coop/app.git/git-upload-pack", body=data,
                         headers=dict(extra, **{
                             "Content-Type": "application/x-git-upload-pack-request",
                             "Git-Protocol": "version=2"}))
            r = conn.getresponse()
            answers.append((r.status, r.getheader("Content-Type"), r.read()))
        self.assertEqual(answers[0], answers[1])
        self.assertEqual(answers[0][:2], (200, "application/x-git-upload-pack-result"))
        self.assertIn(("%s refs/pull/1/head" % self.pr_sha).encode(), answers[0][2])

    def test_faults_cover_clones(self):
        url = self.f.url + "/coop/app.git"
        self.f.fault(r"^/api/v1/", "status", count=None)  # the API only: clones work
        self.fetch(url, "+refs/pull/1/head")
        self.f.clear_faults()
        self.f.fault(r"\.git/", "status", count=1, status=503)
        _, p = self.fetch(url, "+refs/pull/1/head", name="co2", check=False)
        self.assertNotEqual(p.returncode, 0, self.f.git_requests)
        self.assertIn("503", p.stderr)
        self.assertEqual(self.f.git_requests[-1]["fault"], "status")
        self.assertEqual(self.f.git_requests[-1]["status"], 503)
        self.fetch(url, "+refs/pull/1/head", name="co3")  # count used up
        # (curl retries a request once when a reused connection dies: count=None)
        self.f.fault(r"/git-upload-pack$", "reset", count=None, method="POST")
        _, p = self.fetch(url, "+refs/pull/1/head", name="co4", check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertEqual({r["fault"] for r in self.f.git_requests if r["method"] == "POST"},
                         {None, "reset"})

    def test_without_git_root_clones_are_404(self):
        f = FakeForge().start()
        self.addCleanup(f.stop)
        _, p = self.fetch(f.url + "/coop/app.git", "+refs/pull/1/head", check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertEqual([r["status"] for r in f.requests], [404])
        self.assertEqual(f.git_requests, [])

    def test_command_line_git_root(self):
        tmp = tempfile.mkdtemp(prefix="cli-", dir=self.tmp)
        proc = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "fakeforge.py"), "--token-file",
             os.path.join(tmp, "token"), "--git-root", self.root],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        info = json.loads(proc.stdout.readline())
        p = git("ls-remote", info["url"] + "/coop/app.git", "refs/pull/1/head")
        self.assertEqual(p.stdout, "%s\trefs/pull/1/head\n" % self.pr_sha)
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(10), 0)
        proc.stdout.close()


def _parse_link(header):
    """[(rel, url)] of an RFC 8288 Link header as Gitea writes it."""
    out = []
    for part in header.split(","):
        part = part.strip()
        if not part:
            continue
        url, _, params = part.partition(";")
        rel = params.strip()
        if rel.startswith('rel="') and rel.endswith('"'):
            out.append((rel[5:-1], url.strip()[1:-1]))
    return out


if __name__ == "__main__":
    unittest.main()
