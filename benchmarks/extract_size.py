#!/usr/bin/env python3
"""What the file extracts (docs/formats.md) add to an arthur capture.

usage: python benchmarks/extract_size.py [--python EXE]

Two processes: a small service (fixtures/app_target.py: the standard library and
Flask, 200k objects) and the 1 GiB process of capture_pause.py (fixtures/big_target.py).
Each is captured twice, as is and with --lean; the table gives the files kept, the
bytes the extracts add before and after compression, and their share of the capture.
Then one kernel-style core (gcore of the service) is bundled with `nsdebug bundle`.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import byte_compile_nsdebug, print_table, targets, tool  # noqa: E402

MIB = 1 << 20


def capture(arthur, pid, out, *extra):
    r = subprocess.run([arthur, "capture", str(pid), "-o", out, "--json", *extra],
                       capture_output=True, text=True)
    if r.returncode:
        sys.exit(r.stderr)
    return json.loads(r.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--python", default=sys.executable, help="interpreter of the targets")
    args = ap.parse_args()
    byte_compile_nsdebug()
    arthur, nsdebug = tool("arthur"), tool("nsdebug")
    rows = []
    cases = [("service (app_target, 200k objects)", "app_target.py", "250000"),
             ("1 GiB process (big_target)", "big_target.py", "1024")]
    bundle_row = None
    for label, script, arg in cases:
        with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
            proc, _truth = targets.start_target(args.python, script, tmp, arg)
            try:
                full = capture(arthur, proc.pid, os.path.join(tmp, "full.lz4"))
                lean = capture(arthur, proc.pid, os.path.join(tmp, "lean.lz4"), "--lean")
                info = json.loads(subprocess.run(
                    [arthur, "info", os.path.join(tmp, "full.lz4"), "--json"],
                    capture_output=True, text=True, check=True).stdout)
                if script == "app_target.py":
                    core = targets.gcore(proc.pid, os.path.join(tmp, "gc"))
                    r = subprocess.run([nsdebug, "bundle", core, "-o",
                                        os.path.join(tmp, "b.lz4")],
                                       capture_output=True, text=True)
                    if r.returncode:
                        sys.exit(r.stderr)
                    bundle_row = r.stdout.strip()
            finally:
                targets.stop(proc)
        raw_add = full["raw_size"] - lean["raw_size"]
        lz4_add = full["file_size"] - lean["file_size"]
        rows.append([label, str(info["arthur"].get("files_kept")),
                     f"{raw_add / MIB:.2f}", f"{lz4_add / MIB:.2f}",
                     f"{full['file_size'] / MIB:.1f}", f"{lz4_add / full['file_size']:.1%}"])
    print_table(["process", "files kept", "added MiB (raw)", "added MiB (lz4)",
                 "capture MiB (lz4)", "share of capture"], rows)
    print(f"nsdebug bundle of a gcore core of the service: {bundle_row}")


if __name__ == "__main__":
    main()
