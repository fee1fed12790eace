#!/usr/bin/env python3
"""Leak hunting on an application heap: `diff` of two captures and `suspects`.

usage: python benchmarks/leak_hunt.py [--objects 1000000] [--grow 20000]
       (pip install '.[bench]' for Flask in the application heap)

Runs fixtures/app_target.py until it holds about OBJECTS objects, captures it (gcore),
lets it churn and grow (drops GROW/2 requests, adds GROW) and captures it again. Prints
seconds for whole nsdebug commands, start-up included: `diff` the first time (both
heaps walked, their indexes written) and again (indexes mapped), `suspects` and `waste`
on the later core, and what diff found.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import byte_compile_nsdebug, print_table, targets, timed, tool  # noqa: E402

APP_BLOCKS_PER_OBJECT = 1.25     # app_target.py counts pymalloc blocks; objects are fewer


def two_captures(objects, grow, tmp):
    script = os.path.join(targets.FIXTURES, "app_target.py")
    proc = subprocess.Popen([sys.executable, script, os.path.join(tmp, "truth.json"),
                             str(int(objects * APP_BLOCKS_PER_OBJECT)), "--grow", str(grow)],
                            stdout=subprocess.PIPE, text=True, cwd=tmp)
    try:
        if proc.stdout.readline().strip() != "ready":
            sys.exit("app_target.py did not start")
        old = targets.gcore(proc.pid, os.path.join(tmp, "old"))
        os.kill(proc.pid, signal.SIGUSR1)
        if proc.stdout.readline().strip() != "grown":
            sys.exit("app_target.py did not grow")
        new = targets.gcore(proc.pid, os.path.join(tmp, "new"))
    finally:
        targets.stop(proc)
    return old, new


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--objects", type=int, default=1_000_000)
    ap.add_argument("--grow", type=int, default=20_000, help="requests added (default 20000)")
    args = ap.parse_args()
    byte_compile_nsdebug()
    nsdebug = tool("nsdebug")
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        old, new = two_captures(args.objects, args.grow, tmp)
        t_diff1, _ = timed([nsdebug, "diff", old, new])
        t_diff2, out = timed([nsdebug, "diff", old, new, "--json"])
        t_susp, sus = timed([nsdebug, new, "-c", "suspects", "--json"])
        t_waste, _ = timed([nsdebug, new, "-c", "waste"])
        d = json.loads(out)["diff"]
        top = d["locations"][0] if d["locations"] else None
        suspect = (json.loads(sus)["suspects"] or [{}])[0]
    print_table(["objects before", "after", "diff 1st", "diff 2nd", "suspects", "waste"],
                [[f"{d['objects_before']:,}", f"{d['objects_after']:,}", f"{t_diff1:.2f}",
                  f"{t_diff2:.2f}", f"{t_susp:.2f}", f"{t_waste:.2f}"]])
    print("\nseconds for whole nsdebug commands; 'diff 1st' walks both heaps and writes "
          "their indexes, the others map them")
    if top:
        print(f"biggest growth: {top['count']:+,} objects at {top['path']}")
    if suspect:
        print(f"suspect 1: {suspect.get('summary')}")


if __name__ == "__main__":
    main()
