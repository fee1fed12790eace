"""Typed views of PyObjects in a core: type names, decoded values, and safe bounded previews.

Every pointer may be garbage: each read may raise FaultError or InvalidObject,
and `preview()` turns either into `<invalid 0x...: why>`.
"""

from __future__ import annotations

import struct

from ..bytescan import aligned_finds
from ..errors import FaultError, LayoutMissing, NsdebugError
from ..record import record

from .flags import (TPFLAGS_BASE_EXC_SUBCLASS, TPFLAGS_BYTES_SUBCLASS, TPFLAGS_DICT_SUBCLASS,
                    TPFLAGS_HEAPTYPE, TPFLAGS_INLINE_VALUES, TPFLAGS_LIST_SUBCLASS,
                    TPFLAGS_LONG_SUBCLASS, TPFLAGS_MANAGED_DICT, TPFLAGS_READY,
                    TPFLAGS_TUPLE_SUBCLASS, TPFLAGS_TYPE_SUBCLASS, TPFLAGS_UNICODE_SUBCLASS)

_SUBCLASS_KINDS = [
    (TPFLAGS_LONG_SUBCLASS, "int"), (TPFLAGS_LIST_SUBCLASS, "list"),
    (TPFLAGS_TUPLE_SUBCLASS, "tuple"), (TPFLAGS_BYTES_SUBCLASS, "bytes"),
    (TPFLAGS_UNICODE_SUBCLASS, "str"), (TPFLAGS_DICT_SUBCLASS, "dict"),
    (TPFLAGS_BASE_EXC_SUBCLASS, "exception"), (TPFLAGS_TYPE_SUBCLASS, "type"),
]

# Exact built-in types recognised by tp_name (static types only).
_BUILTIN_KINDS = {
    "NoneType": "none", "bool": "bool", "float": "float", "complex": "complex",
    "bytearray": "bytearray", "set": "set", "frozenset": "frozenset", "range": "range",
    "slice": "slice", "function": "function", "method": "method",
    "builtin_function_or_method": "cfunction", "module": "module", "code": "code",
    "cell": "cell", "generator": "generator", "coroutine": "coroutine",
    "async_generator": "async_generator", "frame": "frame", "weakref": "weakref",
    "weakref.ReferenceType": "weakref", "weakproxy": "weakproxy",
    "weakref.ProxyType": "weakproxy", "ellipsis": "ellipsis",
    "NotImplementedType": "notimplemented", "mappingproxy": "mappingproxy",
    "member_descriptor": "descriptor", "method_descriptor": "descriptor",
    "getset_descriptor": "descriptor", "wrapper_descriptor": "descriptor",
    "classmethod_descriptor": "descriptor", "method-wrapper": "methodwrapper",
    "<dummy key> type": "dummy",
    "frozendict": "dict",                 # 3.15: a dict's layout and a cached hash
    "staticmethod": "staticmethod", "classmethod": "classmethod", "property": "property",
}

# What a layout from _Py_DebugOffsets alone can preview; other kinds are shown by type.
DEBUG_OFFSETS_KINDS = {"none", "bool", "int", "float", "str", "bytes", "tuple", "list",
                       "code", "type", "ellipsis", "notimplemented"}

MAX_TYPE_NAME = 256
MAX_CONTAINER = 1 << 26          # a larger size than this is garbage, not data
MAX_INT_DIGITS = 1 << 16
MAX_MEMBERS = 1024
T_OBJECT, T_OBJECT_EX = 6, 16   # PyMemberDef types that hold an object pointer

_D = struct.Struct("<d")
_DD = struct.Struct("<dd")
_Q = struct.Struct("<Q")
_ABSENT = object()      # a dict probe's answer: the key is surely not there
_q = struct.Struct("<q")


class InvalidObject(NsdebugError):
    """Memory at an address does not hold a sane object of the expected kind."""

    def __init__(self, address, why):
        super().__init__(f"invalid object at {address:#x}: {why}")
        self.address = address
        self.why = why


@record
class TypeInfo:
    address: int
    name: str            # tp_name as stored
    qualname: str        # module-qualified for classes: "pkg.mod.Class"
    flags: int
    basicsize: int
    itemsize: int
    dictoffset: int
    kind: str            # how instances are decoded: "int", "dict", "instance", ...
    is_heap: bool


@record
class Preview:
    """Bounds for preview(): nesting depth, items per container, characters per string;
    redact: values under dict keys that look secret (token, password...) not shown."""
    depth: int = 2
    items: int = 10
    string: int = 80
    redact: bool = False


class ObjectReader:
    """Reads Python objects from an AddressSpace using one version's Layout."""

    def __init__(self, memory, layout):
        self.mem = memory
        self.L = layout
        self.version = layout.version
        self._types: dict[int, TypeInfo] = {}
        self._bad_types: dict[int, str] = {}    # addresses that are not types: why not
        self._str_cache: dict[int, str] = {}
        self._members: dict[int, list] = {}
        self._interned: dict[str, int] = {}      # name -> a str object with that text
        self.str_hash = None      # hash(str) as the process computes it, when known
        L = layout
        self._ob_type = L.object.ob_type if L.object.ob_type is not None else 8
        self.ob_size_offset = L.varobject.ob_size if L.varobject.ob_size is not None else 16
        self._managed_dict_at = -3 * 8
        self._values_at = -4 * 8      # 3.11: PyDictValues* before the managed dict
        # 3.14 made frame slots tagged references (_PyStackRef): the low bits are tags.
        self.tagged_refs = bool(layout.stackref.present)
        self.py311 = self.version >= (3, 11)
        self.py312 = self.version >= (3, 12)
        self.py313 = self.version >= (3, 13)

    # -- raw helpers ---------------------------------------------------------
    def ptr(self, addr):
        return _Q.unpack(self.mem.read(addr, 8))[0]

    def stackref(self, addr):
        """The object in a frame slot: a plain PyObject* before 3.14, a _PyStackRef after
        (low bit set for deferred or immortal references; both bits for a tagged int,
        which is not an object)."""
        return self.ref_value(self.ptr(addr))

    def ref_value(self, bits):
        if not self.tagged_refs:
            return bits
        return 0 if bits & 3 == 3 else bits & ~3

    def ssize(self, addr):
        return _q.unpack(self.mem.read(addr, 8))[0]

    def u8(self, addr):
        return self.mem.read(addr, 1)[0]

    def type_of(self, addr):
        if addr == 0:
            raise InvalidObject(addr, "NULL")
        return self.ptr(addr + self._ob_type)

    def refcount(self, addr):
        return self.ssize(addr)

    def type_info(self, taddr):
        info = self._types.get(taddr)
        if info is None:
            why = self._bad_types.get(taddr)
            if why is not None:
                # A fresh exception each time: a cached one would carry the traceback of
                # its last raise, whose frames keep the heap walk's arrays alive.
                raise InvalidObject(taddr, why)
            try:
                info = self._types[taddr] = self._read_type(taddr)
            except InvalidObject as e:
                if len(self._bad_types) < 1 << 16:
                    self._bad_types[taddr] = e.why
                raise
        return info

    def info(self, addr):
        """TypeInfo of the object at addr (validating the type pointer)."""
        return self.type_info(self.type_of(addr))

    def _read_type(self, taddr):
        T = self.L.type
        if taddr == 0 or taddr & 7:
            raise InvalidObject(taddr, "bad type pointer")
        try:
            flags = self.ptr(taddr + T.tp_flags)
            name_ptr = self.ptr(taddr + T.tp_name)
            raw = self.mem.cstring(name_ptr, MAX_TYPE_NAME)
            # A layout from _Py_DebugOffsets alone may lack these (0: unknown).
            basicsize = self.ssize(taddr + T.tp_basicsize) if T.tp_basicsize is not None \
                else None
            itemsize = self.ssize(taddr + T.tp_itemsize) if T.tp_itemsize is not None else 0
            dictoffset = self.ssize(taddr + T.tp_dictoffset) \
                if T.tp_dictoffset is not None else 0
        except FaultError as e:
            raise InvalidObject(taddr, f"type unreadable ({e})") from None
        # tp_flags uses 32 bits; every object has a header of two words; no item is
        # larger than a complex. Garbage that passes the READY bit fails one of these.
        if not flags & TPFLAGS_READY or not raw or flags >> 32 or \
                basicsize is not None and not 16 <= basicsize < 1 << 24 or \
                not 0 <= itemsize < 1 << 12 or not -(1 << 24) < dictoffset < 1 << 24:
            raise InvalidObject(taddr, "not a type object")
        basicsize = basicsize or 0
        try:
            name = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidObject(taddr, "type name is not text") from None
        if not name.isprintable():
            raise InvalidObject(taddr, "type name is not text")
        is_heap = bool(flags & TPFLAGS_HEAPTYPE)
        kind = None if is_heap else _BUILTIN_KINDS.get(name)
        if name == "type" and not is_heap:
            kind = "type"
        if kind is None:
            for bit, k in _SUBCLASS_KINDS:
                if flags & bit:
                    kind = k
                    break
        if kind is None and not is_heap and name in ("object",):
            kind = "object"
        if kind is None:
            kind = "instance" if is_heap else "other"
        qualname = name
        if is_heap:
            qualname = self._heap_type_qualname(taddr, name)
        return TypeInfo(taddr, name, qualname, flags, basicsize, itemsize, dictoffset, kind,
                        is_heap)

    def _heap_type_qualname(self, taddr, name):
        H = self.L.heaptype
        qual = name
        if self.L.type.tp_dict is None:
            return name                  # a layout from _Py_DebugOffsets alone
        try:
            if H.ht_qualname is not None:
                qual = self.read_str(self.ptr(taddr + H.ht_qualname), 256)
        except NsdebugError:
            pass
        module = None
        try:
            tp_dict = self.ptr(taddr + self.L.type.tp_dict)
            if tp_dict:
                mod = self.dict_get_str(tp_dict, "__module__")
                if mod:
                    module = self.read_str(mod, 256)
        except NsdebugError:
            pass
        if module and module != "builtins":
            return f"{module}.{qual}"
        return qual

    def types_read(self):
        """The TypeInfo of every type read so far."""
        return list(self._types.values())

    def kind(self, addr):
        return self.info(addr).kind

    # -- scalars ---------------------------------------------------------------
    def read_str(self, addr, limit=None):
        """The value of a str object (at most `limit` characters when given)."""
        if limit is None and addr in self._str_cache:
            return self._str_cache[addr]
        A = self.L.ascii
        state = struct.unpack("<I", self.mem.read(addr + A.state, 4))[0]
        length = self.ssize(addr + A.length)
        kind = (state >> 2) & 7
        compact = (state >> 5) & 1
        is_ascii = (state >> 6) & 1
        if kind not in (1, 2, 4) or not 0 <= length < 1 << 40:
            raise InvalidObject(addr, f"str with kind {kind} and length {length}")
        if not self.py312 and not (state >> 7) & 1:
            raise InvalidObject(addr, "str not ready (legacy wstr string)")
        if compact and is_ascii:
            data = addr + A.size
        elif compact:
            if self.L.compact.size is None:
                raise LayoutMissing("a non-ASCII str needs the compact unicode layout")
            data = addr + self.L.compact.size
        else:
            data = self.ptr(addr + self.L.unicode.data)
        n = length if limit is None else min(length, limit)
        raw = self.mem.read(data, n * kind)
        codec = {1: "latin-1", 2: "utf-16-le", 4: "utf-32-le"}[kind]
        try:
            text = raw.decode(codec, "surrogatepass" if kind != 1 else "strict")
        except UnicodeDecodeError:
            # A UCS-4 unit past U+10FFFF: not a str CPython could have made.
            raise InvalidObject(addr, f"str whose {codec} data is not text") from None
        if limit is None and length < 256:
            self._str_cache[addr] = text
        return text

    def str_length(self, addr):
        return self.ssize(addr + self.L.ascii.length)

    def read_int(self, addr):
        if self.py312:
            tag = self.ptr(addr + self.L.long.lv_tag)
            ndigits = tag >> 3
            sign = 1 - (tag & 3)
        else:
            size = self.ssize(addr + self.ob_size_offset)
            ndigits = abs(size)
            sign = -1 if size < 0 else 1
        if ndigits > MAX_INT_DIGITS:
            raise InvalidObject(addr, f"int with {ndigits} digits")
        if sign not in (-1, 0, 1):
            raise InvalidObject(addr, "int with a bad sign")
        digits = struct.unpack(f"<{ndigits}I", self.mem.read(addr + self.L.long.ob_digit,
                                                            4 * ndigits))
        value = 0
        for d in reversed(digits):
            value = (value << 30) | (d & 0x3FFFFFFF)
        return -value if sign < 0 else value

    def int_digits(self, addr):
        if self.py312:
            return self.ptr(addr + self.L.long.lv_tag) >> 3
        return abs(self.ssize(addr + self.ob_size_offset))

    def read_float(self, addr):
        return _D.unpack(self.mem.read(addr + self.L.float.ob_fval, 8))[0]

    def read_complex(self, addr):
        re_, im = _DD.unpack(self.mem.read(addr + self.L.complex.cval, 16))
        return complex(re_, im)

    def read_bytes(self, addr, limit=None):
        size = self.var_size(addr)
        n = size if limit is None else min(size, limit)
        return self.mem.read(addr + self.L.bytes.ob_sval, n)

    def read_bytearray(self, addr, limit=None):
        size = self.var_size(addr)
        n = size if limit is None else min(size, limit)
        start = self.ptr(addr + self.L.bytearray.ob_start)
        return self.mem.read(start, n) if n else b""

    def var_size(self, addr):
        size = self.ssize(addr + self.ob_size_offset)
        if not 0 <= size < 1 << 40:
            raise InvalidObject(addr, f"size {size}")
        return size

    # -- containers ------------------------------------------------------------
    def _check_count(self, addr, n, what):
        if not 0 <= n <= MAX_CONTAINER:
            raise InvalidObject(addr, f"{what} with {n} items")
        return n

    def tuple_items(self, addr, limit=None):
        n = self._check_count(addr, self.ssize(addr + self.ob_size_offset), "tuple")
        take = n if limit is None else min(n, limit)
        raw = self.mem.read(addr + self.L.tuple.ob_item, 8 * take)
        return list(struct.unpack(f"<{take}Q", raw))

    def tuple_size(self, addr):
        return self._check_count(addr, self.ssize(addr + self.ob_size_offset), "tuple")

    def list_items(self, addr, limit=None):
        n = self._check_count(addr, self.ssize(addr + self.ob_size_offset), "list")
        take = n if limit is None else min(n, limit)
        if take == 0:
            return []
        items = self.ptr(addr + self.L.list.ob_item)
        return list(struct.unpack(f"<{take}Q", self.mem.read(items, 8 * take)))

    def list_size(self, addr):
        return self._check_count(addr, self.ssize(addr + self.ob_size_offset), "list")

    def dict_size(self, addr):
        return self._check_count(addr, self.ssize(addr + self.L.dict.ma_used), "dict")

    def need_table(self, what):
        """LayoutMissing unless the layout came from a table (not debug offsets alone)."""
        if not self.L.complete:
            raise LayoutMissing(f"{what} needs a layout table: {self.L.missing}")

    def dict_items(self, addr, limit=None):
        """[(key, value)] of a dict in insertion order."""
        self.need_table("reading a dict")
        D = self.L.dict
        keys = self.ptr(addr + D.ma_keys)
        values = self.ptr(addr + D.ma_values)
        return self.keys_items(keys, values, limit, owner=addr)

    def keys_items(self, keys, values, limit=None, owner=0):
        """Items of a PyDictKeysObject, with the split values array when given."""
        entries, esize, key_off, val_off, nentries = self._keys_table(keys, owner)
        out = []
        if values:
            order = self._split_order(values, nentries)
            vals_at = values + (self.L.dictvalues.values or 0)
            for ix in order:
                if ix >= nentries:
                    continue
                key = self.ptr(entries + ix * esize + key_off)
                value = self.ptr(vals_at + 8 * ix)
                if key and value:
                    out.append((key, value))
                    if limit is not None and len(out) >= limit:
                        break
            return out
        if esize % 8 or key_off % 8 or val_off % 8:
            raise InvalidObject(owner, "dict entries not made of 8-byte words (layout)")
        raw = self.mem.read(entries, nentries * esize) if nentries else b""
        # Every entry's key and value words at once (tens of thousands in the interned
        # strings' dict), through a strided view of the bytes.
        words = memoryview(raw).cast("Q")
        step = esize // 8
        out = [(k, v) for k, v in zip(words[key_off // 8::step], words[val_off // 8::step])
               if k and v]
        return out if limit is None else out[:limit]

    def _value_of_key(self, addr, key):
        """The value a combined dict holds under the key object at `key`, else None."""
        return self._entry_word(addr, key, "key") or None

    def key_of_value(self, addr, value):
        """The key object a combined dict holds `value` under (the first), else 0."""
        return self._entry_word(addr, value, "value")

    def _entry_word(self, addr, word, field):
        """In a combined dict, the other word of the first entry whose `field` ("key"
        or "value") is `word`, found by the word's bytes in the entries (no entry
        decoded); 0 when none, or for a split dict (the general path)."""
        D = self.L.dict
        if self.ptr(addr + D.ma_values):
            return 0
        entries, esize, key_off, val_off, nentries = self._keys_table(
            self.ptr(addr + D.ma_keys), addr)
        at, other = (key_off, val_off) if field == "key" else (val_off, key_off)
        raw = self.mem.read(entries, nentries * esize) if nentries else b""
        for pos in aligned_finds(raw, _Q.pack(word), esize, at):
            found = _Q.unpack_from(raw, pos - at + other)[0]
            if found:
                return found
        return 0

    def _keys_table(self, keys, owner):
        """(entries address, entry size, key and value offsets, entry count) of a
        PyDictKeysObject, checked."""
        return self._keys_geometry(keys, owner)[:5]

    def _keys_geometry(self, keys, owner):
        """_keys_table's five, then the index's slot count and width in bytes, and
        whether the entries keep each key's hash."""
        K = self.L.dictkeys
        if keys == 0:
            raise InvalidObject(owner, "dict without keys")
        nentries = self.ssize(keys + K.dk_nentries)
        if self.py311:
            log2_size = self.u8(keys + K.dk_log2_size)
            log2_index_bytes = self.u8(keys + K.dk_log2_index_bytes)
            kind = self.u8(keys + K.dk_kind)
            if log2_size > 40 or log2_index_bytes > 43:
                raise InvalidObject(owner, f"dict keys with log2 size {log2_size}")
            size = 1 << log2_size
            width = 1 << max(log2_index_bytes - log2_size, 0)
            hashed = kind == 0
            entries = keys + K.dk_indices + (1 << log2_index_bytes)
            esize = self.L.dictentry.size if kind == 0 else self.L.unicodeentry.size
            key_off = self.L.dictentry.me_key if kind == 0 else self.L.unicodeentry.me_key
            val_off = self.L.dictentry.me_value if kind == 0 else self.L.unicodeentry.me_value
        else:
            size = self.ssize(keys + K.dk_size)
            if not 0 < size <= 1 << 40 or size & (size - 1):
                raise InvalidObject(owner, f"dict keys with size {size}")
            width = 1 if size <= 0xFF else 2 if size <= 0xFFFF else 4 if size <= 0xFFFFFFFF else 8
            entries = keys + K.dk_indices + size * width
            esize, key_off, val_off = (self.L.dictentry.size, self.L.dictentry.me_key,
                                       self.L.dictentry.me_value)
            hashed = True
        if not 0 <= nentries <= size:
            raise InvalidObject(owner, f"dict with {nentries} entries in a table of {size}")
        return entries, esize, key_off, val_off, nentries, size, width, hashed

    def _split_order(self, values, nentries):
        """Insertion order of a split dict's values (entry indexes)."""
        if self.py313:
            V = self.L.dictvalues
            capacity = self.u8(values + V.capacity)
            used = self.u8(values + V.used)
            order_at = values + V.values + 8 * capacity
            return list(self.mem.read(order_at, used)) if used else []
        if self.py311:
            used = self.u8(values - 2)
            if used == 0:
                return []
            raw = self.mem.read(values - 2 - used, used)
            return list(reversed(raw))
        return list(range(nentries))

    def dict_get_str(self, addr, name):
        """The value stored under a str key in a dict, or None. Keys such as "__module__"
        are interned: once one is found, the same key object is looked for by address
        first (no text read per key), then by text."""
        self.need_table("reading a dict")
        known = self._interned.get(name)
        if known is not None:
            value = self._value_of_key(addr, known)
            if value is not None:
                return value
        if self.str_hash is not None:
            value = self._probe_str(addr, name)
            if value is _ABSENT:
                return None
            if value is not None:
                return value
        items = self.dict_items(addr)
        for k, v in items:
            try:
                if self.type_info(self.type_of(k)).kind == "str" and self.read_str(k) == name:
                    if len(self._interned) < 4096:
                        self._interned.setdefault(name, k)
                    return v
            except NsdebugError:
                continue
        return None

    def _probe_str(self, addr, name):
        """The value under `name` found as CPython finds it: the slots its hash leads
        to, reading only the keys met there. _ABSENT when an empty slot ends the probe
        and this hash has already found a key in the process (so it is the process's
        own); None when not found this way (the scan decides then: a build hashing
        otherwise finds nothing here, never a wrong key)."""
        try:
            h = self.str_hash(name)
            return None if h is None else self._probe(addr, name, h)
        except NsdebugError:
            return None

    def _probe(self, addr, name, h):
        D = self.L.dict
        keys, values = self.ptr(addr + D.ma_keys), self.ptr(addr + D.ma_values)
        entries, esize, key_off, val_off, nentries, size, width, hashed = \
            self._keys_geometry(keys, addr)
        indices = keys + self.L.dictkeys.dk_indices
        signed = {1: "b", 2: "h", 4: "i", 8: "q"}.get(width)
        if signed is None:
            return None
        mask, perturb = size - 1, h & ((1 << 64) - 1)
        i = perturb & mask
        for _ in range(size):
            ix = struct.unpack("<" + signed, self.mem.read(indices + i * width, width))[0]
            if ix == -1:                 # DKIX_EMPTY: the key is not there
                return _ABSENT if self.str_hash.confirmed else None
            if 0 <= ix < nentries:
                at = entries + ix * esize
                key = self.ptr(at + key_off)
                if key and (not hashed or self.ssize(at + self.L.dictentry.me_hash) == h) and \
                        self.ssize(key + self.L.ascii.hash) == h and \
                        self.kind(key) == "str" and self.read_str(key) == name:
                    self.str_hash.confirmed = True
                    if values:
                        return self.ptr(values + (self.L.dictvalues.values or 0) + 8 * ix)
                    return self.ptr(at + val_off)
            perturb >>= 5
            i = (i * 5 + perturb + 1) & mask
        return None

    def set_items(self, addr, limit=None):
        self.need_table("reading a set")
        S = self.L.set
        mask = self.ssize(addr + S.mask)
        if not 0 <= mask < 1 << 32 or (mask + 1) & mask:
            raise InvalidObject(addr, f"set with mask {mask}")
        table = self.ptr(addr + S.table)
        esize = self.L.setentry.size
        raw = self.mem.read(table, (mask + 1) * esize)
        out = []
        key_off, hash_off = self.L.setentry.key, self.L.setentry.hash
        for i in range(mask + 1):
            key = _Q.unpack_from(raw, i * esize + key_off)[0]
            if key == 0:
                continue
            # A deleted entry keeps the dummy key with hash -1, which no live key has.
            if _q.unpack_from(raw, i * esize + hash_off)[0] == -1:
                continue
            out.append(key)
            if limit is not None and len(out) >= limit:
                break
        return out

    def set_size(self, addr):
        return self._check_count(addr, self.ssize(addr + self.L.set.used), "set")

    # -- instances ---------------------------------------------------------------
    def instance_dict(self, addr, info=None):
        """(dict address or None, [(key, value)] or None): where attributes live."""
        self.need_table("reading attributes")
        info = info or self.info(addr)
        flags = info.flags
        if self.py313 and flags & TPFLAGS_INLINE_VALUES:
            d = self.ptr(addr + self._managed_dict_at)
            if d:
                return d, None
            values = addr + info.basicsize
            V = self.L.dictvalues
            head = self.mem.read(values, 4)
            capacity, used, embedded, valid = (head[V.capacity], head[V.used],
                                               head[V.embedded], head[V.valid])
            if valid not in (0, 1) or embedded not in (0, 1) or used > capacity:
                raise InvalidObject(addr, "inline values with a bad header")
            if valid:
                keys = self._cached_keys(info)
                return None, self.keys_items(keys, values, owner=addr)
            return None, []
        if self.py311 and flags & TPFLAGS_MANAGED_DICT:
            word = self.ptr(addr + self._managed_dict_at)
            if self.py313:
                return (word or None), ([] if not word else None)
            if self.py312:
                if word & 1:
                    # Tagged: the values pointer minus one (3.12 _PyDictOrValues_GetValues).
                    return None, self.keys_items(self._cached_keys(info), word + 1, owner=addr)
                return (word or None), ([] if not word else None)
            if word:
                return word, None
            values = self.ptr(addr + self._values_at)
            if values:
                return None, self.keys_items(self._cached_keys(info), values, owner=addr)
            return None, []
        off = info.dictoffset
        if off == 0:
            return None, None
        if off < 0:
            size = abs(self.ssize(addr + self.ob_size_offset))
            off = info.basicsize + size * info.itemsize + off
            off = (off + 7) & ~7
        d = self.ptr(addr + off)
        return (d or None), ([] if not d else None)

    def _cached_keys(self, info):
        keys = self.ptr(info.address + self.L.heaptype.ht_cached_keys)
        if not keys:
            raise InvalidObject(info.address, "split values without cached keys")
        return keys

    def attributes(self, addr, info=None):
        """[(name object, value)] of an instance's attributes (its __dict__ or values)."""
        d, items = self.instance_dict(addr, info)
        if d is not None:
            return self.dict_items(d)
        return items or []

    def slot_members(self, info):
        """[(name, offset)] of the object members of a type and its bases: a class's
        __slots__, and a C type's own fields that it exposes as members (OSError.errno,
        functools.partial.func ...). Cached per type."""
        self.need_table("reading __slots__")
        found = self._members.get(info.address)
        if found is None:
            found = self._members[info.address] = self._read_members(info)
        return found

    def _read_members(self, info):
        out = []
        seen = set()
        taddr = info.address
        M = self.L.memberdef
        for _ in range(64):
            if not taddr or taddr in seen:
                break
            seen.add(taddr)
            members = self.ptr(taddr + self.L.type.tp_members)
            # tp_members: PyMemberDef entries, NULL-terminated; only object-typed ones.
            for i in range(MAX_MEMBERS if members else 0):
                m = members + i * M.size
                name_ptr = self.ptr(m + M.name)
                if not name_ptr:
                    break
                mtype = struct.unpack("<i", self.mem.read(m + M.type, 4))[0]
                if mtype not in (T_OBJECT, T_OBJECT_EX):
                    continue
                name = self.mem.cstring(name_ptr, 256).decode("utf-8", "surrogateescape")
                if name not in ("__dict__", "__weakref__"):
                    out.append((name, self.ssize(m + M.offset)))
            taddr = self.ptr(taddr + self.L.type.tp_base)
        return out

    # -- names of things -----------------------------------------------------------
    def code_names(self, code):
        C = self.L.code
        name = self.read_str(self.ptr(code + C.co_name))
        qual = name
        if C.co_qualname is not None:
            try:
                qual = self.read_str(self.ptr(code + C.co_qualname))
            except NsdebugError:
                pass
        filename = self.read_str(self.ptr(code + C.co_filename))
        return name, qual, filename

    def module_name(self, addr):
        d = self.ptr(addr + self.L.module.md_dict)
        n = self.dict_get_str(d, "__name__") if d else None
        return self.read_str(n) if n else "?"

    # -- previews -------------------------------------------------------------------
    def preview(self, addr, bounds=None, _depth=0, _seen=None):
        """A repr-like one-line text for an object; never raises (cpython/preview.py)."""
        from .preview import Previewer
        return Previewer(self).text(addr, bounds, _depth, _seen)
