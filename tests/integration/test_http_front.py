"""The HTTP front as the daemon runs it (docs/http.md): its address, the
default public URL, the router's answers, reload and a busy port."""
import http.client
import json
import signal
import socket
import unittest

from itest import CcciTestCase, run_cli, wait_for


def get(address, path, method="GET", body=None, headers=None):
    host, port = address.rsplit(":", 1)
    c = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


class HttpFrontTest(CcciTestCase):
    def test_port_zero_is_reported_by_status(self):
        d = self.daemon().start()
        st = d.status()
        host, port = st["http"]["listen"].rsplit(":", 1)
        self.assertEqual(host, "127.0.0.1")
        self.assertGreater(int(port), 0)
        self.assertEqual(st["http"]["public_url"], "http://" + st["http"]["listen"])
        self.assertIn("http.public_url is not set", d.logtext())
        out = run_cli("-s", d.socket, "status")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn(st["http"]["listen"], out.stdout)
        status, _, body = get(st["http"]["listen"], "/healthz")
        self.assertEqual(status, 200, body)

    def test_router_answers_404_and_405(self):
        d = self.daemon().start()
        a = d.http_address()
        status, h, body = get(a, "/no/such/page")
        self.assertEqual(status, 404)
        self.assertEqual(h.get("x-content-type-options"), "nosniff")
        status, h, body = get(a, "/api/nothing")
        self.assertEqual(status, 404)
        self.assertEqual(json.loads(body)["error"]["code"], 404)
        status, h, _ = get(a, "/api/runs", method="POST", body=b"")
        self.assertEqual(status, 405)
        self.assertEqual(h.get("allow"), "GET, HEAD")
        status, h, _ = get(a, "/hook", method="GET")
        self.assertEqual(status, 405)
        self.assertEqual(h.get("allow"), "POST")
        # Empty segments and a trailing slash are other paths.
        self.assertEqual(get(a, "/runs//x")[0], 404)
        self.assertEqual(get(a, "/healthz/")[0], 404)

    def test_public_url_from_the_config_and_reload(self):
        d = self.daemon(config="http:\n  listen: 127.0.0.1:0\n  public_url: https://ci.example.org//\n")
        d.start()
        self.assertEqual(d.status()["http"]["public_url"], "https://ci.example.org")
        self.assertNotIn("http.public_url is not set", d.logtext())
        with open(d.config_path) as f:
            text = f.read().replace("https://ci.example.org//", "https://other.example/ci")
        with open(d.config_path, "w") as f:
            f.write(text)
        d.send(signal.SIGHUP)
        wait_for(lambda: d.status()["http"]["public_url"] == "https://other.example/ci",
                 what="the new public_url")

    def test_busy_port_refuses_to_start(self):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        try:
            d = self.daemon(config="http:\n  listen: 127.0.0.1:%d\n" % port)
            d.start(wait=False)
            self.assertEqual(d.proc.wait(30), 1)
            self.assertIn("127.0.0.1:%d" % port, d.logtext())
            self.assertIn("address already in use", d.logtext().lower())
        finally:
            s.close()

    def test_bad_listen_address_is_a_config_error(self):
        d = self.daemon(config="http:\n  listen: nowhere\n")
        d.start(wait=False)
        self.assertEqual(d.proc.wait(30), 1)
        self.assertIn("%s:4:3: http.listen" % d.config_path, d.logtext())


if __name__ == "__main__":
    unittest.main()
