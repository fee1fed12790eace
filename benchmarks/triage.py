"""`nsdebug triage` over a fleet's worth of crash cores: the first run and the second
(incremental: one new core) on the local pool and on a Dask LocalCluster.

    python benchmarks/triage.py [--cores 1000] [--jobs 2] [--no-dask] [--dir DIR]

Makes real crashes of the four bugs of fixtures/triage_target.py (a C extension's NULL
read, os.abort(), a stack overflow, a ctypes wild pointer) on three CPython builds, two
call paths each (24 kernel cores), then fills the directory to N cores with copies of
them (each copy its own file: read, hashed and analysed as a new core). Prints cores
per second, the wall times and the peak RSS of the run (the parent and its children).
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

from common import ROOT, byte_compile_nsdebug, targets, tool

sys.path.insert(0, os.path.join(ROOT, "tests", "triage"))
from test_triage import BUGS, BUILDS, SCRIPT, _build_ext, _crash  # noqa: E402


def make_fleet(root, n):
    real = []
    for k, b in enumerate(targets.build(x) for x in BUILDS):
        if not b.exe:
            sys.exit(f"CPython {b.id} is not installed")
        ext = _build_ext(b.exe, os.path.join(root, "ext", b.id))
        for bug in BUGS:
            for variant in (k % 3, (k + 1) % 3):
                d = os.path.join(root, "cores", f"{bug}-{b.id}-{variant}")
                real.append(_crash(b.exe, d, SCRIPT, "truth.json", bug, str(variant), ext))
    for i in range(n - len(real)):
        d = os.path.join(root, "cores", "copies", f"{i // 100:03d}")
        os.makedirs(d, exist_ok=True)
        shutil.copy(real[i % len(real)], os.path.join(d, f"core.{i}"))
    return os.path.join(root, "cores"), real


def run(cmd):
    """(seconds, the JSON document, peak RSS of the children in MiB so far)."""
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    took = time.perf_counter() - t0
    if r.returncode:
        sys.exit(f"{' '.join(cmd)}: {r.stderr[-2000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return took, json.loads(r.stdout), peak


def bench(label, base, cores_dir, real, n):
    cache = tempfile.mkdtemp(prefix="triage-cache-")
    try:
        first, doc, peak = run(base + [cores_dir, "--cache", cache])
        groups = ", ".join(f"{g['count']}" for g in doc["groups"])
        print(f"{label:<22} first run   {n:>5} cores {first:8.1f} s  "
              f"{n / first:7.1f} cores/s  groups {len(doc['groups'])} ({groups}), "
              f"failed {len(doc['failed'])}, peak RSS of one process {peak:.0f} MiB")
        late = os.path.join(cores_dir, "late")
        os.makedirs(late, exist_ok=True)
        shutil.copy(real[0], os.path.join(late, "core.late"))
        second, doc, _ = run(base + [cores_dir, "--cache", cache])
        shutil.rmtree(late)
        print(f"{label:<22} second run  {n + 1:>5} cores {second:8.2f} s  "
              f"(read {doc['analyzed']}, from the cache {doc['cached']})")
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cores", type=int, default=1000)
    p.add_argument("--jobs", type=int, default=os.cpu_count())
    p.add_argument("--no-dask", action="store_true")
    p.add_argument("--dir", help="make the cores here (default: a temporary directory)")
    args = p.parse_args()
    byte_compile_nsdebug()
    root = args.dir or tempfile.mkdtemp(prefix="triage-bench-")
    try:
        t0 = time.perf_counter()
        cores_dir, real = make_fleet(root, args.cores)
        print(f"made {args.cores} cores ({len(real)} real crashes, the rest copies) in "
              f"{time.perf_counter() - t0:.0f} s")
        nsdebug = [tool("nsdebug") or sys.executable, "triage", "--json"]
        bench(f"local pool, {args.jobs} jobs", nsdebug + ["--jobs", str(args.jobs)],
              cores_dir, real, args.cores)
        if not args.no_dask:
            from distributed import LocalCluster
            with LocalCluster(n_workers=args.jobs, threads_per_worker=1, processes=True,
                              dashboard_address=None) as cluster:
                bench(f"Dask, {args.jobs} workers", nsdebug + ["--dask",
                                                              cluster.scheduler_address],
                      cores_dir, real, args.cores)
    finally:
        if not args.dir:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
