#!/usr/bin/env python3
"""HTTP front benchmark (issue 16): Debian's wrk against the real `ccci
serve` and against a Go net/http server (bench/http_go, the stack Drone's
own server uses) serving from memory the very bytes the daemon answered,
in the same run: requests/s and p99 for each path, and the ratio ccci/go
(target >= 1.0 on this 2-core machine).

    bench/http.py [--bin build-release/ccci] [--state-dir DIR]
        [--path /api/runs/<id>] [--path ...] [--threads 2]
        [--connections 50] [--seconds 10]

By default the paths are /api/runs/<id> of the newest run in the state dir
and the Drone log array of its largest step (a 100k-line step in the
figures of docs/perf.md); with no run there, /healthz and /api/runs.
Needs wrk and golang-go (`scripts/dev.sh bench-http` installs them).
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

# This file's name hides the standard library's http package: import it
# (through urllib) without this directory on the path, then put it back.
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != HERE]
import urllib.error  # noqa: E402
import urllib.request  # noqa: E402
sys.path.insert(0, HERE)
from benchlib import request, start_daemon, cpu_seconds  # noqa: E402


def need(tool, pkg):
    if shutil.which(tool) is None:
        sys.exit("bench/http.py needs %s: install the Debian package %s "
                 "(scripts/dev.sh bench-http does)" % (tool, pkg))


def fetch(base, path):
    """(status, content type, body) of one GET."""
    try:
        with urllib.request.urlopen(base + path, timeout=60) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read()


def default_paths(base):
    st, _, body = fetch(base, "/api/runs")
    try:
        runs = json.loads(body)
        runs = runs.get("runs", runs) if isinstance(runs, dict) else runs
    except ValueError:
        runs = []
    if st != 200 or not runs:
        return ["/healthz", "/api/runs"]
    rid = runs[0]["id"]
    paths = ["/api/runs/%s" % rid]
    st, _, body = fetch(base, paths[0])
    try:
        run = json.loads(body)
        run = run.get("run", run)
        owner, name = run["repo"].split("/", 1)
        steps = run.get("steps", [])
        big = max(range(len(steps)), key=lambda i: steps[i].get("lines", 0))
        paths.append("/api/repos/%s/%s/builds/%d/logs/1/%d"
                     % (owner, name, run["number"], big + 1))
    except (ValueError, KeyError, TypeError):
        pass
    return paths


def to_ms(v, unit):
    return float(v) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(url, a):
    out = subprocess.run(["wrk", "-t%d" % a.threads, "-c%d" % a.connections,
                          "-d%ds" % a.seconds, "--latency", url],
                         capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    errs = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: (.*)", out)
    return {"rps": rps, "p99_ms": to_ms(m.group(1), m.group(2)),
            "non2xx": int(errs.group(1)) if errs else 0,
            "socket_errors": sock.group(1) if sock else ""}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="build-release/ccci")
    ap.add_argument("--state-dir")
    ap.add_argument("--path", action="append")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--seconds", type=int, default=10)
    a = ap.parse_args()
    need("wrk", "wrk")
    need("go", "golang-go")
    tmp = tempfile.mkdtemp(prefix="ccci-bench-http-")
    daemon = gosrv = None
    try:
        state = a.state_dir or os.path.join(tmp, "state")
        sock = os.path.join(tmp, "s.sock")
        cfg = os.path.join(tmp, "ccci.yml")
        with open(cfg, "w") as f:
            f.write("state_dir: %s\nsocket: %s\nhttp:\n  listen: 127.0.0.1:0\n"
                    % (state, sock))
        daemon = start_daemon(a.bin, cfg, sock, os.path.join(tmp, "serve.log"))
        addr = request(sock, {"v": 1, "op": "status"})["http"]["listen"]
        base = "http://" + addr
        paths = a.path or default_paths(base)
        manifest = {}
        for i, p in enumerate(paths):
            st, ctype, body = fetch(base, p)
            fn = os.path.join(tmp, "body%d" % i)
            with open(fn, "wb") as f:
                f.write(body)
            manifest[p.split("?", 1)[0]] = {"status": st, "ctype": ctype, "file": fn}
            print("path %s: status %d, %d bytes" % (p, st, len(body)))
        with open(os.path.join(tmp, "manifest.json"), "w") as f:
            json.dump(manifest, f)
        gobin = os.path.join(tmp, "http_go")
        env = dict(os.environ, GOCACHE=os.path.join(tmp, "gocache"),
                   GOPATH=os.path.join(tmp, "gopath"), GO111MODULE="off",
                   GOFLAGS="")
        subprocess.run(["go", "build", "-o", gobin, os.path.join(HERE, "http_go", "main.go")],
                       check=True, env=env)
        gosrv = subprocess.Popen([gobin, os.path.join(tmp, "manifest.json")],
                                 stdout=subprocess.PIPE, text=True)
        goaddr = gosrv.stdout.readline().strip()
        print("wrk -t%d -c%d -d%ds --latency; ccci on %s, go on %s"
              % (a.threads, a.connections, a.seconds, addr, goaddr))
        for p in paths:
            c0 = cpu_seconds(daemon.pid)
            c = wrk(base + p, a)
            c["cpu_s"] = cpu_seconds(daemon.pid) - c0
            g = wrk("http://" + goaddr + p, a)
            print("%-60s ccci %9.0f req/s p99 %7.2f ms (cpu %.1f s) | go %9.0f req/s "
                  "p99 %7.2f ms | ratio %.2f%s"
                  % (p, c["rps"], c["p99_ms"], c["cpu_s"], g["rps"], g["p99_ms"],
                     c["rps"] / g["rps"] if g["rps"] else 0,
                     "" if not c["socket_errors"] else " ccci socket errors: " + c["socket_errors"]))
    finally:
        for p in (gosrv, daemon):
            if p is not None:
                p.terminate()
                p.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
