#!/usr/bin/env python3
"""`nsdebug CORE -c "bt --all"` against `pystack core CORE` on the same cores, per version;
with --native, `bt --all --native` against `pystack core CORE --native-all`.

usage: python benchmarks/bt_vs_pystack.py [--runs N] [--native]
       (needs: pip install '.[bench]')

Each build's core is of fixtures/stacks_target.py (4 threads): a gcore for pyenv's
builds; for Debian's (tools/get_pythons.sh), whose thread stacks gcore cannot dump
whole, an arthur capture written as a plain core (--no-compress), which both tools
read. Prints the median wall time of each tool and their ratio.

With --native both tools read the same files: the binaries and what /usr/lib/debug
holds (libc6-dbg here). nsdebug's time is with its cache of inflated debug sections
warm (~/.cache/nsdebug/dwarf, here a temporary directory) and, as "cold", with
--no-cache, which inflates every compressed section each run. Debian's builds have
their own -dbg files, which pystack cannot be pointed at: the last columns are nsdebug
with --debug-dir at them (file, line and inlined calls of the interpreter too).
"""

import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import byte_compile_nsdebug, median_time, print_table, targets, tool  # noqa: E402


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
            cap = targets.gcore_capture(build, "stacks_target.py",
                                        os.path.join(tmp, build.id), threads=4,
                                        tool=tool_name)
            ns = [nsdebug, cap.core, "-c", ns_cmd]
            t_ns = median_time(ns, args.runs, env=env)
            t_ps = median_time([pystack, "core", cap.core, *ps_args], args.runs)
            size = os.path.getsize(cap.core) >> 20
            row = [build.id, ".".join(map(str, cap.truth["version"])), tool_name,
                   f"{size} MiB", f"{t_ps * 1000:.0f} ms", f"{t_ns * 1000:.0f} ms"]
            if args.native:
                cold = median_time(ns + ["--no-cache"], args.runs, env=env)
                row.append(f"{cold * 1000:.0f} ms")
            row.append(f"{t_ns / t_ps:.2f}")
            if args.native:
                dbg = ["--debug-dir", build.debug_dir] if build.debug_dir else None
                if dbg:
                    warm = median_time(ns + dbg, args.runs, env=env)
                    cold = median_time(ns + dbg + ["--no-cache"], args.runs, env=env)
                    row += [f"{warm * 1000:.0f} ms", f"{cold * 1000:.0f} ms"]
                else:
                    row += ["-", "-"]
            rows.append(row)
            os.unlink(cap.core)
    print(f"median of {args.runs} runs, cores of fixtures/stacks_target.py (4 threads)")
    headers = ["build", "version", "core by", "core",
               "pystack core" + (" --native-all" if args.native else ""),
               f"nsdebug {ns_cmd}"]
    if args.native:
        headers += ["cold", "nsdebug/pystack", "with -dbg files", "cold"]
    else:
        headers += ["nsdebug/pystack"]
    print_table(headers, rows)
    for b in targets.missing_builds():
        print(f"not available, skipped: {b.id} ({b.why_missing})")


if __name__ == "__main__":
    main()
