#!/usr/bin/env python3
"""An arthur capture against a plain core of the same process, command by command.

usage: python benchmarks/capture_vs_core.py [--cases app:1000000,ast:1500000,...]
                                            [--pairs N] [--cache DIR]
                                            [--cold | --alone [--even]] [--only WORDS]
       (pip install '.[bench]' for Flask in the application heap)

A capture should cost no more than a plain core of the same process, for every command.
Single runs of a whole command swing by 10-40% on a VM. So this runs the capture's
command and the core's in turn (common.paired_times: A B A B ...), and prints each side's
median and the median of the neighbouring runs' ratios. The commands:
- `objects`, the first one: the heap index is removed before each run. That is the walk,
  and for a capture also its whole-core copy.
- `--snapshot`, with the index. A capture's is read a window of its core at a time
  (corefile.windows), with no copy of it all.
- `suspects`, and `report --html` (the one-shot triage report, its HTML page), with
  the index.
- `info` and `bt --all`, which read little of the core.

With --cold, each run starts with the file's pages out of the kernel's cache
(common.drop_page_cache): the command reads the core or capture from the disk, as the
first command on a core made or copied in elsewhere does. Without it, both are read
from memory after the first run: the plain core's side pays nothing for its bytes, the
capture's still decompresses its own into new memory.

With --alone, each run starts with its own file (and heap index, where it has one) in
the kernel's cache and the other's out of it, as on a machine that has only the capture,
or only the core. Without it, a capture's run of the 48M-object case finds the core's
5.7 GB and its index's 8.6 GB still cached: memory its copy (5.4 GB) and walk (11 GB)
must take back from the cache, on a machine of 24 GB.

With --alone --even, each side also starts with the same number of bytes cached: the
smaller side (the capture's) keeps the other file's first bytes too, up to the
difference, which its command never opens. Without it the capture's side starts with
GBs more memory free than the core's, and on a VM whose kernel hands free memory back
to its host at once (free page reporting), taking it again is slow: at 48M objects the
capture's `--snapshot` runs saw 2.3-2.8 GB reported to the host while they ran, the
core's 0.9-1.0 GB, and the phases that read no byte of either file (writing the rows)
were slower by seconds on the capture's side (the kernel counts what it reported in
/sys/module/page_reporting/parameters/reported_kib). Neither is neutral: a command that
needs more memory on the capture's side (the first `objects`, for its 5.4 GB copy at
48M) then takes it back from that cache instead (+13.4% with --even, +2.3% and +6.0%
without, 7 pairs each).

Each row also gives what a new page cost just before its pairs (heap_walk.new_page_rate:
MB/s of 1 GiB written into a new file after 15 s of quiet), a snapshot of the machine
rather than of the tool. A capture's command that takes more new memory than the core's
(the first `objects` of a capture whose copy is made in memory: 5.4 GB more at 48M
objects) pays what the host charges for it, and on this VM that moves by the minute
(616 and 1,832 MB/s ten minutes apart, 1 GiB each, on one day).

The cores are heap_walk.py's: the same targets, and cases of 15M objects and more are
kept in the same cache. Pairs: --pairs, or 7 below 15M objects and 3 from there.
"""

import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (byte_compile_nsdebug, drop_page_cache, paired_times,  # noqa: E402
                    print_table, read_into_cache, timed, tool)
from heap_walk import CACHE_FROM, capture, drop_index, new_page_rate  # noqa: E402

DEFAULT = "app:1000000,ast:1500000,app:15000000"
FIRST = "objects, first"    # the one command that makes its own index (removed first)


def commands(nsdebug, path, tmp):
    """(label, the command) over `path`: the first `objects` removes the index first."""
    snap = os.path.join(tmp, os.path.basename(path) + ".heapsnapshot")
    first = ["sh", "-c", 'rm -f "$1.nsdebug-index"; exec "$0" "$1" -c objects',
             nsdebug, path]
    return [(FIRST, first),
            ("--snapshot", [nsdebug, path, "--force", "--snapshot", snap]),
            ("suspects", [nsdebug, path, "-c", "suspects"]),
            ("report --html", [nsdebug, "report", path, "--force", "--html",
                               os.path.join(tmp, os.path.basename(path) + ".html")]),
            ("info", [nsdebug, path, "-c", "info"]),
            ("bt --all", [nsdebug, path, "-c", "bt --all"])]


def before_runs(args, lz4, core):
    """What runs, untimed, before each run of the capture's command and the core's."""
    if args.cold:
        return (lambda: drop_page_cache(lz4)), (lambda: drop_page_cache(core))
    if args.alone:
        def only(mine, other):
            for path in with_index(other):
                drop_page_cache(path)
            for path in with_index(mine):
                read_into_cache(path)
            # --even: as many bytes cached on both sides (the module's comment).
            more = cached_bytes(other) - cached_bytes(mine)
            if args.even and more > 0:
                read_into_cache(other, limit=more)
        return (lambda: only(lz4, core)), (lambda: only(core, lz4))
    return None, None


def cached_bytes(path):
    return sum(os.path.getsize(p) for p in with_index(path))


def with_index(path):
    """`path`, and its heap index where it has one: a machine that has only the capture
    has no index of the core either (at 48M objects an index is 8.6 GB of cache)."""
    index = path + ".nsdebug-index"
    return [path, index] if os.path.exists(index) else [path]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", default=DEFAULT)
    ap.add_argument("--pairs", type=int, default=0,
                    help="pairs per command (default: 7, or 3 from 15M objects)")
    ap.add_argument("--cache", default=os.environ.get("BENCH_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "nsdebug-bench"),
        help=f"where cases of {CACHE_FROM:,} objects and more are kept between runs")
    ap.add_argument("--only", default="",
                    help="comma-separated words: only the commands whose label has one "
                         "(snapshot, suspects, report, objects, info, bt)")
    how = ap.add_mutually_exclusive_group()
    how.add_argument("--cold", action="store_true",
                     help="each run reads its file from the disk, not the kernel's cache")
    how.add_argument("--alone", action="store_true",
                     help="each run finds its own file cached and the other's not")
    ap.add_argument("--even", action="store_true",
                    help="with --alone: as many bytes cached on both sides")
    args = ap.parse_args()
    if args.even and not args.alone:
        ap.error("--even goes with --alone")
    byte_compile_nsdebug()
    nsdebug = tool("nsdebug")
    rows = []
    for spec in args.cases.split(","):
        case, want = spec.split(":")
        want = int(want)
        pairs = args.pairs or (3 if want >= CACHE_FROM else 7)
        with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
            env = dict(os.environ, XDG_CACHE_HOME=os.path.join(tmp, "cache"))
            work = os.path.join(args.cache, f"{case}-{want}") if want >= CACHE_FROM \
                else os.path.join(tmp, "target")
            core, lz4 = capture(case, want, work)
            only = [w for w in args.only.split(",") if w]
            chosen = [(label, on_lz4, on_core)
                      for (label, on_lz4), (_, on_core) in zip(commands(nsdebug, lz4, tmp),
                                                               commands(nsdebug, core, tmp))
                      if not only or any(w in label for w in only)]
            if any(label != FIRST for label, _, _ in chosen):
                for path in (core, lz4):    # each its own index, for the later commands
                    drop_index(path)
                    timed([nsdebug, path, "-c", "objects"], env)
            for label, on_lz4, on_core in chosen:
                rate = new_page_rate(work)
                t_lz4, t_core, ratio = paired_times(on_lz4, on_core, pairs, 1, env, env,
                                                    *before_runs(args, lz4, core))
                rows.append([f"{case} {want:,}", label, f"{t_core:.2f}", f"{t_lz4:.2f}",
                             f"{(ratio - 1) * 100:+.1f}%", pairs, f"{rate:,.0f}"])
                print(" | ".join(map(str, rows[-1])), flush=True)
            for path in (core, lz4):
                drop_index(path)
    print("\nseconds, medians of whole commands run in turn (capture, core, capture...); "
          "capture vs core: the median of the neighbouring runs' ratios; files read "
          + ("from the disk (--cold)" if args.cold else "from the kernel's cache"
             + (", the other file's pages dropped (--alone)" if args.alone else "")
             + (", as many bytes cached on both sides (--even)" if args.even else "")))
    print_table(["case", "command", "core s", "capture s", "capture vs core", "pairs",
                 "new pages MB/s"], rows)


if __name__ == "__main__":
    main()
