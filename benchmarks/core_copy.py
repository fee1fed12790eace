#!/usr/bin/env python3
"""Where a capture's whole-core copy is cheaper: a temporary file or a memfd.

usage: python benchmarks/core_copy.py [--sizes 128,512,1600,4096] [--runs 4]

Before a heap walk, nsdebug decompresses an .lz4 capture whole into a file with no
name and maps it (nsdebug/corefile/vector.py copy_file). This writes SIZE MiB the same
way (pwrite of 1 MiB pieces from two threads), into an unlinked file in the temporary
directory and into a memfd, then reads a word of every page through a mapping, as the
walk's first reads do. Printed: seconds to write, to touch, in all; and what the rule
(nsdebug.membudget.copy_in_memory) picks for that size on this machine now, with the
room the page cache has before its background dirty limit. Seen here: the memfd's cost
is steady (0.45 s a GB); the file's is not (0.06 s a GB right after another file copy,
0.5-1.8 s a GB otherwise), which is why the kinds take turns.
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
    """(write seconds, touch seconds) of one copy of `size` bytes into `kind`."""
    if kind == "memfd":
        fd = os.memfd_create("core-copy-bench")
    else:
        fd, path = tempfile.mkstemp(prefix="core-copy-bench-")
        os.unlink(path)
    piece = os.urandom(PIECE)
    try:
        os.ftruncate(fd, size)
        start = time.perf_counter()
        with ThreadPoolExecutor(2) as pool:
            for _ in pool.map(lambda off: os.pwrite(fd, piece, off), range(0, size, PIECE)):
                pass
        wrote = time.perf_counter()
        m = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
        words = np.frombuffer(m, dtype=np.uint64)
        int(words[::mmap.PAGESIZE // 8].sum())
        touched = time.perf_counter()
        del words
        m.close()
    finally:
        os.close(fd)
    return wrote - start, touched - wrote


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
        picks = "memfd" if membudget.copy_in_memory(size) else "file"
        # In turn, the memfd first in every other round: on a VM that hands free memory
        # back to its host, pages not used lately cost several times the others, and
        # the first copy of a size takes them.
        for run in range(args.runs):
            for kind in (("memfd", "file") if run % 2 else ("file", "memfd")):
                time.sleep(1)           # the previous copy's pages given back
                w, t = one(kind, size)
                rows.append([f"{mib:,}", kind, f"{w:.3f}", f"{t:.3f}", f"{w + t:.3f}",
                             picks, f"{room >> 20:,}" if room is not None else "?"])
                print(" ".join(rows[-1]), flush=True)
    print("\nseconds; 'rule picks': membudget.copy_in_memory for that size now; 'dirty "
          "room': MiB the page cache may still take dirty before background writeback")
    print_table(["MiB", "into", "write", "touch", "total", "rule picks", "dirty room MiB"],
                rows)


if __name__ == "__main__":
    main()
