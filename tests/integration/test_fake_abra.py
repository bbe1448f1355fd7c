"""The harness's test fakes themselves (tests/support: fake `abra`, fake
`docker`, the gateway) driven through the exact default command templates
of the harness, plus the example recipes and examples/make-recipe-repo.
Needs no ccci binary."""

import importlib.machinery
import importlib.util
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("CCCI_SOURCE_DIR", os.path.dirname(os.path.dirname(HERE)))
SUPPORT = os.path.join(SOURCE_DIR, "tests", "support")
EXAMPLES = os.path.join(SOURCE_DIR, "examples")
sys.path.insert(0, SUPPORT)
import fakeswarm  # noqa: E402

# The harness's default templates (harness.abra.*), copied from the design
# notes of issue 14 / docs: the fakes must accept exactly these.
T = {
    "new": ["abra", "app", "new", "{recipe}", "--server", "{server}", "--domain", "{domain}",
            "--chaos", "--offline", "--no-input"],
    "secret_generate": ["abra", "app", "secret", "generate", "{domain}", "--all", "--chaos",
                        "--offline", "--no-input"],
    "secret_insert": ["abra", "app", "secret", "insert", "{domain}", "{secret}", "{version}",
                      "{file}", "--file", "--chaos", "--offline", "--no-input"],
    "deploy": ["abra", "app", "deploy", "{domain}", "--chaos", "--offline", "--no-input",
               "--no-converge-checks"],
    "undeploy": ["abra", "app", "undeploy", "{domain}", "--no-input"],
    "volume_remove": ["abra", "app", "volume", "remove", "{domain}", "--force", "--no-input"],
    "secret_remove": ["abra", "app", "secret", "remove", "{domain}", "--all", "--no-input"],
    "remove": ["abra", "app", "remove", "{domain}", "--force", "--no-input"],
    "backup": ["abra", "app", "backup", "create", "{domain}", "--no-input"],
    "snapshots": ["abra", "app", "backup", "snapshots", "{domain}", "--no-input"],
    "restore": ["abra", "app", "restore", "{domain}", "--no-input"],
    "run": ["abra", "app", "run", "{domain}", "{service}", "--no-tty", "--", "{args}"],
    "services": ["docker", "--context", "{server}", "service", "ls", "--filter",
                 "label=com.docker.stack.namespace={stack}", "--format", "{{.Name}} {{.Replicas}}"],
    "labels": ["docker", "--context", "{server}", "service", "inspect", "{stack}_app", "--format",
               "{{json .Spec.Labels}}"],
    "volumes": ["docker", "--context", "{server}", "volume", "ls", "--quiet", "--filter",
                "label=com.docker.stack.namespace={stack}"],
    "secrets": ["docker", "--context", "{server}", "secret", "ls", "--filter",
                "label=com.docker.stack.namespace={stack}", "--format", "{{.Name}}"],
}
MARKER_PATH = "/usr/share/nginx/html/ccci-marker.txt"
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid",
           "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1"}


def expand(tpl, **kw):
    """The harness's expansion: known placeholders replaced, an element that
    is exactly {args} becomes zero or more elements, other {...} literal."""
    out = []
    for el in tpl:
        if el == "{args}":
            out += kw.get("args", [])
            continue
        for k, v in kw.items():
            if k != "args":
                el = el.replace("{%s}" % k, v)
        out.append(el)
    return out


def git(cwd, *args):
    return subprocess.run(["git", "-C", cwd] + list(args), check=True, capture_output=True,
                          text=True, env=dict(os.environ, **GIT_ENV)).stdout.strip()


class Fakes(unittest.TestCase):
    """A private ABRA_DIR and FAKE_SWARM_DIR per test; the pages example as a
    repo with release tags (built once)."""

    @classmethod
    def setUpClass(cls):
        cls.repos = tempfile.mkdtemp(prefix="fake-abra-repos-")
        out = subprocess.run([os.path.join(EXAMPLES, "make-recipe-repo"),
                              os.path.join(EXAMPLES, "recipes", "pages"),
                              os.path.join(cls.repos, "pages"), "--tags"],
                             check=True, capture_output=True, text=True).stdout
        cls.commits = dict(line.split(" ", 1)[1].rsplit(" ", 1) if line.startswith("release")
                           else ("head", line.split()[1]) for line in out.splitlines())
        subprocess.run([os.path.join(EXAMPLES, "make-recipe-repo"),
                        os.path.join(EXAMPLES, "recipes", "hello"),
                        os.path.join(cls.repos, "hello"), "--tags"],
                       check=True, capture_output=True, text=True)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.repos, ignore_errors=True)

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="fake-abra-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.abra_dir = os.path.join(self.tmp, "abra")
        self.swarm = os.path.join(self.tmp, "swarm")
        os.makedirs(os.path.join(self.abra_dir, "servers", "default"))
        os.makedirs(os.path.join(self.abra_dir, "recipes"))
        self.env = dict(os.environ, ABRA_DIR=self.abra_dir, FAKE_SWARM_DIR=self.swarm,
                        PATH=SUPPORT + os.pathsep + os.environ.get("PATH", ""))
        for k in ("FAKE_ABRA_DELAY", "FAKE_DOCKER_DELAY", "FAKE_SERVICE_START_S", "DOCKER_CONTEXT"):
            self.env.pop(k, None)

    # -------------------------------------------------------------- helpers

    def checkout(self, recipe="pages", ref=None, abra_dir=None):
        d = os.path.join(abra_dir or self.abra_dir, "recipes", recipe)
        subprocess.run(["git", "clone", "-q", os.path.join(self.repos, recipe), d], check=True,
                       env=dict(os.environ, **GIT_ENV))
        if ref:
            git(d, "checkout", "-q", "-f", ref)
        return d

    def call(self, name, env=None, check=True, **kw):
        argv = expand(T[name], **kw)
        p = subprocess.run(argv, capture_output=True, text=True, env=env or self.env, timeout=60)
        if check and p.returncode != 0:
            self.fail("%s failed (%d): %s%s" % (argv, p.returncode, p.stdout, p.stderr))
        return p

    def raw(self, *argv, env=None):
        return subprocess.run(list(argv), capture_output=True, text=True, env=env or self.env,
                              timeout=60)

    def new_app(self, domain="pages.test", recipe="pages", env=None):
        self.call("new", env=env, recipe=recipe, server="default", domain=domain)
        return self.call("secret_generate", env=env, domain=domain)

    def services(self, domain):
        out = self.call("services", server="default", stack=fakeswarm.stack_name(domain)).stdout
        return sorted(out.split("\n")[:-1]) if out else []

    def labels(self, domain):
        return json.loads(self.call("labels", server="default",
                                    stack=fakeswarm.stack_name(domain)).stdout)

    def lines(self, name, domain):
        out = self.call(name, server="default", stack=fakeswarm.stack_name(domain)).stdout
        return out.split()

    def run_sh(self, domain, script, check=True):
        return self.call("run", check=check, domain=domain, service="app",
                         args=["sh", "-c", script])

    def env_file(self, domain):
        return os.path.join(self.abra_dir, "servers", "default", domain + ".env")

    def faults(self, rules):
        os.makedirs(self.swarm, exist_ok=True)
        with open(os.path.join(self.swarm, "faults.json"), "w") as f:
            json.dump(rules, f)

    def assertFata(self, p, pattern):
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertRegex(p.stderr, r"(?m)^FATA " + pattern)

    # ---------------------------------------------------------------- cycle

    def test_full_cycle_with_the_default_templates(self):
        d, stack = "pages.test", "pages_test"
        rdir = self.checkout(ref="1.0.0+1.27.1")
        gen = self.new_app(d)
        rows = [line.split() for line in gen.stdout.splitlines()]
        self.assertEqual(rows[0], ["NAME", "VERSION", "VALUE"])
        self.assertEqual([r[:2] for r in rows[1:]], [["admin_token", "v1"]])
        self.assertEqual(len(rows[1][2]), 32)  # `# length=32`
        value = rows[1][2]
        with open(self.env_file(d)) as f:
            env = f.read()
        self.assertIn("TYPE=pages\n", env)
        self.assertIn("DOMAIN=pages.test\n", env)
        self.assertEqual(len(self.lines("secrets", d)), 1)

        self.call("deploy", domain=d)
        with open(self.env_file(d)) as f:
            self.assertIn("TYPE=pages:1.0.0+1.27.1\n", f.read())
        self.assertEqual(self.services(d), ["pages_test_app 1/1"])
        lab = self.labels(d)
        self.assertEqual(lab["coop-cloud.%s.version" % stack], "1.0.0+1.27.1")
        self.assertEqual(lab["coop-cloud.%s.chaos-version" % stack],
                         self.commits["1.0.0+1.27.1"][:8])
        self.assertEqual(lab["backupbot.backup"], "true")
        self.assertEqual(lab["traefik.http.routers.%s.rule" % stack], "Host(`pages.test`)")
        self.assertEqual(lab["com.docker.stack.image"], "nginx:1.27.1")
        self.assertEqual(self.lines("volumes", d), ["pages_test_content"])

        # DATA_CHECK as the example recipe writes it, real container paths
        self.run_sh(d, "echo 'm-1' > %s" % MARKER_PATH)
        self.assertEqual(self.run_sh(d, "cat %s" % MARKER_PATH).stdout, "m-1\n")

        # upgrade: the PR head, in-place chaos redeploy, volume kept
        git(rdir, "checkout", "-q", "-f", "main")
        self.call("deploy", domain=d)
        lab = self.labels(d)
        self.assertEqual(lab["coop-cloud.%s.version" % stack], self.commits["head"][:8])
        self.assertEqual(lab["coop-cloud.%s.chaos-version" % stack], self.commits["head"][:8])
        self.assertEqual(lab["com.docker.stack.image"], "nginx:1.27.2")
        self.assertEqual(self.run_sh(d, "cat %s" % MARKER_PATH).stdout, "m-1\n")

        # backup, change, restore
        sid = self.call("backup", domain=d).stdout.strip()
        self.assertRegex(sid, r"^[0-9a-f]{8}$")
        self.assertEqual(self.call("snapshots", domain=d).stdout, sid + "\n")
        self.run_sh(d, "echo m-2 > %s; echo extra > /usr/share/nginx/html/x" % MARKER_PATH)
        self.assertEqual(self.run_sh(d, "cat %s" % MARKER_PATH).stdout, "m-2\n")
        self.call("restore", domain=d)
        self.assertEqual(self.run_sh(d, "cat %s" % MARKER_PATH).stdout, "m-1\n")
        self.assertNotEqual(self.run_sh(d, "cat /usr/share/nginx/html/x", check=False).returncode, 0)

        # teardown: nothing left
        self.call("undeploy", domain=d)
        self.assertEqual(self.services(d), [])
        self.assertEqual(self.lines("volumes", d), ["pages_test_content"])  # volumes stay
        self.call("volume_remove", domain=d)
        self.assertEqual(self.lines("volumes", d), [])
        self.call("secret_remove", domain=d)
        self.assertEqual(self.lines("secrets", d), [])
        self.call("remove", domain=d)
        self.assertFalse(os.path.exists(self.env_file(d)))

        calls = fakeswarm.read_calls(self.swarm)
        abra = [c["argv"][1:4] for c in calls if c["prog"] == "abra"]
        self.assertEqual(abra[0], ["app", "new", "pages"])
        self.assertEqual(abra[-1], ["app", "remove", d])
        self.assertTrue(all(c["abra_dir"] == self.abra_dir for c in calls))
        # the generated value is only on generate's stdout, never in the state
        # the docker fake shows or the call log
        with open(os.path.join(self.swarm, "calls.log")) as f:
            self.assertNotIn(value, f.read())

    def test_secret_insert_and_generate_comments(self):
        d = "pages.test"
        self.checkout()
        self.call("new", recipe="pages", server="default", domain=d)
        with open(self.env_file(d), "a") as f:
            f.write("SECRET_API_KEY_VERSION=v2 # length=20\nSECRET_SMTP_VERSION=v1 # generate=false\n"
                    "export SECRET_SHORT_VERSION=v1   # length=16\n")
        rows = [line.split() for line in self.call("secret_generate", domain=d).stdout.splitlines()[1:]]
        self.assertEqual(sorted((r[0], r[1], len(r[2])) for r in rows),
                         [("admin_token", "v1", 32), ("api_key", "v2", 20), ("short", "v1", 16)])
        # a second generate makes nothing new and still succeeds
        again = self.call("secret_generate", domain=d)
        self.assertNotIn("VALUE", again.stdout)
        vf = os.path.join(self.tmp, "smtp")
        with open(vf, "w") as f:
            f.write("s3cret-smtp")
        self.call("secret_insert", domain=d, secret="smtp", version="v1", file=vf)
        self.assertEqual(len(self.lines("secrets", d)), 4)
        p = self.call("secret_insert", check=False, domain=d, secret="smtp", version="v1", file=vf)
        self.assertFata(p, "secret pages_test_smtp_v1 already exists")
        st = fakeswarm.Server("default", self.swarm).load()
        self.assertEqual(st["secrets"]["pages_test_smtp_v1"]["value"], "s3cret-smtp")
        self.call("deploy", domain=d)
        self.assertFata(self.call("secret_remove", check=False, domain=d), ".*in use")

    def test_default_generated_value_is_long(self):
        d = "hello.test"
        self.checkout("hello")
        self.call("new", recipe="hello", server="default", domain=d)
        with open(self.env_file(d), "a") as f:
            f.write("SECRET_DB_VERSION=v1\n")
        rows = self.call("secret_generate", domain=d).stdout.splitlines()[1:]
        self.assertGreaterEqual(len(rows[0].split()[2]), 16)

    # ------------------------------------------------------------- refusals

    def test_new_refuses_an_existing_app(self):
        self.checkout()
        self.call("new", recipe="pages", server="default", domain="a.test")
        p = self.call("new", check=False, recipe="pages", server="default", domain="a.test")
        self.assertFata(p, "a.test already exists")
        self.assertFata(self.call("new", check=False, recipe="nope", server="default", domain="b.test"),
                        "recipe nope not found")
        self.assertFata(self.call("new", check=False, recipe="pages", server="other", domain="b.test"),
                        "server other doesn't exist")

    def test_remove_refuses_a_deployed_app(self):
        self.checkout()
        self.new_app("a.test")
        self.call("deploy", domain="a.test")
        self.assertFata(self.call("remove", check=False, domain="a.test"), "a.test is still deployed")
        self.assertFata(self.call("volume_remove", check=False, domain="a.test"), ".*in use")
        self.assertTrue(os.path.exists(self.env_file("a.test")))
        self.assertFata(self.call("undeploy", check=False, domain="nope.test"),
                        "cannot find app with name nope.test")

    def test_deploy_needs_its_secrets(self):
        self.checkout()
        self.call("new", recipe="pages", server="default", domain="a.test")
        p = self.call("deploy", check=False, domain="a.test")
        self.assertFata(p, "secret not found: a_test_admin_token_v1")
        self.assertEqual(self.services("a.test"), [])

    def test_dirty_tree_needs_chaos(self):
        rdir = self.checkout(ref="1.0.0+1.27.1")
        self.new_app("a.test")
        with open(os.path.join(rdir, "compose.yml"), "a") as f:
            f.write("# local change\n")
        p = self.raw("abra", "app", "deploy", "a.test", "--offline", "--no-input")
        self.assertFata(p, ".*unstaged changes")
        self.assertEqual(self.services("a.test"), [])
        self.call("deploy", domain="a.test")
        lab = self.labels("a.test")
        self.assertEqual(lab["coop-cloud.a_test.chaos-version"], self.commits["1.0.0+1.27.1"][:8] + "+U")
        # a clean tree deploys without --chaos; a second one needs --force
        git(rdir, "checkout", "-q", "-f", "1.0.0+1.27.1")
        self.call("undeploy", domain="a.test")
        self.assertEqual(self.raw("abra", "app", "deploy", "a.test", "-o", "-n").returncode, 0)
        self.assertNotIn("coop-cloud.a_test.chaos-version", self.labels("a.test"))
        self.assertFata(self.raw("abra", "app", "deploy", "a.test", "-o", "-n"), "a.test is already deployed")
        self.assertEqual(self.raw("abra", "app", "deploy", "-f", "a.test", "-o", "-n").returncode, 0)

    def test_backup_needs_the_backupbot_label(self):
        self.checkout("hello")
        self.new_app("h.test", recipe="hello")
        self.call("deploy", domain="h.test")
        self.assertEqual(self.services("h.test"), ["h_test_app 1/1"])
        self.assertFata(self.call("backup", check=False, domain="h.test"), "no backup configured")
        self.assertFata(self.call("restore", check=False, domain="h.test"), "no backup configured")
        self.assertEqual(self.lines("volumes", "h.test"), [])

    def test_restore_needs_a_snapshot(self):
        self.checkout()
        self.new_app("a.test")
        self.call("deploy", domain="a.test")
        self.assertEqual(self.call("snapshots", domain="a.test").stdout, "")
        self.assertFata(self.call("restore", check=False, domain="a.test"), "no snapshots")

    # ------------------------------------------------------------ the CLI

    def test_unknown_flags_fail(self):
        self.checkout()
        self.new_app("a.test")
        for argv in (["abra", "app", "deploy", "a.test", "--bogus"],
                     ["abra", "app", "deploy", "--bogus", "a.test", "-C"],
                     ["abra", "app", "undeploy", "a.test", "--chaos"],
                     ["abra", "app", "backup", "create", "a.test", "--force"]):
            p = self.raw(*argv)
            self.assertFata(p, "unknown flag: --(bogus|chaos|force)$")
        self.assertFata(self.raw("abra", "app", "deploy", "a.test", "-Z"), "unknown shorthand flag: 'Z'")
        self.assertFata(self.raw("abra", "app", "frobnicate", "a.test"), "unknown command")
        self.assertFata(self.raw("abra", "app", "deploy"), ".*missing argument <domain>")
        self.assertFata(self.raw("abra", "app", "undeploy", "a.test", "extra"), ".*too many arguments")
        self.assertEqual(self.services("a.test"), [])

    def test_short_forms_aliases_and_flag_order(self):
        self.checkout()
        p = self.raw("abra", "-n", "app", "new", "-C", "-o", "-s", "default", "-D", "a.test", "pages")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.raw("abra", "app", "secret", "generate", "-a", "-C", "a.test", "-o").returncode, 0)
        self.assertEqual(self.raw("abra", "app", "deploy", "-Con", "-c", "a.test").returncode, 0)
        self.assertEqual(self.services("a.test"), ["a_test_app 1/1"])
        self.assertEqual(self.raw("abra", "app", "backup", "create", "-n", "a.test").returncode, 0)
        self.assertEqual(len(self.raw("abra", "app", "backup", "ls", "a.test").stdout.split()), 1)
        self.assertEqual(self.raw("abra", "app", "undeploy", "-n", "a.test").returncode, 0)
        self.assertEqual(self.raw("abra", "app", "volume", "rm", "-f", "a.test", "-n").returncode, 0)
        self.assertEqual(self.raw("abra", "app", "secret", "rm", "a.test", "-a").returncode, 0)
        self.assertEqual(self.raw("abra", "app", "rm", "--force=true", "a.test").returncode, 0)
        self.assertFalse(os.path.exists(self.env_file("a.test")))
        self.assertRegex(self.raw("abra", "--version").stdout, r"^abra version ")

    def test_new_without_server_or_domain_never_prompts(self):
        self.checkout()
        self.assertFata(self.raw("abra", "app", "new", "pages", "-D", "a.test", "-n"), "--server is required")
        self.assertFata(self.raw("abra", "app", "new", "pages", "-s", "default", "-n"), "--domain is required")
        self.assertFata(self.raw("abra", "app", "remove", "a.test", "-n"), "cannot find app")

    def test_run_passes_status_output_and_maps_mounts(self):
        self.checkout()
        self.new_app("a.test")
        self.call("deploy", domain="a.test")
        p = self.run_sh("a.test", "echo out; echo err >&2; exit 3", check=False)
        self.assertEqual((p.returncode, p.stdout, p.stderr), (3, "out\n", "err\n"))
        vol = fakeswarm.Server("default", self.swarm).volume_dir("a_test_content")
        p = self.call("run", domain="a.test", service="app",
                      args=["sh", "-c", 'cd /usr/share/nginx/html && pwd && echo "$FAKE_VOLUME_CONTENT"'])
        self.assertEqual(p.stdout, "%s\n%s\n" % (vol, vol))
        # only whole path components are mapped
        p = self.call("run", domain="a.test", service="app",
                      args=["echo", "/usr/share/nginx/htmlx", "x/usr/share/nginx/html"])
        self.assertEqual(p.stdout, "/usr/share/nginx/htmlx x/usr/share/nginx/html\n")
        self.assertFata(self.call("run", check=False, domain="a.test", service="db", args=["true"]),
                        "no service db")
        self.assertEqual(self.call("run", check=False, domain="a.test", service="app",
                                   args=["/no/such/cmd"]).returncode, 127)

    def test_run_mapping_is_one_pass(self):
        loader = importlib.machinery.SourceFileLoader("fake_abra", os.path.join(SUPPORT, "abra"))
        spec = importlib.util.spec_from_loader("fake_abra", loader)
        mod = importlib.util.module_from_spec(spec)
        loader.exec_module(mod)
        mounts = [("/tmp", "/tmp/swarm/v1"), ("/data", "/tmp/swarm/v2"), ("/data/sub", "/tmp/swarm/v3")]
        self.assertEqual(mod.map_arg("cat /tmp/a /data/sub/x /data >/data/y '/data' /datax", mounts),
                         "cat /tmp/swarm/v1/a /tmp/swarm/v3/x /tmp/swarm/v2 >/tmp/swarm/v2/y "
                         "'/tmp/swarm/v2' /datax")
        self.assertEqual(mod.map_arg("/", [("/", "/x")]), "/")

    def test_compose_overlays_from_compose_file(self):
        src = os.path.join(self.tmp, "multi")
        shutil.copytree(os.path.join(EXAMPLES, "recipes", "pages"), src)
        with open(os.path.join(src, "compose.worker.yml"), "w") as f:
            f.write('version: "3.8"\nservices:\n  app:\n    deploy:\n      labels:\n'
                    '        traefik.enable: "false"\n        extra: "${DOMAIN}"\n'
                    '  worker:\n    image: "busybox:1.36"\n    volumes:\n'
                    '      - type: volume\n        source: content\n        target: /data\n'
                    '      - /etc/hosts:/etc/hosts:ro\n'
                    '    deploy: {replicas: 2}\n')
        with open(os.path.join(src, ".env.sample"), "a") as f:
            f.write("COMPOSE_FILE=compose.yml:compose.worker.yml\n")
        git(src, "init", "-q")
        git(src, "add", "-A")
        git(src, "commit", "-q", "-m", "multi")
        shutil.copytree(src, os.path.join(self.abra_dir, "recipes", "multi"))
        self.new_app("m.test", recipe="multi")
        self.call("deploy", domain="m.test")
        self.assertEqual(self.services("m.test"), ["m_test_app 1/1", "m_test_worker 2/2"])
        lab = self.labels("m.test")
        self.assertEqual((lab["traefik.enable"], lab["extra"], lab["backupbot.backup"]),
                         ("false", "m.test", "true"))
        p = self.call("run", domain="m.test", service="worker", args=["sh", "-c", "echo w > /data/f"])
        self.assertEqual(self.run_sh("m.test", "cat /usr/share/nginx/html/f").stdout, "w\n")
        self.assertEqual(p.returncode, 0)

    def test_compose_parser_reads_the_examples(self):
        for r in ("hello", "pages"):
            with open(os.path.join(EXAMPLES, "recipes", r, "compose.yml")) as f:
                doc = fakeswarm.parse_yaml(f.read())
            self.assertEqual(list(doc["services"]), ["app"])
        env = {"STACK_NAME": "p_test", "DOMAIN": "p.test", "LETS_ENCRYPT_ENV": "staging"}
        svcs = fakeswarm.load_compose(os.path.join(EXAMPLES, "recipes", "pages"), env)
        self.assertEqual(svcs["app"]["mounts"], [["content", "/usr/share/nginx/html"]])
        self.assertEqual(svcs["app"]["labels"]["coop-cloud.p_test.version"], "1.1.0+1.27.2")
        self.assertEqual(svcs["app"]["labels"]["traefik.http.routers.p_test.tls.certresolver"], "staging")
        for bad in ("a: &x 1\n", "a:\n\tb: 1\n", "a:\n  - b\n   c: 1\n"):
            with self.assertRaises(fakeswarm.ComposeError):
                fakeswarm.parse_yaml(bad)
        self.assertEqual(fakeswarm.parse_yaml("a: 'x # y' # c\nb: [1, 'two']\nc: |\n  l1\n  l2\n"),
                         {"a": "x # y", "b": ["1", "two"], "c": "l1\nl2\n"})

    # --------------------------------------------------------------- faults

    def test_fault_fail_after_and_times(self):
        self.checkout()
        self.new_app("a.test")
        self.new_app("b.test")
        rule = {"match": "app deploy", "domain": "a.test", "action": "fail", "after": 1,
                "times": 1, "message": "boom"}
        self.faults([rule])
        self.call("deploy", domain="a.test")
        self.assertFata(self.call("deploy", check=False, domain="a.test"), "boom$")
        self.call("deploy", domain="b.test")  # another domain: no match
        self.call("deploy", domain="a.test")  # times: 1 used up
        self.assertEqual(fakeswarm.fault_counts(self.swarm, 0, rule), {"seen": 3, "fired": 1})
        self.faults([{"match": "app backup", "action": "fail"}])  # a prefix of the command
        self.assertFata(self.call("backup", check=False, domain="a.test"), "injected fault: app backup create")
        self.assertFata(self.call("backup", check=False, domain="b.test"), "injected fault")

    def test_fault_hang_until_killed(self):
        self.checkout()
        self.new_app("a.test")
        self.call("deploy", domain="a.test")
        self.faults([{"match": "app backup create", "action": "hang"}])
        p = subprocess.Popen(expand(T["backup"], domain="a.test"), env=self.env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        try:
            with self.assertRaises(subprocess.TimeoutExpired):
                p.wait(timeout=1.0)
        finally:
            os.killpg(p.pid, signal.SIGTERM)
            p.communicate(timeout=10)
        self.assertEqual(p.returncode, -signal.SIGTERM)
        self.assertEqual(fakeswarm.Server("default", self.swarm).load()["snapshots"], {})
        # ignore_term: only SIGKILL ends it
        rule = {"match": "app backup create", "action": "hang", "ignore_term": True}
        self.faults([rule])
        p = subprocess.Popen(expand(T["backup"], domain="a.test"), env=self.env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        try:
            deadline = time.monotonic() + 30
            while not fakeswarm.fault_counts(self.swarm, 0, rule)["fired"]:
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.05)
            time.sleep(0.3)  # the fault has fired: SIGTERM is ignored by now
            os.killpg(p.pid, signal.SIGTERM)
            with self.assertRaises(subprocess.TimeoutExpired):
                p.wait(timeout=0.5)
        finally:
            os.killpg(p.pid, signal.SIGKILL)
            p.communicate(timeout=10)
        self.assertEqual(p.returncode, -signal.SIGKILL)

    def test_fault_lose_data_fails_the_data_check(self):
        self.checkout()
        self.new_app("a.test")
        self.call("deploy", domain="a.test")
        self.run_sh("a.test", "echo kept > %s" % MARKER_PATH)
        self.call("deploy", domain="a.test")
        self.assertEqual(self.run_sh("a.test", "cat %s" % MARKER_PATH).stdout, "kept\n")
        self.faults([{"match": "app deploy", "action": "lose-data", "times": 1}])
        self.call("deploy", domain="a.test")
        self.assertNotEqual(self.run_sh("a.test", "cat %s" % MARKER_PATH, check=False).returncode, 0)
        # lose-data on restore: it succeeds but brings nothing back
        self.run_sh("a.test", "echo again > %s" % MARKER_PATH)
        self.call("backup", domain="a.test")
        self.faults([{"match": "app restore", "action": "lose-data"}])
        self.call("restore", domain="a.test")
        self.assertNotEqual(self.run_sh("a.test", "cat %s" % MARKER_PATH, check=False).returncode, 0)

    def test_fault_unhealthy_and_start_delay(self):
        self.checkout()
        self.new_app("a.test")
        self.faults([{"match": "app deploy", "action": "unhealthy", "times": 1}])
        self.call("deploy", domain="a.test")
        self.assertEqual(self.services("a.test"), ["a_test_app 0/1"])
        self.assertFata(self.run_sh("a.test", "true", check=False), "no running container")
        env = dict(self.env, FAKE_SERVICE_START_S="0.6")
        self.call("deploy", env=env, domain="a.test")
        self.assertEqual(self.services("a.test"), ["a_test_app 0/1"])
        time.sleep(0.8)
        self.assertEqual(self.services("a.test"), ["a_test_app 1/1"])

    def test_abra_delay(self):
        self.checkout()
        env = dict(self.env, FAKE_ABRA_DELAY="0.5")
        t0 = time.monotonic()
        self.call("new", env=env, recipe="pages", server="default", domain="a.test")
        self.assertGreaterEqual(time.monotonic() - t0, 0.5)

    def test_bad_faults_file_is_an_error(self):
        self.checkout()
        self.faults([{"match": "app new", "action": "explode"}])
        self.assertFata(self.call("new", check=False, recipe="pages", server="default", domain="a.test"),
                        "faults.json: rule 0: unknown action")

    def test_delay_ranges(self):
        """FAKE_ABRA_DELAY / FAKE_DOCKER_DELAY: `N` fixed, `MIN-MAX` uniform."""
        for var in ("FAKE_ABRA_DELAY", "FAKE_DOCKER_DELAY"):
            old = os.environ.get(var)
            self.addCleanup(lambda v=var, o=old: os.environ.pop(v) if o is None
                            else os.environ.__setitem__(v, o))
            os.environ[var] = "0.02-0.3"
            got = [fakeswarm.call_delay(var) for _ in range(200)]
            self.assertTrue(all(0.02 <= x <= 0.3 for x in got), got)
            self.assertGreater(len(set(got)), 100)
            self.assertLess(min(got), 0.1)
            self.assertGreater(max(got), 0.22)
            for text, want in (("0.25", 0.25), ("", 0), ("0", 0), ("0.1-0.1", 0.1), (" 2 ", 2)):
                os.environ[var] = text
                self.assertEqual(fakeswarm.call_delay(var), want, text)
        # through the real CLIs: every call sleeps at least MIN
        env = dict(self.env, FAKE_ABRA_DELAY="0.3-0.4", FAKE_DOCKER_DELAY="0.3-0.4")
        for argv, out in ((["abra", "app", "undeploy", "nope.test", "-n"], ""),
                          (["docker", "info", "--format", "{{.Swarm.LocalNodeState}}"], "active\n")):
            t0 = time.monotonic()
            p = self.raw(*argv, env=env)
            self.assertGreaterEqual(time.monotonic() - t0, 0.3, argv)
            self.assertEqual(p.stdout, out, p.stderr)
        t0 = time.monotonic()
        p = self.raw("docker", "info", env=dict(self.env, FAKE_DOCKER_DELAY="0.5"))
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertGreaterEqual(time.monotonic() - t0, 0.5)
        # a malformed value is an error before anything is done
        for bad in ("x", "0.3-0.1", "-1", "1-", "0.1-0.2-0.3", "nan", "inf"):
            p = self.raw("abra", "app", "new", "pages", "-s", "default", "-D", "a.test", "-n",
                         env=dict(self.env, FAKE_ABRA_DELAY=bad))
            self.assertFata(p, "FAKE_ABRA_DELAY=")
            p = self.raw("docker", "info", env=dict(self.env, FAKE_DOCKER_DELAY=bad))
            self.assertEqual(p.returncode, 1, bad)
            self.assertIn("FAKE_DOCKER_DELAY=", p.stderr)

    def _many(self, argv, n, env=None):
        """n calls of argv, 4 at a time -> [CompletedProcess] in call order."""
        out = [None] * n

        def work(k):
            for i in range(k, n, 4):
                out[i] = self.raw(*argv, env=env)
        threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        return out

    def test_fault_probability(self):
        """0 never fires, 1 always, 0.5 some; a roll that fails lets a later
        rule fire."""
        rules = [{"match": "docker info", "action": "fail", "probability": 0, "message": "never"},
                 {"match": "docker info", "action": "fail", "probability": 0.5, "message": "half"},
                 {"match": "docker info", "action": "fail", "probability": 1, "message": "always"}]
        self.faults(rules)
        # 60 calls: half fires 30 times on average, sd 3.9; the bounds
        # are 5 sd out.
        n = 60
        ps = self._many(["docker", "info"], n)
        msgs = [p.stderr for p in ps]
        self.assertEqual([p.returncode for p in ps], [1] * n)
        self.assertEqual(set(msgs), {"half\n", "always\n"})
        half = msgs.count("half\n")
        self.assertTrue(10 < half < 50, half)
        self.assertEqual(fakeswarm.fault_counts(self.swarm, 0, rules[0]), {"seen": n, "fired": 0})
        self.assertEqual(fakeswarm.fault_counts(self.swarm, 1, rules[1]), {"seen": n, "fired": half})
        self.assertEqual(fakeswarm.fault_counts(self.swarm, 2, rules[2]),
                         {"seen": n, "fired": n - half})
        # `after` counts matching calls, `times` counts firings
        rule = {"match": "docker info", "action": "fail", "probability": 0.5, "after": 3,
                "times": 4, "message": "boom"}
        self.faults([rule])
        rcs = [self.raw("docker", "info").returncode for _ in range(40)]
        self.assertEqual(rcs[:3], [0, 0, 0])
        self.assertEqual(rcs.count(1), 4)
        self.assertEqual(fakeswarm.fault_counts(self.swarm, 0, rule), {"seen": 40, "fired": 4})
        # no probability: 1
        self.faults([{"match": "docker info", "action": "fail"}])
        self.assertEqual(self.raw("docker", "info").returncode, 1)
        for bad in (-0.1, 1.5, "0.5", True, None):
            self.faults([{"match": "app", "action": "fail", "probability": bad}])
            p = self.raw("abra", "app", "undeploy", "nope.test", "-n")
            self.assertFata(p, "faults.json: rule 0: probability must be a number")

    def test_fault_skip(self):
        """skip: exit 0, nothing printed, nothing changed, for abra and docker."""
        self.checkout()
        self.new_app("a.test")
        self.call("deploy", domain="a.test")
        self.run_sh("a.test", "echo kept > %s" % MARKER_PATH)
        state = os.path.join(self.swarm, "default", "state.json")

        def snapshot():
            with open(state) as f, open(self.env_file("a.test")) as g:
                return f.read(), g.read(), sorted(os.listdir(os.path.join(self.swarm, "default",
                                                                          "volumes")))
        before = snapshot()
        self.faults([{"match": "app", "action": "skip"}, {"match": "docker", "action": "skip"}])
        marker = os.path.join(self.tmp, "ran")
        for name, kw in (("undeploy", {}), ("deploy", {}), ("volume_remove", {}),
                         ("secret_remove", {}), ("remove", {}), ("backup", {}),
                         ("restore", {}), ("secret_generate", {}),
                         ("run", {"service": "app", "args": ["touch", marker]}),
                         ("services", {"server": "default", "stack": "a_test"}),
                         ("volumes", {"server": "default", "stack": "a_test"})):
            p = self.call(name, domain="a.test", **kw)
            self.assertEqual((p.returncode, p.stdout, p.stderr), (0, "", ""), name)
        p = self.call("new", recipe="pages", server="default", domain="b.test")
        self.assertEqual((p.stdout, p.stderr), ("", ""))
        self.assertFalse(os.path.exists(marker))
        self.assertFalse(os.path.exists(self.env_file("b.test")))
        self.assertEqual(snapshot(), before)
        # the teardown break of the system test: only undeploy claims success
        self.faults([{"match": "app undeploy", "action": "skip"}])
        self.call("undeploy", domain="a.test")
        self.assertIn("a_test", fakeswarm.Server("default", self.swarm).load()["stacks"])
        self.assertFata(self.call("volume_remove", check=False, domain="a.test"), ".*in use")
        self.assertEqual(self.run_sh("a.test", "cat %s" % MARKER_PATH).stdout, "kept\n")

    def test_secrets_log(self):
        """Every generated or inserted value is appended to secrets.log
        (0600), and stays there after teardown removed it from state.json."""
        d = "pages.test"
        self.checkout()
        self.call("new", recipe="pages", server="default", domain=d)
        with open(self.env_file(d), "a") as f:
            f.write("SECRET_API_KEY_VERSION=v2 # length=20\n")
        self.call("secret_generate", domain=d)
        vf = os.path.join(self.tmp, "smtp")
        with open(vf, "w") as f:
            f.write("s3cret-smtp-value\n")
        self.call("secret_insert", domain=d, secret="smtp", version="v1", file=vf)
        st = fakeswarm.Server("default", self.swarm).load()
        values = sorted(s["value"].rstrip("\n") for s in st["secrets"].values())
        self.assertEqual(len(values), 3)
        self.assertIn("s3cret-smtp-value", values)
        log = os.path.join(self.swarm, "secrets.log")
        self.assertEqual(os.stat(log).st_mode & 0o777, 0o600)
        self.assertEqual(sorted(fakeswarm.read_secrets_log(self.swarm)), values)
        with open(log) as f:
            self.assertEqual(sorted(f.read().splitlines()), values)
        # app new --secrets too; a second generate adds nothing
        self.call("secret_generate", domain=d)
        self.raw("abra", "app", "new", "pages", "-s", "default", "-D", "b.test", "-S", "-n")
        st_b = [s["value"] for n, s in fakeswarm.Server("default", self.swarm).load()["secrets"].items()
                if n.startswith("b_test_")]
        self.assertEqual(len(st_b), 1)
        self.assertEqual(sorted(fakeswarm.read_secrets_log(self.swarm)), sorted(values + st_b))
        for step in ("secret_remove", "remove"):
            self.call(step, domain=d)
        self.assertEqual(len(fakeswarm.read_secrets_log(self.swarm)), 4)
        self.assertNotIn("pages_test_smtp_v1", fakeswarm.Server("default", self.swarm).load()["secrets"])

    # ------------------------------------------------------------- parallel

    def test_two_runs_in_parallel(self):
        """Two runs with their own ABRA_DIR (servers/ shared through a
        symlink, as the harness does) and recipe checkout, one swarm."""
        envs = {}
        for name in ("one", "two"):
            ad = os.path.join(self.tmp, "run-" + name)
            os.makedirs(os.path.join(ad, "recipes"))
            os.symlink(os.path.join(self.abra_dir, "servers"), os.path.join(ad, "servers"))
            self.checkout(ref="1.0.0+1.27.1" if name == "one" else "main", abra_dir=ad)
            envs[name] = dict(self.env, ABRA_DIR=ad)
        errors = []

        def cycle(name):
            try:
                d, env = name + ".test", envs[name]
                for _ in range(3):
                    self.new_app(d, env=env)
                    self.call("deploy", env=env, domain=d)
                    self.run_sh(d, "echo %s > %s" % (name, MARKER_PATH))
                    self.call("deploy", env=env, domain=d)
                    self.call("backup", env=env, domain=d)
                    out = self.call("run", env=env, domain=d, service="app",
                                    args=["cat", MARKER_PATH]).stdout
                    if out != name + "\n":
                        errors.append("%s read %r" % (name, out))
                    for step in ("undeploy", "volume_remove", "secret_remove", "remove"):
                        self.call(step, env=env, domain=d)
            except BaseException as e:  # noqa: B902 - reported below
                errors.append("%s: %s" % (name, e))

        threads = [threading.Thread(target=cycle, args=(n,)) for n in envs]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertEqual(errors, [])
        st = fakeswarm.Server("default", self.swarm).load()
        self.assertEqual((st["stacks"], st["volumes"], st["secrets"]), ({}, {}, {}))
        self.assertEqual(sorted(st["snapshots"]), ["one_test", "two_test"])
        self.assertEqual([len(v) for _, v in sorted(st["snapshots"].items())], [3, 3])

    # --------------------------------------------------------------- docker

    def default_connection_errors(self):
        """harness.connection_errors's default, from docs/config.md (generated
        from the config's key table)."""
        with open(os.path.join(SOURCE_DIR, "docs", "config.md")) as f:
            for line in f:
                if line.startswith("| `harness.connection_errors` |"):
                    return json.loads(line.split("|")[3].strip().strip("`"))
        self.fail("no harness.connection_errors in docs/config.md")

    def test_fault_unreachable_by_server(self):
        for s in ("a", "b"):
            os.makedirs(os.path.join(self.abra_dir, "servers", s))
        self.checkout()
        for s in ("a", "b"):
            self.call("new", recipe="pages", server=s, domain="%s.test" % s)
            self.call("secret_generate", domain="%s.test" % s)
        self.faults([{"match": "app", "server": "b", "action": "unreachable"},
                     {"match": "docker", "server": "b", "action": "unreachable"}])
        patterns = self.default_connection_errors()
        self.assertIn("error during connect", patterns)

        def unreachable(p):
            self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
            self.assertEqual(p.stdout, "")
            low = p.stderr.lower()
            self.assertTrue([x for x in patterns if x in low], p.stderr)
            return p
        # abra: the server of the app's env file; nothing changes on b.
        p = unreachable(self.call("deploy", check=False, domain="b.test"))
        self.assertRegex(p.stderr, r"^FATA error during connect: .*connection refused\n$")
        self.assertEqual(fakeswarm.Server("b", self.swarm).load()["stacks"], {})
        self.call("deploy", domain="a.test")  # another server: no match
        # `app new`: the server of --server.
        unreachable(self.call("new", check=False, recipe="pages", server="b", domain="c.test"))
        self.assertFalse(os.path.exists(os.path.join(self.abra_dir, "servers", "b", "c.test.env")))
        self.call("new", recipe="pages", server="a", domain="c.test")
        # docker: the server of --context (or DOCKER_CONTEXT).
        p = unreachable(self.call("services", check=False, server="b", stack="b_test"))
        self.assertTrue(p.stderr.startswith("error during connect: "), p.stderr)
        self.assertEqual(self.call("services", server="a", stack="a_test").stdout, "a_test_app 1/1\n")
        env = dict(self.env, DOCKER_CONTEXT="b")
        unreachable(self.raw("docker", "info", "--format", "{{.Swarm.LocalNodeState}}", env=env))
        unreachable(self.raw("docker", "--context", "b", "volume", "ls", "-q"))
        # A rule without "server" matches every server; one naming a server
        # that an app has not matches no call of it.
        self.faults([{"match": "docker info", "action": "unreachable"}])
        unreachable(self.raw("docker", "--context", "a", "info", "--format",
                             "{{.Swarm.LocalNodeState}}"))
        self.faults([{"match": "app deploy", "server": "nope", "action": "unreachable"}])
        self.call("deploy", domain="b.test")

    def test_docker_info(self):
        p = self.raw("docker", "--context", "default", "info", "--format",
                     "{{.Swarm.LocalNodeState}}")
        self.assertEqual((p.returncode, p.stdout), (0, "active\n"), p.stderr)
        self.assertEqual(self.raw("docker", "info").returncode, 0)
        for argv in (["docker", "info", "--format", "{{.Name}}"], ["docker", "info", "x"],
                     ["docker", "info", "--format"]):
            p = self.raw(*argv)
            self.assertEqual(p.returncode, 1, argv)
            self.assertTrue(p.stderr, argv)
        self.faults([{"match": "docker info", "action": "fail", "message": "Error: boom"}])
        p = self.raw("docker", "info", "--format", "{{.Swarm.LocalNodeState}}")
        self.assertEqual((p.returncode, p.stderr), (1, "Error: boom\n"))
        calls = [c["argv"][1:] for c in fakeswarm.read_calls(self.swarm)]
        self.assertIn(["info", "--format", "{{.Swarm.LocalNodeState}}"], calls)

    def test_docker_usage_errors(self):
        for argv in (["docker", "ps"], ["docker", "--context", "default", "service", "ls", "--bogus"],
                     ["docker", "service", "ls", "--format", "{{.Nope}}"],
                     ["docker", "--context"], ["docker", "volume", "ls", "--filter", "driver=local"],
                     ["docker", "service", "inspect", "x_app", "--format", "{{.Spec}}"]):
            p = self.raw(*argv)
            self.assertEqual(p.returncode, 1, argv)
            self.assertTrue(p.stderr, argv)
        p = self.raw("docker", "--context", "default", "service", "inspect", "nope_app",
                     "--format", "{{json .Spec.Labels}}")
        self.assertEqual((p.returncode, p.stderr), (1, "Error: no such service: nope_app\n"))
        self.assertEqual(self.raw("docker", "--context", "empty", "volume", "ls", "-q").stdout, "")

    def test_docker_context_selects_the_server(self):
        os.makedirs(os.path.join(self.abra_dir, "servers", "other"))
        self.checkout()
        self.call("new", recipe="pages", server="other", domain="o.test")
        self.call("secret_generate", domain="o.test")
        self.call("deploy", domain="o.test")
        self.assertEqual(self.services("o.test"), [])  # context default
        out = self.call("services", server="other", stack="o_test").stdout
        self.assertEqual(out, "o_test_app 1/1\n")
        p = self.raw("docker", "--context", "other", "service", "inspect", "o_test_app",
                     "--format", '{{index .Spec.Labels "coop-cloud.o_test.version"}}')
        self.assertEqual(p.stdout, self.commits["head"][:8] + "\n")

    # -------------------------------------------------------------- gateway

    def start_gateway(self, *flags):
        pf = os.path.join(self.tmp, "port-%d" % len(flags))
        p = subprocess.Popen([sys.executable, os.path.join(SUPPORT, "gateway.py"), "--swarm", self.swarm,
                              "--port-file", pf] + list(flags), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=self.env)

        def stop():
            p.terminate()
            p.communicate(timeout=10)
        self.addCleanup(stop)
        port = int(p.stdout.readline())
        with open(pf) as f:
            self.assertEqual(int(f.read()), port)
        return port

    def get(self, port, host, path="/", method="GET"):
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), method=method,
                                     headers={"Host": host})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def test_gateway_by_host(self):
        port = self.start_gateway()
        self.checkout()
        self.new_app("a.test")
        self.assertEqual(self.get(port, "a.test")[0], 404)  # not deployed
        self.call("deploy", domain="a.test")
        status, body = self.get(port, "a.test:443")
        self.assertEqual(status, 200)
        self.assertIn(b"a.test", body)
        self.assertEqual(self.get(port, "a.test", method="HEAD"), (200, b""))
        self.run_sh("a.test", "echo hi > /usr/share/nginx/html/page.txt")
        self.assertEqual(self.get(port, "a.test", "/page.txt"), (200, b"hi\n"))
        self.assertEqual(self.get(port, "a.test", "/nope.txt")[0], 404)
        self.assertEqual(self.get(port, "a.test", "/%2e%2e/%2e%2e/state.json")[0], 404)
        self.assertEqual(self.get(port, "b.test")[0], 404)
        self.faults([{"match": "app deploy", "action": "unhealthy"}])
        self.call("deploy", domain="a.test")
        self.assertEqual(self.get(port, "a.test")[0], 502)
        self.call("undeploy", domain="a.test")
        self.assertEqual(self.get(port, "a.test")[0], 404)

    @unittest.skipUnless(shutil.which("openssl"), "needs the openssl CLI")
    def test_gateway_tls_with_sni(self):
        port = self.start_gateway("--tls")
        self.checkout()
        self.new_app("a.test")
        self.call("deploy", domain="a.test")
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE

        def get(sni, host):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                with ctx.wrap_socket(s, server_hostname=sni) as t:
                    t.sendall(("GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % host).encode())
                    data = b""
                    while True:
                        c = t.recv(65536)
                        if not c:
                            break
                        data += c
            return int(data.split(b" ", 2)[1])
        self.assertEqual(get("a.test", "a.test"), 200)
        self.assertEqual(get("other.test", "a.test"), 421)
        self.assertEqual(get("b.test", "b.test"), 404)

    # ------------------------------------------------------ example recipes

    def test_example_custom_test_against_the_gateway(self):
        port = self.start_gateway()
        self.checkout()
        self.new_app("a.test")
        self.call("deploy", domain="a.test")
        tests = os.path.join(EXAMPLES, "recipes", "pages", "tests", "test_http.py")
        env = dict(self.env, CCCI_APP_URL="https://a.test/", CCCI_APP_DOMAIN="a.test",
                   CCCI_GATEWAY="http://127.0.0.1:%d" % port, PYTHONDONTWRITEBYTECODE="1")
        p = subprocess.run([sys.executable, tests], capture_output=True, text=True, env=env, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("Ran 2 tests", p.stderr)
        self.call("undeploy", domain="a.test")  # the same test now fails
        p = subprocess.run([sys.executable, tests], capture_output=True, text=True, env=env, timeout=60)
        self.assertEqual(p.returncode, 1, p.stderr)
        env.pop("CCCI_APP_URL")
        p = subprocess.run([sys.executable, tests], capture_output=True, text=True, env=env, timeout=60)
        self.assertIn("CCCI_APP_URL is not set", p.stderr)

    def test_make_recipe_repo(self):
        repo = os.path.join(self.repos, "pages")
        self.assertEqual(git(repo, "tag", "--list").split(), ["0.9.0+1.27.0", "1.0.0+1.27.1"])
        self.assertEqual(git(repo, "describe", "--tags", "--abbrev=0", "HEAD~0"), "1.0.0+1.27.1")
        self.assertEqual(git(repo, "status", "--porcelain"), "")
        old = git(repo, "show", "1.0.0+1.27.1:compose.yml")
        self.assertIn("coop-cloud.${STACK_NAME}.version=1.0.0+1.27.1", old)
        self.assertIn("image: nginx:1.27.1\n", old)
        self.assertIn("version=1.1.0+1.27.2", git(repo, "show", "HEAD:compose.yml"))
        with open(os.path.join(EXAMPLES, "recipes", "pages", ".env.sample")) as f:
            self.assertEqual(git(repo, "show", "HEAD:.env.sample"), f.read().strip())
        # same input, same SHAs; no tags without --tags
        d2 = os.path.join(self.tmp, "again")
        out = subprocess.run([os.path.join(EXAMPLES, "make-recipe-repo"),
                              os.path.join(EXAMPLES, "recipes", "pages"), d2],
                             check=True, capture_output=True, text=True).stdout
        self.assertEqual(out.split()[-1], self.commits["head"])
        self.assertEqual(git(d2, "tag", "--list"), "")
        p = subprocess.run([os.path.join(EXAMPLES, "make-recipe-repo"),
                            os.path.join(EXAMPLES, "recipes", "pages"), d2], capture_output=True, text=True)
        self.assertEqual(p.returncode, 1)
        self.assertIn("not empty", p.stderr)

    def test_example_recipe_files(self):
        base = os.path.join(EXAMPLES, "recipes", "pages")
        with open(os.path.join(base, ".env.sample")) as f:
            sample = f.read()
        for line in ("TYPE=pages", "DOMAIN=", "SECRET_ADMIN_TOKEN_VERSION=v1"):
            self.assertIn(line, sample)
        with open(os.path.join(base, "tests", "recipe_meta.yml")) as f:
            meta = fakeswarm.parse_yaml(f.read(), "recipe_meta.yml")
        dc = meta["DATA_CHECK"]
        self.assertEqual(dc["service"], "app")
        self.assertIn("{marker}", dc["write"])
        self.assertIn(MARKER_PATH, dc["write"])
        self.assertIn(MARKER_PATH, dc["read"])
        self.assertTrue(os.path.isfile(os.path.join(base, "abra.sh")))
        # the DATA_CHECK itself works through the fake as the harness runs it
        self.checkout()
        self.new_app("a.test")
        self.call("deploy", domain="a.test")
        self.call("run", domain="a.test", service="app",
                  args=["sh", "-c", dc["write"].replace("{marker}", "ccci-xyz")])
        out = self.call("run", domain="a.test", service="app", args=["sh", "-c", dc["read"]]).stdout
        self.assertEqual(out, "ccci-xyz\n")


if __name__ == "__main__":
    unittest.main()
