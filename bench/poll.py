#!/usr/bin/env python3
"""Poll benchmark: the real daemon enrolled in N repos of the fake forge
(tests/integration/fakeforge.py in command-line mode), polling each every
`--interval` seconds.

Phase 1 (steady, `--seconds`): no comments. Requests per minute seen by the
fake (GET /_fake/requests/count), daemon CPU (utime+stime of the daemon
itself, not its children) per 1000 completed polls (status counter
`forge_polls`), connections the daemon holds to the fake (reuse).
Phase 2 (latency, `--seconds`): `--comments` `!testme` comments posted through
POST /_fake/comment on random repos at random times; each comment's latency
is from the moment the fake answered the post to the moment the harness
started (the harness records it).
Daemon peak RSS (VmHWM) over both phases.

Targets: requests/min within 10 % of N x 60 / interval; CPU <= 50 ms per
1000 polls; comment-to-run-start p99 <= interval + 2 s.
Last, the floor (bench/poll_floor.c): libcurl alone doing the same GET with
one blocking easy handle, paced like the daemon's polls and back to back,
and the ratio of the daemon's CPU per poll to the paced figure.

    bench/poll.py BUILD_DIR [--repos 1000] [--seconds 60] [--interval 30]
                  [--comments 20] [--max-connections 16] [--keep]
"""

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

from benchlib import cpu_split, peak_rss_kib, request, start_daemon
HERE = os.path.dirname(os.path.abspath(__file__))
FAKE = os.path.join(os.path.dirname(HERE), "tests", "integration", "fakeforge.py")
PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
TARGET_CPU_MS = 50.0
TARGET_RATE_SLACK = 0.10

HARNESS = """#!/bin/sh
printf '%s %s\\n' "$CCCI_RUN_ID" "$(date +%s.%N)" >>"$POLL_BENCH_STARTS"
exit 0
"""


def fake(url, path, obj=None):
    data = None if obj is None else json.dumps(obj).encode()
    req = urllib.request.Request(url + path, data=data, method="GET" if obj is None else "POST")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=30) as r:
        body = r.read()
    return json.loads(body) if body.strip() else None


def connections(pid, port):
    """Local ports of the daemon's TCP connections to 127.0.0.1:port."""
    inodes = set()
    try:
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                t = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            if t.startswith("socket:["):
                inodes.add(t[8:-1])
    except OSError:
        return set()
    out = set()
    for table in ("/proc/%d/net/tcp" % pid, "/proc/%d/net/tcp6" % pid):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    x = line.split()
                    if x[9] in inodes and int(x[2].rsplit(":", 1)[1], 16) == port and x[3] == "01":
                        out.add(int(x[1].rsplit(":", 1)[1], 16))
        except OSError:
            pass
    return out


def counters(sock):
    return request(sock, {"v": 1, "op": "status"})["counters"]


def polls_done(sock, url):
    c = counters(sock)
    if "forge_polls" in c:
        return c["forge_polls"], "forge_polls"
    n = fake(url, "/_fake/requests/count")["by_template"].get("GET /repos/{owner}/{repo}/issues/comments", 0)
    return n, "fake's comment-list requests (no forge_polls counter)"


def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    k = min(len(xs) - 1, max(0, int(round(p / 100.0 * len(xs) + 0.5)) - 1))
    return xs[k]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--repos", type=int, default=1000)
    ap.add_argument("--seconds", type=int, default=60, help="length of each phase")
    ap.add_argument("--interval", type=int, default=30, help="forge.poll_interval, seconds")
    ap.add_argument("--comments", type=int, default=20, help="comments posted in the latency phase")
    ap.add_argument("--max-connections", type=int, default=16)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    a = ap.parse_args()
    rnd = random.Random(a.seed)
    ccci = os.path.join(a.build, "ccci")
    tmp = tempfile.mkdtemp(prefix="pollbench-", dir="/tmp")
    procs = []
    failed = False
    try:
        token_file = os.path.join(tmp, "token")
        fake_log = open(os.path.join(tmp, "fake.log"), "w")
        fp = subprocess.Popen(
            [PY, FAKE, "--port", "0", "--repos", str(a.repos), "--org", "bench", "--bot", "ccci-bot",
             "--token-file", token_file, "--member", "alice", "--record-limit", "2000"],
            stdout=subprocess.PIPE, stderr=fake_log, text=True)
        procs.append(fp)
        hello = json.loads(fp.stdout.readline())
        url = hello["url"]
        port = int(url.rsplit(":", 1)[1])

        # PRs for the latency phase, made before the daemon starts (a PR is
        # not a comment: polls do not see them).
        prs = []
        for _ in range(a.comments):
            repo = "bench/r%d" % rnd.randrange(a.repos)
            prs.append((repo, fake(url, "/_fake/open_pr", {"repo": repo, "user": "alice"})["number"]))

        starts = os.path.join(tmp, "starts")
        harness = os.path.join(tmp, "harness.sh")
        with open(harness, "w") as f:
            f.write(HARNESS)
        sock = os.path.join(tmp, "ccci.sock")
        cfg = os.path.join(tmp, "ccci.yml")
        with open(cfg, "w") as f:
            f.write("state_dir: %s/state\nsocket: %s\nmin_free_bytes: 0\ncapacity: 8\n"
                    "harness:\n  command: [/bin/sh, %s]\n  teardown_command: [/bin/true]\n"
                    "  env: {POLL_BENCH_STARTS: %s}\n"
                    "forge:\n  url: '%s'\n  token_file: %s\n  poll_interval: %ds\n  max_connections: %d\n"
                    "  repos:\n" % (tmp, sock, harness, starts, url, token_file, a.interval, a.max_connections))
            for i in range(a.repos):
                f.write("    - bench/r%d\n" % i)
        serve_log = os.path.join(tmp, "serve.log")
        t_start = time.monotonic()
        dp = start_daemon(ccci, cfg, sock, serve_log)
        procs.append(dp)
        st = request(sock, {"v": 1, "op": "status"})
        if "forge" not in st:
            print("warning: status has no forge object; this daemon may not poll", file=sys.stderr)

        # Warm-up: every repo had its first poll (it takes the watermark and triggers nothing).
        limit = time.monotonic() + 2 * a.interval + 60
        while True:
            n, source = polls_done(sock, url)
            if n >= a.repos and time.monotonic() - t_start >= a.interval + 1:
                break
            if time.monotonic() > limit:
                sys.exit("warm-up: only %d polls (%s) of %d repos after %.0f s; see %s"
                         % (n, source, a.repos, time.monotonic() - t_start, serve_log))
            time.sleep(0.5)
        warmup = time.monotonic() - t_start

        # Phase 1: steady polling.
        polls0, _ = polls_done(sock, url)
        req0 = fake(url, "/_fake/requests/count")["total"]
        user0, sys0 = cpu_split(dp.pid)
        cpu0 = user0 + sys0
        t0 = time.monotonic()
        seen_ports, max_open = set(), 0
        while time.monotonic() - t0 < a.seconds:
            ports = connections(dp.pid, port)
            seen_ports |= ports
            max_open = max(max_open, len(ports))
            time.sleep(0.25)
        t1 = time.monotonic()
        user1, sys1 = cpu_split(dp.pid)
        cpu1 = user1 + sys1
        req1 = fake(url, "/_fake/requests/count")["total"]
        polls1, source = polls_done(sock, url)
        elapsed = t1 - t0
        rate = (req1 - req0) / elapsed * 60
        expected = a.repos * 60.0 / a.interval
        npolls = polls1 - polls0
        cpu_ms = (cpu1 - cpu0) * 1000
        per_k = cpu_ms / npolls * 1000 if npolls else float("inf")

        # Phase 2: comment-to-run-start latency.
        order = sorted(rnd.uniform(0, a.seconds) for _ in prs)
        posted = {}  # comment id -> (time posted, repo, pr)
        tp = time.time()
        for (repo, pr), at in zip(prs, order):
            delay = tp + at - time.time()
            if delay > 0:
                time.sleep(delay)
            c = fake(url, "/_fake/comment", {"repo": repo, "number": pr, "user": "alice", "body": "!testme"})
            posted[c["id"]] = (time.time(), repo, pr)
        limit = time.time() + a.interval * 2 + 30

        def started():
            out = {}
            try:
                with open(starts) as f:
                    for line in f:
                        rid, t = line.split()
                        out[rid] = float(t)
            except FileNotFoundError:
                pass
            return out

        def match(st):
            lat, runs = {}, None
            for cid, (t, repo, pr) in posted.items():
                hit = [rid for rid in st if rid.endswith("-c%d" % cid)]
                if not hit:
                    if runs is None:
                        runs = request(sock, {"v": 1, "op": "ps"})["runs"]
                    hit = [r["id"] for r in runs
                           if (r.get("trigger") or {}).get("comment_id") == cid and r["id"] in st]
                if hit:
                    lat[cid] = st[hit[0]] - t
            return lat

        while True:
            lat = match(started())
            if len(lat) == len(posted) or time.time() > limit:
                break
            time.sleep(0.5)
        rss = peak_rss_kib(dp.pid)
        c2 = counters(sock)
        runs = request(sock, {"v": 1, "op": "ps"})["runs"]
        forge_runs = [r for r in runs if (r.get("trigger") or {}).get("kind") == "forge"]
        with open(serve_log, errors="replace") as f:
            errors = [ln for ln in f if ln.startswith("error")]

        p50, p99 = pct(list(lat.values()), 50), pct(list(lat.values()), 99)
        missing = len(posted) - len(lat)
        print("poll: %d repos, poll_interval %d s, %d s per phase, %d comments; warm-up %.0f s; polls counted by %s"
              % (a.repos, a.interval, a.seconds, len(posted), warmup, source))
        fmt = "%-38s %16s  %-28s %s"
        print(fmt % ("metric", "value", "target", "verdict"))

        def row(name, value, target="", ok=None):
            nonlocal failed
            verdict = "" if ok is None else ("PASS" if ok else "MISS")
            failed = failed or ok is False
            print(fmt % (name, value, target, verdict))

        lo, hi = expected * (1 - TARGET_RATE_SLACK), expected * (1 + TARGET_RATE_SLACK)
        row("requests/min seen by the fake", "%.0f" % rate, "%.0f..%.0f (N x 60/interval)" % (lo, hi),
            lo <= rate <= hi)
        row("polls completed (phase 1)", "%d in %.1f s" % (npolls, elapsed))
        row("daemon CPU per 1000 polls", "%.1f ms" % per_k, "<= %.0f ms" % TARGET_CPU_MS, per_k <= TARGET_CPU_MS)
        row("daemon CPU (phase 1)", "%.0f ms (%.2f %%)" % (cpu_ms, cpu_ms / 10 / elapsed))
        row("  of which user / sys", "%.0f / %.0f ms" % ((user1 - user0) * 1000, (sys1 - sys0) * 1000))
        row("connections to the fake (max open)", "%d" % max_open, "<= %d" % a.max_connections,
            max_open <= a.max_connections)
        row("distinct connections seen (phase 1)", "%d" % len(seen_ports), "reused, not one per poll",
            len(seen_ports) <= 4 * a.max_connections)
        row("daemon peak RSS", "%.1f MiB" % (rss / 1024))
        row("comment -> run start p50", "%.2f s" % p50)
        row("comment -> run start p99", "%.2f s" % p99, "<= %d s" % (a.interval + 2),
            missing == 0 and p99 <= a.interval + 2)
        row("comment -> run start max", "%.2f s" % max(lat.values()) if lat else "-")
        row("comments without a run start", "%d" % missing, "0", missing == 0)
        row("forge runs / comments", "%d / %d" % (len(forge_runs), len(posted)), "equal",
            len(forge_runs) == len(posted))
        for k in ("forge_poll_errors", "forge_requests", "forge_triggers", "outbox_backlog", "outbox_errors"):
            if k in c2:
                row("counter %s" % k, "%s" % c2[k])
        row("daemon log error lines", "%d" % len(errors), "0", not errors)
        for ln in errors[:5]:
            print("  " + ln.rstrip())
        # The floor: libcurl alone, one blocking GET per poll at the daemon's
        # spacing of polls (bench/poll_floor.c), against the same fake.
        gap_ms = max(1, int(a.interval * 1000 / a.repos))
        fl = subprocess.run([os.path.join(a.build, "bench", "poll_floor"), url, token_file, "300", str(gap_ms)],
                            capture_output=True, text=True)
        for line in fl.stdout.splitlines():
            us = float(line.split()[-5])
            label = "paced" if line.startswith("paced") else "back to back"
            row("floor: libcurl alone, %s" % label, "%.1f ms per 1000" % us,
                "" if label != "paced" else "daemon / floor %.2f" % (per_k / us))
        return 1 if failed else 0
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        if a.keep:
            print("kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
