"""The world of the system scenario (tests/system/soak.py): the real `ccci
serve` with its real `ccci harness`, the fake forge in this process (50
recipe repos with real git history served over smart HTTP), the fake abra
and docker with three servers, one gateway, the secrets the daemon masks,
and the records the checks read (docs/testing.md, "System acceptance").

Everything lives under one root directory. The daemon's state dir is a
size-capped tmpfs when this process may mount one (root on Linux), so the
"disk nearly full" phase fills a real filesystem; otherwise it is a plain
directory and that phase raises `min_free_bytes` above the free space."""

import hashlib
import hmac
import http.client
import json
import os
import random
import secrets as pysecrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.dirname(os.path.dirname(HERE))
SUPPORT = os.path.join(SOURCE_DIR, "tests", "support")
INTEGRATION = os.path.join(SOURCE_DIR, "tests", "integration")
EXAMPLES = os.path.join(SOURCE_DIR, "examples")
for _p in (INTEGRATION, SUPPORT):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from fakeforge import FakeForge  # noqa: E402
from itest import request  # noqa: E402
from test_runs import procs_with  # noqa: E402  (the integration tests' proc scan)

ORG = "sys"
BOT = "ccci-bot"
MEMBERS = ("m1", "m2", "m3", "m4", "m5")
OUTSIDERS = ("o1", "o2", "o3")
SERVERS = (("a", 2, []), ("b", 2, ["heavy"]), ("c", 1, []))
# Repos r40..r49 need a `heavy` server (only b has the label).
HEAVY_FROM = 40
STATE_FS_BYTES = 2048 << 20
MIN_FREE = 128 << 20
LOG_MAX = 64 << 20
RSS_BASE_KIB = 64 * 1024
RSS_PER_RUN_KIB = 256

# harness.command and teardown_command: `sh WRAP ROLE CCCI harness...`
# records the start and the end of each harness process as JSON lines, and
# stays until its child is gone whatever signal its group gets.
WRAP = r"""#!/bin/sh
trap : TERM INT HUP
role=$1
shift
rec() {
  printf '{"event":"%s","run":"%s","role":"%s","server":"%s","pid":%d,"t":%s%s}\n' \
    "$1" "$CCCI_RUN_ID" "$role" "$CCCI_SERVER" $$ "$(date +%s.%N)" "$2" \
    >> "$SYS_RECORDS/harness.jsonl"
}
rec start ""
"$@" &
pid=$!
while :; do
  wait $pid
  rc=$?
  kill -0 $pid 2>/dev/null || break
done
rec end ",\"rc\":$rc"
exit $rc
"""

# The custom test every recipe repo carries: prints the values of the leak
# file (the daemon must mask every one) and VIEWER-TS lines for the
# write-to-viewer latency. The flood and stubborn repos add their own.
TEST_SYS = r'''"""System scenario probe: secrets the daemon must mask, and timestamps."""
import os
import time
import unittest


class SystemProbe(unittest.TestCase):
    def test_probe(self):
        run = os.environ.get("CCCI_RUN_ID", "?")
        with open(os.environ["SYS_LEAK"]) as f:
            values = [v for v in f.read().split("\n") if v]
        for v in values:
            print("leak check: %s ends" % v, flush=True)
        for _ in range(int(os.environ.get("SYS_VIEWER_LINES", "20"))):
            print("VIEWER-TS %s %d" % (run, time.time_ns()), flush=True)
            time.sleep(0.05)
'''

TEST_FLOOD = r'''"""Floods 1 GiB of output (SYS_FLOOD_BYTES), secrets sprinkled in."""
import os
import sys
import unittest


class Flood(unittest.TestCase):
    def test_flood(self):
        total = int(os.environ.get("SYS_FLOOD_BYTES", str(1 << 30)))
        with open(os.environ["SYS_LEAK"]) as f:
            values = [v for v in f.read().split("\n") if v]
        line = b"flood " + b"x" * 120 + b"\n"
        chunk = line * (65536 // len(line))
        out = sys.stdout.buffer
        n = 0
        i = 0
        while n < total:
            if i % 512 == 0 and values:
                out.write(("flood secret %s\n" % values[i % len(values)]).encode())
            out.write(chunk)
            n += len(chunk)
            i += 1
        out.flush()
'''

TEST_STUBBORN = r'''"""A step that ignores SIGTERM: only the SIGKILL after the grace ends it."""
import signal
import time
import unittest


class Stubborn(unittest.TestCase):
    def test_stubborn(self):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("stubborn: ignoring SIGTERM", flush=True)
        while True:
            time.sleep(1)
'''

META_TAIL = "TEST_RUNNER: [python3, -m, unittest, -v]\nCUSTOM_TESTS: [tests/test_*.py]\n"


def _git(cwd, *args, env=None, input=None):
    e = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL="/dev/null",
             GIT_AUTHOR_NAME="sys", GIT_AUTHOR_EMAIL="sys@example.invalid",
             GIT_COMMITTER_NAME="sys", GIT_COMMITTER_EMAIL="sys@example.invalid")
    e.update(env or {})
    r = subprocess.run(["git", "-C", cwd] + list(args), env=e, input=input,
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("git %s: %s" % (" ".join(args), r.stderr.strip()))
    return r.stdout.strip()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class World:
    def __init__(self, root, ccci, seed, minutes, broken=(), repos=50,
                 flood_bytes=1 << 30):
        self.root = os.path.abspath(root)
        self.ccci = os.path.abspath(ccci)
        self.seed = seed
        self.minutes = minutes
        self.broken = set(broken)
        self.rng = random.Random(seed)
        self.n_repos = repos
        self.flood_bytes = flood_bytes
        self.org = ORG
        self.bot = BOT
        self.servers = [s[0] for s in SERVERS]
        self.records = os.path.join(self.root, "records")
        self.state_dir = os.path.join(self.root, "state")
        self.socket = os.path.join(self.root, "ccci.sock")
        self.config_path = os.path.join(self.root, "ccci.yml")
        self.daemon_log = os.path.join(self.root, "daemon.log")
        self.swarm_dir = os.path.join(self.root, "swarm")
        self.abra_dir = os.path.join(self.root, "abra")
        self.git_root = os.path.join(self.root, "git")
        self.secrets_dir = os.path.join(self.root, "secrets")
        self.leak_file = os.path.join(self.records, "leak.txt")
        self.marker = "SYS_RUN_MARK_%d_%s" % (os.getpid(), pysecrets.token_hex(4))
        self.mounted = False
        self.min_free = MIN_FREE
        self.proc = None
        self.pids = []
        self.lock = threading.Lock()
        # Held while the daemon is killed and restarted, and while a SIGHUP
        # is sent: a signal never goes to a daemon that is going away.
        self.daemon_lock = threading.RLock()
        # Held while a secret value is added or removed and the daemon is
        # seen to mask exactly the values in force (rotation and retirement
        # never overlap).
        self.secrets_lock = threading.Lock()
        self.clients = None  # the scenario's clients.Clients, stopped by close()
        self.forge = None
        self.gateway = None
        self.repos = []
        self.prs = {}  # repo -> {pr number: head sha}
        self.meta_extra = {}  # repo -> lines its PR commits add to recipe_meta.yml
        self.pr_seq = 0
        self.secret_values = []  # the values in force, oldest first
        self.secret_files = 0  # value files ever made: each a new name
        self.retiring = 0  # how many of the oldest are left out of the leak file
        self.log_max_bytes = LOG_MAX  # the daemon's, in ccci.yml
        self.stop_sampler = threading.Event()
        self.sampler = None

    # ------------------------------------------------------------ records

    def event(self, kind, **kw):
        d = {"t": time.time(), "kind": kind}
        d.update(kw)
        with self.lock:
            with open(os.path.join(self.records, "events.jsonl"), "a") as f:
                f.write(json.dumps(d) + "\n")
        return d

    def note_secret(self, value):
        """Record a secret value: a line of records/secrets.txt, and the
        whole value (newlines kept) as a JSON string, a line of
        records/secrets.jsonl (the checks build multi-line forms from it)."""
        with self.lock:
            with open(os.path.join(self.records, "secrets.txt"), "a") as f:
                f.write(value + "\n")
            with open(os.path.join(self.records, "secrets.jsonl"), "a") as f:
                f.write(json.dumps(value) + "\n")

    def rss_bound_kib(self, active):
        return RSS_BASE_KIB + RSS_PER_RUN_KIB * max(0, active)

    # ------------------------------------------------------------ set-up

    def setup(self):
        # A failed earlier run of the same seed keeps its root, tmpfs included.
        if os.path.ismount(self.state_dir):
            subprocess.run(["umount", "-l", self.state_dir], capture_output=True)
        if os.path.exists(self.root):
            shutil.rmtree(self.root)
        for d in (self.records, os.path.join(self.records, "transcripts"), self.swarm_dir,
                  os.path.join(self.abra_dir, "recipes"), self.git_root, self.secrets_dir,
                  self.state_dir):
            os.makedirs(d)
        for name in self.servers:
            os.makedirs(os.path.join(self.abra_dir, "servers", name))
        self.mount_state()
        with open(os.path.join(self.root, "wrap.sh"), "w") as f:
            f.write(WRAP)
        self.make_repos()
        self.start_forge()
        self.start_gateway()
        self.token_file = self.secret_file("token", self.token)
        self.hook_secret = "hook-" + pysecrets.token_hex(16)
        self.hook_secret_file = self.secret_file("hook-secret", self.hook_secret)
        self.rotate_secret()
        self.publish_leak([v for _, v in self.secret_values])
        self.write_config()

    def secret_file(self, name, value):
        path = os.path.join(self.root, name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(value + "\n")
        self.note_secret(value)
        return path

    def mount_state(self):
        if os.geteuid() != 0 or os.environ.get("CCCI_SYS_NO_MOUNT"):
            return
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%d,mode=0700" % STATE_FS_BYTES,
                            "ccci-sys", self.state_dir], capture_output=True, text=True)
        self.mounted = r.returncode == 0

    def unmount_state(self):
        if self.mounted:
            subprocess.run(["umount", "-l", self.state_dir], capture_output=True)
            self.mounted = False

    def template(self, name, src, extra_tests):
        """A recipe dir from example @p src with the probe test (and
        @p extra_tests: {file: text}) and unittest as the runner."""
        d = os.path.join(self.root, "templates", name)
        shutil.copytree(src, d)
        tests = os.path.join(d, "tests")
        os.makedirs(tests, exist_ok=True)
        meta = os.path.join(tests, "recipe_meta.yml")
        text = ""
        if os.path.exists(meta):
            with open(meta) as f:
                text = "".join(l for l in f if not l.startswith(("TEST_RUNNER", "CUSTOM_TESTS",
                                                                 "  - tests/")))
        with open(meta, "w") as f:
            f.write(text + META_TAIL)
        for fname, body in extra_tests.items():
            with open(os.path.join(tests, fname), "w") as f:
                f.write(body)
        return d

    def make_repos(self):
        pages = os.path.join(EXAMPLES, "recipes", "pages")
        hello = os.path.join(EXAMPLES, "recipes", "hello")
        mk = os.path.join(EXAMPLES, "make-recipe-repo")
        kinds = {
            "pages": self.template("pages", pages, {"test_sys.py": TEST_SYS}),
            "hello": self.template("hello", hello, {"test_sys.py": TEST_SYS}),
            "flood": self.template("flood", hello, {"test_flood.py": TEST_FLOOD}),
            "stubborn": self.template("stubborn", hello, {"test_stubborn.py": TEST_STUBBORN}),
        }
        with open(os.path.join(kinds["stubborn"], "tests", "recipe_meta.yml"), "a") as f:
            f.write("TIMEOUT: 45s\n")
        with open(os.path.join(kinds["flood"], "tests", "recipe_meta.yml"), "a") as f:
            f.write("SERVERS: [c]\n")
        bases = {}
        for kind, d in kinds.items():
            work = os.path.join(self.root, "templates", kind + ".git-work")
            subprocess.run([mk, d, work, "--tags"], check=True, capture_output=True)
            bases[kind] = work
        names = ["r%02d" % i for i in range(self.n_repos)] + ["flood", "stubborn"]
        for name in names:
            heavy = False
            if name.startswith("r"):
                i = int(name[1:])
                kind = "pages" if i % 3 != 2 else "hello"
                heavy = i >= HEAVY_FROM
            else:
                kind = name
            dest = os.path.join(self.git_root, ORG, name + ".git")
            subprocess.run(["git", "clone", "-q", "--bare", bases[kind], dest], check=True,
                           capture_output=True)
            repo = "%s/%s" % (ORG, name)
            self.repos.append(repo)
            self.prs[repo] = {}
            # The PR commits of these ask for a heavy server.
            self.meta_extra[repo] = "SERVER_LABELS: [heavy]\n" if heavy else ""

    def bare(self, repo):
        return os.path.join(self.git_root, repo + ".git")

    def pr_commit(self, repo, parent):
        """A new commit on @p parent (a sha or ref) with a file naming the
        change; for heavy repos the recipe_meta.yml asks for a heavy server.
        Returns (sha, {path: text} of the files the raw API serves)."""
        bare = self.bare(repo)
        self.pr_seq += 1
        idx = os.path.join(self.root, "git-index-%d" % self.pr_seq)
        env = {"GIT_INDEX_FILE": idx}
        _git(bare, "read-tree", parent, env=env)
        files = {"CHANGE.txt": "change %d of %s\n" % (self.pr_seq, repo)}
        meta = _git(bare, "show", "%s:tests/recipe_meta.yml" % parent)
        meta += "\n" + self.meta_extra[repo]
        files["tests/recipe_meta.yml"] = meta
        for path, text in files.items():
            blob = _git(bare, "hash-object", "-w", "--stdin", input=text)
            _git(bare, "update-index", "--add", "--cacheinfo", "100644,%s,%s" % (blob, path),
                 env=env)
        tree = _git(bare, "write-tree", env=env)
        os.unlink(idx)
        sha = _git(bare, "commit-tree", tree, "-p", parent, "-m", "change %d" % self.pr_seq)
        return sha, files

    def open_pr(self, repo):
        sha, files = self.pr_commit(repo, "main")
        n = self.forge.open_pr(repo, head_sha=sha, user=self.rng.choice(MEMBERS + OUTSIDERS),
                               files=files)
        _git(self.bare(repo), "update-ref", "refs/pull/%d/head" % n, sha)
        self.prs[repo][n] = sha
        self.event("open_pr", repo=repo, pr=n, sha=sha)
        return n

    def push(self, repo, n):
        sha, files = self.pr_commit(repo, self.prs[repo][n])
        _git(self.bare(repo), "update-ref", "refs/pull/%d/head" % n, sha)
        self.forge.push(repo, n, head_sha=sha, files=files)
        self.prs[repo][n] = sha
        self.event("push", repo=repo, pr=n, sha=sha)
        return sha

    def start_forge(self):
        f = FakeForge(git_root=self.git_root)
        f.start()
        self.forge = f
        self.token = f.add_user(BOT)
        for u in MEMBERS + OUTSIDERS:
            f.add_user(u)
        f.add_org(ORG, members=(BOT,) + MEMBERS)
        for repo in self.repos:
            f.add_repo(repo)
        for repo in self.repos:
            self.open_pr(repo)

    def start_gateway(self):
        port_file = os.path.join(self.root, "gw.port")
        out = open(os.path.join(self.root, "gateway.out"), "wb")
        self.gateway = subprocess.Popen(
            [sys.executable, os.path.join(SUPPORT, "gateway.py"), "--swarm", self.swarm_dir,
             "--port-file", port_file], stdout=out, stderr=out)
        deadline = time.monotonic() + 30
        while not os.path.exists(port_file):
            if time.monotonic() > deadline:
                raise RuntimeError("the gateway did not start")
            time.sleep(0.05)
        with open(port_file) as f:
            self.gateway_url = "http://127.0.0.1:%s" % f.read().strip()

    # ------------------------------------------------------------ config

    def write_config(self, min_free=None):
        self.port = getattr(self, "port", None) or free_port()
        self.http_base = "http://127.0.0.1:%d" % self.port
        env = {
            "FAKE_SWARM_DIR": self.swarm_dir,
            "FAKE_ABRA_DELAY": os.environ.get("CCCI_SYS_ABRA_DELAY", "0.02-0.25"),
            "FAKE_DOCKER_DELAY": "0-0.05",
            "SYS_LEAK": self.leak_file,
            "SYS_RECORDS": self.records,
            "SYS_FLOOD_BYTES": str(self.flood_bytes),
            self.marker: "1",
        }
        lines = [
            "state_dir: %s" % self.state_dir,
            "socket: %s" % self.socket,
            "secrets_dir: %s" % self.secrets_dir,
            "min_free_bytes: %d" % (self.min_free if min_free is None else min_free),
            "deadline: 10m",
            "kill_grace: 3s",
            "teardown_grace: 3m",
            "log_max_bytes: %d" % self.log_max_bytes,
            "janitor:",
            "  interval: 5s",
            "harness:",
            "  command: [sh, %s, run, %s, harness]" % (os.path.join(self.root, "wrap.sh"),
                                                      self.ccci),
            "  teardown_command: [sh, %s, teardown, %s, harness, --teardown]" % (
                os.path.join(self.root, "wrap.sh"), self.ccci),
            "  domain_suffix: sys.test",
            "  abra_dir: %s" % self.abra_dir,
            "  gateway: %s" % self.gateway_url,
            "  env: %s" % json.dumps(env),
            "servers:",
        ]
        for name, cap, labels in SERVERS:
            lines += ["  - name: %s" % name, "    capacity: %d" % cap,
                      "    domain_suffix: %s.sys.test" % name,
                      "    gateway: %s" % self.gateway_url,
                      "    labels: %s" % json.dumps(labels)]
        lines += [
            "pool:",
            "  unhealthy_after: 2",
            "  probe_min: 3s",
            "  probe_max: 15s",
            "  probe_timeout: 20s",
            "forge:",
            "  url: '%s'" % self.forge.url,
            "  token_file: %s" % self.token_file,
            "  webhook_secret_file: %s" % self.hook_secret_file,
            "  repos: [%s]" % ", ".join(self.repos),
            "  poll_interval: 1s",
            "  auth_cache: 30s",
            "http:",
            "  listen: 127.0.0.1:%d" % self.port,
            "  public_url: '%s'" % self.http_base,
        ]
        tmp = self.config_path + ".tmp"
        with open(tmp, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.rename(tmp, self.config_path)

    # ------------------------------------------------------------ secrets

    def rotate_secret(self):
        """Add a new value (a new file in secrets_dir). The leak file the
        recipes print is switched to it only once the daemon masks it."""
        value = "sys-secret-" + pysecrets.token_urlsafe(18)
        self.note_secret(value)
        # A new name each time: after a retirement len(secret_values) names
        # a file still in force, and writing it replaced a value the daemon
        # had to keep masking (the 60-minute soak's leak of secret #8).
        name = "s%d" % self.secret_files
        self.secret_files += 1
        path = os.path.join(self.secrets_dir, name)
        with open(path + ".tmp", "w") as f:
            f.write(value + "\n")
        os.rename(path + ".tmp", path)
        self.secret_values.append((name, value))
        return value

    def publish_leak(self, values):
        tmp = self.leak_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("".join(v + "\n" for v in values))
        os.rename(tmp, self.leak_file)

    def leak_values(self):
        """The values the recipes may print: those in force, less the
        oldest ones waiting to be retired."""
        return [v for _, v in self.secret_values[self.retiring:]]

    def retire_secret(self):
        """Remove the oldest value file (once no run that may print it is
        alive)."""
        name, _ = self.secret_values.pop(0)
        self.retiring = max(0, self.retiring - 1)
        os.unlink(os.path.join(self.secrets_dir, name))

    def wait_masked(self, what, timeout=60):
        """Wait until the daemon masks exactly the values in force: its
        status's `secrets_values` equals their number. Called under
        secrets_lock after one change (one value more or one less), so
        the old count cannot match."""
        want = len(self.secret_values)
        self.wait(lambda: self.status()["counters"].get("secrets_values") == want, timeout,
                  "%s (secrets_values %d)" % (what, want))

    # ------------------------------------------------------------ the daemon

    def start_daemon(self):
        with self.daemon_lock:
            self._start_daemon()
        if self.sampler is None:
            self.sampler = threading.Thread(target=self.sample_rss, daemon=True)
            self.sampler.start()

    def _start_daemon(self):
        env = dict(os.environ)
        env["PATH"] = SUPPORT + os.pathsep + env["PATH"]
        env.pop("CCCI_CONFIG", None)
        # The marker goes to every process the daemon starts (supervisors,
        # harnesses, abra), whatever their own environment: the no-process
        # check and close() find them by it.
        env[self.marker] = "1"
        log = open(self.daemon_log, "ab")
        self.proc = subprocess.Popen([self.ccci, "serve", "-c", self.config_path],
                                     stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env)
        log.close()
        self.pids.append(self.proc.pid)
        self.event("start", pid=self.proc.pid)
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("ccci serve exited with %s" % self.proc.returncode)
            try:
                r = request(self.socket, {"v": 1, "op": "status"}, timeout=5)
                if r and r.get("ok"):
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("ccci serve did not answer")
            time.sleep(0.05)

    def wait_enrolled(self):
        """The day starts once every repo is enrolled: the first poll of a
        repo takes what it finds as the baseline (docs/forge.md), so a
        comment made before it is, by the documented rule, no trigger."""
        def enrolled():
            repos = (self.status().get("forge") or {}).get("repos") or []
            return len(repos) == len(self.repos) and all(r.get("enrolled") for r in repos)
        self.wait(enrolled, 120, "every repo to be enrolled")
        time.sleep(1.1)  # past the enrolment second
        self.event("enrolled", repos=len(self.repos))

    def kill9(self, restart=False):
        """kill -9 the daemon (and start it again at once with @p restart:
        both under daemon_lock, so a SIGHUP waits for the new daemon)."""
        with self.daemon_lock:
            pid = self.proc.pid
            self.proc.kill()
            self.proc.wait()
            self.event("kill9", pid=pid)
            if restart:
                self._start_daemon()

    def sighup(self, why):
        """SIGHUP the daemon after a change of its config or secret files
        and wait until a daemon has read them: the same pid with one more
        reload, or a new pid (a kill -9 restart after the signal; it read
        every file at its start, which came after the change)."""
        with self.daemon_lock:
            st = self.wait(self.status, 30, "the daemon's status (before %s)" % why)
            pid = st["pid"]
            before = st["counters"]["config_reloads"]
            self.proc.send_signal(signal.SIGHUP)
            self.event("sighup", why=why, pid=pid, reloads=before)

        def reloaded():
            st = self.status()
            return st["pid"] != pid or st["counters"]["config_reloads"] > before
        self.wait(reloaded, 30, "the reload (%s)" % why)

    def stop_daemon(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.stop_sampler.set()

    def status(self):
        """The daemon's status; raises OSError (also for a refusal or no
        answer) so that wait() retries it across a restart."""
        r = request(self.socket, {"v": 1, "op": "status"}, timeout=10)
        if not r or not r.get("ok"):
            raise OSError("no status from the daemon: %r" % (r,))
        return r

    def ps(self):
        r = request(self.socket, {"v": 1, "op": "ps"}, timeout=10)
        return r["runs"] if r and r.get("ok") else []

    def try_status(self):
        try:
            return self.status()
        except (OSError, ValueError, TypeError):
            return None

    def wait(self, pred, timeout, what):
        deadline = time.monotonic() + timeout
        while True:
            try:
                v = pred()
            except (OSError, ValueError, TypeError, KeyError):
                v = None
            if v:
                return v
            if time.monotonic() > deadline:
                raise RuntimeError("timed out waiting for " + what)
            time.sleep(0.1)

    def sample_rss(self):
        path = os.path.join(self.records, "rss.jsonl")
        active = 0
        last_status = 0.0
        while not self.stop_sampler.wait(0.5):
            proc = self.proc
            if proc is None or proc.poll() is not None:
                continue
            try:
                with open("/proc/%d/status" % proc.pid) as f:
                    rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
            except (OSError, StopIteration):
                continue
            now = time.monotonic()
            if now - last_status > 2:
                st = self.try_status()
                if st:
                    by = st["counters"].get("runs_by_state", {})
                    active = by.get("running", 0) + by.get("cancelling", 0)
                    last_status = now
            with open(path, "a") as f:
                f.write(json.dumps({"t": time.time(), "pid": proc.pid, "rss_kib": rss,
                                    "active": active}) + "\n")

    # ------------------------------------------------------------ the forge side

    def comment(self, repo, n, user, body, hooks):
        c = self.forge.comment(repo, n, user, body)
        member = user in MEMBERS and body.split()[0] == "!testme"
        self.event("comment", repo=repo, pr=n, comment_id=c["id"], user=user, member=member,
                   body=body, created_at=c["created_at"], hooks=hooks, sha=self.prs[repo][n])
        return c

    def post_hook(self, repo, n, comment):
        owner, name = repo.split("/")
        body = json.dumps({
            "action": "created",
            "issue": {"id": n, "number": n, "state": "open", "pull_request": {"merged": False},
                      "html_url": "x", "url": "x"},
            "comment": comment,
            "repository": {"id": 1, "full_name": repo, "name": name, "owner": {"login": owner}},
            "sender": comment["user"],
            "is_pull": True,
        }).encode()
        sig = hmac.new(self.hook_secret.encode(), body, hashlib.sha256).hexdigest()
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            c.request("POST", "/hook", body=body, headers={
                "Content-Type": "application/json", "X-Gitea-Event": "issue_comment",
                "X-Gitea-Signature": sig})
            r = c.getresponse()
            r.read()
            return r.status
        except OSError:
            return None
        finally:
            c.close()

    def leftover_pids(self):
        """Live processes carrying world.marker in their environment (the
        daemon and everything it starts), this one left out."""
        return [p for p in procs_with(self.marker) if p != os.getpid()]

    def kill_leftovers(self, timeout=20):
        """SIGKILL every leftover process until none is left (a supervisor
        killed first may leave its harness for the next round). Returns
        the pids killed."""
        killed = []
        deadline = time.monotonic() + timeout
        while True:
            pids = self.leftover_pids()
            if not pids or time.monotonic() > deadline:
                break
            for p in pids:
                try:
                    os.kill(p, signal.SIGKILL)
                    killed.append(p)
                except OSError:
                    pass
            time.sleep(0.2)
        return killed

    def close(self):
        """Stop everything this world started, also after a scenario that
        could not run: the clients, the daemon, every process carrying the
        marker (supervisors and harnesses outlive the daemon by design),
        the gateway and the forge."""
        self.stop_sampler.set()
        if self.clients is not None:
            try:
                self.clients.stop_all(5)
            except Exception:  # noqa: BLE001 - closing goes on
                traceback.print_exc()
        with self.daemon_lock:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        if self.gateway is not None:
            if self.gateway.poll() is None:
                self.gateway.terminate()
            try:
                self.gateway.wait(30)
            except subprocess.TimeoutExpired:
                self.gateway.kill()
                self.gateway.wait()
        killed = self.kill_leftovers()
        if killed:
            print("closing: killed %d leftover processes: %s" % (
                len(killed), " ".join(str(p) for p in sorted(set(killed))[:30])), flush=True)
        if self.forge is not None:
            self.forge.stop()
