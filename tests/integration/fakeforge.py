"""A fake Gitea/Forgejo forge (HTTP on 127.0.0.1) for ccci's integration
tests and benchmarks. Python 3 standard library only.

It serves the part of the Gitea/Forgejo API (under /api/v1) that ccci uses,
with the JSON shapes of shared/forge/gitea-v1.26-swagger.json and
forgejo-v12-swagger.json (only fields declared in both), and follows
Gitea's behaviour where the spec is silent (status codes, ordering,
pagination, `since`, binding errors, nulls). HTTP/1.1 with keep-alive;
every response carries Content-Length, Content-Type: application/json (a
raw file: application/octet-stream, as both specs' `produces` say) and a
Date header from the fake's own clock.

Served (see ROUTES): GET /user; GET /orgs/{org}/members/{username} (204,
404, or 303 to .../public_members/{username} when the asking user is not in
the org and not an admin) and GET .../public_members/{username};
GET /repos/{owner}/{repo}; GET /repos/{o}/{r}/issues/comments (since,
before, page, limit; X-Total-Count, Link); GET|POST
/repos/{o}/{r}/issues/{index}/comments; GET|PATCH
/repos/{o}/{r}/issues/comments/{id}; GET|POST .../comments/{id}/reactions;
GET /repos/{o}/{r}/pulls/{index}; POST|GET /repos/{o}/{r}/statuses/{sha};
GET /repos/{o}/{r}/commits/{ref}/statuses; GET /repos/{o}/{r}/raw/{filepath}
(`ref`: a commit sha, a branch or refs/heads/<branch>; without it the
default branch; 200 with the file's bytes, 404 JSON for an unknown ref, a
missing file or a directory). Anything else: 404 JSON (but see "Git smart
HTTP" below for clone URLs when git_root is set).

Python API
----------
    f = FakeForge(default_limit=30, max_limit=50, utc_offset=0, link_header=True,
                  record_limit=None, strict_commits=True, compat_username=False,
                  git_root=None)
        (utc_offset: seconds east of UTC for JSON timestamps; link_header:
        send Link on lists; compat_username: add the "username" alias that
        real Gitea/Forgejo put in every User but neither swagger declares;
        git_root: a directory of bare repos <git_root>/<owner>/<repo>.git
        served as git clone URLs, see "Git smart HTTP")
    f.start(); f.url                    # "http://127.0.0.1:PORT"; also a context manager
    f.stop()                            # closes every connection, releases hung requests

  Setup (users and orgs named by a repo or comment are created on demand):
    f.add_user(login, token=None, admin=False, full_name="") -> token
        (token None: a random one is made; returns it)
    f.add_org(org, members=(), public_members=())
    f.add_member(org, login, public=False); f.remove_member(org, login)
    f.add_repo("owner/name", default_branch="main") -> repo id
    f.open_pr(repo, number=None, head_sha=None, user=None, head_ref=None,
              base_ref=None, title=None, head_repo=None, files=None) -> number
        (head_sha None: a fresh 40-hex sha; head_repo "someone/fork" makes a
        PR from a fork; number None: the next issue index of the repo;
        files: the head commit's tree, {path: str or bytes})
    f.open_issue(repo, user=None, title=None) -> number
    f.push(repo, n, head_sha, files=None) -> new head sha of PR n (a new
        commit: the old head's tree with `files` applied, None deleting)
    f.set_files(repo, sha, files)       # change commit sha's tree (made
        known to the API), {path: str or bytes, or None to delete}
    f.files_at(repo, ref) -> {path: bytes} of a commit, branch or None
        (the default branch)
    f.close_pr(repo, n, merged=False); f.reopen_pr(repo, n)
    f.add_commit(repo, sha)             # make a sha known to the status API
    f.comment(repo, n, user, body, created_at=None) -> Comment (API JSON)
    f.edit_comment(repo, comment_id, body, updated_at=None) -> Comment

  Clock (the forge's time; default = real time; used for Date, created_at...):
    f.now() -> float epoch; f.set_clock(epoch, frozen=False); f.advance(seconds)

  Inspection:
    f.requests -> list of dicts (a snapshot, oldest first), one per /api/v1
        request: method, path, query (dict of lists), headers (dict;
        Authorization becomes "<scheme> <redacted>"), token_sha256 (hex
        sha256 of the token sent, or None), auth (login the token belongs
        to, "" for an unknown token, None for none), body (bytes),
        template ("GET /repos/{owner}/{repo}/issues/comments" or None),
        status (int; None while unanswered or when no answer was sent),
        fault (kind or None), time (forge clock), real_time (time.time()).
    f.git_requests -> list of dicts (a snapshot, oldest first), one per git
        smart HTTP request (see below): method, path, query (the raw query
        string), headers (Authorization becomes "<scheme> <redacted>"),
        user (the Basic auth user name, "" when undecodable, None without
        Basic auth), token_sha256 (hex sha256 of the password or token
        sent, or None), status, fault, stderr (git http-backend's), time,
        real_time. Kept apart from f.requests and request_counts().
    f.sent_token(record, token) -> bool (a requests or git_requests record)
    f.clear_requests()                  # empties requests and git_requests
    f.request_counts() -> {"total": n, "by_template": {"GET /user": n, ...}}
    f.statuses(repo, sha) -> [CommitStatus] oldest first
    f.comments_of(repo, n) -> [Comment] in listing order
    f.reactions_of(comment_id) -> [Reaction]
    f.pr(repo, n) -> PullRequest (API JSON)
    f.errors -> tracebacks of exceptions inside the fake (answered 500);
        a test can assert it stays empty

  Fault injection (checked in order of registration, first match wins):
    f.fault(path_regex, kind, count=1, method=None, **kw) -> the fault dict
        path_regex is re.search'ed in the request path (with /api/v1, no
        query); it applies to the next `count` matching requests (None:
        until f.clear_faults()). Kinds:
        "delay"      seconds=1.0, then answer normally
        "status"     status=500, message="..."; the operation is not done
        "429"        retry_after=1 (Retry-After header), status 429
        "malformed"  200 with an invalid JSON body
        "oversized"  200 with size=8 MiB bytes: a valid JSON start ("[{...")
                     that does not end within Content-Length
        "reset"      close with SO_LINGER 0 (RST), no answer, not done
        "reset_after" do the operation, then RST instead of the answer
                     (a write that happened but whose answer was lost)
        "hang"       never answer (until f.stop() or seconds=N), not done
    f.clear_faults()

Git smart HTTP (git_root set)
-----------------------------
Clone URLs as real Gitea serves them, `<f.url>/<owner>/<repo>.git`: a
request whose path is /<owner>/<repo>.git/<rest> (outside /api/v1; owner
and repo of letters, digits, `_`, `.`, `-`, not starting with `.`; no `.`
or `..` segment) is answered by `git http-backend` run as CGI with
GIT_PROJECT_ROOT=git_root, GIT_HTTP_EXPORT_ALL=1, PATH_INFO=the path,
QUERY_STRING, REQUEST_METHOD, CONTENT_TYPE, CONTENT_LENGTH (when there is
a body; a chunked one is de-chunked first), HTTP_GIT_PROTOCOL (the
Git-Protocol header, so protocol v2 works), HTTP_CONTENT_ENCODING (so
http-backend inflates gzip request bodies), REMOTE_ADDR, and no global or
system git config; the request body on its stdin. Its CGI answer (Status:,
Content-Type and the other headers) is sent with a Content-Length, on the
kept-alive connection. The repos are read from disk: the bare repo
<git_root>/<owner>/<repo>.git (a work tree with .git inside also works)
need not be add_repo'd; a missing one is git's 404 ("repository ... not
found"); refs such as refs/pull/<n>/head are whatever the repo holds (make
them with git update-ref or git push). Fetch and clone only: pushes are
refused (no REMOTE_USER). Authentication is not checked: no credentials
or Basic auth with any user and password (ccci's harness sends user
`ccci` and the token, when asked) are all served; the fake never answers
401, so git never asks. The requests go to f.git_requests, not
f.requests; faults apply to them as to the API (f.fault's path_regex is
searched in the clone path, e.g. r"\.git/" for every clone, r"." for a
whole-forge outage; "^/api/v1/" leaves clones alone). Without git_root
these paths are the API's 404 JSON, recorded in f.requests.

Control endpoints (outside /api/v1, no token, not recorded, no faults)
----------------------------------------------------------------------
    POST /_fake/comment      {repo, number, user, body, created_at?} -> 201 Comment
    POST /_fake/edit_comment {repo, id, body}                        -> 200 Comment
    POST /_fake/open_pr      {repo, head_sha?, user?, number?, head_ref?, files?}
                                                                     -> 201 {"number": n}
    POST /_fake/close_pr     {repo, number, merged?}                 -> 200 PullRequest
    POST /_fake/push         {repo, number, head_sha?, files?}       -> 200 {"sha": sha}
    POST /_fake/files        {repo, sha, files: {path: text or null}} -> 204
    POST /_fake/member       {org, user, public?}                    -> 204
    POST /_fake/clock        {set?: epoch, advance?: seconds, frozen?} -> 200 {"now": t}
    POST /_fake/fault        {path, kind, count?, method?, ...kw}    -> 201
    POST /_fake/clear_faults                                         -> 204
    GET  /_fake/requests/count -> {"total": n, "by_template": {...}}
    GET  /_fake/statuses?repo=&sha=   -> [CommitStatus]
    GET  /_fake/comments?repo=&number= -> [Comment]

Command line (benchmarks)
-------------------------
    python3 fakeforge.py --port 0 --repos 1000 --org bench --bot ccci-bot \\
        --token-file PATH [--member alice ...] [--user mallory ...]
        [--record-limit 10000] [--git-root DIR]
  (--git-root: serve the bare repos DIR/<owner>/<repo>.git as clone URLs,
  as git_root does) creates org `bench` (the bot and every --member are members; every --user
  is a user outside it) and repos
  bench/r0..r{N-1}; the bot's token is read from PATH, or made and written
  there (mode 0600) when PATH is missing or empty. Prints one line
  {"url": ..., "pid": ...} on stdout and serves until SIGTERM or SIGINT.

Where the fake differs from Gitea on purpose: every /api/v1 request needs a
valid token (Gitea lets anonymous clients read public repos); any known
user may comment, react and post statuses anywhere (editing a comment
needs its author, an admin or a member of the owner org); an unknown
issue/PR index gives 404 (Gitea 1.26 answers 500 for comments of a missing
issue); a known path with another method gives 404 (Gitea: 405); a status
with an invalid state or on an unknown sha gives 400/404.
"""

import argparse
import base64
import calendar
import collections
import email.utils
import hashlib
import json
import os
import re
import secrets
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import traceback
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

API = "/api/v1"
DOC_URL = "https://gitea.com/api/swagger"
# Gitea's default [ui] REACTIONS.
ALLOWED_REACTIONS = ("+1", "-1", "laugh", "hooray", "confused", "heart", "rocket", "eyes")
STATUS_STATES = ("pending", "success", "error", "failure", "warning", "skipped")
MAX_REQUEST_BODY = 16 << 20
# A clone URL's path: /<owner>/<repo>.git/<rest> (what git smart HTTP asks).
GIT_PATH_RE = re.compile(r"^/([A-Za-z0-9_][A-Za-z0-9_.-]*)/([A-Za-z0-9_][A-Za-z0-9_.-]*)\.git(/[^?#]+)$")
GIT_BACKEND_TIMEOUT = 300
NO_BODY = object()  # a handler's answer without a body (204, 303, bare 403)


class Raw:
    """A handler's answer that is bytes, not JSON (a raw file)."""

    def __init__(self, data, ctype="application/octet-stream"):
        self.data = data
        self.ctype = ctype

RFC3339_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2})$"
)


class ApiError(Exception):
    """An error answer: status and Gitea's {"message", "url"} body."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


def parse_rfc3339(text):
    """Epoch seconds (int, truncated like Gitea's t.Unix()) of an RFC 3339
    timestamp as Go's time.Parse(time.RFC3339) reads it; ValueError else."""
    m = RFC3339_RE.match(text)
    if not m:
        raise ValueError('parsing time "%s" as "2006-01-02T15:04:05Z07:00": cannot parse' % text)
    y, mo, d, h, mi, s = (int(g) for g in m.groups()[:6])
    zone = m.group(8)
    offset = 0
    if zone != "Z":
        offset = (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60) * (1 if zone[0] == "+" else -1)
    return calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0)) - offset


def format_rfc3339(epoch, utc_offset=0):
    """Go's time.Time JSON form at whole seconds: Z for UTC, else +hh:mm."""
    t = time.gmtime(int(epoch) + utc_offset)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", t)
    if utc_offset == 0:
        return base + "Z"
    sign = "+" if utc_offset > 0 else "-"
    off = abs(utc_offset)
    return "%s%s%02d:%02d" % (base, sign, off // 3600, off % 3600 // 60)


def new_sha():
    return secrets.token_hex(20)


def _compile(template):
    # {filepath} is the rest of the path, slashes included (Gitea's `/*`).
    regex = re.sub(r"\\\{filepath\\\}", r"(?P<filepath>.+)", re.escape(template))
    regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", regex)
    return re.compile("^" + regex + "$")


# (method, template under /api/v1, handler method name). Literal routes come
# before parameterised ones, as in Gitea's router.
ROUTES = [
    ("GET", "/user", "h_user"),
    ("GET", "/orgs/{org}/members/{username}", "h_is_member"),
    ("GET", "/orgs/{org}/public_members/{username}", "h_is_public_member"),
    ("GET", "/repos/{owner}/{repo}", "h_repo"),
    ("GET", "/repos/{owner}/{repo}/issues/comments", "h_repo_comments"),
    ("GET", "/repos/{owner}/{repo}/issues/comments/{id}", "h_get_comment"),
    ("PATCH", "/repos/{owner}/{repo}/issues/comments/{id}", "h_edit_comment"),
    ("GET", "/repos/{owner}/{repo}/issues/comments/{id}/reactions", "h_get_reactions"),
    ("POST", "/repos/{owner}/{repo}/issues/comments/{id}/reactions", "h_post_reaction"),
    ("GET", "/repos/{owner}/{repo}/issues/{index}/comments", "h_issue_comments"),
    ("POST", "/repos/{owner}/{repo}/issues/{index}/comments", "h_create_comment"),
    ("GET", "/repos/{owner}/{repo}/pulls/{index}", "h_pull"),
    ("POST", "/repos/{owner}/{repo}/statuses/{sha}", "h_create_status"),
    ("GET", "/repos/{owner}/{repo}/statuses/{sha}", "h_list_statuses"),
    ("GET", "/repos/{owner}/{repo}/commits/{ref}/statuses", "h_list_statuses_by_ref"),
    ("GET", "/repos/{owner}/{repo}/raw/{filepath}", "h_raw_file"),
]
COMPILED_ROUTES = [(m, t, _compile(t), h) for m, t, h in ROUTES]


class FakeForge:
    """The forge's state, its clock, faults and request log, behind one lock."""

    def __init__(self, host="127.0.0.1", port=0, default_limit=30, max_limit=50,
                 utc_offset=0, link_header=True, record_limit=None, strict_commits=True,
                 compat_username=False, git_root=None):
        self.host = host
        self.git_root = None if git_root is None else os.path.abspath(git_root)
        self.port = port
        self.default_limit = default_limit
        self.max_limit = max_limit
        self.utc_offset = utc_offset
        self.link_header = link_header
        self.record_limit = record_limit
        self.strict_commits = strict_commits
        self.compat_username = compat_username
        self.lock = threading.RLock()
        self._clock_offset = 0.0
        self._frozen = None
        self._next_id = 1
        self.users = {}  # login -> {id, login, token, admin, full_name, created}
        self.tokens = {}  # token -> login
        self.orgs = {}  # name -> {id, members: set, public: set, created}
        self.repos = {}  # "owner/name" -> repo dict
        self.comments = {}  # id -> comment dict
        self.reactions = {}  # comment id -> [reaction dict]
        self._faults = []
        self._requests = collections.deque(maxlen=record_limit)
        self._git_requests = collections.deque(maxlen=record_limit)
        self.errors = []  # tracebacks of bugs in the fake (answered 500)
        self._counts = {}
        self._total = 0
        self._conns = set()
        self._stopping = threading.Event()
        self._server = None
        self._thread = None
        self.url = None

    # -- lifecycle ---------------------------------------------------------

    def start(self):
        self._server = Server((self.host, self.port), Handler)
        self._server.forge = self
        self.port = self._server.server_address[1]
        self.url = "http://%s:%d" % (self.host, self.port)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
            name="fakeforge", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        with self.lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._server.server_close()
        self._thread.join(5)
        self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- clock -------------------------------------------------------------

    def now(self):
        with self.lock:
            if self._frozen is not None:
                return self._frozen
            return time.time() + self._clock_offset

    def set_clock(self, epoch, frozen=False):
        with self.lock:
            if frozen:
                self._frozen = float(epoch)
            else:
                self._frozen = None
                self._clock_offset = float(epoch) - time.time()

    def advance(self, seconds):
        with self.lock:
            if self._frozen is not None:
                self._frozen += seconds
            else:
                self._clock_offset += seconds

    # -- setup -------------------------------------------------------------

    def _id(self):
        with self.lock:
            n = self._next_id
            self._next_id += 1
            return n

    def add_user(self, login, token=None, admin=False, full_name=""):
        with self.lock:
            u = self.users.get(login)
            if u is None:
                u = {"id": self._id(), "login": login, "token": None, "admin": admin,
                     "full_name": full_name, "created": int(self.now())}
                self.users[login] = u
            u["admin"] = admin or u["admin"]
            if token is None and u["token"] is None:
                token = secrets.token_hex(20)
            if token is not None:
                if u["token"] is not None:
                    self.tokens.pop(u["token"], None)
                u["token"] = token
                self.tokens[token] = login
            return u["token"]

    def _user(self, login):
        """The user or org named `login`; an unknown name becomes a user."""
        if login in self.users:
            return self.users[login]
        if login in self.orgs:
            return self.orgs[login]
        self.add_user(login)
        return self.users[login]

    def add_org(self, org, members=(), public_members=()):
        with self.lock:
            o = self.orgs.get(org)
            if o is None:
                o = {"id": self._id(), "name": org, "login": org, "members": set(),
                     "public": set(), "created": int(self.now()), "admin": False,
                     "full_name": ""}
                self.orgs[org] = o
            for m in members:
                self.add_member(org, m)
            for m in public_members:
                self.add_member(org, m, public=True)
            return o["id"]

    def add_member(self, org, login, public=False):
        with self.lock:
            if org not in self.orgs:
                self.add_org(org)
            self._user(login)
            self.orgs[org]["members"].add(login)
            if public:
                self.orgs[org]["public"].add(login)

    def remove_member(self, org, login):
        with self.lock:
            self.orgs[org]["members"].discard(login)
            self.orgs[org]["public"].discard(login)

    def add_repo(self, full_name, default_branch="main"):
        owner, name = full_name.split("/", 1)
        with self.lock:
            if full_name in self.repos:
                return self.repos[full_name]["id"]
            if owner not in self.orgs and owner not in self.users:
                self.add_org(owner)
            self.repos[full_name] = {
                "id": self._id(), "owner": owner, "name": name, "full_name": full_name,
                "default_branch": default_branch, "created": int(self.now()),
                "next_index": 1, "issues": {}, "comment_ids": [], "statuses": {},
                "commits": set(), "trees": {}, "branches": {default_branch: new_sha()},
            }
            self.repos[full_name]["commits"].add(self.repos[full_name]["branches"][default_branch])
            return self.repos[full_name]["id"]

    def _repo(self, full_name):
        if full_name not in self.repos:
            self.add_repo(full_name)
        return self.repos[full_name]

    def _new_issue(self, repo, number, user, title, is_pull):
        r = self._repo(repo)
        if number is None:
            number = r["next_index"]
        if number in r["issues"]:
            raise ValueError("%s#%d exists" % (repo, number))
        r["next_index"] = max(r["next_index"], number + 1)
        now = int(self.now())
        issue = {"id": self._id(), "number": number, "is_pull": is_pull,
                 "user": self._user(user or "author")["login"],
                 "title": title or ("PR %d" % number if is_pull else "Issue %d" % number),
                 "state": "open", "created": now, "updated": now, "closed": None,
                 "merged": False, "merged_at": None, "merged_by": None,
                 "merge_sha": None, "comment_ids": []}
        r["issues"][number] = issue
        return issue

    def open_pr(self, repo, number=None, head_sha=None, user=None, head_ref=None,
                base_ref=None, title=None, head_repo=None, files=None):
        with self.lock:
            r = self._repo(repo)
            issue = self._new_issue(repo, number, user, title, True)
            issue["head_sha"] = head_sha or new_sha()
            issue["head_ref"] = head_ref or ("pr-%d" % issue["number"])
            issue["base_ref"] = base_ref or r["default_branch"]
            issue["head_repo"] = head_repo
            issue["base_sha"] = new_sha()
            r["commits"].update((issue["head_sha"], issue["base_sha"]))
            r["branches"][issue["head_ref"]] = issue["head_sha"]
            if files is not None:
                self.set_files(repo, issue["head_sha"], files)
            return issue["number"]

    def open_issue(self, repo, user=None, title=None):
        with self.lock:
            return self._new_issue(repo, None, user, title, False)["number"]

    def _issue(self, repo, n):
        r = self.repos.get(repo)
        if r is None or n not in r["issues"]:
            raise KeyError("%s#%s" % (repo, n))
        return r["issues"][n]

    def push(self, repo, n, head_sha=None, files=None):
        with self.lock:
            issue = self._issue(repo, n)
            r = self.repos[repo]
            old = r["trees"].get(issue["head_sha"], {})
            issue["head_sha"] = head_sha or new_sha()
            issue["updated"] = int(self.now())
            r["commits"].add(issue["head_sha"])
            r["branches"][issue["head_ref"]] = issue["head_sha"]
            r["trees"][issue["head_sha"]] = dict(old)
            if files is not None:
                self.set_files(repo, issue["head_sha"], files)
            return issue["head_sha"]

    def set_files(self, repo, sha, files):
        with self.lock:
            r = self._repo(repo)
            r["commits"].add(sha)
            tree = r["trees"].setdefault(sha, {})
            for path, data in files.items():
                path = path.strip("/")
                if data is None:
                    tree.pop(path, None)
                else:
                    tree[path] = data.encode() if isinstance(data, str) else bytes(data)

    def _resolve_ref(self, r, ref):
        """The commit a ref names (a sha, a branch, refs/heads/<branch>;
        empty: the default branch), or None."""
        if not ref:
            ref = r["default_branch"]
        if ref.startswith("refs/heads/"):
            ref = ref[len("refs/heads/"):]
        if ref in r["branches"]:
            return r["branches"][ref]
        return ref if ref in r["commits"] else None

    def files_at(self, repo, ref=None):
        with self.lock:
            r = self.repos[repo]
            return dict(r["trees"].get(self._resolve_ref(r, ref), {}))

    def close_pr(self, repo, n, merged=False):
        with self.lock:
            issue = self._issue(repo, n)
            now = int(self.now())
            issue.update(state="closed", closed=now, updated=now)
            if merged and issue["is_pull"]:
                issue.update(merged=True, merged_at=now, merged_by=issue["user"],
                             merge_sha=new_sha())

    def reopen_pr(self, repo, n):
        with self.lock:
            issue = self._issue(repo, n)
            issue.update(state="open", closed=None, updated=int(self.now()))

    def add_commit(self, repo, sha):
        with self.lock:
            self._repo(repo)["commits"].add(sha)

    def comment(self, repo, n, user, body, created_at=None):
        with self.lock:
            return self._comment_json(self._add_comment(repo, n, user, body, created_at))

    def _add_comment(self, repo, n, user, body, created_at=None):
        issue = self._issue(repo, n)
        created = int(self.now() if created_at is None else created_at)
        c = {"id": self._id(), "repo": repo, "number": n, "user": self._user(user)["login"],
             "body": body, "created": created, "updated": created}
        self.comments[c["id"]] = c
        issue["comment_ids"].append(c["id"])
        self.repos[repo]["comment_ids"].append(c["id"])
        return c

    def edit_comment(self, repo, comment_id, body, updated_at=None):
        with self.lock:
            c = self.comments.get(comment_id)
            if c is None or c["repo"] != repo:
                raise KeyError("comment %s in %s" % (comment_id, repo))
            if body != c["body"] or updated_at is not None:
                c["body"] = body
                c["updated"] = int(self.now() if updated_at is None else updated_at)
            return self._comment_json(c)

    # -- inspection --------------------------------------------------------

    @property
    def requests(self):
        with self.lock:
            return [dict(r) for r in self._requests]

    @property
    def git_requests(self):
        with self.lock:
            return list(self._git_requests)

    def clear_requests(self):
        with self.lock:
            self._requests.clear()
            self._git_requests.clear()
            self._counts.clear()
            self._total = 0

    @staticmethod
    def sent_token(record, token):
        return record.get("token_sha256") == hashlib.sha256(token.encode()).hexdigest()

    def request_counts(self):
        with self.lock:
            return {"total": self._total, "by_template": dict(self._counts)}

    def statuses(self, repo, sha):
        with self.lock:
            r = self.repos[repo]
            return [self._status_json(r, s) for s in r["statuses"].get(sha, [])]

    def comments_of(self, repo, n):
        with self.lock:
            issue = self._issue(repo, n)
            cs = sorted((self.comments[i] for i in issue["comment_ids"]),
                        key=lambda c: (c["created"], c["id"]))
            return [self._comment_json(c) for c in cs]

    def reactions_of(self, comment_id):
        with self.lock:
            return [self._reaction_json(x) for x in self.reactions.get(comment_id, [])]

    def pr(self, repo, n):
        with self.lock:
            return self._pr_json(self.repos[repo], self._issue(repo, n))

    # -- faults ------------------------------------------------------------

    def fault(self, path_regex, kind, count=1, method=None, **kw):
        kind = str(kind)
        if kind not in ("delay", "status", "429", "malformed", "oversized", "reset",
                        "reset_after", "hang"):
            raise ValueError("unknown fault kind " + kind)
        f = {"regex": re.compile(path_regex), "kind": kind, "count": count,
             "method": method.upper() if method else None, "kw": kw, "hits": 0}
        with self.lock:
            self._faults.append(f)
        return f

    def clear_faults(self):
        with self.lock:
            self._faults.clear()

    def _take_fault(self, method, path):
        with self.lock:
            for f in self._faults:
                if f["method"] and f["method"] != method:
                    continue
                if not f["regex"].search(path):
                    continue
                f["hits"] += 1
                if f["count"] is not None:
                    f["count"] -= 1
                    if f["count"] <= 0:
                        self._faults.remove(f)
                return f
        return None

    # -- recording ---------------------------------------------------------

    def _record(self, method, path, query, headers, body):
        hdrs = {}
        token_sha = None
        auth = None
        for k, v in headers.items():
            if k.lower() == "authorization":
                scheme, _, tok = v.partition(" ")
                hdrs[k] = scheme + " <redacted>"
                token_sha = hashlib.sha256(tok.strip().encode()).hexdigest()
                with self.lock:
                    auth = self.tokens.get(tok.strip(), "")
            else:
                hdrs[k] = v
        template = None
        if path.startswith(API + "/"):
            sub = path[len(API):]
            for m, t, regex, _ in COMPILED_ROUTES:
                if m == method and regex.match(sub):
                    template = "%s %s" % (m, t)
                    break
        rec = {"method": method, "path": path, "query": query, "headers": hdrs,
               "token_sha256": token_sha, "auth": auth, "body": body,
               "template": template, "status": None, "fault": None,
               "time": self.now(), "real_time": time.time()}
        with self.lock:
            self._requests.append(rec)
            key = template or "%s (unrouted)" % method
            self._counts[key] = self._counts.get(key, 0) + 1
            self._total += 1
        return rec

    def _record_git(self, method, path, query_string, headers):
        hdrs, user, token_sha = {}, None, None
        for k, v in headers.items():
            if k.lower() != "authorization":
                hdrs[k] = v
                continue
            scheme, _, cred = v.partition(" ")
            hdrs[k] = scheme + " <redacted>"
            secret = cred.strip()
            if scheme.lower() == "basic":
                try:
                    user, _, secret = base64.b64decode(secret, validate=True).decode(
                        "utf-8").partition(":")
                except (ValueError, UnicodeDecodeError):
                    user = ""
            token_sha = hashlib.sha256(secret.encode()).hexdigest()
        rec = {"method": method, "path": path, "query": query_string, "headers": hdrs,
               "user": user, "token_sha256": token_sha, "status": None, "fault": None,
               "stderr": "", "time": self.now(), "real_time": time.time()}
        with self.lock:
            self._git_requests.append(rec)
        return rec

    def _git_backend(self, method, path, query_string, headers, body, remote_addr):
        """Run `git http-backend` as CGI for one request under git_root:
        (status, [(header, value)], body bytes, stderr text)."""
        env = {"PATH": os.environ.get("PATH") or "/usr/bin:/bin",
               "GIT_PROJECT_ROOT": self.git_root, "GIT_HTTP_EXPORT_ALL": "1",
               "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null",
               "GATEWAY_INTERFACE": "CGI/1.1", "SERVER_PROTOCOL": "HTTP/1.1",
               "SERVER_SOFTWARE": Handler.server_version, "REQUEST_METHOD": method,
               "PATH_INFO": path, "QUERY_STRING": query_string, "REMOTE_ADDR": remote_addr}
        if os.environ.get("HOME"):
            env["HOME"] = os.environ["HOME"]
        if method not in ("GET", "HEAD") or body:
            env["CONTENT_LENGTH"] = str(len(body))
        for name, var in (("Content-Type", "CONTENT_TYPE"), ("Git-Protocol", "HTTP_GIT_PROTOCOL"),
                          ("Content-Encoding", "HTTP_CONTENT_ENCODING")):
            v = headers.get(name)
            if v:
                env[var] = v
        try:
            p = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True,
                               timeout=GIT_BACKEND_TIMEOUT)
        except (OSError, subprocess.TimeoutExpired) as e:
            msg = "git http-backend: %s\n" % e
            return 500, [("Content-Type", "text/plain; charset=utf-8")], msg.encode(), msg
        err = p.stderr.decode("utf-8", "replace")
        out = p.stdout
        ends = [(i, n) for i, n in ((out.find(b"\r\n\r\n"), 4), (out.find(b"\n\n"), 2)) if i >= 0]
        if not ends:
            msg = "git http-backend exited %d without a CGI header: %s" % (p.returncode, err)
            return 500, [("Content-Type", "text/plain; charset=utf-8")], msg.encode(), err
        i, n = min(ends)
        status, hdrs = 200, []
        for line in out[:i].decode("latin-1").splitlines():
            k, _, v = line.partition(":")
            k, v = k.strip(), v.strip()
            if not k:
                continue
            if k.lower() == "status":
                status = int(v.split()[0])
            elif k.lower() not in ("content-length", "transfer-encoding", "connection"):
                hdrs.append((k, v))
        return status, hdrs, out[i + n:], err

    # -- JSON views (Gitea's convert.To* with fields declared in both specs) --

    def _t(self, epoch):
        return None if epoch is None else format_rfc3339(epoch, self.utc_offset)

    def _user_json(self, login):
        u = self._user(login)
        is_org = login in self.orgs and login not in self.users
        d = {
            "id": u["id"], "login": login, "login_name": "", "source_id": 0,
            "full_name": u["full_name"], "email": "%s@noreply.localhost" % login,
            "avatar_url": "%s/avatars/%s" % (self.url, login),
            "html_url": "%s/%s" % (self.url, login), "language": "",
            "is_admin": bool(u["admin"]), "last_login": self._t(u["created"]),
            "created": self._t(u["created"]), "restricted": False, "active": not is_org,
            "prohibit_login": False, "location": "", "website": "", "description": "",
            "visibility": "public", "followers_count": 0, "following_count": 0,
            "starred_repos_count": 0,
        }
        if self.compat_username:
            d["username"] = login
        return d

    def _repo_json(self, r, full_name=None):
        full_name = full_name or r["full_name"]
        owner, name = full_name.split("/", 1)
        html = "%s/%s" % (self.url, full_name)
        api = "%s%s/repos/%s" % (self.url, API, full_name)
        opened = [i for i in r["issues"].values() if i["state"] == "open"]
        return {
            "id": r["id"], "owner": self._user_json(owner), "name": name,
            "full_name": full_name, "description": "", "empty": False, "private": False,
            "fork": full_name != r["full_name"], "template": False, "parent": None,
            "mirror": False, "size": 0, "language": "", "languages_url": api + "/languages",
            "html_url": html, "url": api, "link": "", "ssh_url": "git@127.0.0.1:%s.git" % full_name,
            "clone_url": html + ".git", "original_url": "", "website": "",
            "stars_count": 0, "forks_count": 0, "watchers_count": 0,
            "open_issues_count": sum(1 for i in opened if not i["is_pull"]),
            "open_pr_counter": sum(1 for i in opened if i["is_pull"]),
            "release_counter": 0, "default_branch": r["default_branch"], "archived": False,
            "created_at": self._t(r["created"]), "updated_at": self._t(r["created"]),
            "archived_at": self._t(0),
            "permissions": {"admin": False, "push": True, "pull": True},
            "has_issues": True,
            "internal_tracker": {"enable_time_tracker": True,
                                 "allow_only_contributors_to_track_time": True,
                                 "enable_issue_dependencies": True},
            "has_wiki": True, "has_pull_requests": True, "has_projects": True,
            "has_releases": True, "has_packages": True, "has_actions": False,
            "ignore_whitespace_conflicts": False, "allow_merge_commits": True,
            "allow_rebase": True, "allow_rebase_explicit": True, "allow_squash_merge": True,
            "allow_fast_forward_only_merge": True, "allow_rebase_update": True,
            "default_delete_branch_after_merge": False, "default_merge_style": "merge",
            "default_allow_maintainer_edit": False, "default_update_style": "merge",
            "avatar_url": "", "internal": False, "mirror_interval": "", "repo_transfer": None,
            "topics": [], "object_format_name": "sha1",
        }

    def _issue_html(self, repo, issue):
        return "%s/%s/%s/%d" % (self.url, repo, "pulls" if issue["is_pull"] else "issues",
                                issue["number"])

    def _comment_json(self, c):
        issue = self.repos[c["repo"]]["issues"][c["number"]]
        html = self._issue_html(c["repo"], issue)
        return {
            "id": c["id"], "html_url": "%s#issuecomment-%d" % (html, c["id"]),
            "pull_request_url": html if issue["is_pull"] else "",
            "issue_url": "" if issue["is_pull"] else html,
            "user": self._user_json(c["user"]), "original_author": "",
            "original_author_id": 0, "body": c["body"], "assets": [],
            "created_at": self._t(c["created"]), "updated_at": self._t(c["updated"]),
        }

    def _reaction_json(self, x):
        return {"user": self._user_json(x["user"]), "content": x["content"],
                "created_at": self._t(x["created"])}

    def _branch_json(self, r, ref, sha, repo_name=None):
        return {"label": ref, "ref": ref, "sha": sha, "repo_id": r["id"],
                "repo": self._repo_json(r, repo_name)}

    def _pr_json(self, r, issue):
        full = r["full_name"]
        html = self._issue_html(full, issue)
        n = issue["number"]
        head_repo = issue.get("head_repo")
        return {
            "id": issue["id"], "url": html, "number": n, "user": self._user_json(issue["user"]),
            "title": issue["title"], "body": "", "labels": [], "milestone": None,
            "assignee": None, "assignees": [], "requested_reviewers": [],
            "requested_reviewers_teams": [], "state": issue["state"],
            "draft": issue["title"].startswith("WIP:"), "is_locked": False,
            "comments": len(issue["comment_ids"]), "review_comments": 0,
            "additions": 1, "deletions": 0, "changed_files": 1,
            "html_url": html, "diff_url": html + ".diff", "patch_url": html + ".patch",
            "mergeable": issue["state"] == "open", "merged": issue["merged"],
            "merged_at": self._t(issue["merged_at"]), "merge_commit_sha": issue["merge_sha"],
            "merged_by": self._user_json(issue["merged_by"]) if issue["merged_by"] else None,
            "allow_maintainer_edit": False,
            "base": self._branch_json(r, issue["base_ref"], issue["base_sha"]),
            "head": self._branch_json(r, issue["head_ref"], issue["head_sha"], head_repo),
            "merge_base": issue["base_sha"], "due_date": None,
            "created_at": self._t(issue["created"]), "updated_at": self._t(issue["updated"]),
            "closed_at": self._t(issue["closed"]), "pin_order": 0,
        }

    def _status_json(self, r, s):
        return {
            "id": s["id"], "status": s["state"], "target_url": s["target_url"],
            "description": s["description"],
            "url": "%s%s/repos/%s/statuses/%s" % (self.url, API, r["full_name"], s["sha"]),
            "context": s["context"], "creator": self._user_json(s["creator"]),
            "created_at": self._t(s["created"]), "updated_at": self._t(s["created"]),
        }

    # -- API handlers: called with the lock held; return (status, obj, headers)

    def _repo_or_404(self, p):
        r = self.repos.get("%s/%s" % (p["owner"], p["repo"]))
        if r is None:
            raise ApiError(404, "The target couldn't be found.")
        return r

    def _int_param(self, p, key):
        try:
            return int(p[key])
        except ValueError:
            raise ApiError(404, "The target couldn't be found.") from None

    def _issue_or_404(self, r, index):
        issue = r["issues"].get(index)
        if issue is None:
            raise ApiError(404, "issue does not exist [id: 0, repo_id: %d, index: %d]"
                           % (r["id"], index))
        return issue

    def _comment_or_404(self, r, p):
        c = self.comments.get(self._int_param(p, "id"))
        if c is None or c["repo"] != r["full_name"]:
            raise ApiError(404, "comment does not exist [id: %s]" % p["id"])
        return c

    @staticmethod
    def _since_before(query):
        out = []
        for key in ("since", "before"):
            value = (query.get(key) or [""])[0].strip()
            try:
                out.append(parse_rfc3339(value) if value else None)
            except ValueError as e:
                raise ApiError(422, str(e)) from None
        return out

    def _page(self, query):
        def first_int(key):
            try:
                return int((query.get(key) or ["0"])[0])
            except ValueError:
                return 0
        page = max(first_int("page"), 1)
        limit = first_int("limit")
        if limit <= 0:
            limit = self.default_limit
        limit = min(limit, self.max_limit)
        return page, limit

    def _paginate(self, items, query, path):
        """Slice a list like Gitea's ListOptions; X-Total-Count and Link."""
        page, limit = self._page(query)
        total = len(items)
        headers = {"X-Total-Count": str(total)}
        pages = max(1, -(-total // limit))
        cur = min(page, pages)
        links = []

        def link(n, rel):
            q = {k: v[0] for k, v in query.items()}
            q["page"] = str(n)
            qs = urllib.parse.urlencode(sorted(q.items()))
            links.append('<%s%s?%s>; rel="%s"' % (self.url, path, qs, rel))

        if cur < pages:
            link(cur + 1, "next")
            link(pages, "last")
        if cur > 1:
            link(1, "first")
            link(cur - 1, "prev")
        if links and self.link_header:
            headers["Link"] = ",".join(links)
        return items[(page - 1) * limit: page * limit], headers

    def h_user(self, doer, p, query, form, path):
        return 200, self._user_json(doer), {}

    def h_is_member(self, doer, p, query, form, path):
        org = self.orgs.get(p["org"])
        if org is None or p["username"] not in self.users:
            raise ApiError(404, "The target couldn't be found.")
        if doer in org["members"] or self.users[doer]["admin"]:
            if p["username"] in org["members"]:
                return 204, NO_BODY, {}
            raise ApiError(404, "The target couldn't be found.")
        if doer == p["username"]:
            raise ApiError(404, "The target couldn't be found.")
        loc = "%s/orgs/%s/public_members/%s" % (API, urllib.parse.quote(p["org"]),
                                               urllib.parse.quote(p["username"]))
        return 303, NO_BODY, {"Location": loc}

    def h_is_public_member(self, doer, p, query, form, path):
        org = self.orgs.get(p["org"])
        if org is None or p["username"] not in self.users:
            raise ApiError(404, "The target couldn't be found.")
        if p["username"] not in org["public"]:
            raise ApiError(404, "The target couldn't be found.")
        return 204, NO_BODY, {}

    def h_repo(self, doer, p, query, form, path):
        return 200, self._repo_json(self._repo_or_404(p)), {}

    def h_repo_comments(self, doer, p, query, form, path):
        r = self._repo_or_404(p)
        since, before = self._since_before(query)
        cs = [self.comments[i] for i in r["comment_ids"]]
        if since is not None:
            cs = [c for c in cs if c["updated"] >= since]
        if before is not None:
            cs = [c for c in cs if c["updated"] <= before]
        cs.sort(key=lambda c: (c["created"], c["id"]))
        page, headers = self._paginate(cs, query, path)
        return 200, [self._comment_json(c) for c in page], headers

    def h_issue_comments(self, doer, p, query, form, path):
        r = self._repo_or_404(p)
        since, before = self._since_before(query)
        issue = self._issue_or_404(r, self._int_param(p, "index"))
        cs = [self.comments[i] for i in issue["comment_ids"]]
        if since is not None:
            cs = [c for c in cs if c["updated"] >= since]
        if before is not None:
            cs = [c for c in cs if c["updated"] <= before]
        cs.sort(key=lambda c: (c["created"], c["id"]))
        return 200, [self._comment_json(c) for c in cs], {"X-Total-Count": str(len(cs))}

    def h_get_comment(self, doer, p, query, form, path):
        r = self._repo_or_404(p)
        return 200, self._comment_json(self._comment_or_404(r, p)), {}

    @staticmethod
    def _required_body(form):
        body = form.get("body")
        if body is None or body == "":
            raise ApiError(422, "[Body]: Required")
        if not isinstance(body, str):
            raise ApiError(422, "[Body]: json: cannot unmarshal into field body of type string")
        return body

    def h_create_comment(self, doer, p, query, form, path):
        r = self._repo_or_404(p)
        body = self._required_body(form)
        issue = self._issue_or_404(r, self._int_param(p, "index"))
        c = self._add_comment(r["full_name"], issue["number"], doer, body)
        return 201, self._comment_json(c), {}

    def h_edit_comment(self, doer, p, query, form, path):
        r = self._repo_or_404(p)
        body = self._required_body(form)
        c = self._comment_or_404(r, p)
        org = self.orgs.get(r["owner"])
        writer = self.users[doer]["admin"] or (org is not None and doer in org["members"])
        if doer != c["user"] and not writer:
            return 403, NO_BODY, {}
        if body != c["body"]:
            c["body"] = body
            c["updated"] = int(self.now())
        return 200, self._comment_json(c), {}

    def h_get_reactions(self, doer, p, query, form, path):
        r = self._repo_or_404(p)
        c = self._comment_or_404(r, p)
        xs = [self._reaction_json(x) for x in self.reactions.get(c["id"], [])]
        return 200, xs or None, {}  # Gitea: a nil slice, so null when empty

    def h_post_reaction(self, doer, p, query, form, path):
        r = self._repo_or_404(p)
        c = self._comment_or_404(r, p)
        content = form.get("content")
        if not isinstance(content, str) or content not in ALLOWED_REACTIONS:
            raise ApiError(403, "'%s' is not an allowed reaction" % (content,))
        xs = self.reactions.setdefault(c["id"], [])
        for x in xs:
            if x["user"] == doer and x["content"] == content:
                return 200, self._reaction_json(x), {}
        x = {"user": doer, "content": content, "created": int(self.now())}
        xs.append(x)
        return 201, self._reaction_json(x), {}

    def h_pull(self, doer, p, query, form, path):
        r = self._repo_or_404(p)
        issue = r["issues"].get(self._int_param(p, "index"))
        if issue is None or not issue["is_pull"]:
            raise ApiError(404, "pull request does not exist [id: 0, issue_id: 0, head_repo_id: 0, "
                                "base_repo_id: 0, head_branch: , base_branch: ]")
        return 200, self._pr_json(r, issue), {}

    def h_create_status(self, doer, p, query, form, path):
        r = self._repo_or_404(p)
        sha = p["sha"]
        state = form.get("state")
        if state not in STATUS_STATES:
            raise ApiError(400, "invalid commit status state %r" % (state,))
        if self.strict_commits and sha not in r["commits"]:
            raise ApiError(404, "object does not exist [id: %s, rel_path: ]" % sha)
        for key in ("target_url", "description", "context"):
            if not isinstance(form.get(key, ""), str):
                raise ApiError(422, "[%s]: cannot unmarshal into string" % key)
        s = {"id": self._id(), "sha": sha, "state": state, "creator": doer,
             "target_url": form.get("target_url", ""), "description": form.get("description", ""),
             "context": form.get("context", ""), "created": int(self.now())}
        r["statuses"].setdefault(sha, []).append(s)
        return 201, self._status_json(r, s), {}

    def _statuses_answer(self, r, sha, query, path):
        ss = list(r["statuses"].get(sha, []))
        state = (query.get("state") or [""])[0]
        if state:
            ss = [s for s in ss if s["state"] == state]
        sort = (query.get("sort") or [""])[0]
        if sort in ("oldest", "leastupdate", "highestindex"):
            ss.sort(key=lambda s: (s["created"], s["id"]))
        else:
            ss.sort(key=lambda s: (s["created"], s["id"]), reverse=True)
        page, headers = self._paginate(ss, query, path)
        return 200, [self._status_json(r, s) for s in page], headers

    def h_list_statuses(self, doer, p, query, form, path):
        return self._statuses_answer(self._repo_or_404(p), p["sha"], query, path)

    def h_list_statuses_by_ref(self, doer, p, query, form, path):
        r = self._repo_or_404(p)
        ref = p["ref"]
        sha = ref
        for issue in sorted(r["issues"].values(), key=lambda i: i["number"]):
            if issue["is_pull"] and ref in (issue["head_ref"], "refs/heads/" + issue["head_ref"]):
                sha = issue["head_sha"]
        return self._statuses_answer(r, sha, query, path)

    def h_raw_file(self, doer, p, query, form, path):
        """GET /repos/{owner}/{repo}/raw/{filepath}?ref=: the file's bytes
        at the ref (Gitea's repo.GetRawFile): 404 for an unknown ref, a
        missing file or a directory."""
        r = self._repo_or_404(p)
        sha = self._resolve_ref(r, (query.get("ref") or [""])[0])
        if sha is None:
            raise ApiError(404, "The target couldn't be found.")
        tree = r["trees"].get(sha, {})
        name = p["filepath"].strip("/")
        if name not in tree:
            raise ApiError(404, "The target couldn't be found.")
        return 200, Raw(tree[name]), {}

    # -- dispatch ----------------------------------------------------------

    def dispatch(self, method, path, query, headers, body):
        """Answer one /api/v1 request: (status, obj or None, headers)."""
        auth = headers.get("Authorization")
        doer = None
        if auth is not None:
            scheme, _, tok = auth.partition(" ")
            doer = self.tokens.get(tok.strip()) if scheme.lower() in ("token", "bearer") else None
            if doer is None:
                raise ApiError(401, "user does not exist [uid: 0, name: ]")
        sub = path[len(API):]
        for m, template, regex, handler in COMPILED_ROUTES:
            match = regex.match(sub)
            if match and m == method:
                break
        else:
            raise ApiError(404, "The target couldn't be found.")
        if doer is None:
            raise ApiError(401, "token is required")
        p = {k: urllib.parse.unquote(v) for k, v in match.groupdict().items()}
        form = {}
        if method in ("POST", "PATCH", "PUT"):
            form = self._bind(headers.get("Content-Type", ""), body)
        with self.lock:
            return getattr(self, handler)(doer, p, query, form, path)

    @staticmethod
    def _bind(ctype, body):
        """Gitea's binding.Bind: the Content-Type picks the decoder; a decode
        error is a 422 validationError."""
        if "form-urlencoded" in ctype:
            q = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
            return {k: v[0] for k, v in q.items()}
        if "multipart/form-data" in ctype:
            raise ApiError(422, "[]: multipart bodies are not supported by the fake")
        if "json" not in ctype:
            raise ApiError(422, "[]: %s" % ("Empty Content-Type" if not ctype
                                           else "Unsupported Content-Type"))
        try:
            obj = json.loads(body.decode("utf-8")) if body.strip() else {}
        except (ValueError, UnicodeDecodeError) as e:
            raise ApiError(422, "[]: DeserializationError: %s" % e) from None
        if not isinstance(obj, dict):
            raise ApiError(422, "[]: DeserializationError: expected a JSON object")
        return obj

    # -- control endpoints ---------------------------------------------------

    def control(self, method, path, query, body):
        try:
            req = json.loads(body.decode("utf-8")) if body.strip() else {}
        except ValueError:
            return 400, {"message": "bad JSON"}
        q = {k: v[0] for k, v in query.items()}
        try:
            if method == "GET" and path == "/_fake/requests/count":
                return 200, self.request_counts()
            if method == "GET" and path == "/_fake/statuses":
                return 200, self.statuses(q["repo"], q["sha"]) if q["repo"] in self.repos else []
            if method == "GET" and path == "/_fake/comments":
                return 200, self.comments_of(q["repo"], int(q["number"]))
            if method != "POST":
                return 404, {"message": "no such control endpoint"}
            if path == "/_fake/comment":
                return 201, self.comment(req["repo"], int(req["number"]), req["user"],
                                         req["body"], req.get("created_at"))
            if path == "/_fake/edit_comment":
                return 200, self.edit_comment(req["repo"], int(req["id"]), req["body"])
            if path == "/_fake/open_pr":
                n = self.open_pr(req["repo"], number=req.get("number"),
                                 head_sha=req.get("head_sha"), user=req.get("user"),
                                 head_ref=req.get("head_ref"), files=req.get("files"))
                return 201, {"number": n}
            if path == "/_fake/files":
                self.set_files(req["repo"], req["sha"], req["files"])
                return 204, NO_BODY
            if path == "/_fake/close_pr":
                self.close_pr(req["repo"], int(req["number"]), bool(req.get("merged")))
                return 200, self.pr(req["repo"], int(req["number"]))
            if path == "/_fake/push":
                return 200, {"sha": self.push(req["repo"], int(req["number"]), req.get("head_sha"),
                                              req.get("files"))}
            if path == "/_fake/member":
                self.add_member(req["org"], req["user"], bool(req.get("public")))
                return 204, NO_BODY
            if path == "/_fake/clock":
                if "set" in req:
                    self.set_clock(req["set"], bool(req.get("frozen")))
                if "advance" in req:
                    self.advance(req["advance"])
                return 200, {"now": self.now()}
            if path == "/_fake/fault":
                kw = {k: v for k, v in req.items() if k not in ("path", "kind", "count", "method")}
                self.fault(req["path"], req["kind"], req.get("count", 1), req.get("method"), **kw)
                return 201, {}
            if path == "/_fake/clear_faults":
                self.clear_faults()
                return 204, NO_BODY
        except (KeyError, ValueError, TypeError) as e:
            return 400, {"message": "%s: %r" % (type(e).__name__, e)}
        return 404, {"message": "no such control endpoint"}


class Server(ThreadingHTTPServer):
    """A thread per connection; stop() does not wait for idle keep-alive
    connections (it closes them); a deep backlog for bursts of connects."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 128

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):  # the client went away: its business
            return
        with self.forge.lock:
            self.forge.errors.append(traceback.format_exc())


class Handler(BaseHTTPRequestHandler):
    """One connection: reads requests, applies faults, answers from the forge."""

    protocol_version = "HTTP/1.1"
    server_version = "FakeForge/1"

    def version_string(self):
        return self.server_version

    def setup(self):
        super().setup()
        # Headers and body are two writes: without NODELAY, Nagle and the
        # client's delayed ACK add 40 ms to every answer.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.forge.lock:
            self.server.forge._conns.add(self.connection)

    def finish(self):
        for f in (self.wfile, self.rfile):
            try:
                f.close()  # the last reference: now the socket really closes
            except Exception:
                pass
        with self.server.forge.lock:
            self.server.forge._conns.discard(self.connection)

    def log_message(self, *args):
        pass

    def date_time_string(self, timestamp=None):
        return email.utils.formatdate(self.server.forge.now(), usegmt=True)

    def do_GET(self):
        self._handle()

    do_POST = do_PATCH = do_PUT = do_DELETE = do_GET

    def _read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
                if len(data) > MAX_REQUEST_BODY:
                    raise ValueError("request body too large")
        n = int(self.headers.get("Content-Length") or 0)
        if n > MAX_REQUEST_BODY:
            raise ValueError("request body too large")
        return self.rfile.read(n) if n else b""

    def _send(self, status, body=b"", headers=None, ctype="application/json;charset=utf-8"):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(self, status, obj, headers=None):
        if isinstance(obj, Raw):
            self._send(status, obj.data, headers, obj.ctype)
            return
        body = b"" if obj is NO_BODY else (
            json.dumps(obj, separators=(",", ":")).encode() + b"\n")
        self._send(status, body, headers)

    def _reset(self):
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    def _handle(self):
        forge = self.server.forge
        split = urllib.parse.urlsplit(self.path)
        path = split.path
        query = urllib.parse.parse_qs(split.query, keep_blank_values=True)
        try:
            body = self._read_body()
        except ValueError:
            self.close_connection = True
            self._send_json(413, {"message": "request body too large", "url": DOC_URL},
                            {"Connection": "close"})
            return
        if path.startswith("/_fake/"):
            try:
                status, obj = forge.control(self.command, path, query, body)
            except Exception as e:
                with forge.lock:
                    forge.errors.append(traceback.format_exc())
                status, obj = 500, {"message": "fake forge bug: %r" % e}
            self._send_json(status, obj)
            return
        if forge.git_root is not None and not path.startswith(API + "/") \
                and GIT_PATH_RE.match(path) and "/../" not in path + "/" \
                and "/./" not in path + "/":
            self._handle_git(path, split.query, body)
            return
        headers = {k: v for k, v in self.headers.items()}
        rec = forge._record(self.command, path, query, headers, body)
        fault = forge._take_fault(self.command, path)
        if fault is not None:
            rec["fault"] = fault["kind"]
            if self._apply_fault(fault, rec):
                return
        try:
            if not path.startswith(API + "/"):
                raise ApiError(404, "The target couldn't be found.")
            status, obj, extra = forge.dispatch(self.command, path, query, self.headers, body)
        except ApiError as e:
            status, obj, extra = e.status, {"message": e.message, "url": DOC_URL}, {}
        except Exception as e:  # a bug in the fake: say so loudly
            with forge.lock:
                forge.errors.append(traceback.format_exc())
            status, obj, extra = 500, {"message": "fake forge bug: %r" % e, "url": DOC_URL}, {}
        if fault is not None and fault["kind"] == "reset_after":
            self._reset()
            return
        rec["status"] = status
        self._send_json(status, obj, extra)

    def _handle_git(self, path, query_string, body):
        """A git smart HTTP request (clone, fetch): faults apply, then
        `git http-backend` answers; recorded in forge.git_requests."""
        forge = self.server.forge
        rec = forge._record_git(self.command, path, query_string, self.headers)
        fault = forge._take_fault(self.command, path)
        if fault is not None:
            rec["fault"] = fault["kind"]
            if self._apply_fault(fault, rec):
                return
        status, hdrs, data, err = forge._git_backend(self.command, path, query_string,
                                                     self.headers, body, self.client_address[0])
        rec["stderr"] = err
        if fault is not None and fault["kind"] == "reset_after":
            self._reset()
            return
        rec["status"] = status
        self.send_response(status)
        for k, v in hdrs:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data and self.command != "HEAD":
            self.wfile.write(data)

    def _apply_fault(self, fault, rec):
        """Act out a fault; True when the request is finished with."""
        kind, kw = fault["kind"], fault["kw"]
        forge = self.server.forge
        if kind == "delay":
            forge._stopping.wait(float(kw.get("seconds", 1.0)))
            return False
        if kind == "reset_after":
            return False
        if kind == "status":
            status = int(kw.get("status", 500))
            rec["status"] = status
            msg = kw.get("message", "injected fault")
            self._send_json(status, {"message": msg, "url": DOC_URL})
            return True
        if kind == "429":
            rec["status"] = 429
            self._send_json(429, {"message": "rate limited", "url": DOC_URL},
                            {"Retry-After": str(kw.get("retry_after", 1))})
            return True
        if kind == "malformed":
            rec["status"] = 200
            self._send(200, b'[{"id":1,"body":"!testme","user":{"login":')
            return True
        if kind == "oversized":
            self._send_oversized(int(kw.get("size", 8 << 20)))
            rec["status"] = 200
            return True
        if kind == "reset":
            self._reset()
            return True
        if kind == "hang":
            seconds = kw.get("seconds")
            forge._stopping.wait(None if seconds is None else float(seconds))
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return True
        raise AssertionError(kind)

    def _send_oversized(self, size):
        head = b'[{"id":1,"body":"'
        size = max(size, len(head))
        self.send_response(200)
        self.send_header("Content-Type", "application/json;charset=utf-8")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        try:
            self.wfile.write(head)
            left = size - len(head)
            chunk = b"x" * 65536
            while left > 0:
                self.wfile.write(chunk[:left])
                left -= min(left, len(chunk))
        except OSError:
            self.close_connection = True  # the client gave up


def _load_or_make_token(path):
    try:
        with open(path, encoding="utf-8") as f:
            token = f.read().strip()
        if token:
            return token
    except FileNotFoundError:
        pass
    token = secrets.token_hex(20)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token


def main(argv=None):
    ap = argparse.ArgumentParser(description="fake Gitea/Forgejo forge for ccci benchmarks")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--repos", type=int, default=1)
    ap.add_argument("--org", default="bench")
    ap.add_argument("--bot", default="ccci-bot")
    ap.add_argument("--token-file", required=True)
    ap.add_argument("--member", action="append", default=[],
                    help="another org member (repeatable)")
    ap.add_argument("--user", action="append", default=[],
                    help="a user outside the org (repeatable)")
    ap.add_argument("--record-limit", type=int, default=10000,
                    help="request records kept (counters are always complete)")
    ap.add_argument("--git-root", default=None,
                    help="serve git clones of <DIR>/<owner>/<repo>.git at <url>/<owner>/<repo>.git")
    args = ap.parse_args(argv)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())

    forge = FakeForge(host=args.host, port=args.port, record_limit=args.record_limit,
                      git_root=args.git_root)
    forge.add_user(args.bot, token=_load_or_make_token(args.token_file))
    for login in args.member + args.user:
        forge.add_user(login)
    forge.add_org(args.org, members=[args.bot] + args.member)
    for i in range(args.repos):
        forge.add_repo("%s/r%d" % (args.org, i))
    forge.start()
    sys.stdout.write(json.dumps({"url": forge.url, "pid": os.getpid()}) + "\n")
    sys.stdout.flush()
    while not done.wait(1.0):
        pass
    forge.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
