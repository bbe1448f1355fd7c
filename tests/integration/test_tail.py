"""Live tail on the real daemon: many clients on one busy run get exactly the
step files (no gap, no duplicate, whenever they attach, however slowly they
read), the end message and the exit codes of `ccci tail`."""

import hashlib
import json
import os
import random
import selectors
import signal
import socket
import sys
import time

from itest import SCALE, WAIT, CcciTestCase, request, run_cli, wait_for

PY = sys.executable
SANITIZED = os.environ.get("CCCI_SANITIZED", "0") not in ("", "0", "OFF")

# A harness writing TOTAL bytes of numbered lines in bursts, on stdout and
# stderr, in three steps; optional pause file to hold it before the end.
WRITER = r"""
import os, sys, time
total, burst, nap = int(sys.argv[1]), 256 * 1024, float(sys.argv[2])
hold = sys.argv[3] if len(sys.argv) > 3 else ""
out, err = sys.stdout.buffer, sys.stderr.buffer
out.write(b"starting\n~~~ step build\n")
out.flush()
done, i = 0, 0
while done < total:
    chunk = []
    size = 0
    while size < burst:
        line = b"line %08d %s\n" % (i, b"x" * (i % 97))
        chunk.append(line)
        size += len(line)
        i += 1
        if i == 40000:
            chunk.append(b"~~~ step test\n")
    data = b"".join(chunk)
    (err if i % 7 == 0 else out).write(data)
    (err if i % 7 == 0 else out).flush()
    done += len(data)
    time.sleep(nap)
while hold and os.path.exists(hold):
    time.sleep(0.02)
out.write(b"done\n")
"""


def expected_stream(run_dir):
    """What a tail from the start sends after its ok line: every step's
    message and its lines wrapped, then the end message."""
    with open(os.path.join(run_dir, "logs", "index.json")) as f:
        steps = json.load(f)
    with open(os.path.join(run_dir, "meta.json")) as f:
        meta = json.load(f)
    h = hashlib.sha256()
    size = 0
    for st in steps:
        head = b'{"type":"step","n":%d,"name":"%s"}\n' % (st["n"], st["name"].encode())
        h.update(head)
        size += len(head)
        prefix = b'{"type":"line","step":%d,"line":' % st["n"]
        with open(os.path.join(run_dir, "logs", "%d-%s.jsonl" % (st["n"], st["name"])), "rb") as f:
            for line in f:
                assert line.endswith(b"\n")
                piece = prefix + line[:-1] + b"}\n"
                h.update(piece)
                size += len(piece)
    end = json.dumps(
        {"type": "end", "state": meta["state"], "reason": meta["reason"], "exit_code": meta["exit_code"]},
        separators=(",", ":"),
    ).encode() + b"\n"
    h.update(end)
    return h.hexdigest(), size + len(end)


class Client:
    """A raw tail client: hashes everything after its ok line."""

    def __init__(self, path, run_id, slow=False, **req):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        r = {"v": 1, "op": "tail", "id": run_id}
        r.update(req)
        self.sock.sendall((json.dumps(r) + "\n").encode())
        self.sock.setblocking(False)
        self.slow = slow
        self.head = b""
        self.ok = None
        self.hash = hashlib.sha256()
        self.size = 0
        self.tail = b""
        self.eof = False
        self.last = 0.0

    def feed(self, data):
        if self.ok is None:
            self.head += data
            nl = self.head.find(b"\n")
            if nl < 0:
                return
            self.ok = json.loads(self.head[:nl])
            data = self.head[nl + 1 :]
        self.hash.update(data)
        self.size += len(data)
        self.tail = (self.tail + data)[-256:]

    def read(self, now, slow_phase):
        if self.slow and slow_phase:
            if now - self.last < 0.03:
                return
            self.last = now
            size = 8192
        else:
            size = 1 << 20
        try:
            data = self.sock.recv(size)
        except BlockingIOError:
            return
        if not data:
            self.eof = True
            return
        self.feed(data)


def peak_rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


class TailTest(CcciTestCase):
    def setUp(self):
        super().setUp()
        self.recipe = os.path.join(self.tmp, "recipe")
        os.makedirs(self.recipe)
        self.writer = os.path.join(self.tmp, "writer.py")
        with open(self.writer, "w") as f:
            f.write(WRITER)

    def serve(self, command, extra=""):
        d = self.daemon(
            config="min_free_bytes: 0\ncapacity: 4\nkill_grace: 2s\nharness:\n  command: %s\n%s"
            % (json.dumps(command), extra)
        )
        return d.start()

    def submit(self, d):
        r = request(d.socket, {"v": 1, "op": "submit", "dir": self.recipe})
        self.assertTrue(r["ok"], r)
        return r["id"]

    def wait_state(self, d, run_id, state):
        def check():
            r = request(d.socket, {"v": 1, "op": "show", "id": run_id})
            return r["run"] if r["run"]["state"] == state else None

        return wait_for(check, what="run %s %s" % (run_id, state))

    def tail_cli(self, d, *args, timeout=WAIT):
        return run_cli("-s", d.socket, "tail", *args, timeout=timeout)

    def test_hundred_clients_get_exactly_the_files(self):
        total = 50 * 1024 * 1024 * SCALE
        d = self.serve([PY, self.writer, str(total), "0.01"])
        run_id = self.submit(d)
        sel = selectors.DefaultSelector()
        rnd = random.Random(7)
        # 50 attach at once, 49 at random moments while the run goes on (or
        # after it ended), one reads slowly until the run is over.
        attach = [0.0] * 50 + [rnd.uniform(0.0, 3.0) for _ in range(49)]
        clients = [Client(d.socket, run_id, slow=True)]
        sel.register(clients[0].sock, selectors.EVENT_READ, clients[0])
        t0 = time.monotonic()
        deadline = t0 + WAIT * 4
        pending = sorted(attach)
        finished = False
        checked = 0.0
        while True:
            now = time.monotonic()
            self.assertLess(now, deadline, "tail clients did not finish")
            while pending and now - t0 >= pending[0]:
                pending.pop(0)
                c = Client(d.socket, run_id)
                clients.append(c)
                sel.register(c.sock, selectors.EVENT_READ, c)
            if not finished and now - checked > 0.25:
                checked = now
                r = request(d.socket, {"v": 1, "op": "show", "id": run_id})
                finished = r["run"]["state"] == "finished"
                if finished:
                    rss = peak_rss_kib(d.proc.pid)
            for key, _ in sel.select(timeout=0.05):
                c = key.data
                c.read(now, not finished)
                if c.eof:
                    sel.unregister(c.sock)
                    c.sock.close()
            if not pending and all(c.eof for c in clients):
                break
        run = request(d.socket, {"v": 1, "op": "show", "id": run_id})["run"]
        self.assertEqual(run["reason"], "success")
        want_hash, want_size = expected_stream(run["dir"])
        self.assertGreater(want_size, total)
        for i, c in enumerate(clients):
            self.assertTrue(c.ok and c.ok["ok"], c.ok)
            self.assertEqual((c.size, c.hash.hexdigest()), (want_size, want_hash), "client %d: %r" % (i, c.tail))
        st = d.status()["counters"]
        self.assertEqual(st["tail_clients"], 0)
        self.assertEqual(st["tail_started"], 100)
        # The slow client fell behind and was served from the files.
        self.assertGreater(st["tail_bytes_from_disk"], 0)
        if not SANITIZED:
            self.assertLess(rss, 64 * 1024 + 256, "daemon peak RSS %d KiB" % rss)

    def test_attach_at_any_moment_with_step_and_pos(self):
        d = self.serve([PY, self.writer, str(4 * 1024 * 1024), "0.02"])
        run_id = self.submit(d)
        results = []
        for delay in (0.0, 0.1, 0.3, 0.6):
            time.sleep(delay)
            c = Client(d.socket, run_id, step="test", pos=5)
            c.sock.setblocking(True)
            c.sock.settimeout(WAIT)
            while True:
                data = c.sock.recv(1 << 20)
                if not data:
                    break
                c.feed(data)
            c.sock.close()
            results.append(c)
        run = request(d.socket, {"v": 1, "op": "show", "id": run_id})["run"]
        steps = {s["name"]: s for s in run["steps"]}
        n = steps["test"]["n"]
        with open(os.path.join(run["dir"], "logs", "%d-test.jsonl" % n), "rb") as f:
            lines = f.read().splitlines()
        want = b'{"type":"step","n":%d,"name":"test"}\n' % n
        want += b"".join(b'{"type":"line","step":%d,"line":%s}\n' % (n, l) for l in lines[5:])
        want += b'{"type":"end","state":"finished","reason":"success","exit_code":0}\n'
        for c in results:
            self.assertEqual(c.hash.hexdigest(), hashlib.sha256(want).hexdigest(), c.tail)

    def test_cli_text_and_exit_codes(self):
        script = os.path.join(self.tmp, "h.sh")
        with open(script, "w") as f:
            f.write(
                "#!/bin/sh\necho hello\necho '~~~ step deploy'\necho \"mode $1\"\n"
                'case "$1" in fail) exit 1;; sleep) sleep 60;; esac\necho bye\n'
            )
        os.chmod(script, 0o755)
        d = self.serve(["/bin/sh", "-c", 'exec %s "$(cat "$CCCI_RECIPE_DIR/mode")"' % script])

        def run_with(mode):
            with open(os.path.join(self.recipe, "mode"), "w") as f:
                f.write(mode)
            return self.submit(d)

        ok = run_with("ok")
        r = self.tail_cli(d, ok)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(
            r.stdout, "--- step 0: init ---\nhello\n--- step 1: deploy ---\nmode ok\nbye\n[ccci] finished: success\n"
        )
        self.assertIn("finished: success", r.stderr)
        # --json prints the protocol's objects.
        r = self.tail_cli(d, ok, "--json", "--step", "deploy", "--from", "1")
        self.assertEqual(r.returncode, 0, r.stderr)
        objs = [json.loads(l) for l in r.stdout.splitlines()]
        self.assertTrue(objs[0]["ok"])
        self.assertEqual(objs[1], {"type": "step", "n": 1, "name": "deploy"})
        self.assertEqual([o["line"]["out"] for o in objs[2:-1]], ["bye\n", "[ccci] finished: success\n"])
        self.assertEqual(objs[-1], {"type": "end", "state": "finished", "reason": "success", "exit_code": 0})

        self.assertEqual(self.tail_cli(d, run_with("fail")).returncode, 1)
        self.assertEqual(self.tail_cli(d, "20000101-000000-000").returncode, 3)
        sleeper = run_with("sleep")
        self.wait_state(d, sleeper, "running")
        r = wait_for(
            lambda: (lambda r: r if "mode sleep" in r.stdout else None)(self.tail_cli(d, sleeper, "--no-follow")),
            what="the sleeper's first lines",
        )
        self.assertEqual(r.returncode, 4, r.stderr)
        # A follower sees the cancel through the funnel: exit 2.
        cli = subprocess_tail(d, sleeper)
        time.sleep(0.3)
        self.assertTrue(request(d.socket, {"v": 1, "op": "cancel", "id": sleeper})["ok"])
        out, err = cli.communicate(timeout=WAIT)
        self.assertEqual(cli.returncode, 2, err)
        self.assertIn("finished: cancelled", err)
        self.assertEqual(self.tail_cli(d).returncode, 64)
        self.assertEqual(self.tail_cli(d, ok, "--from", "x").returncode, 64)
        self.assertEqual(run_cli("-s", os.path.join(self.tmp, "nobody.sock"), "tail", ok).returncode, 5)
        # A daemon that stops ends the stream without an end: exit 5.
        again = run_with("sleep")
        self.wait_state(d, again, "running")
        cli = subprocess_tail(d, again)
        time.sleep(0.3)
        d.stop()
        out, err = cli.communicate(timeout=WAIT)
        self.assertEqual(cli.returncode, 5, err)

    def test_bad_requests_and_disconnects(self):
        d = self.serve([PY, self.writer, str(64 * 1024 * 1024), "0.05"])
        run_id = self.submit(d)
        for bad, code in [
            ({"v": 1, "op": "tail"}, "bad-request"),
            ({"v": 1, "op": "tail", "id": 5}, "bad-request"),
            ({"v": 1, "op": "tail", "id": run_id, "step": {}}, "bad-request"),
            ({"v": 1, "op": "tail", "id": run_id, "step": -1}, "bad-request"),
            ({"v": 1, "op": "tail", "id": run_id, "pos": -3}, "bad-request"),
            ({"v": 1, "op": "tail", "id": run_id, "pos": "1"}, "bad-request"),
            ({"v": 1, "op": "tail", "id": run_id, "follow": "yes"}, "bad-request"),
            ({"v": 1, "op": "tail", "id": "x" * 100}, "no-such-run"),
        ]:
            r = request(d.socket, bad)
            self.assertEqual(r["error"]["code"], code, bad)
        # Clients that vanish mid-stream (some before reading anything) are
        # cleaned up; the daemon goes on serving.
        for i in range(20):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(d.socket)
            s.sendall((json.dumps({"v": 1, "op": "tail", "id": run_id}) + "\n").encode())
            if i % 2:
                s.recv(65536)
            s.close()
        wait_for(lambda: d.status()["counters"]["tail_clients"] == 0, what="tail clients cleaned up")
        self.assertTrue(request(d.socket, {"v": 1, "op": "cancel", "id": run_id})["ok"])
        run = self.wait_state(d, run_id, "finished")
        self.assertEqual(run["reason"], "cancelled")
        self.assertEqual(d.status()["counters"]["tail_started"], 20)


def subprocess_tail(d, run_id):
    import subprocess

    from itest import CCCI

    return subprocess.Popen(
        [CCCI, "-s", d.socket, "tail", run_id],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
