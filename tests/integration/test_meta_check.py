"""`ccci meta check DIR` as a recipe maintainer runs it: a table of broken
recipe_meta.yml files and hook layouts, each with its exact error line and
exit 1; valid recipes with the effective customisation (default, recipe,
operator, the operator winning per key and per hook); --json; usage errors.

Standard library only, and no shared helper module: the real binary at
$CCCI_BIN in a private temporary directory."""

import json
import os
import shutil
import subprocess
import tempfile
import unittest

CCCI = os.environ.get("CCCI_BIN") or shutil.which("ccci")
SOURCE_DIR = os.environ.get(
    "CCCI_SOURCE_DIR",
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
)

META = "tests/recipe_meta.yml"
TIERS = "(upgrade, install, backup, restore, custom)"
RECIPE_NAME = (
    "a recipe name, like mariadb (lowercase letters, digits and '-', not at "
    "either end; at most 61)"
)

# name, the recipe's files, the operator's overlay files (None: no
# --overlays), the abra dir's files, the exact error lines. A file's value
# is its text; ("x", text) an executable file; ("link", target) a symbolic
# link; ("dir",) a directory.
TABLE = [
    (
        "unknown key, nearest named",
        {META: "HEALTH_PATH: /\nHEALTH_PTAH: /x\n"},
        None,
        {},
        [META + ":2:1: unknown key 'HEALTH_PTAH'; did you mean 'HEALTH_PATH'?"],
    ),
    (
        "nested unknown key",
        {META: "DEPS:\n  - recipe: mariadb\n    verison: 1.0.0\n"},
        None,
        {"recipes/mariadb/README.md": ""},
        [
            META + ":3:5: unknown key 'DEPS[0].verison'; did you mean "
            "'DEPS[0].version'?"
        ],
    ),
    (
        "wrong types",
        {META: "SCREENSHOT: yes please\nSERVICES: app\n"},
        None,
        {},
        [
            META + ":1:1: SCREENSHOT: expected true or false, got 'yes please'",
            META + ":2:1: SERVICES: expected a list of compose service names, "
            "like [app, db], got a scalar",
        ],
    ),
    (
        "YAML syntax",
        {META: "HEALTH_PATH: [/\n"},
        None,
        {},
        None,  # checked by prefix below: libyaml's own words
    ),
    (
        "unknown tiers name the nearest; deploy always runs",
        {META: "SKIP_TIERS: [bakup]\nQUICK_TIERS: [install, deploy]\n"},
        None,
        {},
        [
            META + ":1:14: SKIP_TIERS[0]: expected a list of tiers " + TIERS
            + ", got 'bakup'; did you mean 'backup'?",
            META + ":2:24: QUICK_TIERS[1]: expected a list of tiers " + TIERS
            + ", got 'deploy'; deploy always runs (it is not skipped or chosen)",
        ],
    ),
    (
        "DEPS names that are no recipe name",
        {META: "DEPS:\n  - recipe: My_DB\n  - recipe: a.b\n"},
        None,
        {},
        [
            META + ":2:5: DEPS[0].recipe: expected " + RECIPE_NAME
            + ", got 'My_DB'",
            META + ":3:5: DEPS[1].recipe: expected " + RECIPE_NAME
            + ", got 'a.b'",
        ],
    ),
    (
        "a DEPS recipe whose own recipe_meta.yml does not parse",
        {META: "# deps\nDEPS: [{recipe: mariadb}]\n"},
        None,
        {"recipes/mariadb/tests/recipe_meta.yml": "BACKUP: maybe\n"},
        [
            "{abra}/recipes/mariadb/tests/recipe_meta.yml:1:1: BACKUP: "
            "expected true or false, got 'maybe'"
        ],
    ),
    (
        "a recipe depending on itself",
        {META: "DEPS: [{recipe: myapp}]\n"},
        None,
        {"recipes/myapp/README.md": ""},
        [META + ":1:1: DEPS[0]: a recipe cannot depend on itself (myapp)"],
    ),
    (
        "install_steps.sh not executable",
        {"tests/install_steps.sh": "#!/bin/sh\n"},
        None,
        {},
        [
            "tests/install_steps.sh: not executable (the harness runs it "
            "directly: chmod +x tests/install_steps.sh, and commit the mode)"
        ],
    ),
    (
        "setup_custom_tests.sh a dangling link",
        {"tests/setup_custom_tests.sh": ("link", "nowhere.sh")},
        None,
        {},
        [
            "tests/setup_custom_tests.sh: a dangling symbolic link "
            "(setup_custom_tests.sh fails when used)"
        ],
    ),
    (
        "a hook that is a directory",
        {"tests/ops.py": ("dir",)},
        None,
        {},
        [
            "tests/ops.py: not a regular file (the harness ignores a "
            "directory of a hook's name)"
        ],
    ),
    (
        "test_<tier>.py of a tier without a check",
        {"tests/test_deploy.py": "", "tests/test_login.py": ""},
        None,
        {},
        [
            "tests/test_deploy.py: the deploy tier has no check a test "
            "replaces (tier tests are test_upgrade.py, test_install.py, "
            "test_backup.py and test_restore.py); a custom test needs another "
            "name"
        ],
    ),
    (
        "a hook name one edit off",
        {"tests/test_instal.py": "", "tests/install-steps.sh": ("x", "")},
        None,
        {},
        [
            "tests/install-steps.sh: not a hook file; did you mean "
            "install_steps.sh? (as it is named, the harness does not use it as "
            "one)",
            "tests/test_instal.py: not a hook file; did you mean "
            "test_install.py? (as it is named, the harness does not use it as "
            "one)",
        ],
    ),
    (
        "recipe_meta.yaml",
        {"tests/recipe_meta.yaml": "HEALTH_PATH: /\n"},
        None,
        {},
        [
            "tests/recipe_meta.yaml: not read; did you mean recipe_meta.yml? "
            "(as it is named, the harness does not read it)"
        ],
    ),
    (
        "COMPOSE_FILES naming a missing file",
        {
            META: "HEALTH_PATH: /\nCOMPOSE_FILES: [compose.yml, compose.smtp.yml]\n",
            "compose.yml": "",
        },
        None,
        {},
        [
            META + ":2:1: COMPOSE_FILES[1]: compose.smtp.yml is not a file of "
            "the recipe"
        ],
    ),
    (
        "CUSTOM_TESTS matching nothing",
        {META: "CUSTOM_TESTS: [tests/test_*.py, tests/e2e_*.py]\n",
         "tests/test_login.py": ""},
        None,
        {},
        [
            META + ":1:1: CUSTOM_TESTS[1]: 'tests/e2e_*.py' matches no file of "
            "the recipe"
        ],
    ),
    (
        "CUSTOM_TESTS matching only a tier test or a file outside tests/",
        {META: "CUSTOM_TESTS: [tests/test_install.py, e2e/test_*.py]\n",
         "tests/test_install.py": "", "e2e/test_login.py": ""},
        None,
        {},
        [
            META + ":1:1: CUSTOM_TESTS[0]: 'tests/test_install.py' matches no "
            "file of the recipe",
            META + ":1:1: CUSTOM_TESTS[1]: 'e2e/test_*.py' matches no file of "
            "the recipe",
        ],
    ),
    (
        "a value_file in the recipe's file",
        {META: "SECRETS:\n  api_key: {generate: false, value_file: key.txt}\n",
         "tests/key.txt": "x\n"},
        None,
        {},
        [
            META + ":1:1: SECRETS.api_key.value_file: only the operator's "
            "overlay (<harness.overlays_dir>/myapp/recipe_meta.yml) may name a "
            "value file; the recipe's tests/recipe_meta.yml is PR code"
        ],
    ),
    (
        "the operator's value_file missing",
        {},
        {"recipe_meta.yml": "SECRETS:\n  api_key: {generate: false, "
         "value_file: key.txt}\n"},
        {},
        [
            "{ov}/myapp/recipe_meta.yml:1:1: SECRETS.api_key.value_file "
            "{ovreal}/myapp/key.txt: No such file or directory"
        ],
    ),
    (
        "each file's errors name that file",
        {META: "TIMEOUT: forever\n"},
        {"recipe_meta.yml": "\nHEALTH_STATUS: [99]\n"},
        {},
        [
            META + ":1:1: TIMEOUT: expected a duration, like 500ms, 90s, 10m, "
            "2h or 1d, got 'forever'",
            "{ov}/myapp/recipe_meta.yml:2:17: HEALTH_STATUS[0]: expected an "
            "HTTP status (100 to 599) or a range like 200-399, got '99'",
        ],
    ),
    (
        "a misnamed file in the operator's overlay",
        {},
        {"test_restor.py": ""},
        {},
        [
            "{ov}/myapp/test_restor.py: not a hook file; did you mean "
            "test_restore.py? (as it is named, the harness does not use it as "
            "one)"
        ],
    ),
    (
        "the operator's non-executable copy",
        {"tests/install_steps.sh": ("x", "#!/bin/sh\n")},
        {"install_steps.sh": "#!/bin/sh\n"},
        {},
        [
            "{ov}/myapp/install_steps.sh: not executable (the harness runs it "
            "directly: chmod +x {ov}/myapp/install_steps.sh, and commit the "
            "mode)"
        ],
    ),
]


def make_tree(root, files):
    for rel, content in files.items():
        p = os.path.join(root, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        if isinstance(content, tuple) and content[0] == "dir":
            os.makedirs(p)
        elif isinstance(content, tuple) and content[0] == "link":
            os.symlink(content[1], p)
        elif isinstance(content, tuple) and content[0] == "x":
            with open(p, "w") as f:
                f.write(content[1])
            os.chmod(p, 0o755)
        else:
            with open(p, "w") as f:
                f.write(content)
            os.chmod(p, 0o644)


class MetaCheckTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="ccci-mc-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.recipe = os.path.join(self.tmp, "myapp")
        self.abra = os.path.join(self.tmp, "abra")
        os.makedirs(os.path.join(self.recipe, "tests"))
        os.makedirs(os.path.join(self.abra, "recipes"))
        self.env = dict(os.environ)
        self.env.pop("CCCI_CONFIG", None)
        self.env["HOME"] = self.tmp

    def run_check(self, *args, cwd=None):
        return subprocess.run(
            [CCCI, "meta", "check"] + list(args),
            capture_output=True,
            text=True,
            env=self.env,
            cwd=cwd,
            timeout=60,
        )

    def errors_of(self, stdout):
        """The lines before the effective table that are not warnings."""
        out = []
        for line in stdout.splitlines():
            if line.startswith("recipe "):
                break
            if ": warning: " not in line:
                out.append(line)
        return out

    def test_table(self):
        for name, files, overlay, abra, want in TABLE:
            with self.subTest(name):
                tmp = tempfile.mkdtemp(dir=self.tmp)
                recipe = os.path.join(tmp, "myapp")
                os.makedirs(os.path.join(recipe, "tests"))
                make_tree(recipe, files)
                abra_dir = os.path.join(tmp, "abra")
                os.makedirs(os.path.join(abra_dir, "recipes"))
                make_tree(abra_dir, abra)
                args = [recipe, "--abra-dir", abra_dir]
                ov = os.path.join(tmp, "ov")
                if overlay is not None:
                    os.makedirs(os.path.join(ov, "myapp"))
                    make_tree(os.path.join(ov, "myapp"), overlay)
                    args += ["--overlays", ov]
                r = self.run_check(*args)
                self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
                got = self.errors_of(r.stdout)
                if want is None:
                    self.assertEqual(len(got), 1, r.stdout)
                    self.assertRegex(got[0], r"^tests/recipe_meta\.yml:\d+:\d+: ")
                else:
                    want = [
                        w.replace("{abra}", abra_dir)
                        .replace("{ov}", ov)
                        .replace("{ovreal}", os.path.realpath(ov))
                        for w in want
                    ]
                    self.assertEqual(got, want, r.stdout)
                last = r.stdout.splitlines()[-1]
                n = len(got)
                self.assertEqual(
                    last, "invalid: %d error%s" % (n, "" if n == 1 else "s")
                )

    def test_examples_are_valid(self):
        for name in ("pages", "hello"):
            with self.subTest(name):
                d = os.path.join(SOURCE_DIR, "examples", "recipes", name)
                r = self.run_check(d, "--abra-dir", self.abra)
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
                lines = r.stdout.splitlines()
                self.assertEqual(lines[0], "recipe %s, the effective customisation:" % name)
                self.assertEqual(lines[-1], "valid")
                self.assertEqual(len([l for l in lines if " # " in l and l.startswith("  ") and l[2].isupper()]), 20)
        r = self.run_check(
            os.path.join(SOURCE_DIR, "examples", "recipes", "pages"),
            "--abra-dir", self.abra,
        )
        self.assertIn("  HEALTH_TIMEOUT: 2m  # recipe tests/recipe_meta.yml:6", r.stdout)
        self.assertIn("  SCREENSHOT: false  # default", r.stdout)

    def overlay_layout(self):
        make_tree(
            self.recipe,
            {
                META: "# the recipe's\nHEALTH_PATH: /recipe\nTIMEOUT: 20m\n",
                "tests/install_steps.sh": ("x", "#!/bin/sh\n"),
                "tests/ops.py": "",
                "tests/test_upgrade.py": "",
            },
        )
        ov = os.path.join(self.tmp, "ov")
        make_tree(
            os.path.join(ov, "myapp"),
            {
                "recipe_meta.yml": "HEALTH_PATH: /operator\nSCREENSHOT: true\n",
                "install_steps.sh": ("x", "#!/bin/sh\n"),
            },
        )
        return ov

    def test_operator_wins_per_key_and_per_hook(self):
        ov = self.overlay_layout()
        r = self.run_check(self.recipe, "--overlays", ov, "--abra-dir", self.abra)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        opf = ov + "/myapp/recipe_meta.yml"
        for line in (
            '  HEALTH_PATH: "/operator"  # operator %s:1' % opf,
            "  SCREENSHOT: true  # operator %s:2" % opf,
            "  TIMEOUT: 20m  # recipe tests/recipe_meta.yml:3",
            "  HEALTH_TIMEOUT: 5m  # default",
            "  install_steps.sh: %s/myapp/install_steps.sh  # operator" % ov,
            "  ops.py: tests/ops.py  # recipe",
            "  test_upgrade.py: tests/test_upgrade.py  # recipe",
            "  setup_custom_tests.sh: none",
        ):
            self.assertIn(line + "\n", r.stdout)
        self.assertEqual(r.stdout.splitlines()[-1], "valid")
        # Without the overlay the recipe's own values and hooks are used.
        r = self.run_check(self.recipe, "--abra-dir", self.abra)
        self.assertIn('  HEALTH_PATH: "/recipe"  # recipe tests/recipe_meta.yml:2\n', r.stdout)
        self.assertIn("  install_steps.sh: tests/install_steps.sh  # recipe\n", r.stdout)

    def test_placement_keys_are_printed(self):
        # SERVERS and SERVER_LABELS are the daemon's: meta check shows them
        # with their origin, and checks their names.
        make_tree(self.recipe, {"tests/recipe_meta.yml":
                                "SERVERS: [swarm-a, swarm-b]\nSERVER_LABELS: [heavy]\n"})
        r = self.run_check(self.recipe, "--abra-dir", self.abra)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn('  SERVERS: ["swarm-a", "swarm-b"]  # recipe tests/recipe_meta.yml:1\n',
                      r.stdout)
        self.assertIn('  SERVER_LABELS: ["heavy"]  # recipe tests/recipe_meta.yml:2\n', r.stdout)
        r = self.run_check(self.recipe, "--abra-dir", self.abra, "--json")
        j = json.loads(r.stdout)
        self.assertEqual(j["keys"]["SERVERS"]["value"], ["swarm-a", "swarm-b"])
        self.assertEqual(j["keys"]["SERVER_LABELS"]["value"], ["heavy"])
        make_tree(self.recipe, {"tests/recipe_meta.yml": "SERVER_LABELS: [Heavy]\n"})
        r = self.run_check(self.recipe, "--abra-dir", self.abra)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("tests/recipe_meta.yml:1:17: SERVER_LABELS[0]: expected a list of "
                      "server labels", r.stdout)

    def test_json(self):
        ov = self.overlay_layout()
        r = subprocess.run(
            [CCCI, "--json", "meta", "check", self.recipe, "--overlays", ov,
             "--abra-dir", self.abra],
            capture_output=True, text=True, env=self.env, timeout=60,
        )
        self.assertEqual(r.returncode, 0, r.stderr)
        j = json.loads(r.stdout)
        self.assertEqual(
            list(j), ["recipe", "valid", "errors", "warnings", "keys", "hooks"]
        )
        self.assertEqual(j["recipe"], "myapp")
        self.assertIs(j["valid"], True)
        self.assertEqual(j["errors"], [])
        self.assertEqual(len(j["keys"]), 20)
        self.assertEqual(
            j["keys"]["HEALTH_PATH"],
            {"value": "/operator", "source": "operator",
             "file": ov + "/myapp/recipe_meta.yml", "line": 1, "loaded": True},
        )
        self.assertEqual(
            j["keys"]["TIMEOUT"],
            {"value": "20m", "source": "recipe", "file": META, "line": 3,
             "loaded": True},
        )
        self.assertEqual(
            j["keys"]["QUICK_TIERS"],
            {"value": ["install"], "source": "default", "file": None,
             "line": None, "loaded": True},
        )
        self.assertEqual(len(j["hooks"]), 8)
        self.assertEqual(
            j["hooks"]["install_steps.sh"],
            {"path": ov + "/myapp/install_steps.sh", "source": "operator"},
        )
        self.assertEqual(j["hooks"]["ops.py"], {"path": "tests/ops.py", "source": "recipe"})
        self.assertEqual(j["hooks"]["compose.ccci.yml"], {"path": None, "source": "none"})
        # An invalid one: each error an object, the key marked as not loaded.
        make_tree(self.recipe, {META: "SKIP_TIERS: [cutsom]\n"})
        r = subprocess.run(
            [CCCI, "meta", "check", self.recipe, "--json", "--abra-dir", self.abra],
            capture_output=True, text=True, env=self.env, timeout=60,
        )
        self.assertEqual(r.returncode, 1, r.stderr)
        j = json.loads(r.stdout)
        self.assertIs(j["valid"], False)
        self.assertEqual(
            j["errors"],
            [{"file": META, "line": 1, "column": 14,
              "message": "SKIP_TIERS[0]: expected a list of tiers " + TIERS
              + ", got 'cutsom'; did you mean 'custom'?"}],
        )
        self.assertIs(j["keys"]["SKIP_TIERS"]["loaded"], False)
        self.assertEqual(j["keys"]["SKIP_TIERS"]["source"], "recipe")

    def test_warnings_keep_it_valid(self):
        make_tree(
            self.recipe,
            {
                "install_steps.sh": ("x", "#!/bin/sh\n"),
                META: "DEPS:\n  - recipe: mariadb\n",
            },
        )
        r = self.run_check(self.recipe, "--abra-dir", self.abra)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        lines = r.stdout.splitlines()
        self.assertEqual(
            lines[:2],
            [
                META + ":1:1: warning: DEPS[0]: the recipe mariadb is not in "
                "%s/recipes (the harness clones DEPS recipes from the "
                "operator's abra dir)" % self.abra,
                "install_steps.sh: warning: in the top directory it is not "
                "used; move it to tests/",
            ],
        )
        self.assertEqual(lines[-1], "valid")
        r = subprocess.run(
            [CCCI, "--json", "meta", "check", self.recipe, "--abra-dir", self.abra],
            capture_output=True, text=True, env=self.env, timeout=60,
        )
        j = json.loads(r.stdout)
        self.assertEqual(
            j["warnings"][1],
            {"file": "install_steps.sh", "line": None, "column": None,
             "message": "in the top directory it is not used; move it to tests/"},
        )
        # Present in the abra dir: no warning.
        make_tree(self.abra, {"recipes/mariadb/README.md": ""})
        r = self.run_check(self.recipe, "--abra-dir", self.abra)
        self.assertNotIn("DEPS[0]", r.stdout)

    def test_abra_dir_from_the_config(self):
        make_tree(self.recipe, {META: "DEPS: [{recipe: redis}]\n"})
        cfg = os.path.join(self.tmp, "ccci.yml")
        with open(cfg, "w") as f:
            f.write("harness:\n  abra_dir: %s\n" % self.abra)
        r = subprocess.run(
            [CCCI, "-c", cfg, "meta", "check", self.recipe],
            capture_output=True, text=True, env=self.env, timeout=60,
        )
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("the recipe redis is not in %s/recipes" % self.abra, r.stdout)

    def test_relative_dir_names_the_real_directory(self):
        r = self.run_check(".", "--abra-dir", self.abra, cwd=self.recipe)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(r.stdout.startswith("recipe myapp, "), r.stdout)

    def test_usage(self):
        f = os.path.join(self.tmp, "file")
        with open(f, "w"):
            pass
        for args, msg in (
            ([], "needs a recipe checkout DIR"),
            ([os.path.join(self.tmp, "missing")], "is not a directory"),
            ([f], "is not a directory"),
            ([self.recipe, "--frobnicate"], "has no option '--frobnicate'"),
            ([self.recipe, self.recipe], "takes one DIR"),
            ([self.recipe, "--overlays"], "option --overlays needs a value"),
            ([self.recipe, "--overlays", f], "--overlays %s is not a directory" % f),
            ([self.recipe, "--abra-dir=" + f], "--abra-dir %s is not a directory" % f),
        ):
            with self.subTest(args=args):
                r = self.run_check(*args)
                self.assertEqual(r.returncode, 64, r.stdout + r.stderr)
                self.assertIn(msg, r.stderr)
                self.assertEqual(r.stdout, "")

    def test_meta_hooks_prints_the_hooks_doc(self):
        r = subprocess.run([CCCI, "meta", "hooks"], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(r.stdout.startswith("# Hook files\n"))
        self.assertIn("| `install_steps.sh` |", r.stdout)
        with open(os.path.join(SOURCE_DIR, "docs", "hooks.md")) as f:
            self.assertEqual(f.read(), r.stdout)
        r = subprocess.run([CCCI, "meta", "hooks", "x"], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 64)
        r = subprocess.run([CCCI, "meta", "hoks"], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 64)
        self.assertIn("(check, docs, hooks)", r.stderr)


if __name__ == "__main__":
    unittest.main()
