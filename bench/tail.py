#!/usr/bin/env python3
"""Live-tail benchmark (issue 5): N runs whose harness writes stamped lines
(bench/tail_writer), C tail clients in one epoll process (bench/tail_reader)
following them through the real daemon; latency from the child's write(2)
to the client's read(2), daemon CPU and peak RSS. Phase `paced`: every run
writes RATE lines/s for SECONDS; phase `saturation`: the writers run at full
speed for SATURATE_SECONDS and the figure is the throughput.

    bench/tail.py BUILD_DIR [--runs 50] [--clients 200] [--rate 200]
        [--seconds 20] [--saturate-seconds 10] [--size 100] [--secrets 10]
        [--phases paced,saturation] [--repeat 1]

Phase `notail` (not run by default) is `paced` without clients: what the
logs alone cost the daemon, to tell the tail's share of its CPU.
"""

import argparse
import json
import os
import random
import shutil
import string
import subprocess
import sys
import tempfile
import time

from benchlib import request, cpu_seconds, peak_rss_kib, start_daemon

TARGET_P99_MS = 10.0
BENCH_STEP = 1
NO_CLIENTS = {k: 0 for k in ("lines", "bytes", "p50_ms", "p99_ms", "max_ms", "gaps", "dups",
                             "mismatch", "nostamp", "bad_lines", "errors", "refused",
                             "eof_without_end", "unfinished", "last_line_ns")}
NO_CLIENTS["first_error"] = ""


def machine_ticks():
    """(busy, total) jiffies of all CPUs, to tell a saturated machine."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return sum(v) - idle, sum(v)


def wait_states(sock, ids, states, limit):
    want = set(ids)
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        runs = request(sock, {"v": 1, "op": "ps"})["runs"]
        got = {r["id"]: r for r in runs if r["id"] in want}
        if len(got) == len(want) and all(r["state"] in states for r in got.values()):
            return got
        time.sleep(0.05)
    raise RuntimeError("runs not %s after %ds" % ("/".join(states), limit))


def step_lines(sock, rid):
    run = request(sock, {"v": 1, "op": "show", "id": rid})["run"]
    for s in run.get("steps", []):
        if s["n"] == BENCH_STEP:
            return s["lines"]
    return 0


def phase(a, name, rate, seconds, clients=True):
    build = a.build
    tmp = tempfile.mkdtemp(prefix="tailbench-", dir="/tmp")
    daemon = None
    reader = None
    try:
        sec = os.path.join(tmp, "secrets")
        os.makedirs(sec)
        rnd = random.Random(a.secrets)
        alpha = string.ascii_letters + string.digits
        for i in range(a.secrets):
            with open(os.path.join(sec, "s%d" % i), "w") as f:
                f.write("".join(rnd.choice(alpha) for _ in range(rnd.randrange(20, 41))))
        recipe = os.path.join(tmp, "recipe")
        os.makedirs(recipe)
        gate = os.path.join(tmp, "go")
        writer = os.path.join(build, "bench", "tail_writer")
        argv = [writer, "-r", str(rate), "-s", str(seconds), "-b", str(a.size), "-g", gate]
        cfg = os.path.join(tmp, "ccci.yml")
        with open(cfg, "w") as f:
            f.write(
                "state_dir: %s/state\nsocket: %s/s.sock\nsecrets_dir: %s\ncapacity: %d\n"
                "min_free_bytes: 0\nharness:\n  command: [%s]\n"
                % (tmp, tmp, sec, a.runs, ", ".join("'%s'" % x for x in argv))
            )
        sock = os.path.join(tmp, "s.sock")
        daemon = start_daemon(os.path.join(build, "ccci"), cfg, sock, os.path.join(tmp, "serve.log"))
        # What the rest of the machine is doing (other builds) just before.
        bbusy0, btotal0 = machine_ticks()
        time.sleep(1.0)
        bbusy1, btotal1 = machine_ticks()
        bg_pct = (bbusy1 - bbusy0) / max(btotal1 - btotal0, 1) * 100
        ids = [request(sock, {"v": 1, "op": "submit", "dir": recipe})["id"] for _ in range(a.runs)]
        # Each writer prints its step marker, then waits for the gate.
        wait_states(sock, ids, ("running",), 120)
        if clients:
            reader = subprocess.Popen(
                [os.path.join(build, "bench", "tail_reader"), "-n", str(a.clients),
                 "-t", str(seconds + a.timeout), sock] + ids,
                stdout=subprocess.PIPE,
            )
            ready = reader.stdout.readline().decode().strip()
            if ready != "ready":
                raise RuntimeError("tail_reader: %r" % ready)
        # Without clients (phase notail) the same writers fill only the logs.
        cpu0 = cpu_seconds(daemon.pid)
        busy0, total0 = machine_ticks()
        t0 = time.monotonic_ns()
        open(gate, "w").close()
        # While the clients read, note when every run has finished (its
        # lines are all in the logs): the window of the logging rate.
        # No polling before the writers are done: it would cost the daemon.
        t_logged = None
        while (reader.poll() is None) if clients else t_logged is None:
            time.sleep(0.25)
            if t_logged is None and time.monotonic_ns() - t0 >= seconds * 10**9:
                ps = request(sock, {"v": 1, "op": "ps"})["runs"]
                if sum(1 for r in ps if r["state"] == "finished") == a.runs:
                    t_logged = time.monotonic_ns()
        t1 = time.monotonic_ns()
        out = reader.stdout.read() if clients else None
        cpu = cpu_seconds(daemon.pid) - cpu0
        busy1, total1 = machine_ticks()
        rss = peak_rss_kib(daemon.pid)
        runs = wait_states(sock, ids, ("finished",), 60)
        if t_logged is None:
            t_logged = time.monotonic_ns()
        logged = {rid: step_lines(sock, rid) for rid in ids}
        if clients:
            res = json.loads(out)
        else:
            res = dict(NO_CLIENTS, per_client=[], reader_cpu_s=0.0)
        problems = []
        bad = [rid for rid, r in runs.items() if r.get("reason") != "success"]
        if bad:
            problems.append("%d runs not success (%s)" % (len(bad), bad[0]))
        short = sum(1 for run, n in res["per_client"] if n != logged[ids[run]])
        if short:
            problems.append("%d clients' line count != log" % short)
        for key in ("gaps", "dups", "mismatch", "nostamp", "bad_lines", "errors",
                    "refused", "eof_without_end", "unfinished"):
            if res[key]:
                problems.append("%s=%d" % (key, res[key]))
        if res["first_error"]:
            problems.append(res["first_error"][:80])
        with open(os.path.join(tmp, "serve.log"), errors="replace") as f:
            loud = [ln.strip() for ln in f if not ln.startswith("info ")]
        if loud:
            problems.append("%d daemon warnings: %s" % (len(loud), loud[0][:100]))
        wall = (t1 - t0) / 1e9
        window = (res["last_line_ns"] - t0) / 1e9 if res["last_line_ns"] > t0 else wall
        log_window = ((t_logged or t1) - t0) / 1e9
        log_lines = sum(logged.values())
        return {
            "phase": name,
            "lines_s": res["lines"] / window,
            "mb_s": res["bytes"] / window / 1e6,
            "log_lines_s": log_lines / log_window,
            "log_mb_s": log_lines * a.size / log_window / 1e6,
            "p50": res["p50_ms"],
            "p99": res["p99_ms"],
            "max": res["max_ms"],
            "cpu_pct": cpu / wall * 100,
            "cpu_per_m": cpu / (res["lines"] / 1e6) if res["lines"] else 0.0,
            "cpu_per_mlog": cpu / (log_lines / 1e6) if log_lines else 0.0,
            "rss_mib": rss / 1024,
            "reader_pct": res["reader_cpu_s"] / wall * 100,
            "machine_pct": (busy1 - busy0) / max(total1 - total0, 1) * 100,
            "bg_pct": bg_pct,
            "gapdup": "%d/%d" % (res["gaps"], res["dups"]),
            "problems": problems,
            "lines": res["lines"],
            "wall": wall,
        }
    finally:
        if reader is not None and reader.poll() is None:
            reader.kill()
            reader.wait()
        if daemon is not None:
            daemon.terminate()
            daemon.wait()
        if a.keep:
            print("kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--rate", type=int, default=200, help="lines/s per run in the paced phase")
    ap.add_argument("--seconds", type=int, default=20, help="length of the paced phase")
    ap.add_argument("--saturate-seconds", type=int, default=10)
    ap.add_argument("--size", type=int, default=100, help="bytes per line, newline included")
    ap.add_argument("--secrets", type=int, default=10)
    ap.add_argument("--phases", default="paced,saturation")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--timeout", type=int, default=300, help="extra seconds the clients may take")
    ap.add_argument("--keep", action="store_true", help="keep the state dir of each phase")
    a = ap.parse_args()
    print("tail: %d runs, %d clients (%.1f per run), %d-byte lines, %d secrets; paced %d lines/s per run "
          "for %d s, saturation %d s" % (a.runs, a.clients, a.clients / a.runs, a.size, a.secrets, a.rate,
                                         a.seconds, a.saturate_seconds))
    hdr = ("phase", "runs", "clients", "lines/s", "MB/s", "log lines/s", "log MB/s", "p50 ms", "p99 ms",
           "max ms", "CPU %", "CPU-s/Mline", "CPU-s/Mlog", "RSS MiB", "reader %", "machine %", "bg %", "wall s", "gaps/dups", "check")
    fmt = "%-10s %5s %7s %10s %7s %11s %8s %7s %7s %8s %6s %11s %10s %7s %8s %9s %5s %6s %9s %s"
    print(fmt % hdr)
    failed = False
    for _ in range(a.repeat):
        for name in a.phases.split(","):
            if name == "paced":
                r = phase(a, name, a.rate, a.seconds)
            elif name == "saturation":
                r = phase(a, name, 0, a.saturate_seconds)
            elif name == "notail":
                r = phase(a, name, a.rate, a.seconds, clients=False)
            else:
                sys.exit("unknown phase %r" % name)
            check = "ok" if not r["problems"] else "BAD " + "; ".join(r["problems"])
            if name == "paced" and r["lines"]:
                check += " p99 %s" % ("PASS" if r["p99"] <= TARGET_P99_MS else "MISS")
            failed = failed or bool(r["problems"])
            print(fmt % (name, a.runs, a.clients, "%.0f" % r["lines_s"], "%.1f" % r["mb_s"],
                         "%.0f" % r["log_lines_s"], "%.1f" % r["log_mb_s"], "%.2f" % r["p50"],
                         "%.2f" % r["p99"], "%.1f" % r["max"], "%.0f" % r["cpu_pct"],
                         "%.2f" % r["cpu_per_m"], "%.2f" % r["cpu_per_mlog"], "%.1f" % r["rss_mib"], "%.0f" % r["reader_pct"],
                         "%.0f" % r["machine_pct"], "%.0f" % r["bg_pct"], "%.1f" % r["wall"], r["gapdup"], check))
            sys.stdout.flush()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
