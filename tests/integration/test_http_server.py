"""The HTTP engine through the real daemon (docs/http.md, "The server"): a
corpus of malformed requests, each answered with the right status or a
close, the daemon still answering /healthz after each; slow clients that
hang do not stop it serving others. (The deadlines themselves are tested
with small limits in tests/unit/test_httpd.c.)"""
import http.client
import socket
import unittest

from itest import CcciTestCase

CORPUS = [
    ("garbage request line", b"GARBAGE\r\n\r\n", b"HTTP/1.1 400 "),
    ("extra token", b"GET / HTTP/1.1 x\r\nHost: a\r\n\r\n", b"HTTP/1.1 400 "),
    ("bad method byte", b"G\x00T / HTTP/1.1\r\n\r\n", b"HTTP/1.1 400 "),
    ("absolute-form target", b"GET http://a/healthz HTTP/1.1\r\nHost: a\r\n\r\n",
     b"HTTP/1.1 400 "),
    ("asterisk target", b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", b"HTTP/1.1 400 "),
    ("NUL in the path", b"GET /runs/%00 HTTP/1.1\r\nHost: a\r\n\r\n", b"HTTP/1.1 400 "),
    ("bad escape", b"GET /runs/%G1 HTTP/1.1\r\nHost: a\r\n\r\n", b"HTTP/1.1 400 "),
    ("HTTP/2.0 line", b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", b"HTTP/1.1 505 "),
    ("huge header", b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"a" * 20000 + b"\r\n\r\n",
     b"HTTP/1.1 431 "),
    ("many headers", b"GET / HTTP/1.1\r\n" + b"A: b\r\n" * 300 + b"\r\n", b"HTTP/1.1 431 "),
    ("CL then TE", b"POST /hook HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
     b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /x HTTP/1.1\r\n\r\n", b"HTTP/1.1 400 "),
    ("TE then CL", b"POST /hook HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
     b"Content-Length: 5\r\n\r\n0\r\n\r\n", b"HTTP/1.1 400 "),
    ("two lengths", b"POST /hook HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n"
     b"Content-Length: 2\r\n\r\nab", b"HTTP/1.1 400 "),
    ("obs-fold", b"GET /healthz HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", b"HTTP/1.1 400 "),
    ("bad chunk size", b"POST /hook HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
     b"\r\nzz\r\n", b"HTTP/1.1 400 "),
    ("body where none is taken", b"POST /healthz HTTP/1.1\r\nHost: a\r\n"
     b"Content-Length: 10\r\n\r\n0123456789", b"HTTP/1.1 413 "),
    ("body past 1 MiB", b"POST /hook HTTP/1.1\r\nHost: a\r\nContent-Length: 2000000\r\n\r\n",
     b"HTTP/1.1 413 "),
]


def exchange(address, data, timeout=10):
    """Send @data, read until the server closes."""
    host, port = address.rsplit(":", 1)
    out = b""
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(data)
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
    return out


def healthz(address):
    host, port = address.rsplit(":", 1)
    c = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        c.request("GET", "/healthz")
        r = c.getresponse()
        r.read()
        return r.status
    finally:
        c.close()


class HttpServerTest(CcciTestCase):
    def test_malformed_corpus(self):
        d = self.daemon().start()
        a = d.http_address()
        for name, req, want in CORPUS:
            with self.subTest(name):
                got = exchange(a, req)
                self.assertTrue(got.startswith(want), "%s: %r" % (name, got[:60]))
                self.assertIn(b"\r\nConnection: close\r\n", got)
                # Nothing pipelined behind a refused request is answered.
                self.assertEqual(got.count(b"HTTP/1.1 "), 1, name)
                self.assertEqual(healthz(a), 200, name)

    def test_pipelined_and_keep_alive(self):
        d = self.daemon().start()
        got = exchange(d.http_address(),
                       b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n"
                       b"HEAD /healthz HTTP/1.1\r\nHost: a\r\n\r\n"
                       b"GET /nowhere HTTP/1.1\r\nHost: a\r\n\r\n"
                       b"GET /healthz HTTP/1.0\r\n\r\n")
        heads = [p for p in got.split(b"HTTP/1.1 ")[1:]]
        self.assertEqual([h[:3] for h in heads], [b"200", b"200", b"404", b"200"])
        self.assertIn(b"Connection: close", heads[3])

    def test_slow_clients_do_not_stop_the_server(self):
        d = self.daemon().start()
        a = d.http_address()
        host, port = a.rsplit(":", 1)
        slow = []
        try:
            for _ in range(50):
                s = socket.create_connection((host, int(port)), timeout=10)
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: a\r\nX-Slow: ")
                slow.append(s)
            idle = socket.create_connection((host, int(port)), timeout=10)
            slow.append(idle)
            for _ in range(20):
                self.assertEqual(healthz(a), 200)
            # The slow ones are still waiting for their heads, not answered.
            slow[0].setblocking(False)
            with self.assertRaises(BlockingIOError):
                slow[0].recv(1)
        finally:
            for s in slow:
                s.close()
        self.assertEqual(healthz(a), 200)


if __name__ == "__main__":
    unittest.main()
