"""Shared state of the test fakes (fake `abra`, fake `docker`, the gateway):
the swarm per server under $FAKE_SWARM_DIR, its lock, the call log, the
fault rules, and the small compose-file parser. Standard library only."""

import datetime
import fcntl
import hashlib
import json
import os
import random
import re
import shutil
import time

STATE_VERSION = 1


class Fatal(Exception):
    """An error the fake reports abra-style (`FATA <msg>`, exit 1)."""


def swarm_dir():
    d = os.environ.get("FAKE_SWARM_DIR")
    if not d:
        raise Fatal("FAKE_SWARM_DIR is not set (the fake swarm's state directory)")
    return d


def now_iso():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def stack_name(domain):
    """abra's rule: every `.` becomes `_`, cut to 45 bytes."""
    return domain.replace(".", "_")[:45]


def atomic_write(path, data, mode=0o644):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def call_delay(var):
    """Seconds a fake sleeps per call from env var `var`: unset or empty 0,
    `N` a fixed delay, `MIN-MAX` a uniform random time in [MIN, MAX]."""
    text = (os.environ.get(var) or "").strip()
    if not text:
        return 0.0
    lo, dash, hi = text.partition("-")
    try:
        lo = float(lo)
        hi = float(hi) if dash else lo
    except ValueError:
        lo = hi = -1.0
    if not (0 <= lo <= hi) or hi == float("inf"):
        raise Fatal("%s=%r: expected seconds (0.5) or a range MIN-MAX (0.02-0.3)" % (var, text))
    return lo if lo == hi else random.uniform(lo, hi)


class Locked:
    """fcntl.flock on one lock file, as a context manager."""

    def __init__(self, path):
        self.path = path
        self.fd = None

    def __enter__(self):
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = None


# ---------------------------------------------------------------- call log


def log_call(prog, argv):
    """Append one JSON line to $FAKE_SWARM_DIR/calls.log."""
    d = os.environ.get("FAKE_SWARM_DIR")
    if not d:
        return
    os.makedirs(d, exist_ok=True)
    line = json.dumps({
        "prog": prog,
        "argv": [prog] + list(argv),
        "abra_dir": os.environ.get("ABRA_DIR"),
        "cwd": os.getcwd(),
        "pid": os.getpid(),
        "time": now_iso(),
    }) + "\n"
    with Locked(os.path.join(d, ".calls.lock")):
        with open(os.path.join(d, "calls.log"), "a", encoding="utf-8") as f:
            f.write(line)


def log_secret(value):
    """Append a secret value the fake swarm creates to
    $FAKE_SWARM_DIR/secrets.log (mode 0600, its own lock): the value with
    trailing newlines removed, then `\n`."""
    d = swarm_dir()
    os.makedirs(d, exist_ok=True)
    with Locked(os.path.join(d, ".secrets.lock")):
        fd = os.open(os.path.join(d, "secrets.log"), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, (value.rstrip("\n") + "\n").encode("utf-8"))
        finally:
            os.close(fd)


def read_secrets_log(d):
    """Every value in secrets.log, oldest first, empty lines dropped (for tests)."""
    p = os.path.join(d, "secrets.log")
    if not os.path.exists(p):
        return []
    with open(p, encoding="utf-8") as f:
        return [x for x in f.read().split("\n") if x]


def read_calls(d):
    """The call log as a list of dicts (for tests)."""
    p = os.path.join(d, "calls.log")
    if not os.path.exists(p):
        return []
    with open(p, encoding="utf-8") as f:
        return [json.loads(x) for x in f if x.strip()]


# ---------------------------------------------------------------- faults

FAULT_ACTIONS = ("fail", "hang", "lose-data", "unhealthy", "unreachable", "skip")


def _rule_matches(rule, command, domain, service, server):
    m = rule.get("match")
    if not isinstance(m, str) or not m:
        return False
    if command != m and not command.startswith(m + " "):
        return False
    if "domain" in rule and rule["domain"] != domain:
        return False
    if "service" in rule and rule["service"] != service:
        return False
    if "server" in rule and rule["server"] != server:
        return False
    return True


def fault_key(index, rule):
    """The counter key of rule `index` of faults.json in faults.count.json."""
    return "%d:%s" % (index, hashlib.sha256(json.dumps(rule, sort_keys=True).encode()).hexdigest()[:16])


def fault_counts(d, index, rule):
    """{seen, fired} of one rule (for tests)."""
    try:
        with open(os.path.join(d, "faults.count.json"), encoding="utf-8") as f:
            counts = json.load(f)
    except (OSError, ValueError):
        counts = {}
    return counts.get(fault_key(index, rule), {"seen": 0, "fired": 0})


def unreachable_abra(server):
    """What abra prints (stderr) when the docker daemon of `server` cannot be
    reached: the error of the Docker client it is built on."""
    return ("FATA error during connect: Get \"http://%s/v1.44/info\": dial tcp "
            "192.0.2.1:22: connect: connection refused" % server)


def unreachable_docker(server):
    """What docker prints (stderr) for an ssh context whose host does not
    answer (Docker 24+ with an `ssh://` context)."""
    return ('error during connect: Get "http://docker.example.com/v1.44/info": '
            "command [ssh -o ConnectTimeout=30 -T -- %s docker system dial-stdio] "
            "has exited with exit status 255, make sure the URL is valid, and "
            "Docker 18.09 or later is installed on the remote host: stderr=ssh: "
            "connect to host %s port 22: Connection refused" % (server, server))


def take_fault(command, domain=None, service=None, server=None):
    """Read faults.json and count this call against every matching rule.
    Returns the first rule that fires (a dict) or None. A rule may fire
    when it matches, has let `after` matching calls through and has fired
    fewer than `times` times; with `probability` p it then fires only when
    random.random() < p (a roll that fails lets a later rule fire; `after`
    counts matching calls, `times` firings). Counters live in
    $FAKE_SWARM_DIR/faults.count.json, keyed by the rule's index and text,
    so editing a rule restarts its count."""
    d = os.environ.get("FAKE_SWARM_DIR")
    if not d:
        return None
    path = os.path.join(d, "faults.json")
    if not os.path.exists(path):
        return None
    with Locked(os.path.join(d, ".faults.lock")):
        try:
            with open(path, encoding="utf-8") as f:
                rules = json.load(f)
        except (OSError, ValueError) as e:
            raise Fatal("faults.json: %s" % e)
        if not isinstance(rules, list):
            raise Fatal("faults.json: expected a list of rules")
        cpath = os.path.join(d, "faults.count.json")
        try:
            with open(cpath, encoding="utf-8") as f:
                counts = json.load(f)
        except (OSError, ValueError):
            counts = {}
        fired = None
        for i, rule in enumerate(rules):
            if not isinstance(rule, dict):
                raise Fatal("faults.json: rule %d is not an object" % i)
            action = rule.get("action", "fail")
            if action not in FAULT_ACTIONS:
                raise Fatal("faults.json: rule %d: unknown action %r" % (i, action))
            prob = rule.get("probability", 1)
            if isinstance(prob, bool) or not isinstance(prob, (int, float)) or not 0 <= prob <= 1:
                raise Fatal("faults.json: rule %d: probability must be a number from 0 to 1" % i)
            if not _rule_matches(rule, command, domain, service, server):
                continue
            key = fault_key(i, rule)
            c = counts.setdefault(key, {"seen": 0, "fired": 0})
            seen = c["seen"]
            c["seen"] = seen + 1
            after = int(rule.get("after", 0))
            times = rule.get("times")
            if fired is None and seen >= after and (times is None or c["fired"] < int(times)) \
                    and (prob >= 1 or random.random() < prob):
                c["fired"] += 1
                fired = dict(rule, action=action)
        atomic_write(cpath, json.dumps(counts, sort_keys=True))
        return fired


def hang_forever(rule=None):
    """The `hang` fault: sleep until a signal kills the process; with
    `"ignore_term": true` SIGTERM is ignored (only SIGKILL ends it)."""
    if rule and rule.get("ignore_term"):
        import signal
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    while True:
        time.sleep(3600)


# ---------------------------------------------------------------- swarm state


class Server:
    """One server's swarm: $FAKE_SWARM_DIR/<server>/state.json, volume dirs
    under volumes/, snapshot copies under snapshots/, lock file .lock."""

    def __init__(self, name, root=None):
        if not name or "/" in name or name.startswith("."):
            raise Fatal("bad server name %r" % name)
        self.name = name
        self.dir = os.path.join(root or swarm_dir(), name)
        self.state = None

    def lock(self):
        return Locked(os.path.join(self.dir, ".lock"))

    def load(self):
        p = os.path.join(self.dir, "state.json")
        try:
            with open(p, encoding="utf-8") as f:
                self.state = json.load(f)
        except FileNotFoundError:
            self.state = {"version": STATE_VERSION, "stacks": {}, "secrets": {},
                          "volumes": {}, "snapshots": {}}
        return self.state

    def save(self):
        os.makedirs(self.dir, exist_ok=True)
        atomic_write(os.path.join(self.dir, "state.json"),
                     json.dumps(self.state, indent=1, sort_keys=True))

    def volume_dir(self, vol):
        return os.path.join(self.dir, "volumes", vol)

    def snapshot_dir(self, stack, sid):
        return os.path.join(self.dir, "snapshots", stack, sid)


def list_servers(root):
    try:
        names = sorted(os.listdir(root))
    except FileNotFoundError:
        return []
    return [n for n in names
            if not n.startswith(".") and os.path.isdir(os.path.join(root, n))]


def service_running(svc, now=None):
    """Replicas running now: 0 while starting or unhealthy."""
    now = time.time() if now is None else now
    if svc.get("unhealthy") or now < svc.get("ready_at", 0):
        return 0
    return svc.get("replicas", 1)


def find_stack_by_domain(root, domain):
    """(Server, stack name, stack dict) of a deployed domain, or None."""
    for name in list_servers(root):
        srv = Server(name, root)
        st = srv.load()
        for sname, stack in st["stacks"].items():
            if stack.get("domain") == domain:
                return srv, sname, stack
    return None


def empty_dir(path):
    """Remove everything inside path (keep path itself)."""
    if not os.path.isdir(path):
        os.makedirs(path, exist_ok=True)
        return
    for n in os.listdir(path):
        p = os.path.join(path, n)
        if os.path.isdir(p) and not os.path.islink(p):
            shutil.rmtree(p)
        else:
            os.unlink(p)


def copy_tree_into(src, dst):
    """Replace dst's contents with a copy of src's."""
    empty_dir(dst)
    for n in os.listdir(src):
        s, t = os.path.join(src, n), os.path.join(dst, n)
        if os.path.isdir(s) and not os.path.islink(s):
            shutil.copytree(s, t, symlinks=True)
        else:
            shutil.copy2(s, t, follow_symlinks=False)


# ---------------------------------------------------------------- env files


def read_env(path):
    """KEY=VALUE lines of an abra env file -> dict (comments, `export ` and
    quotes stripped). Also returns the raw lines."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    env = {}
    for line in lines:
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        if s.startswith("export "):
            s = s[7:].strip()
        k, eq, v = s.partition("=")
        if not eq:
            continue
        env[k.strip()] = _env_value(v)
    return env, lines


def _env_value(v):
    v = v.strip()
    if v[:1] in ("'", '"'):
        q = v[0]
        end = v.find(q, 1)
        return v[1:end] if end > 0 else v[1:]
    # an unquoted value ends at ` #`
    i = v.find(" #")
    return (v[:i] if i >= 0 else v).strip()


SECRET_RE = re.compile(r"^\s*(?:export\s+)?SECRET_([A-Z0-9_]+)_VERSION\s*=\s*([^\s#]+)\s*(?:#(.*))?$")


def env_secrets(lines):
    """Every `SECRET_<NAME>_VERSION=vN [# length=N] [# generate=false]` line
    -> list of {name, version, length, generate}."""
    out = []
    for line in lines:
        m = SECRET_RE.match(line)
        if not m:
            continue
        comment = m.group(3) or ""
        length = 0
        lm = re.search(r"length\s*=\s*(\d+)", comment)
        if lm:
            length = int(lm.group(1))
        generate = not re.search(r"generate\s*=\s*false", comment)
        out.append({"name": m.group(1).lower(), "version": m.group(2).strip("'\""),
                    "length": length, "generate": generate})
    return out


# ---------------------------------------------------------------- compose files
#
# A small YAML-subset reader, enough for Co-op Cloud compose files: block
# mappings and sequences by indentation, plain/single/double-quoted scalars,
# `#` comments, flow lists `[a, b]` and flow maps `{a: b}` of scalars on one
# line, `|`/`>` block scalars (kept as text). Not supported (documented in
# README.md): anchors/aliases/merge keys, multi-line flow collections,
# multi-document files, tags.


class ComposeError(Exception):
    pass


def _strip_comment(s):
    out, q = [], None
    for i, ch in enumerate(s):
        if q:
            if ch == q:
                q = None
        elif ch in ("'", '"') and (i == 0 or s[i - 1] in " \t[{,:-"):
            q = ch
        elif ch == "#" and (i == 0 or s[i - 1] in " \t"):
            break
        out.append(ch)
    return "".join(out).rstrip()


def _split_key(s):
    """'key: rest' -> (key, rest) or None when s is not a mapping entry."""
    if s[:1] in ("'", '"'):
        end = s.find(s[0], 1)
        if end < 0:
            return None
        key, after = s[1:end], s[end + 1:]
        if after == ":" or after.startswith(": "):
            return key, after[1:].strip()
        return None
    m = re.match(r"^([^\s'\"\[\]{}#,][^:]*?|[^\s'\"\[\]{}#,]):(?:\s+(.*))?$", s)
    if not m:
        return None
    return m.group(1).strip(), (m.group(2) or "").strip()


def _scalar(s):
    s = s.strip()
    if len(s) >= 2 and s[0] == s[-1] and s[0] in ("'", '"'):
        body = s[1:-1]
        if s[0] == '"':
            body = body.replace('\\"', '"').replace("\\\\", "\\")
        else:
            body = body.replace("''", "'")
        return body
    if s in ("", "~", "null"):
        return None
    return s


def _split_flow(s):
    parts, cur, q, depth = [], [], None, 0
    for ch in s:
        if q:
            cur.append(ch)
            if ch == q:
                q = None
            continue
        if ch in ("'", '"'):
            q = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    if "".join(cur).strip():
        parts.append("".join(cur))
    return [p.strip() for p in parts]


def _value(s):
    if s.startswith("[") and s.endswith("]"):
        return [_value(p) for p in _split_flow(s[1:-1])]
    if s.startswith("{") and s.endswith("}"):
        out = {}
        for p in _split_flow(s[1:-1]):
            kv = _split_key(p)
            if kv is None:
                raise ComposeError("bad flow mapping entry %r" % p)
            out[kv[0]] = _value(kv[1])
        return out
    return _scalar(s)


def parse_yaml(text, name="compose.yml"):
    lines = []
    for no, raw in enumerate(text.splitlines(), 1):
        if raw.strip() in ("---", "...") and not raw.startswith(" "):
            continue
        if "\t" in raw[:len(raw) - len(raw.lstrip())]:
            raise ComposeError("%s:%d: tab in indentation" % (name, no))
        body = _strip_comment(raw)
        if not body.strip():
            lines.append((no, -1, raw))  # kept for block scalars
            continue
        lines.append((no, len(body) - len(body.lstrip(" ")), body.strip()))
    pos = [0]

    def skip_blank():
        while pos[0] < len(lines) and lines[pos[0]][1] < 0:
            pos[0] += 1

    def block(indent):
        skip_blank()
        if pos[0] >= len(lines):
            return None
        _, ind, s = lines[pos[0]]
        if s == "-" or s.startswith("- "):
            return seq(ind)
        return mapping(ind)

    def block_scalar(parent_indent, style):
        out = []
        while pos[0] < len(lines):
            no, ind, s = lines[pos[0]]
            raw = lines[pos[0]][2]
            if ind >= 0 and ind <= parent_indent:
                break
            out.append(raw.strip() if ind < 0 else raw)
            pos[0] += 1
        sep = "\n" if style.startswith("|") else " "
        return sep.join(x.strip() for x in out) + ("\n" if style.startswith("|") else "")

    def entry_value(rest, indent, allow_same_indent_seq):
        if rest in ("|", ">", "|-", ">-", "|+", ">+"):
            pos[0] += 1
            return block_scalar(indent, rest)
        if rest:
            pos[0] += 1
            return _value(rest)
        pos[0] += 1
        skip_blank()
        if pos[0] >= len(lines):
            return None
        _, nind, ns = lines[pos[0]]
        if nind > indent or (allow_same_indent_seq and nind == indent and
                             (ns == "-" or ns.startswith("- "))):
            return block(nind)
        return None

    def mapping(indent):
        out = {}
        while True:
            skip_blank()
            if pos[0] >= len(lines):
                return out
            no, ind, s = lines[pos[0]]
            if ind < indent:
                return out
            if ind > indent:
                raise ComposeError("%s:%d: unexpected indentation" % (name, no))
            if s == "-" or s.startswith("- "):
                return out
            kv = _split_key(s)
            if kv is None:
                raise ComposeError("%s:%d: expected `key: value`" % (name, no))
            if kv[0] == "<<" or kv[1].startswith(("&", "*")):
                raise ComposeError("%s:%d: anchors and aliases are not supported" % (name, no))
            out[kv[0]] = entry_value(kv[1], indent, True)

    def seq(indent):
        out = []
        while True:
            skip_blank()
            if pos[0] >= len(lines):
                return out
            no, ind, s = lines[pos[0]]
            if ind != indent or not (s == "-" or s.startswith("- ")):
                if ind > indent:
                    raise ComposeError("%s:%d: unexpected indentation" % (name, no))
                return out
            item = s[1:].strip()
            if not item:
                pos[0] += 1
                skip_blank()
                if pos[0] < len(lines) and lines[pos[0]][1] > indent:
                    out.append(block(lines[pos[0]][1]))
                else:
                    out.append(None)
                continue
            kv = _split_key(item) if item[:1] not in ("[", "{") else None
            if kv is not None:
                # a mapping inside a sequence item: re-read this line as the
                # first entry of a mapping indented at the item's text
                item_indent = ind + (len(s) - len(item))
                lines[pos[0]] = (no, item_indent, item)
                out.append(mapping(item_indent))
            else:
                pos[0] += 1
                out.append(_value(item))

    doc = block(0)
    skip_blank()
    if pos[0] < len(lines):
        raise ComposeError("%s:%d: unexpected text" % (name, lines[pos[0]][0]))
    return doc if doc is not None else {}


_VAR_RE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def interpolate(s, env):
    """compose-style ${VAR}, ${VAR:-default}, ${VAR-default}, $VAR, $$."""
    def sub(m):
        if m.group(0) == "$$":
            return "$"
        name = m.group(1) or m.group(4)
        op, default = m.group(2), m.group(3) or ""
        v = env.get(name)
        if op == ":-" and not v:
            return default
        if op == "-" and v is None:
            return default
        return v or ""
    return _VAR_RE.sub(sub, s)


def _labels(value, env):
    out = {}
    if isinstance(value, dict):
        for k, v in value.items():
            out[interpolate(str(k), env)] = interpolate("" if v is None else str(v), env)
    elif isinstance(value, list):
        for item in value:
            k, _, v = interpolate(str(item), env).partition("=")
            out[k] = v
    return out


def _mounts(value, env, declared):
    """Named-volume mounts (volume name, target); bind mounts are dropped."""
    out = []
    for item in value or []:
        if isinstance(item, dict):
            if item.get("type", "volume") != "volume" or not item.get("source"):
                continue
            src, target = interpolate(str(item["source"]), env), interpolate(str(item.get("target", "")), env)
        else:
            parts = interpolate(str(item), env).split(":")
            if len(parts) < 2:
                continue  # an anonymous volume
            src, target = parts[0], parts[1]
        if not src or src[0] in "/.~" or not target.startswith("/"):
            continue
        if declared is not None and src not in declared:
            raise ComposeError("service mounts undeclared volume %r" % src)
        out.append([src, target.rstrip("/") or "/"])
    return out


def load_compose(recipe_dir, env):
    """Services of compose.yml plus the overlays in COMPOSE_FILE (colon
    separated, default compose.yml), merged in order: image and replicas
    replaced, labels merged, mounts merged by target. Returns
    {service: {image, labels, mounts, replicas}}."""
    files = [f for f in (env.get("COMPOSE_FILE") or "compose.yml").split(":") if f]
    services, declared = {}, set()
    for fname in files:
        path = os.path.join(recipe_dir, fname)
        try:
            with open(path, encoding="utf-8") as f:
                doc = parse_yaml(f.read(), fname)
        except FileNotFoundError:
            raise Fatal("%s: compose file not found in %s" % (fname, recipe_dir))
        except ComposeError as e:
            raise Fatal("unable to parse compose file: %s" % e)
        if not isinstance(doc, dict):
            raise Fatal("%s: not a mapping" % fname)
        declared |= set((doc.get("volumes") or {}).keys())
        for sname, spec in (doc.get("services") or {}).items():
            spec = spec or {}
            cur = services.setdefault(sname, {"image": "", "labels": {}, "mounts": [], "replicas": 1})
            if spec.get("image"):
                cur["image"] = interpolate(str(spec["image"]), env)
            deploy = spec.get("deploy") or {}
            if isinstance(deploy, dict):
                cur["labels"].update(_labels(deploy.get("labels"), env))
                if deploy.get("replicas") is not None:
                    cur["replicas"] = int(interpolate(str(deploy["replicas"]), env))
            try:
                mounts = _mounts(spec.get("volumes"), env, None)
            except ComposeError as e:
                raise Fatal("%s: %s" % (fname, e))
            for m in mounts:
                cur["mounts"] = [x for x in cur["mounts"] if x[1] != m[1]] + [m]
    for sname, svc in services.items():
        for vol, _ in svc["mounts"]:
            if vol not in declared:
                raise Fatal("service %s mounts volume %r that no compose file declares" % (sname, vol))
    if not services:
        raise Fatal("no services in %s" % ":".join(files))
    return services

