"""Which pages of the process were resident, and how many bytes of a range lay on them.

An arthur capture records it: the target's page table at the capture, from
/proc/PID/pagemap (corefile's Process.residency). That is exact, files and shared
memory included. Any other core holds only the pages' bytes: a page that is not all
zeros was touched, so it counts as resident. That estimate is a lower bound (a touched
page of zeros is missed) and counts a page swapped out or dropped since as resident;
it is made for anonymous memory only, where the core holds every page.
"""

from __future__ import annotations

import numpy as np
from arthur.coreformat import PAGE_IN_RAM

PAGE = 4096
# Chunks further apart than this are measured as separate stretches (malloc's heaps
# and its mmapped chunks lie gigabytes apart).
GAP = 1 << 20


class Residency:
    """Resident pages of a core: exact from a capture's record, else estimated from the
    core's bytes (see the module's comment). `how` says which, in words."""

    def __init__(self, process, vector_memory):
        """`vector_memory`: a function giving the core's VectorMemory, called only for
        an estimate: a capture records its pages, and its VectorMemory would be a copy
        of the whole core made for nothing."""
        record = process.residency
        self.exact = record is not None and record[0] == PAGE
        self._vector_memory = vector_memory
        if self.exact:
            rows = record[1]
            self._first = np.array([s // PAGE for s, _ in rows], np.uint64)
            self._count = np.array([len(st) for _, st in rows], np.uint64)
            self._at = np.concatenate([[0], np.cumsum(self._count)]).astype(np.int64)
            self._states = np.frombuffer(b"".join(bytes(st) for _, st in rows), np.uint8) \
                if rows else np.zeros(0, np.uint8)
        self.how = ("pages in RAM as the capture recorded them (/proc/PID/pagemap)"
                    if self.exact else
                    "pages the core holds that are not all zero (a lower bound)")

    def pages(self, first, count):
        """Whether each of `count` pages from page number `first` was resident."""
        out = np.zeros(count, np.bool_)
        if count <= 0:
            return out
        if self.exact:
            k = max(int(np.searchsorted(self._first, np.uint64(first), side="right")) - 1, 0)
            while k < len(self._first) and int(self._first[k]) < first + count:
                lo = max(first, int(self._first[k]))
                hi = min(first + count, int(self._first[k]) + int(self._count[k]))
                if hi > lo:
                    at = int(self._at[k]) + lo - int(self._first[k])
                    out[lo - first:hi - first] = self._states[at:at + hi - lo] == PAGE_IN_RAM
                k += 1
            return out
        data, starts, ends, offs = self._vector_memory().segments()
        buf = np.frombuffer(data, dtype=np.uint8)
        lo_addr, hi_addr = first * PAGE, (first + count) * PAGE
        k = max(int(np.searchsorted(starts, np.uint64(lo_addr), side="right")) - 1, 0)
        while k < len(starts) and int(starts[k]) < hi_addr:
            lo = max(lo_addr, (int(starts[k]) + PAGE - 1) // PAGE * PAGE)   # whole pages
            hi = min(hi_addr, int(ends[k]) // PAGE * PAGE)
            o = int(offs[k]) + lo - int(starts[k])
            if hi > lo and o >= 0 and o + hi - lo <= len(buf):
                for c in range(lo, hi, 1 << 26):                  # 64 MiB at a time
                    m = (min(hi, c + (1 << 26)) - c) // PAGE
                    at = o + c - lo
                    words = buf[at:at + m * PAGE].view(np.uint64).reshape(m, PAGE // 8)
                    p = (c - lo_addr) // PAGE
                    # A page whose first word is not zero was touched: one cache line
                    # read of it; only the others are read whole.
                    hit = words[:, 0] != 0
                    for z in np.array_split(np.nonzero(~hit)[0], max(1, m // 4096)):
                        if len(z):
                            hit[z] = words[z].any(axis=1)
                    out[p:p + m] = hit
            k += 1
        return out

    def bytes_in(self, ranges):
        """Resident bytes of disjoint, page-aligned (start, end) ranges."""
        return sum(int(np.count_nonzero(self.pages(s // PAGE, (e - s) // PAGE))) * PAGE
                   for s, e in ranges if e > s)

    def chunk_bytes(self, starts, sizes):
        """Resident bytes of each of the chunks [start, start + size) (in address order,
        not overlapping): the bytes of each that lie on resident pages."""
        starts = np.asarray(starts, np.int64)
        ends = starts + np.asarray(sizes, np.int64)
        out = np.zeros(len(starts), np.int64)
        if not len(starts):
            return out
        cut = np.nonzero(starts[1:] > ends[:-1] + GAP)[0] + 1
        for a, b in zip(np.concatenate([[0], cut]), np.concatenate([cut, [len(starts)]])):
            s, e = starts[a:b], ends[a:b]
            base = int(s[0]) // PAGE
            n = (int(e.max()) + PAGE - 1) // PAGE - base
            res = self.pages(base, n).astype(np.int64) * PAGE
            before = np.concatenate([[0], np.cumsum(res)])   # resident bytes below page k
            ps, pe = s // PAGE - base, (e - 1) // PAGE - base
            one = ps == pe
            head = np.minimum(e, (ps + base + 1) * PAGE) - s
            tail = e - (pe + base) * PAGE
            whole = before[pe] - before[np.minimum(ps + 1, pe)]
            out[a:b] = np.where(one, (res[ps] > 0) * (e - s),
                                (res[ps] > 0) * head + (res[pe] > 0) * tail + whole)
        return out
