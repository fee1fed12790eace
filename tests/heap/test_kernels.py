"""The walk's compiled kernels (heap/_kernels.c: dict_tables, entries, pool_blocks,
str_texts) against the numpy forms they replace, on the heap fixture of every build: the same graph, object
by object and edge by edge."""

import numpy as np

from nsdebug.corefile import open_core


def _walk(core):
    from nsdebug.cpython import attach
    from nsdebug.heap.walk import HeapWalker
    g = HeapWalker(attach(open_core(core))).run()
    return g


def _by_address(g):
    """{address: (type, size, [(kind, label, target address)])} of every object."""
    names = g.type_names()
    out = {}
    for i in range(g.n_synth, g.n):
        lo, hi = int(g.edge_start[i]), int(g.edge_start[i + 1])
        edges = [(int(k), str(g.edge_label(int(k), int(nm))), int(g.addr[t]))
                 for k, nm, t in zip(g.e_kind[lo:hi], g.e_name[lo:hi], g.e_to[lo:hi])]
        out[int(g.addr[i])] = (names[g.type_ix[i]], int(g.size[i]), edges)
    return out


def test_compiled_kernels_give_the_numpy_graph(cores, build, monkeypatch):
    from nsdebug.heap import vec
    core = cores.heap(build).core
    fast = _walk(core)
    monkeypatch.setattr(vec, "_kernels", None)
    slow = _walk(core)
    assert fast.n == slow.n and len(fast.e_to) == len(slow.e_to)
    a, b = _by_address(fast), _by_address(slow)
    assert a.keys() == b.keys()
    differ = [hex(k) for k in a if a[k] != b[k]]
    assert not differ, (len(differ), differ[:5], a[int(differ[0], 16)], b[int(differ[0], 16)])
    dicts = [t for t in range(len(fast.types)) if fast.types[t].kind == "dict"]
    assert np.isin(fast.type_ix, dicts).sum() > 1000


class _Segments:
    """A VectorMemory over one synthetic segment of bytes at `base`."""

    def __init__(self, base, data):
        self.base, self.data = base, np.frombuffer(bytes(data), dtype=np.uint8)

    def segments(self):
        return (self.data, np.array([self.base], np.uint64),
                np.array([self.base + len(self.data)], np.uint64), np.array([0], np.uint64))

    def u64(self, addrs):
        addrs = np.asarray(addrs, dtype=np.uint64)
        off = addrs.astype(np.int64) - self.base
        ok = (off >= 0) & (off + 8 <= len(self.data)) & (addrs % 8 == 0)
        out = np.zeros(len(addrs), np.uint64)
        for k in np.nonzero(ok)[0]:
            out[k] = int.from_bytes(self.data[off[k]:off[k] + 8].tobytes(), "little")
        return out, ok


def test_malloc_chunk_walk_on_hostile_headers(monkeypatch):
    """malloc_chunks (C) and its numpy form agree, and stop, on chunks end to end, a
    size of 0, a size past the end, a size that wraps the address space, and an
    unaligned one; nothing is read outside the segment."""
    import struct
    from nsdebug.heap import mallocheap, vec
    base = 0x10000
    cases = {
        "whole": [0x20 | 1, 0x40 | 1, 0x30 | 1, 0x1000 - 0x90 | 1],
        "zero": [0x20 | 1, 0],
        "past the end": [0x20 | 1, 0x100000 | 1],
        "wraps": [0x20 | 1, 0xfffffffffffffff1],
        "unaligned": [0x20 | 1, 0x28 | 1],
    }
    for name, sizes in cases.items():
        mem = bytearray(0x1000)
        at = 0
        for w in sizes:
            if at + 16 > len(mem):
                break
            struct.pack_into("<QQ", mem, at, 0, w)
            at += max(w & ~7, 32) if w & ~7 < 0x1000 else 32
        vm = _Segments(base, mem)
        fast = mallocheap.walk_chunks(vm, base, base + len(mem))
        monkeypatch.setattr(vec, "_kernels", None)
        slow = mallocheap.walk_chunks(vm, base, base + len(mem))
        monkeypatch.undo()
        assert [a.tolist() for a in fast] == [a.tolist() for a in slow], name
        addrs, words = fast
        assert all(base <= a < base + len(mem) for a in addrs.tolist()), name
        if name == "whole":
            assert len(addrs) == 4 and words[-1] != 0
        else:
            assert words[-1] == 0, name          # the walk says where it stopped


def test_sorting_helpers_match_numpy_unique():
    """vec.distinct and vec.distinct_pairs give np.unique's answers (they exist because
    np.unique's plain and axis forms import numpy.ma, 15 ms a process), and leave numpy.ma
    unimported."""
    import subprocess
    import sys

    from nsdebug.heap.vec import distinct, distinct_pairs
    rng = np.random.default_rng(7)
    for n in (0, 1, 2, 50, 5000):
        a = rng.integers(-4, 6, n).astype(np.int32)
        b = rng.integers(-3, 4, n).astype(np.int64)
        assert np.array_equal(distinct(a), np.unique(a))
        want = np.unique(np.stack([a, b]), axis=1) if n else np.stack([a, b])
        got = distinct_pairs(a, b)
        assert got.dtype == want.dtype and np.array_equal(got, want), n
    probe = ("import sys, numpy as np\nfrom nsdebug.heap.vec import distinct, distinct_pairs\n"
             "distinct(np.arange(9) % 4); distinct_pairs(np.arange(9) % 3, np.arange(9) % 2)\n"
             "print('numpy.ma' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr
