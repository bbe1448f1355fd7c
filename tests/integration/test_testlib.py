"""python/ccci_testlib.py, the module ccci ships to recipe tests
(docs/testlib.md): its environment contract, HTTP through the fake gateway
(plain HTTP and TLS with SNI), waits, and abra_run through the fake abra."""

import ast
import http.server
import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from unittest import mock

from fakeapp import RUN_TEMPLATE, FakeApp
from itest import SOURCE_DIR, WAIT

LIB_DIR = os.path.join(SOURCE_DIR, "python")
sys.path.insert(0, LIB_DIR)
import ccci_testlib as T  # noqa: E402

ENV_NAMES = ["CCCI_APP_URL", "CCCI_APP_DOMAIN", "CCCI_STACK", "CCCI_SERVER", "CCCI_TIER",
             "CCCI_GATEWAY", "CCCI_GATEWAY_INSECURE", "CCCI_ARTIFACTS_DIR",
             "CCCI_HEALTH_PATH", "CCCI_ABRA_RUN_TEMPLATE", "CCCI_RECIPE"]


def clean_env(**values):
    """os.environ without any CCCI_* variable, plus @p values."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CCCI_")}
    env.update(values)
    return mock.patch.dict(os.environ, env, clear=True)


class Source(unittest.TestCase):
    def test_python_39_syntax(self):
        with open(os.path.join(LIB_DIR, "ccci_testlib.py")) as f:
            src = f.read()
        ast.parse(src, feature_version=(3, 9))
        tree = ast.parse(src)
        imported = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                imported.add(node.module.split(".")[0])
        # Standard library only.
        self.assertLessEqual(imported, {"http", "json", "os", "shlex", "socket", "ssl",
                                        "subprocess", "time", "typing", "urllib"})

    def test_documented(self):
        for name in T.__all__:
            self.assertTrue(getattr(T, name).__doc__, name + " has no docstring")
        with open(os.path.join(SOURCE_DIR, "docs", "testlib.md")) as f:
            doc = f.read()
        for name in T.__all__:
            self.assertIn("`" + name, doc, name + " is not in docs/testlib.md")
        for name in ENV_NAMES:
            self.assertIn(name, doc)


class Env(unittest.TestCase):
    def test_values(self):
        with tempfile.TemporaryDirectory() as d, clean_env(
                CCCI_APP_URL="https://pages-pr7.ci.example.org/",
                CCCI_APP_DOMAIN="pages-pr7.ci.example.org",
                CCCI_STACK="pages-pr7_ci_example_org", CCCI_SERVER="default",
                CCCI_RECIPE="pages", CCCI_TIER="install",
                CCCI_ARTIFACTS_DIR=os.path.join(d, "artifacts")):
            self.assertEqual(T.app_url(), "https://pages-pr7.ci.example.org")
            self.assertEqual(T.domain(), "pages-pr7.ci.example.org")
            self.assertEqual(T.stack(), "pages-pr7_ci_example_org")
            self.assertEqual(T.server(), "default")
            self.assertEqual(T.recipe(), "pages")
            self.assertEqual(T.tier(), "install")
            self.assertEqual(T.health_path(), "/")
            self.assertEqual(T.artifacts_dir(), os.path.join(d, "artifacts"))
            self.assertTrue(os.path.isdir(os.path.join(d, "artifacts")))
            os.environ["CCCI_HEALTH_PATH"] = "/healthz"
            self.assertEqual(T.health_path(), "/healthz")

    def test_missing_is_a_clear_error(self):
        calls = [(T.app_url, "CCCI_APP_URL"), (T.domain, "CCCI_APP_DOMAIN"),
                 (T.stack, "CCCI_STACK"), (T.server, "CCCI_SERVER"),
                 (T.recipe, "CCCI_RECIPE"), (T.tier, "CCCI_TIER"),
                 (T.artifacts_dir, "CCCI_ARTIFACTS_DIR"), (lambda: T.get("/"), "CCCI_APP_URL"),
                 (lambda: T.abra_run("app", "true"), "CCCI_ABRA_RUN_TEMPLATE")]
        with clean_env():
            for fn, name in calls:
                with self.assertRaises(T.MissingEnv) as cm:
                    fn()
                self.assertEqual(cm.exception.name, name)
                self.assertIn(name + " is not set", str(cm.exception))
                self.assertIn("docs/testlib.md", str(cm.exception))
            # An empty value is as good as none.
            os.environ["CCCI_APP_DOMAIN"] = ""
            self.assertRaises(T.MissingEnv, T.domain)
            # A placeholder's variable is needed only when the template uses it.
            os.environ["CCCI_ABRA_RUN_TEMPLATE"] = json.dumps(["x", "{server}", "{args}"])
            with self.assertRaises(T.MissingEnv) as cm:
                T.abra_run_argv("app", "a")
            self.assertEqual(cm.exception.name, "CCCI_SERVER")
            os.environ["CCCI_ABRA_RUN_TEMPLATE"] = json.dumps(["x", "{service}", "{args}"])
            self.assertEqual(T.abra_run_argv("db", "a"), ["x", "db", "a"])

    def test_outside_ccci(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("CCCI_")}
        env["PYTHONPATH"] = LIB_DIR
        p = subprocess.run([sys.executable, "-c", "import ccci_testlib as t; t.get('/')"],
                           capture_output=True, text=True, env=env, timeout=WAIT)
        self.assertEqual(p.returncode, 1)
        self.assertIn("ccci_testlib.MissingEnv: CCCI_APP_URL is not set (the app's URL)",
                      p.stderr)

    def test_gateway_forms(self):
        cases = {"": None, "127.0.0.1:443": (True, "127.0.0.1", 443),
                 "traefik:8443": (True, "traefik", 8443),
                 "http://127.0.0.1:8080": (False, "127.0.0.1", 8080),
                 "http://127.0.0.1:8080/": (False, "127.0.0.1", 8080),
                 "[::1]:443": (True, "::1", 443)}
        for gw, want in cases.items():
            with clean_env(CCCI_GATEWAY=gw):
                self.assertEqual(T.gateway(), want, gw)
        for gw in ["127.0.0.1", "host:", ":443", "host:http", "host:0", "host:70000"]:
            with clean_env(CCCI_GATEWAY=gw):
                with self.assertRaises(T.CcciError) as cm:
                    T.gateway()
                self.assertIn("expected host:port", str(cm.exception))


class Expand(unittest.TestCase):
    """abra_run_argv follows ccci_abratext_expand (src/harness/abratext.c,
    the cases of tests/unit/test_abratext.c and a few more)."""

    def expand(self, tmpl, *args, service="app"):
        with clean_env(CCCI_ABRA_RUN_TEMPLATE=json.dumps(tmpl), CCCI_APP_DOMAIN="d.example",
                       CCCI_SERVER="default", CCCI_RECIPE="pages", CCCI_STACK="d_example"):
            return T.abra_run_argv(service, *args)

    def test_like_abratext(self):
        t = ["abra", "app", "new", "{recipe}", "--domain", "{domain}", "x{stack}y",
             "{{.Name}} {{.Replicas}}", "{nope}", "{args}", "--"]
        got = self.expand(t, "sh", "-c", "echo {domain}")
        self.assertEqual(got, ["abra", "app", "new", "pages", "--domain", "d.example",
                               "xd_exampley", "{{.Name}} {{.Replicas}}", "{nope}",
                               "sh", "-c", "echo {domain}", "--"])
        self.assertEqual(self.expand(t)[9:], ["--"])

    def test_edges(self):
        cases = [("{server}/{service}", "default/db"), ("{x{domain}}", "{xd.example}"),
                 ("{", "{"), ("}{", "}{"), ("{{unterminated {domain}", "{{unterminated {domain}"),
                 ("{{a}}{domain}", "{{a}}d.example"), ("{secret}{version}{file}", ""),
                 ("{args}x", "{args}x"), ("{DOMAIN}", "{DOMAIN}")]
        for word, want in cases:
            self.assertEqual(self.expand([word], service="db"), [want], word)

    def test_default_template(self):
        self.assertEqual(self.expand(RUN_TEMPLATE, "sh", "-c", "x"),
                         ["abra", "app", "run", "d.example", "app", "--no-tty", "--",
                          "sh", "-c", "x"])

    def test_bad_templates(self):
        for raw in ["not json", "[]", '{"a": 1}', '["abra", 1]', '"abra"']:
            with clean_env(CCCI_ABRA_RUN_TEMPLATE=raw):
                with self.assertRaises(T.CcciError) as cm:
                    T.abra_run_argv("app")
                self.assertIn("CCCI_ABRA_RUN_TEMPLATE", str(cm.exception))
        with clean_env(CCCI_ABRA_RUN_TEMPLATE='["x", "{args}"]'):
            self.assertRaises(TypeError, T.abra_run_argv, "app", 1)


class Echo(http.server.BaseHTTPRequestHandler):
    """A tiny app of its own: /old redirects, everything else echoes."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        if self.path == "/old":
            self.send_response(302)
            self.send_header("Location", "/new")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        out = json.dumps({"method": self.command, "path": self.path,
                          "headers": {k.lower(): v for k, v in self.headers.items()},
                          "body": body.decode()}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_POST = do_PUT = do_DELETE = reply


class Requests(unittest.TestCase):
    """request() against a local echo server through a plain-HTTP gateway."""

    @classmethod
    def setUpClass(cls):
        cls.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Echo)
        cls.thread = threading.Thread(target=cls.srv.serve_forever, daemon=True)
        cls.thread.start()
        cls.gw = "http://127.0.0.1:%d" % cls.srv.server_address[1]

    @classmethod
    def tearDownClass(cls):
        cls.srv.shutdown()
        cls.srv.server_close()

    def env(self, **kw):
        e = {"CCCI_APP_URL": "http://app.test", "CCCI_GATEWAY": self.gw}
        e.update(kw)
        return clean_env(**e)

    def test_host_and_path(self):
        with self.env():
            r = T.get("/a/b?x=1")
            self.assertEqual(r.status, 200)
            j = r.json()
            self.assertEqual(j["path"], "/a/b?x=1")
            self.assertEqual(j["headers"]["host"], "app.test")
            self.assertEqual(j["headers"]["user-agent"], T.USER_AGENT)
            self.assertEqual(T.get("relative").json()["path"], "/relative")
            # A whole URL: its host is the Host, still through the gateway.
            j = T.get("http://other.test:8080/p").json()
            self.assertEqual((j["headers"]["host"], j["path"]), ("other.test:8080", "/p"))
            self.assertIn("application/json", r.headers.get("content-type"))
            self.assertEqual(r.text, r.body.decode())

    def test_bodies_and_headers(self):
        with self.env():
            j = T.request("POST", "/api", body={"a": 1}).json()
            self.assertEqual((j["method"], json.loads(j["body"])), ("POST", {"a": 1}))
            self.assertEqual(j["headers"]["content-type"], "application/json")
            j = T.request("PUT", "/t", body="héllo", headers={"content-type": "text/plain",
                                                              "X-Extra": "1"}).json()
            self.assertEqual((j["body"], j["headers"]["content-type"], j["headers"]["x-extra"]),
                             ("héllo", "text/plain", "1"))
            j = T.request("DELETE", "/t", body=b"\x00raw", headers={"Host": "x.test"}).json()
            self.assertEqual((j["method"], j["headers"]["host"]), ("DELETE", "x.test"))

    def test_redirects_are_returned(self):
        with self.env():
            r = T.get("/old")
            self.assertEqual(r.status, 302)
            self.assertEqual(r.headers.get("Location"), "/new")

    def test_without_gateway_the_url_is_used(self):
        port = self.srv.server_address[1]
        with clean_env(CCCI_APP_URL="http://127.0.0.1:%d" % port):
            j = T.get("/").json()
            self.assertEqual(j["headers"]["host"], "127.0.0.1:%d" % port)

    def test_connection_refused(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        with self.env(CCCI_GATEWAY="http://127.0.0.1:%d" % port):
            self.assertRaises(ConnectionRefusedError, T.get, "/")
            t0 = time.monotonic()
            with self.assertRaises(T.WaitTimeout) as cm:
                T.wait_http("/", timeout=0.5, interval=0.1)
            self.assertLess(time.monotonic() - t0, 5)
            self.assertIsInstance(cm.exception.last, ConnectionRefusedError)
            self.assertIn("ConnectionRefusedError", str(cm.exception))


class Waits(unittest.TestCase):
    def test_wait_for(self):
        n = [0]

        def soon():
            n[0] += 1
            if n[0] < 3:
                raise AssertionError("not yet")
            return n[0] == 4 and "done"
        self.assertEqual(T.wait_for(soon, timeout=10, interval=0.01), "done")
        self.assertEqual(n[0], 4)

    def test_wait_for_gives_up(self):
        t0 = time.monotonic()
        with self.assertRaises(T.WaitTimeout) as cm:
            T.wait_for(lambda: 0, timeout=0.3, interval=0.05, what="the marker")
        self.assertGreaterEqual(time.monotonic() - t0, 0.3)
        self.assertIn("waiting for the marker (last: 0)", str(cm.exception))

    def test_wait_for_propagates_bugs(self):
        def bug():
            raise ValueError("a bug, not a wait")
        self.assertRaises(ValueError, T.wait_for, bug, 10, 0.01)
        with clean_env():
            self.assertRaises(T.MissingEnv, T.wait_for, T.domain, 10, 0.01)


class FakeSwarm(unittest.TestCase):
    """The app on the fake swarm, through tests/support/gateway.py."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="ccci-testlib-", dir="/tmp")
        cls.app = FakeApp(cls.tmp)
        cls.plain = cls.app.gateway(tls=False)
        cls.tls = cls.app.gateway(tls=True)

    @classmethod
    def tearDownClass(cls):
        cls.app.close()
        subprocess.run(["rm", "-rf", cls.tmp], check=False)

    def env(self, tls=False, insecure=True, **kw):
        a = self.app
        e = dict(a.env)
        e.update({"CCCI_APP_URL": ("https://" if tls else "http://") + a.domain,
                  "CCCI_APP_DOMAIN": a.domain, "CCCI_STACK": a.stack,
                  "CCCI_SERVER": "default", "CCCI_RECIPE": "pages",
                  "CCCI_GATEWAY": self.tls if tls else self.plain,
                  "CCCI_GATEWAY_INSECURE": "1" if insecure else "0",
                  "CCCI_ABRA_RUN_TEMPLATE": json.dumps(RUN_TEMPLATE)})
        e.update(kw)
        return clean_env(**e)

    def test_plain_gateway(self):
        with self.env():
            r = T.get("/")
            self.assertEqual(r.status, 200)
            self.assertIn("<h1>pages.test</h1>", r.text)
            self.assertEqual(T.get("/no-such-page").status, 404)
            self.assertEqual(T.request("POST", "/", body="x").status, 405)
            self.assertEqual(T.request("HEAD", "/").body, b"")
        self.assertTrue(any(line.startswith("pages.test ") for line in self.app.requests(0)))

    def test_tls_gateway_sni_and_host(self):
        # The gateway answers 421 unless SNI and Host are the app's domain.
        with self.env(tls=True):
            r = T.get("/")
            self.assertEqual(r.status, 200, r.text)
            self.assertIn("<h1>pages.test</h1>", r.text)
            # Another name as Host: the SNI stays the URL's, so 421 shows both.
            r = T.get("/", headers={"Host": "other.test"})
            self.assertEqual(r.status, 421)
            self.assertIn("'pages.test'", r.text)

    def test_tls_certificate_checked(self):
        with self.env(tls=True, insecure=False):
            with self.assertRaises(ssl.SSLCertVerificationError):
                T.get("/")
        with self.env(tls=True, CCCI_GATEWAY_INSECURE=""):
            self.assertRaises(ssl.SSLError, T.get, "/")

    def test_wait_http(self):
        name = "late-%d.txt" % os.getpid()
        timer = threading.Timer(1.0, self.app.write, (name, "late\n"))
        timer.start()
        try:
            with self.env(tls=True):
                t0 = time.monotonic()
                r = T.wait_http("/" + name, timeout=30, interval=0.1)
                self.assertEqual((r.status, r.body), (200, b"late\n"))
                self.assertGreaterEqual(time.monotonic() - t0, 0.9)
                with self.assertRaises(T.WaitTimeout) as cm:
                    T.wait_http("/never.txt", timeout=0.5, interval=0.1)
                self.assertEqual(cm.exception.last.status, 404)
                self.assertIn("GET https://pages.test/never.txt (last: HTTP 404)",
                              str(cm.exception))
                # ok= decides what counts.
                self.assertEqual(T.wait_http("/never.txt", ok=[404], timeout=5).status, 404)
        finally:
            timer.cancel()

    def test_abra_run(self):
        with self.env():
            p = T.abra_run("app", "sh", "-c",
                           "echo from-abra > /usr/share/nginx/html/m.txt && "
                           "cat /usr/share/nginx/html/m.txt")
            self.assertEqual(p.returncode, 0)
            self.assertEqual(p.stdout, "from-abra\n")
            # The file is in the app's volume: the gateway serves it.
            self.assertEqual(T.get("/m.txt").body, b"from-abra\n")
            self.assertEqual(p.args[:7], ["abra", "app", "run", "pages.test", "app",
                                          "--no-tty", "--"])
            # stdin is /dev/null: cat ends at once.
            self.assertEqual(T.abra_run("app", "cat", timeout=20).stdout, "")

    def test_abra_run_failures(self):
        with self.env():
            with self.assertRaises(T.AbraRunError) as cm:
                T.abra_run("app", "sh", "-c", "echo oops >&2; exit 3")
            self.assertEqual(cm.exception.result.returncode, 3)
            self.assertIn("exited with status 3:\noops", str(cm.exception))
            self.assertIn("abra app run pages.test app --no-tty -- sh -c", str(cm.exception))
            p = T.abra_run("app", "sh", "-c", "exit 3", check=False)
            self.assertEqual(p.returncode, 3)
            with self.assertRaises(T.AbraRunError) as cm:
                T.abra_run("nosuch", "true")
            self.assertIn("FATA", str(cm.exception))
            t0 = time.monotonic()
            with self.assertRaises(T.AbraRunError) as cm:
                T.abra_run("app", "sleep", "30", timeout=0.5)
            self.assertLess(time.monotonic() - t0, 10)
            self.assertIn("timed out after 0.5s", str(cm.exception))
        with self.env(CCCI_ABRA_RUN_TEMPLATE='["no-such-abra-ccci", "{args}"]'):
            with self.assertRaises(T.AbraRunError) as cm:
                T.abra_run("app", "true")
            self.assertIn("no-such-abra-ccci not found on PATH", str(cm.exception))

    def test_abra_run_uncaptured(self):
        # capture=False: the output is the caller's (the run's log).
        with self.env():
            env = dict(os.environ, PYTHONPATH=LIB_DIR)
        code = ("import ccci_testlib as t\n"
                "p = t.abra_run('app', 'sh', '-c', 'echo out; echo err >&2', capture=False)\n"
                "assert p.stdout is None, p.stdout\n")
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env=env, timeout=WAIT)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, "out\n")
        self.assertIn("err\n", p.stderr)


if __name__ == "__main__":
    unittest.main()
