#!/usr/bin/env python3
"""arthur's pause against gcore's, on processes of 256 MiB, 1 GiB and 2 GiB resident.

usage: python benchmarks/capture_pause.py [--sizes 256,1024,2048] [--runs 3]

For each size: the bare fork (timed by the target itself with os.fork()),
arthur's pause (seize all threads + clone + restore + detach) and its clone
alone, gcore's whole run (the process is stopped for all of it), arthur's
capture wall time and throughput (compressing on the spare CPUs, its default, and with
--jobs 1), raw core size and compressed size.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import byte_compile_nsdebug, print_table, targets, tool  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="256,1024,2048")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    byte_compile_nsdebug()
    arthur = tool("arthur")
    rows = []
    for mib in (int(x) for x in args.sizes.split(",")):
        with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
            proc, truth_path = targets.start_target(sys.executable, "big_target.py", tmp,
                                                    str(mib))
            try:
                facts = json.load(open(truth_path))
                pauses, clones, walls, walls1, raw, comp = [], [], [], [], 0, 0
                for i in range(args.runs):
                    out = os.path.join(tmp, f"c{i}.lz4")
                    r = subprocess.run([arthur, "capture", str(proc.pid), "-o", out,
                                        "--json"], capture_output=True, text=True)
                    if r.returncode:
                        sys.exit(r.stderr)
                    res = json.loads(r.stdout)
                    pauses.append(res["pause_ms"])
                    clones.append(res["fork_ms"])
                    walls.append(res["seconds"])
                    raw, comp = res["raw_size"], res["file_size"]
                    os.unlink(out)
                    r = subprocess.run([arthur, "capture", str(proc.pid), "-o", out,
                                        "--json", "--jobs", "1"], capture_output=True,
                                       text=True)
                    if r.returncode:
                        sys.exit(r.stderr)
                    walls1.append(json.loads(r.stdout)["seconds"])
                    os.unlink(out)
                start = time.perf_counter()
                gc = targets.gcore(proc.pid, os.path.join(tmp, "gc"))
                gcore_s = time.perf_counter() - start
                gcore_size = os.path.getsize(gc)
                os.unlink(gc)
                with open(f"/proc/{proc.pid}/status") as f:
                    rss = next(int(x.split()[1]) for x in f if x.startswith("VmRSS")) >> 10
            finally:
                targets.stop(proc)
        pause = statistics.median(pauses)
        wall = statistics.median(walls)
        rows.append([f"{rss} MiB", f"{facts['fork_ms']:.1f}", f"{statistics.median(clones):.1f}",
                     f"{pause:.1f}", f"{gcore_s * 1000:.0f}", f"{pause / (gcore_s * 1000):.2%}",
                     f"{wall:.2f}", f"{raw / wall / 1e6:.0f}",
                     f"{statistics.median(walls1):.2f}", f"{raw >> 20}",
                     f"{comp >> 20}", f"{gcore_size >> 20}"])
    print(f"arthur: median of {args.runs} captures; gcore: one run (its pause is its run)")
    print_table(["resident", "bare fork ms", "clone ms", "arthur pause ms", "gcore ms",
                 "pause/gcore", "capture s", "MB/s", "capture s, --jobs 1", "core MiB",
                 "lz4 MiB", "gcore MiB"],
                rows)


if __name__ == "__main__":
    main()
