"""Harness: heap/_kernels.c (pool_blocks, entries, dict_tables, str_texts, malloc_chunks),
CPython's structures read in bulk, on object memory whose words are pointers back into
the miniature core most of the time (so a dict's keys pointer leads to a table, a pool's
free list to blocks) and hostile values the rest. The layouts are those nsdebug passes
(trusted: they come from its own tables); everything read through them is not."""

from __future__ import annotations


import numpy as np

try:
    from shape import Shape, fuzz_main
except ImportError:
    from fuzz.shape import Shape, fuzz_main
from nsdebug.heap import _kernels

# dict_layout() of 3.11+ and of 3.8-3.10 (heap/containers.py): -1 where a field is absent.
DICT_LAYOUTS = [
    [32, 40, 0, 24, 16, 32, 8, 9, 10, -1, 32, 24, 0, 8, 16, 0, 8, 1, 1 << 20],
    [32, 40, 0, 32, 24, 40, -1, -1, -1, 8, 40, 24, 8, 16, -1, -1, -1, 0, 1 << 20],
]


def memory(s):
    """A miniature core whose buffer mixes fuzz bytes and pointers into itself."""
    buf, starts, ends, offs = space = s.space()
    words = len(buf) // 8
    for _ in range(s.int(0, min(words, 64))):
        at = s.int(0, max(words - 1, 0)) * 8
        if at + 8 <= len(buf):
            buf[at:at + 8] = np.frombuffer(s.pointer_words(space, 1), np.uint8)
    return space


def arr(values, dtype):
    return np.ascontiguousarray(np.array(values, dtype=object).astype(dtype)
                                if len(values) else np.zeros(0, dtype))


def one(data):
    s = Shape(data)
    space = memory(s)
    n = s.int(0, 32)
    which = s.int(0, 4)
    try:
        if which == 0:
            pool_size = s.pick([4096, 16384]) if not s.hostile() else s.int(-8, 1 << 25)
            overhead = s.pick([48, 32]) if not s.hostile() else s.int(-8, 1 << 20)
            pools = s.addresses(space, n, align=16)
            szidx = arr([s.i64(s.int(0, 63)) for _ in range(n)], np.int64)
            nextoff = arr([s.i64(s.int(0, max(pool_size, 0))) for _ in range(n)], np.int64)
            bits = np.zeros((len(space[0]) + 127) // 128 + (0 if s.flag() else 1), np.uint8)
            probes = arr([s.u64(s.pick([0, 16, 32])) for _ in range(s.int(0, 9))], np.uint64)
            bound = int(np.maximum((nextoff - overhead) // 16 + 1, 0).sum()) if n and \
                overhead < (1 << 20) else 0
            cap = max(0, min(bound, 1 << 16) - (s.int(0, 3) if s.hostile() else 0))
            blocks, bsz = np.zeros(cap, np.uint64), np.zeros(cap, np.int64)
            k = _kernels.pool_blocks(*space, pools, szidx, nextoff, overhead, pool_size,
                                     s.pick([8, 16]), bits, probes, blocks, bsz)
            assert 0 <= k <= cap
        elif which == 1:
            counts = [s.i64(s.int(0, 8)) for _ in range(n)]
            src = arr([s.int(0, 1000) for _ in range(n)], np.int32)
            base = s.addresses(space, n)
            stride = arr([s.i64(s.pick([16, 24])) for _ in range(n)], np.int64)
            koff = arr([s.i64(s.pick([0, 8])) for _ in range(n)], np.int64)
            voff = arr([s.i64(s.pick([8, 16])) for _ in range(n)], np.int64)
            vbase = arr([int(s.addresses(space, 1)[0]) if s.flag() else 0
                         for _ in range(n)], np.uint64)
            counts_a = arr(counts, np.int64)
            total = int(sum(c for c in counts if 0 <= c <= 64))
            total = max(total - (s.int(0, 2) if s.hostile() else 0), 0)
            out = (np.zeros(total, np.int32), np.zeros(total, np.uint64),
                   np.zeros(total, np.uint64))
            k = _kernels.entries(*space, src, base, stride, koff, voff, vbase, counts_a, *out)
            assert 0 <= k <= total
        elif which == 2:
            dicts = s.addresses(space, n)
            basic = arr([s.i64(48) for _ in range(n)], np.int64)
            layout = np.array(s.pick(DICT_LAYOUTS), np.int64)
            m = max(n - (1 if s.hostile() else 0), 0)
            outs = [np.zeros(m, d) for d in (np.uint64, np.int64, np.int64, np.int64,
                                              np.int64, np.uint64, np.uint64, np.uint8)]
            _kernels.dict_tables(*space, dicts, basic, layout, *outs)
            nentries = outs[4]
            assert ((nentries >= 0) & (nentries <= 1 << 20)).all()
        elif which == 3:
            addrs = s.addresses(space, n)
            limit = s.int(-1, 300)
            texts = _kernels.str_texts(*space, addrs, limit, s.pick([32, 16]),
                                       s.pick([16, 8]), s.pick([40, 48]),
                                       s.pick([56, -1]))
            assert len(texts) == n
            assert all(t is None or len(t) <= limit for t in texts)
        else:
            start = int(s.addresses(space, 1, align=16)[0])
            end = s.u64(start + s.int(0, 4096))
            cap = s.int(0, 64)
            a = np.zeros(cap, np.uint64)
            w = np.zeros(max(cap - (1 if s.hostile() else 0), 0), np.uint64)
            k = _kernels.malloc_chunks(*space, start, end, a, w)
            assert 0 <= k <= cap
    except (ValueError, OverflowError):
        pass


if __name__ == "__main__":
    fuzz_main(one)
