#!/usr/bin/env python3
"""`make bench`, part 3: a Vitals cluster on a real etcd member, on loopback.

Prints, never asserts:
  - takeover after kill -9 of the leader (ttl 10s): seconds from the kill to
    the new leader's first action (a failover of a backend failed right after
    the kill), over TRIALS trials: min / median / max;
  - planned handover: ms from SIGTERM to the other agent leading (log times);
  - cost at N services (N/2 active-passive groups, TCP checks every second):
    etcd requests per second per agent, CPU and RSS of a leader and a
    follower beside one agent without `cluster:` on the same config.

Usage: bench/cluster.py --vitals .build/release/vitals [--trials 5] [--services 1000] [--seconds 30]
Needs Debian's etcd-server (scripts/install-deps.sh test installs it).
"""
import argparse
import http.server
import json
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
import urllib.request
from datetime import datetime

ETCD = "/usr/bin/etcd"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Backend:
    """An HTTP health endpoint whose answer the bench flips."""

    def __init__(self):
        self.code = 200
        backend = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(backend.code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()


class Listener:
    """A TCP port that accepts and closes: the target of many TCP checks."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4096)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
                conn.close()
            except OSError:
                return


class Etcd:
    def __init__(self, folder):
        self.client, peer = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.client}"
        self.log = open(os.path.join(folder, "etcd.log"), "w")
        self.process = subprocess.Popen(
            [ETCD, "--name", "m1", "--data-dir", os.path.join(folder, "etcd"), "--logger=zap",
             "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
             "--listen-peer-urls", f"http://127.0.0.1:{peer}", "--initial-advertise-peer-urls",
             f"http://127.0.0.1:{peer}", "--initial-cluster", f"m1=http://127.0.0.1:{peer}"],
            stdout=self.log, stderr=self.log)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                urllib.request.urlopen(urllib.request.Request(self.url + "/v3/maintenance/status", data=b"{}"), timeout=1)
                return
            except Exception:
                time.sleep(0.05)
        raise SystemExit("bench: etcd did not start")

    def stop(self):
        self.process.kill()
        self.process.wait()


class Agent:
    def __init__(self, vitals, folder, name, body):
        self.name = name
        self.config = os.path.join(folder, f"{name}.yaml")
        with open(self.config, "w") as f:
            f.write(f"agent: {{ listen: 127.0.0.1:0, state_dir: {folder}/{name}-state }}\n" + body)
        self.log_path = os.path.join(folder, f"{name}.log")
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen([vitals, "run", "-c", self.config], stdout=subprocess.DEVNULL,
                                        stderr=self.log, cwd=folder)

    def lines(self):
        with open(self.log_path) as f:
            return f.read().splitlines()

    def wait(self, text, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            for line in self.lines():
                if text in line:
                    return line
            if self.process.poll() is not None:
                raise SystemExit(f"bench: agent {self.name} exited:\n" + "\n".join(self.lines()[-20:]))
            time.sleep(0.01)
        raise SystemExit(f"bench: agent {self.name} did not log {text!r}:\n" + "\n".join(self.lines()[-20:]))

    def base(self):
        line = self.wait("status API on ")
        return "http://" + line.split("status API on ")[1].split(";")[0].split(",")[0]

    def metric(self, name):
        text = urllib.request.urlopen(self.base() + "/metrics", timeout=5).read().decode()
        for line in text.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                return float(line.rsplit(" ", 1)[1])
        return None

    def cpu_seconds(self):
        with open(f"/proc/{self.process.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def journal_lines(self):
        try:
            with open(os.path.join(os.path.dirname(self.config), f"{self.name}-state", "events.jsonl")) as f:
                return sum(1 for _ in f)
        except OSError:
            return 0

    def rss_mib(self):
        with open(f"/proc/{self.process.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0

    def stop(self, sig=signal.SIGINT):
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def log_time(line):
    stamp = line.split(" ", 1)[0]
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def pair_config(backends, etcd_url, scope, name, promote):
    return f"""defaults: {{ interval: 200ms, timeout: 300ms, rise: 2, fall: 2, jitter: 0ms }}
services:
  web-1: {{ http: {{ url: "http://127.0.0.1:{backends[0].port}/health" }} }}
  web-2: {{ http: {{ url: "http://127.0.0.1:{backends[1].port}/health" }} }}
groups:
  web: {{ members: [web-1, web-2], failback: manual, cooldown: 0s, on: {{ failover: [promote] }} }}
actions:
  promote: {{ exec: [{promote}, {name}] }}
cluster: {{ etcd: [{etcd_url}], scope: {scope}, name: {name}, ttl: 10s }}
"""


def takeover(vitals, folder, etcd, trials):
    backends = [Backend(), Backend()]
    promote = os.path.join(folder, "promote.sh")
    with open(promote, "w") as f:
        f.write('#!/bin/sh\nd="$(dirname "$0")"\ndate +%s.%N > "$d/.ran-$1"\nmv "$d/.ran-$1" "$d/ran-$1-$VITALS_EVENT_ID"\n')
    os.chmod(promote, 0o755)
    times = []
    for trial in range(trials):
        scope = f"takeover{trial}"
        a = Agent(vitals, folder, f"a{trial}", pair_config(backends, etcd.url, scope, f"a{trial}", promote))
        a.wait("is the leader")
        b = Agent(vitals, folder, f"b{trial}", pair_config(backends, etcd.url, scope, f"b{trial}", promote))
        b.wait("following")
        b.wait("group web: activated")
        time.sleep(1.5)  # both views published and heard
        killed = time.time()
        a.process.kill()
        a.process.wait()
        backends[0].code = 503
        deadline = time.time() + 30
        ran = None
        while time.time() < deadline and ran is None:
            for name in os.listdir(folder):
                if name.startswith(f"ran-b{trial}-"):
                    with open(os.path.join(folder, name)) as f:
                        ran = float(f.read().strip())
            time.sleep(0.01)
        b.stop()
        backends[0].code = 200
        if ran is None:
            print(f"  trial {trial + 1}: the new leader did not act within 30 s")
            continue
        times.append(ran - killed)
        print(f"  trial {trial + 1}: {ran - killed:.2f} s from kill -9 to the new leader's first action")
    for backend in backends:
        backend.stop()
    if times:
        print(f"takeover after kill -9, ttl 10s, {len(times)} trials: min {min(times):.2f} s, "
              f"median {statistics.median(times):.2f} s, max {max(times):.2f} s")


def handover(vitals, folder, etcd, trials=3):
    backends = [Backend(), Backend()]
    results = []
    for trial in range(trials):
        scope = f"handover{trial}"
        a = Agent(vitals, folder, f"h{trial}a", pair_config(backends, etcd.url, scope, f"h{trial}a", "/bin/true"))
        a.wait("is the leader")
        b = Agent(vitals, folder, f"h{trial}b", pair_config(backends, etcd.url, scope, f"h{trial}b", "/bin/true"))
        b.wait("following")
        time.sleep(0.5)
        signalled = time.time()
        a.process.send_signal(signal.SIGTERM)
        line = b.wait("is the leader", timeout=20)
        results.append((log_time(line) - signalled) * 1000)
        a.stop()
        b.stop()
    for backend in backends:
        backend.stop()
    print(f"planned handover (SIGTERM to the other leading), {trials} trials: "
          + ", ".join(f"{ms:.0f} ms" for ms in results) + f"; median {statistics.median(results):.0f} ms")


def cost(vitals, folder, etcd, services, seconds):
    target = Listener()
    lines = ["defaults: { interval: 1s, timeout: 500ms, rise: 2, fall: 2 }", "services:"]
    for i in range(services):
        lines.append(f"  s{i}: {{ tcp: {{ host: 127.0.0.1, port: {target.port} }} }}")
    lines.append("groups:")
    for g in range(services // 2):
        lines.append(f"  g{g}: {{ members: [s{2 * g}, s{2 * g + 1}] }}")
    body = "\n".join(lines) + "\n"
    cluster = lambda name: f"cluster: {{ etcd: [{etcd.url}], scope: cost, name: {name}, ttl: 15s }}\n"

    def measure(agents):
        for agent in agents:
            agent.wait("started:")
        # Past the start: every service's first decision, every group's first
        # choice journaled (and, on a leader, stored in etcd).
        deadline = time.time() + 60
        while time.time() < deadline:
            counts = [a.journal_lines() for a in agents]
            time.sleep(2)
            if counts == [a.journal_lines() for a in agents] and min(counts) >= services * 3 // 2:
                break
        time.sleep(3)
        before = [(a.cpu_seconds(), a.metric("vitals_etcd_requests_total") or 0, a.journal_lines()) for a in agents]
        time.sleep(seconds)
        after = [(a.cpu_seconds(), a.metric("vitals_etcd_requests_total") or 0, a.journal_lines()) for a in agents]
        figures = []
        for agent, (c0, r0, e0), (c1, r1, e1) in zip(agents, before, after):
            figures.append((agent.name, (c1 - c0) / seconds * 100, agent.rss_mib(), (r1 - r0) / seconds, e1 - e0))
        for agent in agents:
            agent.stop()
        return figures

    single = measure([Agent(vitals, folder, "single", body)])
    leader = Agent(vitals, folder, "leader", body + cluster("leader"))
    leader.wait("is the leader")
    follower = Agent(vitals, folder, "follower", body + cluster("follower"))
    pair = measure([leader, follower])
    print(f"cost at {services} services ({services // 2} groups, TCP checks every 1s), over {seconds} s:")
    base_cpu, base_rss = single[0][1], single[0][2]
    for name, cpu, rss, requests, events in single + pair:
        extra = "" if name == "single" else f"  ({cpu / base_cpu:.2f}x CPU, {rss / base_rss:.2f}x RSS of the single agent)"
        etcd_text = "" if name == "single" else f", {requests:.2f} etcd requests/s"
        print(f"  {name:9s} CPU {cpu:5.1f}% of a core, RSS {rss:6.1f} MiB{etcd_text}, {events} journal records{extra}")
    target.sock.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vitals", required=True)
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--parts", default="takeover,handover,cost")
    args = parser.parse_args()
    if not os.access(ETCD, os.X_OK):
        raise SystemExit("bench: etcd is missing (scripts/install-deps.sh test)")
    folder = tempfile.mkdtemp(prefix="vitals-cluster-bench-")
    etcd = Etcd(folder)
    try:
        parts = args.parts.split(",")
        if "takeover" in parts:
            takeover(os.path.abspath(args.vitals), folder, etcd, args.trials)
        if "handover" in parts:
            handover(os.path.abspath(args.vitals), folder, etcd)
        if "cost" in parts:
            cost(os.path.abspath(args.vitals), folder, etcd, args.services, args.seconds)
    finally:
        etcd.stop()
        if os.environ.get("KEEP"): print("kept", folder)
        else: shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
