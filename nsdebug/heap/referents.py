"""The references an object holds, named as Python would name them, decoded per type.

Each edge is (kind, name, target address). Kinds follow the DevTools edge
types the snapshot will use; `name` is an int for ELEMENT (an index) and a
str otherwise. Dict entries name their value by the key's text.
"""

from __future__ import annotations

import struct

from ..cpython.flags import MAX_USER_ADDRESS
from ..cpython.objects import Preview
from ..errors import NsdebugError
from . import fields
from .fields import ELEMENT, HIDDEN, INTERNAL, KIND_NAMES, PROPERTY, WEAK  # noqa: F401

BODY_START = 16              # after ob_refcnt and ob_type
KEY_TEXT_LIMIT = 200         # characters of a str key kept as the name of its entry
# Kinds whose struct may hold fields nsdebug has no layout for (read conservatively).
BODY_SCAN_KINDS = ("instance", "other", "object")
_Q = struct.Struct("<Q")


class Referents:
    """edges(addr, info) for objects read through one ObjectReader."""

    def __init__(self, objects):
        self.o = objects
        self.L = objects.L
        self.mem = objects.mem
        self.v = objects.version
        self._key_names: dict[int, str] = {}
        L = self.L
        # Rows of (edge name, offset, edge kind) per kind of object, for type objects, for
        # heap types, and per C type of the standard library (by tp_name).
        self.kind_fields = {k: fields.offsets(L, rows) for k, rows in fields.KIND_FIELDS.items()}
        # tp_subclasses: a dict of weak references to the subclasses; from 3.12 a static
        # built-in type keeps an index there instead (its dict is the interpreter's).
        subclasses = [("__subclasses__", "type", "tp_subclasses", INTERNAL)]
        self.type_fields = fields.offsets(L, [
            ("__dict__", "type", "tp_dict", INTERNAL), ("__mro__", "type", "tp_mro", INTERNAL),
            ("__base__", "type", "tp_base", INTERNAL), ("__bases__", "type", "tp_bases", INTERNAL)]
            + (subclasses if self.v < (3, 12) else []))
        self.heaptype_fields = fields.offsets(L, (subclasses if self.v >= (3, 12) else []) + [
            ("__name__", "heaptype", "ht_name", INTERNAL),
            ("__qualname__", "heaptype", "ht_qualname", INTERNAL),
            ("__slots__", "heaptype", "ht_slots", INTERNAL),
            ("__module_object__", "heaptype", "ht_module", INTERNAL)])
        self._by_type_name = {name: fields.offsets(L, rows)
                              for name, rows in fields.TYPE_FIELDS.items()}
        self._body: dict[int, list] = {}
        # Struct words known to hold no object, by type address (buffers.py: a numpy
        # array's data, shape and strides pointers), left out of body_offsets.
        self.not_objects: dict[int, set] = {}
        self._suspended_states = {v for k, v in L.enums.get("framestate", {}).items()
                                  if k.startswith("FRAME_SUSPENDED")}

    def fields_of_type(self, qualname):
        """(edge name, offset, edge kind) rows of a C type of the standard library known
        by its tp_name, or ()."""
        return self._by_type_name.get(qualname, ())

    def body_offsets(self, info):
        """Word offsets of an object's own struct (up to tp_basicsize) that nothing else
        accounts for: not the header, a member, a known C field, the __dict__ or the
        weak reference list. For a Python class there are none; for a C type whose
        fields nsdebug does not know (_struct.Struct, _io objects, _asyncio.Task...),
        its fields, read conservatively (plausible_object); none for those known to
        hold no object but where a flag says (fields.NO_OBJECT_FIELDS, FLAGGED_FIELDS).
        Cached per type."""
        offs = self._body.get(info.address)
        # (By name alone: 3.13's Decimal is a heap type, made from a spec, and a class
        # of that name, _pydecimal's, has no words but its slots, which are not scanned.)
        if offs is None and (info.qualname in fields.NO_OBJECT_FIELDS or
                             fields.flagged_field(info) is not None):
            offs = self._body[info.address] = []
        if offs is None:
            known = {off for _, off in self.o.slot_members(info)}
            known |= {off for _, off, _ in self.fields_of_type(info.qualname)}
            W = self.L.type.tp_weaklistoffset
            try:
                known.add(self.o.ssize(info.address + W) if W is not None else -1)
            except NsdebugError:
                pass
            known.add(info.dictoffset)
            known |= self.not_objects.get(info.address, set())
            offs = self._body[info.address] = [
                off for off in range(BODY_START, info.basicsize - 7, 8) if off not in known]
        return offs

    def plausible_object(self, addr):
        """An object is at addr: aligned, in user space, a live reference count, and a
        type pointer that leads to a valid type."""
        if not addr or addr & 7 or addr >= MAX_USER_ADDRESS:
            return False
        try:
            if self.o.ssize(addr) <= 0:
                return False
            self.o.info(addr)
            return True
        except NsdebugError:
            return False

    def ptr(self, addr):
        return _Q.unpack(self.mem.read(addr, 8))[0]

    def key_name(self, key):
        """Text naming a dict entry by its key: the str itself, else a short repr."""
        name = self._key_names.get(key)
        if name is None:
            try:
                if self.o.kind(key) == "str":
                    name = self.o.read_str(key, KEY_TEXT_LIMIT)
                else:
                    name = self.o.preview(key, _KEY_PREVIEW)
            except NsdebugError:
                name = f"<key {key:#x}>"
            if len(self._key_names) < 1 << 20:
                self._key_names[key] = name
        return name

    def edges(self, addr, info):
        out = [(INTERNAL, "ob_type", info.address)]
        k = info.kind
        try:
            decode = getattr(self, "_" + k, None) if k != "instance" else None
            if decode is not None:
                decode(addr, info, out)
            rows = self.kind_fields.get(k) or self._by_type_name.get(info.qualname)
            if rows:
                self._plain_fields(addr, rows, out)
            if k in ("instance", "exception", "other", "object") or \
                    (info.is_heap and k not in ("type",)):
                self._instance(addr, info, out)
        except NsdebugError:
            out.append((INTERNAL, "<unreadable>", 0))
        return out

    def _plain_fields(self, addr, rows, out):
        for name, off, kind in rows:
            target = self.ptr(addr + off)
            if target:
                out.append((kind, name, target))

    # -- containers ------------------------------------------------------------------
    def _tuple(self, addr, info, out):
        for i, item in enumerate(self.o.tuple_items(addr)):
            if item:
                out.append((ELEMENT, i, item))

    def _list(self, addr, info, out):
        for i, item in enumerate(self.o.list_items(addr)):
            if item:
                out.append((ELEMENT, i, item))

    def _set(self, addr, info, out):
        for i, item in enumerate(self.o.set_items(addr)):
            out.append((ELEMENT, i, item))

    _frozenset = _set

    def _dict(self, addr, info, out):
        for key, value in self.o.dict_items(addr):
            out.append((HIDDEN, "key", key))
            out.append((PROPERTY, self.key_name(key), value))

    def _type(self, addr, info, out):
        self._plain_fields(addr, self.type_fields, out)
        ti = self.o.type_info(addr)
        if ti.is_heap:
            self._plain_fields(addr, self.heaptype_fields, out)
        for off in self.metatype_offsets(info):
            target = self.ptr(addr + off)
            if self.plausible_object(target):
                out.append((INTERNAL, f"+{off:#x}", target))

    def metatype_offsets(self, meta):
        """Words a metaclass adds after PyHeapTypeObject (ctypes keeps its type info
        there), read conservatively."""
        size = self.L.heaptype.size
        if not size or meta.basicsize <= size:
            return []
        return [off for off in self.body_offsets(meta) if off >= size]

    def _generator(self, addr, info, out):
        # 3.11+: the frame is embedded in the generator (gi_iframe); its locals are refs.
        G = self.L.gen
        if G.gi_iframe is None:
            return
        iframe = addr + G.gi_iframe
        self._iframe_refs(iframe, out, suspended=self._suspended(addr))

    _coroutine = _async_generator = _generator

    def _suspended(self, gen):
        """A generator whose frame is suspended (its value stack is then what it was at
        the yield): gi_frame_state is one of the FRAME_SUSPENDED* values, which moved
        between versions (3.11: -1; 3.13: -2, -1; 3.15: 1-3), read from the table."""
        G = self.L.gen
        if G.gi_frame_state is None or not self._suspended_states:
            return False
        state = int.from_bytes(self.mem.read(gen + G.gi_frame_state, 1), "little", signed=True)
        return state in self._suspended_states

    def _frame(self, addr, info, out):
        F = self.L.frameobject
        if F.f_frame is not None:                       # 3.11+: points at its iframe
            iframe = self.ptr(addr + F.f_frame)
            if iframe:
                self._iframe_refs(iframe, out)
            return
        code = self.ptr(addr + F.f_code)                # 3.8-3.10: f_localsplus
        C = self.L.code
        names = []
        for field in (C.co_varnames, C.co_cellvars, C.co_freevars):
            names += [self.o.read_str(n) for n in self.o.tuple_items(self.ptr(code + field))]
        if len(names) > 1 << 16:
            return
        raw = self.mem.read(addr + F.f_localsplus, 8 * len(names)) if names else b""
        for i, name in enumerate(names):
            value = _Q.unpack_from(raw, 8 * i)[0]
            if value:
                out.append((PROPERTY, name, value))
        # A suspended frame's value stack (what a generator awaits or iterates):
        # f_valuestack up to f_stacktop, NULL while the frame runs (3.8-3.9); 3.10
        # counts it instead (f_stackdepth).
        if F.f_valuestack is not None:
            bottom = self.ptr(addr + F.f_valuestack)
            if F.f_stacktop is not None:
                top = self.ptr(addr + F.f_stacktop)
            elif F.f_stackdepth is not None:
                depth = int.from_bytes(self.mem.read(addr + F.f_stackdepth, 4), "little",
                                       signed=True)
                top = bottom + 8 * depth if depth > 0 else 0
            else:
                top = 0
            self._stack(bottom, top, code, out)

    def _stack(self, bottom, top, code, out):
        """Value-stack items between two addresses, at most co_stacksize of them."""
        if not bottom or not top or top <= bottom or (top - bottom) & 7:
            return
        n = (top - bottom) // 8
        limit = int.from_bytes(self.mem.read(code + self.L.code.co_stacksize, 4), "little",
                               signed=True)
        if n > max(limit, 0):
            return
        raw = self.mem.read(bottom, 8 * n)
        for i in range(n):
            value = self.o.ref_value(_Q.unpack_from(raw, 8 * i)[0])
            if value:
                out.append((INTERNAL, f"stack[{i}]", value))

    def _iframe_refs(self, iframe, out, suspended=False):
        I = self.L.iframe
        code = self.o.stackref(iframe + I.code)
        if not code:
            return
        out.append((INTERNAL, "f_code", code))
        try:
            names = [self.o.read_str(n) for n in
                     self.o.tuple_items(self.ptr(code + self.L.code.co_localsplusnames))]
        except NsdebugError:
            return
        if len(names) > 1 << 16:
            return
        base = iframe + I.localsplus
        raw = self.mem.read(base, 8 * len(names)) if names else b""
        for i, name in enumerate(names):
            value = self.o.ref_value(_Q.unpack_from(raw, 8 * i)[0])
            if value:
                out.append((PROPERTY, name, value))
        if suspended:
            # The value stack after the locals: 3.11-3.13 count its top in slots
            # (stacktop), 3.14 keeps a pointer (stackpointer).
            bottom = base + 8 * len(names)
            if I.stackpointer is not None:
                top = self.ptr(iframe + I.stackpointer)
            elif I.stacktop is not None:
                top = base + 8 * int.from_bytes(self.mem.read(iframe + I.stacktop, 4),
                                                "little", signed=True)
            else:
                return
            self._stack(bottom, top, code, out)

    # -- instances ---------------------------------------------------------------------
    def _instance(self, addr, info, out):
        o = self.o
        for name, off in o.slot_members(info):
            target = self.ptr(addr + off)
            if target:
                out.append((PROPERTY, name, target))
        if info.kind in BODY_SCAN_KINDS:
            for off in self.body_offsets(info):
                target = self.ptr(addr + off)
                if self.plausible_object(target):
                    out.append((INTERNAL, f"+{off:#x}", target))
            flagged = fields.flagged_field(info)
            if flagged is not None and self.mem.read(addr + flagged[1], 1) != b"\0":
                target = self.ptr(addr + flagged[2])
                if target:
                    out.append((INTERNAL, flagged[0], target))
        d, items = o.instance_dict(addr, info)
        if d is not None:
            out.append((INTERNAL, "__dict__", d))
        elif items:
            for key, value in items:
                out.append((PROPERTY, self.key_name(key), value))


# A real Preview (cpython/objects.py), not a look-alike: the preview of a dict key whose
# value is a dict reads every Preview field (`redact` was missing: an AttributeError on
# --snapshot and report of damaged cores, found by tools/fuzz_cores.py).
_KEY_PREVIEW = Preview(depth=1, items=3, string=40)
