#!/usr/bin/env python3
"""Memory accounting: what `objects` and `memory` cost, and what the malloc walk adds.

usage: python benchmarks/memory.py [--scale 40] [--app CORE]

1. A numpy/pandas process (fixtures/buffers_target.py --scale N --frames 5: N x 20 MiB
   of arrays, DataFrames of 1M rows, bytearrays, mmaps, extension objects; about 1 GB
   RSS at the default 40),
   captured by gcore and by arthur (.lz4): its RSS, then the seconds of `objects` (first:
   walk, malloc walk, index written) and `memory` (index mapped), for each core.
2. An application heap (CORE, e.g. the 1M-object core of heap_walk.py; default: a
   1M-object app_target.py core made here): the walk's seconds in-process, and the part
   the malloc walk and native attribution take of it (the bar: at most 20%).
"""

import argparse
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import byte_compile_nsdebug, print_table, targets, timed, tool  # noqa: E402

PROBE = r"""
import json, sys, time
from nsdebug.corefile import open_core
from nsdebug.cpython import attach
from nsdebug.heap.walk import HeapWalker
rt = attach(open_core(sys.argv[1]))
t = time.perf_counter(); g = HeapWalker(rt).run(); walk = time.perf_counter() - t
m = g.malloc or {}
print(json.dumps({"objects": g.n - g.n_synth, "walk": walk,
                  "native": m.get("seconds", 0.0),
                  "chunks": sum(r[4] for r in m.get("regions", ()))}))
"""


def numpy_process(scale, tmp, tool_name):
    """(core path, truth) of buffers_target.py: a gcore core or an arthur .lz4 capture."""
    build = targets.default_build()
    path = targets.science_path(build)
    env = dict(os.environ, PYTHONPATH=path) if path else None
    proc, truth_path = targets.start_target(build.exe, "buffers_target.py", tmp, "--scale",
                                            str(scale), "--frames", "5", env=env)
    try:
        if tool_name == "gcore":
            core = targets.gcore(proc.pid, os.path.join(tmp, "core"))
        else:
            core = targets.arthur(proc.pid, os.path.join(tmp, "capture.lz4"))
    finally:
        targets.stop(proc)
    with open(truth_path) as f:
        return core, json.load(f)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=int, default=40)
    ap.add_argument("--app", help="a core of an application heap (default: made here)")
    args = ap.parse_args()
    byte_compile_nsdebug()
    nsdebug = tool("nsdebug")
    rows = []
    for tool_name in ("gcore", "arthur-lz4"):
        with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
            core, truth = numpy_process(args.scale, tmp, tool_name)
            rss = truth["process"]["smaps_rollup"]["Rss"]
            rss_anon = truth["process"]["RssAnon"]
            t_obj, _ = timed([nsdebug, core, "-c", "objects"])
            t_mem, out = timed([nsdebug, core, "-c", "memory", "--json"])
            doc = json.loads(out)
            res = {row["category"]: row["resident"] for row in doc["rows"]}

            def mib(v):
                return "-" if v is None else f"{v / (1 << 20):.1f}"
            rows.append([tool_name, mib(rss), mib(rss_anon),
                         f"{os.path.getsize(core) >> 20}", f"{t_obj:.2f}", f"{t_mem:.2f}",
                         mib(doc["resident"]) + (" exact" if doc["resident_exact"] else ""),
                         mib(doc["anonymous_resident"]),
                         mib(res["buffers owned by objects (in malloc)"]),
                         mib(res["native blocks not attributed"]),
                         mib(res["other anonymous memory"])])
            print(" ".join(rows[-1]), flush=True)
    print("\nthe numpy/pandas process (MiB; seconds of whole commands; RSS from inside, "
          "smaps_rollup)")
    print_table(["capture", "RSS", "RssAnon", "core", "objects 1st", "memory 2nd",
                 "resident", "anon resident", "buffers", "native unattributed",
                 "unexplained"], rows)
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        core = args.app
        if core is None:
            me = targets.Build("bench", f"{sys.version_info[0]}.{sys.version_info[1]}",
                               "pyenv", sys.executable)
            core = targets.gcore_capture(me, "app_target.py", tmp, "1250000").core
        probe = json.loads(timed([sys.executable, "-c", PROBE, core])[1])
    share = 100 * probe["native"] / probe["walk"] if probe["walk"] else 0
    print("\nthe application heap: the walk in-process, and the malloc walk with native "
          "attribution inside it")
    print_table(["objects", "malloc chunks", "walk s", "malloc + native s", "share"],
                [[f"{probe['objects']:,}", f"{probe['chunks']:,}", f"{probe['walk']:.2f}",
                  f"{probe['native']:.2f}", f"{share:.1f}%"]])


if __name__ == "__main__":
    main()
