"""`ccci harness`, the real binary, against the fake abra, docker and gateway
of tests/support (docs/harness.md): levels, deploy counts, faults, SIGTERM,
timeouts, secrets, parallel runs, and a run under the daemon."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import unittest

from itest import CCCI, SOURCE_DIR, WAIT, CcciTestCase, run_cli, wait_for
from test_results_schema import SCHEMA
from test_results_schema import errors as schema_errors

SUPPORT = os.path.join(SOURCE_DIR, "tests", "support")
EXAMPLE = os.path.join(SOURCE_DIR, "examples", "recipes", "pages")
MAKE_REPO = os.path.join(SOURCE_DIR, "examples", "make-recipe-repo")
GIT_ENV = {
    "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
}
RUN_WAIT = 120


def git(cwd, *args):
    return subprocess.run(["git", "-C", cwd] + list(args), check=True,
                          capture_output=True, text=True,
                          env=dict(os.environ, **GIT_ENV)).stdout.strip()


class HarnessCase(CcciTestCase):
    """A swarm, the operator's abra dir and a gateway per test."""

    def setUp(self):
        super().setUp()
        self.swarm = os.path.join(self.tmp, "swarm")
        self.real = os.path.join(self.tmp, "real")
        self.overlays = os.path.join(self.tmp, "overlays")
        os.makedirs(os.path.join(self.real, "servers", "default"))
        os.makedirs(self.swarm)
        port_file = os.path.join(self.tmp, "gw.port")
        self.gw_log = open(os.path.join(self.tmp, "gw.log"), "wb")
        self.gw = subprocess.Popen(
            [sys.executable, os.path.join(SUPPORT, "gateway.py"), "--swarm", self.swarm,
             "--port-file", port_file], stdout=self.gw_log, stderr=self.gw_log)
        def port():
            if not os.path.exists(port_file):
                return None
            with open(port_file) as f:
                return f.read().strip()
        wait_for(port, what="the gateway's port")
        self.port = int(port())
        self.env = {
            "PATH": SUPPORT + os.pathsep + os.environ["PATH"],
            "FAKE_SWARM_DIR": self.swarm,
            "CCCI_ABRA_DIR_REAL": self.real,
            "CCCI_GATEWAY": "http://127.0.0.1:%d" % self.port,
            "CCCI_OVERLAYS_DIR": self.overlays,
            "CCCI_TEARDOWN_GRACE_S": "60",
        }

    def tearDown(self):
        self.gw.terminate()
        self.gw.wait(WAIT)
        self.gw_log.close()
        super().tearDown()

    def repo(self, name="pages", src=EXAMPLE, edit=None, tags=True):
        """The example recipe as a git repo with its release tags; @p edit
        changes a copy of the source first."""
        if edit is not None:
            copy = os.path.join(self.tmp, "src-" + name)
            shutil.copytree(src, copy)
            edit(copy)
            src = copy
        dest = os.path.join(self.tmp, name)
        out = subprocess.run([MAKE_REPO, src, dest] + (["--tags"] if tags else []),
                             check=True, capture_output=True, text=True).stdout
        self.shas = dict(line.split()[:2][::-1] for line in out.splitlines()
                         if line.startswith("release"))
        self.head = out.splitlines()[-1].split()[1]
        return dest

    def overlay(self, text, recipe="pages"):
        d = os.path.join(self.overlays, recipe)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "recipe_meta.yml"), "w") as f:
            f.write(text)

    def faults(self, rules):
        with open(os.path.join(self.swarm, "faults.json"), "w") as f:
            json.dump(rules, f)

    def harness(self, recipe, *args, env=None, name="run"):
        run_dir = os.path.join(self.tmp, name)
        e = dict(os.environ, **self.env)
        e.update(env or {})
        p = subprocess.run([CCCI, "harness", "--recipe", recipe, "--run-dir", run_dir]
                           + list(args), capture_output=True, text=True, env=e,
                           timeout=RUN_WAIT)
        return p, self.results(run_dir), run_dir

    def teardown(self, run_dir, env=None):
        """`ccci harness --teardown --run-dir` with the case's environment."""
        return subprocess.run([CCCI, "harness", "--teardown", "--run-dir", run_dir],
                              capture_output=True, text=True,
                              env=env or dict(os.environ, **self.env), timeout=RUN_WAIT)

    def results(self, run_dir):
        path = os.path.join(run_dir, "results.json")
        if not os.path.exists(path):
            return None
        with open(path) as f:
            res = json.load(f)
        # Every results.json the harness writes is valid by the schema.
        with open(SCHEMA) as f:
            schema = json.load(f)
        self.assertEqual(schema_errors(schema, res, schema), [], json.dumps(res, indent=1))
        return res

    def calls(self):
        path = os.path.join(self.swarm, "calls.log")
        if not os.path.exists(path):
            return []
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]

    def abra_calls(self, prefix):
        return [c for c in self.calls()
                if " ".join(c["argv"][1:]).startswith(prefix) and
                os.path.basename(c["argv"][0]) == "abra"]

    def assert_swarm_empty(self):
        """Nothing of any app left on the fake swarm, no env file left."""
        for server in os.listdir(self.swarm):
            st = os.path.join(self.swarm, server, "state.json")
            if not os.path.isfile(st):
                continue
            with open(st) as f:
                state = json.load(f)
            for key in ("stacks", "volumes", "secrets"):
                self.assertFalse(state.get(key), "%s left: %r" % (key, state.get(key)))
        envs = [f for f in os.listdir(os.path.join(self.real, "servers", "default"))]
        self.assertEqual(envs, [], "env files left")

    def assert_tiers(self, res, **want):
        got = {t: v["status"] for t, v in res["tiers"].items()}
        self.assertEqual(got, want, json.dumps(res, indent=1))


class TestHarnessTiers(HarnessCase):

    def test_example_reaches_l4_with_one_deploy(self):
        p, res, run = self.harness(self.repo())
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(res["level"], "L4")
        self.assertEqual(res["level_name"], "custom")
        self.assert_tiers(res, deploy="pass", upgrade="pass", install="pass",
                          backup="pass", restore="pass", custom="pass")
        self.assertEqual(res["deploys"], 1)
        self.assertEqual(res["base_version"], "1.0.0+1.27.1")
        self.assertEqual(res["sha"], self.head)
        self.assertTrue(res["tiers"]["upgrade"]["data_checked"])
        self.assertTrue(res["tiers"]["restore"]["data_checked"])
        self.assertEqual(res["invariants"], {"deploy_budget_ok": True,
                                             "teardown_clean": True,
                                             "secrets_clean": True})
        with open(os.path.join(run, "state", "deploys")) as f:
            self.assertEqual(f.read().strip(), "1")
        with open(os.path.join(run, "state", "opstate")) as f:
            self.assertEqual(f.read().split()[0], "clean")
        # Two `app deploy` calls: the base and the in-place upgrade.
        self.assertEqual(len(self.abra_calls("app deploy")), 2)
        for tier in ("deploy", "upgrade", "install", "backup", "restore", "custom",
                     "teardown"):
            self.assertIn("~~~ step %s\n" % tier, p.stdout)
        self.assertIn("$ abra app deploy pages-local.ci.local --chaos", p.stdout)
        self.assert_swarm_empty()
        # The run's ABRA_DIR is gone, the operator's servers dir is not.
        self.assertFalse(os.path.exists(os.path.join(run, "abra")))
        self.assertTrue(os.path.isdir(os.path.join(self.real, "servers", "default")))

    def test_secret_left_behind_is_not_clean(self):
        # The secrets of the app survive a failing `secret remove`: the
        # teardown check must see them (by name) and say so.
        self.faults([{"match": "app secret remove", "action": "fail"}])
        p, res, run = self.harness(self.repo())
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertFalse(res["invariants"]["secrets_clean"], p.stdout)
        # Not clean: the run's ABRA_DIR stays for `ccci harness --teardown`.
        self.assertTrue(os.path.isdir(os.path.join(run, "abra")))

    def test_failed_volume_remove_keeps_the_env_file(self):
        # `volume remove` fails once: the app's env file, which every later
        # abra call on the app needs, is kept, and `ccci harness --teardown`
        # then removes the volumes and the app.
        self.faults([{"match": "app volume remove", "action": "fail", "times": 1,
                      "message": "volume in use"}])
        p, res, run = self.harness(self.repo(), "--quick")
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertFalse(res["invariants"]["teardown_clean"], p.stdout)
        self.assertIn("keeping the env file of pages-local.ci.local", p.stdout)
        self.assertEqual(self.abra_calls("app remove"), [])
        self.assertTrue(os.path.exists(os.path.join(self.real, "servers", "default",
                                                    "pages-local.ci.local.env")))
        t = self.teardown(run)
        self.assertEqual(t.returncode, 0, t.stdout + t.stderr)
        self.assertIn("teardown clean", t.stdout)
        self.assert_swarm_empty()

    def test_maintainers_abra_dir_is_not_the_runs(self):
        # A maintainer's exported ABRA_DIR (their real abra state) is neither
        # used nor removed by a standalone run.
        mine = os.path.join(self.tmp, "my-abra")
        os.makedirs(os.path.join(mine, "servers", "default"))
        with open(os.path.join(mine, "servers", "default", "prod.example.org.env"), "w") as f:
            f.write("TYPE=pages\n")
        p, res, run = self.harness(self.repo(), env={"ABRA_DIR": mine})
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(res["level"], "L4")
        self.assertTrue(os.path.exists(
            os.path.join(mine, "servers", "default", "prod.example.org.env")))
        self.assertFalse(os.path.exists(os.path.join(mine, "recipes")))

    def test_recipe_cannot_name_a_value_file(self):
        # Only the operator's overlay may make the harness read a file into
        # a secret: the recipe's recipe_meta.yml is PR code.
        secret = os.path.join(self.tmp, "not-for-prs")
        with open(secret, "w") as f:
            f.write("operator-only-value-123\n")

        def meta(d):
            with open(os.path.join(d, "tests", "recipe_meta.yml"), "a") as f:
                f.write("SECRETS:\n  admin_token: {generate: false, value_file: %s}\n"
                        % secret)
        p, res, run = self.harness(self.repo(edit=meta), "--quick")
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("only the operator's overlay", p.stdout)
        self.assertEqual(self.abra_calls("app secret insert"), [])
        self.assertNotIn("operator-only-value-123", p.stdout + p.stderr)
        self.assert_swarm_empty()

    def test_teardown_uses_the_runs_server(self):
        # --keep on server `other`, then --teardown with no --server: the
        # opstate's server is where the app is, not the config's default.
        os.makedirs(os.path.join(self.real, "servers", "other"))
        p, res, run = self.harness(self.repo(), "--keep", "--quick", "--server", "other")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        t = self.teardown(run)
        self.assertEqual(t.returncode, 0, t.stdout + t.stderr)
        self.assertIn("--context other", t.stdout)
        self.assert_swarm_empty()
        self.assertEqual(os.listdir(os.path.join(self.real, "servers", "other")), [])

    def test_deps_count_one_deploy_each(self):
        dep = self.repo("pagesdep")
        os.makedirs(os.path.join(self.real, "recipes"))
        shutil.move(dep, os.path.join(self.real, "recipes", "pagesdep"))
        self.overlay("DEPS:\n  - recipe: pagesdep\n")
        p, res, run = self.harness(self.repo())
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(res["level"], "L4")
        self.assertEqual(res["deploys"], 2)
        self.assertTrue(res["invariants"]["deploy_budget_ok"])
        with open(os.path.join(run, "state", "deps")) as f:
            self.assertEqual(f.read(), "pagesdep-pages-local.ci.local cold\n")
        self.assertEqual(len(self.abra_calls("app deploy pagesdep-pages-local")), 1)
        self.assert_swarm_empty()

    def test_failing_upgrade_gives_l1(self):
        # The base deploys; the upgrade's redeploy fails (once).
        self.faults([{"match": "app deploy", "action": "fail", "after": 1, "times": 1,
                      "message": "upgrade boom"}])
        p, res, _ = self.harness(self.repo())
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertEqual(res["tiers"]["upgrade"]["status"], "fail")
        self.assertIn("upgrade boom", res["tiers"]["upgrade"]["reason"])
        self.assertEqual(res["tiers"]["install"]["status"], "pass")
        self.assertEqual(res["level"], "L1")
        self.assertEqual(res["deploys"], 1)
        self.assert_swarm_empty()

    def test_failing_restore_gives_l2(self):
        self.faults([{"match": "app restore", "action": "lose-data"}])
        p, res, _ = self.harness(self.repo())
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertEqual(res["tiers"]["backup"]["status"], "pass")
        self.assertEqual(res["tiers"]["restore"]["status"], "fail")
        self.assertIn("not back", res["tiers"]["restore"]["reason"])
        self.assertEqual(res["level"], "L2")
        self.assert_swarm_empty()

    def test_no_backupbot_label_skips_backup_and_restore(self):
        def drop_backupbot(d):
            path = os.path.join(d, "compose.yml")
            with open(path) as f:
                text = f.read()
            with open(path, "w") as f:
                f.write("\n".join(l for l in text.splitlines() if "backupbot" not in l) + "\n")
        p, res, _ = self.harness(self.repo(edit=drop_backupbot))
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(res["tiers"]["backup"]["status"], "skip")
        self.assertIn("no backupbot.backup label", res["tiers"]["backup"]["reason"])
        self.assertEqual(res["tiers"]["restore"]["status"], "skip")
        self.assertEqual(res["tiers"]["custom"]["status"], "pass")
        self.assertEqual(res["level"], "L2")
        self.assertEqual(len(self.abra_calls("app backup create")), 0)

    def test_skip_tiers(self):
        self.overlay("SKIP_TIERS: [custom]\n")
        p, res, _ = self.harness(self.repo())
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(res["tiers"]["custom"]["status"], "skip")
        self.assertIn("SKIP_TIERS", res["tiers"]["custom"]["reason"])
        self.assertEqual(res["level"], "L3")

    def test_quick_run(self):
        p, res, _ = self.harness(self.repo(), "--quick")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertTrue(res["quick"])
        self.assert_tiers(res, deploy="pass", install="pass")
        self.assertEqual(res["level"], "L1")
        self.assertEqual(res["deploys"], 1)
        self.assertIsNone(res["base_version"])
        # The head deployed directly: one deploy, never a release checkout.
        self.assertEqual(len(self.abra_calls("app deploy")), 1)
        self.assertNotIn("checkout -q -f 1.0.0", p.stdout)

    def test_no_release_deploys_head_and_skips_upgrade(self):
        p, res, _ = self.harness(self.repo(tags=False))
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(res["tiers"]["upgrade"]["status"], "skip")
        self.assertIn("no release tag", res["tiers"]["upgrade"]["reason"])
        self.assertEqual(res["level"], "L1")

    def test_hung_deploy_killed_at_deploy_timeout(self):
        self.overlay("DEPLOY_TIMEOUT: 2s\n")
        self.faults([{"match": "app deploy", "action": "hang", "ignore_term": True}])
        t0 = time.monotonic()
        p, res, _ = self.harness(self.repo())
        self.assertLess(time.monotonic() - t0, 60)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertEqual(res["tiers"]["deploy"]["status"], "fail")
        self.assertIn("DEPLOY_TIMEOUT", res["tiers"]["deploy"]["reason"])
        for t in ("upgrade", "install", "backup", "restore", "custom"):
            self.assertEqual(res["tiers"][t]["status"], "skip")
        self.assertEqual(res["level"], "L0")
        self.assert_swarm_empty()
        self.assertTrue(res["invariants"]["teardown_clean"])

    def test_meta_typo_is_an_error(self):
        def typo(d):
            with open(os.path.join(d, "tests", "recipe_meta.yml"), "w") as f:
                f.write("# settings\nHEALTH_PATH: /\nUPGRADE_BASE_VERISON: 1.0.0+1.27.1\n")
        p, res, run = self.harness(self.repo(edit=typo))
        want = ("recipe_meta.yml:3:1: unknown key 'UPGRADE_BASE_VERISON'; "
                "did you mean 'UPGRADE_BASE_VERSION'?")
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn(want, res["error"])
        self.assertIn(want, p.stdout)
        self.assertEqual(list(res["tiers"]), ["deploy"])
        self.assertEqual(res["tiers"]["deploy"]["status"], "error")
        self.assertEqual(res["level"], "L0")
        self.assertEqual(self.abra_calls("app new"), [])
        # Nothing deployed, so no deploys file: the daemon reports a failure,
        # not deploy-budget.
        self.assertFalse(os.path.exists(os.path.join(run, "state", "deploys")))

    def test_generated_secrets_never_in_output(self):
        repo = self.repo()
        p, res, run = self.harness(repo, "--keep")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("generated 1 secret (values withheld)", p.stdout)
        with open(os.path.join(self.swarm, "default", "state.json")) as f:
            state = json.load(f)
        values = [s["value"] for s in state["secrets"].values()]
        self.assertTrue(values)
        with open(os.path.join(run, "results.json")) as f:
            results_text = f.read()
        for v in values:
            self.assertGreaterEqual(len(v), 8)
            self.assertNotIn(v, p.stdout + p.stderr)
            self.assertNotIn(v, results_text)
        # --keep left it deployed; --teardown removes it and exits 0.
        e = dict(os.environ, **self.env)
        t = self.teardown(run, env=e)
        self.assertEqual(t.returncode, 0, t.stdout + t.stderr)
        for v in values:
            self.assertNotIn(v, t.stdout + t.stderr)
        self.assert_swarm_empty()
        t = self.teardown(run, env=e)
        self.assertEqual(t.returncode, 0, "teardown is idempotent: " + t.stdout)

    def test_env_and_secret_value_file(self):
        value_file = os.path.join(self.tmp, "token.txt")
        value = "inserted-token-value-0123456789"
        with open(value_file, "w") as f:
            f.write(value + "\n")
        self.overlay("ENV:\n  EXTRA_SETTING: hello-env\n"
                     "SECRETS:\n  admin_token: {generate: false, value_file: %s}\n"
                     % value_file)
        p, res, run = self.harness(self.repo(), "--keep", "--quick")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        env_file = os.path.join(self.real, "servers", "default", "pages-local.ci.local.env")
        with open(env_file) as f:
            env = f.read()
        self.assertIn("EXTRA_SETTING=hello-env\n", env)
        self.assertIn("SECRET_ADMIN_TOKEN_VERSION=v1 # generate=false\n", env)
        self.assertIn("TIMEOUT=600\n", env)
        with open(os.path.join(self.swarm, "default", "state.json")) as f:
            state = json.load(f)
        self.assertEqual([s["value"].rstrip("\n") for s in state["secrets"].values()], [value])
        self.assertIn("generated 0 secrets (values withheld)", p.stdout)
        self.assertNotIn(value, p.stdout + p.stderr)
        self.assertEqual(len(self.abra_calls("app secret insert")), 1)
        t = self.teardown(run)
        self.assertEqual(t.returncode, 0, t.stdout + t.stderr)
        self.assert_swarm_empty()

    def test_abra_missing_exits_127(self):
        bindir = os.path.join(self.tmp, "bin")
        os.makedirs(bindir)
        os.symlink(os.path.join(SUPPORT, "docker"), os.path.join(bindir, "docker"))
        path = bindir + os.pathsep + "/usr/bin:/bin"
        p, res, _ = self.harness(self.repo(), env={"PATH": path})
        self.assertEqual(p.returncode, 127, p.stdout + p.stderr)
        self.assertEqual(res["tiers"]["deploy"]["status"], "error")
        self.assertIn("could not be executed", res["tiers"]["deploy"]["reason"])

    def test_usage_error(self):
        p = subprocess.run([CCCI, "harness", "--bogus"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 64)
        self.assertIn("unknown argument '--bogus'", p.stderr)


class TestHarnessSignals(HarnessCase):

    def test_sigterm_during_backup_tears_down(self):
        self.faults([{"match": "app backup create", "action": "hang"}])
        repo = self.repo()
        run = os.path.join(self.tmp, "run")
        out = open(os.path.join(self.tmp, "out.txt"), "w+")
        proc = subprocess.Popen([CCCI, "harness", "--recipe", repo, "--run-dir", run],
                                stdout=out, stderr=subprocess.STDOUT,
                                env=dict(os.environ, **self.env))
        try:
            wait_for(lambda: self.abra_calls("app backup create"), RUN_WAIT,
                     "the backup to start")
            time.sleep(0.3)
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(proc.wait(RUN_WAIT), 143)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        res = self.results(run)
        self.assertEqual(res["tiers"]["backup"]["status"], "cancelled")
        self.assertEqual(res["tiers"]["restore"]["status"], "skip")
        self.assertEqual(res["tiers"]["custom"]["status"], "skip")
        self.assertIn("SIGTERM", res["error"])
        self.assertTrue(res["invariants"]["teardown_clean"])
        self.assert_swarm_empty()
        out.seek(0)
        self.assertIn("~~~ step teardown", out.read())
        out.close()


class TestHarnessParallel(HarnessCase):

    def test_two_prs_in_parallel_keep_their_checkouts(self):
        repo = self.repo()
        # PR 2: one more commit on top of the head.
        git(repo, "checkout", "-q", "-b", "pr2")
        with open(os.path.join(repo, "README.md"), "a") as f:
            f.write("\nPR 2\n")
        git(repo, "commit", "-qam", "pr 2")
        sha2 = git(repo, "rev-parse", "HEAD")
        git(repo, "checkout", "-q", self.head)
        procs = []
        for pr, sha in ((1, self.head), (2, sha2)):
            run = os.path.join(self.tmp, "run%d" % pr)
            os.makedirs(os.path.join(run, "state"))
            e = dict(os.environ, **self.env)
            e.update({
                "CCCI_RUN_ID": "r%d" % pr, "CCCI_RECIPE": "pages", "CCCI_RECIPE_DIR": repo,
                "CCCI_SHA": sha, "CCCI_PR": str(pr), "CCCI_QUICK": "0",
                "CCCI_DOMAIN": "pages-pr%d.ci.local" % pr,
                "CCCI_RESULTS_FILE": os.path.join(run, "results.json"),
                "CCCI_DEPLOYS_FILE": os.path.join(run, "state", "deploys"),
                "CCCI_OPSTATE_FILE": os.path.join(run, "state", "opstate"),
                "CCCI_DEPS_FILE": os.path.join(run, "state", "deps"),
                "CCCI_DEPSKIP_FILE": os.path.join(run, "state", "depskip"),
                "ABRA_DIR": os.path.join(run, "abra"),
                "CCCI_DEADLINE_IN": "300",
                "FAKE_ABRA_DELAY": "0.05",
            })
            procs.append((pr, sha, run, subprocess.Popen(
                [CCCI, "harness"], env=e, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, text=True)))
        for pr, sha, run, proc in procs:
            out, _ = proc.communicate(timeout=RUN_WAIT)
            self.assertEqual(proc.returncode, 0, out)
            res = self.results(run)
            self.assertEqual(res["sha"], sha)
            self.assertEqual(res["pr"], pr)
            self.assertEqual(res["level"], "L4")
        # Each run's abra calls used its own ABRA_DIR (so its own checkout).
        for c in self.calls():
            if os.path.basename(c["argv"][0]) != "abra":
                continue
            dom = [a for a in c["argv"] if a.startswith("pages-pr")]
            if dom:
                n = dom[0][len("pages-pr")]
                self.assertEqual(c["abra_dir"], os.path.join(self.tmp, "run" + n, "abra"))
        self.assert_swarm_empty()


class TestHarnessUnderDaemon(HarnessCase):

    def start_daemon(self):
        # What an operator sets: the harness.* keys; the fakes' own variables
        # through harness.env.
        env_lines = "".join("    %s: %s\n" % (k, json.dumps(v)) for k, v in self.env.items()
                            if k.startswith("FAKE_"))
        d = self.daemon(config=(
            "teardown_grace: 60s\n"
            "harness:\n"
            "  command: [%s, harness]\n"
            "  teardown_command: [%s, harness, --teardown]\n"
            "  abra_dir: %s\n"
            "  overlays_dir: %s\n"
            "  gateway: %s\n"
            "  env:\n%s" % (CCCI, CCCI, self.real, self.overlays, self.env["CCCI_GATEWAY"],
                             env_lines)),
            env={"PATH": self.env["PATH"]})
        d.start()
        return d

    def test_cancel_during_backup_tears_down(self):
        self.faults([{"match": "app backup create", "action": "hang"}])
        repo = self.repo()
        d = self.start_daemon()
        p = run_cli("-s", d.socket, "submit", repo)
        self.assertEqual(p.returncode, 0, p.stderr)
        run_id = p.stdout.strip().split()[-1]
        wait_for(lambda: self.abra_calls("app backup create"), RUN_WAIT, "the backup")
        c = run_cli("-s", d.socket, "cancel", run_id)
        self.assertEqual(c.returncode, 0, c.stdout + c.stderr)
        t = run_cli("-s", d.socket, "tail", run_id, timeout=RUN_WAIT)
        self.assertEqual(t.returncode, 2, t.stdout + t.stderr)  # cancelled
        s = json.loads(run_cli("-s", d.socket, "--json", "show", run_id).stdout)
        self.assertEqual(s["reason"], "cancelled", t.stdout)
        with open(os.path.join(s["dir"], "results.json")) as f:
            res = json.load(f)
        self.assertEqual(res["tiers"]["backup"]["status"], "cancelled")
        self.assertTrue(res["invariants"]["teardown_clean"])
        # A cancelled run reports no level, whatever the harness wrote.
        text = run_cli("-s", d.socket, "show", run_id).stdout
        self.assertRegex(text, r"(?m)^level +none \(reason cancelled\)$")
        self.assertRegex(text, r"(?m)^  backup +cancelled ")
        self.assert_swarm_empty()

    def test_submit_goes_through_every_tier(self):
        repo = self.repo()
        d = self.start_daemon()
        p = run_cli("-s", d.socket, "submit", repo)
        self.assertEqual(p.returncode, 0, p.stderr)
        run_id = p.stdout.strip().split()[-1]
        t = run_cli("-s", d.socket, "tail", run_id, timeout=RUN_WAIT)
        self.assertEqual(t.returncode, 0, t.stdout + t.stderr + d.logtext())
        s = run_cli("-s", d.socket, "--json", "show", run_id)
        self.assertEqual(s.returncode, 0, s.stdout + s.stderr)
        shown = json.loads(s.stdout)
        steps = [st["name"] for st in shown["steps"]]
        for tier in ("deploy", "upgrade", "install", "backup", "restore", "custom",
                     "teardown"):
            self.assertEqual(steps.count(tier), 1, steps)
        text = run_cli("-s", d.socket, "show", run_id).stdout
        self.assertIn("L4", text)
        self.assert_swarm_empty()


if __name__ == "__main__":
    unittest.main()
