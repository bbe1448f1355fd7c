"""`ccci harness` and its servers (issue 17, docs/harness.md): connection
errors in abra's and docker's output stop the tiers and are counted in
state/server, `ccci harness --probe`, and a standalone run on a server of
the config's `servers:` pool. The real binary against the fakes of
tests/support."""

import json
import os
import re
import shutil
import subprocess
import time
import unittest

from itest import CCCI
from test_harness import RUN_WAIT, HarnessCase


SERVER_FILE_RE = (r"\Aserver (?P<server>\S+)\nreached (?P<reached>\d+)\n"
                  r"connection_errors (?P<errors>\d+)\n(?:error (?P<error>[^\n]+)\n)?"
                  r"(?:unreachable (?P<unreachable>[^\n]+)\n)?\Z")


class TestHarnessServers(HarnessCase):
    """Connection errors, state/server, the probe and the servers: pool."""

    def setUp(self):
        super().setUp()
        for s in ("a", "b"):
            os.makedirs(os.path.join(self.real, "servers", s))

    def server_file(self, path):
        with open(path) as f:
            text = f.read()
        m = re.match(SERVER_FILE_RE, text)
        self.assertIsNotNone(m, "state/server: %r" % text)
        return m.groupdict(), text

    def daemon_env(self, run, server="b", domain="pages-pr1.b.test", **extra):
        """The environment the daemon gives a run (docs/harness-contract.md)."""
        os.makedirs(os.path.join(run, "state"), exist_ok=True)
        e = {
            "CCCI_RUN_ID": "r1", "CCCI_RECIPE": "pages", "CCCI_PR": "1", "CCCI_QUICK": "0",
            "CCCI_DOMAIN": domain, "CCCI_SERVER": server,
            "CCCI_RESULTS_FILE": os.path.join(run, "results.json"),
            "CCCI_DEPLOYS_FILE": os.path.join(run, "state", "deploys"),
            "CCCI_OPSTATE_FILE": os.path.join(run, "state", "opstate"),
            "CCCI_DEPS_FILE": os.path.join(run, "state", "deps"),
            "CCCI_DEPSKIP_FILE": os.path.join(run, "state", "depskip"),
            "CCCI_SERVER_FILE": os.path.join(run, "state", "server"),
            "ABRA_DIR": os.path.join(run, "abra"),
            "CCCI_DEADLINE_IN": "300",
        }
        e.update(extra)
        return e

    def run_daemon_env(self, repo, env):
        e = dict(os.environ, **self.env)
        e.update(env)
        p = subprocess.run([CCCI, "harness"], env=e, capture_output=True, text=True,
                           timeout=RUN_WAIT)
        return p, self.results(os.path.dirname(env["CCCI_RESULTS_FILE"]))

    def test_unreachable_mid_run_stops_the_tiers(self):
        # Server b answers until the backup, then neither abra nor docker
        # reaches it: the backup and every later tier are errors naming it,
        # the teardown is tried and ends at its first connection error.
        self.faults([{"match": "app backup create", "server": "b", "action": "unreachable"},
                     {"match": "app undeploy", "server": "b", "action": "unreachable"}])
        run = os.path.join(self.tmp, "run")
        env = self.daemon_env(run, CCCI_RECIPE_DIR=self.repo(), CCCI_SHA=self.head,
                              CCCI_SERVER_FILE=os.path.join(run, "state", "srv"))
        t0 = time.monotonic()
        p, res = self.run_daemon_env(None, env)
        self.assertLess(time.monotonic() - t0, 60, "no long retries")
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        why = "server b unreachable: error during connect"
        self.assert_tiers(res, deploy="pass", upgrade="pass", install="pass",
                          backup="error", restore="error", custom="error")
        for t in ("backup", "restore", "custom"):
            self.assertEqual(res["tiers"][t]["reason"], why)
        self.assertEqual(res["error"], why)
        self.assertFalse(res["invariants"]["teardown_clean"])
        # The teardown stopped at once: no call after the failed undeploy.
        self.assertEqual(self.abra_calls("app volume remove"), [])
        self.assertIn("teardown stopped: " + why, p.stdout)
        # No `app restore`, no custom test: the tiers did not run.
        self.assertEqual(self.abra_calls("app restore"), [])
        got, text = self.server_file(env["CCCI_SERVER_FILE"])
        # Two in a row at the end: the backup, then the teardown's undeploy.
        self.assertEqual(got["server"], "b")
        self.assertEqual(got["errors"], "2")
        self.assertEqual(got["error"], "error during connect")
        self.assertEqual(got["unreachable"], "error during connect")
        self.assertGreater(int(got["reached"]), 5)
        # Only counts and the configured text: no call output, no secret.
        with open(os.path.join(self.swarm, "b", "state.json")) as f:
            values = [v["value"] for v in json.load(f)["secrets"].values()]
        self.assertTrue(values)
        for v in values + ["FATA", "dial tcp", "192.0.2.1", "http://"]:
            self.assertNotIn(v, text)
        with open(env["CCCI_OPSTATE_FILE"]) as f:
            self.assertEqual(f.read().split()[0], "deployed")  # for the janitor
        # Once b answers again, --teardown (the daemon's teardown_command)
        # removes the rest; its counts go on in the same file.
        self.faults([])
        e = dict(os.environ, **self.env)
        e.update(env)
        t = subprocess.run([CCCI, "harness", "--teardown"], env=e, capture_output=True,
                           text=True, timeout=RUN_WAIT)
        self.assertEqual(t.returncode, 0, t.stdout + t.stderr)
        after, _ = self.server_file(env["CCCI_SERVER_FILE"])
        self.assertEqual(after["errors"], "0")
        self.assertIsNone(after["error"])
        # The run stopped at a connection error: that line stays.
        self.assertEqual(after["unreachable"], "error during connect")
        self.assertGreater(int(after["reached"]), int(got["reached"]))
        self.assert_swarm_empty()

    def test_unreachable_once_then_teardown_reaches_it(self):
        # Standalone: state/server in the run dir. The server is back for
        # the teardown, which is clean; the run still exits 2.
        self.faults([{"match": "docker service inspect", "action": "unreachable", "times": 1}])
        p, res, run = self.harness(self.repo())
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        why = "server default unreachable: error during connect"
        self.assertEqual(res["tiers"]["upgrade"]["status"], "error")
        self.assertEqual(res["tiers"]["upgrade"]["reason"], why)
        for t in ("install", "backup", "restore", "custom"):
            self.assertEqual(res["tiers"][t], dict(res["tiers"][t], status="error", reason=why))
        self.assertEqual(res["error"], why)
        self.assertTrue(res["invariants"]["teardown_clean"])
        got, _ = self.server_file(os.path.join(run, "state", "server"))
        # The teardown reached it: no error in a row at the end, but the
        # sticky line says the run was stopped by an unreachable server.
        self.assertEqual((got["server"], got["errors"], got["error"], got["unreachable"]),
                         ("default", "0", None, "error during connect"))
        self.assert_swarm_empty()

    def test_unreachable_first_in_the_teardown(self):
        # Every tier passed; the server is gone for the teardown: still not
        # the recipe's failure (exit 2), and the sticky line is written.
        self.faults([{"match": "app undeploy", "action": "unreachable"}])
        p, res, run = self.harness(self.repo(), "--quick")
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        self.assert_tiers(res, deploy="pass", install="pass")
        self.assertEqual(res["error"], "server default unreachable: error during connect")
        self.assertFalse(res["invariants"]["teardown_clean"])
        got, _ = self.server_file(os.path.join(run, "state", "server"))
        self.assertEqual((got["errors"], got["error"], got["unreachable"]),
                         ("1", "error during connect", "error during connect"))

    def test_failure_that_is_not_a_connection_error(self):
        # A failing call whose output names no connection error is the
        # recipe's failure (exit 1), and state/server counts no error.
        self.faults([{"match": "app backup create", "action": "fail",
                      "message": "backupbot: no such volume"}])
        p, res, run = self.harness(self.repo())
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertEqual(res["tiers"]["backup"]["status"], "fail")
        self.assertEqual(res["tiers"]["custom"]["status"], "pass")
        got, _ = self.server_file(os.path.join(run, "state", "server"))
        self.assertEqual((got["errors"], got["unreachable"]), ("0", None))
        self.assertGreater(int(got["reached"]), 5)

    def config(self, text):
        path = os.path.join(self.tmp, "ccci.yml")
        with open(path, "w") as f:
            f.write(text)
        return path

    def probe(self, *args, env=None):
        e = dict(os.environ, **self.env)
        e.update(env or {})
        return subprocess.run([CCCI, "harness", "--probe"] + list(args), env=e,
                              capture_output=True, text=True, timeout=RUN_WAIT)

    def test_probe_exit_codes(self):
        p = self.probe("--server", "b")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("$ docker --context b info --format '{{.Swarm.LocalNodeState}}'",
                      p.stdout)
        self.assertIn("server b reached", p.stdout)
        self.faults([{"match": "docker info", "server": "b", "action": "unreachable"}])
        p = self.probe("--server", "b")
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertEqual(p.stderr, "server b unreachable: error during connect\n")
        # Under the daemon: CCCI_SERVER names the server.
        self.assertEqual(self.probe(env={"CCCI_SERVER": "b"}).returncode, 1)
        self.assertEqual(self.probe(env={"CCCI_SERVER": "a"}).returncode, 0)
        self.faults([{"match": "docker info", "action": "fail", "message": "Error: boom"}])
        p = self.probe("--server", "a")
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        self.assertIn("server a: the probe exited with status 1: Error: boom", p.stderr)
        bindir = os.path.join(self.tmp, "nodocker")
        os.makedirs(bindir)
        p = self.probe("--server", "a", env={"PATH": bindir + os.pathsep + "/usr/bin:/bin"})
        if shutil.which("docker", path="/usr/bin:/bin") is None:
            self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
            self.assertIn("could not be executed", p.stderr)
        self.assertEqual(self.probe("--quick").returncode, 64)
        self.assertEqual(self.probe("--server").returncode, 64)
        # The template is the config's harness.abra.probe, with the daemon's
        # CCCI_CONFIG; an abra template runs with the operator's abra dir.
        cfg = self.config("harness:\n  abra_dir: %s\n  abra:\n"
                          "    probe: [abra, app, backup, snapshots, \"x.{server}\", -n]\n"
                          % self.real)
        self.faults([{"match": "app backup snapshots", "action": "unreachable"}])
        p = self.probe("--server", "a", env={"CCCI_CONFIG": cfg})
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("$ abra app backup snapshots x.a -n", p.stdout)
        calls = self.abra_calls("app backup snapshots x.a")
        self.assertEqual(calls[-1]["abra_dir"], self.real)

    def test_standalone_server_of_the_pool(self):
        # servers: gives --server a its own domain suffix and gateway (the
        # right one); harness.gateway and b's are wrong.
        env = dict(self.env)
        del env["CCCI_GATEWAY"]
        self.env = env
        cfg = self.config(
            "harness:\n  domain_suffix: ci.local\n  gateway: http://127.0.0.1:1\n"
            "servers:\n"
            "  - {name: a, domain_suffix: a.test, gateway: \"http://127.0.0.1:%d\"}\n"
            "  - {name: b, domain_suffix: b.test, gateway: \"http://127.0.0.1:1\"}\n"
            % self.port)
        self.env["CCCI_CONFIG"] = cfg
        p, res, run = self.harness(self.repo(), "--server", "a", "--quick", "--keep")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(res["domain"], "pages-local.a.test")
        self.assertEqual(res["server"], "a")
        self.assertEqual(res["level"], "L1")
        self.assertTrue(os.path.isfile(os.path.join(self.real, "servers", "a",
                                                    "pages-local.a.test.env")))
        t = subprocess.run([CCCI, "harness", "--teardown", "--run-dir", run],
                           capture_output=True, text=True,
                           env=dict(os.environ, **self.env), timeout=RUN_WAIT)
        self.assertEqual(t.returncode, 0, t.stdout + t.stderr)
        self.assertEqual(os.listdir(os.path.join(self.real, "servers", "a")), [])
        # A server the pool does not have is a usage error naming the pool.
        p, _, _ = self.harness(self.repo("pages2"), "--server", "c", name="run-c")
        self.assertEqual(p.returncode, 64, p.stdout + p.stderr)
        self.assertIn("servers: a, b", p.stderr)
        # Under the daemon the environment wins: b's config gateway is wrong,
        # CCCI_GATEWAY is right.
        run = os.path.join(self.tmp, "run-b")
        env = self.daemon_env(run, CCCI_RECIPE_DIR=self.repo("pages3"), CCCI_QUICK="1",
                              CCCI_GATEWAY="http://127.0.0.1:%d" % self.port,
                              CCCI_GATEWAY_INSECURE="0")
        p, res = self.run_daemon_env(None, env)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(res["domain"], "pages-pr1.b.test")
        self.assertEqual(res["level"], "L1")
        self.assert_swarm_empty()


if __name__ == "__main__":
    unittest.main()
