#!/usr/bin/env python3
"""Heap commands on cores of heaps like real ones, and the synthetic heap beside them.

usage: python benchmarks/heap_walk.py [--cases app:200000,app:1000000,...] [--kinds]
       (pip install '.[bench]' for Flask in the application heap)

Cases (NAME:OBJECTS): `app` is fixtures/app_target.py (the standard library, Flask,
classes, closures, decorated functions, bound methods, request-like data); `ast` the
same process holding parsed syntax trees (a deep graph); `synthetic` is
fixtures/heap_target.py (lists, dicts and instances of a few classes). Default: app at
200k, 1M and 5M objects, synthetic at 1M and 5M, ast at 1.5M.

Prints per core: objects; `objects` as a whole command the first time (walk, dominators,
index written) and the second time (index mapped); `path` and `refs` with the index;
the snapshot export; the walk's and dominators' own times and peak memory per object
(anonymous RSS sampled in-process; the mapped core is page cache, not counted); and,
with --kinds, objects per second per kind of object.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import byte_compile_nsdebug, print_table, targets, timed, tool  # noqa: E402

DEFAULT = "app:200000,app:1000000,app:5000000,synthetic:1000000,synthetic:5000000,ast:1500000"
SYNTHETIC_PER_SCALE = 41_000     # heap_target.py builds about this many per unit of SCALE
APP_BLOCKS_PER_OBJECT = 1.25     # app_target.py counts pymalloc blocks; objects are fewer

# In-process: the walk and the dominators, timed; peak anonymous memory, sampled.
PROBE = r"""
import json, resource, sys, threading, time
def anon():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("RssAnon"))
peak = [0]
def sample():
    while True:
        peak[0] = max(peak[0], anon())
        time.sleep(0.005)
threading.Thread(target=sample, daemon=True).start()
from nsdebug.corefile import open_core
from nsdebug.cpython import attach
from nsdebug.heap.walk import HeapWalker
rt = attach(open_core(sys.argv[1]))
time.sleep(0.05)
base = anon()
t = time.perf_counter(); w = HeapWalker(rt); g = w.run(); walk = time.perf_counter() - t
t = time.perf_counter(); g.retained(); dom = time.perf_counter() - t
time.sleep(0.05)
print(json.dumps({"objects": g.n - g.n_synth, "walk": walk, "dominators": dom,
                  "peak_anon_kib": peak[0], "base_kib": base, "kinds": w.kind_stats}))
"""


def capture(case, want, tmp):
    """A gcore of the case's target at about `want` objects."""
    me = targets.Build("bench", f"{sys.version_info[0]}.{sys.version_info[1]}", "pyenv",
                       sys.executable)
    if case == "synthetic":
        args = ["heap_target.py", str(max(1, round(want / SYNTHETIC_PER_SCALE)))]
    else:
        args = ["app_target.py", str(int(want * APP_BLOCKS_PER_OBJECT))] + \
            (["--ast"] if case == "ast" else [])
    return targets.gcore_capture(me, args[0], tmp, *args[1:])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", default=DEFAULT)
    ap.add_argument("--kinds", action="store_true", help="print objects/s per kind")
    args = ap.parse_args()
    byte_compile_nsdebug()
    nsdebug = tool("nsdebug")
    rows, kind_rows = [], {}
    for spec in args.cases.split(","):
        case, want = spec.split(":")
        with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
            cap = capture(case, int(want), tmp)
            probe = json.loads(timed([sys.executable, "-c", PROBE, cap.core])[1])
            t_first, out = timed([nsdebug, cap.core, "-c", "objects"])
            t_second, _ = timed([nsdebug, cap.core, "-c", "objects"])
            top = out.splitlines()[2].split()       # the largest type: an address to ask about
            r = subprocess.run([nsdebug, cap.core, "-c", f"instances {top[-1]} -n 1",
                                "--json"], capture_output=True, text=True)
            addr = hex(json.loads(r.stdout)["rows"][0]["address"])
            t_path, _ = timed([nsdebug, cap.core, "-c", f"path {addr}"])
            t_refs, _ = timed([nsdebug, cap.core, "-c", f"refs {addr}"])
            snap = os.path.join(tmp, "h.heapsnapshot")
            t_snap, _ = timed([nsdebug, cap.core, "--snapshot", snap])
            n = probe["objects"]
            per_obj = (probe["peak_anon_kib"] - probe["base_kib"]) * 1024 / n
            rows.append([case, f"{n:,}", f"{t_first:.2f}", f"{n / t_first:,.0f}",
                         f"{t_second:.2f}", f"{t_path:.2f}", f"{t_refs:.2f}",
                         f"{t_snap:.2f}", f"{os.path.getsize(snap) >> 20}",
                         f"{probe['walk']:.2f}", f"{probe['dominators']:.2f}", f"{per_obj:.0f}"])
            for kind, (count, secs) in probe["kinds"].items():
                k = kind_rows.setdefault(kind, [0, 0.0])
                k[0] += count
                k[1] += secs
            print(" ".join(rows[-1]), flush=True)
    print("\nseconds for whole nsdebug commands (start-up included); the first 'objects' "
          "walks and writes the heap index, the others map it")
    print_table(["case", "objects", "objects 1st", "objects/s 1st", "objects 2nd", "path",
                 "refs", "snapshot", "snapshot MiB", "walk", "dominators",
                 "peak B/object"], rows)
    if args.kinds:
        print("\nobjects per second of the walk, by kind (all cases together)")
        table = sorted(([k, f"{c:,}", f"{c / s:,.0f}" if s else "-"]
                        for k, (c, s) in kind_rows.items()), key=lambda r: -int(r[1].replace(",", "")))
        print_table(["kind", "objects", "objects/s"], table)


if __name__ == "__main__":
    main()
