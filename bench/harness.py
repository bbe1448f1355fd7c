"""The harness's own CPU per full run of the example recipe over the fake
abra, docker and gateway of tests/support (every tier, L4), excluding abra,
docker, git and the recipe's tests: the CPU of the `ccci harness` process
itself, read from /proc while it is a zombie (waitid WNOWAIT), so its
children's time is not in it. Target: <= 50 ms per run (issue 14).

usage: python3 bench/harness.py BUILD_DIR [RUNS]"""

import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import benchlib  # noqa: E402

SRC = os.path.dirname(HERE)
SUPPORT = os.path.join(SRC, "tests", "support")
TARGET_MS = 50.0


def self_cpu_ms(pid):
    """On-CPU time of @p pid itself: schedstat (ns) when there, else stat."""
    try:
        with open("/proc/%d/schedstat" % pid) as f:
            return int(f.read().split()[0]) / 1e6
    except (OSError, ValueError, IndexError):
        return benchlib.cpu_seconds(pid) * 1000.0


def one_run(ccci, tmp, env, n):
    run_dir = os.path.join(tmp, "run%d" % n)
    t0 = time.monotonic()
    p = subprocess.Popen([ccci, "harness", "--recipe", os.path.join(tmp, "pages"),
                          "--run-dir", run_dir], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, env=env)
    os.waitid(os.P_PID, p.pid, os.WEXITED | os.WNOWAIT)
    wall = time.monotonic() - t0
    own = self_cpu_ms(p.pid)
    # The whole tree's CPU (the harness and every child it reaped).
    _, status, ru = os.wait4(p.pid, 0)
    tree = (ru.ru_utime + ru.ru_stime) * 1000.0
    p.returncode = os.waitstatus_to_exitcode(status)
    with open(os.path.join(run_dir, "results.json")) as f:
        level = json.load(f)["level"]
    if p.returncode != 0 or level != "L4":
        sys.exit("harness run %d: exit %d, level %s" % (n, p.returncode, level))
    return own, tree, wall


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    ccci = os.path.join(sys.argv[1], "ccci")
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    with tempfile.TemporaryDirectory(prefix="ccci-bench-harness-") as tmp:
        swarm = os.path.join(tmp, "swarm")
        real = os.path.join(tmp, "real")
        os.makedirs(os.path.join(real, "servers", "default"))
        os.makedirs(swarm)
        subprocess.run([os.path.join(SRC, "examples", "make-recipe-repo"),
                        os.path.join(SRC, "examples", "recipes", "pages"),
                        os.path.join(tmp, "pages"), "--tags"], check=True,
                       stdout=subprocess.DEVNULL)
        port_file = os.path.join(tmp, "gw.port")
        gw = subprocess.Popen([sys.executable, os.path.join(SUPPORT, "gateway.py"),
                               "--swarm", swarm, "--port-file", port_file],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while not (os.path.exists(port_file) and open(port_file).read().strip()):
                time.sleep(0.05)
            with open(port_file) as f:
                port = int(f.read().strip())
            env = dict(os.environ, PATH=SUPPORT + os.pathsep + os.environ["PATH"],
                       FAKE_SWARM_DIR=swarm, CCCI_ABRA_DIR_REAL=real,
                       CCCI_GATEWAY="http://127.0.0.1:%d" % port)
            rows = [one_run(ccci, tmp, env, n) for n in range(runs)]
        finally:
            gw.terminate()
            gw.wait()
    own = sorted(r[0] for r in rows)
    tree = sorted(r[1] for r in rows)
    wall = sorted(r[2] for r in rows)
    med = lambda v: v[len(v) // 2]  # noqa: E731
    print("harness full run (example recipe, L4, fake abra), %d runs" % runs)
    print("  harness CPU (own)    median %7.1f ms  max %7.1f ms  target <= %.0f ms"
          % (med(own), own[-1], TARGET_MS))
    print("  whole tree CPU       median %7.1f ms  (abra, docker, git, tests included)"
          % med(tree))
    print("  harness share        %.1f %%" % (100.0 * med(own) / med(tree)))
    print("  wall                 median %7.2f s" % med(wall))
    print("  %s" % ("ok" if own[-1] <= TARGET_MS else "OVER TARGET"))


if __name__ == "__main__":
    main()
