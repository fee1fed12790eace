#!/usr/bin/env python3
"""Heap commands on cores of heaps like real ones, and the synthetic heap beside them.

usage: python benchmarks/heap_walk.py [--cases app:1000000,...] [--cache DIR] [--spill MODE]
                                     [--kinds]
       (pip install '.[bench]' for Flask in the application heap)

Cases (NAME:OBJECTS): `app` is fixtures/app_target.py (the standard library, Flask,
classes, closures, decorated functions, bound methods, request-like data); `ast` the
same process holding parsed syntax trees (a deep graph, as pylint holds); `synthetic`
is fixtures/heap_target.py (lists, dicts and instances of a few classes). Default: app
at 1M, 5M, 15M and 50M objects, ast at 1.5M. Each target is captured twice by arthur,
as a plain core and as an .lz4 capture; cases of 15M objects and more are made once and
kept under --cache (the 50M case needs about 10 GB of disk and 8 GB of memory to make).

Prints per core and per capture: objects; `objects` as a whole command the first time
(walk, dominators, index written) and the second time (index mapped); `suspects` and the
snapshot export with the index; the first command's peak anonymous memory (sampled from
/proc; the mapped core is page cache, not counted), whole and per object (the tool's
own start-up included), a capture's decompressed copy left out where it was made in
memory (it is the core, as a plain core's page cache is; shown apart); with --kinds,
the walk's objects per second by kind. Before and after the cases, how fast this
machine gives new pages (a walk writes gigabytes of them; on a VM that hands free
memory back to its host they are the walk's main cost). Each core and capture is
measured with its own pages in the kernel's cache and the other files' dropped
(alone_in_cache).
"""

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (byte_compile_nsdebug, drop_page_cache, print_table,  # noqa: E402
                    read_into_cache, targets, timed, tool)

DEFAULT = "app:1000000,app:5000000,app:15000000,app:50000000,ast:1500000"
CACHE_FROM = 15_000_000        # cases this large are made once and kept (--cache)
SYNTHETIC_PER_SCALE = 41_000     # heap_target.py builds about this many per unit of SCALE
APP_BLOCKS_PER_OBJECT = 1.25     # app_target.py counts pymalloc blocks; objects are fewer

# In-process (--kinds): the walk's objects and seconds by kind of object.
PROBE = r"""
import json, sys
from nsdebug.corefile import open_core
from nsdebug.cpython import attach
from nsdebug.heap.walk import HeapWalker
w = HeapWalker(attach(open_core(sys.argv[1])))
w.run()
print(json.dumps({"kinds": w.kind_stats}))
"""


def capture(case, want, workdir):
    """(plain core, .lz4 capture, objects the target counted) of one running target at
    about `want` objects: arthur twice, --no-compress and compressed (gcore takes
    minutes over a heap of gigabytes, and its core is the same ELF). Cases of
    CACHE_FROM objects and more are made once and kept in `workdir`."""
    core, lz4 = os.path.join(workdir, "core"), os.path.join(workdir, "capture.lz4")
    if os.path.exists(core) and os.path.exists(lz4):
        return core, lz4
    os.makedirs(workdir, exist_ok=True)
    if case == "synthetic":
        args = ["heap_target.py", str(max(1, round(want / SYNTHETIC_PER_SCALE)))]
    else:
        args = ["app_target.py", str(int(want * APP_BLOCKS_PER_OBJECT))] + \
            (["--ast"] if case == "ast" else [])
    proc, _truth = targets.start_target(sys.executable, args[0], workdir, *args[1:])
    try:
        targets.arthur(proc.pid, core + ".part", "--no-compress")
        targets.arthur(proc.pid, lz4 + ".part")
    finally:
        targets.stop(proc)
    os.replace(core + ".part", core)
    os.replace(lz4 + ".part", lz4)
    return core, lz4


def anon_peak(cmd, env):
    """(seconds, stdout, peak RssAnon in bytes, whether a copy of the core was mapped
    from a temporary file) of a command, its memory sampled every 5 ms from /proc (the
    mapped core is page cache, not counted; a capture's copy made in memory is in
    RssAnon)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    peak, in_file = [0], []

    def sample():
        status, maps = f"/proc/{proc.pid}/status", f"/proc/{proc.pid}/maps"
        while proc.poll() is None:
            try:
                with open(status) as f:
                    rows = dict(x.split()[:2] for x in f if x.startswith("Rss"))
                peak[0] = max(peak[0], int(rows["RssAnon:"]) * 1024)
                if not in_file:
                    with open(maps) as f:
                        in_file.extend(line for line in f if "nsdebug-core-" in line)
            except (OSError, KeyError, ValueError):
                pass
            time.sleep(0.005)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    secs = time.perf_counter() - start
    sampler.join()
    if proc.returncode:
        sys.exit(f"{' '.join(map(str, cmd))}: {err.decode()[-2000:]}")
    return secs, out.decode(), peak[0], bool(in_file)


def copy_bytes(path):
    """The size of the copy a heap command makes of a capture (its core up to the end
    of its last segment, as nsdebug.corefile.vector makes it); 0 for a plain core."""
    from nsdebug.corefile import open_core
    from nsdebug.corefile.vector import copy_extent
    process = open_core(path)
    try:
        return 0 if process.source.buffer is not None else copy_extent(process.memory)
    finally:
        process.close()


def drop_index(path):
    """The heap index beside `path` removed (the next command walks again)."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path + ".nsdebug-index")


def measure(nsdebug, path, tmp, env):
    """The figures of one core or capture: first and second `objects`, `suspects`, the
    snapshot export, the first command's peak anonymous memory."""
    drop_index(path)
    t_first, out, peak, in_file = anon_peak([nsdebug, path, "-c", "objects", "--json"], env)
    copy = 0 if in_file else copy_bytes(path)       # (in memory: its pages in the peak)
    n = json.loads(out)["total_objects"]
    t_second, _ = timed([nsdebug, path, "-c", "objects"], env)
    t_suspects, _ = timed([nsdebug, path, "-c", "suspects"], env)
    snap = os.path.join(tmp, "h.heapsnapshot")
    t_snap, _ = timed([nsdebug, path, "--snapshot", snap], env)
    snap_mib = os.path.getsize(snap) >> 20
    os.unlink(snap)
    drop_index(path)
    return {"n": n, "first": t_first, "second": t_second, "suspects": t_suspects,
            "snapshot": t_snap, "snapshot_mib": snap_mib, "peak": peak - copy, "copy": copy}


def alone_in_cache(path, files):
    """`path` read into the kernel's cache and every other of `files` (the cases' cores
    and captures so far) dropped from it: each is measured as on a machine that holds
    only it. Else what the earlier cases left cached (19 GB of 24 by the 50M case's
    capture) pushes the file's own pages out while its walk runs, and they are read
    from the disk again: how much depends on the order of the cases."""
    for other in files:
        if other != path:
            drop_page_cache(other)
    read_into_cache(path)


def new_page_rate(directory, size=1 << 30, rest=15.0):
    """MB/s of writing `size` bytes into a new file after `rest` seconds of quiet: what a
    page the machine has not used lately costs here. A walk writes gigabytes of new
    pages (its arrays, the index, a capture's copy); on a VM whose free memory goes back
    to the host (balloon free page reporting, DAMON pageout) they cost ten times what
    reused pages do, and the figures below move with it between runs."""
    time.sleep(rest)
    piece = os.urandom(1 << 20)
    fd, path = tempfile.mkstemp(dir=directory)
    try:
        start = time.perf_counter()
        for _ in range(size >> 20):
            os.write(fd, piece)
        secs = time.perf_counter() - start
    finally:
        os.close(fd)
        os.unlink(path)
    return size / secs / 1e6


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", default=DEFAULT)
    ap.add_argument("--kinds", action="store_true", help="print objects/s per kind")
    ap.add_argument("--cache", default=os.environ.get("BENCH_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "nsdebug-bench"),
        help=f"where cases of {CACHE_FROM:,} objects and more are kept between runs")
    ap.add_argument("--spill", choices=("auto", "always", "never"), default="auto",
                    help="NSDEBUG_SPILL for nsdebug's runs (always: the walk's arrays in "
                         "a scratch file from the start, to see its memory and time)")
    args = ap.parse_args()
    byte_compile_nsdebug()
    nsdebug = tool("nsdebug")
    scratch = os.environ.get("BENCH_TMP") or args.cache
    os.makedirs(scratch, exist_ok=True)
    rates = [new_page_rate(scratch)]
    rows, kind_rows, files = [], {}, []
    for spec in args.cases.split(","):
        case, want = spec.split(":")
        want = int(want)
        with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
            env = dict(os.environ, XDG_CACHE_HOME=os.path.join(tmp, "cache"),
                       NSDEBUG_SPILL=args.spill)
            work = os.path.join(args.cache, f"{case}-{want}") if want >= CACHE_FROM \
                else os.path.join(tmp, "target")
            core, lz4 = capture(case, want, work)
            if args.kinds:
                probe = json.loads(timed([sys.executable, "-c", PROBE, core])[1])
                for kind, (count, secs) in probe["kinds"].items():
                    k = kind_rows.setdefault(kind, [0, 0.0])
                    k[0] += count
                    k[1] += secs
            files += [core, lz4]
            for label, path in (("core", core), (".lz4", lz4)):
                alone_in_cache(path, files)
                m = measure(nsdebug, path, tmp, env)
                n = m["n"]
                rows.append([case, label, f"{n:,}", f"{os.path.getsize(path) >> 20:,}",
                             f"{m['first']:.2f}", f"{n / m['first']:,.0f}",
                             f"{m['second']:.2f}", f"{m['suspects']:.2f}",
                             f"{m['snapshot']:.2f}", f"{m['snapshot_mib']:,}",
                             f"{m['peak'] >> 20:,}",
                             f"{m['peak'] / n:.0f}", f"{m['copy'] >> 20:,}"])
                print(" ".join(rows[-1]), flush=True)
        # A small case's files went with its directory (and their pages with them).
        files = [f for f in files if os.path.exists(f)]
    rates.append(new_page_rate(scratch))
    print(f"\nnew pages on this machine: {rates[0]:,.0f} MB/s before the cases, "
          f"{rates[1]:,.0f} MB/s after (1 GiB into a new file after 15 s of quiet)")
    print("seconds for whole nsdebug commands (start-up included), each a new process; "
          "the first 'objects' walks and writes the heap index, the others map it; peak: "
          "the first command's anonymous memory, whole and per object (the tool's own "
          "~50 MiB of code and numpy included), less a capture's decompressed core "
          "where it was made in memory: copy in memory, its size")
    print_table(["case", "file", "objects", "MiB", "objects 1st", "objects/s 1st",
                 "objects 2nd", "suspects", "snapshot", "snapshot MiB", "peak MiB",
                 "peak B/object", "copy in memory MiB"], rows)
    if args.kinds:
        print("\nobjects per second of the walk, by kind (all cases together)")
        table = sorted(([k, f"{c:,}", f"{c / s:,.0f}" if s else "-"]
                        for k, (c, s) in kind_rows.items()),
                       key=lambda r: -int(r[1].replace(",", "")))
        print_table(["kind", "objects", "objects/s"], table)


if __name__ == "__main__":
    main()
