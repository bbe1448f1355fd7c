"""SCREENSHOT's browser call (src/harness/shot.c, ccci_shot_take) through
tests/shot_take: the real chromium against the fake gateway, plain HTTP and
TLS (SNI, --ignore-certificate-errors), a PNG that decodes to the page; the
flags it passes, MISSING and FAILED with stand-in browsers.

Chromium must be installed where CI runs (scripts/dev.sh installs Debian's
`chromium`): with CI=true a missing chromium fails these tests; elsewhere
the tests that need it are skipped, saying so."""

import os
import shutil
import stat
import struct
import subprocess
import tempfile
import time
import unittest
import zlib

from fakeapp import FakeApp
from itest import WAIT

SHOT_TAKE = os.environ.get("CCCI_SHOT_TAKE", "")
CHROMIUM = shutil.which("chromium")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# The page's background, so a screenshot of an error page cannot pass.
BG = (0xD0, 0x20, 0x90)
PAGE = ("<!doctype html><html><head><title>shot</title></head>"
        "<body style='margin:0;background:#d02090;color:#fff;font:40px sans-serif'>"
        "<div style='position:absolute;top:300px;left:40px'>ccci screenshot</div>"
        "</body></html>\n")
PNG_SIG = b"\x89PNG\r\n\x1a\n"


def png_info(path):
    """(width, height, rows): rows is a function giving the first n rows
    of pixels as lists of (r, g, b) tuples (8-bit RGB or RGBA only)."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == PNG_SIG, "not a PNG: %r" % data[:8]
    pos, chunks, idat = 8, {}, b""
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        crc = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])[0]
        assert zlib.crc32(kind + body) == crc, "bad CRC in chunk %r" % kind
        if kind == b"IDAT":
            idat += body
        else:
            chunks.setdefault(kind, body)
        pos += 12 + n
        if kind == b"IEND":
            break
    w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", chunks[b"IHDR"])
    assert depth == 8 and ctype in (2, 6) and interlace == 0, (depth, ctype, interlace)
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(idat)
    stride = w * bpp
    assert len(raw) == h * (stride + 1), "pixel data of the wrong size"

    def rows(count):
        out, prev = [], bytearray(stride)
        for y in range(min(count, h)):
            ft = raw[y * (stride + 1)]
            line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b = prev[i]
                c = prev[i - bpp] if i >= bpp else 0
                if ft == 1:
                    line[i] = (line[i] + a) & 0xFF
                elif ft == 2:
                    line[i] = (line[i] + b) & 0xFF
                elif ft == 3:
                    line[i] = (line[i] + ((a + b) >> 1)) & 0xFF
                elif ft == 4:
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                    line[i] = (line[i] + pred) & 0xFF
            out.append([tuple(line[x * bpp:x * bpp + 3]) for x in range(w)])
            prev = line
        return out

    return w, h, rows


class ShotCase(unittest.TestCase):
    def setUp(self):
        self.assertTrue(SHOT_TAKE and os.path.exists(SHOT_TAKE),
                        "set CCCI_SHOT_TAKE to the tests/shot_take binary (ctest does)")
        self.tmp = tempfile.mkdtemp(prefix="ccci-shot-", dir="/tmp")
        # The browser's profile goes under TMPDIR: it must be gone after.
        self.tmpdir = os.path.join(self.tmp, "t")
        os.makedirs(self.tmpdir)

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def take(self, chromium, url, domain, gateway, insecure, png, timeout_ms=60000,
             env=None):
        e = dict(os.environ, TMPDIR=self.tmpdir)
        e.update(env or {})
        t0 = time.monotonic()
        p = subprocess.run([SHOT_TAKE, chromium, url, domain, gateway or "",
                            "1" if insecure else "0", png, str(timeout_ms)],
                           capture_output=True, text=True, env=e, timeout=WAIT * 4)
        self.took = time.monotonic() - t0
        last = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else ""
        # No profile left behind, whatever happened.
        self.assertEqual(os.listdir(self.tmpdir), [], p.stdout)
        return p, last

    def fake_browser(self, script):
        """A stand-in `chromium` that records its argv and runs @p script."""
        path = os.path.join(self.tmp, "fake-chromium")
        with open(path, "w") as f:
            f.write("#!/bin/sh\nprintf '%%s\\n' \"$@\" > %s/argv\n"
                    "for a in \"$@\"; do case $a in --screenshot=*) png=${a#--screenshot=};; "
                    "--user-data-dir=*) prof=${a#--user-data-dir=};; "
                    "--log-file=*) log=${a#--log-file=};; esac; done\n"
                    "[ -d \"$prof\" ] && echo profile-ok >> %s/argv\n"
                    "env | grep '^XDG_' >> %s/argv\n%s\n"
                    % (self.tmp, self.tmp, self.tmp, script))
        os.chmod(path, stat.S_IRWXU)
        return path

    def argv(self):
        with open(os.path.join(self.tmp, "argv")) as f:
            return f.read().splitlines()


class Browser(ShotCase):
    """The real chromium and the fake gateway."""

    @classmethod
    def setUpClass(cls):
        if not CHROMIUM:
            return
        cls.app_tmp = tempfile.mkdtemp(prefix="ccci-shotapp-", dir="/tmp")
        cls.app = FakeApp(cls.app_tmp, domain="shot.test")
        cls.app.write("index.html", PAGE)
        cls.plain = cls.app.gateway(tls=False)
        cls.tls = cls.app.gateway(tls=True)

    @classmethod
    def tearDownClass(cls):
        if CHROMIUM:
            cls.app.close()
            shutil.rmtree(cls.app_tmp, ignore_errors=True)

    def setUp(self):
        if not CHROMIUM and not IN_CI:
            self.skipTest("chromium is not installed (scripts/dev.sh installs Debian's "
                          "chromium package); with CI=true this fails")
        super().setUp()
        if not CHROMIUM:
            self.fail("chromium is not on PATH, and CI=true: scripts/dev.sh must install "
                      "Debian's chromium package")

    def check_page(self, png):
        w, h, rows = png_info(png)
        self.assertEqual((w, h), (1280, 800))
        top = rows(60)
        for x, y in [(5, 5), (640, 30), (1270, 55)]:
            px = top[y][x]
            self.assertTrue(all(abs(px[i] - BG[i]) <= 8 for i in range(3)),
                            "pixel (%d, %d) is %r, not the page's %r" % (x, y, px, BG))

    def test_plain_http_gateway(self):
        png = os.path.join(self.tmp, "install.png")
        p, last = self.take("chromium", "http://shot.test/", "shot.test", self.plain, False, png)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertTrue(last.startswith("taken "), last)
        self.check_page(png)
        print("\nscreenshot (plain HTTP) took %.2f s" % self.took)
        # The browser's command line is logged (hcall), the gateway mapped.
        self.assertIn("'--host-resolver-rules=MAP shot.test %s'" % self.plain[7:], p.stdout)

    def test_tls_gateway_insecure(self):
        # The gateway answers 421 unless SNI and Host are the app's name.
        png = os.path.join(self.tmp, "install.png")
        p, last = self.take("chromium", "https://shot.test/", "shot.test", self.tls, True, png)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.check_page(png)
        print("\nscreenshot (TLS) took %.2f s" % self.took)

    def test_tls_certificate_checked(self):
        # Without gateway_insecure the self-signed certificate is refused:
        # whatever chromium draws then, it is not the page.
        png = os.path.join(self.tmp, "install.png")
        p, last = self.take("chromium", "https://shot.test/", "shot.test", self.tls, False, png)
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertEqual(last, "failed: chromium could not load https://shot.test/: "
                               "net::ERR_CERT_AUTHORITY_INVALID (harness.gateway_insecure "
                               "skips the certificate check)")
        self.assertFalse(os.path.exists(png))
        # What chromium logged is shown, without its D-Bus noise.
        self.assertIn("chromium: ", p.stdout)
        self.assertNotIn("dbus", p.stdout.lower())

    def test_old_file_is_not_a_screenshot(self):
        # An unreachable gateway: chromium writes no PNG for a page that
        # failed to load, and the file from before is gone.
        png = os.path.join(self.tmp, "install.png")
        with open(png, "wb") as f:
            f.write(PNG_SIG + b"old")
        p, last = self.take("chromium", "http://shot.test/", "shot.test", "http://127.0.0.1:9",
                            False, png, timeout_ms=30000)
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertEqual(last, "failed: chromium could not load http://shot.test/: "
                               "net::ERR_CONNECTION_REFUSED")
        self.assertFalse(os.path.exists(png))


class Flags(ShotCase):
    """What ccci_shot_take passes and how it reads the outcome, with a
    stand-in browser (no chromium needed)."""

    def test_flags(self):
        png = os.path.join(self.tmp, "a.png")
        fake = self.fake_browser("printf '\\211PNG\\r\\n\\032\\nrest' > \"$png\"")
        p, last = self.take(fake, "https://app.test/health", "app.test", "127.0.0.2:8443",
                            True, png)
        self.assertEqual((p.returncode, last.split()[0]), (0, "taken"), p.stdout)
        argv = self.argv()
        for flag in ["--headless=new", "--disable-gpu", "--hide-scrollbars",
                     "--window-size=1280,800", "--no-first-run", "--screenshot=" + png,
                     "--ignore-certificate-errors",
                     "--host-resolver-rules=MAP app.test 127.0.0.2:8443", "profile-ok"]:
            self.assertIn(flag, argv)
        self.assertEqual(argv[argv.index("profile-ok") - 1], "https://app.test/health")
        self.assertEqual("--no-sandbox" in argv, os.geteuid() == 0)
        prof = [a for a in argv if a.startswith("--user-data-dir=")][0][16:]
        self.assertTrue(prof.startswith(self.tmpdir + "/ccci-chromium-"), prof)
        self.assertIn("XDG_CACHE_HOME=%s/cache" % prof, argv)
        self.assertIn("XDG_CONFIG_HOME=%s/config" % prof, argv)

    def test_flags_plain_gateway_and_dns(self):
        png = os.path.join(self.tmp, "a.png")
        fake = self.fake_browser("printf '\\211PNG\\r\\n\\032\\n' > \"$png\"")
        p, _ = self.take(fake, "http://app.test/", "app.test", "http://127.0.0.1:8080", False,
                         png)
        self.assertEqual(p.returncode, 0, p.stdout)
        argv = self.argv()
        self.assertIn("--host-resolver-rules=MAP app.test 127.0.0.1:8080", argv)
        self.assertNotIn("--ignore-certificate-errors", argv)
        p, _ = self.take(fake, "https://app.test/", "app.test", "", False, png)
        self.assertEqual(p.returncode, 0, p.stdout)
        self.assertFalse([a for a in self.argv() if a.startswith("--host-resolver-rules")])

    def test_missing(self):
        png = os.path.join(self.tmp, "a.png")
        p, last = self.take("no-such-browser", "https://app.test/", "app.test", "", False, png)
        self.assertEqual(p.returncode, 2, p.stdout)
        self.assertEqual(last, "missing: no-such-browser not found (harness.chromium; "
                               "install Debian's chromium package)")
        p, last = self.take("chromium", "https://app.test/", "app.test", "", False, png,
                            env={"PATH": self.tmp})
        self.assertEqual(last, "missing: chromium not found (install Debian's chromium "
                               "package)")
        p, last = self.take(os.path.join(self.tmp, "nope", "chromium"), "https://app.test/",
                            "app.test", "", False, png)
        self.assertEqual(p.returncode, 2, p.stdout)
        self.assertFalse(os.path.exists(png))

    def test_failed(self):
        png = os.path.join(self.tmp, "a.png")
        cases = [("exit 0", "exited without writing " + png),
                 ("echo '<html>' > \"$png\"", "wrote %s, but it is not a PNG" % png),
                 ("echo boom >&2; exit 3", "exited with status 3: boom")]
        for script, why in cases:
            with open(png, "wb") as f:
                f.write(PNG_SIG + b"old")
            p, last = self.take(self.fake_browser(script), "https://app.test/", "app.test",
                                "", False, png)
            self.assertEqual(p.returncode, 1, p.stdout)
            self.assertTrue(last.startswith("failed: ") and last.endswith(why), last)
            self.assertFalse(os.path.exists(png), script)

    def test_page_load_error(self):
        png = os.path.join(self.tmp, "a.png")
        fake = self.fake_browser(
            "echo '[1:1:0101/000000.0:ERROR:dbus/bus.cc:405] Failed to connect to the bus' "
            ">> \"$log\"\n"
            "echo '[1:1:0101/000000.1:ERROR:net/x.cc:1] handshake failed' >> \"$log\"\n"
            "echo '[1:1:0101/000000.2:ERROR:components/headless/command_handler/"
            "headless_command_handler.cc:403] Page load failed: net::ERR_CERT_DATE_INVALID' "
            ">> \"$log\"")
        p, last = self.take(fake, "https://app.test/", "app.test", "", False, png)
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertEqual(last, "failed: %s could not load https://app.test/: "
                               "net::ERR_CERT_DATE_INVALID (harness.gateway_insecure skips "
                               "the certificate check)" % fake)
        self.assertIn("chromium: [1:1:0101/000000.1:ERROR:net/x.cc:1] handshake failed",
                      p.stdout)
        self.assertNotIn("Failed to connect to the bus", p.stdout)
        # No hint when the check is already off.
        p, last = self.take(fake, "https://app.test/", "app.test", "", True, png)
        self.assertTrue(last.endswith("net::ERR_CERT_DATE_INVALID"), last)

    def test_png_then_nonzero_exit_is_taken(self):
        png = os.path.join(self.tmp, "a.png")
        fake = self.fake_browser("printf '\\211PNG\\r\\n\\032\\n' > \"$png\"; exit 1")
        p, last = self.take(fake, "https://app.test/", "app.test", "", False, png)
        self.assertEqual(p.returncode, 0, p.stdout)
        self.assertIn("exited with status 1 after writing", p.stdout)

    def test_timeout(self):
        png = os.path.join(self.tmp, "a.png")
        fake = self.fake_browser("printf '\\211PNG\\r\\n\\032\\n' > \"$png\"; sleep 30")
        p, last = self.take(fake, "https://app.test/", "app.test", "", False, png,
                            timeout_ms=500)
        self.assertLess(self.took, 10)
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertTrue(last.endswith("timed out"), last)
        self.assertFalse(os.path.exists(png))


if __name__ == "__main__":
    unittest.main()
