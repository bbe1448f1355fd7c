"""The hook files of a recipe (docs/hooks.md) through the real `ccci harness`
and the fake abra: each one used when present, failing the tier its contract
names, the operator's copy winning over the recipe's; --tier, --keep and the
maintainer's teardown."""

import json
import os
import shutil
import struct
import subprocess
import unittest
import zlib

from test_harness import CCCI, RUN_WAIT, HarnessCase

SHOW_ENV = r"""#!/bin/sh
# Record what the hook got: its cwd and environment.
{
  echo "cwd=$(pwd)"
  for v in CCCI_APP_URL CCCI_APP_DOMAIN CCCI_STACK CCCI_SERVER CCCI_TIER \
           CCCI_HOOK CCCI_RUN_ID CCCI_RECIPE CCCI_SHA CCCI_RECIPE_CHECKOUT \
           CCCI_ARTIFACTS_DIR CCCI_HEALTH_PATH CCCI_ABRA_RUN_TEMPLATE ABRA_DIR \
           PYTHONPATH; do
    eval "echo $v=\${$v}"
  done
  echo "askpass=${GIT_ASKPASS:-none} token=${CCCI_GIT_TOKEN_FILE:-none}"
} > "$CCCI_ARTIFACTS_DIR/$CCCI_HOOK.env"
"""

# install_steps.sh creates data on the base with `abra app run`; a
# test_upgrade.py then proves it survived the upgrade.
MAKE_ADMIN = SHOW_ENV + r"""
abra app run "$CCCI_APP_DOMAIN" app --no-tty -- sh -c 'echo admin-made > /usr/share/nginx/html/admin.txt'
"""

CHECK_ADMIN = r'''
import json, os, subprocess, unittest

class T(unittest.TestCase):
    def test_admin_survived(self):
        out = subprocess.run(
            ["abra", "app", "run", os.environ["CCCI_APP_DOMAIN"], "app", "--no-tty",
             "--", "cat", "/usr/share/nginx/html/admin.txt"],
            capture_output=True, text=True, stdin=subprocess.DEVNULL)
        self.assertEqual(out.stdout.strip(), "admin-made", out.stderr)
        self.assertEqual(os.environ["CCCI_TIER"], "upgrade")
'''

FAILING_TEST = r'''
import unittest

class T(unittest.TestCase):
    def test_fails(self):
        self.fail("the recipe's own check says no")
'''

PASSING_TEST = r'''
import os, unittest

class T(unittest.TestCase):
    def test_passes(self):
        with open(os.path.join(os.environ["CCCI_ARTIFACTS_DIR"],
                               os.environ["CCCI_TIER"] + ".ran"), "w") as f:
            f.write("yes")
'''


def write(path, text, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


class HookCase(HarnessCase):

    def recipe(self, files, name="pages", src=None):
        """The example recipe with @p files ({path under the recipe: (text,
        mode)}) added, as a git repo with its release tags."""
        def edit(d):
            for rel, (text, mode) in files.items():
                write(os.path.join(d, rel), text, mode)
        kw = {} if src is None else {"src": src}
        # A fresh directory per recipe (the repo's base name is the recipe).
        self.n = getattr(self, "n", 0) + 1
        d = os.path.join(self.tmp, "r%d" % self.n)
        os.makedirs(d)
        return self.repo(name=os.path.join("r%d" % self.n, name), edit=edit, **kw)

    def op_hook(self, rel, text, mode=0o644, recipe="pages"):
        write(os.path.join(self.overlays, recipe, rel), text, mode)

    def artifact(self, run, name):
        path = os.path.join(run, "artifacts", name)
        if not os.path.exists(path):
            return None
        with open(path) as f:
            return f.read()

    def hook_env(self, run, hook):
        text = self.artifact(run, hook + ".env")
        self.assertIsNotNone(text, "%s did not run" % hook)
        return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


class TestInstallSteps(HookCase):

    def test_install_steps_runs_on_the_base_and_its_data_survives(self):
        p, res, run = self.harness(self.recipe({
            "tests/install_steps.sh": (MAKE_ADMIN, 0o755),
            "tests/test_upgrade.py": (CHECK_ADMIN, 0o644)}))
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assert_tiers(res, deploy="pass", upgrade="pass", install="pass",
                          backup="pass", restore="pass", custom="pass")
        self.assertEqual(res["level"], "L4")
        env = self.hook_env(run, "install_steps.sh")
        self.assertEqual(env["cwd"], os.path.join(run, "snapshot"))
        self.assertEqual(env["CCCI_TIER"], "install")
        self.assertEqual(env["CCCI_APP_DOMAIN"], "pages-local.ci.local")
        self.assertEqual(env["CCCI_APP_URL"], "http://pages-local.ci.local")
        self.assertEqual(env["CCCI_STACK"], "pages-local_ci_local")
        self.assertEqual(env["CCCI_SERVER"], "default")
        self.assertEqual(env["CCCI_RECIPE"], "pages")
        self.assertEqual(env["CCCI_SHA"], self.head)
        self.assertEqual(env["ABRA_DIR"], os.path.join(run, "abra"))
        self.assertEqual(env["CCCI_RECIPE_CHECKOUT"], os.path.join(run, "abra", "recipes", "pages"))
        self.assertEqual(env["CCCI_ARTIFACTS_DIR"], os.path.join(run, "artifacts"))
        self.assertEqual(json.loads(env["CCCI_ABRA_RUN_TEMPLATE"])[:4],
                         ["abra", "app", "run", "{domain}"])
        self.assertEqual(env["PYTHONPATH"].split(":")[:3],
                         [os.path.join(run, "snapshot", d) for d in ("lib", "overlay", "tests")])
        self.assertEqual(env["askpass"], "none token=none")
        # On the base, before the upgrade's redeploy of the head.
        out = p.stdout
        self.assertLess(out.index("~~~ step deploy"), out.index("install_steps.sh (the recipe's hook)"))
        self.assertLess(out.index("install_steps.sh (the recipe's hook)"), out.index("~~~ step upgrade"))
        # test_upgrade.py replaced the generic check: no DATA_CHECK marker,
        # no label check.
        self.assertFalse(res["tiers"]["upgrade"]["data_checked"])
        self.assertNotIn("version labels match", out)
        self.assertIn("test_upgrade.py: passed", out)
        # A tier test is never also a custom test.
        self.assertIn("$ python3 -m unittest -v tests/test_http.py\n", out)
        self.assert_swarm_empty()

    def test_failing_install_steps_fails_install(self):
        p, res, run = self.harness(self.recipe({
            "tests/install_steps.sh": ("#!/bin/sh\necho creating the admin\nexit 3\n", 0o755)}))
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assert_tiers(res, deploy="pass", upgrade="skip", install="fail",
                          backup="skip", restore="skip", custom="skip")
        self.assertEqual(res["level"], "L0")
        self.assertIn("install_steps.sh", res["tiers"]["install"]["reason"])
        self.assertIn("3", res["tiers"]["install"]["reason"])
        self.assertIn("install_steps.sh failed", res["tiers"]["upgrade"]["reason"])
        self.assertIn("creating the admin", p.stdout)
        self.assertTrue(res["invariants"]["teardown_clean"])
        self.assert_swarm_empty()

    def test_install_steps_not_executable(self):
        p, res, run = self.harness(self.recipe({
            "tests/install_steps.sh": ("#!/bin/sh\nexit 0\n", 0o644)}))
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertEqual(res["tiers"]["install"]["status"], "fail")
        self.assertIn("not executable", res["tiers"]["install"]["reason"])

    def test_install_steps_fails_install_even_when_install_is_not_selected(self):
        p, res, run = self.harness(self.recipe({
            "tests/install_steps.sh": ("#!/bin/sh\nexit 1\n", 0o755)}), "--tier", "upgrade")
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertEqual(res["tiers"]["install"]["status"], "fail")
        self.assertEqual(res["level"], "L0")


class TestTierTests(HookCase):

    def test_failing_test_upgrade_gives_l1(self):
        p, res, run = self.harness(self.recipe({"tests/test_upgrade.py": (FAILING_TEST, 0o644),
                                                "tests/test_upgrdae.py": (PASSING_TEST, 0o644)}))
        self.assertIn("warning: tests/test_upgrdae.py: not a hook file; did you mean "
                      "test_upgrade.py?", p.stdout)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertEqual(res["tiers"]["upgrade"]["status"], "fail")
        self.assertEqual(res["tiers"]["install"]["status"], "pass")
        self.assertEqual(res["level"], "L1")
        self.assertIn("test_upgrade.py", res["tiers"]["upgrade"]["reason"])
        self.assertIn("the recipe's own check says no", p.stdout)

    def test_test_upgrade_replaces_the_generic_check(self):
        # The generic check would fail: the labels cannot be read.
        self.faults([{"match": "docker service inspect", "action": "fail"}])
        p, res, run = self.harness(self.repo())
        self.assertEqual(res["tiers"]["upgrade"]["status"], "fail", p.stdout)
        p, res, run = self.harness(self.recipe({"tests/test_upgrade.py": (PASSING_TEST, 0o644)}),
                                   name="run2")
        self.assertEqual(res["tiers"]["upgrade"]["status"], "pass", p.stdout)
        self.assertEqual(self.artifact(run, "upgrade.ran"), "yes")

    def test_test_install_replaces_the_health_check(self):
        p, res, run = self.harness(self.recipe({"tests/test_install.py": (FAILING_TEST, 0o644)}))
        self.assertEqual(res["tiers"]["install"]["status"], "fail", p.stdout)
        self.assertIn("test_install.py", res["tiers"]["install"]["reason"])
        p, res, run = self.harness(self.recipe({"tests/test_install.py": (PASSING_TEST, 0o644)}),
                                   name="run2")
        self.assertEqual(res["tiers"]["install"]["status"], "pass", p.stdout)
        self.assertEqual(self.artifact(run, "install.ran"), "yes")

    def test_test_backup_and_restore(self):
        p, res, run = self.harness(self.recipe({
            "tests/test_backup.py": (PASSING_TEST, 0o644),
            "tests/test_restore.py": (PASSING_TEST, 0o644)}))
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(self.artifact(run, "backup.ran"), "yes")
        self.assertEqual(self.artifact(run, "restore.ran"), "yes")
        self.assertNotIn("one new snapshot", p.stdout)
        self.assertFalse(res["tiers"]["restore"]["data_checked"])
        p, res, run = self.harness(self.recipe({"tests/test_restore.py": (FAILING_TEST, 0o644)}),
                                   name="run2")
        self.assertEqual(res["tiers"]["restore"]["status"], "fail")
        self.assertEqual(res["level"], "L2")

    def test_operators_hook_wins_over_the_recipes(self):
        self.op_hook("test_upgrade.py", PASSING_TEST)
        p, res, run = self.harness(self.recipe({"tests/test_upgrade.py": (FAILING_TEST, 0o644)}))
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(res["tiers"]["upgrade"]["status"], "pass")
        self.assertIn("hook test_upgrade.py: the operator's (%s)" %
                      os.path.join(run, "snapshot", "overlay", "test_upgrade.py"), p.stdout)
        self.assertIn("$ python3 -m unittest -v overlay/test_upgrade.py\n", p.stdout)


class TestCustomHooks(HookCase):

    def test_setup_custom_tests_runs_before_the_tests(self):
        setup = SHOW_ENV + 'echo ready > "$CCCI_ARTIFACTS_DIR/setup.done"\n'
        test = r'''
import os, unittest
import ops

class T(unittest.TestCase):
    def test_setup_ran_first(self):
        with open(os.path.join(os.environ["CCCI_ARTIFACTS_DIR"], "setup.done")) as f:
            self.assertEqual(f.read().strip(), "ready")
        self.assertEqual(ops.WHO, "operator")

    def test_ccci_testlib_reaches_the_app(self):
        import ccci_testlib
        self.assertEqual(ccci_testlib.get("/").status, 200)
        self.assertEqual(ccci_testlib.wait_http("/", timeout=10).status, 200)
        out = ccci_testlib.abra_run("app", "sh", "-c", "echo from-the-app")
        self.assertIn("from-the-app", out.stdout)
'''
        self.op_hook("ops.py", "WHO = 'operator'\n")
        p, res, run = self.harness(self.recipe({
            "tests/setup_custom_tests.sh": (setup, 0o755),
            "tests/ops.py": ("WHO = 'recipe'\n", 0o644),
            "tests/test_setup.py": (test, 0o644)}))
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(res["tiers"]["custom"]["status"], "pass")
        self.assertEqual(self.hook_env(run, "setup_custom_tests.sh")["CCCI_TIER"], "custom")

    def test_failing_setup_custom_tests_is_custom_error(self):
        p, res, run = self.harness(self.recipe({
            "tests/setup_custom_tests.sh": ("#!/bin/sh\nexit 2\n", 0o755)}))
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertEqual(res["tiers"]["custom"]["status"], "error")
        self.assertIn("setup_custom_tests.sh", res["tiers"]["custom"]["reason"])
        self.assertEqual(res["level"], "L3")
        self.assertNotIn("$ python3 -m unittest -v tests/test_http.py", p.stdout)


class TestComposeOverlay(HookCase):

    def test_compose_ccci_reaches_compose_file(self):
        # hello has no backupbot label: its backup is skipped, unless the CI
        # overlay adds one.
        hello = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
            os.path.abspath(__file__)))), "examples", "recipes", "hello")
        p, res, run = self.harness(self.repo(name="hello", src=hello))
        self.assertEqual(res["tiers"]["backup"]["status"], "skip", p.stdout)
        overlay = ("version: '3.8'\nservices:\n  app:\n    deploy:\n      labels:\n"
                   "        - backupbot.backup=true\n  mail:\n    image: mailhog/mailhog\n")
        p, res, run = self.harness(self.recipe({"tests/compose.ccci.yml": (overlay, 0o644)},
                                               name="hello", src=hello),
                                   "--keep", name="run2")
        self.assertIn("COMPOSE_FILE=compose.yml:compose.ccci.yml\n", p.stdout)
        self.assertNotEqual(res["tiers"]["backup"]["status"], "skip", p.stdout)
        with open(os.path.join(self.swarm, "default", "state.json")) as f:
            stacks = json.load(f)["stacks"]
        services = [s for st in stacks.values() for s in st.get("services", {})]
        self.assertIn("mail", services, json.dumps(stacks))
        t = subprocess.run([CCCI, "harness", "--teardown", "--run-dir", run],
                           capture_output=True, text=True, env=dict(os.environ, **self.env),
                           timeout=RUN_WAIT)
        self.assertEqual(t.returncode, 0, t.stdout + t.stderr)
        self.assert_swarm_empty()


class TestScreenshot(HookCase):

    def shot_run(self, config=None, name="run"):
        self.overlay("SCREENSHOT: true\n")
        env = {}
        if config is not None:
            path = os.path.join(self.tmp, name + ".yml")
            with open(path, "w") as f:
                f.write(config)
            env["CCCI_CONFIG"] = path
        return self.harness(self.repo(name=os.path.join(name + "-src", "pages")),
                            env=env, name=name)

    @unittest.skipIf(shutil.which("chromium") is None and os.environ.get("CI") != "true",
                     "no chromium here (scripts/dev.sh installs it; CI has it)")
    def test_screenshot_is_a_png_that_opens(self):
        p, res, run = self.shot_run()
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(res["tiers"]["install"]["status"], "pass")
        self.assertEqual(res["tiers"]["install"]["artifacts"], ["artifacts/install.png"])
        self.assertEqual(res["artifacts"], ["artifacts/install.png"])
        with open(os.path.join(run, "artifacts", "install.png"), "rb") as f:
            png = f.read()
        self.assertEqual(png[:8], b"\x89PNG\r\n\x1a\n")
        width, height = struct.unpack(">II", png[16:24])
        self.assertEqual((width, height), (1280, 800))
        # It opens: every IDAT chunk inflates.
        pos, idat = 8, b""
        while pos < len(png):
            n, kind = struct.unpack(">I4s", png[pos:pos + 8])
            if kind == b"IDAT":
                idat += png[pos + 8:pos + 8 + n]
            pos += 12 + n
        self.assertGreater(len(zlib.decompress(idat)), 1280 * 800)
        self.assert_swarm_empty()

    def test_without_chromium_the_tier_says_why(self):
        p, res, run = self.shot_run(config="harness:\n  chromium: no-such-browser\n")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(res["tiers"]["install"]["status"], "pass")
        self.assertIn("screenshot: ", res["tiers"]["install"]["reason"])
        self.assertIn("no-such-browser", res["tiers"]["install"]["reason"])
        self.assertNotIn("artifacts", res["tiers"]["install"])
        self.assertFalse(os.path.exists(os.path.join(run, "artifacts", "install.png")))


class TestReproduction(HookCase):

    def run_std(self, *args, env=None):
        e = dict(os.environ, **self.env)
        e["XDG_STATE_HOME"] = os.path.join(self.tmp, "state")
        e.update(env or {})
        return subprocess.run([CCCI, "harness"] + list(args), capture_output=True,
                              text=True, env=e, timeout=RUN_WAIT)

    def test_keep_then_teardown_by_recipe(self):
        repo = self.repo()
        p = self.run_std("--recipe", repo, "--keep", "--tier", "install")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        run = os.path.join(self.tmp, "state", "ccci", "harness", "pages")
        with open(os.path.join(run, "results.json")) as f:
            res = json.load(f)
        self.assert_tiers(res, deploy="pass", upgrade="pass", install="pass",
                          backup="skip", restore="skip", custom="skip")
        self.assertIn("not selected", res["tiers"]["backup"]["reason"])
        # The tier table at the end.
        self.assertRegex(p.stdout, r"\ntier +status +duration +reason\n")
        self.assertRegex(p.stdout, r"\ninstall +pass +[0-9.]+s")
        # A second run while the first one's app is kept: refused.
        again = self.run_std("--recipe", repo)
        self.assertEqual(again.returncode, 1)
        self.assertIn("ccci harness --teardown --recipe", again.stderr)
        t = self.run_std("--teardown", "--recipe", repo)
        self.assertEqual(t.returncode, 0, t.stdout + t.stderr)
        self.assert_swarm_empty()
        again = self.run_std("--recipe", repo, "--tier", "deploy")
        self.assertEqual(again.returncode, 0, again.stdout + again.stderr)

    def test_tier_is_given_once(self):
        p = self.run_std("--recipe", self.repo(), "--tier", "install", "--tier", "backup")
        self.assertEqual(p.returncode, 64, p.stderr)


if __name__ == "__main__":
    unittest.main()
