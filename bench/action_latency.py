#!/usr/bin/env python3
"""`make bench`, part 6: from a service's change of state to its action's start.

One HTTP service probed every 10 ms (fall 2, rise 2) against a loopback
backend the bench flips between 200 and 503 every FLIP ms, TRANSITIONS times.
Each change to down or up runs two actions: `log` (in the agent) and `exec`
(/bin/true). For each event, the time from the event (the decision, after the
probe that completed the transition) to each action's start, read from the
agent's own records (`/v1/events`): p50, p99, max. Printed, never asserted.

Usage: bench/action_latency.py --vitals .build/release/vitals [--transitions 200] [--flip-ms 150]
"""
import argparse
import http.server
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.request
from datetime import datetime


def iso(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vitals", required=True)
    parser.add_argument("--transitions", type=int, default=200)
    parser.add_argument("--flip-ms", type=int, default=150)
    args = parser.parse_args()

    code = {"value": 200}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(code["value"])
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    folder = tempfile.mkdtemp(prefix="vitals-action-latency-")
    config = os.path.join(folder, "vitals.yaml")
    with open(config, "w") as f:
        f.write(f"""agent: {{ listen: 127.0.0.1:0, state_dir: {folder}/state }}
defaults: {{ interval: 10ms, fast_interval: 10ms, timeout: 100ms, rise: 2, fall: 2, jitter: 0ms, flapping: {{ changes: 0 }} }}
services:
  web: {{ http: {{ url: "http://127.0.0.1:{server.server_address[1]}/health" }}, on: {{ down: [note, run], up: [note, run] }} }}
actions:
  note: {{ log: {{}} }}
  run: {{ exec: [/bin/true] }}
""")
    log = open(os.path.join(folder, "agent.log"), "w")
    agent = subprocess.Popen([os.path.abspath(args.vitals), "run", "-c", config], stdout=subprocess.DEVNULL,
                             stderr=log, cwd=folder)
    try:
        base = None
        deadline = time.time() + 30
        while time.time() < deadline and base is None:
            with open(os.path.join(folder, "agent.log")) as f:
                for line in f:
                    if "status API on " in line:
                        base = "http://" + line.split("status API on ")[1].split(";")[0].split(",")[0]
            time.sleep(0.05)
        if base is None:
            raise SystemExit("bench: the agent did not start")
        time.sleep(1)
        for i in range(args.transitions):
            code["value"] = 503 if code["value"] == 200 else 200
            time.sleep(args.flip_ms / 1000)
        time.sleep(1)
        events, since = [], 0
        while True:
            page = json.load(urllib.request.urlopen(f"{base}/v1/events?since={since}&limit=1000", timeout=10))
            events += page["events"]
            if not page["events"]:
                break
            since = page["last_id"]
        delays = {"log": [], "exec": []}
        for event in events:
            if event.get("kind") != "state_change" or event.get("to") not in ("down", "up"):
                continue
            for action in event.get("actions", []):
                delays[action["kind"]].append((iso(action["started"]) - iso(event["time"])) * 1000)
        changes = sum(1 for e in events if e.get("kind") == "state_change" and e.get("to") in ("down", "up"))
        print(f"state change → action start, {changes} changes (interval 10ms, fall 2, rise 2, flips every {args.flip_ms} ms):")
        for kind, values in delays.items():
            if not values:
                print(f"  {kind}: no actions recorded")
                continue
            values.sort()
            p99 = values[min(len(values) - 1, int(len(values) * 0.99))]
            print(f"  {kind:4s} ({len(values)} runs): p50 {statistics.median(values):.2f} ms, p99 {p99:.2f} ms, max {values[-1]:.2f} ms")
    finally:
        agent.terminate()
        agent.wait()
        server.shutdown()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
