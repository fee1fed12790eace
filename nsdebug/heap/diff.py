"""What changed between two heaps of one process: per type, and where the new objects hang.

An object is the same in both heaps when it has the same address and the same type, and
what keeps it alive (its immediate dominator) is the same too; for immutable kinds, also
the same size. A freed address is soon reused by an object of the same type: a new
record's __dict__ where an evicted cache entry's was is not that dict, and its keeper
(the record, not the entry) tells them apart. Otherwise an object is new (in the later
heap only) or gone (in the earlier only). A new
object hangs where the first new object on its path from a root hangs: a record kept
by a new listener function that was appended to an old list is counted at that list,
`BUS.listeners[*]`. Paths are compared with their varying parts (indices, dict keys)
folded to '*', and a location's growth is what is new there minus what is gone from
there, so a bounded cache that replaces its entries is not growing.
"""

from __future__ import annotations

import os
from collections import defaultdict

import numpy as np

from ..errors import NsdebugError
from ..record import Factory, record
from .paths import hop

NOT_REACHED = "<not reachable from a root>"
# Objects of these kinds never change size: at one address, another size is another object.
IMMUTABLE = frozenset({"str", "bytes", "int", "float", "complex", "tuple", "frozenset",
                       "code"})


@record
class TypeChange:
    type: str
    count_before: int
    count_after: int
    size_before: int
    size_after: int
    retained_before: int
    retained_after: int
    count_change: int = 0
    size_change: int = 0
    retained_change: int = 0


@record
class Location:
    path: str                     # varying indices and keys shown as [*]
    count: int                    # net: new objects hanging here minus gone ones
    size: int
    new: int
    gone: int
    types: list = Factory(list)   # [(type, net count, net size)], biggest growth first


@record
class HeapDiff:
    objects_before: int
    objects_after: int
    size_before: int
    size_after: int
    new_objects: int
    gone_objects: int
    types: list                   # [TypeChange] that changed, most growth first
    locations: list               # [Location] that grew, most growth first
    sort: str = "size"


def compare(old, new, top=25, sort="size"):
    """HeapDiff of two HeapGraphs (old, then new) of one process."""
    names = _NameTable()
    a, b = _Side(old, names), _Side(new, names)
    n = len(names.names)
    types = _type_changes(a, b, names, n)
    key = {"count": lambda t: (t.count_change, t.size_change),
           "size": lambda t: (t.size_change, t.count_change),
           "retained": lambda t: (t.retained_change, t.size_change)}[sort]
    types.sort(key=lambda t: (key(t), t.type), reverse=True)
    fresh_b, fresh_a = _fresh(b, a), _fresh(a, b)
    locations = _locations(a, fresh_a, b, fresh_b, names)
    return HeapDiff(a.count, b.count, a.total, b.total, int(fresh_b.sum()), int(fresh_a.sum()),
                    types[:top], locations[:top], sort)


@record
class DiffResult:
    old: str                    # the cores' paths
    new: str
    diff: object                # HeapDiff
    warnings: list = Factory(list)


def diff_cores(target, other_path, top=25, sort="size", newer=False):
    """DiffResult of the target's heap and that of another core of the same process
    (`other_path`, opened like the target): the other is the earlier one unless
    `newer`."""
    other = target.open_like(other_path)
    old, new = (target, other) if newer else (other, target)
    result, warnings = diff_targets(old, new, top, sort)
    return DiffResult(old.process.path, new.process.path, result, warnings)


def diff_targets(old, new, top=25, sort="size"):
    """(HeapDiff, warnings) of two Targets, old then new: their heaps compared, once it
    is known that they are cores of one program (NsdebugError otherwise); a warning when
    they are of different processes (objects at one address are then not the same)."""
    ea, eb = old.process.executable_path, new.process.executable_path
    if ea and eb and os.path.basename(ea) != os.path.basename(eb):
        raise NsdebugError(f"the cores are of different programs ({ea} and {eb})")
    warnings = []
    pa, pb = old.process.pid, new.process.pid
    if pa and pb and pa != pb:
        warnings.append(f"the cores are of different processes (pid {pa} and {pb}): objects "
                        f"at one address are not the same object, so new and gone are by "
                        f"chance")
    return compare(old.heap, new.heap, top, sort), warnings


class _NameTable:
    """Type names of both heaps, one id each."""

    def __init__(self):
        self.ids, self.names = {}, []

    def id_of(self, name):
        i = self.ids.get(name)
        if i is None:
            i = self.ids[name] = len(self.names)
            self.names.append(name)
        return i


class _Side:
    """One heap's objects as (address, type-name id), with per-name figures."""

    def __init__(self, g, names):
        self.g = g
        local = np.array([names.id_of(t) for t in g.type_names()], dtype=np.int32)
        tix = g.type_ix.astype(np.int64)
        self.name_id = local[np.where(tix < 0, len(local) - 1, tix)]
        self.name_id[:g.n_synth] = -1
        self.objs = np.arange(g.n_synth, g.n)
        fixed = np.array([t.kind in IMMUTABLE for t in g.types] + [False])
        self.fixed_size = fixed[np.where(tix < 0, len(fixed) - 1, tix)]
        self.count = len(self.objs)
        self.total = int(g.size[self.objs].sum())

    def per_name(self, n):
        ids = self.name_id[self.objs]
        count = np.bincount(ids, minlength=n)
        size = np.bincount(ids, weights=self.g.size[self.objs].astype(np.float64), minlength=n)
        retained = self.g.group_retained(self.name_id, n)
        return count, size, retained


def _type_changes(a, b, names, n):
    ca, sa, ra = a.per_name(n)
    cb, sb, rb = b.per_name(n)
    out = []
    for i in np.nonzero((ca != cb) | (sa != sb))[0].tolist():
        t = TypeChange(names.names[i], int(ca[i]), int(cb[i]), int(sa[i]), int(sb[i]),
                       int(ra[i]), int(rb[i]))
        t.count_change = t.count_after - t.count_before
        t.size_change = t.size_after - t.size_before
        t.retained_change = t.retained_after - t.retained_before
        out.append(t)
    return out


def _fresh(side, other):
    """Mask over side's nodes: objects the other heap does not have (see the top)."""
    g, o = side.g, other.g
    sorted_addr, order = o.by_address()
    objs = side.objs
    fresh = np.zeros(g.n, dtype=bool)
    if not len(sorted_addr):
        fresh[objs] = True
        return fresh
    pos = np.minimum(np.searchsorted(sorted_addr, g.addr[objs]), len(sorted_addr) - 1)
    match = order[pos].astype(np.int64)
    hit = (sorted_addr[pos] == g.addr[objs]) & (other.name_id[match] == side.name_id[objs])
    hit &= ~side.fixed_size[objs] | (o.size[match] == g.size[objs])
    hit &= _same_keeper(side, objs, other, match)
    fresh[objs] = ~hit
    return fresh


def _same_keeper(side, objs, other, match):
    """Whether each object's immediate dominator is the same in both heaps: the same
    address and type, or a root in both (which root does not matter: the roots'
    synthetic nodes are not objects of the process)."""
    da = side.g.dominators()[objs].astype(np.int64)
    db = other.g.dominators()[match].astype(np.int64)
    root_a, root_b = da < side.g.n_synth, db < other.g.n_synth
    both = ~root_a & ~root_b
    same = root_a & root_b
    ia, ib = da[both], db[both]
    same[both] = ((side.g.addr[ia] == other.g.addr[ib]) &
                  (side.name_id[ia] == other.name_id[ib]))
    return same


def _top_fresh(g, fresh):
    """Per fresh node, the first fresh node on its path from the root (itself when its
    parent is not fresh); pointer jumping, so a long chain of new nodes costs log steps."""
    parent_edge = g.parents()
    has = parent_edge >= 0
    pnode = np.full(g.n, -1, dtype=np.int64)
    pnode[has] = np.searchsorted(g.edge_start, parent_edge[has], side="right") - 1
    up = np.arange(g.n, dtype=np.int64)
    step = fresh & (pnode >= 0)
    step[step] = fresh[pnode[step]]
    up[step] = pnode[step]
    while True:
        nxt = up[up]
        if np.array_equal(nxt, up):
            return up
        up = nxt


class _PathParts:
    """Path parts (text, folded text) per node along the BFS tree, memoized, so the many
    objects under one container spell its path once."""

    def __init__(self, g):
        self.g = g
        self.parent = g.parents()
        self.memo = {0: ((), False)}

    def of(self, v):
        chain = []
        while v not in self.memo:
            e = int(self.parent[v])
            if e < 0:
                return None
            chain.append((v, e))
            v = self.g.edge_source(e)
        parts, attr = self.memo[v]
        for node, e in reversed(chain):
            text, folded, attr = hop(self.g, e, attr)
            if text:
                parts = parts + ((text, folded),)
            self.memo[node] = (parts, attr)
        return parts


class _Group:
    """New and gone objects under one folded path."""

    def __init__(self, folded, parts):
        self.folded = folded                  # per part: its text with '*' for what varies
        self.shown = [t for t, _ in parts]    # per part: its text while all members agree
        self.new = self.gone = 0
        self.by_type = defaultdict(lambda: [0, 0])

    def agree(self, parts):
        for k, (t, _) in enumerate(parts):
            if self.shown[k] != t:
                self.shown[k] = None

    def text(self):
        if self.folded is None:
            return NOT_REACHED
        words = [t if t is not None else f for t, f in zip(self.shown, self.folded)]
        return "".join(words).strip() or "<root>"


def _locations(a, fresh_a, b, fresh_b, names):
    groups = {}
    _collect(b, fresh_b, 1, names, groups)
    _collect(a, fresh_a, -1, names, groups)
    out = []
    for grp in groups.values():
        count = sum(c for c, _ in grp.by_type.values())
        size = sum(s for _, s in grp.by_type.values())
        if count <= 0 and size <= 0:
            continue
        types = sorted(((names.names[t], c, s) for t, (c, s) in grp.by_type.items() if c or s),
                       key=lambda r: (-r[2], -r[1], r[0]))
        out.append(Location(grp.text(), count, size, grp.new, grp.gone, types))
    out.sort(key=lambda loc: (-loc.size, -loc.count, loc.path))
    return out


def _collect(side, fresh, sign, names, groups):
    """Add side's fresh objects (sign +1 new, -1 gone) to the groups of their location."""
    g = side.g
    nodes = np.nonzero(fresh)[0]
    if not len(nodes):
        return
    tops, inv = np.unique(_top_fresh(g, fresh)[nodes], return_inverse=True)
    paths = _PathParts(g)
    top_group = []
    for t in tops.tolist():
        parts = paths.of(t)
        folded = None if parts is None else tuple(f or text for text, f in parts)
        grp = groups.get(folded)
        if grp is None:
            grp = groups[folded] = _Group(folded, parts or ())
        elif parts is not None:
            grp.agree(parts)
        top_group.append(grp)
    # Sums per (top node, type) in bulk, then into each top node's group.
    n_names = len(names.names)
    combo = inv.astype(np.int64) * n_names + side.name_id[nodes]
    keys, cinv = np.unique(combo, return_inverse=True)
    counts = np.bincount(cinv)
    sizes = np.bincount(cinv, weights=g.size[nodes].astype(np.float64))
    for c, n, sz in zip(keys.tolist(), counts.tolist(), sizes.tolist()):
        k, tid = divmod(c, n_names)
        cell = top_group[k].by_type[tid]
        cell[0] += sign * n
        cell[1] += sign * int(sz)
    for k, n in enumerate(np.bincount(inv).tolist()):
        if sign > 0:
            top_group[k].new += n
        else:
            top_group[k].gone += n
