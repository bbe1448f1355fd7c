#!/usr/bin/env python3
"""SSE fan-out benchmark (issue 16): one run whose harness (bench/tail_writer)
writes RATE stamped lines/s for SECONDS, CLIENTS SSE clients on its Drone
stream (/api/stream/{owner}/{name}/{n}/1/{step}) through the real `ccci
serve`; latency from the child's write(2) to the client's read(2), lines per
client (all must be complete), the run's wall time with and without clients,
daemon CPU and peak RSS. Target: p99 <= 20 ms, 200 clients, 10k lines/s.

    bench/sse.py BUILD_DIR [--clients 200] [--stalled 0] [--rate 10000]
        [--seconds 10] [--size 100] [--reader c|py] [--procs N] [--repeat 1]
        [--phases noclients,clients]

--reader c (default): bench/sse_reader, all clients in one epoll process,
every line parsed (pos checked, latency of every line). --reader py: PROCS
(default 2) Python processes with selectors; too slow to parse 2M lines/s,
so a read is cut at its last complete event, its events counted, its first
and last `pos` checked against the previous read, and all its lines counted
with the latency of its oldest line (percentiles an upper bound, max exact);
"pass" is how long a pass over the ready sockets took. On this 2-core machine
the Python readers take most of a core and their own stalls make the tail
(docs/perf.md), so the figures are the C reader's.
Stalled clients (--stalled N, of the CLIENTS) send their request and never
read. The stream is the Drone one, not /runs/<id>/events: it is the API the
issue names for the fan-out and it has no HTML rendering to add.
"""

import argparse
import array
import gc
import json
import multiprocessing
import os
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from benchlib import request, cpu_seconds, peak_rss_kib, start_daemon

TARGET_P99_MS = 20.0
READ_MAX = 1 << 18
BENCH_STEP = 1  # tail_writer's marker opens our step 1: Drone step 2


def machine_ticks():
    """(busy, total) jiffies of all CPUs, to tell a saturated machine."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return sum(v) - idle, sum(v)


def wait_state(sock, rid, states, limit, pause=0.05):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        for r in request(sock, {"v": 1, "op": "ps"})["runs"]:
            if r["id"] == rid and r["state"] in states:
                return r
        time.sleep(pause)
    raise RuntimeError("run %s not %s after %ds" % (rid, "/".join(states), limit))


def show(sock, rid):
    return request(sock, {"v": 1, "op": "show", "id": rid})["run"]


def step_lines(run):
    for s in run.get("steps", []):
        if s["n"] == BENCH_STEP:
            return s["lines"]
    return None


def open_client(addr, path):
    host, port = addr.rsplit(":", 1)
    s = socket.create_connection((host, int(port)))
    s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n\r\n"
               % (path, addr)).encode())
    return s


def int_after(buf, key, start, rev=False):
    i = buf.rfind(key) if rev else buf.find(key, start)
    if i < 0:
        return None, -1
    i += len(key)
    j = i
    while j < len(buf) and 48 <= buf[j] <= 57:
        j += 1
    return int(buf[i:j]), j


class Client:
    __slots__ = ("sock", "rest", "head", "lines", "next_pos", "gaps", "dups",
                 "done", "error", "nostamp")

    def __init__(self, sock):
        self.sock = sock
        self.rest = b""
        self.head = False
        self.lines = 0
        self.next_pos = 0
        self.gaps = self.dups = self.nostamp = 0
        self.done = False
        self.error = ""


def reader(addr, path, n, timeout, conn):
    """Child process: n clients, report per-read (latency, lines) and counts."""
    sel = selectors.DefaultSelector()
    clients = []
    for _ in range(n):
        s = open_client(addr, path)
        s.setblocking(False)
        c = Client(s)
        clients.append(c)
        sel.register(s, selectors.EVENT_READ, c)
    conn.send("ready")
    # No collector pauses in the middle of a pass, and flat arrays.
    gc.disable()
    passes = array.array("q")  # ns each pass over the ready sockets took
    full = 0  # reads that filled the buffer: the reader is behind
    lats = array.array("q")  # latency of each read's oldest line, ns
    ks = array.array("q")  # lines in that read
    open_n = n
    deadline = time.monotonic() + timeout
    while open_n and time.monotonic() < deadline:
        ready = sel.select(1.0)
        p0 = time.monotonic_ns()
        for key, _ in ready:
            c = key.data
            try:
                chunk = c.sock.recv(READ_MAX)
            except BlockingIOError:
                continue
            except OSError as e:
                chunk = b""
                c.error = c.error or str(e)
            now = time.monotonic_ns()
            if len(chunk) == READ_MAX:
                full += 1
            if not chunk:
                if not c.done:
                    c.error = c.error or "EOF before eof event"
                sel.unregister(c.sock)
                c.sock.close()
                open_n -= 1
                continue
            buf = c.rest + chunk if c.rest else chunk
            if not c.head:
                h = buf.find(b"\r\n\r\n")
                if h < 0:
                    c.rest = buf
                    continue
                if not buf.startswith(b"HTTP/1.1 200"):
                    c.error = buf[:h].decode(errors="replace").splitlines()[0]
                c.head = True
                buf = buf[h + 4:]
            cut = buf.rfind(b"\n\n")
            if cut < 0:
                c.rest = buf
                continue
            part = buf[:cut + 2]
            c.rest = buf[cut + 2:]
            k = part.count(b"\ndata: {")
            if part.startswith(b"data: {"):
                k += 1
            if k:
                first, _ = int_after(part, b'"pos":', 0)
                last, _ = int_after(part, b'"pos":', 0, rev=True)
                if first != c.next_pos:
                    if first > c.next_pos:
                        c.gaps += 1
                    else:
                        c.dups += 1
                if last - first + 1 != k:
                    c.gaps += 1
                c.next_pos = last + 1
                c.lines += k
                ts, _ = int_after(part, b" t=", 0)
                if ts is not None:
                    lats.append(now - ts)
                    ks.append(k)
                elif b'"out":"[ccci] ' not in part:
                    c.nostamp += 1  # the daemon's own closing line has no stamp
            e = part.find(b"event: error\n")
            if e >= 0:
                msg = part[e + 13:].split(b"\n", 1)[0]
                if msg == b"data: eof":
                    c.done = True
                else:
                    c.error = c.error or msg.decode(errors="replace")
        if ready:
            passes.append(time.monotonic_ns() - p0)
    t = os.times()
    conn.send({
        "lats": lats,
        "ks": ks,
        "per_client": [c.lines for c in clients],
        "gaps": sum(c.gaps for c in clients),
        "dups": sum(c.dups for c in clients),
        "nostamp": sum(c.nostamp for c in clients),
        "unfinished": sum(1 for c in clients if not c.done),
        "errors": [c.error for c in clients if c.error],
        "cpu_s": t.user + t.system,
        "passes": passes,
        "full": full,
    })
    conn.close()


def percentile(lats, total, q):
    """The q-quantile of the lines, each weighted (lats sorted by latency)."""
    want = q * total
    acc = 0
    for lat, k in lats:
        acc += k
        if acc >= want:
            return lat
    return lats[-1][0] if lats else 0


def phase(a, name, clients, stalled):
    tmp = tempfile.mkdtemp(prefix="ssebench-", dir="/tmp")
    daemon = None
    procs = []
    creaders = []
    stuck = []
    try:
        sec = os.path.join(tmp, "secrets")
        os.makedirs(sec)
        with open(os.path.join(sec, "s0"), "w") as f:
            f.write("Zq7secretvalueForTheBench42")
        recipe = os.path.join(tmp, "recipe")
        os.makedirs(recipe)
        gate = os.path.join(tmp, "go")
        argv = [os.path.join(a.build, "bench", "tail_writer"), "-r", str(a.rate),
                "-s", str(a.seconds), "-b", str(a.size), "-g", gate]
        cfg = os.path.join(tmp, "ccci.yml")
        with open(cfg, "w") as f:
            f.write("state_dir: %s/state\nsocket: %s/s.sock\nsecrets_dir: %s\ncapacity: 1\n"
                    "min_free_bytes: 0\nhttp:\n  listen: 127.0.0.1:0\n  public_url: http://ci.example\nharness:\n  command: [%s]\n"
                    % (tmp, tmp, sec, ", ".join("'%s'" % x for x in argv)))
        sock = os.path.join(tmp, "s.sock")
        daemon = start_daemon(os.path.join(a.build, "ccci"), cfg, sock,
                              os.path.join(tmp, "serve.log"))
        addr = request(sock, {"v": 1, "op": "status"})["http"]["listen"]
        # What the rest of the machine is doing (other builds) just before.
        bbusy0, btotal0 = machine_ticks()
        time.sleep(1.0)
        bbusy1, btotal1 = machine_ticks()
        bg_pct = (bbusy1 - bbusy0) / max(btotal1 - btotal0, 1) * 100
        rid = request(sock, {"v": 1, "op": "submit", "dir": recipe})["id"]
        wait_state(sock, rid, ("running",), 120)
        for _ in range(400):
            run = show(sock, rid)
            if step_lines(run) is not None:
                break
            time.sleep(0.05)
        owner, rname = run["repo"].split("/", 1)
        path = "/api/stream/%s/%s/%d/1/%d" % (owner, rname, run["number"], BENCH_STEP + 1)
        live = clients - stalled
        nproc = min(a.procs, live) if live and a.reader == "py" else 0
        cprocs = min(a.procs, live) if live and a.reader == "c" else 0
        ctx = multiprocessing.get_context("fork")
        for i in range(nproc):
            n = live // nproc + (1 if i < live % nproc else 0)
            parent, child = ctx.Pipe()
            p = ctx.Process(target=reader, args=(addr, path, n, a.seconds + a.timeout, child))
            p.start()
            procs.append((p, parent))
        for p, conn in procs:
            if conn.recv() != "ready":
                raise RuntimeError("reader not ready")
        host, port = addr.rsplit(":", 1)
        for i in range(cprocs):
            n = live // cprocs + (1 if i < live % cprocs else 0)
            p = subprocess.Popen([os.path.join(a.build, "bench", "sse_reader"), "-n", str(n),
                                  "-t", str(a.seconds + a.timeout), host, port, path],
                                 stdout=subprocess.PIPE, text=True)
            creaders.append(p)
            if p.stdout.readline().strip() != "ready":
                raise RuntimeError("sse_reader not ready")
        for _ in range(stalled):
            s = open_client(addr, path)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            stuck.append(s)
        time.sleep(0.5)  # every request read and every stream begun
        cpu0 = cpu_seconds(daemon.pid)
        busy0, total0 = machine_ticks()
        t0 = time.monotonic_ns()
        open(gate, "w").close()
        time.sleep(a.seconds)
        wait_state(sock, rid, ("finished",), 120, pause=0.02)
        t_run = time.monotonic_ns()
        res = [conn.recv() for _, conn in procs]
        cres = [json.loads(p.stdout.read()) for p in creaders]
        t1 = time.monotonic_ns()
        cpu = cpu_seconds(daemon.pid) - cpu0
        busy1, total1 = machine_ticks()
        rss = peak_rss_kib(daemon.pid)
        run = show(sock, rid)
        logged = step_lines(run) or 0
        for p, _ in procs:
            p.join()
        lats = sorted(x for r in res for x in zip(r["lats"], r["ks"]))
        total = sum(k for _, k in lats)
        passes = sorted(x for r in res for x in r["passes"])
        per_client = [n for r in res + cres for n in r["per_client"]]
        for r in cres:
            r["errors"] = ["%d errors" % r["errors"]] if r["errors"] else []
            r["unfinished"] += r["eof_without_end"]
            r["full"] = 0

        problems = []
        if run.get("reason") != "success":
            problems.append("run %s" % run.get("reason"))
        short = sum(1 for n in per_client if n != logged)
        if short:
            problems.append("%d clients' line count != log (%d)" % (short, logged))
        for key in ("gaps", "dups", "nostamp", "unfinished"):
            v = sum(r[key] for r in res + cres)
            if v:
                problems.append("%s=%d" % (key, v))
        errs = [e for r in res + cres for e in r["errors"]]
        if errs:
            problems.append("%d errors: %s" % (len(errs), errs[0][:80]))
        with open(os.path.join(tmp, "serve.log"), errors="replace") as f:
            loud = [ln.strip() for ln in f if not ln.startswith("info ")]
        if loud:
            problems.append("%d daemon warnings: %s" % (len(loud), loud[0][:100]))
        wall = (t1 - t0) / 1e9
        return {
            "phase": name, "clients": live, "stalled": stalled, "logged": logged,
            "expected": a.rate * a.seconds,
            "run_s": (t_run - t0) / 1e9,
            # The C readers' own percentiles; of several, the worst.
            "p50": (max(r["p50_ms"] for r in cres) if cres
                    else percentile(lats, total, 0.50) / 1e6),
            "p99": (max(r["p99_ms"] for r in cres) if cres
                    else percentile(lats, total, 0.99) / 1e6),
            "max": (max(r["max_ms"] for r in cres) if cres
                    else (lats[-1][0] / 1e6) if lats else 0.0),
            "min_lines": min(per_client) if per_client else 0,
            "max_lines": max(per_client) if per_client else 0,
            "cpu_pct": cpu / wall * 100, "cpu_s": cpu,
            "rss_mib": rss / 1024,
            "reader_pct": sum(r["cpu_s"] for r in res + cres) / wall * 100,
            "reads": len(lats) if not cres else sum(r["samples"] for r in cres),
            "lines": total,
            "full_reads": sum(r["full"] for r in res + cres),
            "pass_p99": passes[int(len(passes) * 0.99)] / 1e6 if passes else 0.0,
            "pass_max": passes[-1] / 1e6 if passes else 0.0,
            "machine_pct": (busy1 - busy0) / max(total1 - total0, 1) * 100,
            "bg_pct": bg_pct,
            "problems": problems,
        }
    finally:
        for s in stuck:
            s.close()
        for p in creaders:
            if p.poll() is None:
                p.kill()
                p.wait()
        for p, _ in procs:
            if p.is_alive():
                p.kill()
                p.join()
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
    ap.add_argument("--clients", type=int, default=200, help="SSE clients in all")
    ap.add_argument("--stalled", type=int, default=0, help="of them, clients that never read")
    ap.add_argument("--rate", type=int, default=10000, help="lines/s the run writes")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--size", type=int, default=100, help="bytes per line, newline included")
    ap.add_argument("--reader", choices=("c", "py"), default="c",
                    help="bench/sse_reader (one epoll process) or Python readers")
    ap.add_argument("--procs", type=int, help="reader processes (default: c 1, py 2)")
    ap.add_argument("--phases", default="noclients,clients")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--timeout", type=int, default=120, help="extra seconds the clients may take")
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    if a.procs is None:
        a.procs = 1 if a.reader == "c" else 2
    print("sse: 1 run, %d lines/s of %d bytes for %d s; %d clients (%d stalled) in %d %s reader "
          "processes, Drone stream" % (a.rate, a.size, a.seconds, a.clients, a.stalled, a.procs,
                                       a.reader))
    hdr = ("phase", "reading", "stalled", "log lines", "run s", "p50 ms", "p99 ms", "max ms",
           "lines/client", "reads", "full", "pass p99/max ms", "CPU %", "RSS MiB", "reader %",
           "machine %", "bg %", "check")
    fmt = "%-9s %7s %7s %12s %6s %7s %7s %8s %12s %7s %5s %15s %5s %7s %8s %9s %4s %s"
    print(fmt % hdr)
    failed = False
    for _ in range(a.repeat):
        for name in a.phases.split(","):
            if name == "noclients":
                r = phase(a, name, 0, 0)
            elif name == "clients":
                r = phase(a, name, a.clients, a.stalled)
            else:
                sys.exit("unknown phase %r" % name)
            check = "ok" if not r["problems"] else "BAD " + "; ".join(r["problems"])
            if r["clients"]:
                check += " p99 %s" % ("PASS" if r["p99"] <= TARGET_P99_MS else "MISS")
            failed = failed or bool(r["problems"])
            lpc = ("%d" % r["min_lines"] if r["min_lines"] == r["max_lines"]
                   else "%d-%d" % (r["min_lines"], r["max_lines"]))
            print(fmt % (name, r["clients"], r["stalled"], "%d/%d" % (r["logged"], r["expected"]),
                         "%.2f" % r["run_s"], "%.2f" % r["p50"], "%.2f" % r["p99"],
                         "%.1f" % r["max"], lpc if r["clients"] else "-", r["reads"],
                         r["full_reads"], "%.1f/%.1f" % (r["pass_p99"], r["pass_max"]),
                         "%.0f" % r["cpu_pct"], "%.1f" % r["rss_mib"], "%.0f" % r["reader_pct"],
                         "%.0f" % r["machine_pct"], "%.0f" % r["bg_pct"],
                         check))
            sys.stdout.flush()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
