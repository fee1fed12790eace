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
