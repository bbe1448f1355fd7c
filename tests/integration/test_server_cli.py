"""`ccci server ls | drain NAME | undrain NAME` and the pool in `ccci status`
against the real daemon with two servers in `servers:`: the table's
columns, the --json shapes, drain and undrain seen by `ls`, an unknown
server (exit 3, the message naming the servers), usage errors (exit 64) and
an unreachable daemon (exit 5); and the NOTE column and the drain summary
from a fake daemon socket answering with crafted pool objects (unhealthy,
removed, drained servers). Runs are not started here: what drain does to
runs is test_pool.py's."""

import json
import os
import socket
import threading

from itest import WAIT, CcciTestCase, request, run_cli

CONFIG = (
    "min_free_bytes: 0\n"
    "harness:\n  command: [/bin/true]\n"
    "servers:\n"
    "  - name: alpha.example\n    capacity: 3\n    labels: [heavy, arm64]\n"
    "    domain_suffix: a.ci.local\n    gateway: 127.0.0.1:8443\n"
    "  - name: b\n"
)
COLUMNS = ["NAME", "CAPACITY", "RUNNING", "QUEUED", "HEALTHY", "DRAINED", "LABELS", "NOTE"]
FIELDS = {"name": str, "capacity": int, "running": int, "queued": int, "healthy": bool,
          "drained": bool, "removed": bool, "labels": list, "domain_suffix": str,
          "connection_errors": int, "connection_errors_total": int, "runs_started": int,
          "probes": int, "probe_failures": int}
NULLABLE = {"gateway": str, "next_probe_in_ms": int, "last_error": str}


class ServerCliTest(CcciTestCase):
    def cli(self, d, *args):
        return run_cli("-s", d.socket, *args)

    def ls(self, d):
        r = self.cli(d, "server", "ls", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        return {s["name"]: s for s in json.loads(r.stdout)}

    def test_ls_table_and_json(self):
        d = self.daemon(config=CONFIG).start()
        r = self.cli(d, "server", "ls")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertEqual(lines[0].split(), COLUMNS)
        rows = [l.split() for l in lines[1:]]
        self.assertEqual([row[0] for row in rows], ["alpha.example", "b"])
        self.assertEqual(rows[0][1:7], ["3", "0", "0", "yes", "no", "heavy,arm64"])
        self.assertEqual(rows[1][1:7], ["1", "0", "0", "yes", "no", "-"])
        for l in lines:
            self.assertEqual(l, l.rstrip(), "trailing blanks in %r" % l)

        servers = json.loads(self.cli(d, "server", "ls", "--json").stdout)
        self.assertEqual([s["name"] for s in servers], ["alpha.example", "b"])
        for s in servers:
            for k, t in FIELDS.items():
                self.assertIsInstance(s[k], t, k)
            for k, t in NULLABLE.items():
                self.assertTrue(s[k] is None or isinstance(s[k], t), (k, s[k]))
        a = servers[0]
        self.assertEqual((a["capacity"], a["labels"], a["domain_suffix"], a["gateway"]),
                         (3, ["heavy", "arm64"], "a.ci.local", "127.0.0.1:8443"))
        self.assertEqual(servers[1]["gateway"], None)
        # The op itself, as docs/protocol.md has it.
        reply = request(d.socket, {"v": 1, "op": "server_ls"})
        self.assertEqual(list(reply), ["ok", "servers"])
        self.assertEqual(reply["servers"], servers)

    def test_drain_undrain_and_an_unknown_server(self):
        d = self.daemon(config=CONFIG).start()
        r = self.cli(d, "server", "drain", "b")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "server b drained: it takes no new run; 0 running finish there\n")
        self.assertTrue(self.ls(d)["b"]["drained"])
        self.assertFalse(self.ls(d)["alpha.example"]["drained"])
        row = [l.split() for l in self.cli(d, "server", "ls").stdout.splitlines() if l.startswith("b ")]
        self.assertEqual(row[0][5], "yes")
        r = self.cli(d, "server", "undrain", "b", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["name"], "b")
        self.assertFalse(json.loads(r.stdout)["drained"])
        self.assertFalse(self.ls(d)["b"]["drained"])
        r = self.cli(d, "server", "undrain", "b")
        self.assertEqual((r.returncode, r.stdout), (0, "server b undrained: it takes runs again\n"))

        for sub in ("drain", "undrain"):
            r = self.cli(d, "server", sub, "nope")
            self.assertEqual(r.returncode, 3, r.stderr)
            self.assertEqual(r.stdout, "")
            self.assertIn("nope", r.stderr)
            self.assertIn("alpha.example", r.stderr)
            self.assertIn("b", r.stderr)
        reply = request(d.socket, {"v": 1, "op": "server_drain", "name": "nope"})
        self.assertEqual(reply["ok"], False)
        self.assertEqual(reply["error"]["code"], "no-such-server")
        self.assertIn("alpha.example", reply["error"]["message"])
        reply = request(d.socket, {"v": 1, "op": "server_undrain"})
        self.assertEqual(reply["error"], {"code": "bad-request", "message": "field 'name' is required"})

    def test_status_shows_the_pool(self):
        d = self.daemon(config=CONFIG).start()
        r = self.cli(d, "status", "--json")
        self.assertEqual(r.returncode, 0, r.stderr)
        st = json.loads(r.stdout)
        self.assertEqual([s["name"] for s in st["servers"]], ["alpha.example", "b"])
        for k in ("servers", "servers_unhealthy", "servers_drained"):
            self.assertIsInstance(st["counters"][k], int, k)
        text = self.cli(d, "status").stdout
        self.assertIn("\nservers:\n", text)
        after = text.split("\nservers:\n", 1)[1].splitlines()
        self.assertEqual(after[0].split(), COLUMNS)
        self.assertTrue(after[1].startswith("  alpha.example "), after)

    def fake_daemon(self, reply):
        """A socket that answers one request with `reply`; the request is
        kept in the returned list."""
        path = os.path.join(self.tmp, "fake.sock")
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(path)
        srv.listen(1)
        srv.settimeout(WAIT)
        got = []

        def serve():
            conn, _ = srv.accept()
            with conn:
                data = b""
                while not data.endswith(b"\n"):
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                got.append(json.loads(data))
                conn.sendall(json.dumps(reply).encode() + b"\n")
            srv.close()

        t = threading.Thread(target=serve, daemon=True)
        t.start()
        self.addCleanup(t.join, WAIT)
        return path, got

    @staticmethod
    def server(name, **kw):
        s = {"name": name, "capacity": 1, "running": 0, "queued": 0, "healthy": True,
             "drained": False, "removed": False, "labels": [], "domain_suffix": "ci.local",
             "gateway": None, "connection_errors": 0, "connection_errors_total": 0,
             "runs_started": 0, "probes": 0, "probe_failures": 0, "next_probe_in_ms": None,
             "last_error": None}
        s.update(kw)
        return s

    def test_the_note_column(self):
        """Unhealthy (the next probe, rounded up, and the last error),
        removed, drained: what the pool says, as the table shows it."""
        servers = [self.server("a", capacity=2, running=1, queued=3, healthy=False,
                               labels=["heavy"], next_probe_in_ms=39001,
                               connection_errors=3, last_error="connection refused"),
                   self.server("old", running=1, drained=True, removed=True),
                   self.server("c", healthy=False, next_probe_in_ms=125000)]
        path, got = self.fake_daemon({"ok": True, "servers": servers})
        r = run_cli("-s", path, "server", "ls")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(got, [{"v": 1, "op": "server_ls"}])
        rows = [l.split(None, 7) for l in r.stdout.splitlines()[1:]]
        self.assertEqual(rows, [
            ["a", "2", "1", "3", "no", "no", "heavy", "probe in 40s; connection refused"],
            ["old", "1", "1", "0", "yes", "yes", "-", "removed"],
            ["c", "1", "0", "0", "no", "no", "-", "probe in 2m05s"]])

    def test_drain_says_how_many_runs_finish(self):
        path, got = self.fake_daemon({"ok": True, "server": self.server("b", running=2, drained=True)})
        r = run_cli("-s", path, "server", "drain", "b")
        self.assertEqual((r.returncode, r.stdout), (0, "server b drained: it takes no new run; "
                                                       "2 running finish there\n"), r.stderr)
        self.assertEqual(got, [{"v": 1, "op": "server_drain", "name": "b"}])

    def test_usage_and_an_unreachable_daemon(self):
        for args, what in ((("server",), "usage: ccci server ls | drain NAME | undrain NAME"),
                           (("server", "frob"), "unknown 'server' command 'frob'"),
                           (("server", "drain"), "usage: ccci server drain NAME"),
                           (("server", "undrain", "a", "b"), "usage: ccci server undrain NAME"),
                           (("server", "drain", "--x"), "usage: ccci server drain NAME"),
                           (("server", "drain", "a b"), "'a b' is not a server name"),
                           (("server", "ls", "extra"), "'server ls' takes no argument 'extra'")):
            r = run_cli("-s", os.path.join(self.tmp, "none.sock"), *args)
            self.assertEqual(r.returncode, 64, (args, r.stderr))
            self.assertIn(what, r.stderr, args)
        for args in (("server", "ls"), ("server", "drain", "a"), ("server", "undrain", "a")):
            r = run_cli("-s", os.path.join(self.tmp, "none.sock"), *args)
            self.assertEqual(r.returncode, 5, (args, r.stderr))
            self.assertIn("none.sock", r.stderr)
        r = run_cli("--help")
        self.assertIn("server drain NAME", r.stdout)


if __name__ == "__main__":
    import unittest

    unittest.main()
