"""Own size of an object as sys.getsizeof computes it, per type and version."""

from __future__ import annotations

from .flags import MAX_OBJECT_SIZE, TPFLAGS_HAVE_GC, TPFLAGS_MANAGED_DICT, TPFLAGS_PREHEADER
from .objects import InvalidObject


def usable_fraction(n):
    return (n << 1) // 3


class SizeOf:
    """getsizeof() for objects read through an ObjectReader."""

    def __init__(self, objects):
        self.o = objects
        self.L = objects.L
        self.gc_head = self.L.gchead.size or 16

    def is_gc(self, info):
        if not info.flags & TPFLAGS_HAVE_GC:
            return False
        if info.kind == "type":
            # type objects: only heap types are GC-tracked (type_is_gc).
            return True
        return True

    def preheader(self, info, addr):
        """Bytes before the object that getsizeof counts: the GC header, and from 3.11
        the managed dict/values (3.12: and weakref) words (_PyType_PreHeaderSize)."""
        n = self.gc_head if self.is_gc(info) else 0
        v = self.o.version
        if v >= (3, 12) and info.flags & TPFLAGS_PREHEADER:
            n += 16
        elif (3, 11) <= v < (3, 12) and info.flags & TPFLAGS_MANAGED_DICT:
            n += 16
        return n

    def getsizeof(self, addr, info=None):
        """What sys.getsizeof(obj) returns."""
        info = info or self.o.info(addr)
        return self.own_size(addr, info) + self._included_objects(addr, info)

    def own_size(self, addr, info=None):
        """The memory of this object alone: getsizeof less any other object it counts
        that the heap has as a node of its own (so no byte is counted twice)."""
        info = info or self.o.info(addr)
        size = self._sizeof(addr, info)
        if not 0 <= size < MAX_OBJECT_SIZE:
            # A length field of garbage (a corrupt core, or not an object after all).
            raise InvalidObject(addr, f"implausible size {size}")
        if info.kind == "type" and not (self.o.type_info(addr).is_heap):
            # A static type is not GC-tracked: tp_is_gc says so.
            return size
        return size + self.preheader(info, addr)

    def _included_objects(self, addr, info):
        if info.kind == "bytearray" and self.L.bytearray.ob_bytes_object is not None:
            # 3.15: a bytearray keeps its data in a bytes object, which __sizeof__ counts.
            data = self.o.ptr(addr + self.L.bytearray.ob_bytes_object)
            if data:
                return self.getsizeof(data)
        return 0

    def _sizeof(self, addr, info):
        o, L, k = self.o, self.L, info.kind
        if k in ("int", "bool"):
            n = o.int_digits(addr)
            if o.version >= (3, 12):
                n = max(n, 1)
            return L.long.ob_digit + 4 * n
        if k == "str":
            return self._str_size(addr)
        if k == "list":
            return L.list.size + 8 * o.ssize(addr + L.list.allocated)
        if k == "bytearray":
            if L.bytearray.ob_bytes_object is not None:
                return info.basicsize           # 3.15: the data is a bytes object's
            return L.bytearray.size + o.ssize(addr + L.bytearray.ob_alloc)
        if k == "dict":
            return self._dict_size(addr, info)
        if k in ("generator", "coroutine", "async_generator") and L.gen.gi_iframe is not None:
            return self._gen_size(addr)
        if k == "frame":
            return self._frame_size(addr)
        if k in ("set", "frozenset"):
            S = L.set
            table = o.ptr(addr + S.table)
            extra = 0
            if table != addr + S.smalltable:
                extra = (o.ssize(addr + S.mask) + 1) * L.setentry.size
            return info.basicsize + extra
        size = info.basicsize
        if info.itemsize:
            size += abs(o.ssize(addr + o.ob_size_offset)) * info.itemsize
        return size

    def _gen_size(self, addr):
        """gen_sizeof: the generator with its embedded frame (3.11+)."""
        L = self.L
        code = self.o.stackref(addr + L.gen.gi_iframe + L.iframe.code)
        return L.gen.gi_iframe + L.iframe.localsplus + 8 * self._frame_slots(code)

    def _frame_slots(self, code):
        """Words of an interpreter frame after its header, for a code object (3.11+)."""
        o, L = self.o, self.L
        i32 = lambda off: int.from_bytes(o.mem.read(code + off, 4), "little", signed=True)  # noqa: E731
        if o.version >= (3, 12):
            # _PyFrame_NumSlotsForCodeObject: co_framesize less the frame's own words.
            return i32(L.code.co_framesize) - (L.iframe.size - 1) // 8
        return i32(L.code.co_nlocalsplus) + i32(L.code.co_stacksize)    # 3.11

    def _frame_size(self, addr):
        """frame_sizeof. A frame object has no ob_size: PyObject_HEAD only (3.11+)."""
        o, L = self.o, self.L
        F = L.frameobject
        if F.f_frame_data is not None:                       # 3.11+
            iframe = o.ptr(addr + F.f_frame)
            code = o.stackref(iframe + L.iframe.code)
            return F.f_frame_data + L.iframe.localsplus + 8 * self._frame_slots(code)
        # 3.8-3.10: the frame's extra words, less the one f_localsplus[1] declares.
        code = o.ptr(addr + F.f_code)
        i32 = lambda off: int.from_bytes(o.mem.read(code + off, 4), "little", signed=True)  # noqa: E731
        extras = i32(L.code.co_stacksize) + i32(L.code.co_nlocals) + \
            o.tuple_size(o.ptr(code + L.code.co_cellvars)) + \
            o.tuple_size(o.ptr(code + L.code.co_freevars))
        return F.size + (extras - 1) * 8

    def _str_size(self, addr):
        o, L = self.o, self.L
        state = int.from_bytes(o.mem.read(addr + L.ascii.state, 4), "little")
        length = o.str_length(addr)
        kind = (state >> 2) & 7
        compact, is_ascii = (state >> 5) & 1, (state >> 6) & 1
        if compact and is_ascii:
            size = L.ascii.size + length + 1
        elif compact:
            size = L.compact.size + (length + 1) * kind
        else:
            size = L.unicode.size + (length + 1) * kind
        if not is_ascii and L.compact.utf8 is not None:
            utf8 = o.ptr(addr + L.compact.utf8)
            if utf8:
                size += o.ssize(addr + L.compact.utf8_length) + 1
        return size

    def _dict_size(self, addr, info):
        o, L = self.o, self.L
        K = L.dictkeys
        keys = o.ptr(addr + L.dict.ma_keys)
        values = o.ptr(addr + L.dict.ma_values)
        res = info.basicsize
        if o.version >= (3, 11):
            log2 = o.u8(keys + K.dk_log2_size)
            kind = o.u8(keys + K.dk_kind)
            es = L.dictentry.size if kind == 0 else L.unicodeentry.size
            keys_size = L.dictkeys.size + (1 << o.u8(keys + K.dk_log2_index_bytes)) + \
                usable_fraction(1 << log2) * es
            if values:
                usable = o.ssize(keys + K.dk_nentries) + o.ssize(keys + K.dk_usable)
                res += usable * 8
        else:
            size = o.ssize(keys + K.dk_size)
            ixsize = 1 if size <= 0xFF else 2 if size <= 0xFFFF else 4 if size <= 0xFFFFFFFF \
                else 8
            usable = usable_fraction(size)
            keys_size = L.dictkeys.size + ixsize * size + L.dictentry.size * usable
            if values:
                res += usable * 8
        if o.ssize(keys + K.dk_refcnt) == 1:
            res += keys_size
        return res
