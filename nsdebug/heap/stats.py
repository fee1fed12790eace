"""The heap by type and by size: the type histogram, the instances of a type, the largest
objects, the objects a given one keeps alive, and str/bytes that contain a text."""

from __future__ import annotations

import numpy as np

from ..errors import NsdebugError
from ..record import Factory, record
from .graph import REACHABLE, TRACKED


@record
class TypeStats:
    type: str
    count: int
    size: int           # own sizes summed
    retained: int       # what all the instances keep alive together
    tracked: int = 0    # instances the GC tracks
    unreachable: int = 0


@record
class HeapTotals:
    total_objects: int
    total_size: int
    reachable_size: int
    unreachable_objects: int
    invalid: int                         # objects whose type pointer is no type
    damaged: list = Factory(list)        # [(address, type, why)] the first 20
    warnings: list = Factory(list)
    heap_source: str = "walk"            # "walk", or "index" when mapped from the index


@record
class ObjectsResult:
    """The heap by type (by_type()): totals, then a row per type."""
    total_objects: int
    total_size: int
    reachable_size: int
    unreachable_objects: int
    sort: str
    rows: list                           # [TypeStats]
    invalid: int = 0
    damaged: list = Factory(list)        # [(address, type, why)] the first few
    warnings: list = Factory(list)
    heap_source: str = "walk"            # "walk", or "index" when mapped from the index


@record
class InstanceRow:
    address: int
    size: int
    retained: int
    reachable: bool
    preview: str


def type_histogram(g, sort="size"):
    """[TypeStats] of a heap graph, largest first by `sort` ("count", "size" or
    "retained"); objects of no valid type count under '<invalid>'."""
    objs = slice(g.n_synth, g.n)
    tix = g.type_ix[objs].astype(np.int64)
    tix = np.where(tix < 0, len(g.types), tix)
    ntypes = len(g.types) + 1
    count = np.bincount(tix, minlength=ntypes)
    size = np.bincount(tix, weights=g.size[objs].astype(np.float64), minlength=ntypes)
    # A type's retained size: what all its instances keep alive together.
    ret = np.zeros(ntypes, dtype=np.uint64)
    ret[:-1] = g.group_retained(g.type_ix, len(g.types))
    tracked = np.bincount(tix, weights=((g.flags[objs] & TRACKED) > 0), minlength=ntypes)
    unreach = np.bincount(tix, weights=((g.flags[objs] & REACHABLE) == 0), minlength=ntypes)
    names = g.type_names()
    key = {"count": count, "size": size, "retained": ret}[sort]
    order = np.argsort(-key, kind="stable")
    return [TypeStats(names[t], int(count[t]), int(size[t]), int(ret[t]), int(tracked[t]),
                      int(unreach[t])) for t in order if count[t]]


def totals(g, histogram=None):
    """HeapTotals of a graph: objects, bytes, what is reachable, what is damaged."""
    objs = slice(g.n_synth, g.n)
    reach = (g.flags[objs] & REACHABLE) > 0
    invalid_name = g.type_names()[-1]
    invalid = next((s.count for s in histogram or () if s.type == invalid_name), None)
    if invalid is None:
        invalid = int(np.count_nonzero(g.type_ix[objs] < 0))
    damaged = [(a, g.type_name(g.index_of(a)) if g.index_of(a) is not None else "?", why)
               for a, why in list(g.problems.items())[:20]]
    return HeapTotals(g.n - g.n_synth, int(g.size.sum()), int(g.size[objs][reach].sum()),
                      int((~reach).sum()), invalid, damaged, list(g.warnings),
                      "index" if g.from_index else "walk")


def by_type(g, sort="size", top=25):
    """ObjectsResult: the heap's totals and the `top` types by `sort`."""
    hist = type_histogram(g, sort)
    t = totals(g, hist)
    return ObjectsResult(t.total_objects, t.total_size, t.reachable_size,
                         t.unreachable_objects, sort, hist[:top], t.invalid, t.damaged,
                         t.warnings, t.heap_source)


def instance_indices(g, type_name):
    """Node indices of the objects of a type, by qualified name, else by bare name."""
    names = g.type_names()
    wanted = [i for i, n in enumerate(names[:-1]) if n == type_name] or \
        [i for i, n in enumerate(names[:-1]) if n.rsplit(".", 1)[-1] == type_name]
    idx = np.nonzero(np.isin(g.type_ix, wanted))[0]
    return idx[idx >= g.n_synth]


def object_rows(g, objects, indices, bounds=None):
    """[InstanceRow] of nodes: address, own and retained size, reachability, a preview
    (ObjectReader.preview within `bounds`)."""
    ret = g.retained()
    out = []
    for i in indices:
        i = int(i)
        addr = int(g.addr[i])
        out.append(InstanceRow(addr, int(g.size[i]), int(ret[i]), g.reachable(i),
                               objects.preview(addr, bounds)))
    return out


def largest(g, top=10):
    """(node indices by own size, by retained size): the `top` largest objects of each."""
    objs = np.arange(g.n_synth, g.n)
    ret = g.retained()
    by_size = objs[np.argsort(-g.size[objs].astype(np.int64), kind="stable")[:top]]
    by_ret = objs[np.argsort(-ret[objs].astype(np.int64), kind="stable")[:top]]
    return by_size, by_ret


def containing(g, objects, pattern, limit=20):
    """(node indices of str and bytes objects whose value contains `pattern`, in node
    order, at most `limit`; whether there were more)."""
    kinds = [i for i, t in enumerate(g.types) if t.kind in ("str", "bytes")]
    idx = np.nonzero(np.isin(g.type_ix, kinds))[0]
    pat_s, pat_b = pattern, pattern.encode("utf-8", "surrogateescape")
    out = []
    for i in idx:
        i = int(i)
        addr = int(g.addr[i])
        try:
            k = g.types[int(g.type_ix[i])].kind
            hit = pat_s in objects.read_str(addr) if k == "str" else \
                pat_b in objects.read_bytes(addr)
        except NsdebugError:
            continue
        if hit:
            out.append(i)
            if len(out) > limit:
                break
    return out[:limit], len(out) > limit
