"""The heap as compact arrays: nodes, edges (CSR), reverse edges, dominators, retained sizes.

Built once per opened core (Target.heap) and reused by every heap command and
the snapshot export. Nothing here holds a Python object per node. The graph
defines its synthetic nodes (the root and its groups) and its flag bits.
"""

from __future__ import annotations

import numpy as np

from ..freemem import release_free_memory
from ..parallel import Background, halves
from ..record import record
from . import _graph_fallback as _py
from .referents import ELEMENT, INTERNAL, KIND_NAMES
from .spill import Spill, in_file

try:
    from . import _graphc      # compiled at install (setup.py); _graph_fallback otherwise
except ImportError:            # pragma: no cover - a build without a C compiler
    _graphc = None

SYNTH = 1 << 63               # marks an edge target that is a synthetic node index
INVALID_TYPE = -1             # the type index of a node that is no object (or whose type
                              # pointer is not a type)
# Groups of roots whose edges are known only after the walk, and the last resort.
C_GLOBALS, C_STACKS, UNREACHABLE = "(C globals)", "(C stacks)", "(Unreachable)"
# The order in which a BFS from the root expands the groups (paths name Python roots
# before C's; the unreachable are reached last, and only through their group).
GROUP_PHASE = {C_GLOBALS: 1, C_STACKS: 1, UNREACHABLE: 2}
UNREACHABLE_PHASE = 2
# Node flags.
REACHABLE = 1        # reached from the root through Python's roots or C's
TRACKED = 2          # on the GC's lists


MAP_IN_TWO = 1 << 16          # targets from which AddressTable.map uses two CPUs
TRIM_EVERY = 16 << 20        # bytes freed between two release_free_memory() in drain_into
BANK_SHIFT = 35              # objects' snapshot ids repeat every 32 GiB (2**31 * 16 bytes)
ID_PIECE = 1 << 20           # nodes whose snapshot ids are made at a time


def drain_into(chunks, out, fill=None):
    """Copy a list of arrays into `out` one after another (or `fill(chunk, part)`),
    emptying the list as it goes: each chunk is freed once used, and the freed memory
    given back every TRIM_EVERY bytes, so that the peak is the result and a few chunks,
    not the data twice over (glibc keeps freed chunks of a few MiB otherwise).
    Returns `out`."""
    at = freed = 0
    chunks.reverse()
    while chunks:
        chunk = chunks.pop()
        part = out[at:at + len(chunk)]
        if fill is None:
            part[:] = chunk
        else:
            fill(chunk, part)
        at += len(chunk)
        freed += chunk.nbytes
        del chunk
        if freed >= TRIM_EVERY or (freed and not chunks):
            release_free_memory()
            freed = 0
    if at != len(out):
        raise ValueError(f"chunks hold {at} items, not {len(out)}")
    return out


def running_sums(fill):
    """A `fill` for drain_into that puts each chunk's running sums in its part, carried
    on from chunk to chunk (np.cumsum over the chunks as one, in int64), through
    `fill(sums, part)` (Spill.copy: into the scratch file by pwrite, where a cumsum
    written through the mapping faults each page in, zeroed, first: the 48M-object
    walk's edge starts took 2.25 s so, most of it in the kernel)."""
    total = [0]

    def put(chunk, part):
        sums = np.cumsum(chunk, dtype=np.int64)
        if len(sums):
            sums += total[0]
            total[0] = int(sums[-1])
        fill(sums, part)
    return put


class AddressTable:
    """Node index by object address, for many addresses at once: a hash table in C
    (_graphc.addr_table), else a binary search over the sorted addresses. A target with
    the SYNTH bit names synthetic node (target & ~SYNTH) below `n_synth`; -1: no node."""

    def __init__(self, addr, n_synth, empty=np.empty):
        self.addr, self.n_synth = addr, n_synth
        if _graphc is not None:
            nodes = max(len(addr) - n_synth, 0)
            self.table = empty(nodes + nodes // 2 + 16, np.int32)
            self.table[:] = -1
            _graphc.addr_table(addr, n_synth, self.table)
        else:
            self.order = (np.argsort(addr[n_synth:], kind="stable") + n_synth).astype(np.int32)
            self.sorted = addr[self.order]

    def map(self, targets, out=None):
        """Node index per target (into `out`, an int32 array of their length, if given)."""
        targets = np.ascontiguousarray(targets, dtype=np.uint64)
        if out is None:
            out = np.empty(len(targets), dtype=np.int32)
        if _graphc is not None:
            # Hash lookups missing the cache at every target: two CPUs halve the time.
            halves(lambda lo, hi: _graphc.map_addresses(self.addr, self.table, self.n_synth,
                                                        targets[lo:hi], out[lo:hi]),
                   len(targets), MAP_IN_TWO)
            return out
        step = 1 << 20
        for lo in range(0, len(targets), step):
            p = targets[lo:lo + step]
            synth = (p & np.uint64(SYNTH)) != 0
            if len(self.sorted):
                pos = np.minimum(np.searchsorted(self.sorted, p), len(self.sorted) - 1)
                t = np.where(self.sorted[pos] == p, self.order[pos], -1)
            else:
                t = np.full(len(p), -1, dtype=np.int32)
            # A word of garbage with the synthetic bit set names no synthetic node.
            s = p[synth] & np.uint64(SYNTH - 1)
            t[synth] = np.where(s < np.uint64(self.n_synth), s, -1).astype(np.int32)
            out[lo:lo + step] = t
        return out


BUFFER_COLUMNS = {"node": np.int64, "bytes": np.uint64, "kind": np.uint8,
                  "data": np.uint64}


def empty_buffers():
    return {k: np.zeros(0, dt) for k, dt in BUFFER_COLUMNS.items()}


@record
class WalkTables:
    """What a walk hands the graph besides its columns: the names of edges, the types,
    the damaged objects, the keys that name dict entries lazily (and how to read one's
    text), the synthetic nodes, and what the roots' waves and the GC lists found."""
    names: list                 # edge names by index
    types: list                 # TypeInfo by type index
    problems: dict              # address -> why the object is damaged
    key_refs: object            # uint64 array: name -k-1 is the text of key_refs[k]
    key_text: object            # address of a key object -> its text
    synth_names: list
    synth_kinds: list
    warnings: list
    n_synth: int
    n_reachable: int            # nodes the Python roots' waves found (synthetic included)
    group_ix: dict              # group name -> its synthetic node
    tracked: object             # addresses on the GC's lists (uint64 array or array('Q'))
    buffers: dict               # buffers.Buffers.table(): node, bytes, kind, data
    malloc: dict | None         # nativemem's summary of malloc's chunks, or None


# A mapped graph's attributes that are index arrays (attribute: array name).
INDEX_ATTRS = {"addr": "addr", "type_ix": "type_ix", "size": "size", "flags": "flags",
               "edge_start": "edge_start", "e_to": "e_to", "e_kind": "e_kind",
               "e_name": "e_name", "key_refs": "key_refs", "_addr_order": "by_addr_order",
               "_idom": "idom", "_retained": "retained", "buffers": None, "histogram": None}


class DominatorTree:
    """Children lists of the dominator tree, as CSR arrays."""

    def __init__(self, g):
        idom = np.ascontiguousarray(g.dominators(), dtype=np.int32)
        n = len(idom)
        if _graphc is not None:
            # A counting sort in C: 12 bytes a node touched, where the numpy one below
            # makes ~50 in temporaries (at 15M nodes, most of a suspects command).
            self.start = np.empty(n + 1, dtype=np.int32)
            kids = np.empty(n, dtype=np.int32)
            self.kids = kids[:_graphc.tree_children(idom, self.start, kids)]
            return
        from .vec import by_source     # (vec imports this module)
        kids = np.flatnonzero((idom >= 0) & (idom != np.arange(n, dtype=idom.dtype)))
        kids = kids.astype(np.int32)
        counts = np.empty(n, dtype=np.int32)
        self.kids = kids[by_source(idom[kids], 0, counts)]
        self.start = np.zeros(n + 1, dtype=np.int32)
        np.cumsum(counts, out=self.start[1:])

    def children(self, v):
        return self.kids[self.start[v]:self.start[v + 1]]


class HeapGraph:
    """Nodes 0..n_synth-1 are synthetic (root, groups, threads, frames); the rest objects.

    Columns per node: addr, type_ix (into types; INVALID_TYPE for none), size (own,
    as sys.getsizeof), flags (REACHABLE, TRACKED); edges in CSR form: edge_start per
    node, then e_to (node index), e_kind (referents' kinds) and e_name (an index into
    names, a position for ELEMENT edges, or -k-1 for the text of key_refs[k]). The
    reverse edges, BFS tree, dominators and retained sizes are computed when asked and
    kept. Made by assemble() from a walk, or from_index() from the heap index."""

    def __init__(self):
        self.n = self.n_synth = self.n_reachable = 0
        self.names, self.types, self.problems, self.warnings = [], [], {}, []
        self.synth_names, self.synth_kinds, self.group_ix = [], [], {}
        self.key_refs = np.zeros(0, dtype=np.uint64)
        self.key_text = None
        self.addr = self.type_ix = self.size = self.flags = None
        self.edge_start = self.e_to = self.e_kind = self.e_name = None
        self.dropped_edges = 0
        self.from_index = False
        # Memory objects own outside their struct (buffers.py), counted in `size`:
        # per owner its node, the bytes, the kind (buffers.KINDS) and the data address.
        self.buffers = empty_buffers()
        self.malloc = None              # malloc's chunks by who claims them (nativemem)
        # Computed when asked (and cached): reverse edges, the BFS from the root,
        # dominators and their preorder, retained sizes, the address order.
        self._rev = self._parent = self._found = None
        self._idom = self._order = self._retained = None
        self._dominating = None         # the dominator pass under way (parallel.Background)
        self._tree = None
        self._addr_order = self._sorted_addr = None
        self._ids = None
        self._room = None
        self.empty = np.empty           # makes the large arrays (a Spill's, in a walk)
        self.histogram = None           # per-type columns (stats.histogram_columns)

    @classmethod
    def assemble(cls, w, late, addr, type_ix, size, starts, to, kind, name, table=None,
                 room=0, empty=np.empty):
        """The graph of a walk (`w`: its WalkTables). `late` holds the C roots' edges
        {group: (addresses, name ids)}, known only after the walk; reachability is then
        a BFS from the root, and the objects it does not reach hang under (Unreachable). `table`: an
        AddressTable of `addr`, when the walk made one already. `kind` and `name` start
        with `room` unused items, where the group edges go without a copy of the
        arrays (_add_group_edges); `to` holds the rest, as addresses. `empty` makes the
        large arrays (spill.py), now and for what is computed on the graph later."""
        g = cls()
        g.empty = empty
        g.names, g.types, g.problems = w.names, w.types, w.problems
        # Lazily named dict entries: name -k-1 is the text of key_refs[k].
        g.key_refs = w.key_refs
        g.key_text = w.key_text
        g.synth_names, g.synth_kinds = w.synth_names, w.synth_kinds
        g.warnings = list(w.warnings)
        g.buffers, g.malloc = w.buffers, w.malloc
        g.n_synth = w.n_synth
        g.n_reachable = w.n_reachable
        n = len(addr)
        g.n = n
        g.addr, g.type_ix, g.size = addr, type_ix, size
        # Targets: synthetic indices, or addresses mapped to node indices, a chunk at a
        # time (each address chunk is freed once mapped: only int32 targets accumulate).
        if table is None:
            table = AddressTable(addr, w.n_synth)
        map_targets = table.map

        chunks = to if isinstance(to, list) else [to]
        del to
        buffers = (empty(room + sum(len(c) for c in chunks), np.int32), kind, name)
        target, kind, name = (b[room:] for b in buffers)
        unmapped = []

        def map_chunk(chunk, part):
            map_targets(chunk, part)
            unmapped.append(int(np.count_nonzero(part < 0)))
        drain_into(chunks, target, map_chunk)
        g.dropped_edges = sum(unmapped)
        if g.dropped_edges:
            keep = target >= 0
            src = np.repeat(np.arange(n, dtype=np.int32), np.diff(starts))[keep]
            target, kind, name = target[keep], kind[keep], name[keep]
            starts = np.zeros(n + 1, dtype=np.int64)
            np.cumsum(np.bincount(src, minlength=n), out=starts[1:])
            del src, keep
            room, buffers = 0, None
        g._room = (room, buffers)
        del buffers
        g.e_to, g.e_kind, g.e_name = target, kind, name
        g.edge_start = starts
        g.group_ix = dict(w.group_ix)
        # C roots explain what Python's roots do not: an object Python's roots reach
        # keeps only those (a stale stack slot must not shorten its path or take its
        # retained size from its real owner).
        found = g.found_phases()
        python = found == 0
        for group, (addrs, names) in late.items():
            to_ix = map_targets(addrs)
            wanted = (to_ix >= 0) & ~python[np.maximum(to_ix, 0)]
            g._add_group_edges(g.group_ix[group], to_ix[wanted], INTERNAL, names[wanted])
        del python
        g._found = g._found_beyond(found)
        # Reachable: reached from the root through Python's roots or C's. The others
        # (garbage, or held by C memory the walk does not see) hang under (Unreachable).
        reached = g.found_phases() < UNREACHABLE_PHASE
        lost = np.nonzero(~reached)[0]
        lost = lost[lost >= g.n_synth].astype(np.int32)
        if len(lost):
            g._add_group_edges(g.group_ix[UNREACHABLE], lost, ELEMENT,
                               np.arange(len(lost), dtype=np.int32))
        g.flags = np.zeros(n, dtype=np.uint8)
        g.flags[reached] = REACHABLE
        g.n_reachable = int(reached[g.n_synth:].sum()) + g.n_synth
        tracked = np.frombuffer(w.tracked, dtype=np.uint64)
        if len(tracked):
            t = map_targets(tracked[(tracked & np.uint64(SYNTH)) == 0])
            g.flags[t[t >= g.n_synth]] |= TRACKED
        # Memory for what comes next (dominators): the address order, its sorted copy
        # of the addresses and the BFS tree are made when asked, not kept.
        g._parent = g._found = g._room = None
        return g

    @classmethod
    def from_index(cls, meta, a, refs):
        """A graph mapped from a heap index (index.py); `refs` names dict entries."""
        from ..cpython.objects import TypeInfo
        from .index import TYPE_FIELDS
        g = cls()
        g.n, g.n_synth, g.n_reachable = meta["n"], meta["n_synth"], meta["n_reachable"]
        g.dropped_edges = meta["dropped_edges"]
        g.names = meta["names"]
        g.types = [TypeInfo(**dict(zip(TYPE_FIELDS, row))) for row in meta["types"]]
        g.problems = {int(addr): why for addr, why in meta["problems"]}
        g.synth_names, g.synth_kinds = meta["synth_names"], meta["synth_kinds"]
        g.group_ix = dict(meta["group_ix"])
        g.warnings = list(meta["warnings"])
        g.key_text = refs.key_name
        g.malloc = meta.get("malloc")
        # The arrays come from the index when first used (__getattr__), each checked then.
        for attr in INDEX_ATTRS:
            delattr(g, attr)
        g._index_arrays = a
        g.from_index = True
        return g

    def __getattr__(self, attr):
        # Only reached for what the instance lacks: a mapped index's arrays, not yet
        # used (from_index deletes them), loaded and checked on first use.
        arrays = self.__dict__.get("_index_arrays")
        if arrays is None or attr not in INDEX_ATTRS:
            raise AttributeError(attr)
        from .stats import HISTOGRAM
        if attr == "buffers":
            value = {k: arrays[f"buf_{k}"] for k in BUFFER_COLUMNS}
        elif attr == "histogram":
            value = {k: arrays[f"hist_{k}"] for k in HISTOGRAM}
        else:
            value = arrays[INDEX_ATTRS[attr]]
        setattr(self, attr, value)
        return value

    def _add_group_edges(self, group, to_ix, kind, names):
        """Edges out of a synthetic group node, put at the end of its edges: into the
        room the assembly left before the edge arrays when it is enough (only the
        edges of the synthetic nodes up to this one move), else by copying them."""
        k = len(to_ix)
        if not k:
            return
        end = int(self.edge_start[group + 1])
        room, buffers = self._room if self._room is not None else (0, None)
        if buffers is not None and room >= k:
            for buf, new in zip(buffers, (to_ix, kind, names)):
                buf[room - k:room - k + end] = buf[room:room + end]   # overlap: numpy copes
                buf[room - k + end:room + end] = new
            self._room = (room - k, buffers)
            self.e_to, self.e_kind, self.e_name = (b[room - k:] for b in buffers)
        else:
            self._room = None                   # the old buffers go with the old arrays
            self.e_to, self.e_kind, self.e_name = (
                np.concatenate([a[:end], np.broadcast_to(np.asarray(new, a.dtype), (k,)),
                                a[end:]])
                for a, new in ((self.e_to, to_ix), (self.e_kind, kind),
                               (self.e_name, names)))
        self.edge_start[group + 1:] += k
        self._parent = self._found = None

    # -- lookups ------------------------------------------------------------------------
    def addr_order(self):
        """Node indices of the objects in address order (int32)."""
        if self._addr_order is None:
            order = np.argsort(self.addr[self.n_synth:], kind="stable")
            order += self.n_synth
            self._addr_order = order.astype(np.int32)
        return self._addr_order

    def by_address(self):
        """(the objects' addresses sorted, their node indices)."""
        if self._sorted_addr is None:
            self._sorted_addr = self.addr[self.addr_order()]
        return self._sorted_addr, self._addr_order

    def index_of(self, addr):
        """Node index of an object address, or None."""
        sorted_addr, order = self.by_address()
        i = int(np.searchsorted(sorted_addr, np.uint64(addr)))
        if i < len(sorted_addr) and int(sorted_addr[i]) == addr:
            return int(order[i])
        return None

    def type_name(self, i):
        t = int(self.type_ix[i])
        if i < self.n_synth:
            return self.synth_names[i]
        return "<invalid>" if t < 0 else self.types[t].qualname

    def is_object(self, i):
        return i >= self.n_synth

    def reachable(self, i):
        return bool(self.flags[i] & REACHABLE)

    def object_indices(self):
        return np.arange(self.n_synth, self.n)

    def type_names(self):
        """Qualified name per type index, and '<invalid>' for index -1 (last)."""
        return [t.qualname for t in self.types] + ["<invalid>"]

    def edges(self, i):
        """[(kind, name, target)] of node i."""
        lo, hi = int(self.edge_start[i]), int(self.edge_start[i + 1])
        return [(int(k), self.edge_label(int(k), int(nm)), int(t)) for k, nm, t in
                zip(self.e_kind[lo:hi], self.e_name[lo:hi], self.e_to[lo:hi])]

    def edge_label(self, kind, name):
        if kind == ELEMENT:
            return name
        if name < 0:
            return self.key_text(int(self.key_refs[-name - 1]))
        return self.names[name]

    @staticmethod
    def kind_name(kind):
        return KIND_NAMES[kind]

    # -- ids for DevTools ------------------------------------------------------------------
    def snapshot_ids(self):
        """32-bit node ids: objects 2*((addr >> 4) mod 2**31), even and stable for a given
        address; synthetic nodes small odd numbers. A rare clash takes the next free id."""
        if self._ids is None:
            # 2*((addr >> 4) mod 2**31) is the address's bits 3..34, its lowest cleared: a
            # piece at a time, one small temporary (three of 8 bytes a node took 1-2.7 s
            # at 48M objects, this 0.1 s).
            ids = np.empty(len(self.addr), np.uint32)
            for lo in range(0, len(ids), ID_PIECE):
                ids[lo:lo + ID_PIECE] = self.addr[lo:lo + ID_PIECE] >> np.uint64(3)
            ids &= np.uint32(0xFFFFFFFE)
            ids[:self.n_synth] = 2 * np.arange(self.n_synth, dtype=np.uint32) + 1
            banks = _ids_by_bank(ids, self.addr, self.addr_order(), self.n_synth)
            clashing = _shared_ids([held for held, _ in banks])
            if len(clashing):
                _give_clashes_free_ids(ids, banks, clashing)
            self._ids = ids
        return self._ids

    def index_of_snapshot_id(self, ident):
        hits = np.nonzero(self.snapshot_ids() == np.uint32(ident & 0xFFFFFFFF))[0]
        return int(hits[0]) if len(hits) else None

    # -- reverse edges --------------------------------------------------------------------
    def reverse(self):
        """(rev_start, rev_edge): for node t, edge ids pointing at it, in edge order."""
        if self._rev is None:
            start = self.empty(self.n + 1, np.int64)
            if _graphc is not None:
                order = self.empty(len(self.e_to), np.int32)
                _graphc.reverse(self.e_to, self.n, start, order)
            else:
                order = np.argsort(self.e_to, kind="stable").astype(np.int32)
                start[0] = 0
                np.cumsum(np.bincount(self.e_to, minlength=self.n), out=start[1:])
            self._rev = (start, order)
        return self._rev

    def edge_source(self, e):
        return int(np.searchsorted(self.edge_start, e, side="right") - 1)

    def referrers(self, i, limit=None):
        """[(source node, kind, name)] of the edges pointing at node i (the first
        `limit` of them, in edge order, when given)."""
        start, order = self.reverse()
        edges = order[start[i]:start[i + 1]]
        if limit is not None:
            edges = edges[:limit]
        # Every edge's source at once: the node whose edge range holds it.
        srcs = np.searchsorted(self.edge_start, edges, side="right") - 1
        kinds = self.e_kind[edges]
        names = self.e_name[edges]
        return [(int(src), int(k), self.edge_label(int(k), int(nm)))
                for src, k, nm in zip(srcs.tolist(), kinds.tolist(), names.tolist())]

    def referrer_count(self, i):
        start, _ = self.reverse()
        return int(start[i + 1] - start[i])

    # -- shortest paths from the root --------------------------------------------------------
    def _phases(self):
        phase = np.zeros(self.n, dtype=np.uint8)
        for group, p in GROUP_PHASE.items():
            if group in self.group_ix:
                phase[self.group_ix[group]] = p
        return phase

    def _bfs(self, parents=True):
        """The BFS from the root: the phase that found each node, and (unless
        `parents` is false, which saves 8 bytes per node) the edge that did."""
        parent = self.empty(self.n, np.int64) if parents or _graphc is None else None
        found = np.empty(self.n, dtype=np.uint8)
        phase = self._phases()
        if _graphc is not None:
            _graphc.bfs_parents(self.edge_start, self.e_to, self.n, 0, parent, phase, found)
        else:
            _py.bfs_parents(self.edge_start, self.e_to, self.n, parent, phase, found)
        self._parent, self._found = (parent if parents else None), found

    def _found_beyond(self, found):
        """found_phases() once the C roots' edges are in, from its answer before they
        were: the Python roots' phase is as it was (the groups added to are expanded
        after it, and only from them), so a BFS from those groups over the nodes not
        yet found finishes it, where a new BFS would go over the whole graph again
        (a second at 50M objects)."""
        for p in sorted({GROUP_PHASE[grp] for grp in self.group_ix if grp in GROUP_PHASE}):
            seeds = np.array([ix for grp, ix in self.group_ix.items()
                              if GROUP_PHASE.get(grp) == p], dtype=np.int32)
            if _graphc is not None:
                _graphc.bfs_more(self.edge_start, self.e_to, self.n, seeds, p, found)
            else:
                _py.bfs_more(self.edge_start, self.e_to, self.n, seeds, p, found)
        return found

    def parents(self):
        """BFS tree from node 0: parent edge id per node (-1 for none). Python's roots
        are expanded first, then C's, then the unreachable: a path names a global or a
        local before a C address."""
        if self._parent is None:
            self._bfs()
        return self._parent

    def found_phases(self):
        """Per node, the phase of the BFS that reached it (0 Python roots, 1 C roots,
        2 only through (Unreachable), 255 never)."""
        if self._found is None:
            self._bfs(parents=False)
        return self._found

    def path_edges(self, i):
        """Edge ids from the root to node i, or None when not connected."""
        parent = self.parents()
        out = []
        while i != 0:
            e = int(parent[i])
            if e < 0:
                return None
            out.append(e)
            i = self.edge_source(e)
            if len(out) > self.n:
                return None
        out.reverse()
        return out

    # -- dominators and retained sizes ----------------------------------------------------------
    def dominators(self):
        """Immediate dominator per node from node 0 (int32, -1 where not reached)."""
        if self._idom is None:
            if self._dominating is None:
                self.start_dominators()
            self._idom, self._order = self._dominating.result()
            self._dominating = None
        return self._idom

    def start_dominators(self):
        """The dominator pass begun on another CPU (where there is one): the walk's
        native memory attribution runs meanwhile, and dominators() waits for it."""
        if self._idom is not None or self._dominating is not None:
            return
        # (The pure Python pass would hold the GIL: it runs when asked for, not beside.)
        self._dominating = Background(self._dominator_pass, threaded=_graphc is not None)

    def _dominator_pass(self):
        release_free_memory()
        idom = self.empty(self.n, np.int32)
        order = self.empty(self.n, np.int32)
        if _graphc is not None:
            scratch = self._spilled_scratch(_graphc.dominator_scratch(self.n,
                                                                      len(self.e_to)))
            reached = _graphc.dominators(self.edge_start, self.e_to, self.n, 0, idom, order,
                                         scratch)
        else:
            reached = _py.dominators(self, idom, order)
        return idom, order[:reached]

    def _spilled_scratch(self, nbytes):
        """Room for a C pass's working arrays (the dominators': 24 bytes a node and 4 an
        edge) in the walk's scratch file, where its arrays go there now because of a
        limit (spill.py): there the kernel may write them out, where malloc's are
        anonymous memory it can only keep. None otherwise: malloc'd, they are made and
        freed as the pass goes, and faster. (A spill with no limit, a large heap's, keeps
        them so: 14.4M objects peaked at 325 MiB instead of 491 with them in the file,
        but took 7% longer.)"""
        spill = getattr(self.empty, "__self__", None)
        if not isinstance(spill, Spill) or not spill.for_a_limit:
            return None
        scratch = self.empty(nbytes, np.uint8)
        return scratch if in_file(scratch) else None     # (a full disk: in memory)

    def retained(self):
        """Retained size per node: its own size plus all it dominates."""
        if self._retained is None:
            idom = self.dominators()
            ret = self.empty(self.n, np.uint64)
            size = np.ascontiguousarray(self.size, dtype=np.uint64)
            if _graphc is not None:
                _graphc.retained(self._order, len(self._order), idom, size, ret)
            else:
                _py.retained(self._order, idom, size, ret)
            self._retained = ret
        return self._retained

    def dominator_tree(self):
        """The dominator tree's children lists (DominatorTree), made once."""
        if self._tree is None:
            self._tree = DominatorTree(self)
        return self._tree

    def group_retained(self, group, ngroups):
        """Per group (e.g. per type: group = type index, -1 for none), what its nodes
        keep alive together: the union of their retained sets, never more than the heap
        (nested dicts are not counted once per ancestor)."""
        out = np.zeros(ngroups, dtype=np.uint64)
        group = np.ascontiguousarray(group, dtype=np.int32)
        if _graphc is not None:
            _graphc.group_retained(self.dominators(), group, self.retained(), ngroups, out,
                                   self._spilled_scratch(_graphc.group_scratch(self.n)))
        else:
            _py.group_retained(self.dominators(), group, self.retained(), out)
        return out

    def dominated_by(self, i, limit):
        """The largest nodes whose immediate dominator is i."""
        idom = self.dominators()
        kids = np.nonzero(idom == i)[0]
        kids = kids[kids != i]
        ret = self.retained()
        top = kids[np.argsort(ret[kids])[::-1][:limit]]
        return [int(k) for k in top]


def _ids_by_bank(ids, addr, order, n_synth):
    """The objects' ids (`ids` of the nodes, `addr` their addresses, `order` the objects'
    nodes in address order) as (sorted uint32 ids, their nodes), one for each 32 GiB of
    addresses that holds objects (a bank): within one, address order is id order, so a
    gather replaces the sort of every id (2.8 s at 48M objects). Where the ids of a bank
    do not rise (an order that is not the addresses'), every id sorted, as one."""
    if not len(order):
        return []
    banks, lo = [], 0
    while lo < len(order):
        bank = int(addr[int(order[lo])]) >> BANK_SHIFT
        hi = _first_at_or_above(addr, order, (bank + 1) << BANK_SHIFT, lo)
        if hi <= lo:
            break                       # the order is not the addresses': sorted below
        nodes = order[lo:hi]
        held = ids[nodes]
        if len(held) > 1 and not (held[1:] > held[:-1]).all():
            break
        banks.append((held, nodes))
        lo = hi
    else:
        return banks
    nodes = np.argsort(ids[n_synth:]) + n_synth
    return [(ids[nodes], nodes)]


def _first_at_or_above(addr, order, bound, lo):
    """The first position from `lo` in `order` whose object's address is `bound` or above
    (len(order) if none), by bisection through the order (no array of sorted addresses)."""
    hi = len(order)
    if bound >> 64:
        return hi
    while lo < hi:
        mid = (lo + hi) // 2
        if int(addr[int(order[mid])]) < bound:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _shared_ids(banks):
    """The ids (sorted, uint32) that more than one of `banks` (sorted arrays of distinct
    ids) holds, or that one holds twice."""
    if len(banks) == 1:
        one = banks[0]
        return np.unique(one[1:][one[1:] == one[:-1]])
    shared = [np.zeros(0, np.uint32)]
    for i, small in enumerate(banks):
        for big in banks[i + 1:]:
            if len(big) < len(small):
                small, big = big, small
            if not len(small):
                continue
            k = np.minimum(np.searchsorted(big, small), len(big) - 1)
            shared.append(small[big[k] == small])
    return np.unique(np.concatenate(shared))


def _give_clashes_free_ids(ids, banks, clashing):
    """Node ids (uint32, changed in place) of which `clashing` (sorted) are held by more
    than one node: every node after the first (by node) to hold one takes, in node order,
    the next id of the same parity that no node holds and none took before it. `banks`:
    every object's id and its node, sorted by id (_ids_by_bank). A heap of 48M objects
    whose objects lie in places far more than 32 GiB apart (0x55... and 0x7f...) had
    4,972 clashes: a set of every id (and a Python loop over it) took minutes there; this
    looks in the banks and keeps only the ids given out."""
    at = []
    for held, nodes in banks:                       # the nodes with a clashing id
        lo = np.searchsorted(held, clashing, side="left")
        hi = np.searchsorted(held, clashing, side="right")
        some = hi > lo
        at += [nodes[a:b] for a, b in zip(lo[some].tolist(), hi[some].tolist())]
    at = np.sort(np.concatenate(at))
    held = ids[at]
    by_id = np.argsort(held, kind="stable")         # each id's nodes, in node order
    later = np.ones(len(at), dtype=bool)
    later[0] = False
    later[1:] = held[by_id][1:] == held[by_id][:-1]
    given = set()
    for i in np.sort(at[by_id[later]]).tolist():
        v = int(ids[i])
        while v in given or any(_holds(bank, v) for bank, _ in banks):
            v = (v + 2) & 0xFFFFFFFF
        given.add(v)
        ids[i] = v


def _holds(ordered, v):
    """Whether the sorted uint32 array `ordered` holds v. (v as a uint32: given a
    Python int, searchsorted converts the whole array first, 0.25 s at 48M.)"""
    j = int(np.searchsorted(ordered, np.uint32(v)))
    return j < len(ordered) and int(ordered[j]) == v
