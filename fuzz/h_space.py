"""Harness: corefile/_vector.c (gather, locate_sized, visit, chase), the reads of a core
at many addresses that every heap walk starts from, over a miniature core whose
segment arrays and addresses come from the fuzz input. Beyond memory safety, every
value read is checked against a reference reader in Python (shape.read_oracle) when
the segments are as a core gives them (sorted, disjoint)."""

from __future__ import annotations


import numpy as np

try:
    from shape import Shape, fuzz_main, read_oracle
except ImportError:
    from fuzz.shape import Shape, fuzz_main, read_oracle
from nsdebug.corefile import _vector


def _sane(space):
    _, starts, ends, _ = space
    return all(int(starts[i]) <= int(ends[i]) for i in range(len(starts))) and \
        all(int(ends[i]) <= int(starts[i + 1]) for i in range(len(starts) - 1))


def one(data):
    s = Shape(data)
    space = s.space()
    n = s.int(0, 64)
    which = s.int(0, 3)
    if which == 0:
        width = s.pick([1, 4, 8]) if not s.hostile() else s.int(-3, 16)
        addrs = s.addresses(space, n, align=max(width, 1))
        dtype = {1: np.uint8, 4: np.uint32}.get(width, np.uint64)
        out = np.zeros(max(n - (s.int(0, 2) if s.hostile() else 0), 0), dtype)
        ok = np.zeros(n, np.uint8)
        try:
            good = _vector.gather(*space, addrs, width, out, ok)
        except ValueError:
            return
        if _sane(space):
            for k, a in enumerate(addrs.tolist()):
                want = None if a % width else read_oracle(space, a, width)
                assert bool(ok[k]) == (want is not None), (hex(a), width)
                if want is not None:
                    assert int(out[k]) == int.from_bytes(want, "little"), hex(a)
            assert good == int(ok.sum())
    elif which == 1:
        width = s.int(-1, 64)
        addrs = s.addresses(space, n)
        out = np.zeros(max(n - (s.int(0, 2) if s.hostile() else 0), 0), np.int64)
        try:
            _vector.locate_sized(len(space[0]), *space[1:], addrs, width, out)
        except ValueError:
            return
        for k, a in enumerate(addrs.tolist()):
            assert out[k] == -1 or 0 <= out[k] <= len(space[0]) - width
            if _sane(space):
                assert (out[k] >= 0) == (read_oracle(space, a, width) is not None)
    elif which == 2:
        addrs = s.addresses(space, n, align=16)
        nbits = (len(space[0]) + 127) // 128
        bits = np.zeros(max(nbits - (1 if s.hostile() else 0), 0), np.uint8)
        fresh = np.zeros(n, np.uint8)
        try:
            count = _vector.visit(*space, addrs, bits, fresh)
        except ValueError:
            return
        assert count == int((fresh == 1).sum())
    else:
        head = int(s.addresses(space, 1)[0])
        next_off = s.u64(s.pick([0, 8, 16]))
        mask = s.u64((1 << 64) - 1)
        limit = s.int(-1, 64)
        out = np.zeros(max(limit - (1 if s.hostile() else 0), 0), np.uint64)
        try:
            count = _vector.chase(*space, head, next_off, mask, limit, out)
        except (ValueError, OverflowError):
            return
        assert -limit - 1 <= count <= limit


if __name__ == "__main__":
    fuzz_main(one)
