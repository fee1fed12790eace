"""The text of many str objects at once, straight from the mapped core.

The common str is compact ASCII: its characters follow the PyASCIIObject header, one
byte each. Those (and compact one-byte latin-1 strs) are sliced out of the core's
bytes in bulk; any other str (two- or four-byte kinds, legacy, damaged) is left as
None for the per-object reader (ObjectReader.read_str), which knows every case.
"""

from __future__ import annotations

import numpy as np

from . import vec
from .vec import U64


def str_texts(vm, layout, addrs, limit):
    """[text or None] for the str objects at `addrs`, each cut at `limit` characters."""
    L = layout
    addrs = np.ascontiguousarray(addrs, dtype=np.uint64)
    if vec._kernels is not None:
        compact = L.compact.size if L.compact.size is not None else -1
        return vec._kernels.str_texts(*vm.segments(), addrs, limit, L.ascii.state,
                                      L.ascii.length, L.ascii.size, compact)
    state, ok1 = vm.u32(addrs + U64(L.ascii.state))
    length, ok2 = vm.i64(addrs + U64(L.ascii.length))
    kind = (state >> 2) & 7
    compact = ((state >> 5) & 1).astype(bool)
    ascii_ = ((state >> 6) & 1).astype(bool)
    simple = ok1 & ok2 & compact & (kind == 1) & (length >= 0) & (length < 1 << 40)
    header = np.where(ascii_, L.ascii.size, L.compact.size or 0).astype(np.uint64)
    simple &= ascii_ | (L.compact.size is not None)
    n = np.minimum(length, limit).astype(np.int64)
    off, valid = vm.offsets(addrs + header, 1)
    end_ok, _ = vm.offsets(addrs + header + np.maximum(n - 1, 0).astype(np.uint64), 1)
    simple &= valid & (end_ok == off + np.maximum(n - 1, 0).astype(np.uint64))
    out = [None] * len(addrs)
    sel = np.nonzero(simple)[0]
    buf = vm.buf                      # the mapping itself: a slice is bytes at once
    made = [buf[o:o + m].decode("ascii" if a else "latin-1", "replace") for o, m, a in
            zip(off[sel].tolist(), n[sel].tolist(), ascii_[sel].tolist())]
    for k, text in zip(sel.tolist(), made):
        out[k] = text
    return out


def str_reach(layout, limit):
    """How far past a str's address str_texts reads at most, to `limit` characters."""
    return max(layout.ascii.size, layout.compact.size or 0) + limit


def of_builtin_kind(vm, layout, types, addrs, kind):
    """Positions in `addrs` of the objects whose type is the built-in type of `kind`
    ("str", "int"...; one of `types`, TypeInfos), not a subclass: read in bulk."""
    addrs = np.asarray(addrs, dtype=U64)
    wanted = np.array([t.address for t in types if t.kind == kind and not t.is_heap],
                      dtype=U64)
    tp, ok = vm.u64(addrs + U64(layout.object.ob_type or 8))
    return np.nonzero(ok & np.isin(tp, wanted))[0]


def str_key_texts(vm, layout, types, addrs, limit):
    """str_texts() for objects that may be of any type (dict keys): only those whose
    type is the built-in str (one of `types`, TypeInfos) are read; None for the rest."""
    addrs = np.asarray(addrs, dtype=U64)
    out = [None] * len(addrs)
    if not len(addrs):
        return out
    sel = of_builtin_kind(vm, layout, types, addrs, "str")
    for k, text in zip(sel.tolist(), str_texts(vm, layout, addrs[sel], limit)):
        out[k] = text
    return out
