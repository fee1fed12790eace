#!/usr/bin/env python3
"""Stacks of a running process: `nsdebug --pid PID -c 'bt --all'` against
`py-spy dump --pid PID` and `pystack remote PID`: wall time, and the time the target
itself saw its threads stand still.

usage: python benchmarks/live_stacks.py [--runs 7] [--threads 8]

The target runs a ticker thread that wakes every 0.5 ms and keeps the longest gap
between two wake-ups; it is reset before each run and read after, so "target stalled"
is the pause as the process felt it (its noise, measured with no tool, is shown too).
pystack and py-spy come with `pip install '.[bench]'`.
"""

import argparse
import os
import statistics
import subprocess
import sys
import textwrap
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import byte_compile_nsdebug, print_table, targets, tool  # noqa: E402

TARGET = textwrap.dedent("""
    import sys, threading, time
    gap = [0.0]
    def ticker():
        last = time.monotonic()
        while True:
            time.sleep(0.0005)
            now = time.monotonic()
            gap[0] = max(gap[0], now - last)
            last = now
    def parked(depth, ev):
        if depth:
            return parked(depth - 1, ev)
        ev.wait()
    ev = threading.Event()
    for i in range(int(sys.argv[1])):
        threading.Thread(target=parked, args=(10 + i, ev), daemon=True).start()
    threading.Thread(target=ticker, daemon=True).start()
    print("ready", flush=True)
    for line in sys.stdin:
        if line.startswith("reset"):
            gap[0] = 0.0
            print("ok", flush=True)
        elif line.startswith("gap"):
            print(gap[0] * 1000, flush=True)
""")


def ask(p, word):
    p.stdin.write(word + "\n")
    p.stdin.flush()
    return p.stdout.readline().strip()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--threads", type=int, default=8)
    args = ap.parse_args()
    byte_compile_nsdebug()
    p = subprocess.Popen([targets.default_build().exe, "-c", TARGET, str(args.threads)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    tools = {"nsdebug --pid": [tool("nsdebug"), "--pid", str(p.pid), "-c", "bt --all"],
             "py-spy dump": [tool("py-spy"), "dump", "--pid", str(p.pid)],
             "pystack remote": [tool("pystack"), "remote", str(p.pid)]}
    rows = []
    try:
        noise = []
        for _ in range(args.runs):
            ask(p, "reset")
            time.sleep(0.3)
            noise.append(float(ask(p, "gap")))
        rows.append(("(no tool)", "", f"{statistics.median(noise):.1f} ms", ""))
        walls = {}
        for name, cmd in tools.items():
            if not cmd[0]:
                rows.append((name, "not installed", "", ""))
                continue
            wall, stall, said = [], [], []
            for i in range(args.runs + 1):
                ask(p, "reset")
                t0 = time.perf_counter()
                r = subprocess.run(cmd, capture_output=True, text=True)
                elapsed = time.perf_counter() - t0
                if r.returncode:
                    sys.exit(f"{name}: {r.stderr[-1000:]}")
                gap = float(ask(p, "gap"))
                if i:                                   # the first run warms the caches
                    wall.append(elapsed)
                    stall.append(gap)
                    if "paused " in r.stderr:
                        said.append(float(r.stderr.split("paused ")[1].split()[0]))
            walls[name] = statistics.median(wall)
            rows.append((name, f"{walls[name] * 1000:.0f} ms",
                         f"{statistics.median(stall):.1f} ms",
                         f"{statistics.median(said):.1f} ms" if said else ""))
    finally:
        p.kill()
        p.wait()
    print(f"a CPython {targets.default_build().version} process with {args.threads + 2} "
          f"threads; medians of {args.runs} runs")
    print_table(["tool", "wall", "target stalled (its own clock)", "pause it reports"], rows)
    base = walls.get("nsdebug --pid")
    for name, w in walls.items():
        if base and name != "nsdebug --pid":
            print(f"nsdebug --pid / {name}: {base / w:.2f}x wall")


if __name__ == "__main__":
    main()
