"""Harness: heap/_graphc.c, the graph passes over arrays a walk made or a heap index file
gave back (an index is a file on disk: its arrays are input). Graphs are built from the
fuzz input in the CSR form the walk keeps (edge_start int64 per node + 1, e_to int32),
valid most of the time, with a bad start, an edge out of range or a short output array
some of the time. Where the pure-Python forms exist (_graph_fallback.py: dominators,
BFS, the BFS finished from seeds, retained sizes, group retained sizes), the results must
be the same; the dominator tree's children are checked against a count by hand."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

try:
    from shape import Shape, fuzz_main
except ImportError:
    from fuzz.shape import Shape, fuzz_main
from nsdebug.heap import _graph_fallback as py
from nsdebug.heap import _graphc


def graph(s):
    n = s.int(1, 48)
    degrees = [s.int(0, 4) for _ in range(n)]
    edge_start = np.zeros(n + 1, np.int64)
    edge_start[1:] = np.cumsum(degrees)
    m = int(edge_start[-1])
    e_to = np.array([s.int(0, n - 1) for _ in range(m)], np.int32)
    if s.hostile():
        if s.flag() and m:
            e_to[s.int(0, m - 1)] = s.pick([-1, n, 1 << 30, -(1 << 31)])
        else:
            edge_start[s.int(0, n)] = s.i64(int(edge_start[s.int(0, n)]) + 1)
    return n, edge_start, e_to, csr_ok(n, edge_start, e_to)


def py_reverse(n, start, to):
    """HeapGraph.reverse() without _graphc: the edges into each node, in edge order."""
    m = int(start[n])
    edges = sorted(range(m), key=lambda e: int(to[e]))
    counts = np.bincount(to[:m], minlength=n)
    rstart = np.zeros(n + 1, np.int64)
    rstart[1:] = np.cumsum(counts)
    return rstart, np.array(edges, np.int32)


def csr_ok(n, start, to):
    """Whether the arrays are a graph (what _graphc's check_csr must let through)."""
    s = start.tolist()
    return s[0] == 0 and s[n] <= len(to) and all(a <= b for a, b in zip(s, s[1:])) and \
        all(0 <= t < n for t in to[:max(s[n], 0)].tolist())


def one(data):
    s = Shape(data)
    n, edge_start, e_to, valid = graph(s)
    which = s.int(0, 7)
    try:
        if which == 0:
            idom, order = np.zeros(n, np.int32), np.zeros(n, np.int32)
            reached = _graphc.dominators(edge_start, e_to, n, 0, idom, order)
            assert valid, "a bad graph was taken"
            want_idom, want_order = np.zeros(n, np.int32), np.zeros(n, np.int32)
            g = SimpleNamespace(n=n, edge_start=edge_start, e_to=e_to,
                                reverse=lambda: py_reverse(n, edge_start, e_to))
            assert py.dominators(g, want_idom, want_order) == reached
            assert (idom == want_idom).all()
            size = np.array([s.int(0, 1000) for _ in range(n)], np.uint64)
            ret, want = np.zeros(n, np.uint64), np.zeros(n, np.uint64)
            _graphc.retained(order[:reached], reached, idom, size, ret)
            py.retained(want_order[:reached], want_idom, size, want)
            assert (ret == want).all()
            ngroups = s.int(1, 4)
            group = np.array([s.int(-1, ngroups - 1) for _ in range(n)], np.int32)
            out, want = np.zeros(ngroups, np.uint64), [0] * ngroups
            _graphc.group_retained(idom, group, ret, ngroups, out)
            want = np.zeros(ngroups, np.uint64)
            py.group_retained(idom, group, ret, want)
            assert (out == want).all()
        elif which == 1:
            phase = np.array([s.int(0, 3) for _ in range(n)], np.uint8)
            phase[0] = 0
            parent, found = np.zeros(n, np.int64), np.zeros(n, np.uint8)
            _graphc.bfs_parents(edge_start, e_to, n, 0, parent, phase, found)
            assert valid, "a bad graph was taken"
            want_p, want_f = np.zeros(n, np.int64), np.zeros(n, np.uint8)
            py.bfs_parents(edge_start, e_to, n, want_p, phase, want_f)
            assert (parent == want_p).all() and (found == want_f).all()
        elif which == 2:
            m = len(e_to)
            start, edges = np.zeros(n + 1, np.int64), np.zeros(m, np.int32)
            _graphc.reverse(e_to, n, start, edges)
            assert valid or (e_to >= 0).all() and (e_to < n).all()
            for t in range(n):
                got = edges[start[t]:start[t + 1]].tolist()
                assert got == [e for e in range(m) if e_to[e] == t]
        elif which == 3:
            addr = np.sort(np.array([s.u64(0x7F0000001000 + 16 * s.int(0, 4096))
                                     for _ in range(n)], np.uint64))
            first = s.int(0, n) if not s.hostile() else s.int(-2, n + 2)
            table = np.full(max(2 * n - (n if s.hostile() else 0), 1), -1, np.int32)
            _graphc.addr_table(addr, first, table)
            targets = np.array([int(addr[s.int(0, n - 1)]) if s.flag() else s.u64(0)
                                for _ in range(s.int(0, 16))], np.uint64)
            out = np.zeros(len(targets), np.int32)
            _graphc.map_addresses(addr, table, s.int(-1, 4), targets, out)
            assert ((out >= -1) & (out < n)).all()
        elif which == 4:
            values = np.array([s.u64(16 * s.int(0, 8)) for _ in range(n)], np.uint64)
            uniq, inv = np.zeros(n, np.uint64), np.zeros(n, np.int32)
            count = _graphc.first_seen(values, uniq, inv)
            assert (uniq[inv] == values).all() and count == len(set(values.tolist()))
            src = np.array([s.int(-1, 8) if s.hostile() else s.int(0, 7)
                            for _ in range(n)], np.int32)
            counts, order = np.zeros(8, np.int32), np.zeros(n, np.int64)
            _graphc.by_source(src, s.int(-2, 2) if s.hostile() else 0, counts, order)
        elif which == 6:
            # A BFS finished from a few seeds over the nodes not yet found.
            found = np.array([s.pick([0, 255]) for _ in range(n)], np.uint8)
            seeds = np.array([s.int(-2, n + 1) if s.hostile() else s.int(0, n - 1)
                              for _ in range(s.int(0, 3))], np.int32)
            phase = s.int(1, 3)
            got = found.copy()
            marked = _graphc.bfs_more(edge_start, e_to, n, seeds, phase, got)
            assert ((seeds >= 0) & (seeds < n)).all(), "a bad seed was taken"
            if valid:
                want = found.copy()
                assert py.bfs_more(edge_start, e_to, n, seeds, phase, want) == marked
                assert (got == want).all()
        elif which == 7:
            # The dominator tree's children: idom -1 or a node, now and then out of range.
            idom = np.array([s.int(-1, n - 1) if not s.hostile() else s.int(-3, n + 2)
                             for _ in range(n)], np.int32)
            start, kids = np.zeros(n + 1, np.int32), np.zeros(n, np.int32)
            count = _graphc.tree_children(idom, start, kids)
            assert ((idom >= -1) & (idom < n)).all(), "a bad dominator was taken"
            for v in range(n):
                want = [k for k in range(n) if idom[k] == v and k != v]
                assert kids[start[v]:start[v + 1]].tolist() == want
            assert count == start[n] == sum(1 for k in range(n) if idom[k] not in (-1, k))
        else:
            cols = s.int(1, 7) if not s.hostile() else s.int(-1, 9)
            rows = np.array([s.i64(s.int(-5, 5)) for _ in range(n)], np.int64)
            text = _graphc.format_rows(rows, cols).decode("ascii")
            vals = rows.tolist()
            want = ",\n".join(",".join(map(str, vals[i:i + cols]))
                              for i in range(0, len(vals), cols))
            assert text == want
            index, strings = {}, []
            texts = [s.pick(["a", "b", "", "é"]) for _ in range(n)]
            out = np.zeros(n - (1 if s.hostile() else 0), np.int64)
            _graphc.intern_all(index, strings, texts, out)
            assert [strings[i] for i in out.tolist()] == texts
    except (ValueError, OverflowError):
        pass


if __name__ == "__main__":
    fuzz_main(one)
