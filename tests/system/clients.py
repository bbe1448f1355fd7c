"""Viewers of the system acceptance scenario (issue 18, /work/notes/i18.md
"clients.py"): `ccci tail` and SSE clients that follow runs across daemon
restarts, checking their own stream, plus one-off GETs and control socket
requests. Everything received goes to ROOT/records/transcripts/; each
follower appends one line to records/clients.jsonl when it ends, and
`VIEWER-TS <run> <ns>` lines it sees to records/viewer.jsonl.

    c = Clients(world)   # world.ccci, .socket, .http_base, .rng, .records
    c.follow(run_id, kind=None)  # "tail-fast" "tail-slow" "sse-fast" "sse-stall" "drone-sse"
                                 # (None: the next kind, round-robin)
    c.follow(run_id, "sse-stall", stall_on="flood ")  # stall at that line
    c.browse(run_id)
    c.sock({"op": "ps"})
    c.stop_all(timeout)

Standard library only."""

import html
import json
import os
import re
import socket
import subprocess
import threading
import time
import urllib.parse

KINDS = ("tail-fast", "tail-slow", "sse-fast", "sse-stall", "drone-sse")
RETRY_S = 60.0  # how long a dropped client keeps trying to come back
SLOW_BPS = 64 * 1024
STALL_S = 25.0  # past the server's 20 s give-up, below its 30 s write stall
STALL_AT = (2, 12)  # an sse-stall client stalls after this many lines (random in it)
DRAIN_S = 5.0  # after the stall: read what is queued at most this long, then resume
VIEWER_RE = re.compile(r"VIEWER-TS (\S+) (\d+)")
# The final browse fetches a step's Drone log array only up to this size.
ARRAY_BROWSE_MAX = 1 << 20


def line_event(ev):
    """(step, pos, data object) of an SSE line event (`id: <step>:<pos>`)."""
    k, _, p = ev["id"].partition(":")
    try:
        d = json.loads(ev.get("data", "{}"))
    except ValueError:
        d = {}
    return int(k), int(p), d


class Seq:
    """(step, pos) bookkeeping of one stream. Lines of a step come with pos
    0, 1, 2, ...; a step number never goes back; a step a line skips to
    must have been announced (a step message) unless it is new with pos 0.
    `add` answers "new", "old" (already seen: a replay) or flags."""

    def __init__(self):
        self.last = {}  # step -> last pos seen
        self.top = -1  # highest step with a line
        self.announced = set()
        self.gap = False
        self.dup = False
        self.why = None

    def announce(self, step):
        self.announced.add(step)

    def seen(self, step, pos):
        return step < self.top or (step in self.last and pos <= self.last[step])

    def _flag(self, kind, why):
        setattr(self, kind, True)
        if self.why is None:
            self.why = why

    def add(self, step, pos):
        """Record a line that must be new; flags a gap or a duplicate."""
        if self.seen(step, pos):
            self._flag("dup", "line %d:%d again (last %s)" % (step, pos, self.last.get(step)))
            return False
        if step == self.top:
            if pos != self.last[step] + 1:
                self._flag("gap", "step %d: pos %d after %d" % (step, pos, self.last[step]))
        else:
            if pos != 0:
                self._flag("gap", "step %d starts at pos %d" % (step, pos))
            for s in range(self.top + 1, step):
                if s not in self.announced and s not in self.last:
                    self._flag("gap", "step %d skipped (no step message)" % s)
                    break
            self.top = step
        self.last[step] = pos
        return True


class Follower(threading.Thread):
    """One client of one run; subclasses implement connect_once()."""

    viewer_kind = "sse"

    def __init__(self, owner, n, run_id, kind):
        super().__init__(daemon=True, name="%s-%d" % (kind, n))
        self.owner = owner
        self.n = n
        self.run_id = run_id
        self.kind = kind
        self.seq = Seq()
        self.resumes = 0
        self.lines = 0
        self.ended = False
        self.error = None
        self.stop = threading.Event()
        self.record = None
        self.transcript = None
        self.last_err = None
        self.connections = 0  # connections that got an answer (resumes = all but the first)
        self.resumes_with_id = 0  # of those, connections opened with Last-Event-ID
        self.given_up = 0  # `event: error` "does not keep up" from the server
        self.self_resumes = 0  # resumes after a stall the server did not give up
        self.stalled = False
        self.stall_t = None
        self.t_start = None
        self.t_end = None

    # -- common

    def out(self, data):
        with open(self.transcript, "ab") as f:
            f.write(data)

    def line(self, step, pos, text, conn_seq=None):
        """A line received: dedupe, check, viewer sample. conn_seq: the
        per-connection sequence of a client that replays from the start."""
        if conn_seq is not None:
            conn_seq.add(step, pos)
            for flag in ("gap", "dup"):
                if getattr(conn_seq, flag) and not getattr(self.seq, flag):
                    self.seq._flag(flag, "in one connection: %s" % conn_seq.why)
            if self.seq.seen(step, pos):
                return  # a replay after a restart from the beginning
        if not self.seq.add(step, pos):
            return
        self.lines += 1
        if "VIEWER-TS" in text:
            m = VIEWER_RE.search(text)
            if m:
                self.owner.viewer(m.group(1), int(m.group(2)) / 1e9, time.time(), self.viewer_kind)

    def run(self):
        t_fail = None
        self.t_start = time.time()
        try:
            while not self.stop.is_set() and not self.ended:
                progressed = self.connect_once()
                if self.ended or self.stop.is_set():
                    break
                if progressed:
                    t_fail = None
                if t_fail is None:
                    t_fail = time.monotonic()
                elif time.monotonic() - t_fail > RETRY_S:
                    self.error = "gave up after %ds without a connection (last: %s)" % (
                        RETRY_S, self.last_err)
                    break
                self.stop.wait(0.3)
            if not self.ended and self.error is None and self.stop.is_set():
                self.error = "stopped before the end"
        except Exception as e:  # a bug of the client: say so
            self.error = "client error: %s: %s" % (type(e).__name__, e)
        finally:
            self.finish()

    def finish(self):
        self.t_end = time.time()
        self.resumes = max(0, self.connections - 1)
        self.record = {"kind": self.kind, "run": self.run_id, "viewer": self.viewer_kind,
                       "resumes": self.resumes, "resumes_with_id": self.resumes_with_id,
                       "lines": self.lines, "gap": self.seq.gap, "dup": self.seq.dup,
                       "ended": self.ended, "error": self.error,
                       "t_start": self.t_start, "t_end": self.t_end}
        if self.kind == "sse-stall":
            self.record.update({"stalled": self.stalled, "stall_t": self.stall_t,
                                "stall_s": STALL_S, "given_up": self.given_up,
                                "self_resumes": self.self_resumes})
        if self.seq.why:
            self.record["why"] = self.seq.why
        self.owner.client_done(self.record)

    def run_finished(self):
        """Is the run finished per the daemon (`show`)? None: cannot tell."""
        r = self.owner.sock({"v": 1, "op": "show", "id": self.run_id}, transcript=False)
        if not r or not r.get("ok"):
            return None
        return r["run"].get("state") == "finished"

    def kill(self):
        self.stop.set()


class TailClient(Follower):
    """`ccci --json tail RUN`; it has no option to resume a whole log after a
    point (--step/--from limit it to one step), so a dropped client starts
    again from the beginning and drops what it has seen by (step, pos)."""

    viewer_kind = "tail"

    def __init__(self, owner, n, run_id, kind):
        super().__init__(owner, n, run_id, kind)
        self.transcript = os.path.join(owner.tdir, "tail-%d.out" % n)
        self.proc = None
        self.slow = kind == "tail-slow"

    def connect_once(self):
        argv = [self.owner.ccci, "-s", self.owner.socket, "--json", "tail", self.run_id]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, bufsize=0)
        conn = Seq()
        got = False
        buf = b""
        fd = self.proc.stdout.fileno()
        t0 = time.monotonic()
        nbytes = 0
        try:
            while not self.stop.is_set():
                data = os.read(fd, 4096 if self.slow else 65536)
                if not data:
                    break
                self.out(data)
                if self.slow:
                    nbytes += len(data)
                    ahead = nbytes / SLOW_BPS - (time.monotonic() - t0)
                    if ahead > 0:
                        time.sleep(ahead)
                buf += data
                while b"\n" in buf:
                    raw, buf = buf.split(b"\n", 1)
                    if not raw.strip():
                        continue
                    try:
                        m = json.loads(raw)
                    except ValueError:
                        continue
                    t = m.get("type")
                    if t == "step":
                        self.seq.announce(m.get("n"))
                        conn.announce(m.get("n"))
                    elif t == "line":
                        ln = m.get("line") or {}
                        got = True
                        self.line(int(m.get("step")), int(ln.get("pos")), ln.get("out") or "", conn)
                    elif t == "end":
                        if m.get("state") == "finished":
                            self.ended = True
                    elif m.get("ok") is True:
                        got = True
                        self.connections += 1
        finally:
            self.proc.stdout.close()
            try:
                err = self.proc.stderr.read().decode("utf-8", "replace").strip()
            except (OSError, ValueError):
                err = ""
            self.proc.stderr.close()
            rc = self.proc.wait()
            if not self.ended:
                self.last_err = "ccci tail exit %d: %s" % (rc, err[-200:])
        return got

    def kill(self):
        super().kill()
        p = self.proc
        if p is not None and p.poll() is None:
            try:
                p.kill()
            except OSError:
                pass


class HttpStream:
    """One GET on a raw socket: status, headers, then the body as it comes
    (streams have no Content-Length and end at close)."""

    def __init__(self, base, path, headers=None, rcvbuf=None, timeout=45.0):
        u = urllib.parse.urlsplit(base)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            self._open(u, path, headers, rcvbuf, timeout)
        except BaseException:
            self.sock.close()
            raise

    def _open(self, u, path, headers, rcvbuf, timeout):
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(10.0)
        self.sock.connect((u.hostname, u.port or 80))
        self.sock.settimeout(timeout)
        h = {"Host": u.netloc, "Accept": "text/event-stream", "Connection": "close"}
        h.update(headers or {})
        req = "GET %s HTTP/1.1\r\n%s\r\n" % (path, "".join("%s: %s\r\n" % kv for kv in h.items()))
        self.sock.sendall(req.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            d = self.sock.recv(4096)
            if not d:
                raise ConnectionError("closed before the head")
            head += d
        head, self.rest = head.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            self.headers[k.strip().lower()] = v.strip()

    def chunks(self, size=65536):
        if self.rest:
            r, self.rest = self.rest, b""
            yield r
        while True:
            d = self.sock.recv(size)
            if not d:
                return
            yield d

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def sse_events(chunks):
    """SSE events (dict: id, event, data) from byte chunks; the raw chunk
    is yielded first as ("raw", bytes)."""
    buf = b""
    ev = {}
    for c in chunks:
        yield ("raw", c)
        buf += c
        while b"\n" in buf:
            raw, buf = buf.split(b"\n", 1)
            line = raw.rstrip(b"\r").decode("utf-8", "replace")
            if line == "":
                if ev:
                    yield ("event", ev)
                ev = {}
                continue
            if line.startswith(":"):
                continue
            k, _, v = line.partition(":")
            if v.startswith(" "):
                v = v[1:]
            if k == "data":
                ev["data"] = ev["data"] + "\n" + v if "data" in ev else v
            elif k in ("id", "event"):
                ev[k] = v


class SseClient(Follower):
    """GET /runs/<id>/events; resumes with Last-Event-ID. sse-stall stops
    reading for STALL_S (25 s) once, after STALL_AT lines (or at the first
    line holding `stall_on`), with a small receive buffer. When the run
    wrote enough meanwhile to keep the server's queue full for 20 s (a
    flood), the server gives up on it (`event: error`, counted in
    given_up) and it resumes with Last-Event-ID; otherwise it reads what
    was queued for at most DRAIN_S, then drops the connection itself and
    resumes with Last-Event-ID all the same (counted in self_resumes), as
    a browser does after a network stall. Either way the resume must lose
    and repeat nothing."""

    def __init__(self, owner, n, run_id, kind, stall_on=None):
        super().__init__(owner, n, run_id, kind)
        self.transcript = os.path.join(owner.tdir, "sse-%d.txt" % n)
        self.last_id = None
        self.stall_at = owner.rng.randint(*STALL_AT) if kind == "sse-stall" else None
        self.stall_on = stall_on if kind == "sse-stall" else None
        self.conn = None

    def connect_once(self):
        hdr = {"Last-Event-ID": self.last_id} if self.last_id else {}
        try:
            s = HttpStream(self.owner.http_base, "/runs/%s/events" % self.run_id, hdr,
                           rcvbuf=8192 if self.stall_at is not None else None)
        except (OSError, ValueError, IndexError):
            return False
        self.conn = s
        got = False
        drain_until = None  # set after the stall: resume by then
        try:
            if s.status != 200:
                body = b"".join(s.chunks())
                self.out(body)
                self.last_err = "GET events: %d" % s.status
                return False
            got = True
            self.connections += 1
            if hdr:
                self.resumes_with_id += 1
            n = 0
            for kind, x in sse_events(s.chunks(4096 if self.stall_at else 65536)):
                if self.stop.is_set():
                    break
                if drain_until is not None and time.monotonic() > drain_until:
                    self.self_resumes += 1
                    break
                if kind == "raw":
                    self.out(x)
                    continue
                ev = x
                e = ev.get("event")
                if e == "step":
                    try:
                        self.seq.announce(json.loads(ev.get("data", "{}")).get("n"))
                    except ValueError:
                        pass
                elif e == "end":
                    self.ended = True
                    break
                elif e == "error":
                    if "does not keep up" in ev.get("data", ""):
                        self.given_up += 1
                    drain_until = None
                    break  # given up, or the daemon stops: resume
                elif "id" in ev:
                    k, p, d = line_event(ev)
                    self.last_id = ev["id"]
                    text = html.unescape(d.get("html") or "")
                    self.line(k, p, text)
                    n += 1
                    if self.stall_at is not None and not self.stalled and (
                            (self.stall_on is None and n >= self.stall_at)
                            or (self.stall_on is not None and self.stall_on in text)):
                        self.stalled = True
                        self.stall_t = time.time()
                        self.stop.wait(STALL_S)
                        drain_until = time.monotonic() + DRAIN_S
                        s.sock.settimeout(1.0)
        except socket.timeout:
            if drain_until is not None:
                self.self_resumes += 1  # nothing more queued: the server kept it
        except (OSError, ValueError):
            pass
        finally:
            s.close()
        return got

    def kill(self):
        super().kill()
        if self.conn is not None:
            self.conn.close()


class DroneClient(Follower):
    """Drone's per-step stream /api/stream/{repo}/{number}/1/{step}, step
    = ours + 1: each step to its `event: error` + `data: eof`, then the
    next; a step that is 404 on a finished run ends it. Within a step it
    resumes with Last-Event-ID."""

    def __init__(self, owner, n, run_id, kind):
        super().__init__(owner, n, run_id, kind)
        self.transcript = os.path.join(owner.tdir, "sse-%d.txt" % n)
        self.step = 1
        self.last_id = None
        self.repo = self.number = None
        self.conn = None

    def connect_once(self):
        if self.repo is None:
            st, body = self.owner.get("/api/runs/%s" % self.run_id)
            if st != 200:
                return False
            try:
                r = json.loads(body)["run"]
                self.repo, self.number = r["repo"], r["number"]
            except (ValueError, KeyError, TypeError):
                return False
        got = False
        while not self.stop.is_set() and not self.ended:
            hdr = {"Last-Event-ID": self.last_id} if self.last_id else {}
            path = "/api/stream/%s/%d/1/%d" % (self.repo, self.number, self.step)
            try:
                s = HttpStream(self.owner.http_base, path, hdr)
            except (OSError, ValueError, IndexError):
                return got
            self.conn = s
            eof = False
            try:
                if s.status == 404:
                    self.out(b"".join(s.chunks()))
                    if self.run_finished() is True:
                        self.ended = True
                        return True
                    return got
                if s.status != 200:
                    self.out(b"".join(s.chunks()))
                    return got
                if not got:
                    self.connections += 1
                    if hdr:
                        self.resumes_with_id += 1
                got = True
                self.seq.announce(self.step - 1)
                for kind, x in sse_events(s.chunks()):
                    if self.stop.is_set():
                        break
                    if kind == "raw":
                        self.out(x)
                        continue
                    if x.get("event") == "error":
                        eof = x.get("data") == "eof"
                        break
                    if "id" in x:
                        k, p, d = line_event(x)
                        self.last_id = x["id"]
                        self.line(k - 1, p, d.get("out") or "")
            except (OSError, ValueError):
                pass
            finally:
                s.close()
            if not eof:
                return got  # dropped: resume this step
            self.step += 1
            self.last_id = None
        return got

    def kill(self):
        super().kill()
        if self.conn is not None:
            self.conn.close()


class Clients:
    def __init__(self, world):
        self.world = world
        self.ccci = world.ccci
        self.socket = world.socket
        self.http_base = world.http_base.rstrip("/")
        self.rng = world.rng
        self.records = world.records
        self.tdir = os.path.join(self.records, "transcripts")
        os.makedirs(self.tdir, exist_ok=True)
        self.lock = threading.Lock()
        self.n = 0
        self.followers = []
        self.done = []
        self.rr = 0  # the next kind of follow(kind=None)

    def _next(self):
        with self.lock:
            self.n += 1
            return self.n

    def _append(self, name, obj):
        line = json.dumps(obj) + "\n"
        with self.lock:
            with open(os.path.join(self.records, name), "a") as f:
                f.write(line)

    def viewer(self, run, t_write, t_seen, client):
        self._append("viewer.jsonl", {"run": run, "t_write": t_write, "t_seen": t_seen,
                                      "client": client})

    def client_done(self, record):
        self._append("clients.jsonl", record)
        with self.lock:
            self.done.append(record)

    def follow(self, run_id, kind=None, stall_on=None):
        """Start one follower of run_id. kind None: the next of KINDS,
        round-robin, so every kind occurs once in 5 follows. stall_on (an
        sse-stall only): stall at the first line holding this text."""
        if kind is None:
            with self.lock:
                kind = KINDS[self.rr % len(KINDS)]
                self.rr += 1
        if kind not in KINDS:
            raise ValueError("unknown client kind %r" % kind)
        if stall_on is not None and kind != "sse-stall":
            raise ValueError("stall_on is for sse-stall clients")
        n = self._next()
        if kind.startswith("tail"):
            c = TailClient(self, n, run_id, kind)
        elif kind == "drone-sse":
            c = DroneClient(self, n, run_id, kind)
        else:
            c = SseClient(self, n, run_id, kind, stall_on=stall_on)
        with self.lock:
            self.followers.append(c)
        c.start()
        return c

    def get(self, path, timeout=10.0):
        """(status, body bytes) of one GET, (None, b"") when it failed."""
        try:
            s = HttpStream(self.http_base, path, {"Accept": "*/*"}, timeout=timeout)
        except (OSError, ValueError, IndexError):
            return None, b""
        try:
            body = b"".join(s.chunks())
        except OSError:
            body = b""
        finally:
            s.close()
        return s.status, body

    def browse(self, run_id, final=False):
        """GETs about a run, bodies appended to http-<n>.txt: its page, its
        API object, the run list, its badge, the Drone log array of its
        last three steps and /metrics. @p final (the run has finished, the
        daemon is about to stop): its page, API object, every step's log
        page and Drone log array (but arrays of steps over
        ARRAY_BROWSE_MAX), /metrics, into http-final-<run>.txt. Returns
        [(path, status)]."""
        if final:
            path = os.path.join(self.tdir, "http-final-%s.txt" % run_id)
        else:
            path = os.path.join(self.tdir, "http-%d.txt" % self._next())
        done = []

        def one(p):
            st, body = self.get(p, timeout=60 if final else 10)
            with open(path, "ab") as f:
                f.write(("\n## GET %s %s\n" % (p, st)).encode() + body)
            done.append((p, st))
            return st, body

        one("/runs/%s" % run_id)
        st, body = one("/api/runs/%s" % run_id)
        run = None
        if st == 200:
            try:
                run = json.loads(body).get("run")
            except ValueError:
                run = None
        if not final:
            one("/api/runs")
        if run:
            if not final:
                one("/badge/%s.svg" % urllib.parse.quote(run.get("recipe") or "x"))
            steps = run.get("steps") or []
            for s in steps if final else steps[-3:]:
                k = s.get("n") if isinstance(s, dict) else None
                if not isinstance(k, int):
                    continue
                if final:
                    one("/runs/%s/log/%d" % (run_id, k))
                    # A big step (the flood's 64 MiB) as one array would
                    # swell the daemon's RSS past its bound: its log page
                    # and the step file itself (no-secret scans the state
                    # dir) cover it.
                    if (s.get("bytes") or 0) > ARRAY_BROWSE_MAX:
                        continue
                if run.get("repo") and run.get("number"):
                    one("/api/repos/%s/builds/%d/logs/1/%d" % (run["repo"], run["number"], k + 1))
        one("/metrics")
        return done

    def sock(self, op, transcript=True, timeout=10.0):
        """One control socket request (v 1 added); the reply (dict) or None."""
        req = dict(op)
        req.setdefault("v", 1)
        data = b""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(timeout)
                s.connect(self.socket)
                s.sendall((json.dumps(req) + "\n").encode())
                while not data.endswith(b"\n"):
                    d = s.recv(65536)
                    if not d:
                        break
                    data += d
        except OSError:
            pass
        if transcript:
            n = self._next()
            with open(os.path.join(self.tdir, "sock-%d.txt" % n), "ab") as f:
                f.write(data)
        try:
            return json.loads(data) if data.strip() else None
        except ValueError:
            return None

    def stop_all(self, timeout):
        """Wait up to timeout s for every follower to end by itself, then
        stop the rest. Returns the clients' records."""
        deadline = time.monotonic() + timeout
        with self.lock:
            fs = list(self.followers)
        for f in fs:
            f.join(max(0.0, deadline - time.monotonic()))
        for f in fs:
            if f.is_alive():
                f.kill()
        for f in fs:
            f.join(10)
        with self.lock:
            return list(self.done)
