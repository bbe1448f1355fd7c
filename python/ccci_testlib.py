"""ccci_testlib: helpers for a recipe's tests and hooks run by ccci.

ccci writes this module into every run (``snapshot/lib/ccci_testlib.py``,
on ``PYTHONPATH``) for the recipe's ``test_<tier>.py``, its custom tests,
``ops.py`` and any Python its hook scripts start. Standard library only,
Python 3.9 or newer. The manual is docs/testlib.md in ccci's source.

The app::

    app_url()        CCCI_APP_URL, e.g. https://pages-pr7.ci.example.org
    domain()         CCCI_APP_DOMAIN
    stack()          CCCI_STACK (the swarm stack name)
    server()         CCCI_SERVER (the abra server)
    recipe()         CCCI_RECIPE
    tier()           CCCI_TIER (the tier running: install, upgrade, ...)
    health_path()    CCCI_HEALTH_PATH (default "/")
    artifacts_dir()  CCCI_ARTIFACTS_DIR (created if missing)

HTTP through ``harness.gateway``, the way the harness's own checks go::

    r = get("/")                      # Response(status, headers, body)
    r = request("POST", "/api", body={"a": 1}, headers={"X-A": "b"})
    r = wait_http(health_path())      # until 200..399, else WaitTimeout

With ``CCCI_GATEWAY`` empty the app's domain is resolved by DNS; with
``host:port`` the connection goes to that address over TLS, with the app's
domain as the TLS server name (SNI) and the Host header; with
``http://host:port`` over plain HTTP with that Host. Certificates are
checked unless ``CCCI_GATEWAY_INSECURE=1``. Redirects are not followed: a
3xx is returned as it is.

Waiting and abra::

    wait_for(lambda: get("/ready").status == 200, timeout=60, what="ready")
    p = abra_run("app", "sh", "-c", "echo hi")   # CompletedProcess
    p.stdout                                       # "hi\\n"

``abra_run`` expands ``CCCI_ABRA_RUN_TEMPLATE`` (the ``harness.abra.run``
template as a JSON array) like ccci does and raises AbraRunError when the
command exits non-zero.

Every function that needs a ``CCCI_*`` variable raises MissingEnv naming
it when it is not set (the module is used outside a ccci run).
"""

import http.client
import json
import os
import shlex
import socket
import ssl
import subprocess
import time
import typing
import urllib.parse

__all__ = [
    "CcciError",
    "MissingEnv",
    "WaitTimeout",
    "AbraRunError",
    "Response",
    "app_url",
    "domain",
    "stack",
    "server",
    "recipe",
    "tier",
    "health_path",
    "artifacts_dir",
    "gateway",
    "request",
    "get",
    "wait_http",
    "wait_for",
    "abra_run_argv",
    "abra_run",
]

USER_AGENT = "ccci_testlib/1"


class CcciError(RuntimeError):
    """Every error this module raises on purpose."""


class MissingEnv(CcciError):
    """A CCCI_* variable the call needs is not set."""

    def __init__(self, name, what):
        self.name = name
        super().__init__(
            "%s is not set (%s): ccci sets it for a recipe's tests and hooks "
            "(docs/testlib.md); to run them by hand, set it yourself" % (name, what))


class WaitTimeout(CcciError):
    """wait_for or wait_http gave up; ``last`` is the last value or error."""

    def __init__(self, message, last=None):
        self.last = last
        super().__init__(message)


class AbraRunError(CcciError):
    """abra_run's command failed; ``result`` is its CompletedProcess (or
    None when it timed out or could not start)."""

    def __init__(self, message, result=None):
        self.result = result
        super().__init__(message)


class Response(typing.NamedTuple):
    """One HTTP response: ``status`` (int), ``headers`` (an
    http.client.HTTPMessage: ``headers.get("Location")`` is
    case-insensitive), ``body`` (bytes)."""

    status: int
    headers: typing.Any
    body: bytes

    @property
    def text(self):
        """The body decoded (the Content-Type's charset, else UTF-8)."""
        charset = None
        if self.headers is not None:
            charset = self.headers.get_content_charset()
        return self.body.decode(charset or "utf-8", errors="replace")

    def json(self):
        """The body parsed as JSON."""
        return json.loads(self.body)


def _env(name, what, default=None):
    v = os.environ.get(name, "")
    if v == "":
        if default is not None:
            return default
        raise MissingEnv(name, what)
    return v


def app_url():
    """The app's base URL (``CCCI_APP_URL``), without a trailing ``/``."""
    return _env("CCCI_APP_URL", "the app's URL").rstrip("/")


def domain():
    """The app's domain (``CCCI_APP_DOMAIN``)."""
    return _env("CCCI_APP_DOMAIN", "the app's domain")


def stack():
    """The app's swarm stack name (``CCCI_STACK``)."""
    return _env("CCCI_STACK", "the app's stack name")


def server():
    """The abra server the app runs on (``CCCI_SERVER``)."""
    return _env("CCCI_SERVER", "the abra server")


def recipe():
    """The recipe's name (``CCCI_RECIPE``)."""
    return _env("CCCI_RECIPE", "the recipe's name")


def tier():
    """The tier being run (``CCCI_TIER``: install, upgrade, backup, restore
    or custom)."""
    return _env("CCCI_TIER", "the tier being run")


def health_path():
    """The recipe's HEALTH_PATH (``CCCI_HEALTH_PATH``; ``/`` when unset)."""
    return _env("CCCI_HEALTH_PATH", "the health path", default="/")


def artifacts_dir():
    """The run's artifacts directory (``CCCI_ARTIFACTS_DIR``), created when
    missing. Files written there are kept with the run."""
    d = _env("CCCI_ARTIFACTS_DIR", "the run's artifacts directory")
    os.makedirs(d, exist_ok=True)
    return d


def gateway():
    """Where connections go: None (DNS), or ``(tls, host, port)`` from
    ``CCCI_GATEWAY`` (``host:port`` is TLS, ``http://host:port`` plain)."""
    gw = os.environ.get("CCCI_GATEWAY", "").strip()
    if gw == "":
        return None
    tls = True
    hp = gw
    if hp.startswith("http://"):
        tls, hp = False, hp[len("http://"):]
    hp = hp.rstrip("/")
    host, sep, port = hp.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise CcciError("CCCI_GATEWAY=%r: expected host:port (TLS) or "
                        "http://host:port (plain HTTP)" % gw)
    return tls, host, int(port)


def _insecure():
    return os.environ.get("CCCI_GATEWAY_INSECURE", "") == "1"


def _url(path):
    if path.startswith("http://") or path.startswith("https://"):
        return path
    if not path.startswith("/"):
        path = "/" + path
    return app_url() + path


def _connection(url, timeout):
    """(connection, Host header, request target) for ``url``."""
    u = urllib.parse.urlsplit(url)
    if u.scheme not in ("http", "https") or not u.hostname:
        raise CcciError("%r: not an http:// or https:// URL" % url)
    host = u.hostname
    tls = u.scheme == "https"
    port = u.port or (443 if tls else 80)
    gw = gateway()
    addr = (host, port)
    if gw is not None:
        tls, addr = gw[0], (gw[1], gw[2])
    hosthdr = host if u.port is None else "%s:%d" % (host, u.port)
    target = (u.path or "/") + ("?" + u.query if u.query else "")
    if not tls:
        return http.client.HTTPConnection(addr[0], addr[1], timeout=timeout), hosthdr, target
    ctx = ssl.create_default_context()
    if _insecure():
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE

    class Conn(http.client.HTTPSConnection):
        # Connect to the gateway, but speak TLS to the app: SNI and the
        # certificate check use the app's name, as Traefik routes by it.
        def connect(self):
            sock = socket.create_connection(addr, self.timeout)
            try:
                self.sock = ctx.wrap_socket(sock, server_hostname=host)
            except BaseException:
                sock.close()
                raise

    return Conn(host, port, timeout=timeout, context=ctx), hosthdr, target


def request(method, path, body=None, headers=None, timeout=10):
    """Send one HTTP request to the app and return its Response.

    ``path`` is a path on the app (``/login``, a query allowed) or a whole
    ``http(s)://`` URL (its host is then the Host and TLS server name; the
    connection still goes through the gateway). ``body``: bytes, a str
    (sent as UTF-8), or a dict or list (sent as JSON with
    ``Content-Type: application/json`` unless ``headers`` sets one).
    ``headers``: a dict added to Host, User-Agent and Connection: close.
    Redirects are returned, not followed. Connection errors raise OSError
    (ConnectionRefusedError, socket.timeout, ssl.SSLError, ...) or
    http.client.HTTPException."""
    url = _url(path)
    conn, hosthdr, target = _connection(url, timeout)
    hdrs = {"Host": hosthdr, "User-Agent": USER_AGENT, "Connection": "close"}
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
        hdrs["Content-Type"] = "application/json"
    elif isinstance(body, str):
        body = body.encode()
    for k, v in (headers or {}).items():
        for have in list(hdrs):
            if have.lower() == k.lower():
                del hdrs[have]
        hdrs[k] = v
    try:
        conn.request(method, target, body=body, headers=hdrs)
        r = conn.getresponse()
        data = r.read()
        return Response(r.status, r.headers, data)
    finally:
        conn.close()


def get(path="/", **kw):
    """``request("GET", path, **kw)``."""
    return request("GET", path, **kw)


def _describe(v):
    if isinstance(v, BaseException):
        return "%s: %s" % (type(v).__name__, v)
    if isinstance(v, Response):
        return "HTTP %d" % v.status
    return repr(v)


# What wait_for takes for "not yet" when the function raises it.
_RETRY = (OSError, http.client.HTTPException, CcciError, AssertionError)


def wait_for(fn, timeout=60, interval=1, what=None):
    """Call ``fn()`` every ``interval`` seconds until it returns a true
    value, and return that value. A raised OSError, HTTPException,
    CcciError (not MissingEnv) or AssertionError counts as "not yet" too;
    other exceptions propagate. After ``timeout`` seconds raise WaitTimeout
    naming ``what`` and the last result or error."""
    what = what or getattr(fn, "__name__", "condition")
    end = time.monotonic() + timeout
    last = None
    while True:
        try:
            v = fn()
            if v:
                return v
            last = v
        except MissingEnv:
            raise
        except _RETRY as e:
            last = e
        left = end - time.monotonic()
        if left <= 0:
            raise WaitTimeout("timed out after %gs waiting for %s (last: %s)"
                              % (timeout, what, _describe(last)), last)
        time.sleep(min(interval, left))


def wait_http(path="/", ok=range(200, 400), timeout=300, interval=1, method="GET",
              request_timeout=10):
    """Request ``path`` (GET) every ``interval`` seconds until its status is
    in ``ok`` and return that Response. Connection errors count as "not
    yet". After ``timeout`` seconds raise WaitTimeout with the last status
    or error."""
    url = _url(path)
    end = time.monotonic() + timeout
    last = None
    while True:
        left = end - time.monotonic()
        try:
            r = request(method, url, timeout=max(0.1, min(request_timeout, left)))
            if r.status in ok:
                return r
            last = r
        except (OSError, http.client.HTTPException) as e:
            last = e
        left = end - time.monotonic()
        if left <= 0:
            raise WaitTimeout("timed out after %gs waiting for %s %s (last: %s)"
                              % (timeout, method, url, _describe(last)), last)
        time.sleep(min(interval, left))


_VARS = {
    "domain": ("CCCI_APP_DOMAIN", "the app's domain"),
    "server": ("CCCI_SERVER", "the abra server"),
    "recipe": ("CCCI_RECIPE", "the recipe's name"),
    "stack": ("CCCI_STACK", "the app's stack name"),
}


def _expand_word(word, values):
    """One template word: known ``{name}`` placeholders replaced, a docker
    ``{{...}}`` group and any other brace text kept (as ccci does)."""
    out = []
    i, n = 0, len(word)
    while i < n:
        c = word[i]
        if c == "{" and word[i + 1:i + 2] != "{":
            close = word.find("}", i + 1)
            if close >= 0:
                name = word[i + 1:close]
                if name in values:
                    out.append(values[name]())
                    i = close + 1
                    continue
        if c == "{" and word[i + 1:i + 2] == "{":
            end = word.find("}}", i)
            stop = end + 2 if end >= 0 else n
            out.append(word[i:stop])
            i = stop
            continue
        out.append(c)
        i += 1
    return "".join(out)


def abra_run_argv(service, *argv):
    """The command abra_run runs: ``CCCI_ABRA_RUN_TEMPLATE`` expanded for
    ``service`` with ``argv`` as ``{args}``."""
    raw = _env("CCCI_ABRA_RUN_TEMPLATE", "the harness.abra.run template, a JSON array")
    try:
        tmpl = json.loads(raw)
    except ValueError as e:
        raise CcciError("CCCI_ABRA_RUN_TEMPLATE is not JSON: %s" % e) from None
    if not isinstance(tmpl, list) or not tmpl or not all(isinstance(w, str) for w in tmpl):
        raise CcciError("CCCI_ABRA_RUN_TEMPLATE must be a non-empty JSON array of strings, "
                        "not %s" % raw)
    args = [os.fspath(a) if isinstance(a, os.PathLike) else a for a in argv]
    for a in args:
        if not isinstance(a, str):
            raise TypeError("abra_run arguments must be strings, not %r" % (a,))
    values = {k: (lambda k=k: _env(*_VARS[k])) for k in _VARS}
    values["service"] = lambda: service
    for k in ("secret", "version", "file"):
        values[k] = lambda: ""
    out = []
    for w in tmpl:
        if w == "{args}":
            out.extend(args)
        else:
            out.append(_expand_word(w, values))
    return out


def _tail(text, lines=5):
    if not text:
        return ""
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    return "\n".join(text.rstrip("\n").splitlines()[-lines:])


def abra_run(service, *argv, capture=True, timeout=300, check=True, env=None):
    """Run ``argv`` in the app's ``service`` with ``abra app run`` (the
    ``harness.abra.run`` template), stdin /dev/null.

    ``capture``: keep stdout and stderr as text in the CompletedProcess
    (else they go to this process's own, so to the run's log). ``timeout``
    seconds, then the command is killed and AbraRunError raised.
    ``check``: raise AbraRunError when it exits non-zero (its ``result``
    holds the CompletedProcess). ``env``: extra environment variables for
    the abra process. Returns the CompletedProcess."""
    cmd = abra_run_argv(service, *argv)
    e = None
    if env:
        e = dict(os.environ)
        e.update(env)
    shown = " ".join(shlex.quote(w) for w in cmd)
    try:
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=capture,
                           text=True if capture else None, timeout=timeout, env=e)
    except FileNotFoundError:
        raise AbraRunError("cannot run %s: %s not found on PATH" % (shown, cmd[0])) from None
    except subprocess.TimeoutExpired:
        raise AbraRunError("%s timed out after %gs (killed)" % (shown, timeout)) from None
    if check and p.returncode != 0:
        msg = "%s exited with status %d" % (shown, p.returncode)
        if p.returncode < 0:
            msg = "%s was killed by signal %d" % (shown, -p.returncode)
        err = _tail(p.stderr) if capture else ""
        if err:
            msg += ":\n" + err
        raise AbraRunError(msg, p)
    return p
