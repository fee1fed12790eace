"""Previews: a bounded, repr()-like line of text for any object of the core, as the
shell, the stacks' locals and the heap tables show values. Presentation policy kept
out of the object model (objects.py), which it reads through; never raises: what
cannot be read shows as <invalid 0x...: why>."""

from __future__ import annotations

import struct

from ..errors import NsdebugError
from .objects import DEBUG_OFFSETS_KINDS, InvalidObject, Preview


class Previewer:
    """Previews of objects read through one ObjectReader."""

    def __init__(self, objects):
        self.o = objects

    def text(self, addr, bounds=None, _depth=0, _seen=None):
        """A repr-like one-line text for an object; never raises."""
        bounds = bounds or Preview()
        try:
            return self._preview(addr, bounds, _depth, _seen or set())
        except (NsdebugError, ValueError, OverflowError, struct.error) as e:
            why = e.why if isinstance(e, InvalidObject) else str(e)
            return f"<invalid {addr:#x}: {why}>"

    def _preview(self, addr, b, depth, seen):
        if addr == 0:
            return "<NULL>"
        info = self.o.info(addr)
        k = info.kind
        if not self.o.L.complete and k not in DEBUG_OFFSETS_KINDS:
            return f"<{info.qualname} object at {addr:#x}>"
        sub = info.is_heap and k not in ("instance", "exception", "type") or \
            info.name == "frozendict"
        text = self._preview_kind(addr, info, k, b, depth, seen)
        if sub:
            text = f"{info.qualname}({text})"
        return text

    def _preview_kind(self, addr, info, k, b, depth, seen):
        if k == "none":
            return "None"
        if k == "bool":
            return "True" if self.o.read_int(addr) else "False"
        if k == "int":
            if self.o.int_digits(addr) > 1000:
                return f"<int with {self.o.int_digits(addr)} digits>"
            return str(self.o.read_int(addr))
        if k == "float":
            return repr(self.o.read_float(addr))
        if k == "complex":
            return repr(self.o.read_complex(addr))
        if k == "str":
            n = self.o.str_length(addr)
            text = self.o.read_str(addr, b.string)
            return repr(text) + (f"...(+{n - b.string} chars)" if n > b.string else "")
        if k == "bytes":
            n = self.o.var_size(addr)
            data = self.o.read_bytes(addr, b.string)
            return repr(data) + (f"...(+{n - b.string} bytes)" if n > b.string else "")
        if k == "bytearray":
            n = self.o.var_size(addr)
            data = self.o.read_bytearray(addr, b.string)
            more = f"...(+{n - b.string} bytes)" if n > b.string else ""
            return f"bytearray({data!r}{more})"
        if k == "ellipsis":
            return "Ellipsis"
        if k == "notimplemented":
            return "NotImplemented"
        if k in ("list", "tuple", "set", "frozenset", "dict"):
            return self._preview_container(addr, k, b, depth, seen)
        if k == "range":
            R = self.o.L.range
            start, stop, step = (self.o.read_int(self.o.ptr(addr + o))
                                 for o in (R.start, R.stop, R.step))
            return f"range({start}, {stop})" if step == 1 else f"range({start}, {stop}, {step})"
        if k == "slice":
            S = self.o.L.slice
            parts = [self.text(self.o.ptr(addr + o), b, depth + 1, seen)
                     for o in (S.start, S.stop, S.step)]
            return f"slice({', '.join(parts)})"
        if k == "function":
            F = self.o.L.function
            qual = self.o.read_str(self.o.ptr(addr + F.func_qualname), 200)
            return f"<function {qual} at {addr:#x}>"
        if k == "method":
            M = self.o.L.method
            func = self.o.ptr(addr + M.im_func)
            fname = self._callable_name(func)
            owner = self.text(self.o.ptr(addr + M.im_self), Preview(0, 0, 40), depth + 1, seen)
            return f"<bound method {fname} of {owner}>"
        if k == "cfunction":
            C = self.o.L.cfunction
            ml = self.o.ptr(addr + C.m_ml)
            name = self.o.mem.cstring(self.o.ptr(ml + self.o.L.methoddef.ml_name), 200).decode(
                "utf-8", "surrogateescape")
            self_ = self.o.ptr(addr + C.m_self)
            if self_ and self.o.info(self_).kind != "module":
                return f"<built-in method {name} of {self.o.info(self_).qualname} object " \
                       f"at {self_:#x}>"
            return f"<built-in function {name}>"
        if k == "type":
            return f"<class '{self.o.type_info(addr).qualname}'>"
        if k == "module":
            return f"<module '{self.o.module_name(addr)}'>"
        if k == "code":
            name, _qual, filename = self.o.code_names(addr)
            line = struct.unpack("<i", self.o.mem.read(addr + self.o.L.code.co_firstlineno, 4))[0]
            return f'<code object {name} at {addr:#x}, file "{filename}", line {line}>'
        if k == "cell":
            ref = self.o.ptr(addr + self.o.L.cell.ob_ref)
            if ref == 0:
                return f"<cell at {addr:#x}: empty>"
            return f"<cell at {addr:#x}: {self.o.info(ref).qualname} object at {ref:#x}>"
        if k in ("generator", "coroutine", "async_generator"):
            qual = self.o.read_str(self.o.ptr(addr + self.o.L.gen.gi_qualname), 200)
            return f"<{k} object {qual} at {addr:#x}>"
        if k == "exception":
            args = self.o.ptr(addr + self.o.L.exception.args)
            if args and self.o.info(args).kind == "tuple":
                items = self.o.tuple_items(args, b.items)
                inner = ", ".join(self.text(i, b, depth + 1, seen) for i in items)
                return f"{info.name.rsplit('.', 1)[-1]}({inner})"
            return f"{info.name}()"
        if k == "instance":
            return f"<{info.qualname} at {addr:#x}>"
        return f"<{info.qualname} object at {addr:#x}>"

    def _callable_name(self, func):
        try:
            if self.o.info(func).kind == "function":
                return self.o.read_str(self.o.ptr(func + self.o.L.function.func_qualname), 200)
        except NsdebugError:
            pass
        return "?"

    def _item_preview(self, key, val, b, depth, seen):
        if b.redact:
            from .environment import REDACTED, is_secret
            try:
                if self.o.kind(key) == "str" and is_secret(self.o.read_str(key, 200)):
                    return REDACTED
            except NsdebugError:
                pass
        return self.text(val, b, depth + 1, seen)

    def _preview_container(self, addr, k, b, depth, seen):
        open_, close = {"list": ("[", "]"), "tuple": ("(", ")"), "set": ("{", "}"),
                        "frozenset": ("frozenset({", "})"), "dict": ("{", "}")}[k]
        if addr in seen:
            return {"list": "[...]", "tuple": "(...)", "dict": "{...}"}.get(k, "{...}")
        size = {"list": self.o.list_size, "tuple": self.o.tuple_size, "dict": self.o.dict_size,
                "set": self.o.set_size, "frozenset": self.o.set_size}[k](addr)
        if size == 0:
            return {"list": "[]", "tuple": "()", "dict": "{}", "set": "set()",
                    "frozenset": "frozenset()"}[k]
        if depth >= b.depth:
            return f"{open_}...{size} items{close}"
        seen = seen | {addr}
        take = min(size, b.items)
        if k == "dict":
            parts = [f"{self.text(key, b, depth + 1, seen)}: "
                     f"{self._item_preview(key, val, b, depth, seen)}"
                     for key, val in self.o.dict_items(addr, take)]
        else:
            items = {"list": self.o.list_items, "tuple": self.o.tuple_items,
                     "set": self.o.set_items, "frozenset": self.o.set_items}[k](addr, take)
            parts = [self.text(i, b, depth + 1, seen) for i in items]
        if size > take:
            parts.append(f"...(+{size - take} more)")
        text = ", ".join(parts)
        if k == "tuple" and size == 1:
            text += ","
        return f"{open_}{text}{close}"
