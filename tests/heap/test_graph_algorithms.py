"""The compiled graph loops (_graphc) against the pure-Python ones, on a real heap graph
and on random graphs with cycles, unreachable parts and self-loops; and the installed
package has the compiled module (a silently failed build would make every heap slow)."""

import numpy as np
import pytest

from nsdebug.heap import graph, _graph_fallback


@pytest.mark.unit
def test_the_compiled_module_is_installed():
    assert graph._graphc is not None, "nsdebug.heap._graphc was not built"


class _G:
    """A bare CSR graph with what _graph_fallback needs."""

    def __init__(self, src, dst, n):
        order = np.argsort(src, kind="stable")
        self.n = n
        self.e_to = np.ascontiguousarray(dst[order], dtype=np.int32)
        self.edge_start = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(src, minlength=n), out=self.edge_start[1:])

    def reverse(self):
        order = np.argsort(self.e_to, kind="stable").astype(np.int32)
        start = np.zeros(self.n + 1, dtype=np.int64)
        np.cumsum(np.bincount(self.e_to, minlength=self.n), out=start[1:])
        return start, order


def both(g, size=None):
    c_idom, c_order = np.empty(g.n, np.int32), np.empty(g.n, np.int32)
    k = graph._graphc.dominators(g.edge_start, g.e_to, g.n, 0, c_idom, c_order)
    p_idom, p_order = np.empty(g.n, np.int32), np.empty(g.n, np.int32)
    kp = _graph_fallback.dominators(g, p_idom, p_order)
    assert k == kp
    assert np.array_equal(c_idom, p_idom)
    # The same pass with its working arrays in a caller's buffer (a spilled walk's
    # scratch file), full of garbage first: nothing may be read before it is written.
    s_idom, s_order = np.empty(g.n, np.int32), np.empty(g.n, np.int32)
    scratch = np.full(graph._graphc.dominator_scratch(g.n, len(g.e_to)), 0xA5, np.uint8)
    ks = graph._graphc.dominators(g.edge_start, g.e_to, g.n, 0, s_idom, s_order, scratch)
    assert ks == k
    assert np.array_equal(s_idom, c_idom) and np.array_equal(s_order[:k], c_order[:k])
    size = np.arange(1, g.n + 1, dtype=np.uint64) if size is None else size
    c_ret, p_ret = np.empty(g.n, np.uint64), np.empty(g.n, np.uint64)
    graph._graphc.retained(c_order[:k], k, c_idom, size, c_ret)
    _graph_fallback.retained(p_order[:kp], p_idom, size, p_ret)
    assert np.array_equal(c_ret, p_ret)
    # Phases: a few nodes expanded late (as the C roots and the unreachable are).
    phase = np.zeros(g.n, np.uint8)
    phase[1:4] = [2, 1, 1][:max(0, min(3, g.n - 1))]
    c_par, p_par = np.empty(g.n, np.int64), np.empty(g.n, np.int64)
    c_found, p_found = np.empty(g.n, np.uint8), np.empty(g.n, np.uint8)
    graph._graphc.bfs_parents(g.edge_start, g.e_to, g.n, 0, c_par, phase, c_found)
    _graph_fallback.bfs_parents(g.edge_start, g.e_to, g.n, p_par, phase, p_found)
    assert np.array_equal(c_par, p_par) and np.array_equal(c_found, p_found)
    return c_idom, c_ret


@pytest.mark.unit
@pytest.mark.parametrize("seed", range(6))
def test_random_graphs_agree(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 3000))
    m = int(rng.integers(0, 4 * n))
    src = rng.integers(0, n, m)
    dst = rng.integers(0, n, m)
    both(_G(src, dst, n))


@pytest.mark.unit
def test_a_known_graph():
    # 0 -> 1 -> 2 -> 4, 0 -> 3 -> 4, 4 -> 5, 5 -> 4 (a cycle), 6 unreachable -> 5
    src = np.array([0, 1, 2, 0, 3, 4, 5, 6])
    dst = np.array([1, 2, 4, 3, 4, 5, 4, 5])
    idom, ret = both(_G(src, dst, 7))
    assert idom.tolist() == [0, 0, 1, 0, 0, 4, -1]
    assert ret.tolist()[:6] == [1 + 2 + 3 + 4 + 5 + 6, 2 + 3, 3, 4, 5 + 6, 6]


def test_a_real_heap_graph_agrees(cores):
    import targets
    from nsdebug.model import open_target
    s = open_target(cores.heap(targets.default_build()).core)
    g = s.heap
    idom, ret = both(g, np.ascontiguousarray(g.size, dtype=np.uint64))
    assert np.array_equal(g.dominators(), idom) and np.array_equal(g.retained(), ret)
    assert int(ret[0]) == int(g.size.sum())


@pytest.mark.unit
def test_bad_arrays_are_refused():
    start = np.array([0, 1, 5], dtype=np.int64)       # promises 5 edges, has 1
    to = np.array([1], dtype=np.int32)
    with pytest.raises(ValueError):
        graph._graphc.dominators(start, to, 2, 0, np.empty(2, np.int32), np.empty(2, np.int32))
    with pytest.raises(ValueError):
        graph._graphc.bfs_parents(np.array([0, 1, 1], np.int64), np.array([7], np.int32), 2, 0,
                                  np.empty(2, np.int64), np.zeros(2, np.uint8),
                                  np.empty(2, np.uint8))


@pytest.mark.unit
def test_a_dominator_scratch_too_small_or_misaligned_is_refused():
    g = _G(np.array([0, 1, 2]), np.array([1, 2, 0]), 3)
    need = graph._graphc.dominator_scratch(3, 3)
    assert need >= 6 * 4 * 3 + 4 * 3
    idom, order = np.zeros(3, np.int32), np.zeros(3, np.int32)     # in range: not garbage
    with pytest.raises(ValueError, match="scratch holds"):
        graph._graphc.dominators(g.edge_start, g.e_to, 3, 0, idom, order,
                                 np.empty(need - 1, np.uint8))
    with pytest.raises(ValueError, match="8-aligned"):
        graph._graphc.dominators(g.edge_start, g.e_to, 3, 0, idom, order,
                                 np.empty(need + 8, np.uint8)[1:])
    with pytest.raises(ValueError):
        graph._graphc.dominator_scratch(-1, 0)
    ret, out = np.ones(3, np.uint64), np.empty(1, np.uint64)
    with pytest.raises(ValueError, match="scratch holds"):
        graph._graphc.group_retained(idom, np.zeros(3, np.int32), ret, 1, out,
                                     np.empty(graph._graphc.group_scratch(3) - 1, np.uint8))


_DFS_OUT_OF_MEMORY = r"""
import resource, numpy as np
from nsdebug.heap import _graphc
n = 10_000_000                      # pre: 40 MB, the DFS's stack 40 MB and next 80 MB
start = np.zeros(n + 1, np.int64)
idom, order = np.empty(n, np.int32), np.empty(n, np.int32)
with open("/proc/self/status") as f:
    data = next(int(x.split()[1]) << 10 for x in f if x.startswith("VmData:"))
resource.setrlimit(resource.RLIMIT_DATA, (data + (60 << 20), resource.RLIM_INFINITY))
try:
    _graphc.dominators(start, np.zeros(0, np.int32), n, 0, idom, order)
except MemoryError:
    print("MemoryError")
"""


@pytest.mark.unit
def test_the_dominator_pass_out_of_memory_in_its_dfs_raises_memory_error(tmp_path):
    """Under a data segment limit (`nsdebug triage` sets one) the DFS's stack may not be
    had. It runs without the GIL, so it must not set the Python error itself: that
    crashed the process (a walk of 14.4M objects under `prlimit --data=400MB`, 1 run in
    5). Here its preorder array fits under the limit and its stack does not."""
    import subprocess
    import sys
    import targets
    # Run from outside the checkout, whose uncompiled nsdebug `python -c` would import.
    r = subprocess.run([sys.executable, "-c", _DFS_OUT_OF_MEMORY], capture_output=True,
                       text=True, timeout=120, cwd=tmp_path, env=targets.nsdebug_env())
    assert r.returncode == 0, (r.returncode, r.stderr[-500:])
    assert r.stdout.strip() == "MemoryError"


def test_a_spilled_walk_puts_the_dominator_pass_in_its_scratch_file(cores, tmp_path,
                                                                     monkeypatch):
    """Where a walk's arrays go to its scratch file (spill.py), the C dominator pass's
    working arrays go there too: pages the kernel can write out, not malloc's. The
    dominators are the same as a walk in memory finds."""
    import targets
    from nsdebug.heap import spill
    from nsdebug.model import open_target
    core = cores.heap(targets.default_build()).core
    monkeypatch.setenv("NSDEBUG_SPILL", "never")
    want = open_target(core, use_index=False).heap
    monkeypatch.setenv("NSDEBUG_SPILL", "always")
    g = open_target(core, use_index=False).heap
    assert want._spilled_scratch(64) is None
    nbytes = graph._graphc.dominator_scratch(g.n, len(g.e_to))
    assert nbytes >= 24 * g.n + 4 * len(g.e_to)
    scratch = g._spilled_scratch(nbytes)
    assert scratch is not None and spill.in_file(scratch) and len(scratch) == nbytes
    assert np.array_equal(g.dominators(), want.dominators())
    assert np.array_equal(g.retained(), want.retained())
    assert np.array_equal(g.group_retained(g.type_ix, len(g.types)),
                          want.group_retained(want.type_ix, len(want.types)))


def test_a_spilled_walks_waves_make_their_large_temporaries_in_its_scratch_file(
        cores, tmp_path):
    """Under a limit, a wave's joined targets and the new ones among them (8 bytes a
    target, a data limit's last obstacle at 14.4M objects) are made in the scratch file;
    without one, in memory. The graph is the same."""
    import targets
    from nsdebug.corefile import open_core
    from nsdebug.cpython import attach
    from nsdebug.heap import spill
    from nsdebug.heap.walk import HeapWalker
    core = cores.heap(targets.default_build()).core
    graphs = {}
    for mode in ("always", "never"):
        w = HeapWalker(attach(open_core(core)), spill=spill.Spill(str(tmp_path), mode))
        parts = [np.arange(1, 4, dtype=np.uint64) << np.uint64(4),
                 np.arange(5000, dtype=np.uint64)]
        joined = w._joined(parts)
        assert spill.in_file(joined) == (mode == "always")
        assert np.array_equal(joined, np.concatenate(parts))
        graphs[mode] = w.run()
    a, b = graphs["always"], graphs["never"]
    assert a.n == b.n and np.array_equal(a.addr, b.addr)
    assert np.array_equal(a.e_to, b.e_to)


@pytest.mark.unit
def test_group_retained_is_the_union_of_retained_sets():
    # 0 -> 1 (dict) -> 2 (list) -> 3 (dict) -> 4 (leaf); 0 -> 5 (dict) -> 6 (leaf)
    src = np.array([0, 1, 2, 3, 0, 5])
    dst = np.array([1, 2, 3, 4, 5, 6])
    g = _G(src, dst, 7)
    idom, order = np.empty(7, np.int32), np.empty(7, np.int32)
    k = graph._graphc.dominators(g.edge_start, g.e_to, 7, 0, idom, order)
    size = np.array([0, 10, 20, 30, 40, 50, 60], dtype=np.uint64)
    ret = np.empty(7, np.uint64)
    graph._graphc.retained(order[:k], k, idom, size, ret)
    group = np.array([-1, 0, 1, 0, -1, 0, -1], dtype=np.int32)      # 0: dict, 1: list
    c_out, p_out = np.empty(2, np.uint64), np.empty(2, np.uint64)
    graph._graphc.group_retained(idom, group, ret, 2, c_out)
    _graph_fallback.group_retained(idom, group, ret, p_out)
    # The nested dict (3) is inside the first dict's retained set: counted once.
    assert c_out.tolist() == p_out.tolist() == [10 + 20 + 30 + 40 + 50 + 60, 20 + 30 + 40]
    # Its working arrays in a caller's buffer of garbage: the same.
    s_out = np.empty(2, np.uint64)
    graph._graphc.group_retained(idom, group, ret, 2, s_out,
                                 np.full(graph._graphc.group_scratch(7), 0xA5, np.uint8))
    assert s_out.tolist() == c_out.tolist()


def test_address_table_agrees_with_the_sorted_search(cores, monkeypatch):
    """The C hash table of node addresses against the binary search it replaced, on a
    real heap's addresses: every node's own address, near misses (8 bytes off, the next
    slot), garbage, synthetic-node references (in range and out), and a duplicate."""
    import targets
    from nsdebug.model import open_target
    g = open_target(cores.heap(targets.default_build()).core).heap
    addr = np.concatenate([g.addr, g.addr[g.n_synth:g.n_synth + 3]])     # a duplicate
    rng = np.random.default_rng(5)
    objs = g.addr[g.n_synth:]
    targets_ = np.concatenate([
        objs, objs + np.uint64(8), objs + np.uint64(16),
        rng.integers(0, 1 << 47, 20000, dtype=np.uint64) & ~np.uint64(15),
        np.uint64(1 << 63) | np.arange(g.n_synth + 5, dtype=np.uint64),
        np.array([0, (1 << 64) - 16], dtype=np.uint64)])
    fast = graph.AddressTable(addr, g.n_synth).map(targets_)
    monkeypatch.setattr(graph, "_graphc", None)
    slow = graph.AddressTable(addr, g.n_synth).map(targets_)
    assert np.array_equal(fast, slow)
    assert np.array_equal(fast[:len(objs)], np.arange(g.n_synth, g.n, dtype=np.int32))


@pytest.mark.unit
def test_edges_grouped_by_source_agree(monkeypatch):
    """The walk's per-chunk grouping of edges by source: the C counting sort and the
    numpy fallback give the same stable order and counts."""
    from nsdebug.heap import vec
    rng = np.random.default_rng(11)
    base, n = 1000, 500
    src = rng.integers(base, base + n, 20000).astype(np.int32)
    src[:300] = base + n - 1                    # runs and a node with no edges
    src[src == base + 7] = base + 8
    c_counts = np.empty(n, np.int32)
    c_order = vec.by_source(src, base, c_counts)
    monkeypatch.setattr(vec, "_graphc", None)
    p_counts = np.empty(n, np.int32)
    p_order = vec.by_source(src, base, p_counts)
    assert np.array_equal(c_order, p_order) and np.array_equal(c_counts, p_counts)
    assert c_counts[7] == 0 and c_counts.sum() == len(src)
    assert np.all(np.diff(src[c_order]) >= 0)
    with pytest.raises(ValueError):
        graph._graphc.by_source(np.array([base + n], np.int32), base, np.empty(n, np.int32),
                                np.empty(1, np.int64))


@pytest.mark.unit
def test_bfs_phases_without_parents_agree():
    rng = np.random.default_rng(12)
    n = 3000
    src, dst = rng.integers(0, n, 9000), rng.integers(0, n, 9000)
    g = _G(src, dst, n)
    phase = (rng.integers(0, 3, n) * (rng.random(n) < 0.1)).astype(np.uint8)
    phase[0] = 0
    parent, found = np.empty(n, np.int64), np.empty(n, np.uint8)
    graph._graphc.bfs_parents(g.edge_start, g.e_to, n, 0, parent, phase, found)
    found_only = np.empty(n, np.uint8)
    graph._graphc.bfs_parents(g.edge_start, g.e_to, n, 0, None, phase, found_only)
    assert np.array_equal(found, found_only)
    assert (found == 255).sum() == (parent[1:] < 0).sum()
    bad = phase.copy()
    bad[5] = 255
    with pytest.raises(ValueError):
        graph._graphc.bfs_parents(g.edge_start, g.e_to, n, 0, None, bad, found_only)


@pytest.mark.unit
def test_group_edges_go_into_the_room_or_a_copy_alike():
    """_add_group_edges: into the room left before the edges, or by copying the arrays
    when there is none; the same CSR arrays either way."""
    def make(room):
        g = graph.HeapGraph()
        to = np.array([5, 6, 7, 3, 4, 9, 8], np.int32)
        bufs = tuple(np.concatenate([np.full(room, 99, a.dtype), a]) for a in
                     (to, np.arange(7, dtype=np.uint8), np.arange(10, 17, dtype=np.int32)))
        g._room = (room, bufs)
        g.e_to, g.e_kind, g.e_name = (b[room:] for b in bufs)
        g.edge_start = np.array([0, 2, 3, 3, 5, 6, 7, 7, 7, 7, 7], np.int64)
        g._add_group_edges(2, np.array([8, 9], np.int32), 3, np.array([1, 2], np.int32))
        g._add_group_edges(1, np.array([4], np.int32), 4, np.array([6], np.int32))
        return g
    roomy, copied = make(3), make(0)
    for name in ("e_to", "e_kind", "e_name", "edge_start"):
        assert np.array_equal(getattr(roomy, name), getattr(copied, name)), name
    assert roomy.e_to.tolist() == [5, 6, 7, 4, 8, 9, 3, 4, 9, 8]
    assert roomy.edge_start.tolist() == [0, 2, 4, 6, 8, 9, 10, 10, 10, 10, 10]
    assert roomy._room[0] == 0 and copied._room is None


@pytest.mark.unit
@pytest.mark.parametrize("count", [5000, 200_000])
def test_string_table_in_c_agrees(monkeypatch, count):
    """add_all in C against the Python loop; with many texts (past 65,536) its index is
    a dict made with room for them all: the strings before and after it are found in it
    as in the loop's."""
    from nsdebug.heap.string_table import StringTable
    rng = np.random.default_rng(13)
    words = ["", "a", "é", "\u4e2d", "x" * 300] + [f"w{i}" for i in range(count // 25)]
    texts = [words[i] for i in rng.integers(0, len(words), count)]
    fast = StringTable()
    fast.add("pre")
    got = fast.add_all(texts)
    monkeypatch.setattr(graph, "_graphc", None)
    slow = StringTable()
    slow.add("pre")
    want = slow.add_all(texts)
    assert np.array_equal(got, want) and fast.strings == slow.strings
    assert [fast.strings[i] for i in got] == texts
    assert fast.index == slow.index and len(fast.index) == len(fast.strings)
    assert fast.add("pre") == 1 and fast.add(texts[-1]) == got[-1]
    assert fast.add("after") == len(slow.strings)
    assert fast.add_all(["after", "pre"]).tolist() == [len(slow.strings), 1]
    with pytest.raises(TypeError):
        fast.add_all([["not", "hashable"]])
    with pytest.raises(TypeError):
        fast.add_all(texts + [["not", "hashable"]])


def test_str_texts_in_c_agree(cores, monkeypatch):
    """Text of every str of a real heap, sliced from the core in C and in Python."""
    import targets
    from nsdebug.model import open_target
    from nsdebug.corefile import vector
    from nsdebug.heap import strtext, vec
    s = open_target(cores.heap(targets.default_build()).core, use_index=False)
    g = s.heap
    vm = vector.VectorMemory(s.process)
    strs = [i for i, t in enumerate(g.types) if t.kind == "str" and not t.is_heap]
    addrs = g.addr[np.isin(g.type_ix, strs)]
    assert len(addrs) > 1000
    fast = strtext.str_texts(vm, s.runtime.layout, addrs, 50)
    monkeypatch.setattr(vec, "_kernels", None)
    slow = strtext.str_texts(vm, s.runtime.layout, addrs, 50)
    assert fast == slow
    assert sum(t is not None for t in fast) > 0.9 * len(addrs)


@pytest.mark.unit
def test_first_seen_agrees_with_its_numpy_form(monkeypatch):
    from nsdebug.heap import vec
    rng = np.random.default_rng(14)
    values = rng.choice(rng.integers(0, 1 << 63, 3000, dtype=np.uint64), 50000)
    values[:3] = [0, (1 << 64) - 1, 0]
    uniq, inv = vec.first_seen(values)
    assert np.array_equal(uniq[inv], values)
    assert list(uniq) == list(dict.fromkeys(values.tolist()))
    monkeypatch.setattr(vec, "_graphc", None)
    uniq2, inv2 = vec.first_seen(values)
    assert np.array_equal(uniq, uniq2) and np.array_equal(inv, inv2)
    assert len(vec.first_seen(np.zeros(0, np.uint64))[0]) == 0


@pytest.mark.unit
@pytest.mark.parametrize("seed", range(4))
def test_a_bfs_finished_from_the_groups_is_a_new_bfs(seed):
    """bfs_more from the late groups, after their edges are added, finds what a whole
    new bfs_parents does (the assembly adds the C roots' edges that way); compiled and
    pure Python agree. Nodes 1-3 are groups as the root's children only (phases 1, 1,
    2), as in a heap graph."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(50, 3000))
    src, dst = rng.integers(0, n, 3 * n), rng.integers(4, n, 3 * n)   # none into 1-3
    src = np.where(np.isin(src, [1, 2, 3]), 0, src)                    # none out of 1-3 yet
    before = _G(np.concatenate([[0, 0, 0], src]), np.concatenate([[1, 2, 3], dst]), n)
    phase = np.zeros(n, np.uint8)
    phase[1:4] = [1, 1, 2]
    found = np.empty(n, np.uint8)
    graph._graphc.bfs_parents(before.edge_start, before.e_to, n, 0, None, phase, found)
    extra = rng.integers(4, n, 40)
    late_src = np.concatenate([src, rng.choice([1, 2, 3], 40)])
    after = _G(np.concatenate([[0, 0, 0], late_src]),
               np.concatenate([[1, 2, 3], dst, extra]), n)
    whole = np.empty(n, np.uint8)
    graph._graphc.bfs_parents(after.edge_start, after.e_to, n, 0, None, phase, whole)
    answers = []
    for kernel in (graph._graphc.bfs_more, _graph_fallback.bfs_more):
        f = found.copy()
        marked = [kernel(after.edge_start, after.e_to, n, np.array(seeds, np.int32), p, f)
                  for seeds, p in (([1, 2], 1), ([3], 2))]
        answers.append((f, marked))
    (c_found, c_marked), (p_found, p_marked) = answers
    assert np.array_equal(c_found, whole) and np.array_equal(p_found, whole)
    assert c_marked == p_marked and sum(c_marked) == int((found == 255).sum() -
                                                         (whole == 255).sum())
    assert sum(c_marked) > 0 or not len(extra)


@pytest.mark.unit
def test_bfs_more_refuses_what_is_out_of_range():
    start, to = np.array([0, 1, 1], np.int64), np.array([1], np.int32)
    found = np.full(2, 255, np.uint8)
    for seeds, s, t in [([5], start, to), ([0], start, np.array([9], np.int32)),
                        ([0], np.array([0, 4, 4], np.int64), to)]:
        with pytest.raises(ValueError):
            graph._graphc.bfs_more(s, t, 2, np.array(seeds, np.int32), 1, found)
    assert graph._graphc.bfs_more(start, to, 2, np.array([0], np.int32), 1, found) == 1
    assert found.tolist() == [255, 1]


@pytest.mark.unit
@pytest.mark.parametrize("seed", range(3))
def test_the_dominator_trees_children_by_the_compiled_sort(seed, monkeypatch):
    """DominatorTree's children from _graphc.tree_children against the numpy path, on
    the dominators of a random graph (unreached nodes and the root's own entry left
    out), and a dominator out of range refused."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 4000))
    g = _G(rng.integers(0, n, 2 * n), rng.integers(0, n, 2 * n), n)
    idom = np.empty(n, np.int32)
    graph._graphc.dominators(g.edge_start, g.e_to, n, 0, idom, np.empty(n, np.int32))
    g.dominators = lambda: idom
    c = graph.DominatorTree(g)
    monkeypatch.setattr(graph, "_graphc", None)
    p = graph.DominatorTree(g)
    assert np.array_equal(c.start, p.start) and np.array_equal(c.kids, p.kids)
    for v in rng.integers(0, n, 50):
        want = [k for k in range(n) if idom[k] == v and k != v]
        assert c.children(int(v)).tolist() == want
    monkeypatch.undo()
    with pytest.raises(ValueError):
        graph._graphc.tree_children(np.array([0, 7], np.int32), np.empty(3, np.int32),
                                    np.empty(2, np.int32))


def test_snapshot_ids_are_distinct_even_when_addresses_32_gib_apart_clash():
    """An object's id is 2*((addr >> 4) mod 2**31): addresses a multiple of 32 GiB apart
    share it, and all but the first take the next free even id; synthetic nodes small
    odd ids; with no clash every id is the address's own."""
    g = graph.HeapGraph()
    g.n_synth = 2
    base = 0x7F0000001000
    far = base + (1 << 35)
    g.addr = np.array([0, 0, base, far, base + 16, far + (1 << 35)], np.uint64)
    ids = g.snapshot_ids().tolist()
    own = ((base >> 4) & 0x7FFFFFFF) << 1
    assert ids[:2] == [1, 3]
    assert ids[2] == own and ids[4] == own + 2
    assert len(set(ids)) == len(ids) and all(i % 2 == 0 for i in ids[2:])
    assert sorted(ids[3:4] + ids[5:]) == [own + 4, own + 6]
    plain = graph.HeapGraph()
    plain.n_synth = 1
    plain.addr = np.array([0, base, base + 32, base + 4096, base + 4104], np.uint64)
    # (an address 8 bytes into its 16 shares its id: the next is taken, still even)
    assert plain.snapshot_ids().tolist() == [1, own, own + 4, own + 512, own + 514]


@pytest.mark.parametrize("order", ["addresses", "not the addresses'", "one piece"])
def test_many_clashing_snapshot_ids_take_the_ids_a_set_of_every_id_gives(monkeypatch, order):
    """Thousands of clashes (a 48M-object heap had 4,972), in chains where the next id is
    held too and at the top of the 32-bit ids (they wrap to 0): each node's id is the
    one the plain way gives (every id in a set, each clash in node order taking the next
    even id the set lacks), which took minutes at 48M nodes. The clashes are found from
    the objects' address order, a bank of 32 GiB at a time; given an order that is not
    the addresses' (an index's, say), by a sort of every id; the ids made a piece of the
    nodes at a time or in one."""
    rng = np.random.default_rng(7)
    granules = np.concatenate([rng.integers(1 << 20, 1 << 30, 600),
                               np.arange(4000, 4040),                  # runs: chains
                               np.arange((1 << 31) - 20, 1 << 31)])    # the top: wraps
    copies = rng.integers(0, 5, len(granules))                         # 32 GiB apart
    addr = np.array([(g << 4) + (k << 35) for g, c in zip(granules.tolist(), copies.tolist())
                     for k in range(c + 1)], np.uint64)
    addr = addr[rng.permutation(len(addr))] + np.uint64(0x10000000000)
    g = graph.HeapGraph()
    g.n_synth = 3
    g.addr = np.concatenate([np.zeros(3, np.uint64), addr])
    by_addr = np.argsort(addr, kind="stable").astype(np.int32) + 3
    banks = graph._ids_by_bank((((g.addr >> np.uint64(4)) & np.uint64(0x7FFFFFFF)) <<
                                np.uint64(1)).astype(np.uint32), g.addr, by_addr, 3)
    assert len(banks) == 5 and all((b[1:] > b[:-1]).all() for b, _ in banks)
    if order == "addresses":
        g._addr_order = by_addr
    elif order == "one piece":
        monkeypatch.setattr(graph, "ID_PIECE", len(g.addr))
    else:
        g._addr_order = by_addr[::-1].copy()
        monkeypatch.setattr(graph, "_shared_ids", _one_sorted_bank(graph._shared_ids))
    ids = g.snapshot_ids().tolist()
    want = (((g.addr >> np.uint64(4)) & np.uint64(0x7FFFFFFF)) << np.uint64(1)).astype(
        np.uint32)
    want[:3] = [1, 3, 5]
    uniq, first = np.unique(want, return_index=True)
    assert len(want) - len(uniq) > 1000                 # clashes by the thousand
    taken = set(uniq.tolist())
    for i in np.setdiff1d(np.arange(len(want)), first).tolist():
        v = int(want[i])
        while v in taken:
            v = (v + 2) & 0xFFFFFFFF
        taken.add(v)
        want[i] = v
    assert ids == want.tolist()
    assert len(set(ids)) == len(ids)


def _one_sorted_bank(shared_ids):
    """_shared_ids, checking that it is given every object's id sorted, as one bank."""
    def check(banks):
        assert len(banks) == 1 and (banks[0][1:] >= banks[0][:-1]).all()
        return shared_ids(banks)
    return check
