"""docs/protocol.md's example session, replayed through socat against a real
daemon: the documented replies are what the daemon says."""

import json
import os
import shutil
import subprocess
import unittest

from itest import SOURCE_DIR, WAIT, CcciTestCase


def example_session():
    with open(os.path.join(SOURCE_DIR, "docs", "protocol.md")) as f:
        text = f.read()
    block = text.split("## Example session", 1)[1]
    lines = [l[4:] for l in block.splitlines() if l.startswith("    ")]
    assert lines[0].startswith("$ socat - UNIX-CONNECT:"), lines[0]
    pairs = []
    for line in lines[1:]:
        if line.startswith('{"ok"'):
            pairs[-1][1] = json.loads(line)
        else:
            pairs.append([line, None])
    return pairs


class ProtocolDocTest(CcciTestCase):
    @unittest.skipUnless(shutil.which("socat"), "socat is not installed")
    def test_example_session_through_socat(self):
        pairs = example_session()
        self.assertGreaterEqual(len(pairs), 3)
        d = self.daemon().start()
        stdin = "".join(req + "\n" for req, _ in pairs)
        r = subprocess.run(
            ["socat", "-t", "5", "-", "UNIX-CONNECT:" + d.socket],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=WAIT,
        )
        self.assertEqual(r.returncode, 0, r.stderr)
        replies = [json.loads(l) for l in r.stdout.splitlines()]
        self.assertEqual(len(replies), len(pairs))
        for (req, documented), got in zip(pairs, replies):
            self.assertEqual(got["ok"], documented["ok"], req)
            if documented["ok"]:
                # Values differ per run; the fields and their types do not.
                self.assertEqual(list(got.keys()), list(documented.keys()), req)
                for k, v in documented.items():
                    self.assertIs(type(got[k]), type(v), k)
                self.assertEqual(
                    list(got["counters"].keys()), list(documented["counters"].keys())
                )
            else:
                self.assertEqual(got, documented, req)
