"""Custom tier of the pages example recipe: the live app answers over HTTP(S).

Runs against the app the harness deployed: `$CCCI_APP_URL` (required),
`$CCCI_APP_DOMAIN`; when `$CCCI_GATEWAY` (`host:port` or `http://host:port`)
is set the request goes to that address with the app's domain as Host (and
as TLS server name), `$CCCI_GATEWAY_INSECURE=1` skipping certificate checks.
Runs with `python3 -m unittest` and with `python3 -m pytest`."""

import http.client
import os
import socket
import ssl
import unittest
import urllib.parse

TIMEOUT = 30


def _connection(url):
    u = urllib.parse.urlsplit(url)
    host = u.hostname
    port = u.port or (443 if u.scheme == "https" else 80)
    tls = u.scheme == "https"
    gw = os.environ.get("CCCI_GATEWAY", "")
    insecure = os.environ.get("CCCI_GATEWAY_INSECURE") == "1"
    if gw:
        if gw.startswith("http://"):
            tls, gw = False, gw[len("http://"):]
        elif gw.startswith("https://"):
            tls, gw = True, gw[len("https://"):]
        gw_host, _, gw_port = gw.rstrip("/").rpartition(":")
        addr = (gw_host.strip("[]"), int(gw_port))
    else:
        addr = (host, port)
    if not tls:
        conn = http.client.HTTPConnection(addr[0], addr[1], timeout=TIMEOUT)
    else:
        ctx = ssl.create_default_context()
        if insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE

        class Conn(http.client.HTTPSConnection):
            def connect(self):
                sock = socket.create_connection(addr, TIMEOUT)
                self.sock = ctx.wrap_socket(sock, server_hostname=host)

        conn = Conn(host, port, timeout=TIMEOUT, context=ctx)
    return conn, host, (u.path or "/") + ("?" + u.query if u.query else "")


def fetch(method, url):
    conn, host, path = _connection(url)
    try:
        conn.request(method, path, headers={"Host": host, "User-Agent": "pages-custom-test"})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


class FrontPage(unittest.TestCase):
    def setUp(self):
        self.url = os.environ.get("CCCI_APP_URL")
        if not self.url:
            self.fail("CCCI_APP_URL is not set: run this under ccci harness")

    def test_get_front_page(self):
        status, body = fetch("GET", self.url)
        self.assertTrue(200 <= status < 400, "GET %s: status %d" % (self.url, status))
        self.assertTrue(body, "GET %s: empty body" % self.url)

    def test_unknown_page_is_not_found(self):
        status, _ = fetch("GET", urllib.parse.urljoin(self.url, "/no-such-page-ccci.html"))
        self.assertEqual(status, 404)


if __name__ == "__main__":
    unittest.main()
