"""The vectorized walk against the per-object decoders, on every kind of a real heap:
for objects of every type, the same size (sys.getsizeof less any other object it counts
that has a node of its own, plus the buffers and native blocks it owns) and the same references, by kind, name and target."""

import collections

import pytest
import targets

from nsdebug.model import open_target
from nsdebug.cpython.sizes import SizeOf
from nsdebug.heap.buffers import BYTEARRAY
from nsdebug.heap.referents import Referents

PER_TYPE = 40


@pytest.fixture(scope="module")
def app_heap(tmp_path_factory):
    """An application heap (stdlib, Flask when installed, classes, closures, requests)."""
    build = targets.default_build()
    workdir = str(tmp_path_factory.mktemp("app"))
    return targets.gcore_capture(build, "app_target.py", workdir, "60000",
                                 tool=targets.live_capture_tool(build))


def sampled(g, per_type=PER_TYPE):
    by_type = collections.defaultdict(list)
    for i in range(g.n_synth, g.n):
        t = int(g.type_ix[i])
        if t >= 0 and len(by_type[t]) < per_type:
            by_type[t].append(i)
    return by_type


def check(core):
    s = open_target(core)
    g = s.heap
    rt = s.runtime
    refs, sizes = Referents(rt.objects), SizeOf(rt.objects)
    by_type = sampled(g)
    checked = collections.Counter()
    # Memory outside the struct (buffers, native blocks: buffers.py, nativemem.py) is
    # in the walk's size, not in the per-object reader's (but a bytearray's storage is,
    # as in sys.getsizeof).
    outside = collections.Counter()
    b = g.buffers
    for node, n, kind in zip(b["node"].tolist(), b["bytes"].tolist(), b["kind"].tolist()):
        if kind != BYTEARRAY:
            outside[node] += n
    for t, nodes in by_type.items():
        info = g.types[t]
        for i in nodes:
            addr = int(g.addr[i])
            assert int(g.size[i]) - outside[i] == sizes.own_size(addr, info), \
                (info.qualname, hex(addr))
            want = collections.Counter((k, n, tgt) for k, n, tgt in refs.edges(addr, info)
                                       if tgt)
            have = collections.Counter(
                (k, name, int(g.addr[tgt]) if tgt >= g.n_synth else tgt)
                for k, name, tgt in g.edges(i))
            # Targets the walk could not map (garbage) are dropped; the rest must agree.
            want = collections.Counter({e: c for e, c in want.items() if g.index_of(e[2])})
            assert have == want, (info.qualname, hex(addr), have - want, want - have)
            checked[info.kind] += 1
    return checked


def test_every_kind_of_an_application_heap(app_heap):
    checked = check(app_heap.core)
    for kind in ("function", "code", "type", "cell", "method", "descriptor", "weakref",
                 "set", "frozenset", "module", "property", "classmethod", "staticmethod",
                 "dict", "list", "tuple", "str", "int", "instance", "other"):
        assert checked[kind] > 0, (kind, checked)


def test_every_build(cores, build):
    assert sum(check(cores.heap(build).core).values()) > 500
