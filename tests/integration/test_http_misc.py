"""The HTTP front's badge, /metrics and /healthz on the real daemon: the
badge is well-formed SVG naming the level of the recipe's newest finished
run (grey `unknown` for a recipe without one), cached for 60 s with an ETag
that answers 304; /metrics parses with Debian's prometheus_client text
parser (run with /usr/bin/python3, which sees Debian's packages) and carries
the status counters; /healthz is 200 while serving and 503 once draining."""

import http.client
import json
import os
import subprocess
import sys
import unittest
import xml.etree.ElementTree as ET

from itest import WAIT, CcciTestCase, request, run_cli, wait_for

PY = sys.executable
SVG = "{http://www.w3.org/2000/svg}"

# A harness that writes a complete results.json of level 1 (install).
HARNESS = r"""
import json, os, sys
print("~~~ step install", flush=True)
print("installed <ok> & done", flush=True)
if len(sys.argv) > 1:
    # A secret printed twice: the redactor masks it (two masked runs).
    v = open(sys.argv[1]).read().strip()
    print("one %s two %s" % (v, v), flush=True)
res = {
    "run": os.environ["CCCI_RUN_ID"], "recipe": os.environ.get("CCCI_RECIPE"), "pr": None,
    "sha": os.environ.get("CCCI_SHA"),
    "tiers": {"install": {"status": "pass", "reason": "", "started_at": 0,
                          "duration_s": 0.1, "step": "install"}},
    "level": 1,
    "invariants": {"deploy_budget_ok": True, "teardown_clean": True, "secrets_clean": True},
}
with open(os.environ["CCCI_RESULTS_FILE"], "w") as f:
    json.dump(res, f)
"""

# Parse the exposition with prometheus_client; print {name: {type, samples}}.
PARSE = r"""
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for fam in text_string_to_metric_families(sys.stdin.read()):
    out[fam.name] = {"type": fam.type,
                     "samples": [[s.name, s.labels, s.value] for s in fam.samples]}
print(json.dumps(out))
"""


def get(d, path, headers=None):
    host, port = d.http_address().rsplit(":", 1)
    c = http.client.HTTPConnection(host, int(port), timeout=WAIT)
    try:
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        return r.status, r, r.read()
    finally:
        c.close()


class HttpMiscTest(CcciTestCase):
    def setUp(self):
        super().setUp()
        self.recipe = os.path.join(self.tmp, "myrecipe")
        os.makedirs(self.recipe)
        self.harness = os.path.join(self.tmp, "harness.py")
        with open(self.harness, "w") as f:
            f.write(HARNESS)

    def serve(self, secret=False):
        cmd, extra = [PY, self.harness], ""
        if secret:
            path = os.path.join(self.tmp, "app-secret")
            with open(path, "w") as f:
                f.write("s3cr3t_value_8d2f41\n")
            cmd.append(path)
            extra = "secret_files: [%s]\n" % path
        d = self.daemon(config="min_free_bytes: 0\ncapacity: 2\n%sharness:\n  command: %s\n"
                               % (extra, json.dumps(cmd)))
        return d.start()

    def run_one(self, d):
        r = request(d.socket, {"v": 1, "op": "submit", "dir": self.recipe})
        self.assertTrue(r["ok"], r)
        rid = r["id"]
        wait_for(lambda: request(d.socket, {"v": 1, "op": "show", "id": rid})["run"]["state"]
                 == "finished", what="run %s finished" % rid)
        return rid

    def badge(self, d, recipe, headers=None):
        status, r, body = get(d, "/badge/%s.svg" % recipe, headers)
        return status, r, body

    def texts(self, body):
        root = ET.fromstring(body)
        self.assertEqual(root.tag, SVG + "svg")
        title = root.find(SVG + "title").text
        texts = [t.text for t in root.iter(SVG + "text")]
        return title, texts, root

    def test_badge_of_a_finished_run_and_of_an_unknown_recipe(self):
        d = self.serve()
        rid = self.run_one(d)

        def level_badge():
            status, r, body = self.badge(d, "myrecipe")
            return status == 200 and b"L1" in body and (r, body)

        r, body = wait_for(level_badge, what="the badge shows the level")
        self.assertEqual(r.getheader("Content-Type"), "image/svg+xml")
        self.assertEqual(r.getheader("Cache-Control"), "max-age=60")
        title, texts, root = self.texts(body)
        self.assertEqual(texts, ["ccci", "ccci", "L1 install", "L1 install"])
        self.assertIn(rid, title)
        self.assertEqual(root.get("aria-label"), "ccci: L1 install")
        fills = [x.get("fill") for x in root.iter(SVG + "rect")]
        self.assertIn("#fe7d37", fills)
        # The ETag answers 304 with no body; another tag gets the badge.
        etag = r.getheader("ETag")
        self.assertTrue(etag and etag.startswith('"'), etag)
        status, r2, body2 = self.badge(d, "myrecipe", {"If-None-Match": etag})
        self.assertEqual(status, 304)
        self.assertEqual(body2, b"")
        self.assertEqual(r2.getheader("ETag"), etag)
        status, _, body3 = self.badge(d, "myrecipe", {"If-None-Match": '"other"'})
        self.assertEqual((status, body3), (200, body))

        status, r, body = self.badge(d, "nosuch")
        self.assertEqual(status, 200)
        title, texts, root = self.texts(body)
        self.assertEqual(texts, ["ccci", "ccci", "unknown", "unknown"])
        self.assertIn("#9f9f9f", [x.get("fill") for x in root.iter(SVG + "rect")])
        self.assertNotEqual(r.getheader("ETag"), etag)
        # A name that needs escaping stays well-formed.
        status, _, body = self.badge(d, "a%26b%3Cc")
        self.assertEqual(status, 200)
        self.texts(body)

    def metrics(self, d):
        status, r, body = get(d, "/metrics")
        self.assertEqual(status, 200)
        self.assertEqual(r.getheader("Content-Type"), "text/plain; version=0.0.4; charset=utf-8")
        p = subprocess.run(["/usr/bin/python3", "-c", PARSE], input=body, capture_output=True,
                           timeout=WAIT)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        return json.loads(p.stdout), body.decode()

    def value(self, fams, family, sample, **labels):
        for name, lab, v in fams[family]["samples"]:
            if name == sample and all(lab.get(k) == x for k, x in labels.items()):
                return v
        raise AssertionError("no sample %s %s in %s" % (sample, labels, fams[family]))

    def test_metrics_parse_and_carry_the_counters(self):
        d = self.serve(secret=True)
        self.run_one(d)
        get(d, "/nosuch")
        fams, text = self.metrics(d)
        self.assertEqual(self.value(fams, "ccci_up", "ccci_up"), 1)
        self.assertEqual(fams["ccci_runs"]["type"], "gauge")
        self.assertEqual(self.value(fams, "ccci_runs", "ccci_runs", state="finished"), 1)
        self.assertEqual(self.value(fams, "ccci_runs_by_reason", "ccci_runs_by_reason",
                                    reason="success"), 1)
        self.assertEqual(fams["ccci_http_requests"]["type"], "counter")
        self.assertGreaterEqual(self.value(fams, "ccci_http_requests", "ccci_http_requests_total",
                                           code="404"), 1)
        self.assertGreater(self.value(fams, "ccci_redaction_bytes", "ccci_redaction_bytes_total"), 0)
        self.assertEqual(self.value(fams, "ccci_redaction_masked", "ccci_redaction_masked_total"), 2)
        self.assertNotIn("s3cr3t_value_8d2f41", text)
        for fam in ("ccci_janitor_actions", "ccci_sse_clients", "ccci_queue_depth",
                    "ccci_tail_clients", "ccci_hooks", "ccci_draining"):
            self.assertIn(fam, fams)
        # Every family has HELP and TYPE; counters end in _total.
        for line in text.splitlines():
            if line.startswith("# TYPE ") and line.endswith(" counter"):
                self.assertTrue(line.split()[2].endswith("_total"), line)
        st = d.status()["counters"]
        self.assertEqual(st["redaction_bytes"],
                         self.value(fams, "ccci_redaction_bytes", "ccci_redaction_bytes_total"))
        self.assertIn("orphan", st["janitor_actions"])

    def test_metrics_of_the_pool(self):
        """The ccci_servers* gauges (status's counters) and one sample per
        server of each per-server family, labelled server="<name>", which
        follow `ccci server drain`."""
        d = self.daemon(config="min_free_bytes: 0\nharness:\n  command: %s\n"
                               "servers:\n  - name: a\n    capacity: 2\n    labels: [heavy]\n"
                               "  - name: b.example\n" % json.dumps([PY, self.harness])).start()
        r = run_cli("-s", d.socket, "server", "drain", "b.example")
        self.assertEqual(r.returncode, 0, r.stderr)
        fams, text = self.metrics(d)
        st = d.status()
        for name in ("servers", "servers_unhealthy", "servers_drained"):
            self.assertEqual(fams["ccci_" + name]["type"], "gauge")
            self.assertEqual(self.value(fams, "ccci_" + name, "ccci_" + name), st["counters"][name])
        self.assertEqual(st["counters"]["servers"], 2)
        self.assertEqual(st["counters"]["servers_drained"], 1)
        want = {"server_capacity": ("gauge", {"a": 2, "b.example": 1}),
                "server_running": ("gauge", {"a": 0, "b.example": 0}),
                "server_queued": ("gauge", {"a": 0, "b.example": 0}),
                "server_healthy": ("gauge", {"a": 1, "b.example": 1}),
                "server_drained": ("gauge", {"a": 0, "b.example": 1}),
                "server_runs_started": ("counter", {"a": 0, "b.example": 0}),
                "server_connection_errors": ("counter", {"a": 0, "b.example": 0}),
                "server_probes": ("counter", {"a": 0, "b.example": 0}),
                "server_probe_failures": ("counter", {"a": 0, "b.example": 0})}
        for fam, (kind, values) in want.items():
            f = fams["ccci_" + fam]
            self.assertEqual(f["type"], kind, fam)
            sample = "ccci_" + fam + ("_total" if kind == "counter" else "")
            got = {lab["server"]: v for name, lab, v in f["samples"] if name == sample}
            self.assertEqual(got, values, fam)
            self.assertIn("# HELP ccci_%s%s " % (fam, "_total" if kind == "counter" else ""), text)
        r = run_cli("-s", d.socket, "server", "undrain", "b.example")
        self.assertEqual(r.returncode, 0, r.stderr)
        fams, _ = self.metrics(d)
        self.assertEqual(self.value(fams, "ccci_server_drained", "ccci_server_drained",
                                    server="b.example"), 0)

    def test_healthz_then_503_after_drain(self):
        d = self.serve()
        status, r, body = get(d, "/healthz")
        self.assertEqual((status, body), (200, b"ok\n"))
        self.assertTrue(r.getheader("Content-Type").startswith("text/plain"))
        p = run_cli("-s", d.socket, "drain")
        self.assertEqual(p.returncode, 0, p.stderr)
        status, _, body = get(d, "/healthz")
        self.assertEqual((status, body), (503, b"draining\n"))

    def test_healthz_503_while_a_secret_file_cannot_be_read(self):
        missing = os.path.join(self.tmp, "no-such-secret")
        d = self.daemon(config="min_free_bytes: 0\nsecret_files: [%s]\nharness:\n  command: %s\n"
                               % (missing, json.dumps([PY, self.harness]))).start()

        def unhealthy():
            status, _, body = get(d, "/healthz")
            return status == 503 and body

        body = wait_for(unhealthy, what="/healthz reports the secrets problem")
        self.assertTrue(body.startswith(b"secrets: "), body)
        self.assertIn(b"no-such-secret", body)


if __name__ == "__main__":
    unittest.main()
