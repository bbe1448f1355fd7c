"""The client commands that need no daemon: config check, version, usage."""

import json
import os

from itest import SOURCE_DIR, CcciTestCase, run_cli


class CliTest(CcciTestCase):
    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_config_check_prints_effective_config(self):
        token = self.write("token", "s3cr3t-t0ken-value\n")
        cfg = self.write(
            "ccci.yml",
            "capacity: 5\nstate_dir: st\nforge:\n  token_file: token\n  repos: [coop-cloud/traefik]\n",
        )
        r = run_cli("config", "check", cfg)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, "")
        self.assertIn("\ncapacity: 5\n", r.stdout)
        self.assertIn('\nstate_dir: "%s/st"\n' % self.tmp, r.stdout)
        self.assertIn('\n  token_file: "%s"\n' % token, r.stdout)
        self.assertIn('\n  repos: ["coop-cloud/traefik"]\n', r.stdout)
        self.assertIn("\ndeadline: 1h\n", r.stdout)  # defaults are shown too
        self.assertNotIn("s3cr3t", r.stdout)
        # The output is itself a valid config with the same values.
        again = self.write("again.yml", r.stdout)
        r2 = run_cli("config", "check", again)
        self.assertEqual(r2.returncode, 0, r2.stderr)
        self.assertEqual(r2.stdout.split("\n", 1)[1], r.stdout.split("\n", 1)[1])
        j = json.loads(run_cli("config", "check", cfg, "--json").stdout)
        self.assertEqual(j["capacity"], 5)
        self.assertEqual(j["forge"]["token_file"], token)
        self.assertEqual(j["deadline"], "1h")

    def test_config_check_errors(self):
        cfg = self.write(
            "ccci.yml",
            "# comment\ncapacity: 4\nforge:\n  pol_interval: 10s\n"
            "retention:\n  max_age: soon\ndedline: 5m\ncapacity: 3\n",
        )
        r = run_cli("config", "check", cfg)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout, "")
        self.assertEqual(
            r.stderr,
            "%s:4:3: unknown key 'forge.pol_interval'; did you mean 'forge.poll_interval'?\n"
            "%s:6:3: retention.max_age: expected a duration, like 500ms, 90s, 10m, 2h or 1d, got 'soon'\n"
            "%s:7:1: unknown key 'dedline'; did you mean 'deadline'?\n"
            "%s:8:1: duplicate key 'capacity' (first set at line 2)\n" % (cfg, cfg, cfg, cfg),
        )

    def test_config_check_bad_yaml_and_missing_file(self):
        cfg = self.write("bad.yml", "capacity: 4\nforge: [a\n")
        r = run_cli("config", "check", cfg)
        self.assertEqual(r.returncode, 1)
        self.assertRegex(r.stderr, r"^%s:\d+:\d+: invalid YAML: " % cfg)
        r = run_cli("config", "check", os.path.join(self.tmp, "nope.yml"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("nope.yml: cannot read: No such file or directory", r.stderr)
        big = self.write("big.yml", "#" * (1024 * 1024 + 1))
        r = run_cli("config", "check", big)
        self.assertEqual(r.returncode, 1)
        self.assertIn("big.yml: file is larger than 1048576 bytes", r.stderr)

    def test_usage(self):
        r = run_cli("stauts")
        self.assertEqual(r.returncode, 64)
        self.assertIn("unknown command 'stauts'; did you mean 'status'?", r.stderr)
        r = run_cli()
        self.assertEqual(r.returncode, 64)
        self.assertIn("usage: ccci", r.stderr)
        r = run_cli("--bogus")
        self.assertEqual(r.returncode, 64)
        r = run_cli("status", "-s")
        self.assertEqual(r.returncode, 64)
        self.assertIn("option -s needs a value", r.stderr)
        r = run_cli("config", "check")
        self.assertEqual(r.returncode, 64)
        r = run_cli("--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("status", r.stdout)

    def test_version(self):
        r = run_cli("version")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^ccci \d+\.\d+\.\d+\n$")
        self.assertRegex(json.loads(run_cli("version", "--json").stdout)["version"], r"^\d+\.\d+\.\d+$")

    def test_ccci_harness_is_the_default(self):
        # `ccci` as the first word is the daemon's own binary; the example
        # harness stays in examples/ for demos.
        cfg = self.write("empty.yml", "")
        r = run_cli("config", "check", cfg, "--json")
        h = json.loads(r.stdout)["harness"]
        self.assertEqual(h["command"], ["ccci", "harness"])
        self.assertEqual(h["teardown_command"], ["ccci", "harness", "--teardown"])
        self.assertEqual(h["server"], "default")
        self.assertTrue(h["abra_dir"].endswith("/.abra"), h["abra_dir"])
        example = os.path.join(SOURCE_DIR, "examples", "example-harness")
        self.assertTrue(os.access(example, os.X_OK), "%s is not executable" % example)

    def test_meta_docs(self):
        r = run_cli("meta", "docs")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(r.stdout.startswith("# recipe_meta.yml reference\n"))
        self.assertIn("| `UPGRADE_BASE_VERSION` |", r.stdout)
        r = run_cli("meta", "dcos")
        self.assertEqual(r.returncode, 64)
        self.assertIn("unknown 'meta' command 'dcos'", r.stderr)
