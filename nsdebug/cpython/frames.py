"""Python frames of a thread, per version: PyFrameObject chains (3.8-3.10) and
_PyInterpreterFrame chains (3.11+), with line numbers and locals."""

from __future__ import annotations

import struct

from ..errors import NsdebugError
from ..record import record
from . import linetable

CO_NEWLOCALS, CO_VARARGS, CO_VARKEYWORDS = 0x2, 0x4, 0x8
CO_FAST_HIDDEN, CO_FAST_LOCAL, CO_FAST_CELL, CO_FAST_FREE = 0x10, 0x20, 0x40, 0x80
# _PyInterpreterFrame.owner (3.11+). From 3.12 an owner of 3 or more marks a frame that
# is not a Python call (3.12-3.13 FRAME_OWNED_BY_CSTACK = 3; 3.14 renumbered: INTERPRETER
# = 3, CSTACK = 4; 3.15 has INTERPRETER = 3 only): the entry shim of a C call into Python.
OWNERS = {0: "thread", 1: "generator", 2: "frame object"}
OWNED_BY_GENERATOR, FIRST_SHIM_OWNER = 1, 3
_I32 = struct.Struct("<i")


@record
class CodeInfo:
    address: int
    name: str
    qualname: str
    filename: str
    firstlineno: int
    argcount: int
    flags: int


@record
class Local:
    name: str
    address: int           # the value's PyObject*, 0 when unbound
    kind: str              # "arg", "local", "cell", "free"


@record
class Frame:
    address: int
    code: CodeInfo | None
    line: int
    owner: str = "thread"
    entry: bool = False    # called from C (a new _PyEval_EvalFrame on the C stack)
    error: str | None = None
    shim: int = 0          # 3.12+: the entry shim frame, a local of that eval loop's C frame
    locals_: list | None = None
    offset: int = -1       # 3.11+: the instruction's byte offset in the code (-1: unknown)

    @property
    def function(self):
        if self.code is None:
            return "<unknown>"
        return self.code.qualname

    @property
    def filename(self):
        return self.code.filename if self.code else "<unknown>"


class FrameWalker:
    """Reads frames with one ObjectReader; caches code objects by address."""

    def __init__(self, objects, max_frames=4096):
        self.obj = objects
        self.L = objects.L
        self.version = objects.version
        self.max_frames = max_frames
        self._codes: dict[int, CodeInfo] = {}
        # gi_frame_state values of a suspended frame: they moved between versions.
        self._suspended_states = {v for k, v in self.L.enums.get("framestate", {}).items()
                                  if k.startswith("FRAME_SUSPENDED")}

    # -- code objects ---------------------------------------------------------
    def code_info(self, code):
        info = self._codes.get(code)
        if info is None:
            o, C = self.obj, self.L.code
            if o.kind(code) != "code":
                raise NsdebugError(f"{code:#x} is not a code object")
            name, qual, filename = o.code_names(code)
            mem = o.mem
            first = _I32.unpack(mem.read(code + C.co_firstlineno, 4))[0]
            argc = _I32.unpack(mem.read(code + C.co_argcount, 4))[0]
            # A layout from _Py_DebugOffsets alone lacks these two: every frame is then
            # read as a function's, its keyword-only arguments as locals.
            kwonly = _I32.unpack(mem.read(code + C.co_kwonlyargcount, 4))[0] \
                if C.co_kwonlyargcount is not None else 0
            flags = _I32.unpack(mem.read(code + C.co_flags, 4))[0] \
                if C.co_flags is not None else CO_NEWLOCALS
            nargs = argc + kwonly + bool(flags & CO_VARARGS) + bool(flags & CO_VARKEYWORDS)
            info = self._codes[code] = CodeInfo(code, name, qual, filename, first, nargs, flags)
        return info

    def _linetable(self, code):
        C = self.L.code
        field_off = C.co_linetable if C.co_linetable is not None else C.co_lnotab
        return self.obj.read_bytes(self.obj.ptr(code + field_off))

    def line_of(self, code, addrq):
        """Line for byte offset `addrq` into the code's instructions."""
        info = self.code_info(code)
        table = self._linetable(code)
        if self.version >= (3, 11):
            return linetable.addr2line_311(table, info.firstlineno, addrq)
        if self.version >= (3, 10):
            if addrq < 0:
                return info.firstlineno
            return linetable.addr2line_310(table, info.firstlineno, addrq)
        return linetable.addr2line_lnotab(table, info.firstlineno, addrq)

    # -- chains -----------------------------------------------------------------
    def frames(self, first):
        """Frames innermost first, from a PyFrameObject* (3.8-3.10) or
        _PyInterpreterFrame* (3.11+). A loop or garbage ends the walk with a marker."""
        out = []
        seen = set()
        addr = first
        step = self._next_311 if self.version >= (3, 11) else self._next_38
        while addr:
            if addr in seen:
                out.append(Frame(addr, None, -1, error=f"frame chain loops back to {addr:#x}"))
                break
            if len(out) >= self.max_frames:
                out.append(Frame(addr, None, -1, error=f"more than {self.max_frames} frames"))
                break
            seen.add(addr)
            try:
                frame, addr = step(addr, out)
            except NsdebugError as e:
                out.append(Frame(addr, None, -1, error=str(e)))
                break
            if frame is not None:
                out.append(frame)
        return out

    def _next_38(self, addr, out):
        F, o = self.L.frameobject, self.obj
        back = o.ptr(addr + F.f_back)
        code = o.ptr(addr + F.f_code)
        lasti = _I32.unpack(o.mem.read(addr + F.f_lasti, 4))[0]
        try:
            self.code_info(code)
        except NsdebugError as e:
            return Frame(addr, None, -1, error=f"code {code:#x}: {e}"), back
        if self.version >= (3, 10):
            lineno = _I32.unpack(o.mem.read(addr + F.f_lineno, 4))[0]
            line = lineno if lineno else self.line_of(code, lasti * 2)
        else:
            trace = o.ptr(addr + F.f_trace)
            if trace:
                line = _I32.unpack(o.mem.read(addr + F.f_lineno, 4))[0]
            else:
                line = self.line_of(code, lasti)
        return Frame(addr, self.code_info(code), line), back

    def _next_311(self, addr, out):
        I, o = self.L.iframe, self.obj
        previous = o.ptr(addr + I.previous)
        owner = o.u8(addr + I.owner)
        if owner >= FIRST_SHIM_OWNER:
            # A shim: the newer frame above it was entered from C.
            if out:
                out[-1].entry = True
                out[-1].shim = addr
            return None, previous
        code = o.stackref(addr + I.code)
        try:
            info = self.code_info(code)
        except NsdebugError as e:
            if self._no_executable(code, previous):
                # A frame that runs no code by design: the base frame the newer
                # releases put under every thread's stack (executable NULL or None),
                # or a C entry frame a build numbers differently: not damage.
                if out:
                    out[-1].entry = True
                return None, previous
            return Frame(addr, None, -1, error=f"code {code:#x}: {e}"), previous
        C = self.L.code
        # 3.13 renamed prev_instr (the last instruction run) to instr_ptr (the next).
        instr_field = I.instr_ptr if I.instr_ptr is not None else I.prev_instr
        instr = o.ptr(addr + instr_field)
        first_instr = code + C.co_code_adaptive
        if owner != OWNED_BY_GENERATOR and C.co_firsttraceable is not None:
            firsttraceable = _I32.unpack(o.mem.read(code + C.co_firsttraceable, 4))[0]
            if instr < first_instr + 2 * firsttraceable:
                return None, previous       # incomplete frame: CPython skips it too
        line = self.line_of(code, instr - first_instr)
        entry = bool(o.u8(addr + I.is_entry)) if I.is_entry is not None else False
        return Frame(addr, info, line, OWNERS.get(owner, str(owner)), entry,
                     offset=instr - first_instr), previous

    def _no_executable(self, code, previous):
        if not code:
            return not previous         # NULL only at the base; elsewhere damage
        try:
            return self.obj.kind(code) == "none"
        except NsdebugError:
            return False

    # -- generators and coroutines -----------------------------------------------
    def generator_frame(self, gen):
        """The suspended frame of a generator, coroutine or async generator, or None
        when it has finished (or runs: then its frame is on a thread's stack)."""
        o, G = self.obj, self.L.gen
        try:
            if G.gi_iframe is not None:                     # 3.11+: embedded
                if not self._suspended(gen):
                    return None
                frame, _ = self._next_311(gen + G.gi_iframe, [])
                if frame is not None:
                    frame.owner = "generator"
                return frame
            f = o.ptr(gen + G.gi_frame)                     # 3.8-3.10: a frame object
            if not f:
                return None
            frame, _ = self._next_38(f, [])
            return frame
        except NsdebugError:
            return None

    def _suspended(self, gen):
        G, states = self.L.gen, self._suspended_states
        if G.gi_frame_state is None or not states:
            return False
        state = int.from_bytes(self.obj.mem.read(gen + G.gi_frame_state, 1), "little",
                               signed=True)
        return state in states

    def awaiting(self, gen):
        """What a suspended coroutine or generator awaits (its `yield from` target, the
        top of its value stack), or 0."""
        o, L, G = self.obj, self.L, self.L.gen
        try:
            if G.gi_iframe is not None:
                if not self._suspended(gen):
                    return 0
                iframe = gen + G.gi_iframe
                I = L.iframe
                code = o.stackref(iframe + I.code)
                nlocals = _I32.unpack(o.mem.read(code + L.code.co_nlocalsplus, 4))[0]
                base = iframe + I.localsplus + 8 * nlocals
                if I.stackpointer is not None:
                    top = o.ptr(iframe + I.stackpointer)
                else:
                    top = iframe + I.localsplus + 8 * _I32.unpack(
                        o.mem.read(iframe + I.stacktop, 4))[0]
            else:
                F = L.frameobject
                f = o.ptr(gen + G.gi_frame)
                if not f:
                    return 0
                base = o.ptr(f + F.f_valuestack)
                if F.f_stacktop is not None:
                    top = o.ptr(f + F.f_stacktop)
                else:
                    top = base + 8 * _I32.unpack(o.mem.read(f + F.f_stackdepth, 4))[0]
            if not base or top <= base or top - base > 1 << 20:
                return 0
            value = o.ref_value(o.ptr(top - 8))
            if not value and top - 16 >= base:
                # 3.15's SEND works like FOR_ITER: its receiver sits under a NULL slot.
                value = o.ref_value(o.ptr(top - 16))
            o.info(value)
            return value
        except NsdebugError:
            return 0

    def handler_depth(self, frame):
        """3.11+: the value-stack depth the exception table records for the try block
        (a `with` body among them) the frame's instruction is in: the slots below it
        are live whatever the stack pointer; None outside any, or unknown."""
        C = self.L.code
        if frame.code is None or frame.offset < 0 or C.co_exceptiontable is None:
            return None
        try:
            table = self.obj.read_bytes(self.obj.ptr(frame.code.address +
                                                     C.co_exceptiontable), 1 << 16)
        except NsdebugError:
            return None
        unit = frame.offset // 2
        found, pos = None, 0
        while pos < len(table):
            start, pos = _varint(table, pos)
            size, pos = _varint(table, pos)
            _target, pos = _varint(table, pos)
            depth_lasti, pos = _varint(table, pos)
            if start <= unit < start + size:
                found = depth_lasti >> 1        # the innermost entry covering it is last
        return found

    def stack_slots(self, frame, limit=256, checked=True):
        """([(slot, object address)], depth): the objects in the frame's value-stack
        area, bottom first, over every slot of its code's co_stacksize; and how many
        slots are live by the stack pointer the frame records (3.14+), None where it
        records none a reader can trust, in which case slots above the live ones may
        hold values left from earlier. Slots that do not hold an object are left out
        (without `checked`, only those that cannot be one: the caller reads the rest)."""
        o, L = self.obj, self.L
        if frame.code is None or L.code.co_stacksize is None:
            return [], None
        code = frame.code.address
        try:
            size = _I32.unpack(o.mem.read(code + L.code.co_stacksize, 4))[0]
            if self.version >= (3, 11):
                I = L.iframe
                nlocals = _I32.unpack(o.mem.read(code + L.code.co_nlocalsplus, 4))[0]
                base = frame.address + I.localsplus + 8 * nlocals
                # 3.14 saves the stack pointer before every call that may escape the
                # loop; earlier versions save theirs only when a frame suspends (a
                # frame in a call shows a stale one), so it is not read there.
                depth = (o.ptr(frame.address + I.stackpointer) - base) // 8 \
                    if I.stackpointer is not None else -1
            else:
                base = o.ptr(frame.address + L.frameobject.f_valuestack)
                depth = -1
            if not base or not 0 < size <= 1 << 16:
                return [], None
            data, _why = o.mem.read_prefix(base, 8 * min(size, limit))
        except NsdebugError:
            return [], None
        if not 0 <= depth <= size:
            depth = None
        out = []
        for slot, (bits,) in enumerate(struct.iter_unpack("<Q", data[:len(data) // 8 * 8])):
            value = o.ref_value(bits)
            if value and not value & 7:
                if checked:
                    try:
                        o.info(value)
                    except NsdebugError:
                        continue
                out.append((slot, value))
        return out, depth

    # -- locals ----------------------------------------------------------------
    def locals_of(self, frame):
        """Arguments and locals of a frame (cells dereferenced, unbound ones left out)."""
        if frame.code is None:
            return []
        if frame.locals_ is None:
            if not frame.code.flags & CO_NEWLOCALS:
                # Module and class bodies keep their locals in a dict, as f_locals shows.
                frame.locals_ = self._locals_dict(frame)
            else:
                frame.locals_ = (self._locals_311(frame) if self.version >= (3, 11)
                                 else self._locals_38(frame))
        return frame.locals_

    def globals_of(self, frame):
        """The address of the frame's globals dict (0 when it has none)."""
        o, L = self.obj, self.L
        if L.frameobject.f_globals is not None and self.version < (3, 11):
            return o.ptr(frame.address + L.frameobject.f_globals)
        return o.ptr(frame.address + L.iframe.globals)

    def lookup_name(self, frame, name, builtins):
        """(address, where) of a name as the frame's code would find it: a local, else a
        global of its module, else a builtin (`builtins`: the interpreter's dict); None
        when it is none of them."""
        for loc in self.locals_of(frame):
            if loc.name == name:
                return loc.address, "local"
        o = self.obj
        g = self.globals_of(frame)
        if g:
            v = o.dict_get_str(g, name)
            if v:
                return v, "global"
        v = o.dict_get_str(builtins, name)
        if v:
            return v, "builtin"
        return None

    def _tuple_strs(self, addr):
        o = self.obj
        return [o.read_str(a) for a in o.tuple_items(addr)] if addr else []

    def _deref(self, value):
        o = self.obj
        if self.L.cell.ob_ref is None:
            return value        # a layout from _Py_DebugOffsets alone: the cell itself
        try:
            if value and o.kind(value) == "cell":
                return o.ptr(value + self.L.cell.ob_ref)
        except NsdebugError:
            pass
        return value

    def _locals_dict(self, frame):
        o = self.obj
        off = self.L.iframe.locals if self.version >= (3, 11) else self.L.frameobject.f_locals
        d = o.ptr(frame.address + off)
        if not d:
            return []
        out = []
        for key, value in o.dict_items(d):
            try:
                name = o.read_str(key)
            except NsdebugError:
                name = o.preview(key)
            out.append(Local(name, value, "local"))
        return out

    def _locals_38(self, frame):
        o, C, code = self.obj, self.L.code, frame.code.address
        varnames = self._tuple_strs(o.ptr(code + C.co_varnames))
        cellvars = self._tuple_strs(o.ptr(code + C.co_cellvars))
        freevars = self._tuple_strs(o.ptr(code + C.co_freevars))
        names = ([(n, "local") for n in varnames] + [(n, "cell") for n in cellvars] +
                 [(n, "free") for n in freevars])
        base = frame.address + self.L.frameobject.f_localsplus
        values = struct.unpack(f"<{len(names)}Q", o.mem.read(base, 8 * len(names)))
        out = []
        for i, ((name, kind), value) in enumerate(zip(names, values)):
            if kind == "local" and i < frame.code.argcount:
                kind = "arg"
            if kind in ("cell", "free"):
                value = self._deref(value)
            if value:
                out.append(Local(name, value, kind))
        return out

    def _locals_311(self, frame):
        o, C, code = self.obj, self.L.code, frame.code.address
        names = self._tuple_strs(o.ptr(code + C.co_localsplusnames))
        kinds = o.read_bytes(o.ptr(code + C.co_localspluskinds))
        n = min(len(names), len(kinds))
        base = frame.address + self.L.iframe.localsplus
        values = struct.unpack(f"<{n}Q", o.mem.read(base, 8 * n)) if n else ()
        out = []
        for i in range(n):
            k, value = kinds[i], o.ref_value(values[i])
            if k & CO_FAST_HIDDEN:
                continue
            if k & CO_FAST_FREE:
                kind, value = "free", self._deref(value)
            elif k & CO_FAST_CELL:
                kind, value = "cell", self._deref(value)
            else:
                kind = "local"
            if i < frame.code.argcount and kind in ("local", "cell"):
                kind = "arg" if kind == "local" else kind
            if value:
                out.append(Local(names[i], value, kind))
        return out


def _varint(data, pos):
    """An exception-table number (3.11+): 6 bits a byte, 0x40 set while more follow."""
    value = 0
    while pos < len(data):
        b = data[pos]
        pos += 1
        value = (value << 6) | (b & 0x3F)
        if not b & 0x40:
            break
    return value, pos
