"""numpy helpers of the heap walk: the visited set, distinct values, grouping by source;
and the one switch of the walk's compiled kernels.

Each helper is the compiled kernel where the C modules were built and the numpy
expression it was written from otherwise; tests pin the two together. The heap's
modules reach its kernels as `vec._kernels` at call time, so that a test sets it to None
here to run the numpy forms everywhere (and corefile.vector._vector likewise for the
reads at many addresses, which the visited set uses too).
"""

from __future__ import annotations

import numpy as np

from ..corefile import vector as _corefile_vector
from .graph import _graphc

try:
    from . import _kernels     # heap/_kernels.c: CPython structures in bulk (setup.py)
except ImportError:            # pragma: no cover - a build without a C compiler
    _kernels = None

U64 = np.uint64


class Bits:
    """A bit array indexed by numpy arrays (1 bit per 16 bytes of core: 1/128 of it)."""

    def __init__(self, n):
        self.bytes = np.zeros((n + 7) // 8, dtype=np.uint8)

    def __getitem__(self, idx):
        return ((self.bytes[idx >> 3] >> (idx & 7).astype(np.uint8)) & 1).astype(np.bool_)

    def __setitem__(self, idx, value):
        np.bitwise_or.at(self.bytes, idx >> 3, (1 << (idx & 7)).astype(np.uint8))


class Visited:
    """One bit per 16 bytes of the core file (objects are 16-aligned): which objects were
    seen, found by the file offset that holds their first byte."""

    def __init__(self, vm):
        self.vm = vm
        self.flags = Bits(len(vm.data) // 16 + 1)
        self.outside = set()            # addresses outside the core's bytes (invalid)

    def _slots(self, addrs):
        off, inside = self.vm.offsets(addrs, 1)
        return (off >> U64(4)).astype(np.int64), inside

    def add_many(self, addrs, empty=np.empty):
        """The distinct addresses of `addrs` not seen before, in the order first seen
        (the order edges lead to them: as local in the core as a sort by address, and
        no sort); marks them seen. Only the unseen ones are deduplicated: most targets
        of a wave are old. `empty` makes the array of new ones (a spill's, under a
        limit)."""
        addrs = np.ascontiguousarray(addrs, dtype=np.uint64)
        _vector = _corefile_vector._vector
        if _vector is not None:
            state = np.empty(len(addrs), dtype=np.uint8)
            _vector.visit(*self.vm.segments(), addrs, self.flags.bytes, state)
            fresh = state == 1
            new = np.compress(fresh, addrs, out=empty(int(np.count_nonzero(fresh)),
                                                      np.uint64))
            del fresh
            outside = addrs[state == 2]
        else:
            slot, inside = self._slots(addrs)
            fresh = inside.copy()
            fresh[inside] = ~self.flags[slot[inside]]
            _, first = np.unique(slot[fresh], return_index=True)
            new = addrs[fresh][np.sort(first)]
            self.flags[slot[fresh]] = True
            outside = addrs[~inside]
        extra = []
        for a in outside.tolist():
            if a not in self.outside:
                self.outside.add(a)
                extra.append(a)
        if extra:
            new = np.concatenate([new, np.array(extra, dtype=np.uint64)])
        return new

    def add(self, addr):
        return len(self.add_many(np.array([addr], dtype=np.uint64))) == 1

    def contains_many(self, addrs):
        addrs = np.asarray(addrs, dtype=np.uint64)
        slot, inside = self._slots(addrs)
        out = np.zeros(len(addrs), dtype=np.bool_)
        out[inside] = self.flags[slot[inside]]
        if self.outside:
            out[~inside] = [int(a) in self.outside for a in addrs[~inside]]
        return out

    def __contains__(self, addr):
        slot, inside = self._slots(np.array([addr], dtype=np.uint64))
        return bool(self.flags[slot[0]]) if inside[0] else addr in self.outside


def extend_per_type(prev, values, invalid, dtype):
    """A per-type array (its last row for type index -1, the invalid type) extended
    with the rows of new types: `prev` (or None) with its last row replaced by `values`
    and a fresh `invalid` row."""
    head = prev[:-1] if prev is not None else np.zeros(0, dtype=dtype)
    return np.concatenate([head, np.array(list(values) + [invalid], dtype=dtype)])


def distinct(values):
    """np.unique(values) for the walk's small integer arrays, by a sort: plain np.unique
    imports numpy.ma on first use (15 ms of every process that walks a heap)."""
    s = np.sort(values)
    return s[np.concatenate(([True], s[1:] != s[:-1]))] if len(s) else s


def distinct_pairs(a, b):
    """np.unique(np.stack([a, b]), axis=1) by a lexical sort: the distinct (a, b) pairs as
    two rows, ordered by a then b (np.unique's axis form imports numpy.ma too)."""
    pairs = np.stack([a, b])
    if not pairs.shape[1]:
        return pairs
    order = np.lexsort((pairs[1], pairs[0]))
    pairs = pairs[:, order]
    new = np.ones(pairs.shape[1], np.bool_)
    new[1:] = (pairs[0, 1:] != pairs[0, :-1]) | (pairs[1, 1:] != pairs[1, :-1])
    return pairs[:, new]


def first_seen(values):
    """(distinct values, inverse): as np.unique(values, return_inverse=True), but in the
    order first seen, by hashing (in C) instead of sorting."""
    values = np.ascontiguousarray(values, dtype=np.uint64)
    if _graphc is None:
        uniq, first, inv = np.unique(values, return_index=True, return_inverse=True)
        order = np.argsort(first, kind="stable")
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order))
        return uniq[order], rank[inv]
    uniq = np.empty(len(values), dtype=np.uint64)
    inv = np.empty(len(values), dtype=np.int32)
    count = _graphc.first_seen(values, uniq, inv)
    return uniq[:count].copy(), inv


def by_source(src, base, counts):
    """Positions of edges grouped by source node (stable), and into `counts` (int32,
    one per node from `base`) the number from each."""
    order = np.empty(len(src), dtype=np.int64)
    if _graphc is not None:
        _graphc.by_source(np.ascontiguousarray(src, dtype=np.int32), base, counts, order)
        return order
    order = np.argsort(src, kind="stable")
    counts[:] = np.bincount(src - base, minlength=len(counts))
    return order


def ramp(counts):
    """0..counts[0]-1, 0..counts[1]-1, ... as one array: the position of each repeated
    item within its own run (np.repeat's companion)."""
    total = int(counts.sum())
    return np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)


def runs_within(counts, step):
    """(lo, hi) ranges over `counts`, in order, each summing to at most `step` (or one
    item alone that is larger): a pass over np.repeat(items, counts) a bounded piece
    at a time."""
    ends = np.cumsum(counts)
    lo, n = 0, len(counts)
    while lo < n:
        before = int(ends[lo - 1]) if lo else 0
        hi = max(lo + 1, int(np.searchsorted(ends, before + step, side="right")))
        yield lo, hi
        lo = hi


def of_types(type_ix, members, ntypes):
    """Whether each node's type index is one of `members` (all in [0, ntypes); -1, no
    type, is in none): one lookup per node through a table of the types, where
    np.isin makes a pass over the nodes per member (4 s of a 48M-object walk)."""
    table = np.zeros(ntypes + 1, np.bool_)        # the last: index -1
    table[np.asarray(members, np.int64)] = True
    return table[type_ix]
