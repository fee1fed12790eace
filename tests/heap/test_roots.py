"""Honest roots: what C code holds (module data, static types and the interpreter's own
state, thread stacks, the malloc'd blocks and module states they point to) is reachable,
so "unreachable" means a leak or garbage, not "held by C"."""

import numpy as np

from nsdebug.model import open_target
from nsdebug.corefile import open_core
from nsdebug.heap.graph import REACHABLE


def graph(core):
    return open_target(core, use_index=False).heap


def test_no_leak_means_almost_nothing_unreachable(cores, build):
    cap = cores.heap(build)
    g = graph(cap.core)
    objects = g.n - g.n_synth
    unreachable = int((g.flags[g.n_synth:] & REACHABLE == 0).sum())
    # The fixture leaks two objects on purpose (and what they hold).
    assert unreachable / objects < 0.005, (unreachable, objects)
    # Whatever gc.get_referents reaches from a module or a type, nsdebug reaches too.
    want = np.array(cap.truth["reachable_from_modules_and_types"], dtype=np.uint64)
    assert len(want) > 10000
    idx = np.array([g.index_of(int(a)) if g.index_of(int(a)) is not None else -1
                    for a in want])
    missing = want[idx < 0]
    assert len(missing) == 0, [hex(int(a)) for a in missing[:10]]
    lost = want[(g.flags[idx] & REACHABLE) == 0]
    assert len(lost) == 0, [(hex(int(a)), g.type_name(g.index_of(int(a)))) for a in lost[:10]]
    # The leaked objects stay unreachable: nothing, C or Python, holds them.
    for key in ("leaked_id", "leaked_bytes_id"):
        assert not g.flags[g.index_of(cap.truth[key])] & REACHABLE


def test_c_roots_are_named_in_paths(cores, build, nsdebug):
    """An object only C holds gets a path through (C globals) or (C stacks)."""
    cap = cores.heap(build)
    g = graph(cap.core)
    cgroups = {g.group_ix["(C globals)"], g.group_ix["(C stacks)"]}
    by_c = [i for i in range(g.n_synth, g.n)
            if g.edge_source(int(g.parents()[i])) in cgroups] if len(g.parents()) else []
    assert by_c, "C code holds some objects in every interpreter"
    r = nsdebug(cap.core, "-c", f"path {int(g.addr[by_c[0]]):#x}")
    assert r.returncode == 0 and r.stdout.startswith("<C "), r.stdout


def test_arena_scan_in_c_finds_what_the_numpy_scan_finds(cores, build, monkeypatch):
    """The pymalloc scan for objects no list or reference leads to: the compiled pass
    (free lists followed and visited blocks dropped in C) against the numpy one."""
    from nsdebug.heap import arenas, vec
    results = []
    scan = arenas.ArenaScan.objects

    def both(self):
        fast = scan(self)
        with monkeypatch.context() as m:
            m.setattr(vec, "_kernels", None)
            slow = scan(self)
        results.append((fast, slow))
        return fast
    monkeypatch.setattr(arenas.ArenaScan, "objects", both)
    cap = cores.heap(build)
    g = graph(cap.core)
    (fast, slow), = results
    assert np.array_equal(np.sort(fast), np.sort(slow))
    assert g.index_of(cap.truth["leaked_bytes_id"]) is not None
    assert cap.truth["leaked_bytes_id"] in fast.tolist()


def test_visited_set_in_c_and_numpy_agree(cores, build, monkeypatch):
    """The walk's seen-set: new addresses in first-seen order, each once, those outside
    the core kept apart, the same from the C pass and the numpy one."""
    from nsdebug.corefile import vector
    from nsdebug.cpython import attach
    from nsdebug.heap import vec
    rt = attach(open_core(cores.heap(build).core))
    vm = vector.VectorMemory(rt.process)
    objs = graph(cores.heap(build).core).addr
    rng = np.random.default_rng(7)
    batches = [rng.choice(objs, 3000) for _ in range(3)]
    batches[1][:5] = [1 << 60, 16, 1 << 60, 32, 48]          # outside the core
    results = []
    for use_c in (True, False):
        with monkeypatch.context() as m:
            if not use_c:
                m.setattr(vector, "_vector", None)
            seen = vec.Visited(vm)
            results.append([seen.add_many(b).tolist() for b in batches])
    assert results[0] == results[1]
    flat = [a for r in results[0] for a in r]
    assert len(flat) == len(set(flat))
    first = list(dict.fromkeys(int(a) for a in batches[0]))
    assert results[0][0] == first
    # The walk looks a wave's targets up a chunk at a time: the new ones, joined, are
    # what one lookup of all of them finds, those in the core in the same order (those
    # outside come after their own chunk's).
    everything = np.concatenate(batches)
    whole = vec.Visited(vm).add_many(everything).tolist()
    outside = {1 << 60, 16, 32, 48}
    assert sorted(flat) == sorted(whole) == sorted(set(everything.tolist()))
    assert [a for a in flat if a not in outside] == [a for a in whole if a not in outside]
    assert [a for a in whole if a not in outside] == \
        [a for a in dict.fromkeys(everything.tolist()) if a not in outside]
