"""The attributes of objects, for objects of any mix of types at once: members
(__slots__, a C type's exposed fields), the struct fields of known C types, __dict__ or
the inline/split values of instances (per version), and a conservative reading of the
struct words of C objects nsdebug has no layout for.

Each type gets a plan once (AttrPlan: where its instances keep what); the plans of
all types are flattened into arrays indexed by type, so a wave of instances of
hundreds of classes is read with a few gathers.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from ..cpython.flags import (MAX_REFCOUNT, MAX_USER_ADDRESS, TPFLAGS_INLINE_VALUES,
                             TPFLAGS_MANAGED_DICT)
from ..errors import NsdebugError
from .containers import keys_table
from .fields import flagged_field
from .referents import BODY_SCAN_KINDS, INTERNAL, PROPERTY
from .vec import U64, distinct, extend_per_type, ramp

# Where an instance keeps its __dict__ or values, per version and type flags.
MODE_NONE, MODE_INLINE, MODE_MANAGED, MODE_TAGGED, MODE_OFFSET, MODE_VAR_OFFSET = range(6)


class AttrPlan:
    """Where the instances of one type keep their attributes (Attributes._make_plan)."""

    def __init__(self):
        self.field_off = self.field_name = self.field_kind = None
        self.mode = MODE_NONE
        self.dictoffset = 0
        self.keys = np.zeros(0, dtype=np.uint64)
        self.key_names = np.zeros(0, dtype=np.int32)
        self.scan_off = np.zeros(0, dtype=np.int64)
        self.scan_name = np.zeros(0, dtype=np.int32)
        # A field only objects with a flag byte set have (fields.FLAGGED_FIELDS): the
        # flag's offset (0: none), the field's, its edge name.
        self.flag_at, self.flag_field, self.flag_name = 0, 0, 0


class Attributes:
    """The attribute decoders over one WaveSink, with the per-type plans they made."""

    def __init__(self, sink):
        self.s = sink
        self.vm, self.L, self.v, self.o = sink.vm, sink.L, sink.v, sink.o
        self.refs = sink.refs
        self._plan_cache = None

    def instances(self, addrs, idx, base, tix, sizes):
        """Instances of classes, of C types nsdebug has no kind for, and of object: their
        members (__slots__, or a C type's own exposed fields), __dict__ and, for C types
        of the standard library, the object fields of their struct."""
        self.s.var_size(addrs, idx, tix, sizes)
        # Buffers first: their rules say which struct words hold no object.
        self.s.buffers.apply(addrs, idx, base, tix, sizes)
        self.attributes(addrs, idx, base, tix)

    def type_fields(self, addrs, idx, base, tix):
        """The struct fields of C types of the standard library, by tp_name."""
        for t in distinct(tix[idx]):
            rows = self.refs.fields_of_type(self.s.types[int(t)].qualname)
            if rows:
                sel = idx[tix[idx] == t]
                self.s.emit_fields(addrs[sel], base + sel, rows)

    def attributes(self, addrs, idx, base, tix):
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
            j = first[t][rep] + ramp(n)
            tgt, _ = self.vm.u64(a[rep] + f_off[j])
            self.s.emit(src[rep], tgt, f_kind[j], f_name[j])
        if P.scounts.any():
            self._scan_bodies(P, t, a, src)
        if P.flag_at.any():
            self._flagged_fields(P, t, a, src)
        modes = P.modes[t]
        dict_edge = self.s.name_id("__dict__")
        vm, V = self.vm, self.L.dictvalues
        basic = self.s.type_arrays()[0][t].astype(np.uint64)
        values_src, values_base, values_t = [], [], []
        sel = modes == MODE_INLINE                       # 3.13+: values after the object
        if sel.any():
            d, _ = vm.u64(a[sel] - U64(24))
            self.s.emit(src[sel], d, INTERNAL, dict_edge)
            vals = a[sel] + basic[sel]
            valid, _ = vm.u8(vals + U64(V.valid))
            embedded, _ = vm.u8(vals + U64(V.embedded))
            used, _ = vm.u8(vals + U64(V.used))
            capacity, _ = vm.u8(vals + U64(V.capacity))
            sane = (valid <= 1) & (embedded <= 1) & (used <= capacity)
            self.s.problem(addrs, idx[sel], (d == 0) & ~sane, "inline values with a bad header")
            use = (d == 0) & (valid == 1) & sane
            values_src.append(src[sel][use])
            values_base.append(vals[use] + U64(V.values))
            values_t.append(t[sel][use])
        sel = modes == MODE_MANAGED                      # 3.11, 3.13 without inline values
        if sel.any():
            word, _ = vm.u64(a[sel] - U64(24))
            self.s.emit(src[sel], word, INTERNAL, dict_edge)
            if self.v < (3, 12):
                vals, _ = vm.u64(a[sel] - U64(32))        # 3.11: a values pointer before it
                use = (word == 0) & (vals != 0)
                values_src.append(src[sel][use])
                values_base.append(vals[use])
                values_t.append(t[sel][use])
        sel = modes == MODE_TAGGED                       # 3.12: dict, or values pointer | 1
        if sel.any():
            word, _ = vm.u64(a[sel] - U64(24))
            tagged = (word & U64(1)) != 0
            self.s.emit(src[sel][~tagged], word[~tagged], INTERNAL, dict_edge)
            values_src.append(src[sel][tagged])
            values_base.append(word[tagged] + U64(1))
            values_t.append(t[sel][tagged])
        sel = modes == MODE_OFFSET
        if sel.any():
            off = P.dictoffsets[t[sel]]
            d, _ = vm.u64(a[sel] + off)
            self.s.emit(src[sel], d, INTERNAL, dict_edge)
        for k in np.nonzero(modes == MODE_VAR_OFFSET)[0].tolist():
            dd, _items = self.o.instance_dict(int(a[k]), self.s.types[int(t[k])])
            if dd:
                self.s.emit(np.array([src[k]]), np.array([dd], dtype=np.uint64), INTERNAL,
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
        j = P.sfirst[t][rep] + ramp(n)
        self._plausible_edges(a[rep] + P.s_off[j], src[rep], P.s_name[j])

    def scan_at(self, a, src, offsets):
        """The same conservative reading at the same offsets of every object in `a`."""
        k = len(offsets)
        rep = np.repeat(np.arange(len(a)), k)
        off = np.tile(np.array(offsets, dtype=np.uint64), len(a))
        names = np.tile(np.array([self.s.name_id(f"+{o:#x}") for o in offsets], np.int32),
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
        word, ok = self.vm.u64(where)
        cand = ok & (word != 0) & ((word & U64(7)) == 0) & (word < U64(MAX_USER_ADDRESS))
        src, names, word = src[cand], names[cand], word[cand]
        refcnt, ok1 = self.vm.u64(word)
        tp, ok2 = self.vm.u64(word + U64(self.L.object.ob_type or 8))
        live = ok1 & ok2 & self._sane_refcounts(refcnt)
        src, names, word, tp = src[live], names[live], word[live], tp[live]
        valid = self.s.type_indices(tp) >= 0
        self.s.emit(src[valid], word[valid], INTERNAL, names[valid])

    def _flagged_fields(self, P, t, a, src):
        """The field of objects whose flag byte says they have it (a datetime's tzinfo)."""
        sel = np.nonzero(P.flag_at[t])[0]
        if not len(sel):
            return
        flag, ok = self.vm.u8(a[sel] + P.flag_at[t[sel]])
        sel = sel[ok & (flag != 0)]
        tgt, _ = self.vm.u64(a[sel] + P.flag_field[t[sel]])
        self.s.emit(src[sel], tgt, INTERNAL, P.flag_name[t[sel]])

    # AttrPlan fields flattened into _plan_tables(), with the dtype of each table.
    _PLAN_ROWS = (("f_off", "field_off", np.uint64), ("f_name", "field_name", np.int32),
                  ("f_kind", "field_kind", np.uint8), ("keys", "keys", np.uint64),
                  ("key_names", "key_names", np.int32), ("s_off", "scan_off", np.uint64),
                  ("s_name", "scan_name", np.int32))

    def _plan_tables(self):
        """Every type's AttrPlan flattened into arrays indexed by type, extended (not
        rebuilt) when new types were met: a type's rows never move."""
        P = self._plan_cache
        if P is not None and P.ntypes == len(self.s.types):
            return P
        if P is None:
            P = self._plan_cache = SimpleNamespace(ntypes=0)
            for table, _, dtype in self._PLAN_ROWS:
                setattr(P, table, np.zeros(0, dtype=dtype))
        new = list(range(P.ntypes, len(self.s.types)))
        shared = self._shared_keys([self.s.types[t] for t in new])
        plans = [self._make_plan(self.s.types[t], keys) for t, keys in zip(new, shared)]
        for table, field, dtype in self._PLAN_ROWS:
            setattr(P, table, np.concatenate([getattr(P, table)] + [
                np.asarray(getattr(p, field), dtype=dtype) for p in plans]))
        # Per type, with one more row (no plan) for index -1, the invalid type.
        for per_type, values, invalid, dtype in (
                ("counts", [len(p.field_off) for p in plans], 0, np.int64),
                ("kcounts", [len(p.keys) for p in plans], 0, np.int64),
                ("scounts", [len(p.scan_off) for p in plans], 0, np.int64),
                ("modes", [p.mode for p in plans], MODE_NONE, np.int8),
                ("dictoffsets", [p.dictoffset for p in plans], 0, np.uint64),
                ("flag_at", [p.flag_at for p in plans], 0, np.uint64),
                ("flag_field", [p.flag_field for p in plans], 0, np.uint64),
                ("flag_name", [p.flag_name for p in plans], 0, np.int32)):
            setattr(P, per_type, extend_per_type(getattr(P, per_type, None), values,
                                                  invalid, dtype))
        P.ntypes = len(self.s.types)
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
        keys, ok = self.vm.u64(at + U64(self.L.heaptype.ht_cached_keys))
        sel = np.nonzero(ok & (keys != 0))[0]
        if not len(sel):
            return out
        entries, esize, koff, _, nentries, _, good = keys_table(self.s, keys[sel])
        sel, entries, esize, koff = sel[good], entries[good], esize[good], koff[good]
        n = nentries[good].astype(np.int64)
        rep = np.repeat(np.arange(len(sel)), n)
        ek, _ = self.vm.u64(entries[rep] + esize[rep].astype(np.uint64) *
                          ramp(n).astype(np.uint64) + koff[rep].astype(np.uint64))
        names = self.s.key_names(ek) if len(ek) else np.zeros(0, dtype=np.int32)
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
        plan = AttrPlan()
        try:
            members = self.o.slot_members(info)
        except NsdebugError:
            members = []
        rows = [(off, self.s.name_id(name), PROPERTY) for name, off in members]
        rows += [(off, self.s.name_id(name), kind)
                 for name, off, kind in self.refs.fields_of_type(info.qualname)]
        plan.field_off = np.array([r[0] for r in rows], dtype=np.int64)
        plan.field_name = np.array([r[1] for r in rows], dtype=np.int32)
        plan.field_kind = np.array([r[2] for r in rows], dtype=np.uint8)
        if info.kind in BODY_SCAN_KINDS:
            try:
                body = self.refs.body_offsets(info)
            except NsdebugError:
                body = []
            plan.scan_off = np.array(body, dtype=np.int64)
            plan.scan_name = np.array([self.s.name_id(f"+{off:#x}") for off in body],
                                      dtype=np.int32)
            flagged = flagged_field(info)
            if flagged is not None:
                name, plan.flag_at, plan.flag_field = flagged
                plan.flag_name = self.s.name_id(name)
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
        j = ramp(n)
        k = first[t][rep] + j
        tgt, _ = self.vm.u64(vals[rep] + U64(8) * j.astype(np.uint64))
        keep = keys[k] != 0
        self.s.emit(src[rep][keep], tgt[keep], PROPERTY, names[k][keep])
