"""One app deployed on the fake swarm of tests/support (the example recipe
`pages`, by the fake abra) and the fake gateway in front of it, plain HTTP
or TLS: what test_testlib.py and test_shot.py talk to."""

import os
import shutil
import subprocess
import sys

from itest import SOURCE_DIR, WAIT, wait_for

SUPPORT = os.path.join(SOURCE_DIR, "tests", "support")
EXAMPLE = os.path.join(SOURCE_DIR, "examples", "recipes", "pages")
MAKE_REPO = os.path.join(SOURCE_DIR, "examples", "make-recipe-repo")
RUN_TEMPLATE = ["abra", "app", "run", "{domain}", "{service}", "--no-tty", "--", "{args}"]


class FakeApp:
    """`pages` deployed as DOMAIN on server `default` under TMP; gateways
    started with gateway() are stopped by close()."""

    def __init__(self, tmp, domain="pages.test"):
        self.tmp = tmp
        self.domain = domain
        self.stack = domain.replace(".", "_")
        self.swarm = os.path.join(tmp, "swarm")
        self.abra_dir = os.path.join(tmp, "abra")
        os.makedirs(self.swarm)
        os.makedirs(os.path.join(self.abra_dir, "servers", "default"))
        os.makedirs(os.path.join(self.abra_dir, "recipes"))
        self.env = {
            "PATH": SUPPORT + os.pathsep + os.environ.get("PATH", "/usr/bin:/bin"),
            "FAKE_SWARM_DIR": self.swarm,
            "ABRA_DIR": self.abra_dir,
        }
        self.gateways = []
        repo = os.path.join(tmp, "pages.git")
        subprocess.run([MAKE_REPO, EXAMPLE, repo, "--tags"], check=True,
                       capture_output=True, timeout=WAIT)
        subprocess.run(["git", "clone", "-q", repo,
                        os.path.join(self.abra_dir, "recipes", "pages")],
                       check=True, capture_output=True, timeout=WAIT)
        for argv in (["app", "new", "pages", "--server", "default", "--domain", domain,
                      "--chaos", "--offline", "--no-input"],
                     ["app", "secret", "generate", domain, "--all", "--chaos", "--offline",
                      "--no-input"],
                     ["app", "deploy", domain, "--chaos", "--offline", "--no-input",
                      "--no-converge-checks"]):
            self.abra(*argv)

    def abra(self, *argv):
        return subprocess.run(["abra"] + list(argv), check=True, capture_output=True,
                              text=True, env=dict(os.environ, **self.env), timeout=WAIT)

    def volume(self, vol="content"):
        """The local directory of the app's volume (served by the gateway)."""
        return os.path.join(self.swarm, "default", "volumes", "%s_%s" % (self.stack, vol))

    def write(self, name, data, vol="content"):
        path = os.path.join(self.volume(vol), name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb" if isinstance(data, bytes) else "w") as f:
            f.write(data)
        return path

    def gateway(self, tls=False):
        """Start a gateway; returns its CCCI_GATEWAY value (`127.0.0.1:P`
        with TLS, `http://127.0.0.1:P` without)."""
        n = len(self.gateways)
        port_file = os.path.join(self.tmp, "gw%d.port" % n)
        log = open(os.path.join(self.tmp, "gw%d.log" % n), "wb")
        argv = [sys.executable, os.path.join(SUPPORT, "gateway.py"), "--swarm", self.swarm,
                "--port-file", port_file, "--log", os.path.join(self.tmp, "gw%d.req" % n)]
        if tls:
            argv += ["--tls", "--tls-dir", os.path.join(self.tmp, "tls%d" % n)]
        p = subprocess.Popen(argv, stdout=log, stderr=log)
        self.gateways.append((p, log))

        def port():
            if p.poll() is not None:
                raise AssertionError("gateway.py exited with %s" % p.returncode)
            if not os.path.exists(port_file):
                return None
            with open(port_file) as f:
                return f.read().strip()
        port = int(wait_for(port, what="the gateway's port"))
        return ("127.0.0.1:%d" if tls else "http://127.0.0.1:%d") % port

    def requests(self, n=0):
        """The request log lines of gateway @p n."""
        path = os.path.join(self.tmp, "gw%d.req" % n)
        if not os.path.exists(path):
            return []
        with open(path) as f:
            return f.read().splitlines()

    def close(self):
        for p, log in self.gateways:
            p.terminate()
            try:
                p.wait(WAIT)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(WAIT)
            log.close()
        self.gateways = []


def have(cmd):
    return shutil.which(cmd) is not None
