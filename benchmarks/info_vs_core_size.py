#!/usr/bin/env python3
"""`nsdebug CORE -c info` on a small core and on a core of >= 1 GiB resident memory.

usage: python benchmarks/info_vs_core_size.py [--mib 1200] [--runs N]

Opening a core maps it and reads headers and notes only, so the time must
not grow with the core's size. Prints median wall times for both.
"""

import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import byte_compile_nsdebug, median_time, print_table, targets, tool  # noqa: E402


def capture(python, tmp, name, *args):
    workdir = os.path.join(tmp, name)
    os.makedirs(workdir)
    proc, _ = targets.start_target(python, "big_target.py", workdir, *args)
    try:
        with open(f"/proc/{proc.pid}/status") as f:
            rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))
        core = targets.gcore(proc.pid, os.path.join(workdir, "core"))
    finally:
        targets.stop(proc)
    return core, rss >> 10


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=1200)
    ap.add_argument("--runs", type=int, default=9)
    args = ap.parse_args()
    nsdebug = tool("nsdebug")
    python = sys.executable
    byte_compile_nsdebug()
    rows = []
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        for name, mib in (("small", 1), ("large", args.mib)):
            core, rss = capture(python, tmp, name, str(mib))
            t = median_time([nsdebug, core, "-c", "info"], args.runs)
            t_bt = median_time([nsdebug, core, "-c", "bt --all"], args.runs)
            rows.append([name, f"{rss} MiB", f"{os.path.getsize(core) >> 20} MiB",
                         f"{t * 1000:.0f} ms", f"{t_bt * 1000:.0f} ms"])
            os.unlink(core)
    print(f"median of {args.runs} runs, gcore cores of fixtures/big_target.py")
    print_table(["core", "resident", "core size", "nsdebug -c info", "nsdebug -c 'bt --all'"],
                rows)


if __name__ == "__main__":
    main()
