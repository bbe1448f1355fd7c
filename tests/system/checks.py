"""The invariants of the system acceptance scenario (issue 18,
/work/notes/i18.md "checks.check_all"): read only the records the driver
wrote (ROOT/records), the daemon's state dir, the live fake forge, the fake
swarm and the abra dir, after the daemon stopped. Standard library only.

    results = check_all(world)      # [{"name", "ok", "value", "detail"}, ...]
    print_table(results)
    text = to_json(results, {"seed": 7})

Every check turns an exception of its own into a failed result (so one
broken record never hides the other checks)."""

import base64
import datetime
import errno
import fcntl
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
for _p in (os.path.join(TESTS, "integration"), os.path.join(TESTS, "support")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from test_runs import procs_with  # noqa: E402  (the integration tests' proc scan)
import fakeswarm  # noqa: E402

MAX_DETAIL = 20
MARKER = "<!-- ccci:results -->"
DEFAULT_CONTEXT = "ccci/testme"  # docs/config.md forge.status_context
MIN_SECRET_LEN = 8  # docs/redaction.md min_secret_len default

# docs/harness-contract.md "Reasons, statuses, exit codes"
COMMIT_STATUS = {
    "success": "success",
    "failure": "failure",
    "deploy-budget": "failure",
    "timeout": "error",
    "cancelled": "error",
    "orphaned": "error",
    "superseded": "error",
    "error": "error",
}
LEVEL_NAMES = ["none", "install", "upgrade", "backup and restore", "custom"]
TIER_STATUSES = ("pass", "fail", "skip", "error", "cancelled", "timeout")
FAILED_TIER = ("fail", "error", "cancelled", "timeout")

NAMES = [
    "trigger-once",
    "status-final",
    "one-results-comment",
    "no-secret",
    "no-process",
    "no-deployment",
    "no-lock",
    "rss-bound",
    "comment-to-start",
    "write-to-viewer",
    "clients",
    "faults-hit",
]


# ------------------------------------------------------------------ helpers


def result(name, ok, value, detail=()):
    detail = [str(d) for d in detail]
    return {"name": name, "ok": bool(ok), "value": str(value),
            "detail": detail[:MAX_DETAIL]}


def _read_lines(path, keep):
    """The values keep() takes from the JSON lines of a file (it returns
    None for one it refuses), and the count of torn, bad or refused lines."""
    out, bad = [], 0
    try:
        with open(path, "rb") as f:
            for line in f:
                if not line.strip():
                    continue
                try:
                    v = keep(json.loads(line))
                except ValueError:
                    v = None
                if v is None:
                    bad += 1
                else:
                    out.append(v)
    except FileNotFoundError:
        pass
    return out, bad


def read_jsonl(path):
    """The objects of a JSON-lines file; a torn or bad line is skipped (the
    count of such lines is returned too)."""
    return _read_lines(path, lambda v: v if isinstance(v, dict) else None)


def read_json(path):
    try:
        with open(path, "rb") as f:
            return json.loads(f.read())
    except (OSError, ValueError):
        return None


def parse_time(text):
    """RFC 3339 (Z or an offset) to epoch seconds, or None."""
    if not isinstance(text, str) or not text:
        return None
    try:
        d = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if d.tzinfo is None:
        d = d.replace(tzinfo=datetime.timezone.utc)
    return d.timestamp()


def run_id_for(created_at, comment_id):
    """docs/forge.md: `<created_at as YYYYMMDD-HHMMSS>-c<comment id>` (UTC)."""
    t = parse_time(created_at)
    if t is None:
        return None
    stamp = datetime.datetime.fromtimestamp(int(t), datetime.timezone.utc)
    return "%s-c%d" % (stamp.strftime("%Y%m%d-%H%M%S"), int(comment_id))


def is_trigger(body):
    """The grammar (docs/forge.md): a line exactly `!testme` or `!testme
    --quick` after trimming, outside fenced code blocks."""
    fence = False
    for line in (body or "").splitlines():
        s = line.strip()
        if s.startswith("```") or s.startswith("~~~"):
            fence = not fence
            continue
        if not fence and s in ("!testme", "!testme --quick"):
            return True
    return False


def percentile(values, p):
    if not values:
        return None
    v = sorted(values)
    k = max(0, min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1)))))
    return v[k]


def fmt_s(x):
    return "-" if x is None else "%.3fs" % x


def id_key(run_id):
    """Run ids in the order the reporter compares them (strcmp)."""
    return run_id or ""


class Runs:
    """runs/<id>/meta.json of the state dir, read once."""

    def __init__(self, state_dir):
        self.dir = os.path.join(state_dir, "runs")
        self.meta = {}
        self.bad = []
        try:
            names = sorted(os.listdir(self.dir))
        except FileNotFoundError:
            names = []
        for n in names:
            p = os.path.join(self.dir, n)
            if not os.path.isdir(p):
                continue
            m = read_json(os.path.join(p, "meta.json"))
            if not isinstance(m, dict):
                self.bad.append(n)
                continue
            self.meta[n] = m
        self.by_comment = {}
        for n in self.meta:
            mm = re.search(r"-c(\d+)$", n)
            if mm:
                self.by_comment.setdefault(int(mm.group(1)), []).append(n)

    def forge_runs(self):
        return {k: m for k, m in self.meta.items()
                if isinstance(m.get("trigger"), dict) and m["trigger"].get("kind") == "forge"}

    def results(self, rid):
        return read_json(os.path.join(self.dir, rid, "results.json"))

    def log_notes(self, rid):
        """`[ccci] ...` lines and step names of the run's logs."""
        notes, steps = [], []
        d = os.path.join(self.dir, rid, "logs")
        try:
            names = sorted(os.listdir(d))
        except OSError:
            return notes, steps
        for n in names:
            if not n.endswith(".jsonl"):
                continue
            steps.append(n[:-6].split("-", 1)[-1])
            lines, _ = read_jsonl(os.path.join(d, n))
            for ln in lines:
                out = ln.get("out")
                if isinstance(out, str) and out.startswith("[ccci] "):
                    notes.append(out.strip())
        return notes, steps


def results_complete(res):
    if not isinstance(res, dict) or "level" not in res:
        return False
    tiers = res.get("tiers")
    if not isinstance(tiers, dict) or not tiers:
        return False
    for t in tiers.values():
        if not isinstance(t, dict) or t.get("status") not in TIER_STATUSES:
            return False
    return True


def results_level(reason, res):
    """ccci_outcome_level: the level (int) of a success or failure with a
    complete results.json, else None."""
    if reason not in ("success", "failure") or not results_complete(res):
        return None
    lv = res.get("level")
    if isinstance(lv, bool):
        return None
    if isinstance(lv, int) and 0 <= lv <= 4:
        return lv
    if isinstance(lv, str) and re.fullmatch(r"L[0-4]", lv):
        return int(lv[1])
    return None


def expected_description(reason, res):
    """A predicate on the commit status description (docs/forge.md
    "Reporting", src/forge/forgebot.c status_description) and its text."""
    lv = results_level(reason, res)
    lvtext = None if lv is None else "L%d %s" % (lv, LEVEL_NAMES[lv])
    if reason == "success" and lvtext:
        want = "ccci: " + lvtext
        return (lambda d: d == want), repr(want)
    if reason == "failure":
        if lvtext:
            return (lambda d: d.startswith("ccci: failure") and d.endswith("(%s)" % lvtext)
                    ), "ccci: failure[ in <tier>] (%s)" % lvtext
        return (lambda d: d.startswith("ccci: failure") and not re.search(r"\bL[0-4]\b", d)
                ), "ccci: failure[ in <tier>] (no level)"
    want = "ccci: %s" % reason
    return (lambda d: d == want), repr(want)


def _world_context(world):
    return getattr(world, "status_context", None) or DEFAULT_CONTEXT


def _records(world):
    return getattr(world, "records", None) or os.path.join(world.root, "records")


def _events(world):
    ev, _ = read_jsonl(os.path.join(_records(world), "events.jsonl"))
    return ev


def _harness(world):
    h, _ = read_jsonl(os.path.join(_records(world), "harness.jsonl"))
    return h


def _pr_key(m):
    return (m.get("repo"), m.get("pr"))


def _newest(rids):
    return max(rids, key=id_key)


# ------------------------------------------------------------- 1 trigger-once


def check_trigger_once(world, runs=None):
    """Every accepted trigger (a `comment` event by a member, a body the
    grammar takes, on a PR with no `close` event before it) has exactly one
    run dir `runs/*-c<comment id>`, named after its created_at (UTC), whose
    meta.json names the comment, repo and PR; the harness started (role
    run) at most once per attempt (meta `attempt`, 1 unless a daemon stop
    requeued it); it is `finished` with a reason. A run the harness never
    started finished as: `superseded` with `trigger.superseded_by` naming
    another run of the same repo and PR accepted no earlier; `cancelled` with
    `trigger.cancelled_by_uid`; `orphaned` with a `kill9` event before its
    finish (its daemon died between recording the start and the harness's
    first line) and a `janitor` step; `error` with a `[ccci]` note in its log
    or a warn/error line `run=<id>` in the daemon log. Anything else (a
    `timeout`, a `success`...) that never started is wrong. A comment on a
    PR closed after the comment may have zero runs (the daemon may see it
    closed), never two. Every other comment (a non-member, not a trigger,
    on a closed PR) has no run; a forge run with no comment event is
    reported too."""
    name = "trigger-once"
    runs = runs or Runs(world.state_dir)
    events = _events(world)
    starts = {}
    for h in _harness(world):
        if h.get("event") == "start" and h.get("role", "run") == "run":
            starts[h.get("run")] = starts.get(h.get("run"), 0) + 1
    closes = {}
    kills = []
    for e in events:
        if e.get("kind") == "close":
            closes.setdefault((e.get("repo"), e.get("pr")), []).append(e.get("t", 0))
        elif e.get("kind") == "kill9":
            kills.append(e.get("t", 0))
    daemon_log = _daemon_log_by_run(world)
    bad = []
    accepted = twice = never = 0
    comment_ids = set()
    for e in events:
        if e.get("kind") != "comment":
            continue
        cid = e.get("comment_id")
        comment_ids.add(cid)
        key = (e.get("repo"), e.get("pr"))
        t = e.get("t", 0)
        closed_before = any(ct <= t for ct in closes.get(key, []))
        closed_after = any(ct > t for ct in closes.get(key, []))
        trig = bool(e.get("member")) and is_trigger(e.get("body")) and not closed_before
        dirs = runs.by_comment.get(cid, [])
        if not trig:
            if dirs:
                bad.append("comment %s (%s#%s by %s%s) is no trigger but has run %s"
                           % (cid, key[0], key[1], e.get("user"),
                              "" if e.get("member") else ", not a member",
                              ", ".join(dirs)))
            continue
        accepted += 1
        if (e.get("hooks") or 0) >= 2:
            twice += 1
        if not dirs:
            if not closed_after:
                bad.append("comment %s (%s#%s): no run" % (cid, key[0], key[1]))
            continue
        if len(dirs) > 1:
            bad.append("comment %s: %d runs: %s" % (cid, len(dirs), ", ".join(dirs)))
            continue
        rid = dirs[0]
        m = runs.meta[rid]
        want = run_id_for(e.get("created_at"), cid)
        if want is not None and rid != want:
            bad.append("run %s: the id should be %s (created_at %s)" % (rid, want, e.get("created_at")))
        tr = m.get("trigger") or {}
        if tr.get("comment_id") != cid or m.get("repo") != key[0] or m.get("pr") != key[1]:
            bad.append("run %s: meta names %s#%s comment %s, the comment is %s#%s %s"
                       % (rid, m.get("repo"), m.get("pr"), tr.get("comment_id"), key[0], key[1], cid))
        n = starts.get(rid, 0)
        attempts = m.get("attempt") if isinstance(m.get("attempt"), int) else 1
        if n > max(1, attempts):
            bad.append("run %s: the harness started %d times (attempt %d)" % (rid, n, attempts))
        if m.get("state") != "finished" or not m.get("reason"):
            bad.append("run %s: not finished (state %s, reason %s)" % (rid, m.get("state"), m.get("reason")))
            continue
        if n > 0:
            if m.get("reason") == "superseded":
                bad.append("run %s: superseded, but the harness started" % rid)
            continue
        never += 1
        reason = m.get("reason")
        why = _never_started_ok(runs, rid, m, kills, daemon_log)
        if why:
            bad.append("run %s never started, finished %s: %s" % (rid, reason, why))
    for rid, m in sorted(runs.forge_runs().items()):
        if (m.get("trigger") or {}).get("comment_id") not in comment_ids:
            bad.append("run %s: no comment event for comment %s"
                       % (rid, (m.get("trigger") or {}).get("comment_id")))
    for n in runs.bad:
        bad.append("run dir %s: meta.json unreadable" % n)
    value = "%d accepted triggers, %d runs, %d never started, %d hooked twice" % (
        accepted, len(runs.meta), never, twice)
    return result(name, not bad, value, bad)


def _never_started_ok(runs, rid, m, kills, daemon_log):
    """'' when the reason of a run the harness never started is explained,
    else why not."""
    reason = m.get("reason")
    tr = m.get("trigger") or {}
    if reason == "superseded":
        by = tr.get("superseded_by")
        o = runs.meta.get(by) if isinstance(by, str) else None
        if o is None:
            return "superseded_by %r is no run" % (by,)
        if _pr_key(o) != _pr_key(m) or by == rid:
            return "superseded_by %s is of %s#%s" % (by, o.get("repo"), o.get("pr"))
        c0, c1 = parse_time(m.get("created_at")), parse_time(o.get("created_at"))
        if c0 is not None and c1 is not None and c1 < c0:
            return "superseded_by %s, accepted before it" % by
        return ""
    if reason == "cancelled":
        return "" if "cancelled_by_uid" in tr else "no trigger.cancelled_by_uid"
    notes, steps = runs.log_notes(rid)
    if reason == "orphaned":
        t0 = parse_time(m.get("created_at")) or 0
        t1 = parse_time(m.get("finished_at")) or float("inf")
        if not any(t0 - 1 <= k <= t1 + 1 for k in kills):
            return "no kill9 between its creation and finish"
        if "janitor" not in steps:
            return "no janitor step in its log"
        return ""
    if reason == "error":
        if notes or daemon_log.get(rid):
            return ""
        return "no [ccci] note in its log and no warn/error line run=%s in the daemon log" % rid
    return "a run that never started cannot end %s" % reason


def _daemon_log_by_run(world):
    """run id -> warn/error lines of the daemon log naming it."""
    out = {}
    path = getattr(world, "daemon_log", None)
    if not path:
        return out
    try:
        with open(path, "rb") as f:
            for raw in f:
                line = raw.decode("utf-8", "replace")
                if not (line.startswith("warn ") or line.startswith("error ")):
                    continue
                mm = re.search(r" run=(\S+) ", line)
                if mm:
                    out.setdefault(mm.group(1), []).append(line.strip())
    except OSError:
        pass
    return out


# -------------------------------------------------------------- 2 status-final


def check_status_final(world, runs=None):
    """Commit statuses (context `forge.status_context`) against
    docs/forge.md "Reporting" and src/forge/forgebot.c report_run. For each
    PR's newest run (greatest run id, the reporter's order): the newest
    status of its sha is final (not pending), names the run
    (target_url .../runs/<id>), its state is the reason's commit status
    (success; failure for failure and deploy-budget; error otherwise) and
    its description is `ccci: L<n> <name>` for a success with a complete
    results.json, `ccci: failure[ in <tier>] (L<n> <name>)` for a failure
    with one, else `ccci: <reason>` (no level). Runs of a PR are ordered
    as the daemon orders them (run number, then id). Older runs: every
    final status a run posted matches it as
    above; a run superseded by a run on its own sha posted none; a run that
    no newer run on its sha overlapped (none
    accepted before its finish + 1 s and unfinished then) posted one, and
    one that a newer run surely overlapped (accepted before its finish - 1 s,
    finished after it + 1 s) posted none (runs finished within a kill -9's
    restart window are not held to either, the catch-up reports them
    later). Every status names a known run of that repo. Every sha a run
    was on ends with a final status: one whose newest status is still
    pending fails (`stale pending`)."""
    name = "status-final"
    runs = runs or Runs(world.state_dir)
    ctx = _world_context(world)
    forge = world.forge
    fr = runs.forge_runs()
    by_pr = {}
    for rid, m in fr.items():
        by_pr.setdefault(_pr_key(m), []).append(rid)
    windows = _restart_windows(_events(world))
    held = _forge_windows(_events(world))
    bad = []
    checked = posted = 0
    stale = 0
    cache = {}

    def sts(repo, sha):
        k = (repo, sha)
        if k not in cache:
            try:
                cache[k] = [s for s in forge.statuses(repo, sha) if s.get("context") == ctx]
            except KeyError:
                cache[k] = []
        return cache[k]

    def run_of(s):
        mm = re.search(r"/runs/([^/?#]+)$", s.get("target_url") or "")
        return mm.group(1) if mm else None

    def match(rid, s):
        m = fr[rid]
        reason = m.get("reason")
        want = COMMIT_STATUS.get(reason)
        if s.get("status") != want:
            return "state %s, want %s (reason %s)" % (s.get("status"), want, reason)
        ok, text = expected_description(reason, runs.results(rid))
        if not ok(s.get("description") or ""):
            return "description %r, want %s" % (s.get("description"), text)
        return ""

    def accepted(rid):
        # The daemon's order (docs/forge.md "Which run's status a commit
        # shows"): the repo's run number, the id only breaking a tie.
        n = fr.get(rid, {}).get("number")
        return (n if isinstance(n, int) else 0, id_key(rid))

    for key, rids in sorted(by_pr.items(), key=lambda kv: (str(kv[0][0]), kv[0][1] or 0)):
        rids.sort(key=accepted)
        newest = rids[-1]
        m = fr[newest]
        checked += 1
        if m.get("state") != "finished":
            bad.append("%s#%s: newest run %s is %s" % (key[0], key[1], newest, m.get("state")))
            continue
        ss = sts(m.get("repo"), m.get("sha"))
        if not ss:
            bad.append("%s#%s: no status on %s (run %s)" % (key[0], key[1], m.get("sha"), newest))
        else:
            top = max(ss, key=lambda s: s.get("id", 0))
            if top.get("status") == "pending":
                bad.append("%s#%s: status of %s still pending (%r, run %s)"
                           % (key[0], key[1], (m.get("sha") or "")[:12], top.get("description"), newest))
            elif run_of(top) != newest:
                bad.append("%s#%s: newest status of %s is of run %s, not the newest %s"
                           % (key[0], key[1], (m.get("sha") or "")[:12], run_of(top), newest))
            else:
                why = match(newest, top)
                if why:
                    bad.append("run %s: %s" % (newest, why))
        # Older runs, and every status naming a run of the PR.
        for i, rid in enumerate(rids):
            om = fr[rid]
            finals = [s for s in sts(om.get("repo"), om.get("sha"))
                      if run_of(s) == rid and s.get("status") != "pending"]
            posted += len(finals)
            for s in finals:
                why = match(rid, s)
                if why:
                    bad.append("run %s: status %s: %s" % (rid, s.get("id"), why))
            if rid == newest or om.get("state") != "finished":
                continue
            f = parse_time(om.get("finished_at"))
            newer = [fr[x] for x in rids[i + 1:] if fr[x].get("sha") == om.get("sha")]
            by = om.get("trigger", {}).get("superseded_by")
            if (om.get("reason") == "superseded" and by in fr and accepted(by) > accepted(rid)
                    and (fr.get(by) or {}).get("sha") == om.get("sha")):
                if finals:
                    bad.append("run %s: superseded, but posted a final status" % rid)
                continue
            if f is None or any(a - 2 <= f <= b + 2 for a, b in windows):
                continue
            overlapped = surely = False
            for x in newer:
                c = parse_time(x.get("created_at"))
                xf = parse_time(x.get("finished_at"))
                xf = float("inf") if xf is None else xf
                if c is not None and c <= f + 1 and xf >= f - 1:
                    overlapped = True
                if c is not None and c < f - 1 and xf > f + 1:
                    surely = True
                # The final status waited in the outbox while the forge
                # refused it, and the newer run's status on the commit,
                # queued meanwhile, replaced it there (the outbox keeps one
                # entry per commit and context: docs/forge.md).
                if c is not None and c >= f and any(a <= f + 1 and b >= c for a, b in held):
                    overlapped = True
            if not overlapped and not finals:
                bad.append("run %s: no final status (no newer run of the PR was pending at its finish)" % rid)
            if surely and finals:
                bad.append("run %s: posted a final status while a newer run of the PR was pending" % rid)
        # Older shas left pending.
        for sha in sorted({fr[r].get("sha") for r in rids} - {m.get("sha")}):
            ss = sts(key[0], sha)
            if ss and max(ss, key=lambda s: s.get("id", 0)).get("status") == "pending":
                stale += 1
                bad.append("%s#%s: older sha %s left pending" % (key[0], key[1], (sha or "")[:12]))
        # Statuses naming runs nobody knows.
        for sha in {fr[r].get("sha") for r in rids}:
            for s in sts(key[0], sha):
                r = run_of(s)
                if r is None or r not in fr or fr[r].get("repo") != key[0]:
                    bad.append("%s@%s: status %s names unknown run %r"
                               % (key[0], (sha or "")[:12], s.get("id"), s.get("target_url")))
    value = "%d PRs, %d final statuses, %d stale pending older shas" % (checked, posted, stale)
    return result(name, not bad and checked > 0, value if checked else "no forge runs",
                  bad)


def _restart_windows(events):
    """(kill -9 time, next start time) pairs: runs finishing in between may
    be reported late by the catch-up."""
    out = []
    pending = None
    for e in sorted(events, key=lambda e: e.get("t", 0)):
        if e.get("kind") == "kill9":
            pending = e.get("t", 0)
        elif e.get("kind") == "start" and pending is not None:
            out.append((pending, e.get("t", 0) + 5))
            pending = None
    if pending is not None:
        out.append((pending, float("inf")))
    return out


def _forge_windows(events):
    """(begin, end) of the times the forge refused writes (an outage, a
    burst of 500s; the 429s answer reads only), with 30 s for the outbox's
    backoff after it."""
    out = []
    begin = None
    for e in sorted(events, key=lambda e: e.get("t", 0)):
        what = e.get("what") if e.get("kind") == "fault" else None
        if what == "forge-outage-begin":
            begin = e.get("t", 0)
        elif what == "forge-outage-end" and begin is not None:
            out.append((begin, e.get("t", 0) + 30))
            begin = None
        elif what == "forge-500":
            out.append((e.get("t", 0), e.get("t", 0) + 30))
    if begin is not None:
        out.append((begin, float("inf")))
    return out


# ------------------------------------------------------- 3 one-results-comment


def check_one_results_comment(world, runs=None):
    """Each PR with a finished forge run has exactly one comment by the bot
    holding `<!-- ccci:results -->`, and it names the PR's newest run
    (`run \\`<id>\\``, greatest id) with that run's reason in bold."""
    name = "one-results-comment"
    runs = runs or Runs(world.state_dir)
    fr = runs.forge_runs()
    by_pr = {}
    for rid, m in fr.items():
        if m.get("state") == "finished":
            by_pr.setdefault(_pr_key(m), []).append(rid)
    bad = []
    n = 0
    for key, rids in sorted(by_pr.items(), key=lambda kv: (str(kv[0][0]), kv[0][1] or 0)):
        n += 1
        newest = _newest([r for r in fr if _pr_key(fr[r]) == key])
        try:
            cs = world.forge.comments_of(key[0], key[1])
        except KeyError:
            cs = []
        mine = [c for c in cs if (c.get("user") or {}).get("login") == world.bot
                and MARKER in (c.get("body") or "")]
        if len(mine) != 1:
            bad.append("%s#%s: %d results comments%s" % (
                key[0], key[1], len(mine),
                "" if not mine else " (ids %s)" % ", ".join(str(c.get("id")) for c in mine)))
            if not mine:
                continue
        body = mine[-1].get("body") or ""
        if ("run `%s`" % newest) not in body:
            mm = re.search(r"run `([^`]*)`", body)
            bad.append("%s#%s: results comment names run %s, the newest is %s"
                       % (key[0], key[1], mm.group(1) if mm else "?", newest))
            continue
        reason = fr[newest].get("reason")
        if fr[newest].get("state") == "finished" and ("**%s**" % reason) not in body:
            bad.append("%s#%s: results comment of %s does not say **%s**" % (key[0], key[1], newest, reason))
    return result(name, not bad and n > 0, "%d PRs with a finished run" % n if n else "no finished forge runs", bad)


# ---------------------------------------------------------------- 4 no-secret


def _json_form(d, upper):
    hx = "0123456789ABCDEF" if upper else "0123456789abcdef"
    shorts = {0x22: b'\\"', 0x5C: b"\\\\", 0x08: b"\\b", 0x0C: b"\\f",
              0x0A: b"\\n", 0x0D: b"\\r", 0x09: b"\\t"}
    out = bytearray()
    for c in d:
        if c in shorts:
            out += shorts[c]
        elif c < 0x20:
            out += b"\\u00" + hx[c >> 4].encode() + hx[c & 15].encode()
        else:
            out.append(c)
    return bytes(out)


def _url_form(d):
    keep = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
    out = bytearray()
    for c in d:
        if c in keep:
            out.append(c)
        else:
            out += b"%%%02X" % c
    return bytes(out)


def _b64_form(d, align, url):
    enc = base64.b64encode(b"\0" * align + d + b"\0\0")
    if url:
        enc = enc.replace(b"+", b"-").replace(b"/", b"_")
    start = (8 * align + 5) // 6
    end = (align + len(d)) * 8 // 6
    return enc[start:end]


def _encodings(d):
    yield "raw", d
    yield "json", _json_form(d, False)
    yield "JSON", _json_form(d, True)
    yield "url", _url_form(d)
    for a in range(3):
        yield "base64@%d" % a, _b64_form(d, a, False)
        yield "base64url@%d" % a, _b64_form(d, a, True)


def secret_forms(value, min_len=MIN_SECRET_LEN):
    """[(form name, bytes)]: what docs/redaction.md masks for one value
    (src/logs/redact.c ccci_redact_forms), each at least min_len bytes."""
    if isinstance(value, str):
        value = value.encode("utf-8")
    v = value.rstrip(b"\r\n")
    if len(v) < min_len:
        return []
    out = []
    seen = set()

    def add(items, prefix=""):
        for n, f in items:
            if len(f) >= min_len and f not in seen:
                seen.add(f)
                out.append((prefix + n, f))

    add(_encodings(v))
    if b"\n" in v:
        lines = [ln[:-1] if ln.endswith(b"\r") else ln for ln in v.split(b"\n")]
        for ln in lines:
            if len(ln) >= min_len and not (ln.startswith(b"-----BEGIN") or ln.startswith(b"-----END")):
                add(_encodings(ln), "line ")
        add(_encodings(b"\n".join(lines)), "lf ")
        add(_encodings(b"\r\n".join(lines)), "crlf ")
    return out


def _read_value_file(path):
    """A secret file's value as the daemon reads it (docs/redaction.md):
    the content without its trailing CR/LF bytes; files over 64 KiB are
    skipped (the daemon skips them too)."""
    with open(path, "rb") as f:
        data = f.read(64 * 1024 + 1)
    if len(data) > 64 * 1024:
        return None
    return data.rstrip(b"\r\n")


def _secret_values(world):
    """Every secret value of the scenario, whole values first:
    - every regular file under world.secrets_dir (recursively, symlinks
      followed, each directory once), read as the daemon reads it, so a
      multi-line value stays whole (its LF and CRLF whole forms are built
      by secret_forms);
    - records/secrets.jsonl when the driver writes it: one JSON string (or
      {"value": string}) a line, whole values, multi-line ones included;
    - the values of the secrets still in the fake swarm's state.json files
      (whole; only a run that left its secrets behind has any);
    - records/secrets.txt and swarm/secrets.log, one value a line: a
      multi-line value there spans several lines, so only its lines are
      scanned (each of at least 8 bytes), not its whole forms (the fakes'
      values are single-line)."""
    vals = []

    def add(v):
        if v and v not in vals:
            vals.append(v)

    sd = getattr(world, "secrets_dir", None)
    if sd and os.path.isdir(sd):
        seen = set()
        for d, dirs, files in os.walk(sd, followlinks=True):
            try:
                st = os.stat(d)
            except OSError:
                continue
            if (st.st_dev, st.st_ino) in seen:
                dirs[:] = []
                continue
            seen.add((st.st_dev, st.st_ino))
            for fn in sorted(files):
                p = os.path.join(d, fn)
                try:
                    if os.path.isfile(p):
                        add(_read_value_file(p))
                except OSError:
                    pass
    rows, _ = _read_json_strings(os.path.join(_records(world), "secrets.jsonl"))
    for p in sorted(glob.glob(os.path.join(world.swarm_dir, "*", "state.json"))):
        st = read_json(p)
        for sec in ((st or {}).get("secrets") or {}).values() if isinstance(st, dict) else ():
            if isinstance(sec, dict) and isinstance(sec.get("value"), str):
                rows.append(sec["value"])
    for v in rows:
        add(v.encode("utf-8", "surrogateescape").rstrip(b"\r\n"))
    for p in (os.path.join(_records(world), "secrets.txt"),
              os.path.join(world.swarm_dir, "secrets.log")):
        try:
            with open(p, "rb") as f:
                for line in f.read().split(b"\n"):
                    add(line.rstrip(b"\r"))
        except OSError:
            pass
    return vals


def _read_json_strings(path):
    """The strings of a JSON-lines file: bare, or an object's "value"."""
    def keep(v):
        v = v.get("value") if isinstance(v, dict) else v
        return v if isinstance(v, str) else None
    return _read_lines(path, keep)


class SecretScan:
    """Patterns = every form of every value; files are searched with
    `grep -F` (Aho-Corasick, fast on hundreds of MB), else in Python."""

    def __init__(self, values, min_len=MIN_SECRET_LEN):
        self.pats = {}
        for i, v in enumerate(values):
            for form, b in secret_forms(v, min_len):
                self.pats.setdefault(b, (i, form))
        self.grep = shutil.which("grep")
        self.tmp = tempfile.mkdtemp(prefix="ccci-checks-")
        self.patfile = os.path.join(self.tmp, "patterns")
        with open(self.patfile, "wb") as f:
            for b in self.pats:
                if b"\n" not in b:
                    f.write(b + b"\n")
        self.multiline = [b for b in self.pats if b"\n" in b]

    def close(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def describe(self, b):
        i, form = self.pats.get(b, (None, "?"))
        return "secret #%s (%s form)" % (i, form)

    def _longest_at(self, data, start):
        best = None
        for b in self.pats:
            if data.startswith(b, start) and (best is None or len(b) > len(best)):
                best = b
        return best

    def scan_files(self, paths):
        """[(path, description)] of the hits: one per path (the first). A
        file that cannot be read (grep's exit status 2, or an OSError) is
        a hit too, described as unreadable: a file not searched is a
        silent miss otherwise."""
        hits = []
        if not self.pats:
            return hits
        paths = [p for p in paths if os.path.isfile(p)]
        if self.grep and paths:
            for k in range(0, len(paths), 500):
                chunk = paths[k:k + 500]
                r = subprocess.run([self.grep, "-F", "-a", "-o", "-H", "-m", "1", "-f", self.patfile, "--"]
                                   + chunk, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                seen = set()
                for line in r.stdout.split(b"\n"):
                    if not line:
                        continue
                    # path:match (paths may hold ':', so match the known paths)
                    for p in chunk:
                        pb = p.encode() + b":"
                        if line.startswith(pb) and p not in seen:
                            seen.add(p)
                            hits.append((p, self.describe(line[len(pb):])))
                            break
                if r.returncode not in (0, 1):
                    err = r.stderr.decode("utf-8", "replace").strip()
                    named = [p for p in chunk if p in err]
                    for p in named or ["(grep)"]:
                        hits.append((p, "unreadable: grep exit %d: %s" % (
                            r.returncode, _err_line(err, p))))
            multi = self.multiline
        else:
            multi = list(self.pats)
        if multi:
            for p in paths:
                try:
                    with open(p, "rb") as f:
                        data = f.read()
                except OSError as e:
                    if not self.grep:
                        hits.append((p, "unreadable: %s" % e.strerror))
                    continue
                for b in multi:
                    if b in data:
                        hits.append((p, self.describe(b)))
                        break
        return hits

    def scan_bytes(self, data):
        for b in self.pats:
            if b in data:
                return self.describe(b)
        return None


def _err_line(err, path):
    for ln in err.splitlines():
        if path in ln:
            return ln[-200:]
    return err[-200:]


def _walk_files(root, exclude=()):
    """Regular files under @p root (symlinks not followed), but the paths
    in @p exclude and anything under them."""
    out = []
    ex = [os.path.abspath(x) for x in exclude if x]
    for d, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = [x for x in dirs if os.path.join(d, x) not in ex]
        for f in files:
            p = os.path.join(d, f)
            if not os.path.islink(p) and p not in ex:
                out.append(p)
    return out


def no_secret_files(world):
    """The files no-secret scans, and the files it leaves out by design."""
    rec = _records(world)
    leak = getattr(world, "leak_file", None) or os.path.join(rec, "leak.txt")
    excluded = [
        os.path.join(rec, "secrets.txt"),  # the checker's list of the values
        os.path.join(rec, "secrets.jsonl"),
        leak, leak + ".tmp",  # the values the probe prints, by design
        getattr(world, "secrets_dir", None),  # the daemon's secret files
        os.path.join(world.swarm_dir, "secrets.log"),  # the fake's list of values
    ]
    files = _walk_files(os.path.abspath(world.state_dir), excluded)
    files += _walk_files(os.path.abspath(rec), excluded)
    for p in (getattr(world, "daemon_log", None), os.path.join(world.swarm_dir, "calls.log"),
              os.path.join(world.root, "gateway.out")):
        if p and os.path.abspath(p) not in files:
            files.append(os.path.abspath(p))
    return files, [x for x in excluded if x]


def check_no_secret(world):
    """No form of any secret value (_secret_values: the files of
    secrets_dir, records/secrets.jsonl, records/secrets.txt and
    swarm/secrets.log; the forms docs/redaction.md masks that are at least
    8 bytes: raw, JSON-escaped lower and upper hex, URL-encoded, base64 and
    base64url at alignments 0, 1, 2, and for a multi-line value its lines
    and its all-LF and all-CRLF whole forms) in:
    - any regular file under the whole state_dir (runs, outbox and ledger
      files, locks, anything else; symlinks not followed);
    - any file under records/ (harness.jsonl, events.jsonl, rss.jsonl,
      clients.jsonl, every transcript: tail and SSE streams, socket
      replies, and the HTTP responses clients.browse and the driver's
      final browse record);
    - the daemon log, the gateway's gateway.out, the fake abra's
      swarm/calls.log;
    - any forge request's method, path, query and body.
    Left out, because they hold the values by design: records/secrets.txt
    and records/secrets.jsonl (the list of values), the leak file
    (records/leak.txt and its .tmp: what the probe prints), secrets_dir
    (the daemon's secret files) and swarm/secrets.log (the fake's list).
    A file that cannot be read (grep's exit status 2) fails, named."""
    name = "no-secret"
    values = _secret_values(world)
    if not values:
        return result(name, False, "no secret values recorded", ["records/secrets.txt is missing or empty"])
    scan = SecretScan(values)
    try:
        files, _ = no_secret_files(world)
        hits = ["%s: %s" % (p, d) for p, d in scan.scan_files(files)]
        reqs = list(world.forge.requests)

        def req_bytes(r):
            body = r.get("body") or b""
            if isinstance(body, str):
                body = body.encode("utf-8", "surrogateescape")
            return ("%s %s?%s\n" % (r.get("method"), r.get("path"), r.get("query"))).encode(
                "utf-8", "surrogateescape") + body

        blob = os.path.join(scan.tmp, "requests")
        with open(blob, "wb") as f:
            for r in reqs:
                f.write(req_bytes(r) + b"\n\0\n")
        if scan.scan_files([blob]):  # which ones: only on a hit
            for i, r in enumerate(reqs):
                dd = scan.scan_bytes(req_bytes(r))
                if dd:
                    hits.append("forge request %d (%s %s): %s" % (i, r.get("method"), r.get("path"), dd))
                    if len(hits) > MAX_DETAIL:
                        break
        value = "%d values, %d patterns, %d files, %d forge requests" % (
            len(values), len(scan.pats), len(files), len(reqs))
        return result(name, not hits, value, hits)
    finally:
        scan.close()


# ------------------------------------------------------- 5 no-process


def _proc(pid):
    """(argv [bytes], state, ppid, cwd, exe) of a live process, or None."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            rest = f.read().rsplit(")", 1)[1].split()
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            argv = [a for a in f.read().split(b"\0")]
    except OSError:
        return None
    if argv and argv[-1] == b"":
        argv.pop()
    cwd = exe = None
    try:
        cwd = os.readlink("/proc/%d/cwd" % pid)
    except OSError:
        pass
    try:
        exe = os.readlink("/proc/%d/exe" % pid)
    except OSError:
        pass
    return argv, rest[0], int(rest[1]), cwd, exe


def _ancestors(pid):
    out = set()
    while pid > 1 and pid not in out:
        out.add(pid)
        info = _proc(pid)
        if info is None:
            break
        pid = info[2]
    return out


def _under(path, roots):
    """Does @p path (str) name @p roots or something under one?"""
    return any(path == r or path.startswith(r + "/") for r in roots)


def _mentions(arg, roots):
    """Does argument @p arg (bytes) name a path under one of @p roots
    (`--state=/root/x` and `a:/root/x` count; `/root-2` does not)?"""
    for r in roots:
        rb = r.encode()
        i = arg.find(rb)
        while i >= 0:
            end = i + len(rb)
            if end == len(arg) or arg[end:end + 1] in (b"/", b":", b",", b";", b" ", b"'", b'"'):
                return True
            i = arg.find(rb, i + 1)
    return False


def check_no_process(world):
    """No live (non-zombie) process of the scenario is left:
    - one whose environment holds world.marker (the harness env; the
      driver puts it in the daemon's too, so supervisors carry it);
    - one whose command line names world.root or a path under it (as
      given and resolved);
    - the ccci binary (argv[0] or /proc/PID/exe resolving to world.ccci)
      running its `supervise` or `harness` subcommand with an argument or
      its working directory under world.root.
    Not counted: this process and its ancestors (the driver's own command
    line may name the root), the gateway (world.gateway, stopped after the
    checks) and the daemon (world.proc): the daemon has stopped by the
    time the checks run; when it is alive the detail says so."""
    name = "no-process"
    root = os.path.abspath(world.root)
    roots = sorted({root, os.path.realpath(root)})
    ccci = getattr(world, "ccci", None)
    ccci_paths = {os.path.abspath(ccci), os.path.realpath(ccci)} if ccci else set()
    skip = _ancestors(os.getpid())
    gw = getattr(world, "gateway", None)
    if gw is not None and getattr(gw, "pid", None):
        skip.add(gw.pid)
    dp = getattr(world, "proc", None)
    daemon = dp.pid if dp is not None and getattr(dp, "pid", None) else None
    marked = set(procs_with(world.marker))
    found, notes = [], []
    for n in os.listdir("/proc"):
        if not n.isdigit():
            continue
        pid = int(n)
        if pid in skip:
            continue
        info = _proc(pid)
        if info is None:
            continue
        argv, state, _, cwd, exe = info
        if state == "Z":
            continue
        why = []
        if pid in marked:
            why.append("marker in its environment")
        if any(_mentions(a, roots) for a in argv):
            why.append("its command line names the root")
        elif argv:
            a0 = argv[0].decode("utf-8", "surrogateescape")
            is_ccci = bool(ccci_paths) and (
                os.path.abspath(a0) in ccci_paths or os.path.realpath(a0) in ccci_paths
                or (exe is not None and exe in ccci_paths))
            sub = [a for a in argv[1:] if a in (b"supervise", b"harness")]
            if is_ccci and sub:
                under = [a for a in argv[1:] if a.startswith(b"/") and _under(
                    os.path.realpath(a.decode("utf-8", "surrogateescape")), roots)]
                if under or (cwd is not None and _under(cwd, roots)):
                    why.append("ccci %s under the root" % sub[0].decode())
        if not why:
            continue
        cmd = b" ".join(argv).decode("utf-8", "replace").strip() or "?"
        if pid == daemon:
            notes.append("the daemon (pid %d) is still alive: %s" % (pid, cmd[:160]))
            continue
        found.append("pid %d (%s): %s" % (pid, ", ".join(why), cmd[:200]))
    value = "%d processes" % len(found)
    if notes:
        value += "; the daemon is alive"
    return result(name, not found, value, found + notes)


# ---------------------------------------------------------- 6 no-deployment


def check_no_deployment(world):
    """Every server of the fake swarm (world.servers and any other dir
    under swarm_dir) has no stack, no volume and no secret in its
    state.json; no `*.env` under abra_dir/servers/*/."""
    name = "no-deployment"
    names = list(world.servers)
    for n in fakeswarm.list_servers(world.swarm_dir):
        if n not in names and os.path.exists(os.path.join(world.swarm_dir, n, "state.json")):
            names.append(n)
    bad = []
    for n in names:
        st = fakeswarm.Server(n, world.swarm_dir).load()
        for kind in ("stacks", "volumes", "secrets"):
            for item in sorted(st.get(kind) or {}):
                bad.append("server %s: %s %s left" % (n, kind[:-1], item))
    envs = sorted(glob.glob(os.path.join(world.abra_dir, "servers", "*", "*.env")))
    for p in envs:
        bad.append("env file left: %s" % os.path.relpath(p, world.abra_dir))
    return result(name, not bad, "%d servers, %d items left" % (len(names), len(bad)), bad)


# ---------------------------------------------------------------- 7 no-lock


def check_no_lock(world):
    """No file under state_dir/locks/ is held (flock LOCK_EX|LOCK_NB on it
    fails) and none is left at all after the final janitor sweep."""
    name = "no-lock"
    d = os.path.join(world.state_dir, "locks")
    bad = []
    held = left = 0
    try:
        names = sorted(os.listdir(d))
    except FileNotFoundError:
        names = []
    for n in names:
        p = os.path.join(d, n)
        try:
            fd = os.open(p, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as e:
            bad.append("%s: left (cannot open: %s)" % (n, e.strerror))
            left += 1
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(fd, fcntl.LOCK_UN)
                bad.append("%s: left (not held)" % n)
                left += 1
            except OSError as e:
                if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                    bad.append("%s: held by another process" % n)
                    held += 1
                else:
                    bad.append("%s: flock: %s" % (n, e.strerror))
        finally:
            os.close(fd)
    return result(name, not bad, "%d held, %d left" % (held, left), bad)


# --------------------------------------------------------------- 8 rss-bound


def check_rss_bound(world):
    """Every sample of records/rss.jsonl has rss_kib <=
    world.rss_bound_kib(active); no sample at all fails too."""
    name = "rss-bound"
    samples, badlines = read_jsonl(os.path.join(_records(world), "rss.jsonl"))
    bad = []
    worst = None
    for s in samples:
        try:
            rss, active = int(s["rss_kib"]), int(s.get("active") or 0)
        except (KeyError, TypeError, ValueError):
            bad.append("bad sample %r" % (s,))
            continue
        bound = world.rss_bound_kib(active)
        if worst is None or rss - bound > worst[0] - worst[1]:
            worst = (rss, bound, active)
        if rss > bound:
            bad.append("t %.1f pid %s: %d KiB > %d KiB (%d active)" % (
                s.get("t", 0), s.get("pid"), rss, bound, active))
    if not samples:
        return result(name, False, "no samples", ["records/rss.jsonl is empty"])
    mx = max(int(s.get("rss_kib") or 0) for s in samples)
    value = "%d samples, max %d KiB; closest %d of %d KiB (%d active)" % (
        len(samples), mx, worst[0], worst[1], worst[2]) if worst else "%d samples" % len(samples)
    return result(name, not bad, value, bad)


# ---------------------------------------------------------- 9 comment-to-start


def check_comment_to_start(world, runs=None):
    """p50/p99 seconds from a member comment's created_at (forge time) to
    its run's first harness start (role run); ok when every started run of
    a comment has a figure (its comment event with a readable created_at),
    and there is at least one. Reported, never bounded."""
    name = "comment-to-start"
    runs = runs or Runs(world.state_dir)
    created = {}
    for e in _events(world):
        if e.get("kind") == "comment":
            created[e.get("comment_id")] = e.get("created_at")
    first = {}
    for h in _harness(world):
        if h.get("event") == "start" and h.get("role", "run") == "run":
            rid = h.get("run")
            t = h.get("t")
            if rid is not None and isinstance(t, (int, float)) and (rid not in first or t < first[rid]):
                first[rid] = t
    figs, bad = [], []
    for rid, t in sorted(first.items()):
        m = runs.meta.get(rid)
        if m is not None and (m.get("trigger") or {}).get("kind") not in (None, "forge"):
            continue  # a local run
        mm = re.search(r"-c(\d+)$", rid or "")
        cid = int(mm.group(1)) if mm else None
        c = parse_time(created.get(cid))
        if c is None:
            bad.append("run %s: no comment created_at" % rid)
            continue
        figs.append(t - c)
    if not figs and not bad:
        return result(name, False, "no started runs", ["no harness start in records/harness.jsonl"])
    value = "n=%d p50=%s p99=%s max=%s" % (len(figs), fmt_s(percentile(figs, 50)),
                                            fmt_s(percentile(figs, 99)), fmt_s(max(figs) if figs else None))
    return result(name, not bad, value, bad)


# ----------------------------------------------------- 10 write-to-viewer, 11 clients


def _scenario_seconds(world):
    """How long the scenario triggered (world.seconds, else world.minutes *
    60), or None when the world does not say (a synthetic world)."""
    for attr, k in (("seconds", 1), ("minutes", 60)):
        v = getattr(world, attr, None)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v) * k
    return None


def _viewer_writes(world, rid, cache):
    """The VIEWER-TS write times (epoch s) in the custom step files of run
    @p rid (logs/ and an earlier attempt's logs.attempt-<n>/)."""
    if rid in cache:
        return cache[rid]
    out = []
    d = os.path.join(world.state_dir, "runs", rid or "-")
    for p in sorted(glob.glob(os.path.join(d, "logs*", "*-custom.jsonl"))):
        try:
            with open(p, "rb") as f:
                for line in f:
                    if b"VIEWER-TS" not in line:
                        continue
                    try:
                        text = json.loads(line).get("out") or ""
                    except (ValueError, AttributeError):
                        continue
                    m = clients_viewer_re.search(text)
                    if m and m.group(1) == rid:
                        out.append(int(m.group(2)) / 1e9)
        except OSError:
            pass
    cache[rid] = out
    return out


clients_viewer_re = re.compile(r"VIEWER-TS (\S+) (\d+)")


def _viewer_kind(rec):
    v = rec.get("viewer")
    if v in ("tail", "sse"):
        return v
    return "tail" if str(rec.get("kind") or "").startswith("tail") else "sse"


def check_write_to_viewer(world):
    """p50/p99 of t_seen - t_write over records/viewer.jsonl, per viewer
    kind (`tail`: ccci tail; `sse`: the SSE and Drone streams) and overall.
    A kind must have samples only when one of its clients
    (records/clients.jsonl) followed a run while it wrote VIEWER-TS lines:
    the probe prints them in the custom tier, so a write time of one in
    the run's `*-custom.jsonl` step files lies between the client's t_start
    and t_end (any write time, for a record without them). Runs that never
    reached the custom tier while followed (quick runs, failed ones, a
    `--break skip-teardown` scenario) need no samples: the value then says
    "no samples". Reported, never bounded."""
    name = "write-to-viewer"
    rows, badlines = read_jsonl(os.path.join(_records(world), "viewer.jsonl"))
    recs, _ = read_jsonl(os.path.join(_records(world), "clients.jsonl"))
    by = {"tail": [], "sse": []}
    bad = []
    for r in rows:
        try:
            d = float(r["t_seen"]) - float(r["t_write"])
        except (KeyError, TypeError, ValueError):
            bad.append("bad sample %r" % (r,))
            continue
        by.setdefault(r.get("client"), []).append(d)
    need = {}
    cache = {}
    for rec in recs:
        writes = _viewer_writes(world, rec.get("run"), cache)
        t0, t1 = rec.get("t_start"), rec.get("t_end")
        if isinstance(t0, (int, float)) and isinstance(t1, (int, float)):
            writes = [t for t in writes if t0 <= t <= t1]
        if writes:
            need.setdefault(_viewer_kind(rec), []).append(rec.get("run"))
    allv = [x for v in by.values() for x in v]
    if not allv:
        parts = ["no samples"]
    else:
        parts = ["all n=%d p50=%s p99=%s" % (len(allv), fmt_s(percentile(allv, 50)),
                                               fmt_s(percentile(allv, 99)))]
    for k in ("tail", "sse"):
        v = by.get(k, [])
        if v:
            parts.append("%s n=%d p50=%s p99=%s" % (k, len(v), fmt_s(percentile(v, 50)),
                                                   fmt_s(percentile(v, 99))))
        elif k in need:
            bad.append("no %s sample, though a %s client followed run %s while it wrote VIEWER-TS lines"
                       % (k, k, need[k][0]))
        else:
            parts.append("%s: no samples (no %s client followed a run's custom tier)" % (k, k))
    return result(name, not bad, "; ".join(parts), bad)


def _run_finished_at(runs, rid):
    m = runs.meta.get(rid) if runs is not None else None
    return parse_time((m or {}).get("finished_at"))


def check_clients(world, runs=None):
    """Every tail/SSE client of records/clients.jsonl (clients.py) saw no
    gap and no duplicate (its own flags), ended (saw the run's end) and has
    no error: every client retries for 60 s after a drop, so a client that
    lost its daemon to a kill -9 and came back has no error; one that did
    not come back, or was stopped before its run's end, fails. At least one
    client. The sse-stall clients: when one stalled long enough (the
    server gave up on it, or its run finished later than stall_t + stall_s
    + 6 s, so the client's own drop after its 5 s drain came before the
    run's end), at least one sse-stall client resumed with Last-Event-ID
    (resumes_with_id). When
    no stall client followed a long enough run, that fails only in a
    scenario of at least 3 minutes (world.seconds or world.minutes)."""
    name = "clients"
    runs = runs or Runs(world.state_dir)
    rows, badlines = read_jsonl(os.path.join(_records(world), "clients.jsonl"))
    bad = []
    unended = errors = resumes = 0
    kinds = {}
    stall_ok = []  # sse-stall records that stalled in a long enough run
    stalled = given_up = with_id = 0
    for r in rows:
        kinds[r.get("kind")] = kinds.get(r.get("kind"), 0) + 1
        resumes += int(r.get("resumes") or 0)
        what = "%s client of %s" % (r.get("kind"), r.get("run"))
        if r.get("gap") or r.get("dup"):
            bad.append("%s: %s%s (%s lines, %s resumes%s%s)" % (
                what, "gap" if r.get("gap") else "",
                " dup" if r.get("dup") and r.get("gap") else ("dup" if r.get("dup") else ""),
                r.get("lines"), r.get("resumes"),
                ", " + str(r.get("error")) if r.get("error") else "",
                ", " + str(r.get("why")) if r.get("why") else ""))
        if r.get("error"):
            errors += 1
            bad.append("%s: error: %s" % (what, r.get("error")))
        elif not r.get("ended"):
            unended += 1
            bad.append("%s: did not see the run's end (%s lines)" % (what, r.get("lines")))
        if r.get("kind") == "sse-stall":
            given_up += int(r.get("given_up") or 0)
            if r.get("stalled"):
                stalled += 1
                f = _run_finished_at(runs, r.get("run"))
                st = r.get("stall_t")
                if int(r.get("given_up") or 0) > 0 or (
                        isinstance(st, (int, float)) and f is not None
                        and f > st + float(r.get("stall_s") or 25) + 6):
                    stall_ok.append(r)
                    with_id += int(r.get("resumes_with_id") or 0)
    if not rows:
        return result(name, False, "no clients", ["records/clients.jsonl is empty"])
    secs = _scenario_seconds(world)
    if stall_ok:
        if with_id == 0:
            bad.append("%d sse-stall clients stalled in a run that went on past the stall "
                       "(%s), none resumed with Last-Event-ID"
                       % (len(stall_ok), ", ".join(str(r.get("run")) for r in stall_ok[:5])))
        stall_note = "%d stall clients (%d stalled, %d in a long enough run, %d resumes with " \
                     "Last-Event-ID, %d given up by the server)" % (
                         kinds.get("sse-stall", 0), stalled, len(stall_ok), with_id, given_up)
    else:
        stall_note = "no stall client followed a long enough run (%d stall clients, %d stalled)" % (
            kinds.get("sse-stall", 0), stalled)
        if secs is not None and secs >= 180:
            bad.append("no stall client followed a long enough run (a %.0f s scenario)" % secs)
    value = "%d clients (%s), %d resumes, %d not ended, %d with an error; %s" % (
        len(rows), ", ".join("%s %d" % (k, v) for k, v in sorted(kinds.items(), key=str)),
        resumes, unended, errors, stall_note)
    return result(name, not bad, value, bad)


# -------------------------------------------------------------- 12 faults-hit

# The daemon's own texts (src/logs/logstore.c ccci_logstore_line; the
# harness's tier_end and ccci_hcall_why in src/harness/; src/runs/runs.c
# disk_ok and the unreachable note).
TRUNC_TEXT = b"[ccci] the log reached log_max_bytes ("


def world_log_max(world):
    """The scenario's log_max_bytes (64 MiB when the world does not say)."""
    return getattr(world, "log_max_bytes", None) or 64 << 20
STUBBORN_TEXT = b"stubborn: ignoring SIGTERM"
TIMEOUT_TEXT = b"custom: timeout: the recipe's tests"
MIN_FREE_RE = re.compile(r"only \d+ bytes free on .* \(min_free_bytes is \d+\); no run starts")
KILL_MARGIN_S = 2.0


def _run_logs_have(world, rid, needle):
    """Does any log file of run @p rid (logs/ and logs.attempt-<n>/) hold
    the bytes @p needle? Read in chunks (a flood log is 64 MiB)."""
    d = os.path.join(world.state_dir, "runs", rid)
    for p in sorted(glob.glob(os.path.join(d, "logs*", "*.jsonl"))):
        try:
            with open(p, "rb") as f:
                tail = b""
                while True:
                    chunk = f.read(1 << 22)
                    if not chunk:
                        break
                    if needle in tail + chunk:
                        return True
                    tail = chunk[-len(needle):]
        except OSError:
            pass
    return False


class _Faults:
    """What faults-hit needs of the records, read once."""

    def __init__(self, world, runs):
        self.world = world
        self.runs = runs
        self.events = sorted(_events(world), key=lambda e: e.get("t", 0))
        self.t0 = self.events[0].get("t", 0) if self.events else 0
        self.faults = [e for e in self.events if e.get("kind") == "fault"]
        self.kills = [e.get("t", 0) for e in self.events if e.get("kind") == "kill9"]
        self.comments = [e for e in self.events if e.get("kind") == "comment"]
        self.starts = [h for h in _harness(world)
                       if h.get("event") == "start" and h.get("role", "run") == "run"]
        self.org = getattr(world, "org", None) or "sys"
        self.fail_windows = []  # (server, begin, end)
        for i, e in enumerate(self.faults):
            if e.get("what") == "server-fail-begin":
                end = self.window_end(i, "server-fail-end", server=e.get("server"))
                if end is not None:
                    self.fail_windows.append((e.get("server"), e.get("t", 0), end.get("t", 0)))

    def when(self, e):
        t = e.get("t", 0)
        return "%s (+%.1fs)" % (time.strftime("%H:%M:%S", time.gmtime(t)), t - self.t0)

    def window_end(self, i, what, **match):
        """The first `what` fault after fault @p i (matching @p match),
        before the next fault of the begin's kind; None when the scenario
        ended before it."""
        begin = self.faults[i].get("what")
        for e in self.faults[i + 1:]:
            if e.get("what") == what and all(e.get(k) == v for k, v in match.items()):
                return e
            if e.get("what") == begin and all(e.get(k) == v for k, v in match.items()):
                return None
        return None

    def run_after(self, fault, repo):
        """The run of the first comment on @p repo made at or after the
        fault (the driver comments right after recording it)."""
        for c in self.comments:
            if c.get("repo") == repo and c.get("t", 0) >= fault.get("t", 0) - 0.01:
                rids = self.runs.by_comment.get(c.get("comment_id"), [])
                return c, (rids[0] if rids else None)
        return None, None

    def span(self, rid):
        m = self.runs.meta.get(rid) or {}
        a = parse_time(m.get("created_at")) or parse_time(m.get("started_at"))
        b = parse_time(m.get("finished_at"))
        return a, b

    def cut_short(self, rid, since=None, kills_only=False):
        """Why the scenario itself may have kept @p rid from showing its
        fault ('' when nothing did): a kill -9 of the daemon while it ran,
        or (unless @p kills_only) a server-fail window on its server
        overlapping it."""
        a, b = self.span(rid)
        a = since if since is not None else a
        if a is None:
            return ""
        b = float("inf") if b is None else b
        for k in self.kills:
            if a - KILL_MARGIN_S <= k <= b + KILL_MARGIN_S:
                return "a kill -9 of the daemon at %s while it ran" % self.when({"t": k})
        if kills_only:
            return ""
        srv = (self.runs.meta.get(rid) or {}).get("server")
        for s, fb, fe in self.fail_windows:
            if s == srv and fb <= b and fe >= a:
                return "server %s failed at %s while it ran" % (s, self.when({"t": fb}))
        return ""

    def describe(self, rid):
        m = self.runs.meta.get(rid) or {}
        res = self.runs.results(rid)
        failed = ""
        if isinstance(res, dict) and isinstance(res.get("tiers"), dict):
            for tn, tv in res["tiers"].items():
                if isinstance(tv, dict) and tv.get("status") in FAILED_TIER:
                    failed = ", %s %s" % (tn, tv.get("status"))
                    break
        return "run %s (%s, server %s%s)" % (rid, m.get("reason"), m.get("server"), failed)


def check_faults_hit(world, runs=None):
    """The faults of the scenario happened and hit what they were for, from
    records/events.jsonl (`fault` events, soak.py Scenario.fault), the
    runs' logs and results, records/harness.jsonl and the daemon log:
    - every `flood`: the run of the next comment on ORG/flood has the
      daemon's truncation line `[ccci] the log reached log_max_bytes (N
      bytes); later lines are dropped, the run goes on` in its log
      (src/logs/logstore.c);
    - every `stubborn` with cancel=False: the run of the next comment on
      ORG/stubborn printed `stubborn: ignoring SIGTERM` and its custom tier
      ended by the TIMEOUT kill: the harness's `custom: timeout: the
      recipe's tests was stopped at the run's deadline` (or `... timed
      out`) line, or `timeout` as the custom tier's status in results.json
      (recipe TIMEOUT caps the harness's deadline, docs/harness.md);
    - every `stubborn` with cancel=True: a `cancel` event names its run;
      every `cancel` event: its run finished with reason `cancelled`;
    - every `disk-full-begin`: a `disk-full-seen` event (the driver saw
      the daemon's status name min_free_bytes) before its
      `disk-full-end` (skipped when its `disk-full-not-seen` says
      `chances` 0: never a queued run and a free slot at once, so the
      daemon never evaluated admission), or, without such events at all,
      the daemon log's
      `only N bytes free on ... (min_free_bytes is M); no run starts`
      (src/runs/runs.c disk_ok: admission refused);
    - every `server-fail-begin` (server S): a run on S ended with `server
      S unreachable` in its log (the daemon's note, the harness's stop),
      finishing after the window began, or no run started on S (a harness
      start in records/harness.jsonl) inside the window (the pool kept
      runs off it).
    A fault whose window the scenario ended before closing (no `...-end`
    event), or whose run a kill -9 of the daemon or a server-fail window
    on its server overlapped, is skipped with a note when its evidence is
    missing. In a scenario world (world.seconds or world.minutes set),
    each kind (flood, stubborn both ways, disk-full, server-fail) must have
    happened at least once. Each failure names the fault and its time."""
    name = "faults-hit"
    runs = runs or Runs(world.state_dir)
    F = _Faults(world, runs)
    bad, notes = [], []
    verified = skipped = 0
    org = F.org

    def miss(e, rid, why, since=None):
        nonlocal skipped
        cut = F.cut_short(rid, since) if rid else ""
        if cut:
            skipped += 1
            notes.append("skipped %s at %s: %s; %s" % (e.get("what"), F.when(e), why, cut))
        else:
            bad.append("%s at %s: %s" % (e.get("what"), F.when(e), why))

    seen = {}
    for i, e in enumerate(F.faults):
        what = e.get("what")
        if what == "flood":
            seen["flood"] = True
            c, rid = F.run_after(e, org + "/flood")
            if rid is not None and (runs.meta.get(rid) or {}).get("state") != "finished":
                bad.append("flood at %s: run %s is not finished" % (F.when(e), rid))
            elif rid is None:
                bad.append("flood at %s: %s" % (F.when(e), "no comment on %s/flood after it" % org
                                                   if c is None else "comment %s has no run"
                                                   % c.get("comment_id")))
            elif _run_logs_have(world, rid, TRUNC_TEXT):
                verified += 1
            elif isinstance(e.get("bytes"), int) and e["bytes"] <= world_log_max(world):
                skipped += 1
                notes.append("skipped flood at %s: %d bytes, not past log_max_bytes (%d)"
                             % (F.when(e), e["bytes"], world_log_max(world)))
            else:
                miss(e, rid, "%s has no `[ccci] the log reached log_max_bytes` line" % F.describe(rid))
        elif what == "stubborn":
            cancel = bool(e.get("cancel"))
            seen["stubborn cancel=%s" % cancel] = True
            c, rid = F.run_after(e, org + "/stubborn")
            if rid is not None and (runs.meta.get(rid) or {}).get("state") != "finished":
                bad.append("stubborn at %s: run %s is not finished" % (F.when(e), rid))
                continue
            if rid is None:
                bad.append("stubborn at %s: %s" % (F.when(e), "no comment on %s/stubborn after it"
                                                      % org if c is None else "comment %s has no run"
                                                      % c.get("comment_id")))
                continue
            if cancel:
                if any(x.get("what") == "cancel" and x.get("run") == rid for x in F.faults):
                    verified += 1  # its reason: the cancel event's own row
                else:
                    miss(e, rid, "%s was never cancelled (the driver saw no `stubborn: ignoring "
                                 "SIGTERM` while it ran)" % F.describe(rid))
                continue
            ign = _run_logs_have(world, rid, STUBBORN_TEXT)
            res = runs.results(rid)
            tier = ((res or {}).get("tiers") or {}).get("custom") if isinstance(res, dict) else None
            tout = _run_logs_have(world, rid, TIMEOUT_TEXT) or (
                isinstance(tier, dict) and tier.get("status") == "timeout")
            if ign and tout:
                verified += 1
            else:
                miss(e, rid, "%s: %s" % (F.describe(rid), "no `stubborn: ignoring SIGTERM` line"
                                         if not ign else "its custom tier did not end by the "
                                         "TIMEOUT kill (no `custom: timeout: the recipe's tests` "
                                         "line, custom tier %s)" % ((tier or {}).get("status"),)))
        elif what == "cancel":
            rid = e.get("run")
            m = runs.meta.get(rid)
            if m is None:
                bad.append("cancel at %s: run %s is unknown" % (F.when(e), rid))
            elif m.get("reason") == "cancelled":
                verified += 1
            else:
                miss(e, rid, "%s ended %s, not cancelled (ccci cancel exit %s)"
                     % (rid, m.get("reason"), e.get("rc")), since=e.get("t"))
        elif what == "disk-full-begin":
            seen["disk-full"] = True
            end = F.window_end(i, "disk-full-end")
            if end is None:
                skipped += 1
                notes.append("skipped disk-full at %s: the scenario ended before its end" % F.when(e))
                continue
            seen_ev = [x for x in F.events if x.get("kind") in ("disk-full-seen", "disk-full-not-seen")]
            if seen_ev:
                hit = [x for x in seen_ev if x.get("kind") == "disk-full-seen"
                       and e.get("t", 0) <= x.get("t", 0) <= end.get("t", 0) + 1]
                nots = [x for x in seen_ev if x.get("kind") == "disk-full-not-seen"
                        and e.get("t", 0) <= x.get("t", 0) <= end.get("t", 0) + 5]
                if hit:
                    verified += 1
                elif nots and all(x.get("chances") == 0 for x in nots):
                    skipped += 1
                    notes.append("skipped disk-full at %s: no admission was possible in it "
                                 "(disk-full-not-seen: chances 0 in %s looks: no queued run "
                                 "and a free slot at once)" % (F.when(e), nots[0].get("looks")))
                else:
                    bad.append("disk-full at %s: the daemon's status never named min_free_bytes "
                               "before its end at %s (no run was refused or held)"
                               % (F.when(e), F.when(end)))
            elif _daemon_log_matches(world, MIN_FREE_RE):
                verified += 1
                notes.append("disk-full at %s: no disk-full-seen events; the daemon log refused "
                             "admission for min_free_bytes (not tied to this window)" % F.when(e))
            else:
                bad.append("disk-full at %s: the daemon never refused admission for "
                           "min_free_bytes (no `only N bytes free ... no run starts` in its log)"
                           % F.when(e))
        elif what == "server-fail-begin":
            seen["server-fail"] = True
            srv = e.get("server")
            end = F.window_end(i, "server-fail-end", server=srv)
            if end is None:
                skipped += 1
                notes.append("skipped server-fail %s at %s: the scenario ended before its end"
                             % (srv, F.when(e)))
                continue
            b, f_end = e.get("t", 0), end.get("t", 0)
            needle = ("server %s unreachable" % srv).encode()
            unreach = []
            for rid, m in runs.meta.items():
                if m.get("server") != srv:
                    continue
                a, z = F.span(rid)
                if z is not None and z < b:
                    continue
                if a is not None and a > f_end + 5:
                    continue
                if _run_logs_have(world, rid, needle):
                    unreach.append(rid)
            started = sorted({h.get("run") for h in F.starts
                              if h.get("server") == srv and b + 1 <= h.get("t", 0) <= f_end})
            if unreach:
                verified += 1
                notes.append("server-fail %s at %s: %d runs ended unreachable (%s)"
                             % (srv, F.when(e), len(unreach), ", ".join(sorted(unreach)[:3])))
            elif not started:
                verified += 1
                notes.append("server-fail %s at %s: no run started on %s in its %.0f s"
                             % (srv, F.when(e), srv, f_end - b))
            else:
                left = [r for r in started if not F.cut_short(r, kills_only=True)]
                if left:
                    bad.append("server-fail %s at %s: %d runs started on %s in the window (%s), "
                               "none ended `server %s unreachable`"
                               % (srv, F.when(e), len(started), srv, ", ".join(left[:5]), srv))
                else:
                    skipped += 1
                    notes.append("skipped server-fail %s at %s: the runs started in it were cut "
                                 "short by a kill -9" % (srv, F.when(e)))
    if _scenario_seconds(world) is not None:
        for k in ("flood", "stubborn cancel=False", "stubborn cancel=True", "disk-full",
                  "server-fail"):
            if k not in seen:
                bad.append("no %s fault recorded in records/events.jsonl" % k)
    if not F.faults:
        value = "no fault events"
    else:
        value = "%d faults, %d verified, %d skipped" % (len(F.faults), verified, skipped)
    return result(name, not bad, value, bad + notes)


def _daemon_log_matches(world, rx):
    path = getattr(world, "daemon_log", None)
    if not path:
        return False
    try:
        with open(path, "rb") as f:
            for raw in f:
                if rx.search(raw.decode("utf-8", "replace")):
                    return True
    except OSError:
        pass
    return False


# ------------------------------------------------------------------- driver


def check_all(world):
    """Every invariant, in the contract's order (NAMES)."""
    try:
        runs = Runs(world.state_dir)
    except Exception:
        runs = None
    fns = [
        ("trigger-once", lambda: check_trigger_once(world, runs)),
        ("status-final", lambda: check_status_final(world, runs)),
        ("one-results-comment", lambda: check_one_results_comment(world, runs)),
        ("no-secret", lambda: check_no_secret(world)),
        ("no-process", lambda: check_no_process(world)),
        ("no-deployment", lambda: check_no_deployment(world)),
        ("no-lock", lambda: check_no_lock(world)),
        ("rss-bound", lambda: check_rss_bound(world)),
        ("comment-to-start", lambda: check_comment_to_start(world, runs)),
        ("write-to-viewer", lambda: check_write_to_viewer(world)),
        ("clients", lambda: check_clients(world, runs)),
        ("faults-hit", lambda: check_faults_hit(world, runs)),
    ]
    out = []
    for n, fn in fns:
        try:
            out.append(fn())
        except Exception as e:  # a check that breaks fails, naming why
            out.append(result(n, False, "exception", ["%s: %s" % (type(e).__name__, e)]))
    return out


def print_table(results, file=sys.stdout):
    w = max([len(r["name"]) for r in results] + [5])
    print("%-*s  %-4s  %s" % (w, "check", "ok", "value"), file=file)
    print("%s  %s  %s" % ("-" * w, "-" * 4, "-" * 40), file=file)
    for r in results:
        print("%-*s  %-4s  %s" % (w, r["name"], "ok" if r["ok"] else "FAIL", r["value"]), file=file)
        for d in r["detail"]:
            print("%-*s        %s" % (w, "", d), file=file)
    bad = [r["name"] for r in results if not r["ok"]]
    print("%s" % ("all %d invariants hold" % len(results) if not bad
                  else "FAILED: " + ", ".join(bad)), file=file)


def to_json(results, extra=None):
    d = dict(extra or {})
    d["ok"] = all(r["ok"] for r in results)
    d["checks"] = results
    return json.dumps(d, indent=1, sort_keys=False)
