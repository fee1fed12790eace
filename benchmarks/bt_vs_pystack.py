#!/usr/bin/env python3
"""`nsdebug CORE -c "bt --all"` against `pystack core CORE` on the same cores, per version;
with --native, `bt --all --native` against `pystack core CORE --native-all`.

usage: python benchmarks/bt_vs_pystack.py [--runs N] [--native]
       (needs: pip install '.[bench]')

Each build's target is fixtures/stacks_target.py (4 threads), captured twice while it
runs: as a plain core (gcore for pyenv's builds; for Debian's, whose thread stacks
gcore cannot dump whole, arthur --no-compress), which both tools read, and as an arthur
.lz4 capture, which only nsdebug reads (pystack's figure is then its time on the plain
core of the same process). Every run is a new process ("cold": nothing of an earlier
run is reused but the page cache), nsdebug and pystack in turn: the figures are
medians, the ratios the medians of nsdebug's time over pystack's in neighbouring runs.

With --native both tools read the same files: the binaries and what /usr/lib/debug
holds (libc6-dbg here). nsdebug's time is with its cache of inflated debug sections
warm (~/.cache/nsdebug/dwarf, here a temporary directory) and, as "no cache", with
--no-cache, which inflates every compressed section each run. Debian's builds have
their own -dbg files, which pystack cannot be pointed at: the last columns are nsdebug
with --debug-dir at them (file, line and inlined calls of the interpreter too).
"""

import argparse
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (byte_compile_nsdebug, median_time, paired_times, print_table, targets,
                    tool)  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--native", action="store_true",
                    help="merged C and Python stacks (file, line, inlined calls)")
    args = ap.parse_args()
    ns_cmd = "bt --all --native" if args.native else "bt --all"
    ps_args = ["--native-all"] if args.native else []
    nsdebug, pystack = tool("nsdebug"), tool("pystack")
    if not nsdebug:
        sys.exit("nsdebug is not installed (pip install -e .)")
    if not pystack:
        sys.exit("pystack is not installed (pip install -e '.[bench]')")
    byte_compile_nsdebug()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, XDG_CACHE_HOME=os.path.join(tmp, "cache"))
        for build in targets.available_builds():
            tool_name = targets.live_capture_tool(build)
            core, lz4, version = twin_captures(build, os.path.join(tmp, build.id), tool_name)
            ns = [nsdebug, core, "-c", ns_cmd]
            ps = [pystack, "core", core, *ps_args]
            t_ns, t_ps, r_ns = paired_times(ns, ps, args.runs, env_a=env)
            t_lz, _t, r_lz = paired_times([nsdebug, lz4, "-c", ns_cmd], ps, args.runs,
                                          env_a=env)
            size = os.path.getsize(core) >> 20
            row = [build.id, version, tool_name, f"{size} MiB", f"{t_ps * 1000:.0f} ms",
                   f"{t_ns * 1000:.0f} ms", f"{r_ns:.2f}",
                   f"{t_lz * 1000:.0f} ms", f"{r_lz:.2f}"]
            if args.native:
                cold = median_time(ns + ["--no-cache"], args.runs, env=env)
                row.append(f"{cold * 1000:.0f} ms")
                dbg = ["--debug-dir", build.debug_dir] if build.debug_dir else None
                if dbg:
                    warm = median_time(ns + dbg, args.runs, env=env)
                    cold = median_time(ns + dbg + ["--no-cache"], args.runs, env=env)
                    row += [f"{warm * 1000:.0f} ms", f"{cold * 1000:.0f} ms"]
                else:
                    row += ["-", "-"]
            rows.append(row)
            os.unlink(core)
            os.unlink(lz4)
    print(f"median of {args.runs} runs, each a new process; cores of "
          f"fixtures/stacks_target.py (4 threads)")
    headers = ["build", "version", "core by", "core",
               "pystack core" + (" --native-all" if args.native else ""),
               f"nsdebug {ns_cmd}", "ratio", "on its .lz4", "ratio"]
    if args.native:
        headers += ["no cache", "with -dbg files", "no cache"]
    print_table(headers, rows)


def twin_captures(build, workdir, tool_name):
    """(plain core, .lz4 capture, version) of one running stacks target."""
    os.makedirs(workdir, exist_ok=True)
    proc, truth_path = targets.start_target(build.exe, "stacks_target.py", workdir,
                                            threads=4)
    try:
        if tool_name == "arthur":
            core = targets.arthur(proc.pid, os.path.join(workdir, f"core.{proc.pid}"),
                                  "--no-compress")
        else:
            core = targets.gcore(proc.pid, os.path.join(workdir, "core"))
        lz4 = targets.arthur(proc.pid, os.path.join(workdir, "capture.lz4"))
    finally:
        targets.stop(proc)
    with open(truth_path) as f:
        version = ".".join(map(str, json.load(f)["version"]))
    return core, lz4, version


if __name__ == "__main__":
    main()
