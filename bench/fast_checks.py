#!/usr/bin/env python3
"""`make bench`, part 4: fast intervals (interval 10ms, fall 2), on loopback.

Prints, never asserts:
  - false downs: `vitals-bench fast` (the real scheduler, curl prober and
    health tracker) probes a healthy backend every 10ms for SECONDS (60 by
    default), HAProxy checks the same backend with `inter 10ms fall 2` in the
    same run; every DOWN either reports is a false one;
  - detection: the backend is killed (its port then refuses) or stopped with
    SIGSTOP (connections open, nothing answers); ms from that moment to each
    checker's DOWN, as read from their output, over TRIALS trials each;
  - CPU per check of each checker while healthy: its CPU time (from /proc)
    over the checks the backend counted from it.

The backend is an HAProxy process answering `200 ok` from memory on two
ports, one per checker, so each checker's requests are counted apart
(`show stat` req_tot) and one kill or SIGSTOP hits both at the same moment.
Both checkers send HTTP GET /health with a 100ms check timeout (HAProxy:
`timeout check 100ms`, its connect timeout then being min(timeout connect, inter)).

Usage: bench/fast_checks.py --bench .build/release/VitalsBench [--seconds 60] [--trials 3]
Needs haproxy (scripts/install-deps.sh test installs it).
"""
import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
TICKS = os.sysconf("SC_CLK_TCK")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def stat_requests(sock_path):
    """req_tot per frontend name from the backend's stats socket."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(2)
    s.connect(sock_path)
    s.sendall(b"show stat\n")
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    lines = data.decode().splitlines()
    header = lines[0].lstrip("# ").split(",")
    counts = {}
    for line in lines[1:]:
        row = dict(zip(header, line.split(",")))
        if row.get("svname") == "FRONTEND":
            counts[row["pxname"]] = int(row.get("req_tot") or 0)
    return counts


class Watched:
    """A process whose output lines are read on a thread, each stamped on arrival."""

    def __init__(self, argv, is_down):
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     bufsize=1, start_new_session=True)
        self.is_down = is_down
        self.events = []  # (time.time(), line) of the lines that report a DOWN
        self.lines = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            if self.is_down(line):
                self.events.append((time.time(), line.rstrip("\n")))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.thread.join(2)


def start_backend(tmp, vitals_port, haproxy_port):
    sock = os.path.join(tmp, "backend.sock")
    cfg = os.path.join(tmp, "backend.cfg")
    with open(cfg, "w") as f:
        f.write(f"""global
  stats socket {sock} mode 600 level admin
  maxconn 4096
defaults
  mode http
  timeout connect 1s
  timeout client 5s
  timeout server 5s
frontend for_vitals
  bind 127.0.0.1:{vitals_port}
  http-request return status 200 content-type text/plain string ok
frontend for_haproxy
  bind 127.0.0.1:{haproxy_port}
  http-request return status 200 content-type text/plain string ok
""")
    proc = subprocess.Popen([HAPROXY, "-db", "-f", cfg], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    for _ in range(100):
        if os.path.exists(sock):
            try:
                stat_requests(sock)
                return proc, sock
            except OSError:
                pass
        time.sleep(0.05)
    proc.kill()
    sys.exit("fast_checks: the backend haproxy did not start")


def start_checker(tmp, port, dummy_port):
    cfg = os.path.join(tmp, "checker.cfg")
    with open(cfg, "w") as f:
        f.write(f"""global
  maxconn 1024
defaults
  mode http
  timeout connect 1s
  timeout client 5s
  timeout server 5s
  timeout check 100ms
frontend dummy
  bind 127.0.0.1:{dummy_port}
  default_backend be
backend be
  option httpchk GET /health
  http-check expect status 200
  server s1 127.0.0.1:{port} check inter 10ms fastinter 10ms downinter 10ms rise 2 fall 2
""")
    return Watched([HAPROXY, "-db", "-f", cfg], lambda line: "is DOWN" in line)


def start_vitals(bench, port, seconds):
    return Watched([bench, "fast", "--target", f"http://127.0.0.1:{port}/health", "--interval-ms", "10",
                    "--timeout-ms", "100", "--rise", "2", "--fall", "2", "--seconds", str(seconds)],
                   lambda line: line.startswith("change ") and line.split()[3:4] == ["down"])


def run(bench, seconds, break_with=None, settle=3.0):
    """One run: both checkers on a fresh backend. With break_with ("refuse" or
    "hang"), breaks the backend after `settle` s and returns the detection
    delays; else watches for `seconds` and returns downs and CPU per check."""
    tmp = tempfile.mkdtemp(prefix="vitals-fast-")
    vitals_port, haproxy_port, dummy_port = free_port(), free_port(), free_port()
    backend, sock = start_backend(tmp, vitals_port, haproxy_port)
    length = seconds if break_with is None else settle + 10
    checker = start_checker(tmp, haproxy_port, dummy_port)
    vitals = start_vitals(bench, vitals_port, length)
    try:
        time.sleep(1.0)  # both up and steady
        counts0 = stat_requests(sock)
        cpu0 = (cpu_seconds(vitals.proc.pid), cpu_seconds(checker.proc.pid))
        t0 = time.time()
        if break_with is None:
            time.sleep(seconds)
            counts1 = stat_requests(sock)
            cpu1 = (cpu_seconds(vitals.proc.pid), cpu_seconds(checker.proc.pid))
            elapsed = time.time() - t0
            checks_v = counts1.get("for_vitals", 0) - counts0.get("for_vitals", 0)
            checks_h = counts1.get("for_haproxy", 0) - counts0.get("for_haproxy", 0)
            return {
                "elapsed": elapsed,
                "vitals": {"checks": checks_v, "downs": len(vitals.events),
                           "cpu_us": (cpu1[0] - cpu0[0]) * 1e6 / max(1, checks_v)},
                "haproxy": {"checks": checks_h, "downs": len(checker.events),
                            "cpu_us": (cpu1[1] - cpu0[1]) * 1e6 / max(1, checks_h)},
                "down_lines": [line for _, line in vitals.events + checker.events],
            }
        time.sleep(max(0, settle - 1.0))
        before_v, before_h = len(vitals.events), len(checker.events)
        broken = time.time()
        if break_with == "refuse":
            backend.kill()
        else:
            backend.send_signal(signal.SIGSTOP)
        deadline = broken + 5
        while time.time() < deadline and (len(vitals.events) == before_v or len(checker.events) == before_h):
            time.sleep(0.001)
        def delay(events, before):
            return (events[before][0] - broken) * 1000 if len(events) > before else None
        return {"vitals": delay(vitals.events, before_v), "haproxy": delay(checker.events, before_h),
                "false_before": before_v + before_h}
    finally:
        vitals.stop()
        checker.stop()
        if backend.poll() is None:
            backend.send_signal(signal.SIGCONT)
            backend.kill()
        backend.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def summary(values):
    got = [v for v in values if v is not None]
    if not got:
        return "not detected"
    text = f"min {min(got):.0f} / median {statistics.median(got):.0f} / max {max(got):.0f} ms"
    if len(got) < len(values):
        text += f" ({len(values) - len(got)} of {len(values)} not detected within 5 s)"
    return text


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bench", required=True)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--trials", type=int, default=3)
    args = parser.parse_args()
    if not os.path.exists(HAPROXY):
        sys.exit("fast_checks: haproxy is missing (scripts/install-deps.sh test)")

    print(f"  healthy backend, interval 10ms, fall 2, {args.seconds:.0f} s, both checkers at once:")
    r = run(args.bench, args.seconds)
    for name in ("vitals", "haproxy"):
        x = r[name]
        print(f"    {name:8} {x['checks']:6d} checks ({x['checks'] / r['elapsed']:.0f}/s), false downs {x['downs']}, "
              f"CPU {x['cpu_us']:.0f} µs per check")
    for line in r["down_lines"][:5]:
        print(f"      {line}")

    for mode, words in (("refuse", "backend killed (port refuses)"), ("hang", "backend stopped (SIGSTOP: connects, no answer)")):
        trials = [run(args.bench, 0, break_with=mode) for _ in range(args.trials)]
        print(f"  detection, {words}, {args.trials} trials, ms from the break to DOWN:")
        print(f"    vitals   {summary([t['vitals'] for t in trials])}")
        print(f"    haproxy  {summary([t['haproxy'] for t in trials])}")
        falses = sum(t["false_before"] for t in trials)
        if falses:
            print(f"    ({falses} downs before the break)")


if __name__ == "__main__":
    main()
