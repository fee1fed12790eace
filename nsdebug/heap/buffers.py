"""Memory objects own outside their own struct: numpy arrays' data, array.array's and
bytearray's storage, mmap's mapping.

During the walk (Buffers.apply, from the attribute and bytearray decoders) each owner's
buffer is added to its size, so `objects`, retained sizes, suspects, diff and the
snapshot count it; a row per owner (node, bytes, kind, data address) is kept for the
memory breakdown and the snapshot's backing-store nodes. A numpy array that does not
own its data (a view, a slice) counts nothing: its `base` field leads to the owner. An
object-dtype array's items are edges from the array that owns them.

numpy's struct layouts are known per major version and checked against the type
objects in the core (tp_basicsize of ndarray and dtype) and numpy.__version__; an
unknown version is named in a warning and its arrays count their struct alone (their
data then shows as native memory no object claims), never a guessed size.
"""

from __future__ import annotations

import numpy as np

from ..errors import NsdebugError
from .fields import ELEMENT
from .vec import U64, distinct, ramp

# Buffer kinds (the `kind` column of the rows).
KINDS = ("numpy data", "array.array storage", "bytearray storage", "mmap", "native blocks")
NUMPY, ARRAY, BYTEARRAY, MMAP, NATIVE = range(len(KINDS))

# PyArrayObject_fields, the same from numpy 1.22 (mem_handler) to 2.x.
ND_DATA, ND_NDIM, ND_DIMS, ND_STRIDES, ND_DESCR, ND_FLAGS, ND_BUFFER_INFO = \
    16, 24, 32, 40, 56, 64, 80
ND_BASICSIZE = 96
NPY_OWNDATA = 0x4
NPY_OBJECT = 17                     # type_num of dtype('O')
MAX_DIMS = 64
# PyArray_Descr: (tp_basicsize of numpy.dtype, offset of type_num, of elsize, its width)
DESCR = {1: (96, 28, 32, 4), 2: (88, 28, 40, 8)}
MAX_OBJECT_ITEMS = 1 << 24          # edges read from one object array at most
# array.array: ob_item, allocated, ob_descr (its itemsize an int at +4); mmap: data, size.
AR_ITEM, AR_ALLOC, AR_DESCR, AR_BASICSIZE = 24, 32, 40, 64
MM_DATA, MM_SIZE = 16, 24
MAX_BUFFER = 1 << 44                # larger than any buffer a core of this machine holds


class Buffers:
    """The buffer rules of one walk, over its WaveSink, and the rows found."""

    def __init__(self, sink, rt):
        self.s, self.rt, self.vm = sink, rt, sink.vm
        self._rules = {}                # type index -> rule (a method) or None
        self._numpy = None              # (ndarray type address, descr layout) or False
        self._unknown_ndarray = 0       # ndarray's type address when its layout is unknown
        self.warnings = []
        self.unknown_layout = set()     # type addresses whose buffers stay unattributed
        self.rows = {"node": [], "bytes": [], "kind": [], "data": []}

    # -- the walk's hooks ---------------------------------------------------------------
    def apply(self, addrs, idx, base, tix, sizes):
        """Add the buffers of the objects addrs[idx] (any mix of types) to their sizes."""
        for t in distinct(tix[idx]):
            rule = self.rule(int(t))
            if rule is not None:
                sel = idx[tix[idx] == t]
                rule(addrs, sel, base, sizes)

    def bytearrays(self, addrs, idx, base, alloc):
        """Rows for the storage of bytearrays (their decoder counted it in their size)."""
        data, _ = self.vm.u64(addrs[idx] + U64(self.s.L.bytearray.ob_bytes))
        keep = (alloc > 0) & (data != 0)
        self._row(base + idx[keep], alloc[keep], BYTEARRAY, data[keep])

    def native(self, nodes, nbytes):
        """Rows for the native blocks attributed to objects (nativemem.py)."""
        keep = nbytes > 0
        self._row(nodes[keep], nbytes[keep], NATIVE, np.zeros(int(keep.sum()), np.uint64))

    def table(self):
        """The rows as arrays: node (int64), bytes (uint64), kind (uint8), data (uint64)."""
        r = self.rows
        cat = lambda k, dt: np.concatenate(r[k]).astype(dt) if r[k] else np.zeros(0, dt)  # noqa: E731
        return {"node": cat("node", np.int64), "bytes": cat("bytes", np.uint64),
                "kind": cat("kind", np.uint8), "data": cat("data", np.uint64)}

    # -- rules ----------------------------------------------------------------------------
    def rule(self, t):
        """The buffer rule of type index t (a method), or None."""
        if t not in self._rules:
            self._rules[t] = self._make_rule(self.s.types[t])
        return self._rules[t]

    def _make_rule(self, info):
        if info.kind not in ("other", "instance"):
            return None
        if info.qualname == "array.array" and info.basicsize == AR_BASICSIZE:
            return self._array
        if info.qualname == "mmap.mmap" and info.basicsize >= MM_SIZE + 8:
            return self._mmap
        numpy = self._numpy_types()
        if numpy and self._derives_from(info.address, numpy[0]):
            # The data, shape and strides pointers, ndim, flags, _buffer_info: no objects
            # (base, descr and mem_handler are, and the body's reading finds them).
            self.s.refs.not_objects[info.address] = {
                ND_DATA, ND_NDIM, ND_DIMS, ND_STRIDES, ND_FLAGS, ND_BUFFER_INFO}
            return self._ndarray
        if self._unknown_ndarray and self._derives_from(info.address, self._unknown_ndarray):
            # An array of a numpy whose layout is not known: its data is left
            # unattributed (not claimed as native memory by reading its struct either).
            self.unknown_layout.add(info.address)
        return None

    def _derives_from(self, taddr, base):
        o, off = self.s.o, self.s.L.type.tp_base
        for _ in range(64):
            if taddr == base:
                return True
            try:
                taddr = o.ptr(taddr + off)
            except NsdebugError:
                return False
            if not taddr:
                return False
        return False

    def _numpy_types(self):
        """(ndarray's type address, the dtype layout) of the numpy in the core, or False
        when there is none or its version or layout is not one nsdebug knows."""
        if self._numpy is None:
            self._numpy = False
            try:
                self._numpy = self._find_numpy()
            except NsdebugError as e:
                self.warnings.append(f"numpy: {e}; its arrays' data is not attributed")
        return self._numpy

    def _find_numpy(self):
        rt, o = self.rt, self.s.o
        module = rt.module_object("numpy")
        if not module:
            return False
        md = o.ptr(module + self.s.L.module.md_dict)
        version = o.read_str(o.dict_get_str(md, "__version__") or 0, 40)
        ndarray = o.dict_get_str(md, "ndarray")
        dtype = o.dict_get_str(md, "dtype")
        if not ndarray or not dtype:
            raise NsdebugError(f"numpy {version} without ndarray or dtype in its module")
        self._unknown_ndarray = ndarray         # until its layout is known
        try:
            major, minor = (int(x) for x in version.split(".")[:2])
        except ValueError:
            raise NsdebugError(f"numpy version {version!r} not understood") from None
        layout = DESCR.get(major)
        nd_info, dt_info = o.type_info(ndarray), o.type_info(dtype)
        if layout is None or (major, minor) < (1, 22):
            raise NsdebugError(f"numpy {version}: a version whose layout nsdebug does not know")
        if nd_info.basicsize != ND_BASICSIZE or dt_info.basicsize != layout[0]:
            raise NsdebugError(f"numpy {version}: ndarray is {nd_info.basicsize} bytes and "
                               f"dtype {dt_info.basicsize}, not the layout nsdebug knows")
        self._unknown_ndarray = 0
        return ndarray, layout

    # -- per type -----------------------------------------------------------------------
    def _ndarray(self, addrs, sel, base, sizes):
        vm = self.vm
        _, (_, type_num_off, elsize_off, width) = self._numpy
        a = addrs[sel]
        data, ok1 = vm.u64(a + U64(ND_DATA))
        nd, ok2 = vm.u32(a + U64(ND_NDIM))
        dims_at, ok3 = vm.u64(a + U64(ND_DIMS))
        descr, ok4 = vm.u64(a + U64(ND_DESCR))
        flags, ok5 = vm.u32(a + U64(ND_FLAGS))
        nd = nd.astype(np.int64)
        # numpy's __sizeof__ counts the shape and strides arrays (malloc'd apart).
        shape_ok = ok2 & (nd >= 0) & (nd <= MAX_DIMS)
        sizes[sel[shape_ok]] += (16 * nd[shape_ok]).astype(np.uint64)
        owns = ok1 & ok2 & ok3 & ok4 & ok5 & ((flags & NPY_OWNDATA) != 0) & (data != 0)
        bad = owns & ((nd < 0) | (nd > MAX_DIMS))
        owns &= ~bad
        if width == 8:
            elsize, ok6 = vm.i64(descr[owns] + U64(elsize_off))
        else:
            elsize, ok6 = vm.u32(descr[owns] + U64(elsize_off))
        elsize = elsize.astype(np.int64)
        type_num, _ = vm.u32(descr[owns] + U64(type_num_off))
        # The product of each array's dimensions (no dimensions: one item).
        n = nd[owns]
        rep = np.repeat(np.arange(len(n)), n)
        dims, ok7 = vm.i64(dims_at[owns][rep] + U64(8) * ramp(n).astype(np.uint64))
        items = np.ones(len(n), dtype=np.float64)
        np.multiply.at(items, rep, np.maximum(dims, 0).astype(np.float64))
        dims_bad = np.zeros(len(n), np.bool_)
        np.logical_or.at(dims_bad, rep, (dims < 0) | ~ok7)
        nbytes = items * np.maximum(elsize, 0)
        sane = ok6 & ~dims_bad & (elsize >= 0) & (nbytes < MAX_BUFFER)
        nbytes = np.where(sane, nbytes, 0).astype(np.uint64)
        d = data[owns]
        # The data must be in the core, first byte and last (never a size invented
        # from a garbage length).
        has = nbytes > 0
        _, first_ok = vm.u8(d[has])
        _, last_ok = vm.u8(d[has] + nbytes[has] - U64(1))
        readable = np.ones(len(d), np.bool_)
        readable[has] = first_ok & last_ok
        good = sane & readable
        src = sel[owns]
        self.s.problem(addrs, sel, bad, "numpy array with a bad number of dimensions")
        self.s.problem(addrs, src, ~sane, "numpy array with a bad shape or item size")
        self.s.problem(addrs, src, sane & ~readable, "numpy array whose data is not in "
                       "the core")
        sizes[src[good]] += nbytes[good]
        self._row(base + src[good], nbytes[good], NUMPY, d[good])
        objects = good & (type_num == NPY_OBJECT) & (elsize == 8)
        for k in np.nonzero(objects)[0].tolist():
            count = min(int(nbytes[k]) // 8, MAX_OBJECT_ITEMS)
            items, ok = vm.u64(d[k] + U64(8) * np.arange(count, dtype=np.uint64))
            node = base + int(src[k])
            self.s.emit(np.full(int(ok.sum()), node), items[ok], ELEMENT,
                        np.arange(count, dtype=np.int32)[ok])

    def _array(self, addrs, sel, base, sizes):
        vm = self.vm
        a = addrs[sel]
        data, ok1 = vm.u64(a + U64(AR_ITEM))
        alloc, ok2 = vm.i64(a + U64(AR_ALLOC))
        descr, ok3 = vm.u64(a + U64(AR_DESCR))
        # The descriptors are static data of the module, which a core may leave to the
        # file (read-only in a non-PIE build): read through the layered memory.
        itemsize = np.zeros(len(descr), np.int64)
        ok4 = np.zeros(len(descr), np.bool_)
        for d in distinct(descr[ok3]).tolist():
            try:
                n = int.from_bytes(self.rt.memory.read(d + 4, 4), "little")
            except NsdebugError:
                continue
            itemsize[descr == d] = n
            ok4[descr == d] = True
        ok = ok1 & ok2 & ok3 & ok4 & (alloc >= 0) & (itemsize > 0) & (itemsize <= 16)
        nbytes = np.where(ok, alloc * itemsize, 0)
        ok &= nbytes < MAX_BUFFER
        self.s.problem(addrs, sel, ~ok & ok1, "array.array with a bad length or item size")
        keep = ok & (nbytes > 0) & (data != 0)
        sizes[sel[keep]] += nbytes[keep].astype(np.uint64)
        self._row(base + sel[keep], nbytes[keep], ARRAY, data[keep])

    def _mmap(self, addrs, sel, base, sizes):
        vm = self.vm
        a = addrs[sel]
        data, ok1 = vm.u64(a + U64(MM_DATA))
        size, ok2 = vm.i64(a + U64(MM_SIZE))
        ok = ok1 & ok2 & (size >= 0) & (size < MAX_BUFFER)
        self.s.problem(addrs, sel, ~ok & ok1, "mmap with a bad size")
        keep = ok & (size > 0) & (data != 0)
        sizes[sel[keep]] += size[keep].astype(np.uint64)
        self._row(base + sel[keep], size[keep], MMAP, data[keep])

    def _row(self, nodes, nbytes, kind, data):
        if len(nodes):
            r = self.rows
            r["node"].append(np.asarray(nodes, np.int64))
            r["bytes"].append(np.asarray(nbytes, np.uint64))
            r["kind"].append(np.full(len(nodes), kind, np.uint8))
            r["data"].append(np.asarray(data, np.uint64))
