#!/usr/bin/env python3
"""Where a capture's whole-core copy is cheaper: a temporary file or anonymous memory.

usage: python benchmarks/core_copy.py [--sizes 128,512,1600,4096] [--runs 4]

Before a heap walk, nsdebug decompresses an .lz4 capture whole, either straight into
anonymous memory (nsdebug/corefile/vector.py memory_copy) or into an unlinked temporary
file it then maps (copy_file). This writes SIZE MiB each way from two threads, a
half each: memcpy into the mapping's pages, or pwrite of 1 MiB pieces into a file of
its own per thread, mapped as one range (as the copy does); then reads a word of every
page through the mapping, as the walk's first reads do, and gives it all back. Printed:
seconds to write, to touch, to give back, in all; and what the rule
(nsdebug.membudget.copy_in_memory) picks for that size on this machine now, with the
room the page cache has before its background dirty limit.
"""

import argparse
import mmap
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import print_table  # noqa: E402

PIECE = 1 << 20


def one(kind, size):
    """(write, touch, give-back seconds) of one copy of `size` bytes into `kind`."""
    piece = os.urandom(PIECE)
    half = size // PIECE // 2 * PIECE
    shares = [(0, half), (half, size)]
    fds = []
    start = time.perf_counter()
    if kind == "memory":
        m = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)

        def write(lo, hi):
            # numpy's copy lets the GIL go, as the copy's C loop does (a memoryview's
            # slice assignment keeps it: the two threads would take turns).
            into, source = np.frombuffer(m, dtype=np.uint8), np.frombuffer(piece, np.uint8)
            for off in range(lo, hi, PIECE):
                n = min(PIECE, hi - off)
                into[off:off + n] = source[:n]
            del into
    else:
        for _ in shares:
            fd, path = tempfile.mkstemp(prefix="core-copy-bench-")
            os.unlink(path)
            fds.append(fd)
        os.ftruncate(fds[0], size)

        def write(lo, hi):
            fd = fds[shares.index((lo, hi))]
            for off in range(lo, hi, PIECE):
                os.pwrite(fd, piece[:min(PIECE, hi - off)], off - lo)
    try:
        with ThreadPoolExecutor(2) as pool:
            for _ in pool.map(lambda share: write(*share), shares):
                pass
        if kind == "file":
            # The second file mapped over the second half of the first, as the copy does.
            from nsdebug.corefile.vector import mapped_copy
            m = mapped_copy(fds[0], [(half, size - half, fds[1])])
        wrote = time.perf_counter()
        words = np.frombuffer(m, dtype=np.uint64)
        int(words[::mmap.PAGESIZE // 8].sum())
        touched = time.perf_counter()
        del words
        m.close()
        for fd in fds:
            os.close(fd)
        fds = []
        freed = time.perf_counter()
    finally:
        for fd in fds:
            os.close(fd)
    return wrote - start, touched - wrote, freed - touched


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="128,512,1600,4096", help="MiB, comma-separated")
    ap.add_argument("--runs", type=int, default=4)
    args = ap.parse_args()
    from nsdebug import membudget
    rows = []
    for mib in (int(x) for x in args.sizes.split(",")):
        size = mib << 20
        room = membudget.dirty_room()
        picks = "memory" if membudget.copy_in_memory(size) else "file"
        # In turn, memory first in every other round: on a VM that hands free memory
        # back to its host, pages not used lately cost several times the others, and
        # the first copy of a size takes them.
        for run in range(args.runs):
            for kind in (("memory", "file") if run % 2 else ("file", "memory")):
                time.sleep(1)           # the previous copy's pages given back
                w, t, f = one(kind, size)
                rows.append([f"{mib:,}", kind, f"{w:.3f}", f"{t:.3f}", f"{f:.3f}",
                             f"{w + t + f:.3f}", picks,
                             f"{room >> 20:,}" if room is not None else "?"])
                print(" ".join(rows[-1]), flush=True)
    print("\nseconds; 'rule picks': membudget.copy_in_memory for that size now; 'dirty "
          "room': MiB the page cache may still take dirty before background writeback")
    print_table(["MiB", "into", "write", "touch", "give back", "total", "rule picks",
                 "dirty room MiB"], rows)


if __name__ == "__main__":
    main()
