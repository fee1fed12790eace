"""Decoders of the built-in kinds, a whole wave at a time: leaves, int, str, tuple, list,
dict, set, bytearray, type, and the objects with fixed fields (fields.KIND_FIELDS).

Each decoder takes the wave's addresses, the positions `idx` of its objects of that
kind, the wave's first node index `base`, each object's type index `tix`, and the
wave's `sizes` to fill at `idx`; it reports edges and damage to the WaveSink.
"""

from __future__ import annotations

import numpy as np

from ..cpython.flags import MAX_ITEMS, TPFLAGS_HEAPTYPE
from . import vec
from .referents import ELEMENT, HIDDEN, PROPERTY
from .vec import U64, ramp

LEAF_KINDS = ("float", "complex", "none", "bytes", "ellipsis", "notimplemented")


def keys_table(sink, keys):
    """(entries base, entry size, key offset, value offset, nentries, size, ok) for
    PyDictKeysObjects at `keys`, per version (the numpy form of _kernels.dict_tables)."""
    L, vm, K = sink.L, sink.vm, sink.L.dictkeys
    nentries, ok = vm.i64(keys + U64(K.dk_nentries))
    if sink.v >= (3, 11):
        log2, ok1 = vm.u8(keys + U64(K.dk_log2_size))
        log2ib, ok2 = vm.u8(keys + U64(K.dk_log2_index_bytes))
        dkind, ok3 = vm.u8(keys + U64(K.dk_kind))
        ok &= ok1 & ok2 & ok3 & (log2 <= 40) & (log2ib <= 43)
        size = np.left_shift(1, np.minimum(log2, 40).astype(np.int64))
        entries = keys + U64(K.dk_indices) + np.left_shift(
            U64(1), np.minimum(log2ib, 43).astype(np.uint64))
        general = dkind == 0
        esize = np.where(general, L.dictentry.size, L.unicodeentry.size)
        koff = np.where(general, L.dictentry.me_key, L.unicodeentry.me_key)
        voff = np.where(general, L.dictentry.me_value, L.unicodeentry.me_value)
    else:
        size, ok1 = vm.i64(keys + U64(K.dk_size))
        ok &= ok1 & (size > 0) & (size <= 1 << 40) & ((size & (size - 1)) == 0)
        width = np.where(size <= 0xFF, 1, np.where(size <= 0xFFFF, 2,
                                                   np.where(size <= 0xFFFFFFFF, 4, 8)))
        entries = keys + U64(K.dk_indices) + (np.where(ok, size, 0) * width).astype(U64)
        esize = np.full(len(keys), L.dictentry.size)
        koff = np.full(len(keys), L.dictentry.me_key)
        voff = np.full(len(keys), L.dictentry.me_value)
    ok &= (nentries >= 0) & (nentries <= size) & (nentries <= MAX_ITEMS)
    return entries, esize, koff, voff, np.where(ok, nentries, 0), size, ok


class Containers:
    """The built-in kinds' decoders over one WaveSink; `attributes` (an Attributes of
    the same sink) reads what metatypes add to type objects."""

    def __init__(self, sink, attributes):
        self.s, self.attrs = sink, attributes
        self.vm, self.L, self.v, self.o = sink.vm, sink.L, sink.v, sink.o
        self.refs = sink.refs
        self._dict_fields = None        # dict_layout(), made on the first dict

    def decoders(self):
        """{kind: decoder} for the kinds decoded here (fixed-field kinds apart)."""
        out = {k: self.leaves for k in LEAF_KINDS}
        out.update(int=self.ints, bool=self.ints, str=self.strs, tuple=self.tuples,
                   list=self.lists, dict=self.dicts, set=self.sets, frozenset=self.sets,
                   bytearray=self.bytearrays, type=self.types)
        return out

    # -- leaves -------------------------------------------------------------------------------
    def leaves(self, addrs, idx, base, tix, sizes):
        self.s.var_size(addrs, idx, tix, sizes)

    def ints(self, addrs, idx, base, tix, sizes):
        L, vm = self.L, self.vm
        a = addrs[idx]
        if self.v >= (3, 12):
            tag, _ = vm.u64(a + U64(L.long.lv_tag))
            nd = np.maximum((tag >> U64(3)).astype(np.int64), 1)
        else:
            s, _ = vm.i64(a + U64(self.o.ob_size_offset))
            nd = np.abs(s)
        sizes[idx] = (L.long.ob_digit + 4 * nd).astype(np.uint64)

    def strs(self, addrs, idx, base, tix, sizes):
        L, vm = self.L, self.vm
        a = addrs[idx]
        state, _ = vm.u32(a + U64(L.ascii.state))
        length, _ = vm.i64(a + U64(L.ascii.length))
        kind = ((state >> 2) & 7).astype(np.int64)
        compact = ((state >> 5) & 1).astype(bool)
        is_ascii = ((state >> 6) & 1).astype(bool)
        size = np.where(compact & is_ascii, L.ascii.size + length + 1,
                        np.where(compact, L.compact.size + (length + 1) * kind,
                                 L.unicode.size + (length + 1) * kind))
        if L.compact.utf8 is not None:
            na = ~is_ascii
            if na.any():
                utf8, _ = vm.u64(a[na] + U64(L.compact.utf8))
                ulen, _ = vm.i64(a[na] + U64(L.compact.utf8_length))
                size[na] += np.where(utf8 != 0, ulen + 1, 0)
        sizes[idx] = size.astype(np.uint64)

    # -- sequences ------------------------------------------------------------------------------
    def _items(self, src, starts, counts, kind=ELEMENT, names=True):
        """Emit element edges to the `counts[i]` words at `starts[i]`."""
        total = int(counts.sum())
        if total == 0:
            return
        rep = np.repeat(np.arange(len(counts)), counts)
        pos = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
        tgt, ok = self.vm.u64(starts[rep] + U64(8) * pos.astype(np.uint64))
        self.s.emit(src[rep], np.where(ok, tgt, 0).astype(np.uint64), kind,
                    pos.astype(np.int32) if names else 0)

    def tuples(self, addrs, idx, base, tix, sizes):
        a = addrs[idx]
        n, ok = self.vm.i64(a + U64(self.o.ob_size_offset))
        bad = ~ok | (n < 0) | (n > MAX_ITEMS)
        self.s.problem(addrs, idx, bad, "tuple with a bad size")
        n = np.where(bad, 0, n)
        self._items(base + idx, a + U64(self.L.tuple.ob_item), n)
        self.s.var_size(addrs, idx, tix, sizes)

    def lists(self, addrs, idx, base, tix, sizes):
        L, vm = self.L, self.vm
        a = addrs[idx]
        n, ok = vm.i64(a + U64(self.o.ob_size_offset))
        items, ok2 = vm.u64(a + U64(L.list.ob_item))
        alloc, _ = vm.i64(a + U64(L.list.allocated))
        bad = ~ok | ~ok2 | (n < 0) | (n > MAX_ITEMS) | (n > alloc)
        self.s.problem(addrs, idx, bad, "list with a bad size")
        n = np.where(bad, 0, n)
        self._items(base + idx, items, n)
        sizes[idx] = (L.list.size + 8 * np.where(bad, 0, alloc)).astype(np.uint64)

    # -- dicts -----------------------------------------------------------------------------------
    def _entries(self, src, entries, esize, koff, voff, nentries, values):
        """Edges for dict entries: hidden to each key, property (named by key) to each value;
        split tables take values from their values array."""
        total = int(nentries.sum())
        if total == 0:
            return
        if self.v >= (3, 13):
            values = np.where(values != 0, values + U64(self.L.dictvalues.values),
                              0).astype(U64)
        if vec._kernels is not None:
            s = np.empty(total, dtype=np.int32)
            key = np.empty(total, dtype=np.uint64)
            val = np.empty(total, dtype=np.uint64)
            k = vec._kernels.entries(*self.vm.segments(), np.ascontiguousarray(src, np.int32),
                                     np.ascontiguousarray(entries, U64),
                                     np.ascontiguousarray(esize, np.int64),
                                     np.ascontiguousarray(koff, np.int64),
                                     np.ascontiguousarray(voff, np.int64),
                                     np.ascontiguousarray(values, U64),
                                     np.ascontiguousarray(nentries, np.int64), s, key, val)
            s, key, val = s[:k], key[:k], val[:k]
        else:
            rep = np.repeat(np.arange(len(nentries)), nentries)
            pos = ramp(nentries).astype(np.uint64)
            eaddr = entries[rep] + pos * esize[rep].astype(U64)
            key, _ = self.vm.u64(eaddr + koff[rep].astype(U64))
            vbase = values[rep]
            vaddr = np.where(vbase != 0, vbase + U64(8) * pos, eaddr + voff[rep].astype(U64))
            val, _ = self.vm.u64(vaddr.astype(U64))
            keep = (key != 0) & (val != 0)
            s, key, val = src[rep][keep], key[keep], val[keep]
        self.s.emit(s, key, HIDDEN, self.s.name_id("key"))
        if len(key):
            self.s.emit(s, val, PROPERTY, self.s.lazy_key_names(key))

    def dict_layout(self):
        """The layout array of _kernels.dict_tables (-1: a field this version lacks)."""
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

    def dicts(self, addrs, idx, base, tix, sizes):
        if vec._kernels is not None:
            # One C pass for the tables and sizes (the numpy form below is the reference).
            n = len(idx)
            out = [np.empty(n, dtype=d) for d in (U64, np.int64, np.int64, np.int64,
                                                  np.int64, U64, U64, np.uint8)]
            basic = self.s.type_arrays()[0][tix[idx]]
            if self._dict_fields is None:
                self._dict_fields = self.dict_layout()
            vec._kernels.dict_tables(*self.vm.segments(), np.ascontiguousarray(addrs[idx]),
                                     np.ascontiguousarray(basic, dtype=np.int64),
                                     self._dict_fields, *out)
            entries, esize, koff, voff, nentries, values, size, bad = out
            bad = bad.astype(np.bool_)
            self.s.problem(addrs, idx, bad, "dict keys unreadable")
            self._entries(base + idx, entries, esize, koff, voff, nentries, values)
            sizes[idx] = size
            return
        L, vm = self.L, self.vm
        a = addrs[idx]
        keys, ok1 = vm.u64(a + U64(L.dict.ma_keys))
        values, ok2 = vm.u64(a + U64(L.dict.ma_values))
        entries, esize, koff, voff, nentries, size, ok = keys_table(self.s, keys)
        bad = ~(ok & ok1 & ok2)
        self.s.problem(addrs, idx, bad, "dict keys unreadable")
        self._entries(base + idx, entries, esize, koff, voff, np.where(bad, 0, nentries),
                      values)
        # getsizeof (_PyDict_SizeOf), vectorized per version.
        K = L.dictkeys
        refcnt, _ = vm.i64(keys + U64(K.dk_refcnt))
        usable, _ = vm.i64(keys + U64(K.dk_usable))
        basic = self.s.type_arrays()[0][tix[idx]]
        frac = (size << 1) // 3
        if self.v >= (3, 11):
            log2ib, _ = vm.u8(keys + U64(K.dk_log2_index_bytes))
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

    # -- sets -------------------------------------------------------------------------------------
    def sets(self, addrs, idx, base, tix, sizes):
        """set and frozenset: the live keys of the hash table (not NULL, not the dummy of
        a deleted entry, whose hash is -1), named by their order in the table."""
        vm, S, E = self.vm, self.L.set, self.L.setentry
        a = addrs[idx]
        mask, ok1 = vm.i64(a + U64(S.mask))
        table, ok2 = vm.u64(a + U64(S.table))
        bad = ~(ok1 & ok2) | (mask < 0) | (mask >= MAX_ITEMS) | (((mask + 1) & mask) != 0)
        self.s.problem(addrs, idx, bad, "set with a bad table")
        count = np.where(bad, 0, mask + 1)
        total = int(count.sum())
        if total:
            rep = np.repeat(np.arange(len(idx)), count)
            slot = ramp(count).astype(np.uint64)
            entry = table[rep] + slot * U64(E.size)
            key, _ = vm.u64(entry + U64(E.key))
            h, _ = vm.i64(entry + U64(E.hash))
            live = (key != 0) & (h != -1)
            rep, key = rep[live], key[live]
            live_count = np.bincount(rep, minlength=len(idx))
            self.s.emit(base + idx[rep], key, ELEMENT, ramp(live_count).astype(np.int32))
        basic = self.s.type_arrays()[0][tix[idx]]
        external = (table != a + U64(S.smalltable)) & ~bad
        sizes[idx] = (basic + np.where(external, count * E.size, 0)).astype(np.uint64)

    # -- objects with fixed fields ------------------------------------------------------------
    def fields(self, addrs, idx, base, tix, sizes):
        """Any kind of fields.KIND_FIELDS: its object fields at fixed offsets."""
        knd = self.s.type_arrays()[4][tix[idx[0]]]
        self.s.emit_fields(addrs[idx], base + idx, self.refs.kind_fields[knd])
        self.s.var_size(addrs, idx, tix, sizes)

    def bytearrays(self, addrs, idx, base, tix, sizes):
        L = self.L
        self.s.emit_fields(addrs[idx], base + idx, self.refs.kind_fields["bytearray"])
        if L.bytearray.ob_bytes_object is not None:
            self.s.var_size(addrs, idx, tix, sizes)    # 3.15: the data is a bytes object's
        else:
            alloc, _ = self.vm.i64(addrs[idx] + U64(L.bytearray.ob_alloc))
            alloc = np.maximum(alloc, 0)
            sizes[idx] = (L.bytearray.size + alloc).astype(np.uint64)
            self.s.buffers.bytearrays(addrs, idx, base, alloc)

    def types(self, addrs, idx, base, tix, sizes):
        a, src = addrs[idx], base + idx
        self.s.emit_fields(a, src, self.refs.type_fields)
        # A type object's own heap-ness, not its metatype's, says if it is a heap type.
        flags, _ = self.vm.u64(a + U64(self.L.type.tp_flags))
        heap = (flags & U64(TPFLAGS_HEAPTYPE)) != 0
        self.s.emit_fields(a[heap], src[heap], self.refs.heaptype_fields)
        for t in vec.distinct(tix[idx]).tolist():
            offs = self.refs.metatype_offsets(self.s.types[t])
            if offs:
                sel = tix[idx] == t
                self.attrs.scan_at(a[sel], src[sel], offs)
        self.s.var_size(addrs, idx, tix, sizes)
        # A static type is not GC-tracked (tp_is_gc): no pre-header, which the wave adds.
        sizes[idx] -= np.where(heap, 0, self.s.type_arrays()[2][tix[idx]]).astype(np.uint64)
