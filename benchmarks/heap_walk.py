#!/usr/bin/env python3
"""Heap walk and snapshot export on cores of processes with about 1 and 5 million objects.

usage: python benchmarks/heap_walk.py [--objects 1000000,5000000]

Prints, per core: objects found, walk time and objects per second, dominator
(retained sizes) time, the time of `objects` and `path` as whole commands, the
snapshot export's time, file size, and nsdebug's peak memory per object.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import byte_compile_nsdebug, print_table, targets, tool  # noqa: E402

OBJECTS_PER_SCALE = 41_000       # heap_target.py builds about this many per unit of SCALE

# Peak anonymous memory (RssAnon, sampled): nsdebug's own memory. The mapped core's
# pages (page cache, reclaimable) are reported apart, as the peak of the whole RSS.
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
from nsdebug.heap import build_heap
rt = attach(open_core(sys.argv[1]))
time.sleep(0.05)
base = anon()
t = time.perf_counter(); g = build_heap(rt); walk = time.perf_counter() - t
t = time.perf_counter(); g.retained(); dom = time.perf_counter() - t
time.sleep(0.05)
print(json.dumps({"objects": g.n - g.n_synth, "walk": walk, "dominators": dom,
                  "peak_anon_kib": peak[0], "base_kib": base,
                  "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def timed(cmd):
    start = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        sys.exit(r.stderr[-2000:])
    return time.perf_counter() - start, r.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--objects", default="1000000,5000000")
    args = ap.parse_args()
    byte_compile_nsdebug()
    nsdebug = tool("nsdebug")
    rows = []
    for want in (int(x) for x in args.objects.split(",")):
        scale = max(1, round(want / OBJECTS_PER_SCALE))
        with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
            cap = targets.gcore_capture("bench", sys.executable, "heap_target.py", tmp,
                                        str(scale))
            probe = json.loads(timed([sys.executable, "-c", PROBE, cap.core])[1])
            widget = cap.truth["named"]["widget"]["id"]
            t_objects, _ = timed([nsdebug, cap.core, "-c", "objects"])
            t_path, out = timed([nsdebug, cap.core, "-c", f"path {widget:#x}"])
            snap = os.path.join(tmp, "h.heapsnapshot")
            # /usr/bin/time reports the export's own peak RSS (core pages included).
            r = subprocess.run(["/usr/bin/time", "-f", "%e %M", nsdebug, cap.core,
                                "--snapshot", snap], capture_output=True, text=True)
            t_snap, snap_rss = r.stderr.strip().splitlines()[-1].split()
            t_snap, snap_rss = float(t_snap), int(snap_rss) >> 10
            size = os.path.getsize(snap)
            n = probe["objects"]
            per_obj = (probe["peak_anon_kib"] - probe["base_kib"]) * 1024 / n
            rows.append([f"{n:,}", f"{probe['walk']:.1f}", f"{n / probe['walk']:,.0f}",
                         f"{probe['dominators']:.1f}", f"{t_objects:.1f}", f"{t_path:.1f}",
                         f"{per_obj:.0f}", f"{probe['peak_rss_kib'] >> 10}", f"{t_snap:.1f}",
                         f"{size >> 20}", f"{snap_rss}"])
            print(f"path: {out.strip()}", flush=True)
    print("times in seconds; 'objects'/'path'/'snapshot' are whole nsdebug commands "
          "(start-up, walk and all)")
    print_table(["objects", "walk s", "objects/s", "dominators s", "objects cmd s",
                 "path cmd s", "peak anon B/object", "peak RSS MiB (incl. core pages)",
                 "snapshot s", "snapshot MiB", "snapshot peak RSS MiB"], rows)


if __name__ == "__main__":
    main()
