#!/usr/bin/env python3
"""Fan-in benchmark: N concurrent runs each writing MiB of CI-like lines
through the real daemon (supervisor, pipes, redaction, Drone logs), with K
secrets loaded; aggregate MB/s, daemon CPU seconds per GiB, daemon peak RSS,
next to the same writers into /dev/null, and next to bench/fanin_floor (the
same pipes read and files written by a program that does nothing else: the
machine's floor for any daemon that logs pipes into files) as a ratio.

    bench/fanin.py BUILD_DIR [--mib 4] [--runs 1,16,64,256] [--secrets 10,1000]
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

from benchlib import request, cpu_split, minor_faults, peak_rss_kib, start_daemon


def floor(build, n, mib):
    """CPU-s/GiB of bench/fanin_floor for the same writers: pipes read and
    files written with nothing else (the kernel's part of the log path)."""
    out = subprocess.run([os.path.join(build, "bench", "fanin_floor"), os.path.join(build, "bench", "fanin_writer"),
                          str(mib), str(n), "32", "/tmp"], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        if line.startswith("read, write in 256 KiB per child"):
            return float(line.split()[-4])
    return 0.0


def baseline(writer, n, mib):
    t0 = time.monotonic()
    procs = [subprocess.Popen([writer, str(mib)], stdout=subprocess.DEVNULL) for _ in range(n)]
    for p in procs:
        p.wait()
    return time.monotonic() - t0


def one(build, n, k, mib):
    tmp = tempfile.mkdtemp(prefix="fanin-", dir="/tmp")
    try:
        sec = os.path.join(tmp, "secrets")
        os.makedirs(sec)
        rnd = random.Random(k)
        alpha = string.ascii_letters + string.digits
        secrets = ["".join(rnd.choice(alpha) for _ in range(rnd.randrange(20, 41))) for _ in range(k)]
        for i, v in enumerate(secrets):
            with open(os.path.join(sec, "s%d" % i), "w") as f:
                f.write(v)
        recipe = os.path.join(tmp, "recipe")
        os.makedirs(recipe)
        writer = os.path.join(build, "bench", "fanin_writer")
        cfg = os.path.join(tmp, "ccci.yml")
        with open(cfg, "w") as f:
            f.write(
                "state_dir: %s/state\nsocket: %s/s.sock\nsecrets_dir: %s\ncapacity: %d\n"
                "min_free_bytes: 0\nharness:\n  command: [%s, '%d']\n  env: {FANIN_SECRET: %s}\n"
                % (tmp, tmp, sec, n, writer, mib, secrets[0])
            )
        sock = os.path.join(tmp, "s.sock")
        daemon = start_daemon(os.path.join(build, "ccci"), cfg, sock, os.path.join(tmp, "serve.log"))
        # Measured once the daemon has read its secrets at start: the set is
        # built once per daemon (and per change), not per run.
        while request(sock, {"v": 1, "op": "status"})["counters"]["secrets_values"] < k:
            time.sleep(0.01)
        u0, s0 = cpu_split(daemon.pid)
        flt0 = minor_faults(daemon.pid)
        t0 = time.monotonic()
        ids = [request(sock, {"v": 1, "op": "submit", "dir": recipe})["id"] for _ in range(n)]
        # Completion from the status counters (cheap for the daemon), the
        # run list once at the end.
        while request(sock, {"v": 1, "op": "status"})["counters"]["runs_by_state"]["finished"] < n:
            time.sleep(0.05)
        runs = request(sock, {"v": 1, "op": "ps"})["runs"]
        wall = time.monotonic() - t0
        u1, s1 = cpu_split(daemon.pid)
        cpu = (u1 - u0) + (s1 - s0)
        user = u1 - u0
        faults = minor_faults(daemon.pid) - flt0
        rss = peak_rss_kib(daemon.pid)
        bad = [r["id"] for r in runs if r["reason"] != "success"]
        daemon.terminate()
        daemon.wait()
        total = n * mib * 1024 * 1024
        leaked = 0
        for rid in ids[:2]:
            with open(os.path.join(tmp, "state", "runs", rid, "logs", "0-init.jsonl"), "rb") as f:
                leaked += f.read().count(secrets[0].encode())
        return wall, cpu, user, rss, total, bad, leaked, faults
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--mib", type=int, default=4)
    ap.add_argument("--runs", default="1,16,64,256")
    ap.add_argument("--secrets", default="10,1000")
    a = ap.parse_args()
    writer = os.path.join(a.build, "bench", "fanin_writer")
    print("fan-in: each run writes %d MiB of CI-like lines through the daemon" % a.mib)
    print("%6s %8s %10s %12s %11s %9s %10s %8s %10s %12s %10s %11s %s" % ("runs", "secrets", "MB/s", "devnull MB/s", "CPU-s/GiB", "user part", "floor", "x floor", "CPU ms/run", "peak RSS MiB", "RSS bound", "faults/run", "check"))
    for k in [int(x) for x in a.secrets.split(",")]:
        for n in [int(x) for x in a.runs.split(",")]:
            wall, cpu, user, rss, total, bad, leaked, faults = one(a.build, n, k, a.mib)
            base = baseline(writer, n, a.mib)
            bound = 64 + n * 0.25
            target = 1.0 if k <= 10 else 2.5
            per_gib = cpu / (total / 2**30) if total else 0.0
            fl = floor(a.build, n, a.mib) if total else 0.0
            ok = "ok" if not bad and leaked == 0 else "BAD %s leaked=%d" % (bad[:3], leaked)
            print(
                "%6d %8d %10.0f %12.0f %11.2f %8.0f%% %10.2f %8.1f %10.1f %12.1f %10.1f %11d %s cpu %s rss %s"
                % (n, k, total / wall / 1e6, total / base / 1e6, per_gib, 100.0 * user / cpu if cpu else 0.0, fl,
                   per_gib / fl if fl else 0.0, cpu * 1000 / n, rss / 1024, bound, faults // n, ok,
                   "PASS" if per_gib <= target else "MISS", "PASS" if rss / 1024 <= bound else "MISS")
            )
            sys.stdout.flush()


if __name__ == "__main__":
    main()
