"""The heap walk, vectorized: objects decoded in waves, grouped by kind, with numpy gathers.

The common kinds of a big heap (tuple, list, dict, str, int, float, bytes and
instances of plain classes, in every layout from 3.8 to 3.13) are decoded for
a whole wave at once; the rarer ones (functions, code, types, frames, ...) go
through the per-object decoders (Referents and SizeOf). The result is a HeapGraph.
"""

from __future__ import annotations

import struct
import time
from types import SimpleNamespace

import numpy as np

from ..corefile.vector import VectorMemory, _vector
from ..errors import NsdebugError
from .fields import KIND_FIELDS
from .graph import AddressTable, HeapGraph, _graphc, drain_into, release_free_memory
from .referents import BODY_SCAN_KINDS, ELEMENT, HIDDEN, INTERNAL, KEY_TEXT_LIMIT, PROPERTY
from .strtext import str_key_texts
from .walk import MAX_REFCOUNT, MAX_USER_ADDRESS, HeapWalker

U64 = np.uint64
MAX_ITEMS = 1 << 24
TPFLAGS_HEAPTYPE = 1 << 9
TPFLAGS_INLINE_VALUES = 1 << 2
TPFLAGS_MANAGED_DICT = 1 << 4
LEAF_KINDS = ("float", "complex", "none", "bytes", "ellipsis", "notimplemented")
# Kinds whose decoder reads the object's own attributes itself (no second pass).
ATTRIBUTE_KINDS = ("instance", "other", "object", "type")
# Kinds read per object (referents.py, sizes.py): their frames vary in shape.
PER_OBJECT_KINDS = ("generator", "coroutine", "async_generator", "frame")


MODE_NONE, MODE_INLINE, MODE_MANAGED, MODE_TAGGED, MODE_OFFSET, MODE_VAR_OFFSET = range(6)


class _AttrPlan:
    """Where the instances of one type keep their attributes (fastwalk._make_plan)."""

    def __init__(self):
        self.field_off = self.field_name = self.field_kind = None
        self.mode = MODE_NONE
        self.dictoffset = 0
        self.keys = np.zeros(0, dtype=np.uint64)
        self.key_names = np.zeros(0, dtype=np.int32)
        self.scan_off = np.zeros(0, dtype=np.int64)
        self.scan_name = np.zeros(0, dtype=np.int32)


class _Bits:
    """A bit array indexed by numpy arrays (1 bit per 16 bytes of core: 1/128 of it)."""

    def __init__(self, n):
        self.bytes = np.zeros((n + 7) // 8, dtype=np.uint8)

    def __getitem__(self, idx):
        return ((self.bytes[idx >> 3] >> (idx & 7).astype(np.uint8)) & 1).astype(np.bool_)

    def __setitem__(self, idx, value):
        np.bitwise_or.at(self.bytes, idx >> 3, (1 << (idx & 7)).astype(np.uint8))


class VecVisited:
    """One bit per 16 bytes of the core file (objects are 16-aligned): which objects were
    seen, found by the file offset that holds their first byte."""

    def __init__(self, vm):
        self.vm = vm
        self.flags = _Bits(len(vm.u8) // 16 + 1)
        self.outside = set()            # addresses outside the core's bytes (invalid)

    def _slots(self, addrs):
        off, inside = self.vm.offsets(addrs, 1)
        return (off >> U64(4)).astype(np.int64), inside

    def add_many(self, addrs):
        """The distinct addresses of `addrs` not seen before, in the order first seen
        (the order edges lead to them: as local in the core as a sort by address, and
        no sort); marks them seen. Only the unseen ones are deduplicated: most targets
        of a wave are old."""
        addrs = np.ascontiguousarray(addrs, dtype=np.uint64)
        if _vector is not None:
            state = np.empty(len(addrs), dtype=np.uint8)
            _vector.visit(*self.vm._seg(), addrs, self.flags.bytes, state)
            new, outside = addrs[state == 1], addrs[state == 2]
        else:
            slot, inside = self._slots(addrs)
            fresh = inside.copy()
            fresh[inside] = ~self.flags[slot[inside]]
            _, first = np.unique(slot[fresh], return_index=True)
            new = addrs[fresh][np.sort(first)]
            self.flags[slot[fresh]] = True
            outside = addrs[~inside]
        extra = []
        for a in outside.tolist():
            if a not in self.outside:
                self.outside.add(a)
                extra.append(a)
        if extra:
            new = np.concatenate([new, np.array(extra, dtype=np.uint64)])
        return new

    def add(self, addr):
        return len(self.add_many(np.array([addr], dtype=np.uint64))) == 1

    def contains_many(self, addrs):
        addrs = np.asarray(addrs, dtype=np.uint64)
        slot, inside = self._slots(addrs)
        out = np.zeros(len(addrs), dtype=np.bool_)
        out[inside] = self.flags[slot[inside]]
        if self.outside:
            out[~inside] = [int(a) in self.outside for a in addrs[~inside]]
        return out

    def __contains__(self, addr):
        slot, inside = self._slots(np.array([addr], dtype=np.uint64))
        return bool(self.flags[slot[0]]) if inside[0] else addr in self.outside


class FastWalker(HeapWalker):
    def __init__(self, rt, progress=None, arenas=True):
        super().__init__(rt, progress, arenas)
        self.vm = VectorMemory(rt.process)
        self.visited = VecVisited(self.vm)
        self.L = rt.layout
        self.v = rt.version.key
        self.chunks = {"addr": [], "type": [], "size": []}
        self.edges = {"src": [], "tgt": [], "kind": [], "name": []}   # "src": one chunk's
        self.edge_counts = []           # edges per node, a chunk of nodes at a time
        self.count = 0
        self._type_rows = {}           # type address -> (type index, kind, basicsize, ...)
        self._key_name_ix = {}
        # Dict entries are named lazily by their key object: a negative name -k-1 means
        # "the text of key_refs[k]", read when shown or exported, not during the walk.
        self.key_refs = []
        self.n_key_refs = 0
        self._tarrays = None
        self._dict_fields = None        # _dict_layout(), made on the first dict
        self._arenas = None             # (starts, ends, pool size) of pymalloc's arenas
        self._plan_cache = None
        self._kind_codes, self._kind_names = {}, []
        self._known_types = (None, np.zeros(0, dtype=np.int32))   # see _type_indices
        self.kind_stats = {}            # kind -> [objects, seconds]: where the walk goes
        self._decoders = {k[3:]: getattr(self, k) for k in dir(self) if k.startswith("_v_")}
        for kind in KIND_FIELDS:
            if kind not in self._decoders and kind not in PER_OBJECT_KINDS:
                self._decoders[kind] = self._v_fields

    # -- bookkeeping ----------------------------------------------------------------------
    def _emit(self, src, tgt, kind, name):
        """Edges from node indices `src` to addresses `tgt`, dropping NULL and garbage."""
        if len(tgt) == 0:
            return
        tgt = np.asarray(tgt, dtype=np.uint64)
        good = (tgt != 0) & ((tgt & U64(7)) == 0) & (tgt < U64(MAX_USER_ADDRESS))
        bad = (tgt != 0) & ~good
        if bad.any():
            for s, t in zip(np.asarray(src)[bad][:100], tgt[bad][:100]):
                a = int(self._wave_addr_of(int(s)))
                self.problems.setdefault(a, f"bad pointer {int(t):#x}")
        src = np.asarray(src, dtype=np.int32)[good]
        self.edges["src"].append(src)
        self.edges["tgt"].append(tgt[good])
        self.edges["kind"].append(np.broadcast_to(np.uint8(kind), src.shape).astype(np.uint8)
                                  if np.isscalar(kind) else np.asarray(kind, np.uint8)[good])
        self.edges["name"].append(np.broadcast_to(np.int32(name), src.shape).astype(np.int32)
                                  if np.isscalar(name) else np.asarray(name, np.int32)[good])

    def _wave_addr_of(self, node):
        return self._cur_addrs[node - self._cur_base]

    def _type_row(self, taddr):
        row = self._type_rows.get(taddr)
        if row is None:
            try:
                info = self.o.type_info(taddr)
                row = (self._type_index(info), info)
            except NsdebugError as e:
                row = (-1, getattr(e, "why", str(e)))
            self._type_rows[taddr] = row
        return row

    def _key_names(self, keys):
        """Name ids (into self.names) for dict keys, by the key objects' addresses."""
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

    # -- the walk -------------------------------------------------------------------------
    WAVE_CHUNK = 1 << 17       # objects decoded together: bounds a wave's temporaries

    def _wave(self, addrs):
        """Decode a set of new objects, a chunk at a time: a wave of millions of objects
        at once would hold tens of bytes of temporaries per edge."""
        for lo in range(0, len(addrs), self.WAVE_CHUNK):
            self._wave_chunk(addrs[lo:lo + self.WAVE_CHUNK])

    def _wave_chunk(self, addrs):
        mark = len(self.edges["tgt"])
        base = self.count
        self._decode_wave(addrs)
        # Node indices only grow from chunk to chunk: edges grouped by source within
        # each are grouped overall (no global sort, no copy of every edge), and the
        # number of edges per node is all the graph needs of their sources.
        counts = np.zeros(len(addrs), dtype=np.int32)
        pieces, self.edges["src"] = self.edges["src"], []
        if pieces:
            order = _by_source(np.concatenate(pieces), base, counts)
            del pieces
            for field in ("tgt", "kind", "name"):
                merged = np.concatenate(self.edges[field][mark:])[order]
                del self.edges[field][mark:]
                self.edges[field].append(merged)
        self.edge_counts.append(counts)

    def _type_arrays(self):
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
                ([self._kind_code(t.kind) for t in new], -1, np.int32))
            old = self._tarrays[1:] if self._tarrays is not None else [None] * len(rows)
            self._tarrays = (len(ts), *(_extend_per_type(prev, *row)
                                        for prev, row in zip(old, rows)))
        return self._tarrays[1:]

    def _kind_code(self, kind):
        code = self._kind_codes.get(kind)
        if code is None:
            code = self._kind_codes[kind] = len(self._kind_names)
            self._kind_names.append(kind)
        return code

    def _type_indices(self, types):
        """Type index per object from its type pointer (-1: not a type), through a hash
        table of the type pointers met so far (AddressTable), remade only when new
        ones are met."""
        table, ix = self._known_types
        pos = table.map(types) if table is not None else np.full(len(types), -1, np.int32)
        miss = pos < 0
        if miss.any():
            for t in _first_seen(types[miss])[0].tolist():
                self._type_row(t)
            table = AddressTable(np.fromiter(self._type_rows, dtype=np.uint64,
                                             count=len(self._type_rows)), 0)
            ix = np.fromiter((r[0] for r in self._type_rows.values()), dtype=np.int32,
                             count=len(self._type_rows))
            self._known_types = (table, ix)
            pos = table.map(types)
        # A pointer the table cannot hold (the top bit set) reads as no type.
        return np.where(pos >= 0, ix[pos], -1).astype(np.int32)

    def _decode_wave(self, addrs):
        vm, L = self.vm, self.L
        n = len(addrs)
        base = self.count
        self._cur_addrs, self._cur_base = addrs, base
        self.count += n
        sizes = np.zeros(n, dtype=np.uint64)
        types, ok = vm.q(addrs + U64(L.object.ob_type or 8))
        tix = self._type_indices(types)
        tix[~ok] = -1
        for k in np.nonzero(tix < 0)[0][:1000]:
            a = int(addrs[k])
            row = self._type_rows.get(int(types[k]))
            self.problems[a] = row[1] if row and isinstance(row[1], str) else "unreadable"
        valid = tix >= 0
        idx_all = np.arange(n)
        self._emit(base + idx_all[valid], types[valid], INTERNAL, self.name_id("ob_type"))
        _basic, _item, pre, is_heap, _kinds, kind_code = self._type_arrays()
        t_all = np.where(valid, tix, len(self.types))
        codes = kind_code[t_all]
        heap = is_heap[t_all]
        by_kind = np.argsort(codes.astype(np.int16), kind="stable")      # a radix sort
        bounds = np.searchsorted(codes[by_kind], np.arange(len(self._kind_names) + 1))
        for code in range(len(self._kind_names)):
            if bounds[code] == bounds[code + 1]:
                continue
            kind = self._kind_names[code]
            start = time.perf_counter()
            idx = by_kind[bounds[code]:bounds[code + 1]]       # in address order (stable)
            dec = self._decoders.get(kind)
            if dec is None:
                self._fallback(addrs, idx, base, tix, sizes)
            else:
                dec(addrs, idx, base, tix, sizes)
                # Heap subclasses of built-ins (IntEnum members, a dict subclass...) and
                # exceptions have attributes of their own besides the built-in's data.
                if kind not in ATTRIBUTE_KINDS:
                    own = np.ones(len(idx), np.bool_) if kind == "exception" else heap[idx]
                    if own.any():
                        self._attributes(addrs, idx[own], base, tix)
                    if kind not in KIND_FIELDS and not own.all():
                        # collections.defaultdict and other C types of a built-in kind.
                        self._type_fields(addrs, idx[~own], base, tix)
                sizes[idx] += pre[tix[idx]].astype(np.uint64)
            stat = self.kind_stats.setdefault(kind, [0, 0.0])
            stat[0] += len(idx)
            stat[1] += time.perf_counter() - start
        self.chunks["addr"].append(addrs)
        self.chunks["type"].append(tix)
        self.chunks["size"].append(sizes)
        if self.progress:
            self.progress(self.count)

    def _fallback(self, addrs, idx, base, tix, sizes):
        for k in idx.tolist():
            addr = int(addrs[k])
            info = self.types[int(tix[k])]
            try:
                sizes[k] = self.sizes.own_size(addr, info)
            except (NsdebugError, struct.error, ValueError) as e:
                sizes[k] = info.basicsize
                self.problems[addr] = f"size: {getattr(e, 'why', e)}"
            src, tgt, kk, nm = [], [], [], []
            for kind, name, target in self.refs.edges(addr, info):
                if name == "ob_type" and kind == INTERNAL:
                    continue                    # emitted for the whole wave
                if target == 0:
                    if name == "<unreadable>":
                        self.problems.setdefault(addr, "references unreadable")
                    continue
                src.append(base + k)
                tgt.append(target)
                kk.append(kind)
                nm.append(name if kind == ELEMENT else self.name_id(name))
            if src:
                self._emit(np.array(src), np.array(tgt, dtype=np.uint64), np.array(kk),
                           np.array(nm))

    def _var_size(self, addrs, idx, tix, sizes):
        """The size of fixed and var-sized objects without a __sizeof__ of their own
        (the wave adds the pre-header)."""
        basic, item = self._type_arrays()[:2]
        total = basic[tix[idx]].copy()
        item = item[tix[idx]]
        has_items = item > 0
        if has_items.any():
            n, _ = self.vm.i(addrs[idx[has_items]] + U64(self.o._ob_size))
            total[has_items] += np.abs(n) * item[has_items]
        sizes[idx] = total.astype(np.uint64)

    def _problem(self, addrs, idx, bad, why):
        for k in idx[bad][:1000]:
            self.problems.setdefault(int(addrs[k]), why)

    # -- leaves -------------------------------------------------------------------------------
    def _v_leaf(self, addrs, idx, base, tix, sizes):
        self._var_size(addrs, idx, tix, sizes)

    _v_float = _v_complex = _v_none = _v_bytes = _v_ellipsis = _v_notimplemented = _v_leaf

    def _v_int(self, addrs, idx, base, tix, sizes):
        L, vm = self.L, self.vm
        a = addrs[idx]
        if self.v >= (3, 12):
            tag, _ = vm.q(a + U64(L.long.lv_tag))
            nd = np.maximum((tag >> U64(3)).astype(np.int64), 1)
        else:
            s, _ = vm.i(a + U64(self.o._ob_size))
            nd = np.abs(s)
        sizes[idx] = (L.long.ob_digit + 4 * nd).astype(np.uint64)

    _v_bool = _v_int

    def _v_str(self, addrs, idx, base, tix, sizes):
        L, vm = self.L, self.vm
        a = addrs[idx]
        state, _ = vm.d(a + U64(L.ascii.state))
        length, _ = vm.i(a + U64(L.ascii.length))
        kind = ((state >> 2) & 7).astype(np.int64)
        compact = ((state >> 5) & 1).astype(bool)
        is_ascii = ((state >> 6) & 1).astype(bool)
        size = np.where(compact & is_ascii, L.ascii.size + length + 1,
                        np.where(compact, L.compact.size + (length + 1) * kind,
                                 L.unicode.size + (length + 1) * kind))
        if L.compact.utf8 is not None:
            na = ~is_ascii
            if na.any():
                utf8, _ = vm.q(a[na] + U64(L.compact.utf8))
                ulen, _ = vm.i(a[na] + U64(L.compact.utf8_length))
                size[na] += np.where(utf8 != 0, ulen + 1, 0)
        sizes[idx] = size.astype(np.uint64)

    # -- containers ---------------------------------------------------------------------------
    def _items(self, src, starts, counts, kind=ELEMENT, names=True):
        """Emit element edges to the `counts[i]` words at `starts[i]`."""
        total = int(counts.sum())
        if total == 0:
            return
        rep = np.repeat(np.arange(len(counts)), counts)
        ramp = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
        tgt, ok = self.vm.q(starts[rep] + U64(8) * ramp.astype(np.uint64))
        self._emit(src[rep], np.where(ok, tgt, 0).astype(np.uint64), kind,
                   ramp.astype(np.int32) if names else 0)

    def _v_tuple(self, addrs, idx, base, tix, sizes):
        a = addrs[idx]
        n, ok = self.vm.i(a + U64(self.o._ob_size))
        bad = ~ok | (n < 0) | (n > MAX_ITEMS)
        self._problem(addrs, idx, bad, "tuple with a bad size")
        n = np.where(bad, 0, n)
        self._items(base + idx, a + U64(self.L.tuple.ob_item), n)
        self._var_size(addrs, idx, tix, sizes)

    def _v_list(self, addrs, idx, base, tix, sizes):
        L, vm = self.L, self.vm
        a = addrs[idx]
        n, ok = vm.i(a + U64(self.o._ob_size))
        items, ok2 = vm.q(a + U64(L.list.ob_item))
        alloc, _ = vm.i(a + U64(L.list.allocated))
        bad = ~ok | ~ok2 | (n < 0) | (n > MAX_ITEMS) | (n > alloc)
        self._problem(addrs, idx, bad, "list with a bad size")
        n = np.where(bad, 0, n)
        self._items(base + idx, items, n)
        sizes[idx] = (L.list.size + 8 * np.where(bad, 0, alloc)).astype(np.uint64)

    def _keys_table(self, keys):
        """(entries base, entry size, key offset, value offset, nentries, size, ok) for
        PyDictKeysObjects, per version."""
        L, vm, K = self.L, self.vm, self.L.dictkeys
        nentries, ok = vm.i(keys + U64(K.dk_nentries))
        if self.v >= (3, 11):
            log2, ok1 = vm.b(keys + U64(K.dk_log2_size))
            log2ib, ok2 = vm.b(keys + U64(K.dk_log2_index_bytes))
            dkind, ok3 = vm.b(keys + U64(K.dk_kind))
            ok &= ok1 & ok2 & ok3 & (log2 <= 40) & (log2ib <= 43)
            size = np.left_shift(1, np.minimum(log2, 40).astype(np.int64))
            entries = keys + U64(K.dk_indices) + np.left_shift(
                U64(1), np.minimum(log2ib, 43).astype(np.uint64))
            general = dkind == 0
            esize = np.where(general, L.dictentry.size, L.unicodeentry.size)
            koff = np.where(general, L.dictentry.me_key, L.unicodeentry.me_key)
            voff = np.where(general, L.dictentry.me_value, L.unicodeentry.me_value)
        else:
            size, ok1 = vm.i(keys + U64(K.dk_size))
            ok &= ok1 & (size > 0) & (size <= 1 << 40) & ((size & (size - 1)) == 0)
            width = np.where(size <= 0xFF, 1, np.where(size <= 0xFFFF, 2,
                                                       np.where(size <= 0xFFFFFFFF, 4, 8)))
            entries = keys + U64(K.dk_indices) + (np.where(ok, size, 0) * width).astype(U64)
            esize = np.full(len(keys), L.dictentry.size)
            koff = np.full(len(keys), L.dictentry.me_key)
            voff = np.full(len(keys), L.dictentry.me_value)
        ok &= (nentries >= 0) & (nentries <= size) & (nentries <= MAX_ITEMS)
        return entries, esize, koff, voff, np.where(ok, nentries, 0), size, ok

    def _entries(self, src, entries, esize, koff, voff, nentries, values, prop_names=True):
        """Edges for dict entries: hidden to each key, property (named by key) to each value;
        split tables take values from their values array."""
        total = int(nentries.sum())
        if total == 0:
            return
        if self.v >= (3, 13):
            values = np.where(values != 0, values + U64(self.L.dictvalues.values),
                              0).astype(U64)
        if _vector is not None:
            s = np.empty(total, dtype=np.int32)
            key = np.empty(total, dtype=np.uint64)
            val = np.empty(total, dtype=np.uint64)
            k = _vector.entries(*self.vm._seg(), np.ascontiguousarray(src, np.int32),
                                np.ascontiguousarray(entries, U64),
                                np.ascontiguousarray(esize, np.int64),
                                np.ascontiguousarray(koff, np.int64),
                                np.ascontiguousarray(voff, np.int64),
                                np.ascontiguousarray(values, U64),
                                np.ascontiguousarray(nentries, np.int64), s, key, val)
            s, key, val = s[:k], key[:k], val[:k]
        else:
            rep = np.repeat(np.arange(len(nentries)), nentries)
            ramp = _ramp(nentries).astype(np.uint64)
            eaddr = entries[rep] + ramp * esize[rep].astype(U64)
            key, _ = self.vm.q(eaddr + koff[rep].astype(U64))
            vbase = values[rep]
            vaddr = np.where(vbase != 0, vbase + U64(8) * ramp, eaddr + voff[rep].astype(U64))
            val, _ = self.vm.q(vaddr.astype(U64))
            keep = (key != 0) & (val != 0)
            s, key, val = src[rep][keep], key[keep], val[keep]
        self._emit(s, key, HIDDEN, self.name_id("key"))
        if len(key):
            uk, inv = _first_seen(key)
            self.key_refs.append(uk)
            names = -(self.n_key_refs + inv.astype(np.int64) + 1)
            self.n_key_refs += len(uk)
            self._emit(s, val, PROPERTY, names.astype(np.int32))

    def _dict_layout(self):
        """The layout array of _vector.dict_tables (-1: a field this version lacks)."""
        L, K = self.L, self.L.dictkeys
        py311 = self.v >= (3, 11)
        ue = L.unicodeentry if py311 else None
        fields = [L.dict.ma_keys, L.dict.ma_values, K.dk_refcnt, K.dk_nentries, K.dk_usable,
                  K.dk_indices, K.dk_log2_size if py311 else None,
                  K.dk_log2_index_bytes if py311 else None, K.dk_kind if py311 else None,
                  None if py311 else K.dk_size, K.size, L.dictentry.size,
                  L.dictentry.me_key, L.dictentry.me_value, ue and ue.size,
                  ue and ue.me_key, ue and ue.me_value, int(py311), MAX_ITEMS]
        return np.array([-1 if f is None else f for f in fields], dtype=np.int64)

    def _v_dict(self, addrs, idx, base, tix, sizes):
        if _vector is not None:
            # One C pass for the tables and sizes (the numpy form below is the reference).
            n = len(idx)
            out = [np.empty(n, dtype=d) for d in (U64, np.int64, np.int64, np.int64,
                                                  np.int64, U64, U64, np.uint8)]
            basic = self._type_arrays()[0][tix[idx]]
            if self._dict_fields is None:
                self._dict_fields = self._dict_layout()
            _vector.dict_tables(*self.vm._seg(), np.ascontiguousarray(addrs[idx]),
                                np.ascontiguousarray(basic, dtype=np.int64),
                                self._dict_fields, *out)
            entries, esize, koff, voff, nentries, values, size, bad = out
            bad = bad.astype(np.bool_)
            self._problem(addrs, idx, bad, "dict keys unreadable")
            self._entries(base + idx, entries, esize, koff, voff, nentries, values)
            sizes[idx] = size
            return
        L, vm = self.L, self.vm
        a = addrs[idx]
        keys, ok1 = vm.q(a + U64(L.dict.ma_keys))
        values, ok2 = vm.q(a + U64(L.dict.ma_values))
        entries, esize, koff, voff, nentries, size, ok = self._keys_table(keys)
        bad = ~(ok & ok1 & ok2)
        self._problem(addrs, idx, bad, "dict keys unreadable")
        self._entries(base + idx, entries, esize, koff, voff, np.where(bad, 0, nentries),
                      values)
        # getsizeof (_PyDict_SizeOf), vectorized per version.
        K = L.dictkeys
        refcnt, _ = vm.i(keys + U64(K.dk_refcnt))
        usable, _ = vm.i(keys + U64(K.dk_usable))
        basic = self._type_arrays()[0][tix[idx]]
        frac = (size << 1) // 3
        if self.v >= (3, 11):
            log2ib, _ = vm.b(keys + U64(K.dk_log2_index_bytes))
            keys_size = K.size + np.left_shift(1, np.minimum(log2ib, 43).astype(np.int64)) + \
                frac * esize
            split_extra = (nentries + usable) * 8
        else:
            width = np.where(size <= 0xFF, 1, np.where(size <= 0xFFFF, 2,
                                                       np.where(size <= 0xFFFFFFFF, 4, 8)))
            keys_size = K.size + width * size + L.dictentry.size * frac
            split_extra = frac * 8
        total = basic + np.where(values != 0, split_extra, 0) + \
            np.where(refcnt == 1, keys_size, 0)
        sizes[idx] = np.where(bad, basic, total).astype(np.uint64)

    # -- instances ------------------------------------------------------------------------------
    def _v_instance(self, addrs, idx, base, tix, sizes):
        """Instances of classes, of C types nsdebug has no kind for, and of object: their
        members (__slots__, or a C type's own exposed fields), __dict__ and, for C types
        of the standard library, the object fields of their struct."""
        self._var_size(addrs, idx, tix, sizes)
        self._attributes(addrs, idx, base, tix)

    _v_other = _v_object = _v_instance

    def _type_fields(self, addrs, idx, base, tix):
        """The struct fields of C types of the standard library, by tp_name."""
        for t in _distinct(tix[idx]):
            rows = self.refs._by_type_name.get(self.types[int(t)].qualname)
            if rows:
                sel = idx[tix[idx] == t]
                self._fields(addrs[sel], base + sel, rows)

    def _attributes(self, addrs, idx, base, tix):
        """Members (__slots__, a C type's exposed fields), the struct fields of known C
        types, and __dict__ or the inline/split values of instances, for objects of any
        mix of types at once: per-type plans, flattened and repeated per object."""
        P = self._plan_tables()
        t = tix[idx]
        a, src = addrs[idx], base + idx
        # Fixed fields: members (property edges) and known C struct fields.
        counts, first = P.counts, P.first
        if counts.any():
            f_off, f_name, f_kind = P.f_off, P.f_name, P.f_kind
            n = counts[t]
            rep = np.repeat(np.arange(len(idx)), n)
            j = first[t][rep] + _ramp(n)
            tgt, _ = self.vm.q(a[rep] + f_off[j])
            self._emit(src[rep], tgt, f_kind[j], f_name[j])
        if P.scounts.any():
            self._scan_bodies(P, t, a, src)
        modes = P.modes[t]
        dict_edge = self.name_id("__dict__")
        vm, V = self.vm, self.L.dictvalues
        basic = self._type_arrays()[0][t].astype(np.uint64)
        values_src, values_base, values_t = [], [], []
        sel = modes == MODE_INLINE                       # 3.13+: values after the object
        if sel.any():
            d, _ = vm.q(a[sel] - U64(24))
            self._emit(src[sel], d, INTERNAL, dict_edge)
            vals = a[sel] + basic[sel]
            valid, _ = vm.b(vals + U64(V.valid))
            embedded, _ = vm.b(vals + U64(V.embedded))
            used, _ = vm.b(vals + U64(V.used))
            capacity, _ = vm.b(vals + U64(V.capacity))
            sane = (valid <= 1) & (embedded <= 1) & (used <= capacity)
            self._problem(addrs, idx[sel], (d == 0) & ~sane, "inline values with a bad header")
            use = (d == 0) & (valid == 1) & sane
            values_src.append(src[sel][use])
            values_base.append(vals[use] + U64(V.values))
            values_t.append(t[sel][use])
        sel = modes == MODE_MANAGED                      # 3.11, 3.13 without inline values
        if sel.any():
            word, _ = vm.q(a[sel] - U64(24))
            self._emit(src[sel], word, INTERNAL, dict_edge)
            if self.v < (3, 12):
                vals, _ = vm.q(a[sel] - U64(32))        # 3.11: a values pointer before it
                use = (word == 0) & (vals != 0)
                values_src.append(src[sel][use])
                values_base.append(vals[use])
                values_t.append(t[sel][use])
        sel = modes == MODE_TAGGED                       # 3.12: dict, or values pointer | 1
        if sel.any():
            word, _ = vm.q(a[sel] - U64(24))
            tagged = (word & U64(1)) != 0
            self._emit(src[sel][~tagged], word[~tagged], INTERNAL, dict_edge)
            values_src.append(src[sel][tagged])
            values_base.append(word[tagged] + U64(1))
            values_t.append(t[sel][tagged])
        sel = modes == MODE_OFFSET
        if sel.any():
            off = P.dictoffsets[t[sel]]
            d, _ = vm.q(a[sel] + off)
            self._emit(src[sel], d, INTERNAL, dict_edge)
        for k in np.nonzero(modes == MODE_VAR_OFFSET)[0].tolist():
            dd, _items = self.o.instance_dict(int(a[k]), self.types[int(t[k])])
            if dd:
                self._emit(np.array([src[k]]), np.array([dd], dtype=np.uint64), INTERNAL,
                           dict_edge)
        if values_src:
            self._values_edges(P, np.concatenate(values_src),
                               np.concatenate(values_base), np.concatenate(values_t))

    def _scan_bodies(self, P, t, a, src):
        """Edges from the struct words of C objects nsdebug has no layout for, to what
        is plausibly an object there (Referents.plausible_object, in bulk: a live
        reference count and a valid type; unknown type pointers checked one by one)."""
        n = P.scounts[t]
        if not n.any():
            return
        rep = np.repeat(np.arange(len(t)), n)
        j = P.sfirst[t][rep] + _ramp(n)
        self._plausible_edges(a[rep] + P.s_off[j], src[rep], P.s_name[j])

    def _scan_at(self, a, src, offsets):
        """The same conservative reading at the same offsets of every object in `a`."""
        k = len(offsets)
        rep = np.repeat(np.arange(len(a)), k)
        off = np.tile(np.array(offsets, dtype=np.uint64), len(a))
        names = np.tile(np.array([self.name_id(f"+{o:#x}") for o in offsets], np.int32),
                        len(a))
        self._plausible_edges(a[rep] + off, src[rep], names)

    def _sane_refcounts(self, full):
        """Whether each 8-byte refcount word could be one (not a pointer, as in a C
        struct that merely starts with one). 3.14 splits the word: a 32-bit count, a
        16-bit overflow (0 but on a refcount past 2**32) and 16 bits of flags (a few
        low bits, e.g. statically allocated)."""
        if self.v >= (3, 14):
            low = full & U64(0xFFFFFFFF)
            return (low > 0) & (((full >> U64(32)) & U64(0xFFFF)) == 0) & \
                ((full >> U64(48)) < U64(1 << 8))
        return (full > 0) & (full < U64(MAX_REFCOUNT))

    def _plausible_edges(self, where, src, names):
        """Edges from src to the word at each `where` that is plausibly an object."""
        word, ok = self.vm.q(where)
        cand = ok & (word != 0) & ((word & U64(7)) == 0) & (word < U64(MAX_USER_ADDRESS))
        src, names, word = src[cand], names[cand], word[cand]
        refcnt, ok1 = self.vm.q(word)
        tp, ok2 = self.vm.q(word + U64(self.L.object.ob_type or 8))
        live = ok1 & ok2 & self._sane_refcounts(refcnt)
        src, names, word, tp = src[live], names[live], word[live], tp[live]
        valid = self._type_indices(tp) >= 0
        self._emit(src[valid], word[valid], INTERNAL, names[valid])

    # _AttrPlan fields flattened into _plan_tables(), with the dtype of each table.
    _PLAN_ROWS = (("f_off", "field_off", np.uint64), ("f_name", "field_name", np.int32),
                  ("f_kind", "field_kind", np.uint8), ("keys", "keys", np.uint64),
                  ("key_names", "key_names", np.int32), ("s_off", "scan_off", np.uint64),
                  ("s_name", "scan_name", np.int32))

    def _plan_tables(self):
        """Every type's _AttrPlan flattened into arrays indexed by type, extended (not
        rebuilt) when new types were met: a type's rows never move."""
        P = self._plan_cache
        if P is not None and P.ntypes == len(self.types):
            return P
        if P is None:
            P = self._plan_cache = SimpleNamespace(ntypes=0)
            for table, _, dtype in self._PLAN_ROWS:
                setattr(P, table, np.zeros(0, dtype=dtype))
        new = list(range(P.ntypes, len(self.types)))
        shared = self._shared_keys([self.types[t] for t in new])
        plans = [self._make_plan(self.types[t], keys) for t, keys in zip(new, shared)]
        for table, field, dtype in self._PLAN_ROWS:
            setattr(P, table, np.concatenate([getattr(P, table)] + [
                np.asarray(getattr(p, field), dtype=dtype) for p in plans]))
        # Per type, with one more row (no plan) for index -1, the invalid type.
        for per_type, values, invalid, dtype in (
                ("counts", [len(p.field_off) for p in plans], 0, np.int64),
                ("kcounts", [len(p.keys) for p in plans], 0, np.int64),
                ("scounts", [len(p.scan_off) for p in plans], 0, np.int64),
                ("modes", [p.mode for p in plans], MODE_NONE, np.int8),
                ("dictoffsets", [p.dictoffset for p in plans], 0, np.uint64)):
            setattr(P, per_type, _extend_per_type(getattr(P, per_type, None), values,
                                                  invalid, dtype))
        P.ntypes = len(self.types)
        P.first = np.cumsum(P.counts) - P.counts
        P.kfirst = np.cumsum(P.kcounts) - P.kcounts
        P.sfirst = np.cumsum(P.scounts) - P.scounts
        return P

    def _shared_keys(self, infos):
        """Per type: (key addresses, their name ids) of the keys its instances share
        (ht_cached_keys), or None; for many types at once (a service has hundreds of
        classes: one bulk read instead of a dozen small ones per class)."""
        out = [None] * len(infos)
        want = [k for k, info in enumerate(infos)
                if info.is_heap and self._keeps_values(info)]
        if not want:
            return out
        at = np.array([infos[k].address for k in want], dtype=np.uint64)
        keys, ok = self.vm.q(at + U64(self.L.heaptype.ht_cached_keys))
        sel = np.nonzero(ok & (keys != 0))[0]
        if not len(sel):
            return out
        entries, esize, koff, _, nentries, _, good = self._keys_table(keys[sel])
        sel, entries, esize, koff = sel[good], entries[good], esize[good], koff[good]
        n = nentries[good].astype(np.int64)
        rep = np.repeat(np.arange(len(sel)), n)
        ek, _ = self.vm.q(entries[rep] + esize[rep].astype(np.uint64) *
                          _ramp(n).astype(np.uint64) + koff[rep].astype(np.uint64))
        names = self._key_names(ek) if len(ek) else np.zeros(0, dtype=np.int32)
        ends = np.cumsum(n)
        for j, k in enumerate(sel.tolist()):
            if n[j]:
                lo, hi = int(ends[j] - n[j]), int(ends[j])
                out[want[k]] = (ek[lo:hi], names[lo:hi])
        return out

    def _keeps_values(self, info):
        """Whether instances of the type may keep their attributes in a values array
        named by the class's shared keys (3.11+ managed or inline dicts)."""
        return (self.v >= (3, 13) and info.flags & TPFLAGS_INLINE_VALUES) or \
            (self.v >= (3, 11) and info.flags & TPFLAGS_MANAGED_DICT)

    def _make_plan(self, info, shared=None):
        """How instances of one type hold their attributes (computed once per type);
        `shared`: _shared_keys() of the type."""
        plan = _AttrPlan()
        try:
            members = self.o.slot_members(info)
        except NsdebugError:
            members = []
        rows = [(off, self.name_id(name), PROPERTY) for name, off in members]
        rows += [(off, self.name_id(name), kind)
                 for name, off, kind in self.refs._by_type_name.get(info.qualname, ())]
        plan.field_off = np.array([r[0] for r in rows], dtype=np.int64)
        plan.field_name = np.array([r[1] for r in rows], dtype=np.int32)
        plan.field_kind = np.array([r[2] for r in rows], dtype=np.uint8)
        if info.kind in BODY_SCAN_KINDS:
            try:
                body = self.refs.body_offsets(info)
            except NsdebugError:
                body = []
            plan.scan_off = np.array(body, dtype=np.int64)
            plan.scan_name = np.array([self.name_id(f"+{off:#x}") for off in body],
                                      dtype=np.int32)
        flags, v = info.flags, self.v
        if v >= (3, 13) and flags & TPFLAGS_INLINE_VALUES:
            plan.mode = MODE_INLINE
        elif v >= (3, 11) and flags & TPFLAGS_MANAGED_DICT:
            plan.mode = MODE_TAGGED if v < (3, 13) and v >= (3, 12) else MODE_MANAGED
        elif info.dictoffset > 0:
            plan.mode, plan.dictoffset = MODE_OFFSET, info.dictoffset
        elif info.dictoffset < 0:
            plan.mode = MODE_VAR_OFFSET
        if plan.mode in (MODE_INLINE, MODE_MANAGED, MODE_TAGGED) and shared is not None:
            plan.keys, plan.key_names = shared
        return plan

    def _values_edges(self, P, src, vals, t):
        """Attribute edges of instances whose values live in a values array, named by the
        keys their class shares (ht_cached_keys)."""
        counts, first, keys, names = P.kcounts, P.kfirst, P.keys, P.key_names
        if not counts.any() or not len(src):
            return
        n = counts[t]
        rep = np.repeat(np.arange(len(src)), n)
        j = _ramp(n)
        k = first[t][rep] + j
        tgt, _ = self.vm.q(vals[rep] + U64(8) * j.astype(np.uint64))
        keep = keys[k] != 0
        self._emit(src[rep][keep], tgt[keep], PROPERTY, names[k][keep])

    # -- objects with fixed fields ------------------------------------------------------------
    def _fields(self, a, src, rows):
        """Edges to the object fields at fixed offsets: rows of (name, offset, kind)."""
        for name, off, kind in rows:
            tgt, _ = self.vm.q(a + U64(off))
            self._emit(src, tgt, kind, self.name_id(name))

    def _v_fields(self, addrs, idx, base, tix, sizes):
        knd = self._type_arrays()[4][tix[idx[0]]]
        self._fields(addrs[idx], base + idx, self.refs._fields[knd])
        self._var_size(addrs, idx, tix, sizes)

    def _v_bytearray(self, addrs, idx, base, tix, sizes):
        L = self.L
        self._fields(addrs[idx], base + idx, self.refs._fields["bytearray"])
        if L.bytearray.ob_bytes_object is not None:
            self._var_size(addrs, idx, tix, sizes)     # 3.15: the data is a bytes object's
        else:
            alloc, _ = self.vm.i(addrs[idx] + U64(L.bytearray.ob_alloc))
            sizes[idx] = (L.bytearray.size + np.maximum(alloc, 0)).astype(np.uint64)

    def _v_type(self, addrs, idx, base, tix, sizes):
        a, src = addrs[idx], base + idx
        self._fields(a, src, self.refs._type_fields)
        # A type object's own heap-ness, not its metatype's, says if it is a heap type.
        flags, _ = self.vm.q(a + U64(self.L.type.tp_flags))
        heap = (flags & U64(TPFLAGS_HEAPTYPE)) != 0
        self._fields(a[heap], src[heap], self.refs._heaptype_fields)
        for t in _distinct(tix[idx]).tolist():
            offs = self.refs.metatype_offsets(self.types[t])
            if offs:
                sel = tix[idx] == t
                self._scan_at(a[sel], src[sel], offs)
        self._var_size(addrs, idx, tix, sizes)
        # A static type is not GC-tracked (tp_is_gc): no pre-header, which the wave adds.
        sizes[idx] -= np.where(heap, 0, self._type_arrays()[2][tix[idx]]).astype(np.uint64)

    def _v_set(self, addrs, idx, base, tix, sizes):
        """set and frozenset: the live keys of the hash table (not NULL, not the dummy of
        a deleted entry, whose hash is -1), named by their order in the table."""
        vm, S, E = self.vm, self.L.set, self.L.setentry
        a = addrs[idx]
        mask, ok1 = vm.i(a + U64(S.mask))
        table, ok2 = vm.q(a + U64(S.table))
        bad = ~(ok1 & ok2) | (mask < 0) | (mask >= MAX_ITEMS) | (((mask + 1) & mask) != 0)
        self._problem(addrs, idx, bad, "set with a bad table")
        count = np.where(bad, 0, mask + 1)
        total = int(count.sum())
        if total:
            rep = np.repeat(np.arange(len(idx)), count)
            slot = _ramp(count).astype(np.uint64)
            entry = table[rep] + slot * U64(E.size)
            key, _ = vm.q(entry + U64(E.key))
            h, _ = vm.i(entry + U64(E.hash))
            live = (key != 0) & (h != -1)
            rep, key = rep[live], key[live]
            live_count = np.bincount(rep, minlength=len(idx))
            self._emit(base + idx[rep], key, ELEMENT, _ramp(live_count).astype(np.int32))
        basic = self._type_arrays()[0][tix[idx]]
        external = (table != a + U64(S.smalltable)) & ~bad
        sizes[idx] = (basic + np.where(external, count * E.size, 0)).astype(np.uint64)

    _v_frozenset = _v_set

    # -- driving ----------------------------------------------------------------------------
    def _drain_waves(self, frontier):
        """Decode `frontier` (new, already marked seen) and everything new it leads to."""
        while len(frontier):
            mark = len(self.edges["tgt"])
            self._wave(frontier)
            new = self.edges["tgt"][mark:]
            frontier = self.visited.add_many(np.concatenate(new)) if new else \
                np.zeros(0, dtype=np.uint64)

    def run(self):
        self._roots()
        self.n_synth = self.count = len(self.addr)
        # The synthetic nodes' edges, as rows like every other edge.
        starts = np.frombuffer(self.edge_start, dtype=np.uint64).astype(np.int64)
        counts = np.diff(np.append(starts, len(self.e_to)))
        targets = np.frombuffer(self.e_to, dtype=np.uint64).copy()
        self.edge_counts.append(counts.astype(np.int32))
        self.edges["tgt"].append(targets)
        self.edges["kind"].append(np.frombuffer(bytes(self.e_kind), dtype=np.uint8).copy())
        self.edges["name"].append(np.frombuffer(self.e_name, dtype=np.int32).copy())
        # 1. Everything reachable from the roots.
        self._drain_waves(self.visited.add_many(targets[(targets & U64(1 << 63)) == 0]))
        self.n_reachable = self.count
        # 2. On the GC lists or in pymalloc's blocks, but not reached (yet: C code may
        # hold them; the graph's assembly tells, with the C roots spliced in).
        seeds = []
        try:
            tracked, frozen = self.gc_objects()
            self.tracked = tracked
            seeds += [tracked, frozen]
        except NsdebugError as e:
            self.warnings.append(f"GC lists: {e}")
        for group in seeds:
            self._drain_waves(self.visited.add_many(group))
        if self.scan_arenas:
            try:
                scan = _ArenaScan(self)
                found = scan.objects()
                self._arenas = scan.ranges
                self._drain_waves(self.visited.add_many(found))
            except NsdebugError as e:
                self.warnings.append(f"pymalloc arenas: {e}")
        release_free_memory()             # the waves' temporaries, before the big arrays
        # Every node is known now: their addresses as one column, and a table to find a
        # node by its address (the C roots' words, then every edge's target).
        self._addr_col = np.zeros(self.count, dtype=np.uint64)
        drain_into(self.chunks["addr"], self._addr_col[self.n_synth:])
        self.chunks["addr"] = None
        self._table = AddressTable(self._addr_col, self.n_synth)
        return self._graph(self._c_roots())

    # -- roots held by C code ---------------------------------------------------------------
    def _c_roots(self):
        """{group: (targets, names)}: objects that C code holds, found by the words of
        the modules' writable data (globals, static types, the interpreter's own state,
        which lives in libpython's .bss) and of the threads' stacks that are exactly the
        address of an object the walk found. A word that merely looks like a pointer is
        not taken: only the addresses of objects already known."""
        from .walk import C_GLOBALS, C_STACKS
        p = self.rt.process
        found = self._table
        out = {}
        regions = []
        for m in p.modules:
            for seg in p.data_regions(m):
                regions.append((seg.start, seg.end,
                                lambda addrs, m=m: self._global_names(m, addrs)))
        out[C_GLOBALS] = self._scan_words(regions, found)
        regions = []
        for t in p.threads:
            seg = p.memory.find_segment(t.sp)
            if seg is not None:
                regions.append((t.sp & ~7, seg.start + seg.filesz,
                                lambda addrs, tid=t.tid: [f"thread {tid} stack {a:#x}"
                                                          for a in addrs]))
        out[C_STACKS] = self._scan_words(regions, found)
        # Extension modules keep objects in their state (md_state): C's too.
        states = self._module_states()
        if len(states):
            t, n = out[C_GLOBALS]
            more = self._scan_blocks(states, found)
            out[C_GLOBALS] = (np.concatenate([t, more[0]]), np.concatenate([n, more[1]]))
        return out

    def _module_states(self):
        """{md_state block: label} of every module object the walk found."""
        off = self.L.module.md_state
        mods = [i for i, t in enumerate(self.types) if t.kind == "module"]
        if off is None or not mods:
            return {}
        addrs = self._addr_col[self.n_synth:]
        tix = np.concatenate(self.chunks["type"])
        sel = addrs[np.isin(tix, mods)]
        state, ok = self.vm.q(sel + U64(off))
        out = {}
        for a, st in zip(sel[ok & (state != 0)].tolist(), state[ok & (state != 0)].tolist()):
            try:
                name = self.o.module_name(a)
            except NsdebugError:
                name = f"{a:#x}"
            out[st] = f"state of module {name}"
        return out

    MAX_BLOCK = 1 << 20                  # a larger malloc chunk is not scanned
    MAX_BLOCK_BYTES = 64 << 20           # nor more than this in all

    def _scan_words(self, regions, found):
        """Edges to the objects whose exact address a word of the regions (start, end,
        namer: the labels of a list of word addresses) holds; and, one level deep, to
        those held by the malloc'd blocks such words point to (the parser's arena of a
        running script, a C extension's state...): a glibc chunk's size word precedes
        it, which bounds what is read."""
        spans = []
        for start, end, label in regions:
            words = self._words_at(start, end - start) if end > start else None
            if words is not None:
                spans.append((start, words, label))
        targets, names, blocks = [], [], {}
        hits, others = self._match_spans(spans, found)
        for r, local, values in hits:
            start, _, label = spans[r]
            targets += values.tolist()
            names += [self.name_id(t) for t in label([start + 8 * k for k in local.tolist()])]
        for r, k in others:                 # named only if the block holds an object
            start, words, label = spans[r]
            blocks.setdefault(int(words[k]), (label, start + 8 * k))
        more = self._scan_blocks(blocks, found)
        return (np.concatenate([np.array(targets, dtype=np.uint64), more[0]]),
                np.concatenate([np.array(names, dtype=np.int32), more[1]]))

    def _scan_blocks(self, blocks, found):
        """Edges to the objects held by the allocated blocks {pointer: label, or (namer,
        address) of the word that points to it}."""
        spans = []
        budget = self.MAX_BLOCK_BYTES
        for pointer, via in sorted(blocks.items()):
            block, size = self._block_of(pointer)
            if block is None or size > budget:
                continue
            words = self._words_at(block, size)
            if words is not None:
                budget -= size
                spans.append((block, words, via))
        targets, names = [], []
        for r, local, values in self._match_spans(spans, found)[0]:
            block, _, via = spans[r]
            if not isinstance(via, str):
                via = via[0]([via[1]])[0]
            targets += values.tolist()
            names += [self.name_id(f"malloc block {block:#x}+{8 * k:#x} (from {via})")
                      for k in local.tolist()]
        return np.array(targets, dtype=np.uint64), np.array(names, dtype=np.int32)

    def _words_at(self, start, nbytes):
        """The 8-byte words of [start, start + nbytes) as a view of the core, or None
        when the core does not hold them all."""
        off, ok = self.vm.offsets(np.array([start], dtype=np.uint64), nbytes)
        if not ok[0]:
            return None
        o = int(off[0])
        return self.vm.u8[o:o + nbytes // 8 * 8].view("<u8")

    def _match_spans(self, spans, found):
        """_match() over the words of many spans (start, words, ...) at once: hundreds
        of small .data/.bss regions or malloc'd blocks in one pass. Returns the hits
        per span that has any, in span order ([(span, word positions, objects)], each
        object once per span, by address) and the other candidate words ([(span, word
        position)], in order)."""
        if not spans:
            return [], []
        lengths = np.array([len(w) for _, w, _ in spans], dtype=np.int64)
        first_word = np.cumsum(lengths) - lengths
        region = np.repeat(np.arange(len(spans)), lengths)
        hit_k, hit_v, other_k = self._match(np.concatenate([w for _, w, _ in spans]), found,
                                            region)
        hit_r = region[hit_k]
        hits = []
        for r in _distinct(hit_r).tolist():
            sel = hit_r == r
            hits.append((r, hit_k[sel] - first_word[r], hit_v[sel]))
        other_r = region[other_k]
        return hits, list(zip(other_r.tolist(), (other_k - first_word[other_r]).tolist()))

    def _block_of(self, pointer):
        """(start, size) of the allocated block a pointer points into: a pymalloc block,
        from its pool's header, or a glibc chunk from the size word before it; (None,
        0) when neither makes sense."""
        vm = self.vm
        arenas = self._arenas
        if arenas is not None and len(arenas[0]):
            i = int(np.searchsorted(arenas[0], pointer, side="right")) - 1
            if i >= 0 and pointer < int(arenas[1][i]):
                from . import arenas as arena_mod
                P, pool_size = self.L.pool, arenas[2]
                pool = pointer & ~(pool_size - 1)
                hdr, ok = vm.d(np.array([pool + P.ref, pool + P.szidx], dtype=np.uint64))
                if not ok.all() or hdr[0] == 0 or hdr[1] > 63:
                    return None, 0
                align = 1 << arena_mod.ALIGNMENT_SHIFT
                overhead = (P.size + align - 1) & ~(align - 1)
                bsize = (int(hdr[1]) + 1) << arena_mod.ALIGNMENT_SHIFT
                if pointer < pool + overhead:
                    return None, 0
                return pool + overhead + (pointer - pool - overhead) // bsize * bsize, bsize
        if not 0x10000 <= pointer < MAX_USER_ADDRESS:
            return None, 0                   # a garbage word names no malloc'd block
        size, ok = vm.q(np.array([pointer - 8], dtype=np.uint64))
        size = int(size[0]) & ~7
        if not ok[0] or not 32 <= size <= self.MAX_BLOCK:
            return None, 0
        return pointer, size - 8

    def _match(self, words, found, region):
        """(positions, objects) of the words that are an object's address, one per
        object and region (`region` gives each word's), ordered by region then address;
        and the positions of other aligned words into the core's anonymous writable
        memory (candidate malloc'd blocks)."""
        cand = np.nonzero(((words & U64(15)) == 0) & (words > U64(0x10000)) &
                          (words < U64(MAX_USER_ADDRESS)))[0]
        vals = words[cand]
        hit = found.map(vals) >= found.n_synth
        # Addresses are 16-aligned and under 2**47: 43 bits once shifted.
        key = (region[cand[hit]].astype(U64) << U64(44)) | (vals[hit] >> U64(4))
        _, first = np.unique(key, return_index=True)
        uniq = vals[hit][first]
        other = cand[~hit]
        anon = self._anonymous_rw()
        i = np.searchsorted(anon[0], words[other], side="right") - 1
        inside = (i >= 0) & (words[other] < anon[1][np.maximum(i, 0)])
        return cand[hit][first], uniq, other[inside]

    def _anonymous_rw(self):
        if getattr(self, "_anon", None) is None:
            segs = [s for s in self.rt.process.memory.segments
                    if s.file is None and s.perms.startswith("rw") and s.filesz]
            self._anon = (np.array([s.start for s in segs], dtype=np.uint64),
                          np.array([s.start + s.filesz for s in segs], dtype=np.uint64))
        return self._anon

    @staticmethod
    def _global_names(module, addrs):
        """Labels of words in a module's data: symbol+offset, else module+offset."""
        out, mod, start = [], module.name, module.start
        for addr, hit in zip(addrs, module.symbolize_many(addrs)):
            if hit is None:
                out.append(f"{mod}+{addr - start:#x}")
            else:
                name, off = hit[0], hit[1]
                out.append(f"{mod}:{name}+{off:#x}" if off else f"{mod}:{name}")
        return out

    def _graph(self, late):
        n = self.count
        starts = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(drain_into(self.edge_counts, starts[1:]), out=starts[1:])
        self.edge_counts = self.edges["src"] = None
        self.visited = None
        self.key_refs = np.concatenate(self.key_refs) if self.key_refs else \
            np.zeros(0, dtype=np.uint64)
        cols = {"addr": self._addr_col}
        self._addr_col = None
        for name, fill, dtype in (("type", -1, np.int32), ("size", 0, np.uint64)):
            out = np.empty(n, dtype=dtype)
            out[:self.n_synth] = fill
            cols[name] = drain_into(self.chunks[name], out[self.n_synth:]).base
        # Room before the edges for the group edges the assembly adds (C roots, the
        # unreachable: only objects the roots' waves did not find can be unreachable),
        # so that they go in without a copy of every edge.
        room = sum(len(t) for t, _ in late.values()) + (n - self.n_reachable)
        m = sum(len(c) for c in self.edges["tgt"])
        cols["tgt"] = self.edges["tgt"]              # a list of chunks: mapped one by one
        self.edges["tgt"] = None
        for field, dtype in (("kind", np.uint8), ("name", np.int32)):
            cols[field] = np.empty(room + m, dtype=dtype)
            drain_into(self.edges[field], cols[field][room:])
        self.edges = self.chunks = None
        # Hand the columns over (no reference kept here, so the assembly can free them);
        # the C roots' and (Unreachable)'s edges are spliced in there.
        table, self._table = self._table, None
        g = HeapGraph.assemble(self, late, cols.pop("addr"), cols.pop("type"),
                               cols.pop("size"), starts, cols.pop("tgt"), cols.pop("kind"),
                               cols.pop("name"), table, room)
        # What only the walk needed goes before the dominator pass (whoever keeps this
        # walker, for its kind_stats, does not keep these too).
        self.tracked = self._cur_addrs = None
        self._key_name_ix = {}
        return g


def _extend_per_type(prev, values, invalid, dtype):
    """A per-type array (its last row for type index -1, the invalid type) extended
    with the rows of new types: `prev` (or None) with its last row replaced by `values`
    and a fresh `invalid` row."""
    head = prev[:-1] if prev is not None else np.zeros(0, dtype=dtype)
    return np.concatenate([head, np.array(list(values) + [invalid], dtype=dtype)])


def _distinct(values):
    """np.unique(values) for the walk's small integer arrays, by a sort: plain np.unique
    imports numpy.ma on first use (15 ms of every process that walks a heap)."""
    s = np.sort(values)
    return s[np.concatenate(([True], s[1:] != s[:-1]))] if len(s) else s


def _first_seen(values):
    """(distinct values, inverse): as np.unique(values, return_inverse=True), but in the
    order first seen, by hashing (in C) instead of sorting."""
    values = np.ascontiguousarray(values, dtype=np.uint64)
    if _graphc is None:
        uniq, first, inv = np.unique(values, return_index=True, return_inverse=True)
        order = np.argsort(first, kind="stable")
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order))
        return uniq[order], rank[inv]
    uniq = np.empty(len(values), dtype=np.uint64)
    inv = np.empty(len(values), dtype=np.int32)
    count = _graphc.first_seen(values, uniq, inv)
    return uniq[:count].copy(), inv


def _by_source(src, base, counts):
    """Positions of edges grouped by source node (stable), and into `counts` (int32,
    one per node from `base`) the number from each."""
    order = np.empty(len(src), dtype=np.int64)
    if _graphc is not None:
        _graphc.by_source(np.ascontiguousarray(src, dtype=np.int32), base, counts, order)
        return order
    order = np.argsort(src, kind="stable")
    counts[:] = np.bincount(src - base, minlength=len(counts))
    return order


def _ramp(counts):
    total = int(counts.sum())
    return np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)


class _ArenaScan:
    """Allocated pymalloc blocks and the objects in them, many pools at a time."""

    POOLS_PER_BATCH = 2048

    def __init__(self, walker):
        self.w = walker
        self.vm = walker.vm
        self.L = walker.L

    def pools(self):
        """Addresses of every pool of every arena in use."""
        from . import arenas as arena_mod
        w, vm, L = self.w, self.vm, self.L
        table = arena_mod.arena_table(w.rt)
        if table is None:
            raise NsdebugError("pymalloc's arena table cannot be found (stripped build?)")
        arenas, count = table
        if count > 1 << 24:
            raise NsdebugError(f"arena table claims {count} arenas")
        pool_size, _ = arena_mod.pool_and_arena_size(w.rt.version.key)
        A = L.arena
        ao = U64(arenas) + U64(A.size) * np.arange(count, dtype=np.uint64)
        address, _ = vm.q(ao + U64(A.address))
        end, _ = vm.q(ao + U64(A.pool_address))
        live = address != 0
        address, end = address[live], end[live]
        first = (address + U64(pool_size - 1)) & ~U64(pool_size - 1)
        end = np.minimum(end, address + U64(1 << 24))
        order = np.argsort(address)
        self.ranges = (address[order], end[order], pool_size)
        n = np.where(end > first, (end - first) // U64(pool_size), 0).astype(np.int64)
        rep = np.repeat(np.arange(len(first)), n)
        return first[rep] + U64(pool_size) * _ramp(n).astype(U64), pool_size

    def _allocated_blocks(self, pools, szidx, nextoff, overhead, pool_size):
        """(blocks, sizes) of the pools' allocated blocks: below the high-water mark,
        not on the free list (every pool's list followed in lockstep)."""
        from . import arenas as arena_mod
        vm, P = self.vm, self.L.pool
        align = 1 << arena_mod.ALIGNMENT_SHIFT
        bsize = (szidx + 1) << arena_mod.ALIGNMENT_SHIFT
        limit = np.minimum(nextoff, pool_size - bsize + 1)
        nblocks = np.maximum((limit - overhead + bsize - 1) // bsize, 0)
        first_block = np.cumsum(nblocks) - nblocks
        rep = np.repeat(np.arange(len(pools)), nblocks)
        blocks = pools[rep] + (U64(overhead) + (bsize[rep] * _ramp(nblocks)).astype(U64))
        bsz = bsize[rep]
        keep = np.ones(len(blocks), dtype=np.bool_)
        cur, _ = vm.q(pools + U64(P.freeblock))
        pool_i = np.arange(len(pools))
        for _ in range(pool_size // align):
            lo = pools[pool_i]
            offset = cur.astype(np.int64) - lo.astype(np.int64) - overhead
            number = offset // bsize[pool_i]
            live = (cur != 0) & (offset >= 0) & (offset % bsize[pool_i] == 0) & \
                (number < nblocks[pool_i])
            if not live.any():
                break
            cur, pool_i = cur[live], pool_i[live]
            keep[first_block[pool_i] + number[live]] = False
            cur, _ = vm.q(cur)
        return blocks[keep], bsz[keep]

    def objects(self):
        from . import arenas as arena_mod
        from .walk import TPFLAGS_HAVE_GC, TPFLAGS_PREHEADER
        w, vm, P = self.w, self.vm, self.L.pool
        all_pools, pool_size = self.pools()
        align = 1 << arena_mod.ALIGNMENT_SHIFT
        overhead = (P.size + align - 1) & ~(align - 1)
        known = np.array(sorted(t.address for t in w.types), dtype=np.uint64)
        by_addr = {t.address: t for t in w.types}
        gch = self.L.gchead.size
        pre = 16 if w.v >= (3, 11) else 0
        out = []
        for lo_i in range(0, len(all_pools), self.POOLS_PER_BATCH):
            pools = all_pools[lo_i:lo_i + self.POOLS_PER_BATCH]
            ref, ok1 = vm.d(pools + U64(P.ref))
            szidx, ok2 = vm.d(pools + U64(P.szidx))
            nextoff, ok3 = vm.d(pools + U64(P.nextoffset))
            used = ok1 & ok2 & ok3 & (ref > 0) & (szidx <= 63) & (nextoff <= pool_size)
            pools, szidx, nextoff = pools[used], szidx[used].astype(np.int64), \
                nextoff[used].astype(np.int64)
            if not len(pools):
                continue
            if _vector is not None:
                # In C: each pool's free list followed, and the blocks whose object
                # was visited left out (most of them: only the rest is looked at).
                bound = int(np.maximum((nextoff - overhead) // 16 + 1, 0).sum())
                blocks = np.empty(bound, dtype=np.uint64)
                bsz = np.empty(bound, dtype=np.int64)
                k = _vector.pool_blocks(*vm._seg(), pools, szidx, nextoff, overhead,
                                        pool_size, P.freeblock, w.visited.flags.bytes,
                                        np.array([gch + pre, gch, 0], dtype=np.uint64),
                                        blocks, bsz)
                blocks, bsz = blocks[:k], bsz[:k]
            else:
                blocks, bsz = self._allocated_blocks(pools, szidx, nextoff, overhead,
                                                     pool_size)
            chosen = np.zeros(len(blocks), dtype=np.uint64)
            open_ = np.ones(len(blocks), dtype=np.bool_)
            for off in (gch + pre, gch, 0):
                obj = blocks + U64(off)
                word, ok = vm.q(obj + U64(8))
                pos = np.minimum(np.searchsorted(known, word), len(known) - 1)
                cand = open_ & ok & (known[pos] == word) & \
                    (obj + U64(16) <= blocks + bsz.astype(U64))
                # A block whose object was already found is accounted for.
                seen = np.zeros(len(cand), dtype=np.bool_)
                seen[cand] = w.visited.contains_many(obj[cand])
                open_ &= ~seen
                cand &= ~seen
                for k in np.nonzero(cand)[0]:
                    info = by_addr[int(word[k])]
                    gc_type = bool(info.flags & TPFLAGS_HAVE_GC)
                    if gc_type and info.is_heap:
                        # An instance of a class is always on a GC list while it lives
                        # (and all of those were walked): this block is freed memory
                        # that still carries its old type pointer.
                        continue
                    has_pre = gc_type and pre and info.flags & TPFLAGS_PREHEADER
                    want = gch + (pre if has_pre else 0) if gc_type else 0
                    if want != off:
                        continue
                    o = int(obj[k])
                    if w._plausible(o, info, int(blocks[k]) + int(bsz[k]), gc_type, has_pre):
                        chosen[k] = o
                        open_[k] = False
            out.append(chosen[chosen != 0])
        return np.concatenate(out) if out else np.zeros(0, dtype=np.uint64)
