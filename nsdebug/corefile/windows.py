"""Bulk reads of an arthur capture a window at a time, with no copy of the whole core.

A heap walk reads nearly every page of the core (99.7% of them at 14.4M objects), so a
capture's walk has it copied whole (vector.VectorMemory). A snapshot made from the heap
index reads far less, each read a few hundred bytes from an address it knows: the
values of strs, the qualified names of functions and code, small ints, dict keys (and
`waste`: values, and the fill of dicts, lists and sets).
WindowedMemory makes those reads a stretch of WINDOW_BYTES of the core at a time, with
only the blocks they touch decompressed, into one of two buffers used again (the next
window decompresses in a thread while the last is read). The 14.4M-object
capture's snapshot: the same time as with the whole copy (farm-bench, 7 pairs: 0.975),
its peak RSS 3.8 GB instead of 5.2 (the copy was 1.6 GB; 5.4 GB at 48M objects).
"""

from __future__ import annotations

import mmap
from contextlib import closing
from itertools import chain

import numpy as np

from .lz4source import lz4_decoder
from .vector import VectorMemory, file_offsets, segment_arrays

# A multiple of any block size arthur writes (16 KiB). Each of the two buffers is new
# memory once, page-faulted as it is first written: with 64 MiB the 1M-object capture's
# snapshot spent 38k faults on them (its core is 134 MB); 16 MiB is as fast at 48M.
WINDOW_BYTES = 16 << 20
# A capture whose core is no larger is copied whole for its scattered reads instead
# (model.scattered_reads): once decompressed, the snapshot's half a dozen passes (strs,
# qualified names, ints, keys) and its scalar reads go to the copy as a plain core's go
# to its file, where each pass of windows decompresses its own blocks again and each
# scalar read goes through a block. The snapshot, capture against capture, farm-bench
# 15 and 11 pairs: the 1M-object core (139 MB) 0.80 s copied, 0.82 s in windows; the
# ast 1.5M (180 MB) 1.49 against 1.55 s; for at most this much more memory. At 14.4M
# objects (1.7 GB) the two took the same time, the windows 1.4 GB less.
WHOLE_UP_TO = 256 << 20
MERGE_BLOCKS = 4        # blocks between two runs a window's reads need, decompressed anyway
NO_SEGMENTS = np.zeros(0, dtype=np.uint64)


class WindowedMemory:
    """per_window(addrs, reach, fn) as VectorMemory has it, over a capture's blocks."""

    def __init__(self, process):
        self._source = process.source
        self.start, self.end, self.off = segment_arrays(process.memory)
        self._bufs = [None, None]   # the windows' two buffers, made on first use

    @classmethod
    def of(cls, process):
        """A WindowedMemory for a capture whose blocks decompress in C, else None (the
        whole core is then read through VectorMemory)."""
        source = process.source
        if source.buffer is not None or not hasattr(source, "decompress_runs") or \
                not lz4_decoder():
            return None
        return cls(process)

    def per_window(self, addrs, reach, fn, put=None):
        """fn(vm, addrs) a window at a time: the window of a read is the stretch of
        WINDOW_BYTES of the core its address falls in, and its bytes run on for `reach`
        more (fn reads no further from each address: past it the window has no bytes and
        the read is invalid). fn is given each window's addresses in the order of `addrs`
        (the objects it makes are then laid out in that order, as their users go through
        them), with a VectorMemory of the window; it gives a list, an array or a tuple of
        arrays per address, put back in the order of `addrs`; or, with `put`, given to
        put(positions in `addrs`, result) as each window's is made (a caller that puts
        them in place itself spares the reordering: at 16M strs, a third of a second).
        Addresses outside the core are given to fn with no bytes."""
        addrs = np.ascontiguousarray(addrs, dtype=np.uint64)
        off, valid = file_offsets(self.start, self.end, self.off, addrs, 1,
                                  self._source.size)
        empty = VectorMemory.over(bytes(8), NO_SEGMENTS, NO_SEGMENTS, NO_SEGMENTS)
        if not len(addrs):
            return empty.per_window(addrs, reach, fn, put)
        bs, size = self._source.block_size, self._source.size
        # Each address's window; those outside the core one past the last. Few arrays
        # as long as `addrs` are made: each is new memory (numpy maps it afresh), and at
        # 16M strs a dozen of them cost more in page faults than the reads.
        outside = -(-size // WINDOW_BYTES)
        keys = _window_keys(off, valid, outside)
        cuts = np.concatenate([[0], np.cumsum(np.bincount(keys, minlength=outside + 1))])
        if bool((keys[1:] < keys[:-1]).any()):
            # A stable sort keeps each window's addresses in their order; by 16-bit keys
            # (cores under 4 TiB) it is a radix sort, one pass.
            order = np.argsort(keys, kind="stable")
        else:
            order = np.arange(len(addrs))
        del keys
        parts = []
        give = put or (lambda positions, made: parts.append((positions, made)))
        lost = order[cuts[outside]:]
        if len(lost):
            give(lost, fn(empty, addrs[lost]))
        plans = []
        for w in np.flatnonzero(np.diff(cuts[:outside + 1])).tolist():
            at = order[cuts[w]:cuts[w + 1]]
            o = off[at].view(np.int64)
            first = w * WINDOW_BYTES // bs
            last = max(first + 1, -(-min(int(o.max()) + reach, size) // bs))
            plans.append((at, first, last, _runs(o, reach, bs, first, last)))
        # Closed here, not when collected: fn's error (its traceback keeps the frames)
        # must not leave a thread writing a buffer the next reads use.
        with closing(self._windows(plans)) as windows:
            for at, vm in windows:
                give(at, fn(vm, addrs[at]))
        return None if put else _in_order(parts, len(addrs))

    def _windows(self, plans):
        """(the plan's first item, VectorMemory of its window) for each of `plans`
        ((item, first block, end block, runs of blocks to decompress)): the next
        window's blocks decompress in a thread of their own (where a second CPU is there)
        while the caller reads the one given, into the other of two buffers. The thread
        makes one C call, the GIL left: all else a window needs is done here (the main
        thread holds the GIL for its reads, and a thread waiting for it once a step was
        slower than the decompression itself)."""
        from ..parallel import Background
        if not plans:
            return
        bufs = [self._buffer(k, max(p[2] - p[1] for p in plans)) for k in range(2)]

        def fill(k):
            _, first, _, runs = plans[k]
            return Background(lambda: self._source.decompress_runs(runs, bufs[k % 2], first))
        pending = fill(0)
        try:
            for k, (positions, first, last, _) in enumerate(plans):
                pending.result()
                pending = fill(k + 1) if k + 1 < len(plans) else None
                yield positions, self._view(bufs[k % 2], first, last)
        finally:
            if pending is not None:     # the caller stopped early: let the thread finish
                try:
                    pending.result()
                except Exception:       # noqa: BLE001 - what stopped the caller is raised
                    pass

    def _buffer(self, which, blocks):
        """Buffer `which` (0 or 1), with room for `blocks` blocks."""
        size = max(blocks * self._source.block_size, WINDOW_BYTES + self._source.block_size)
        buf = self._bufs[which]
        if buf is None or len(buf) < size:
            buf = self._bufs[which] = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE |
                                                mmap.MAP_ANONYMOUS)
        return buf

    def _view(self, buf, first, last):
        """A VectorMemory of the window of blocks [first, last) in `buf`, where its runs
        are decompressed: the segments cut to the window, so that no read reaches past it.
        (The blocks between runs hold what an earlier window left: no read reaches them,
        each staying within its reach.)"""
        bs = self._source.block_size
        lo, hi = first * bs, min(last * bs, self._source.size)
        seg_hi = self.off + (self.end - self.start)
        keep = (self.off < np.uint64(hi)) & (seg_hi > np.uint64(lo))
        cut_lo = np.maximum(self.off[keep], np.uint64(lo))
        cut_hi = np.minimum(seg_hi[keep], np.uint64(hi))
        start = self.start[keep] + (cut_lo - self.off[keep])
        return VectorMemory.over(buf, start, start + (cut_hi - cut_lo),
                                 cut_lo - np.uint64(lo))

    def release(self):
        """Give the windows' buffers back (VectorMemory.release's counterpart)."""
        self._bufs = [None, None]


def _window_keys(off, valid, outside, piece=1 << 20):
    """The window of each file offset, `outside` where not valid: 16-bit keys where
    they fit, made a piece at a time (no temporary as long as `off`)."""
    keys = np.empty(len(off), dtype=np.uint16 if outside < 1 << 16 else np.uint32)
    for i in range(0, len(off), piece):
        k = off[i:i + piece] // np.uint64(WINDOW_BYTES)
        k[~valid[i:i + piece]] = outside
        keys[i:i + piece] = k
    return keys


def _runs(offsets, reach, bs, first, last):
    """The runs [first, end) of the blocks in [first, last) that reads of `reach` bytes at
    `offsets` touch, as rows of an int64 array; runs less than MERGE_BLOCKS apart are
    one."""
    n = last - first
    lo = offsets // bs - first
    hi = np.minimum((offsets + reach - 1) // bs - first, n - 1) + 1
    # A read's blocks [lo, hi): +1 at lo, -1 at hi, summed along: > 0 where one is read.
    touched = np.cumsum(np.bincount(lo, minlength=n + 1) - np.bincount(hi, minlength=n + 1))
    edges = np.flatnonzero(np.diff(np.concatenate([[0], touched[:n] > 0, [0]])))
    starts, ends = edges[0::2], edges[1::2]
    keep = starts[1:] - ends[:-1] > MERGE_BLOCKS
    starts = starts[np.concatenate([[True], keep])]
    ends = ends[np.concatenate([keep, [True]])]
    return np.stack([starts + first, ends + first], axis=1).astype(np.int64)


def _consecutive(parts, n):
    """Whether the parts' positions, ascending in each, are 0..n-1 in turn."""
    at = 0
    for positions, _ in parts:
        if len(positions) and (positions[0] != at or positions[-1] != at + len(positions) - 1):
            return False
        at += len(positions)
    return at == n


def _in_order(parts, n):
    """The results of (positions, result) parts as one, in the order of the positions
    (which cover 0..n-1 once)."""
    first = parts[0][1]
    if isinstance(first, tuple):
        return tuple(_in_order([(p, r[k]) for p, r in parts], n) for k in range(len(first)))
    if _consecutive(parts, n):          # each part the next run of positions: joined
        if isinstance(first, np.ndarray):
            return np.concatenate([r for _, r in parts])
        return list(chain.from_iterable(r for _, r in parts))
    if isinstance(first, np.ndarray):
        out = np.empty(n, dtype=first.dtype)
        for positions, result in parts:
            out[positions] = result
        return out
    out = np.empty(n, dtype=object)
    for positions, result in parts:
        column = np.empty(len(result), dtype=object)
        column[:] = result                  # str objects, not a str array
        out[positions] = column
    return out.tolist()
