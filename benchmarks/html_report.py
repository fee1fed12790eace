#!/usr/bin/env python3
"""`nsdebug report CORE --html` on application heaps of 200k, 1M and 5M objects: the time
to write the page, its size, and in a real headless Chromium its first paint and the
time until every section is drawn (the median of three loads).

usage: python benchmarks/html_report.py [--cases app:200000,app:1000000,app:5000000]
       (Chromium and tests/devtools' node modules: `npm ci` there)
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import ROOT, byte_compile_nsdebug, print_table, timed, tool  # noqa: E402
from heap_walk import capture  # noqa: E402

DEVTOOLS = os.path.join(ROOT, "tests", "devtools")
READY = ("(() => { const m = performance.getEntriesByType('mark').map(x => x.startTime); "
         "return Math.max(...m); })()")


def load(page, chromium):
    """(first paint ms, last section drawn ms) of one load of the page."""
    plan = os.path.join(os.path.dirname(page), "plan.json")
    with open(plan, "w") as f:
        json.dump({"page": page, "chromium": chromium,
                   "steps": [{"do": "eval", "as": "drawn", "expr": READY}]}, f)
    r = subprocess.run(["node", "browse.mjs", plan], cwd=DEVTOOLS, capture_output=True,
                       text=True, timeout=600)
    if r.returncode:
        sys.exit(r.stderr[-2000:])
    out = json.loads(r.stdout.strip().splitlines()[-1])
    if out["errors"]:
        sys.exit(f"the page has errors: {out['errors']}")
    return out["paint"], out["values"]["drawn"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", default="app:200000,app:1000000,app:5000000")
    args = ap.parse_args()
    chromium = shutil.which("chromium")
    if not chromium or not os.path.isdir(os.path.join(DEVTOOLS, "node_modules",
                                                      "puppeteer-core")):
        sys.exit("needs chromium and tests/devtools' node modules (npm ci there)")
    byte_compile_nsdebug()
    nsdebug = tool("nsdebug")
    rows = []
    for spec in args.cases.split(","):
        case, want = spec.split(":")
        with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
            cap = capture(case, int(want), tmp)
            timed([nsdebug, cap.core, "-c", "objects"])       # the index, as a user has it
            page = os.path.join(tmp, "report.html")
            took, _ = timed([nsdebug, "report", cap.core, "--html", page])
            loads = [load(page, chromium) for _ in range(3)]
            objects = json.loads(subprocess.run(
                [nsdebug, cap.core, "-c", "objects --top 1", "--json"], capture_output=True,
                text=True).stdout)["total_objects"]
            rows.append([case, f"{objects:,}", f"{took:.1f}",
                         f"{os.path.getsize(page) / 2**20:.1f}",
                         f"{statistics.median(p for p, _ in loads):.0f}",
                         f"{statistics.median(d for _, d in loads):.0f}"])
            print(" ".join(rows[-1]), flush=True)
    print("\nthe report page: seconds to write it (heap index present), its size, and in "
          "headless Chromium the first paint and the last section drawn (ms, median of 3)")
    print_table(["case", "objects", "write s", "page MiB", "first paint ms", "drawn ms"],
                rows)


if __name__ == "__main__":
    main()
