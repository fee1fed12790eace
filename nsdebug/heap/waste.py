"""Memory spent for nothing: the same str or bytes value held many times over, and dicts,
lists and sets that are empty or mostly empty but keep their allocated room.

Values are read in bulk from the core (strtext.str_texts; bytes sliced out), each read
near an address the heap index holds (per_window: a capture's a window at a time, with
no copy of the whole core); a value nsdebug cannot read whole is left out rather than
guessed.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from ..errors import NsdebugError
from ..record import record
from .strtext import str_reach, str_texts
from .vec import of_types

U64 = np.uint64
MAX_VALUE = 1 << 20          # longer values are compared by their first MiB and length
SPARSE_FILL = 0.25           # "mostly empty": under a quarter full...
SPARSE_MIN = 16              # ...with room for at least this many items


@record
class Duplicate:
    type: str                # str or bytes
    preview: str
    count: int
    size: int                # bytes per copy
    wasted: int              # (count - 1) * size
    addresses: list          # a few of the copies


@record
class Sparse:
    type: str
    empty: int               # containers with nothing in them
    empty_bytes: int
    sparse: int              # mostly empty (under 25% full, room for 16 or more)
    unused_bytes: int        # the room they keep and do not use


@record
class WasteResult:
    duplicates: list            # [Duplicate], most bytes wasted first
    duplicate_bytes: int        # all the copies beyond the first, together
    sparse: list                # [Sparse] per container type


def find_waste(g, vm, objects, top=20):
    """WasteResult: the `top` most wasteful duplicated values, and the empty or mostly
    empty containers per type."""
    dups, wasted = duplicates(g, vm, objects, top)
    return WasteResult(dups, wasted, sparse_containers(g, vm, objects))


def duplicates(g, vm, objects, top=20):
    """([Duplicate] by bytes wasted, total wasted): equal str and bytes values."""
    groups = defaultdict(list)
    for kind in ("str", "bytes"):
        t_ix = [i for i, t in enumerate(g.types) if t.kind == kind and not t.is_heap]
        idx = np.nonzero(of_types(g.type_ix, t_ix, len(g.types)))[0]
        if not len(idx):
            continue
        addrs = g.addr[idx]
        L = objects.L
        # Each read near its object (per_window: a capture's a window at a time).
        values = vm.per_window(addrs, str_reach(L, MAX_VALUE),
                               lambda v, a: str_texts(v, L, a, MAX_VALUE)) \
            if kind == "str" else \
            vm.per_window(addrs, L.bytes.ob_sval + MAX_VALUE,
                          lambda v, a: _bytes_values(v, objects, a))
        sizes = g.size[idx].tolist()
        for i, v, sz in zip(idx.tolist(), values, sizes):
            if v is not None:
                groups[(kind, v, sz)].append(i)
    out, total = [], 0
    for (kind, v, sz), nodes in groups.items():
        if len(nodes) < 2:
            continue
        wasted = (len(nodes) - 1) * sz
        total += wasted
        out.append(Duplicate(kind, _preview(v), len(nodes), sz, wasted,
                             [int(g.addr[i]) for i in nodes[:5]]))
    out.sort(key=lambda d: (-d.wasted, d.preview))
    return out[:top], total


def _preview(v, limit=60):
    text = repr(v[:limit])
    return text + (f"...(+{len(v) - limit})" if len(v) > limit else "")


def _bytes_values(vm, objects, addrs):
    L = objects.L
    size, ok = vm.i64(addrs + U64(objects.ob_size_offset))
    n = np.minimum(np.maximum(size, 0), MAX_VALUE)
    off, valid = vm.offsets(addrs + U64(L.bytes.ob_sval), 1)
    end, valid2 = vm.offsets(addrs + U64(L.bytes.ob_sval) + np.maximum(n - 1, 0).astype(U64), 1)
    good = ok & valid & valid2 & (size >= 0) & (end == off + np.maximum(n - 1, 0).astype(U64))
    buf = vm.data
    return [buf[o:o + m].tobytes() if g else None
            for o, m, g in zip(off.tolist(), n.tolist(), good.tolist())]


def sparse_containers(g, vm, objects):
    """[Sparse] per container type: empty ones and mostly empty ones, with their cost."""
    out = []
    for kind in ("dict", "list", "set", "frozenset"):
        t_ix = [i for i, t in enumerate(g.types) if t.kind == kind and not t.is_heap]
        idx = np.nonzero(of_types(g.type_ix, t_ix, len(g.types)))[0]
        if not len(idx):
            continue
        a = g.addr[idx]
        try:
            used, room, slot = _fill(kind, vm, objects, a)
        except NsdebugError:
            continue
        sizes = g.size[idx].astype(np.int64)
        empty = used == 0
        sparse = ~empty & (room >= SPARSE_MIN) & (used < SPARSE_FILL * room)
        unused = np.maximum(room - used, 0) * slot
        out.append(Sparse(kind, int(empty.sum()), int(sizes[empty].sum()), int(sparse.sum()),
                          int(unused[sparse].sum())))
    return out


def _fill(kind, vm, o, a):
    """(items, room for items, bytes per slot) per container, in bulk: each read near
    the container, or for a dict near its keys object (per_window)."""
    L = o.L
    if kind == "list":
        n, alloc = vm.per_window(a, max(o.ob_size_offset, L.list.allocated) + 8,
                                 lambda v, x: (v.i64(x + U64(o.ob_size_offset))[0],
                                               v.i64(x + U64(L.list.allocated))[0]))
        return n, np.maximum(alloc, 0), 8
    if kind in ("set", "frozenset"):
        used, mask = vm.per_window(a, max(L.set.used, L.set.mask) + 8,
                                   lambda v, x: (v.i64(x + U64(L.set.used))[0],
                                                 v.i64(x + U64(L.set.mask))[0]))
        return used, mask + 1, L.setentry.size
    D = L.dict
    used, keys, values = vm.per_window(
        a, max(D.ma_used, D.ma_keys, D.ma_values) + 8,
        lambda v, x: (v.i64(x + U64(D.ma_used))[0], v.u64(x + U64(D.ma_keys))[0],
                      v.u64(x + U64(D.ma_values))[0]))
    K = L.dictkeys
    if o.version >= (3, 11):
        log2, kind = vm.per_window(keys, max(K.dk_log2_size, K.dk_kind) + 1,
                                   lambda v, x: (v.u8(x + U64(K.dk_log2_size))[0],
                                                 v.u8(x + U64(K.dk_kind))[0]))
        size = np.left_shift(1, np.minimum(log2, 40).astype(np.int64))
        # Keys of only str (DICT_KEYS_UNICODE, SPLIT) have entries without a hash.
        entry = np.where(kind == 0, L.dictentry.size, L.unicodeentry.size)
    else:
        size = vm.per_window(keys, K.dk_size + 8, lambda v, x: v.i64(x + U64(K.dk_size))[0])
        entry = np.full(len(a), L.dictentry.size)
    # A split dict (an instance's attributes) shares its keys: its own room is the
    # values array, one pointer per slot.
    slot = np.where(values != 0, 8, entry)
    return used, (size << 1) // 3, slot
