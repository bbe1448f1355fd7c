"""`ccci redact` as a user drives it: secrets from a directory tree and from
files, streaming release, fail-closed errors, options."""

import base64
import json
import os
import select
import subprocess
import time
import urllib.parse

from itest import CCCI, WAIT, CcciTestCase, run_cli

SECRET = "s3cr3t-T0ken/with+chars"


class RedactCliTest(CcciTestCase):
    def secrets_dir(self):
        d = os.path.join(self.tmp, "secrets")
        os.makedirs(os.path.join(d, "nested", "deeper"))
        with open(os.path.join(d, "token"), "w") as f:
            f.write(SECRET + "\n")
        with open(os.path.join(d, "nested", "deeper", "db"), "w") as f:
            f.write("db-pa55word-xyz\r\n")
        with open(os.path.join(d, "short"), "w") as f:
            f.write("abc")
        with open(os.path.join(d, "huge"), "w") as f:
            f.write("H" * (64 * 1024 + 1))
        with open(os.path.join(self.tmp, "outside"), "w") as f:
            f.write("linked-secret-value\n")
        os.symlink(os.path.join(self.tmp, "outside"), os.path.join(d, "link"))
        os.symlink(d, os.path.join(d, "nested", "loop"))  # a directory loop
        return d

    def test_masks_every_form_from_a_tree(self):
        d = self.secrets_dir()
        text = (
            "plain %s\n"
            "json {\"t\": %s}\n"
            "url ?t=%s&x=1\n"
            "b64 %s\n"
            "nested db-pa55word-xyz and link linked-secret-value\n"
            "short abc stays\n"
            % (
                SECRET,
                json.dumps(SECRET),
                urllib.parse.quote(SECRET, safe=""),
                base64.b64encode(b"xx" + SECRET.encode()).decode(),
            )
        )
        r = run_cli("redact", "--secrets-dir", d, input=text)
        self.assertEqual(r.returncode, 0, r.stderr)
        out = r.stdout
        for bad in (SECRET, "db-pa55word-xyz", "linked-secret-value", "s3cr3t", "czNjcjN0"):
            self.assertNotIn(bad, out)
        self.assertIn("plain ********\n", out)
        self.assertIn('json {"t": "********"}\n', out)
        self.assertIn("url ?t=********&x=1\n", out)
        self.assertIn("nested ******** and link ********\n", out)
        self.assertIn("short abc stays\n", out)
        # Problems are named by file, never by value.
        self.assertIn("%s/short is shorter than 8 bytes; it is not masked" % d, r.stderr)
        self.assertIn("secret file %s/huge is larger than 65536 bytes; skipped" % d, r.stderr)
        self.assertNotIn("abc", r.stderr.replace(d, ""))
        self.assertEqual(r.stderr.count("/short"), 1)

    def test_secret_files_min_len_and_mask(self):
        f = os.path.join(self.tmp, "one")
        with open(f, "w") as fh:
            fh.write("abcd\n")
        r = run_cli(
            "redact", "--secrets-dir", os.path.join(self.tmp, "none-here-ok"),
            "--secret-file", f, "--min-len", "4", "--mask", "[REDACTED]",
            input="xabcdabcdy abc",
        )
        # An explicitly named secrets dir that is missing fails closed.
        self.assertEqual(r.returncode, 2)
        r = run_cli("redact", "--secret-file", f, "--min-len", "4", "--mask", "[REDACTED]", input="xabcdabcdy abc")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "x[REDACTED]y abc")

    def test_fail_closed(self):
        d = self.secrets_dir()
        os.symlink(os.path.join(self.tmp, "gone"), os.path.join(d, "dangling"))
        r = run_cli("redact", "--secrets-dir", d, input="x")
        self.assertEqual(r.returncode, 2)
        self.assertIn("cannot read the secret %s/dangling" % d, r.stderr)
        self.assertEqual(r.stdout, "")
        r = run_cli("redact", "--secret-file", self.tmp, input="x")
        self.assertEqual(r.returncode, 2)
        self.assertIn("is a directory", r.stderr)
        r = run_cli("redact", "--secret-file", os.path.join(self.tmp, "missing"), input="x")
        self.assertEqual(r.returncode, 2)

    def test_usage(self):
        for args in (["--bogus"], ["--min-len", "0"], ["--min-len"], ["--mask", ""], ["--json"]):
            r = run_cli("redact", *args, input="")
            self.assertEqual(r.returncode, 64, args)

    def test_streams_without_waiting_for_eof(self):
        f = os.path.join(self.tmp, "s")
        with open(f, "w") as fh:
            fh.write("zebra-secret-42\n")
        p = subprocess.Popen(
            [CCCI, "redact", "--secret-file", f],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        try:
            def read_some(timeout):
                r, _, _ = select.select([p.stdout], [], [], timeout)
                return os.read(p.stdout.fileno(), 4096) if r else b""

            p.stdin.write(b"first line\n")
            p.stdin.flush()
            got = b""
            deadline = time.monotonic() + WAIT
            while got != b"first line\n" and time.monotonic() < deadline:
                got += read_some(0.5)
            self.assertEqual(got, b"first line\n")
            # A possible secret prefix is held back ...
            p.stdin.write(b"x zebra-sec")
            p.stdin.flush()
            self.assertEqual(read_some(0.3), b"x ")
            # ... and masked once it completes.
            p.stdin.write(b"ret-42 y\n")
            p.stdin.flush()
            got = b""
            deadline = time.monotonic() + WAIT
            while not got.endswith(b"\n") and time.monotonic() < deadline:
                got += read_some(0.5)
            self.assertEqual(got, b"******** y\n")
            p.stdin.write(b"tail zebra")
            p.stdin.close()
            self.assertEqual(p.stdout.read(), b"tail zebra")
            self.assertEqual(p.wait(WAIT), 0)
        finally:
            if p.poll() is None:
                p.kill()
            p.stdout.close()
