"""What the Python benchmarks share: starting a daemon, one request on its
socket, and a process's CPU, page faults and peak RSS from /proc."""

import json
import os
import socket
import subprocess
import sys
import time

TICK = os.sysconf("SC_CLK_TCK")


def request(path, obj, timeout=None):
    """Send one request, return the reply (one JSON line)."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall((json.dumps(obj) + "\n").encode())
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            buf += chunk
    return json.loads(buf)


def _stat(pid):
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()


def cpu_split(pid):
    """(utime, stime) in seconds of the process itself (not its children)."""
    fields = _stat(pid)
    return int(fields[11]) / TICK, int(fields[12]) / TICK


def cpu_seconds(pid):
    """utime + stime of the process itself (not its children)."""
    return sum(cpu_split(pid))


def minor_faults(pid):
    return int(_stat(pid)[7])


def peak_rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def start_daemon(ccci, cfg, sock, log_path):
    """`ccci serve -c cfg`, once it answers on sock; exits if it dies."""
    daemon = subprocess.Popen([ccci, "serve", "-c", cfg], stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=open(log_path, "w"))
    for _ in range(1000):
        try:
            if request(sock, {"v": 1, "op": "status"}, timeout=5).get("ok"):
                return daemon
        except OSError:
            pass
        if daemon.poll() is not None:
            sys.exit("ccci serve exited: see %s" % log_path)
        time.sleep(0.02)
    sys.exit("ccci serve does not answer on %s" % sock)
