"""The heap by type and by size: the type histogram, the instances of a type, the largest
objects, the objects a given one keeps alive, and str/bytes that contain a text."""

from __future__ import annotations

import numpy as np

from ..errors import NsdebugError
from ..record import Factory, record
from .graph import REACHABLE, TRACKED
from .vec import of_types


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


SLICE = 1 << 18          # objects per slice of the histogram's pass
HISTOGRAM = ("count", "size", "retained", "tracked", "unreachable", "reachable_size")


def histogram_columns(g):
    """Per type index, and a last row for objects of no valid type: HISTOGRAM's columns
    (uint64 arrays), computed once per graph; the heap index stores them, so that the
    next command's `objects` reads them instead of every object's."""
    if g.histogram is None:
        ntypes = len(g.types) + 1
        ret = np.zeros(ntypes, dtype=np.uint64)
        # A type's retained size: what all its instances keep alive together.
        ret[:-1] = g.group_retained(g.type_ix, len(g.types))
        cols = {k: np.zeros(ntypes, np.float64) for k in
                ("count", "size", "tracked", "unreachable", "reachable_size")}
        # A slice of the objects at a time: each column's temporaries are 8 bytes an
        # object (a third of the first command's peak at 1M objects, all at once).
        for lo in range(g.n_synth, g.n, SLICE):
            hi = min(lo + SLICE, g.n)
            tix = g.type_ix[lo:hi].astype(np.intp)
            tix[tix < 0] = len(g.types)
            size = g.size[lo:hi].astype(np.float64)
            flags = g.flags[lo:hi]
            reach = (flags & REACHABLE) > 0
            for name, weights in (("count", None), ("size", size),
                                  ("tracked", (flags & TRACKED) > 0),
                                  ("unreachable", ~reach),
                                  ("reachable_size", np.where(reach, size, 0.0))):
                cols[name] += np.bincount(tix, weights=weights, minlength=ntypes)
        cols = {k: np.rint(v).astype(np.uint64) for k, v in cols.items()}
        cols["retained"] = ret
        g.histogram = {k: cols[k] for k in HISTOGRAM}       # (the index's order)
    return g.histogram


def type_histogram(g, sort="size"):
    """[TypeStats] of a heap graph, largest first by `sort` ("count", "size" or
    "retained"); objects of no valid type count under '<invalid>'."""
    h = histogram_columns(g)
    count = h["count"]
    names = g.type_names()
    key = h[sort].astype(np.float64)
    order = np.argsort(-key, kind="stable")
    return [TypeStats(names[t], int(count[t]), int(h["size"][t]), int(h["retained"][t]),
                      int(h["tracked"][t]), int(h["unreachable"][t]))
            for t in order.tolist() if count[t]]


def totals(g):
    """HeapTotals of a graph: objects, bytes, what is reachable, what is damaged (from
    the per-type columns: no pass over the objects where the index has them)."""
    h = histogram_columns(g)
    damaged = [(a, g.type_name(g.index_of(a)) if g.index_of(a) is not None else "?", why)
               for a, why in list(g.problems.items())[:20]]
    return HeapTotals(g.n - g.n_synth, int(h["size"].sum()), int(h["reachable_size"].sum()),
                      int(h["unreachable"].sum()), int(h["count"][-1]), damaged,
                      list(g.warnings), "index" if g.from_index else "walk")


def by_type(g, sort="size", top=25):
    """ObjectsResult: the heap's totals and the `top` types by `sort`."""
    hist = type_histogram(g, sort)
    t = totals(g)
    return ObjectsResult(t.total_objects, t.total_size, t.reachable_size,
                         t.unreachable_objects, sort, hist[:top], t.invalid, t.damaged,
                         t.warnings, t.heap_source)


def instance_indices(g, type_name):
    """Node indices of the objects of a type, by qualified name, else by bare name."""
    names = g.type_names()
    wanted = [i for i, n in enumerate(names[:-1]) if n == type_name] or \
        [i for i, n in enumerate(names[:-1]) if n.rsplit(".", 1)[-1] == type_name]
    idx = np.nonzero(of_types(g.type_ix, wanted, len(g.types)))[0]
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
    idx = np.nonzero(of_types(g.type_ix, kinds, len(g.types)))[0]
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
