"""The references an object holds, named as Python would name them, decoded per type.

Each edge is (kind, name, target address). Kinds follow the DevTools edge
types the snapshot will use; `name` is an int for ELEMENT (an index) and a
str otherwise. Dict entries name their value by the key's text.
"""

from __future__ import annotations

import struct

from ..errors import NsdebugError
from . import fields
from .fields import ELEMENT, HIDDEN, INTERNAL, KIND_NAMES, PROPERTY, WEAK  # noqa: F401

MAX_ITEMS = 1 << 24          # a container claiming more is corrupt: its items are skipped
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
        self._fields = {k: fields.offsets(L, rows) for k, rows in fields.KIND_FIELDS.items()}
        self._type_fields = fields.offsets(L, [
            ("__dict__", "type", "tp_dict", INTERNAL), ("__mro__", "type", "tp_mro", INTERNAL),
            ("__base__", "type", "tp_base", INTERNAL), ("__bases__", "type", "tp_bases", INTERNAL)])
        self._heaptype_fields = fields.offsets(L, [
            ("__name__", "heaptype", "ht_name", INTERNAL),
            ("__qualname__", "heaptype", "ht_qualname", INTERNAL),
            ("__slots__", "heaptype", "ht_slots", INTERNAL),
            ("__module_object__", "heaptype", "ht_module", INTERNAL)])
        self._by_type_name = {name: fields.offsets(L, rows)
                              for name, rows in fields.TYPE_FIELDS.items()}

    def ptr(self, addr):
        return _Q.unpack(self.mem.read(addr, 8))[0]

    def key_name(self, key):
        """Text naming a dict entry by its key: the str itself, else a short repr."""
        name = self._key_names.get(key)
        if name is None:
            try:
                if self.o.kind(key) == "str":
                    name = self.o.read_str(key, 200)
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
            rows = self._fields.get(k) or self._by_type_name.get(info.qualname)
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
        self._plain_fields(addr, self._type_fields, out)
        ti = self.o.type_info(addr)
        if ti.is_heap:
            self._plain_fields(addr, self._heaptype_fields, out)

    def _generator(self, addr, info, out):
        # 3.11+: the frame is embedded in the generator (gi_iframe); its locals are refs.
        G = self.L.gen
        if G.gi_iframe is None:
            return
        iframe = addr + G.gi_iframe
        self._iframe_refs(iframe, out)

    _coroutine = _async_generator = _generator

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

    def _iframe_refs(self, iframe, out):
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

    # -- instances ---------------------------------------------------------------------
    def _instance(self, addr, info, out):
        o = self.o
        for name, off in o.slot_members(info):
            target = self.ptr(addr + off)
            if target:
                out.append((PROPERTY, name, target))
        d, items = o.instance_dict(addr, info)
        if d is not None:
            out.append((INTERNAL, "__dict__", d))
        elif items:
            for key, value in items:
                out.append((PROPERTY, self.key_name(key), value))


class _KeyPreview:
    depth = 1
    items = 3
    string = 40


_KEY_PREVIEW = _KeyPreview()
