"""The HTTP front's JSON API, Drone log API and SSE streams on the real
daemon: the log array is the step file as Drone's schema, /api/runs filters
and pages, /api/runs/<id> is meta + results masked, artifacts only as
results.json lists them, SSE framing, resume with Last-Event-ID with no gap
and no duplicate, and 200 SSE clients (a quarter never reading) that neither
slow the run down nor grow the daemon past its memory bound."""

import hashlib
import http.client
import json
import os
import secrets
import selectors
import socket
import sys
import time

from itest import SCALE, WAIT, CcciTestCase, request, wait_for

PY = sys.executable
SANITIZED = os.environ.get("CCCI_SANITIZED", "0") not in ("", "0", "OFF")

# A harness: a coloured line and a <script> line in init, N numbered lines
# in "build" (NAP s every 1000), held while HOLD exists, then "test", then
# artifacts and a results.json whose error carries SECRET.
HARNESS = r"""
import json, os, sys, time
n, nap = int(sys.argv[1]), float(sys.argv[2])
hold = sys.argv[3] if len(sys.argv) > 3 and sys.argv[3] != "-" else ""
secret = sys.argv[4] if len(sys.argv) > 4 else "none"
out = sys.stdout
out.write("starting\n\x1b[31mred\x1b[0m text\n<script>alert(1)</script>\n~~~ step build\n")
for i in range(n):
    out.write("line %06d %s\n" % (i, "y" * (i % 50)))
    if i % 1000 == 999:
        out.flush()
        time.sleep(nap)
out.flush()
while hold and os.path.exists(hold):
    time.sleep(0.02)
out.write("~~~ step test\ntested\n")
out.flush()
rd = os.path.dirname(os.environ["CCCI_RESULTS_FILE"])
os.makedirs(os.path.join(rd, "artifacts"), exist_ok=True)
with open(os.path.join(rd, "artifacts", "shot.png"), "wb") as f:
    f.write(b"\x89PNG\r\n\x1a\nfake")
with open(os.path.join(rd, "artifacts", "notes.txt"), "w") as f:
    f.write("notes " + secret + "\n")
with open(os.path.join(rd, "artifacts", "unlisted.txt"), "w") as f:
    f.write("not in the results\n")
with open(os.path.join(rd, "artifacts", "data.yml"), "w") as f:
    f.write("password: " + secret + "\n")
# A link out of the artifacts and a FIFO: never served, never waited on.
os.symlink(os.path.join(rd, "meta.json"), os.path.join(rd, "artifacts", "link.png"))
os.mkfifo(os.path.join(rd, "artifacts", "pipe.txt"))
res = {"version": 1, "tiers": {"deploy": {"status": "pass", "reason": None}},
       "level": "L1", "error": "boom " + secret,
       "artifacts": ["artifacts/shot.png", "artifacts/notes.txt", "artifacts/data.yml",
                     "artifacts/link.png", "artifacts/pipe.txt"]}
tmp = os.environ["CCCI_RESULTS_FILE"] + ".tmp"
with open(tmp, "w") as f:
    json.dump(res, f)
os.rename(tmp, os.environ["CCCI_RESULTS_FILE"])
"""


def get(d, path, headers=None):
    host, port = d.http_address().rsplit(":", 1)
    c = http.client.HTTPConnection(host, int(port), timeout=WAIT)
    c.request("GET", path, headers=headers or {})
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, r, body


def parse_events(block_bytes):
    """SSE blocks (separated by a blank line) into (fields, comment) dicts."""
    ev = {}
    for line in block_bytes.split(b"\n"):
        if line.startswith(b":"):
            ev.setdefault("comment", []).append(line[1:].strip())
            continue
        k, _, v = line.partition(b":")
        ev[k.decode()] = v[1:] if v.startswith(b" ") else v
    return ev


class Sse:
    """A raw SSE client (non-blocking once the request is sent); keeps the
    events, or only their hash when `keep` is false."""

    def __init__(self, addr, path, headers=None, keep=True):
        host, port = addr.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=WAIT)
        hdr = "".join("%s: %s\r\n" % kv for kv in (headers or {}).items())
        self.sock.sendall(("GET %s HTTP/1.1\r\nHost: t\r\nAccept: text/event-stream\r\n%s\r\n"
                           % (path, hdr)).encode())
        self.sock.setblocking(False)
        self.buf = b""
        self.head = None
        self.events = []
        self.keep = keep
        self.hash = hashlib.sha256()
        self.lines = 0
        self.last = None
        self.eof = False

    def feed(self, data):
        if not data:
            self.eof = True
            return
        self.buf += data
        if self.head is None:
            i = self.buf.find(b"\r\n\r\n")
            if i < 0:
                return
            self.head = self.buf[:i].decode()
            self.buf = self.buf[i + 4:]
        parts = self.buf.split(b"\n\n")
        self.buf = parts.pop()
        for p in parts:
            ev = parse_events(p)
            if "data" in ev and "event" not in ev:
                self.hash.update(ev["data"] + b"\n")
                self.lines += 1
                self.last = ev.get("id")
            if self.keep or "event" in ev:
                self.events.append(ev)

    def read_some(self):
        try:
            self.feed(self.sock.recv(1 << 20))
        except BlockingIOError:
            pass

    def run_to_end(self, timeout=WAIT * 2):
        sel = selectors.DefaultSelector()
        sel.register(self.sock, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while not self.eof:
            if time.monotonic() > deadline:
                raise AssertionError("the stream did not end")
            sel.select(0.5)
            self.read_some()
        sel.close()
        self.sock.close()
        return self


def step_lines(run_dir, n):
    with open(os.path.join(run_dir, "logs", "index.json")) as f:
        steps = json.load(f)
    name = steps[n]["name"]
    with open(os.path.join(run_dir, "logs", "%d-%s.jsonl" % (n, name)), "rb") as f:
        return f.read().splitlines()


class HttpApiTest(CcciTestCase):
    def setUp(self):
        super().setUp()
        self.recipe = os.path.join(self.tmp, "recipe")
        os.makedirs(self.recipe)
        self.harness = os.path.join(self.tmp, "harness.py")
        with open(self.harness, "w") as f:
            f.write(HARNESS)
        self.secret = "s3cr3t_" + secrets.token_hex(8)
        self.secret_file = os.path.join(self.tmp, "app-secret")
        with open(self.secret_file, "w") as f:
            f.write(self.secret + "\n")

    def serve(self, *args):
        cmd = [PY, self.harness] + [str(a) for a in args]
        d = self.daemon(config="min_free_bytes: 0\ncapacity: 4\nkill_grace: 2s\n"
                               "secret_files: [%s]\nharness:\n  command: %s\n"
                               % (self.secret_file, json.dumps(cmd)))
        return d.start()

    def submit(self, d):
        r = request(d.socket, {"v": 1, "op": "submit", "dir": self.recipe})
        self.assertTrue(r["ok"], r)
        return r["id"]

    def show(self, d, run_id):
        return request(d.socket, {"v": 1, "op": "show", "id": run_id})["run"]

    def wait_finished(self, d, run_id, timeout=WAIT * 2):
        return wait_for(lambda: (lambda r: r if r["state"] == "finished" else None)(self.show(d, run_id)),
                        timeout=timeout, what="run %s finished" % run_id)

    def assert_error(self, d, path, code):
        status, r, body = get(d, path)
        self.assertEqual(status, code, (path, body))
        self.assertEqual(json.loads(body)["error"]["code"], code, path)

    def test_array_run_artifacts_and_streams_of_a_finished_run(self):
        d = self.serve(3000, 0.0, "-", self.secret)
        run_id = self.submit(d)
        run = self.wait_finished(d, run_id)
        number = run["number"]
        base = "/api/repos/local/recipe/builds/%d/logs/1/" % number
        # The array is the step file's objects, in order, byte for byte.
        for k in (0, 1, 2):
            lines = step_lines(run["dir"], k)
            for _ in range(2):  # the second from the cache
                status, r, body = get(d, base + str(k + 1))
                self.assertEqual(status, 200, body)
                self.assertEqual(r.getheader("Content-Type"), "application/json")
                self.assertEqual(body, b"[" + b",".join(lines) + b"]")
            arr = json.loads(body)
            self.assertEqual([o["pos"] for o in arr], list(range(len(arr))))
            for o in arr:
                self.assertEqual(sorted(o), ["out", "pos", "time"])
                self.assertTrue(o["out"].endswith("\n"))
        self.assertEqual(len(json.loads(get(d, base + "2")[2])), 3000)
        self.assertEqual(json.loads(get(d, base + "3")[2])[0]["out"], "tested\n")
        # Unknown builds, stages, steps, repos: JSON 404s.
        for path in (
            "/api/repos/local/recipe/builds/%d/logs/1/1" % (number + 1),
            "/api/repos/local/other/builds/%d/logs/1/1" % number,
            base.replace("/logs/1/", "/logs/2/") + "1",
            base + "0",
            base + "4",
            base + "x",
            "/api/stream/local/recipe/%d/1/4" % number,
            "/api/stream/local/recipe/%d/1/1" % (number + 7),
            "/api/runs/nosuchrun",
            "/runs/nosuchrun/artifacts/shot.png",
        ):
            status, _, body = get(d, path)
            self.assertEqual(status, 404, path)
            if path.startswith("/api/"):
                self.assertEqual(json.loads(body)["error"]["code"], 404)

        # Meta + results, the secret masked, no server path; cached alike.
        status, r, body = get(d, "/api/runs/" + run_id)
        self.assertEqual(status, 200)
        self.assertNotIn(self.secret.encode(), body)
        j = json.loads(body)
        self.assertEqual(j["run"]["id"], run_id)
        self.assertEqual(j["run"]["state"], "finished")
        self.assertNotIn("dir", j["run"])
        self.assertIn("level", j["run"])
        self.assertTrue(j["results"]["error"].startswith("boom "), j["results"])
        self.assertEqual(j["results"]["level"], "L1")
        self.assertEqual(get(d, "/api/runs/" + run_id)[2], body)

        # Artifacts: only those results.json lists, text masked.
        status, r, body = get(d, "/runs/%s/artifacts/shot.png" % run_id)
        self.assertEqual((status, r.getheader("Content-Type")), (200, "image/png"))
        self.assertEqual(body, b"\x89PNG\r\n\x1a\nfake")
        self.assertEqual(r.getheader("X-Content-Type-Options"), "nosniff")
        status, r, body = get(d, "/runs/%s/artifacts/notes.txt" % run_id)
        self.assertEqual(status, 200)
        self.assertTrue(r.getheader("Content-Type").startswith("text/plain"))
        self.assertTrue(body.startswith(b"notes "))
        self.assertNotIn(self.secret.encode(), body)
        status, r, body = get(d, "/runs/%s/artifacts/data.yml" % run_id)
        self.assertEqual(status, 200)
        self.assertTrue(body.startswith(b"password: "), body)
        self.assertNotIn(self.secret.encode(), body)
        for name in ("unlisted.txt", "../meta.json", "..%2Fmeta.json", "nope.png",
                     "link.png", "pipe.txt"):
            self.assertEqual(get(d, "/runs/%s/artifacts/%s" % (run_id, name))[0], 404, name)

        # Drone's SSE of a finished step: every line as id + data, then eof.
        lines = step_lines(run["dir"], 1)
        c = Sse(d.http_address(), "/api/stream/local/recipe/%d/1/2" % number).run_to_end()
        self.assertIn("200", c.head.split("\r\n")[0])
        self.assertIn("content-type: text/event-stream", c.head.lower())
        data = [e for e in c.events if "event" not in e]
        self.assertEqual([e["data"] for e in data], lines)
        self.assertEqual([e["id"] for e in data], [b"2:%d" % i for i in range(len(lines))])
        self.assertEqual(c.events[-1], {"event": b"error", "data": b"eof"})
        # Resumed after line 99: from line 100.
        c = Sse(d.http_address(), "/api/stream/local/recipe/%d/1/2" % number,
                {"Last-Event-ID": "2:99"}).run_to_end()
        self.assertEqual([e["data"] for e in c.events if "event" not in e], lines[100:])

        # An id of another step says nothing of this one: from line 0.
        c = Sse(d.http_address(), "/api/stream/local/recipe/%d/1/2" % number,
                {"Last-Event-ID": "1:2"}).run_to_end()
        self.assertEqual([e["data"] for e in c.events if "event" not in e], lines)
        self.assertEqual(get(d, "/api/stream/local/recipe/%d/1/2" % number,
                             {"Last-Event-ID": "nonsense"})[0], 400)

        # The page's SSE: steps, lines as HTML (escaped, colours as spans,
        # no newline), the end with the level.
        c = Sse(d.http_address(), "/runs/%s/events" % run_id).run_to_end()
        steps = [json.loads(e["data"]) for e in c.events if e.get("event") == b"step"]
        self.assertEqual([s["n"] for s in steps], list(range(len(steps))))
        self.assertGreaterEqual(len(steps), 3)
        self.assertEqual(steps[1]["name"], "build")
        got = [json.loads(e["data"]) for e in c.events if "event" not in e]
        nsteps = len(steps)
        self.assertEqual([(g["step"], g["pos"]) for g in got],
                         [(k, i) for k in range(nsteps) for i in range(len(step_lines(run["dir"], k)))])
        self.assertEqual([g["time"] for g in got],
                         [json.loads(l)["time"] for k in range(nsteps) for l in step_lines(run["dir"], k)])
        init = [g for g in got if g["step"] == 0]
        self.assertEqual([g["pos"] for g in init], [0, 1, 2])
        self.assertEqual(init[0]["html"], "starting")
        self.assertIn("<span", init[1]["html"])
        self.assertNotIn("\x1b", init[1]["html"])
        self.assertEqual(init[2]["html"], "&lt;script&gt;alert(1)&lt;/script&gt;")
        ids = [e["id"] for e in c.events if "event" not in e]
        self.assertEqual(ids[:4], [b"0:0", b"0:1", b"0:2", b"1:0"])
        end = json.loads(c.events[-1]["data"])
        self.assertEqual(c.events[-1]["event"], b"end")
        self.assertEqual(end["state"], "finished")
        self.assertEqual(end["reason"], run["reason"])
        self.assertEqual(end["exit_code"], run["exit_code"])
        self.assertIn("level", end)
        # ?after= resumes the page's stream after line 2999 of step 1.
        c = Sse(d.http_address(), "/runs/%s/events?after=1:2998" % run_id).run_to_end()
        got = [json.loads(e["data"]) for e in c.events if "event" not in e]
        self.assertEqual([(g["step"], g["pos"]) for g in got][:2], [(1, 2999), (2, 0)])
        self.assertEqual(get(d, "/runs/%s/events?after=bad" % run_id)[0], 400)
        self.assertEqual(get(d, "/runs/nosuch/events")[0], 404)

        st = d.status()["counters"]
        self.assertEqual(st.get("tail_clients", 0), 0)

    def test_runs_filters_and_paging(self):
        d = self.serve(5, 0.0)
        ids = [self.submit(d) for _ in range(5)]
        for i in ids:
            self.wait_finished(d, i)
        status, r, body = get(d, "/api/runs?per_page=2")
        self.assertEqual(status, 200)
        self.assertEqual(r.getheader("X-Total-Count"), "5")
        page1 = json.loads(body)
        self.assertEqual([x["id"] for x in page1], ids[::-1][:2])
        for x in page1:
            self.assertIn("level", x)
        link = r.getheader("Link")
        self.assertIn('page=2&per_page=2>; rel="next"', link)
        self.assertIn('page=3&per_page=2>; rel="last"', link)
        self.assertNotIn('rel="prev"', link)
        status, r, body = get(d, "/api/runs?per_page=2&page=3&state=finished")
        self.assertEqual([x["id"] for x in json.loads(body)], [ids[0]])
        link = r.getheader("Link")
        self.assertIn('state=finished&page=2&per_page=2>; rel="prev"', link)
        self.assertNotIn('rel="next"', link)
        self.assertEqual(json.loads(get(d, "/api/runs?page=9")[2]), [])
        self.assertEqual(len(json.loads(get(d, "/api/runs")[2])), 5)
        self.assertEqual(len(json.loads(get(d, "/api/runs?recipe=recipe&repo=local/recipe")[2])), 5)
        for q in ("recipe=other", "repo=o/n", "state=queued", "pr=7"):
            status, r, body = get(d, "/api/runs?" + q)
            self.assertEqual((status, json.loads(body), r.getheader("X-Total-Count")), (200, [], "0"), q)
        for q in ("state=bogus", "per_page=201", "per_page=0", "page=0", "pr=x", "page=-1"):
            self.assert_error(d, "/api/runs?" + q, 400)

    def test_disconnect_and_resume_no_gap_no_duplicate(self):
        hold = os.path.join(self.tmp, "hold")
        open(hold, "w").close()
        d = self.serve(20000 * SCALE, 0.01, hold)
        run_id = self.submit(d)
        number = self.show(d, run_id)["number"]
        addr = d.http_address()

        def partial(path, headers, want):
            """Read until `want` lines came, then drop the connection."""
            c = Sse(addr, path, headers)
            sel = selectors.DefaultSelector()
            sel.register(c.sock, selectors.EVENT_READ)
            deadline = time.monotonic() + WAIT
            while c.lines < want and not c.eof:
                self.assertLess(time.monotonic(), deadline)
                sel.select(0.5)
                c.read_some()
            sel.close()
            c.sock.close()
            return c

        # Step 1 (init) is complete once "build" started: its stream ends
        # while the run is still held, as Drone's step stream does.
        wait_for(lambda: len(self.show(d, run_id)["steps"]) >= 2, what="the build step")
        c = Sse(addr, "/api/stream/local/recipe/%d/1/1" % number).run_to_end()
        self.assertEqual(c.events[-1], {"event": b"error", "data": b"eof"})
        self.assertEqual(c.lines, 3)
        self.assertEqual(self.show(d, run_id)["state"], "running")
        drone = "/api/stream/local/recipe/%d/1/2" % number
        page = "/runs/%s/events" % run_id
        dparts, pparts = [], []
        last_d = last_p = None
        for want in (500, 3000, 1):
            h = {"Last-Event-ID": last_d.decode()} if last_d else {}
            c = partial(drone, h, want)
            dparts.append(c)
            last_d = c.last
            h = {"Last-Event-ID": last_p.decode()} if last_p else {}
            c = partial(page, h, want)
            pparts.append(c)
            last_p = c.last
        os.unlink(hold)
        dparts.append(Sse(addr, drone, {"Last-Event-ID": last_d.decode()}).run_to_end())
        pparts.append(Sse(addr, page, {"Last-Event-ID": last_p.decode()}).run_to_end())
        run = self.wait_finished(d, run_id)

        # Drone: the parts together are the step file, line for line.
        got = [e["data"] for c in dparts for e in c.events if "event" not in e]
        self.assertEqual(got, step_lines(run["dir"], 1))
        self.assertEqual(dparts[-1].events[-1], {"event": b"error", "data": b"eof"})
        # The page: every (step, pos) of every step once, in order.
        got = [(j["step"], j["pos"]) for c in pparts for e in c.events if "event" not in e
               for j in [json.loads(e["data"])]]
        nsteps = len(self.show(d, run_id)["steps"])
        want = [(k, i) for k in range(nsteps) for i in range(len(step_lines(run["dir"], k)))]
        self.assertEqual(got, want)
        self.assertEqual(pparts[-1].events[-1]["event"], b"end")
        # The final array agrees.
        body = get(d, "/api/repos/local/recipe/builds/%d/logs/1/2" % number)[2]
        self.assertEqual(len(json.loads(body)), len(step_lines(run["dir"], 1)))

    def test_streams_end_with_an_error_when_the_daemon_stops(self):
        hold = os.path.join(self.tmp, "hold")
        open(hold, "w").close()
        d = self.serve(2000, 0.0, hold)
        run_id = self.submit(d)
        number = self.show(d, run_id)["number"]
        addr = d.http_address()
        cs = [Sse(addr, "/runs/%s/events" % run_id), Sse(addr, "/api/stream/local/recipe/%d/1/2" % number)]
        for c in cs:
            wait_for(lambda: (c.read_some(), c.lines >= 2000)[1], what="the lines")
        self.assertEqual(d.stop(), 0)
        for c in cs:
            c.run_to_end()
            self.assertEqual(c.events[-1]["event"], b"error")
            self.assertEqual(json.loads(c.events[-1]["data"]), {"message": "the daemon stops"})
        self.assertNotIn("ERROR: AddressSanitizer", d.logtext())
        self.assertNotIn("LeakSanitizer", d.logtext())

    def test_200_clients_a_quarter_never_reading(self):
        # 10k lines/s, as the benchmark's fan-out.
        n = 50000 * SCALE
        d = self.serve(n, 0.1)
        # The run alone, for comparison.
        t0 = time.monotonic()
        self.wait_finished(d, self.submit(d), timeout=WAIT * 4)
        alone = time.monotonic() - t0

        hold = None
        run_id = self.submit(d)
        number = self.show(d, run_id)["number"]
        addr = d.http_address()
        path = "/api/stream/local/recipe/%d/1/2" % number
        t0 = time.monotonic()
        readers = [Sse(addr, path, keep=False) for _ in range(150)]
        idle = []
        for _ in range(50):
            # A small receive buffer (set before connecting, so the window
            # is small from the start): the daemon's queue fills soon.
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect((addr.rsplit(":", 1)[0], int(addr.rsplit(":", 1)[1])))
            s.sendall(("GET %s HTTP/1.1\r\nHost: t\r\n\r\n" % path).encode())
            idle.append(s)
        sel = selectors.DefaultSelector()
        for c in readers:
            sel.register(c.sock, selectors.EVENT_READ, c)
        deadline = time.monotonic() + WAIT * 6
        finished_at = None
        peak = 0
        checked = 0.0
        while not all(c.eof for c in readers):
            now = time.monotonic()
            self.assertLess(now, deadline, "SSE readers did not finish")
            if now - checked > 0.25:
                checked = now
                peak = max(peak, rss_kib(d.proc.pid))
                if finished_at is None and self.show(d, run_id)["state"] == "finished":
                    finished_at = now
            for key, _ in sel.select(timeout=0.05):
                c = key.data
                c.read_some()
                if c.eof:
                    sel.unregister(c.sock)
                    c.sock.close()
        if finished_at is None:
            self.wait_finished(d, run_id)
            finished_at = time.monotonic()
        run = self.show(d, run_id)
        lines = step_lines(run["dir"], 1)
        self.assertEqual(len(lines), n)
        want = hashlib.sha256(b"".join(l + b"\n" for l in lines)).hexdigest()
        for i, c in enumerate(readers):
            self.assertEqual((c.lines, c.hash.hexdigest()), (n, want), "reader %d" % i)
            self.assertEqual(c.events[-1], {"event": b"error", "data": b"eof"}, "reader %d" % i)
        peak = max(peak, hwm_kib(d.proc.pid))
        print("\n200 SSE clients (50 never reading), %d lines: run %.2f s (alone %.2f s), "
              "readers done %.2f s, daemon peak RSS %d KiB"
              % (n, finished_at - t0, alone, time.monotonic() - t0, peak), file=sys.stderr)
        counters = d.status()["counters"]
        print("counters: %s" % {k: v for k, v in counters.items() if "sse" in k or "http" in k},
              file=sys.stderr)
        # The clients that never read: once they read, each has a prefix of
        # the step with no gap, then either the whole step and eof, or an
        # error event (given up for not keeping up), and resumes from there.
        time.sleep(max(0.0, t0 + 25 - time.monotonic()))
        gave_up = 0
        for s in idle[:10]:
            c = Sse.__new__(Sse)
            c.sock, c.buf, c.head, c.events, c.keep = s, b"", None, [], False
            c.hash, c.lines, c.last, c.eof = hashlib.sha256(), 0, None, False
            s.setblocking(False)
            c.run_to_end()
            last = c.events[-1]
            if last.get("data") == b"eof":
                self.assertEqual(c.hash.hexdigest(), want)
                continue
            gave_up += 1
            self.assertEqual(last["event"], b"error")
            self.assertIn(b"keep up", last["data"])
            h = hashlib.sha256(b"".join(l + b"\n" for l in lines[:c.lines])).hexdigest()
            self.assertEqual(c.hash.hexdigest(), h)
            self.assertEqual(c.last, b"2:%d" % (c.lines - 1))
            r = Sse(addr, path, {"Last-Event-ID": c.last.decode()}, keep=False).run_to_end()
            self.assertEqual(c.lines + r.lines, n)
        print("idle clients given up: %d of 10 looked at" % gave_up, file=sys.stderr)
        for s in idle[10:]:
            s.close()
        if hold is None and not SANITIZED:
            self.assertLess(peak, 64 * 1024 + 256, "daemon peak RSS %d KiB" % peak)


def rss_kib(pid):
    return _status_kib(pid, "VmRSS:")


def hwm_kib(pid):
    return _status_kib(pid, "VmHWM:")


def _status_kib(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1])
    return 0
