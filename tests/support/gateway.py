#!/usr/bin/env python3
"""The fake swarm's gateway (a stand-in for Traefik): one HTTP or HTTPS
server on 127.0.0.1 that answers for every app the fake `abra` deployed,
keyed by the Host header. See README.md next to this file.

usage: gateway.py [--swarm DIR] [--port N] [--port-file F] [--tls] [--tls-dir D] [--log F]
"""

import argparse
import html
import http.server
import mimetypes
import os
import posixpath
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import fakeswarm as fs  # noqa: E402


def lookup(swarm, host):
    """-> (status, stack dict, server, stack name) for a Host header."""
    domain = host.rsplit(":", 1)[0] if host and not host.endswith("]") else host
    domain = (domain or "").strip().lower().rstrip(".")
    if not domain:
        return 404, None, None, None
    found = fs.find_stack_by_domain(swarm, domain)
    if not found:
        return 404, None, None, None
    srv, sname, stack = found
    svcs = stack["services"]
    if not svcs or any(fs.service_running(s) == 0 for s in svcs.values()):
        return 502, stack, srv, sname
    return 200, stack, srv, sname


def safe_join(root, urlpath):
    """The file under root that urlpath names, or None (no `..`, no
    symlink leaving root)."""
    p = posixpath.normpath(urllib.parse.unquote(urlpath))
    parts = [x for x in p.split("/") if x and x != "."]
    if any(x == ".." for x in parts):
        return None
    full = os.path.join(root, *parts) if parts else root
    real_root = os.path.realpath(root)
    real = os.path.realpath(full)
    if real != real_root and not real.startswith(real_root + os.sep):
        return None
    return real


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "ccci-fake-gateway/1"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        if self.server.logfile:
            with self.server.log_lock:
                self.server.logfile.write("%s %s\n" % (self.headers.get("Host", "-"), fmt % args))
                self.server.logfile.flush()

    def send_body(self, status, body, ctype="text/html; charset=utf-8", head=False):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def serve(self, head):
        host = self.headers.get("Host", "")
        sni = getattr(self.connection, "fake_sni", None) if self.server.tls else None
        hostname = host.rsplit(":", 1)[0].lower() if host else ""
        if self.server.tls and sni != hostname:
            body = ("misdirected request: TLS server name %r, Host %r\n" % (sni, host)).encode()
            return self.send_body(421, body, "text/plain; charset=utf-8", head)
        status, stack, srv, sname = lookup(self.server.swarm, host)
        if status == 404:
            return self.send_body(404, b"404 page not found\n", "text/plain; charset=utf-8", head)
        if status == 502:
            return self.send_body(502, b"Bad Gateway\n", "text/plain; charset=utf-8", head)
        path = urllib.parse.urlsplit(self.path).path or "/"
        # volume files: the app service's mounts first, then every service's
        roots = []
        for svc_name in ["app"] + sorted(k for k in stack["services"] if k != "app"):
            svc = stack["services"].get(svc_name)
            for vol, _ in (svc or {}).get("mounts", []):
                roots.append(srv.volume_dir("%s_%s" % (sname, vol)))
        for root in roots:
            f = safe_join(root, path)
            if f and os.path.isdir(f):
                f = os.path.join(f, "index.html")
            if f and os.path.isfile(f):
                with open(f, "rb") as fh:
                    data = fh.read()
                ctype = mimetypes.guess_type(f)[0] or "application/octet-stream"
                if ctype.startswith("text/"):
                    ctype += "; charset=utf-8"
                return self.send_body(200, data, ctype, head)
        if path == "/":
            app = stack["services"].get("app", {})
            version = app.get("labels", {}).get("coop-cloud.%s.version" % sname, "")
            body = ("<!doctype html><title>%s</title><h1>%s</h1><p>recipe %s, version %s</p>\n" % (
                html.escape(stack["domain"]), html.escape(stack["domain"]),
                html.escape(stack.get("recipe", "")), html.escape(version))).encode()
            return self.send_body(200, body, head=head)
        return self.send_body(404, b"404 Not Found\n", "text/plain; charset=utf-8", head)

    def do_GET(self):
        self.serve(False)

    def do_HEAD(self):
        self.serve(True)

    def refuse(self):
        self.send_body(405, b"405 Method Not Allowed\n", "text/plain; charset=utf-8")

    do_POST = do_PUT = do_DELETE = do_PATCH = refuse


class Gateway(http.server.ThreadingHTTPServer):
    daemon_threads = True


def make_cert(d):
    key, crt = os.path.join(d, "key.pem"), os.path.join(d, "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256",
                    "-days", "2", "-subj", "/CN=ccci-fake-gateway",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", key, "-out", crt],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return crt, key


def main(argv=None):
    ap = argparse.ArgumentParser(description="fake swarm gateway (Traefik stand-in)")
    ap.add_argument("--swarm", default=os.environ.get("FAKE_SWARM_DIR"),
                    help="the fake swarm state dir (default $FAKE_SWARM_DIR)")
    ap.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: any free one)")
    ap.add_argument("--port-file", help="write the port here (atomically) once listening")
    ap.add_argument("--tls", action="store_true", help="HTTPS with a self-signed certificate")
    ap.add_argument("--tls-dir", help="where the certificate is made (default: a temp dir)")
    ap.add_argument("--log", help="append one line per request to this file")
    a = ap.parse_args(argv)
    if not a.swarm:
        ap.error("--swarm or $FAKE_SWARM_DIR is required")
    srv = Gateway(("127.0.0.1", a.port), Handler)
    srv.swarm = a.swarm
    srv.tls = a.tls
    srv.log_lock = threading.Lock()
    srv.logfile = open(a.log, "a", encoding="utf-8") if a.log else None
    tmp = None
    if a.tls:
        d = a.tls_dir
        if not d:
            d = tmp = tempfile.mkdtemp(prefix="fake-gateway-")
        os.makedirs(d, exist_ok=True)
        crt, key = make_cert(d)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(crt, key)

        def on_sni(sock, name, _ctx):
            sock.fake_sni = (name or "").lower()
        ctx.sni_callback = on_sni
        ctx_wrap = ctx.wrap_socket

        class TLSGateway(Gateway):
            def get_request(self):
                conn, addr = self.socket.accept()
                conn.settimeout(30)
                tconn = ctx_wrap(conn, server_side=True, do_handshake_on_connect=False)
                return tconn, addr

            def finish_request(self, request, client_address):
                try:
                    request.do_handshake()
                except (ssl.SSLError, OSError):
                    return
                super().finish_request(request, client_address)

        srv.__class__ = TLSGateway
    port = srv.server_address[1]
    if a.port_file:
        fs.atomic_write(a.port_file, "%d\n" % port)
    print(port, flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        srv.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        srv.server_close()
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
