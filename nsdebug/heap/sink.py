"""WaveSink: what the heap walk's decoders see of the walk, and all they may change.

A decoder (containers.py, attributes.py, or the per-object fallback in walk.py)
is handed the objects of one kind in a wave, as arrays, and reports through the
sink: the edges it found (`emit`), the objects it found damaged (`problem`), the
names of edges (`name_id`, `key_names`, `lazy_key_names`), and sizes (`var_size`).
It reads the core through `vm` and the per-type tables (`type_arrays`,
`type_indices`). The sink keeps those tables and the edges for the walk, which
turns them into a HeapGraph.
"""

from __future__ import annotations

import numpy as np

from ..cpython.flags import MAX_OBJECT_SIZE, MAX_USER_ADDRESS
from ..errors import NsdebugError
from .referents import KEY_TEXT_LIMIT
from .string_table import StringTable
from .strtext import str_key_texts
from .vec import U64, extend_per_type, first_seen


class WaveSink:
    """The tables a walk builds (names, types, damaged objects) and the edges of the
    waves decoded so far. `vm` is the core's VectorMemory, `L` the layout, `v` the
    version key; `o`, `refs` and `sizes` the per-object readers (ObjectReader,
    Referents, SizeOf) for what is not vectorized."""

    def __init__(self, vm, rt, refs, sizes):
        self.vm, self.L, self.v = vm, rt.layout, rt.version.key
        self.o, self.refs, self.sizes = rt.objects, refs, sizes
        self._names = StringTable()
        self.names = self._names.strings
        self.types: list = []
        self._type_ix: dict[int, int] = {}
        self.problems: dict[int, str] = {}
        # The edges of the current chunk of nodes: "src" per edge (grouped by source
        # when the chunk ends), the others chunk after chunk.
        self.edges = {"src": [], "tgt": [], "kind": [], "name": []}
        # Dict entries are named lazily by their key object: a negative name -k-1 means
        # "the text of key_refs[k]", read when shown or exported, not during the walk.
        self.key_refs = []
        self.n_key_refs = 0
        self._key_name_ix = {}
        self._type_rows = {}           # type address -> (type index, TypeInfo or why not)
        self._known_types = (None, np.zeros(0, dtype=np.int32))   # see type_indices
        self._tarrays = None
        self._kind_codes, self.kind_names = {}, []
        self._wave_addrs, self._wave_base = None, 0
        self.buffers = None             # the walk's Buffers (buffers.py)

    # -- names ---------------------------------------------------------------------------
    def name_id(self, name):
        """Index of an edge name (or any string) in the names table."""
        return self._names.add(name)

    def key_names(self, keys):
        """Name ids for dict keys, by the key objects' addresses (read now: for the keys
        classes share, a few per class)."""
        uk, inv = np.unique(keys, return_inverse=True)
        ids = np.empty(len(uk), dtype=np.int32)
        cache = self._key_name_ix
        todo = np.array([k not in cache for k in uk.tolist()], dtype=np.bool_)
        if todo.any():
            self._name_str_keys(uk[todo])
        for j, k in enumerate(uk.tolist()):
            ix = cache.get(k)
            if ix is None:
                ix = cache[k] = self.name_id(self.refs.key_name(k))
            ids[j] = ix
        return ids[inv]

    def _name_str_keys(self, keys):
        """Bulk path for the usual key, a str: its text read straight from the mapped core
        (others are left to Referents.key_name)."""
        cache = self._key_name_ix
        for a, text in zip(keys.tolist(), str_key_texts(self.vm, self.L, self.types, keys,
                                                       KEY_TEXT_LIMIT)):
            if text is not None:
                cache[a] = self.name_id(text)

    def lazy_key_names(self, keys):
        """Names (int32, negative) for edges to the values of dict entries with these
        keys: each names its key object, whose text is read only when shown."""
        uk, inv = first_seen(keys)
        self.key_refs.append(uk)
        names = -(self.n_key_refs + inv.astype(np.int64) + 1)
        self.n_key_refs += len(uk)
        return names.astype(np.int32)

    # -- types ---------------------------------------------------------------------------
    def type_index(self, info):
        """The index of a TypeInfo in `types`, added when new."""
        ix = self._type_ix.get(info.address)
        if ix is None:
            ix = self._type_ix[info.address] = len(self.types)
            self.types.append(info)
        return ix

    def type_row(self, taddr):
        """(type index, TypeInfo) of a type pointer, or (-1, why it is no type)."""
        row = self._type_rows.get(taddr)
        if row is None:
            try:
                info = self.o.type_info(taddr)
                row = (self.type_index(info), info)
            except NsdebugError as e:
                row = (-1, getattr(e, "why", str(e)))
            self._type_rows[taddr] = row
        return row

    def why_not_a_type(self, taddr):
        """Why an object's type pointer is no type, as type_indices() found it."""
        row = self._type_rows.get(taddr)
        return row[1] if row and isinstance(row[1], str) else "unreadable"

    def type_indices(self, types):
        """Type index per object from its type pointer (-1: not a type), through a hash
        table of the type pointers met so far (AddressTable), remade only when new
        ones are met."""
        from .graph import AddressTable
        table, ix = self._known_types
        pos = table.map(types) if table is not None else np.full(len(types), -1, np.int32)
        miss = pos < 0
        if miss.any():
            for t in first_seen(types[miss])[0].tolist():
                self.type_row(t)
            table = AddressTable(np.fromiter(self._type_rows, dtype=np.uint64,
                                             count=len(self._type_rows)), 0)
            ix = np.fromiter((r[0] for r in self._type_rows.values()), dtype=np.int32,
                             count=len(self._type_rows))
            self._known_types = (table, ix)
            pos = table.map(types)
        # A pointer the table cannot hold (the top bit set) reads as no type.
        return np.where(pos >= 0, ix[pos], -1).astype(np.int32)

    def type_arrays(self):
        """Per type index (and one more for invalid): basicsize, itemsize, preheader,
        heap flag, kind, kind code. Extended with the rows of new types when met."""
        have = 0 if self._tarrays is None else self._tarrays[0]
        ts = self.types
        if have != len(ts):
            new = ts[have:]
            rows = (
                ([t.basicsize for t in new], 0, np.int64),
                ([t.itemsize for t in new], 0, np.int64),
                # getsizeof counts the GC header and the managed pre-header.
                ([self.sizes.preheader(t, 0) for t in new], 0, np.int64),
                ([t.is_heap for t in new], False, np.bool_),
                ([t.kind for t in new], "<invalid>", object),
                ([self.kind_code(t.kind) for t in new], -1, np.int32))
            old = self._tarrays[1:] if self._tarrays is not None else [None] * len(rows)
            self._tarrays = (len(ts), *(extend_per_type(prev, *row)
                                        for prev, row in zip(old, rows)))
        return self._tarrays[1:]

    def kind_code(self, kind):
        """A small number per kind of object, in the order first met."""
        code = self._kind_codes.get(kind)
        if code is None:
            code = self._kind_codes[kind] = len(self.kind_names)
            self.kind_names.append(kind)
        return code

    def release(self):
        """Let go of what only the walk needed (its caches), once the graph is made."""
        self._key_name_ix = {}
        self._wave_addrs = None

    # -- what decoders report ---------------------------------------------------------------
    def begin_wave(self, addrs, base):
        """The objects of the wave now decoded: node `base + k` is at addrs[k]."""
        self._wave_addrs, self._wave_base = addrs, base

    def emit(self, src, tgt, kind, name):
        """Edges from node indices `src` to addresses `tgt`, dropping NULL and garbage
        (the source of a garbage pointer is marked damaged). `kind` and `name` are one
        value for all or one per edge."""
        if len(tgt) == 0:
            return
        tgt = np.asarray(tgt, dtype=np.uint64)
        good = (tgt != 0) & ((tgt & U64(7)) == 0) & (tgt < U64(MAX_USER_ADDRESS))
        bad = (tgt != 0) & ~good
        if bad.any():
            for s, t in zip(np.asarray(src)[bad][:100], tgt[bad][:100]):
                a = int(self._wave_addrs[int(s) - self._wave_base])
                self.problems.setdefault(a, f"bad pointer {int(t):#x}")
        src = np.asarray(src, dtype=np.int32)[good]
        self.edges["src"].append(src)
        self.edges["tgt"].append(tgt[good])
        self.edges["kind"].append(np.broadcast_to(np.uint8(kind), src.shape).astype(np.uint8)
                                  if np.isscalar(kind) else np.asarray(kind, np.uint8)[good])
        self.edges["name"].append(np.broadcast_to(np.int32(name), src.shape).astype(np.int32)
                                  if np.isscalar(name) else np.asarray(name, np.int32)[good])

    def emit_fields(self, a, src, rows):
        """Edges from nodes `src` (objects at `a`) to the object fields at fixed
        offsets: rows of (edge name, offset, edge kind)."""
        for name, off, kind in rows:
            tgt, _ = self.vm.u64(a + U64(off))
            self.emit(src, tgt, kind, self.name_id(name))

    def problem(self, addrs, idx, bad, why):
        """Mark the objects addrs[idx[bad]] damaged, saying why (the first 1000)."""
        for k in idx[bad][:1000]:
            self.problems.setdefault(int(addrs[k]), why)

    def var_size(self, addrs, idx, tix, sizes):
        """Into sizes[idx]: the size of fixed and var-sized objects without a __sizeof__
        of their own (the wave adds the pre-header)."""
        basic, item = self.type_arrays()[:2]
        total = basic[tix[idx]].copy()
        item = item[tix[idx]]
        has_items = item > 0
        if has_items.any():
            n, _ = self.vm.i64(addrs[idx[has_items]] + U64(self.o.ob_size_offset))
            total[has_items] += np.abs(n) * item[has_items]
            # A length of garbage (a damaged object, or not an object after all) gives
            # no size: the object counts its fixed part and is marked damaged.
            huge = (total < 0) | (total >= MAX_OBJECT_SIZE)
            if huge.any():
                self.problem(addrs, idx, huge, "implausible size")
                total[huge] = basic[tix[idx]][huge]
        sizes[idx] = total.astype(np.uint64)
