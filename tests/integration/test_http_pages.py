"""The HTML pages of the HTTP front: the recent runs (`/`: rows, links,
filters, paging) and the error page (escaped, with the page headers)."""

import json
import os
import shutil
import subprocess
import unittest
import sys
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET

from itest import CcciTestCase, request, wait_for

PY = sys.executable


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


class PagesTest(CcciTestCase):
    def setUp(self):
        super().setUp()
        self.recipe = os.path.join(self.tmp, "myrecipe")
        os.makedirs(self.recipe)
        harness = os.path.join(self.tmp, "h.py")
        with open(harness, "w") as f:
            f.write("print('<script>alert(1)</script>')\n"
                    "print('\\x1b[31mred\\x1b[0m plain')\n")
        self.d = self.daemon(
            config="min_free_bytes: 0\ncapacity: 2\nharness:\n  command: %s\n"
            % json.dumps([PY, harness])
        ).start()

    def submit(self):
        r = request(self.d.socket, {"v": 1, "op": "submit", "dir": self.recipe})
        self.assertTrue(r["ok"], r)
        run_id = r["id"]

        def done():
            s = request(self.d.socket, {"v": 1, "op": "show", "id": run_id})
            return s["run"]["state"] == "finished"

        wait_for(done, what="run %s to finish" % run_id)
        return run_id

    def test_index_lists_filters_and_pages(self):
        ids = [self.submit() for _ in range(2)]
        status, headers, body = get(self.d.url("/"))
        self.assertEqual(status, 200)
        self.assertTrue(headers["Content-Type"].startswith("text/html"))
        self.assertIn("script-src 'self'", headers["Content-Security-Policy"])
        self.assertIn('name="viewport"', body)
        self.assertIn("<th>duration</th>", body)
        self.assertRegex(body, r"<td>\d+s</td><td><a href=\"/runs/")
        for i in ids:
            self.assertIn('href="/runs/%s"' % i, body)
        self.assertIn('href="/recipes/myrecipe"', body)
        # The table is well-formed markup.
        start, end = body.index("<table>"), body.index("</table>") + 8
        rows = ET.fromstring(body[start:end]).findall("./tbody/tr")
        self.assertEqual(len(rows), 2)
        # Newest first.
        self.assertLess(body.index(ids[1]), body.index(ids[0]))
        _, _, other = get(self.d.url("/?recipe=nope"))
        self.assertNotIn(ids[0], other)
        _, _, fin = get(self.d.url("/?recipe=myrecipe&state=finished"))
        self.assertIn(ids[0], fin)
        _, _, queued = get(self.d.url("/?state=queued"))
        self.assertNotIn(ids[0], queued)
        # Page 2 of two runs is empty and links back, keeping the filter.
        _, _, p2 = get(self.d.url("/?page=2&recipe=myrecipe"))
        self.assertNotIn(ids[0], p2)
        self.assertIn('href="/?page=1&amp;recipe=myrecipe"', p2)
        self.assertNotIn("older</a>", p2)

    def test_error_page_is_escaped_html(self):
        status, headers, body = get(self.d.url("/?page=0"))
        self.assertEqual(status, 400)
        self.assertTrue(headers["Content-Type"].startswith("text/html"))
        self.assertIn("Content-Security-Policy", headers)
        self.assertIn("400 Bad Request", body)
        status, _, body = get(self.d.url("/?recipe=%3Cscript%3Ex"))
        self.assertEqual(status, 200)
        self.assertNotIn("<script>", body)
        self.assertIn("&lt;script&gt;x", body)

    def test_recipe_page_history_and_svg(self):
        ids = [self.submit() for _ in range(2)]
        status, headers, body = get(self.d.url("/recipes/myrecipe"))
        self.assertEqual(status, 200)
        self.assertIn("Content-Security-Policy", headers)
        for i in ids:
            self.assertIn('href="/runs/%s"' % i, body)
        svg = body[body.index("<svg"):body.index("</svg>") + 6]
        root = ET.fromstring(svg)
        self.assertEqual(root.tag, "{http://www.w3.org/2000/svg}svg")
        self.assertEqual(len(root.findall("{http://www.w3.org/2000/svg}circle")), 2)
        status, _, body = get(self.d.url("/recipes/%3Cb%3E"))
        self.assertEqual(status, 404)
        self.assertIn("&#39;&lt;b&gt;&#39;", body)

    def test_run_page_escapes_and_anchors(self):
        run_id = self.submit()
        status, headers, body = get(self.d.url("/runs/" + run_id))
        self.assertEqual(status, 200, body)
        self.assertIn("Content-Security-Policy", headers)
        self.assertNotIn("<script>", body)
        self.assertIn("&lt;script&gt;alert(1)&lt;/script&gt;", body)
        self.assertIn('<span class="a-f1">red</span> plain', body)
        self.assertIn('id="s0"', body)
        self.assertRegex(body, r'<div class="l" id="s0-L1"><a href="#s0-L1">1</a>')
        status, _, body = get(self.d.url("/runs/nope"))
        self.assertEqual(status, 404)

    def test_stylesheet(self):
        status, headers, body = get(self.d.url("/static/style.css"))
        self.assertEqual(status, 200)
        self.assertTrue(headers["Content-Type"].startswith("text/css"))
        self.assertIn("max-age", headers["Cache-Control"])
        self.assertIn(".a-f1", body)
        _, _, page = get(self.d.url("/"))
        self.assertIn('href="/static/style.css?v=', page)
        status, _, _ = get(self.d.url("/static/nope.js"))
        self.assertEqual(status, 404)

    @unittest.skipUnless(shutil.which("chromium"), "chromium is not installed")
    def test_browser_renders_run_page(self):
        run_id = self.submit()
        out = os.environ.get("CCCI_ARTIFACTS", "/tmp/ccci-artifacts")
        os.makedirs(out, exist_ok=True)
        prof = os.path.join(self.tmp, "prof")
        base = ["chromium", "--headless=new", "--no-sandbox", "--disable-gpu",
                "--hide-scrollbars", "--no-first-run", "--user-data-dir=" + prof]
        url = self.d.url("/runs/" + run_id)
        dom = subprocess.run(base + ["--dump-dom", url], capture_output=True,
                             text=True, timeout=120).stdout
        # The <script> line is text in the DOM, and no script ran.
        self.assertIn("&lt;script&gt;alert(1)&lt;/script&gt;", dom)
        self.assertNotIn("<script>alert", dom)
        self.assertIn('<span class="a-f1">red</span>', dom)
        for name, size in (("run-page.png", "1280,800"), ("run-page-phone.png", "390,844")):
            png = os.path.join(out, name)
            subprocess.run(base + ["--window-size=" + size, "--screenshot=" + png, url],
                           capture_output=True, timeout=120)
            with open(png, "rb") as f:
                self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
            print("screenshot:", png)


class LivePageTest(CcciTestCase):
    """/runs/<id> while the run writes: the lines after the page was served
    arrive through its stream and are rendered in the browser."""

    LINES = 30

    def setUp(self):
        super().setUp()
        self.recipe = os.path.join(self.tmp, "liverecipe")
        os.makedirs(self.recipe)
        harness = os.path.join(self.tmp, "h.py")
        with open(harness, "w") as f:
            f.write(
                "import sys, time\n"
                "print('~~~ step build', flush=True)\n"
                "for i in range(%d):\n"
                "    if i == 12:\n"
                "        print(\"<script>document.title='pwned'</script>\", flush=True)\n"
                "    print('line %%d \\x1b[1;32mgreen\\x1b[0m' %% i, flush=True)\n"
                "    time.sleep(0.25)\n" % self.LINES)
        self.d = self.daemon(
            config="min_free_bytes: 0\ncapacity: 2\nharness:\n  command: %s\n"
            % json.dumps([PY, harness])
        ).start()

    @unittest.skipUnless(shutil.which("chromium"), "chromium is not installed")
    def test_lines_appear_live(self):
        r = request(self.d.socket, {"v": 1, "op": "submit", "dir": self.recipe})
        self.assertTrue(r["ok"], r)
        run_id = r["id"]

        url = self.d.url("/runs/" + run_id)
        served = []

        def some_lines():
            status, _, body = get(url)
            self.assertEqual(status, 200)
            served[:] = [body]
            return 'id="s1-L3"' in body

        wait_for(some_lines, what="the first lines on the page")
        served = served[0]
        self.assertIn('src="/static/run.js', served)
        before = served.count('class="l" id="s1-L')
        self.assertLess(before, self.LINES, "the run wrote everything before the page was served")
        out = os.environ.get("CCCI_ARTIFACTS", "/tmp/ccci-artifacts")
        os.makedirs(out, exist_ok=True)
        png = os.path.join(out, "run-page-live.png")
        base = ["chromium", "--headless=new", "--no-sandbox", "--disable-gpu",
                "--hide-scrollbars", "--no-first-run",
                "--user-data-dir=" + os.path.join(self.tmp, "prof")]
        # Virtual time does not advance while the stream is open, so the
        # DOM is dumped once the run's end event closed it.
        dom = subprocess.run(base + ["--virtual-time-budget=30000", "--dump-dom", url],
                             capture_output=True, text=True, timeout=120).stdout
        after = dom.count('class="l" id="s1-L')
        # The harness's lines, its <script> line and the daemon's last line.
        self.assertEqual(after, self.LINES + 2, dom[-3000:])
        for k in range(1, self.LINES + 3):
            self.assertEqual(dom.count('id="s1-L%d"' % k), 1, "line %d once" % k)
        self.assertIn("&lt;script&gt;document.title='pwned'&lt;/script&gt;", dom)
        self.assertNotIn("<title>pwned", dom)
        self.assertIn('<span class="a-b a-f2">green</span>', dom.replace("a-f2 a-b", "a-b a-f2"))
        self.assertIn("finished: success", dom)
        subprocess.run(base + ["--window-size=1280,900", "--screenshot=" + png, url],
                       capture_output=True, timeout=120)
        with open(png, "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
        print("screenshot:", png)
