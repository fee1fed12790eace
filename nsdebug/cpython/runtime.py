"""_PyRuntime -> interpreters -> thread states: the interpreter found inside a core."""

from __future__ import annotations

import struct
from functools import cached_property

from ..errors import FaultError, NsdebugError, PythonNotFoundError
from ..record import record
from . import layouts
from .frames import FrameWalker
from .objects import ObjectReader
from .version import detect_version, python_module

MAX_INTERPRETERS = 256
MAX_THREADS = 100_000


@record
class PyThread:
    """One Python thread state, tied to the core's native thread where possible."""
    interp_id: int
    address: int
    thread_id: int               # pthread_t, as threading.get_ident() returns it
    native_tid: int | None
    name: str | None
    holds_gil: bool
    crashed: bool
    core_index: int | None       # index into Process.threads
    first_frame: int             # PyFrameObject* or _PyInterpreterFrame*
    frames_: list | None = None


@record
class Interpreter:
    address: int
    id: int
    modules: int
    sysdict: int
    builtins: int
    thread_states: list


class Runtime:
    """The CPython runtime of a process: version, layout, interpreters, threads, objects."""

    def __init__(self, process, method=None):
        self.process = process
        self.memory = process.memory
        self.module = python_module(process)
        self.warnings: list[str] = []
        guess = detect_version(process, self.module)
        layout, warn = layouts.load_layout(guess.major, guess.minor)
        if warn:
            self.warnings.append(warn)
        self.layout = layout
        self.address, self.found_by = self._find_runtime(method)
        # With _PyRuntime known, 3.13+ can tell its exact version and offsets itself.
        self.version = detect_version(process, self.module, self.address) \
            if guess.key >= (3, 13) else guess
        self._apply_debug_offsets()
        self.objects = ObjectReader(self.memory, self.layout)
        self.walker = FrameWalker(self.objects)

    # -- finding _PyRuntime --------------------------------------------------------
    METHODS = ("symbol", "section", "cookie", "scan")

    def _find_runtime(self, method):
        order = [method] if method else list(self.METHODS)
        tried = []
        for m in order:
            if m == "cookie" and self.layout.version < (3, 13):
                continue
            addr = getattr(self, f"_by_{m}")()
            if addr is not None:
                return addr, m
            tried.append(m)
        raise PythonNotFoundError(
            f"cannot find _PyRuntime in {self.module.path} (tried: {', '.join(tried)})")

    def _by_symbol(self):
        if self.module.file is None:
            return None
        hit = self.module.file.lookup("_PyRuntime")
        return None if hit is None else hit[0] + self.module.bias

    def _by_section(self):
        rng = self.module.section_range(".PyRuntime")
        return rng[0] if rng else None

    def _data_regions(self):
        """Writable segments of the module, and the anonymous .bss tail after them."""
        segs = self.memory.segments
        out = []
        for i, s in enumerate(segs):
            if "w" not in s.perms:
                continue
            if s.file is not None and s.file.path == self.module.path:
                out.append(s)
                nxt = segs[i + 1] if i + 1 < len(segs) else None
                if nxt is not None and nxt.start == s.end and nxt.file is None:
                    out.append(nxt)
        return out

    def _by_cookie(self):
        for seg in self._data_regions():
            try:
                data = self.memory.read(seg.start, seg.end - seg.start)
            except FaultError:
                continue
            pos = data.find(layouts.DEBUG_COOKIE)
            while pos >= 0:
                if pos % 8 == 0:
                    return seg.start + pos
                pos = data.find(layouts.DEBUG_COOKIE, pos + 1)
        return None

    def _by_scan(self):
        """A word that points at an interpreter whose thread states point back at it."""
        R, I = self.layout.runtime, self.layout.interp
        off = R.interpreters_head
        for seg in self._data_regions():
            try:
                data = self.memory.read(seg.start, seg.end - seg.start)
            except FaultError:
                continue
            words = memoryview(data)[:len(data) // 8 * 8].cast("Q")
            for i in range(len(words) - off // 8):
                interp = words[i + off // 8]
                if interp & 7 or not 0x10000 < interp < 1 << 47:
                    continue
                cand = seg.start + 8 * i
                if self._looks_like_runtime(cand, interp, I):
                    return cand
        return None

    def _looks_like_runtime(self, cand, interp, I):
        o = ObjectReader(self.memory, self.layout)
        try:
            tstate = o.ptr(interp + I.tstate_head)
            if tstate == 0 or o.ptr(tstate + self.layout.tstate.interp) != interp:
                return False
            for field_off in (I.modules, I.sysdict, I.builtins):
                d = o.ptr(interp + field_off)
                if o.info(d).name != "dict":
                    return False
            return True
        except NsdebugError:
            return False

    def _apply_debug_offsets(self):
        if self.layout.version < (3, 13):
            return
        try:
            raw = self.memory.read(self.address, layouts.debug_offsets_size())
        except FaultError:
            return
        offsets = layouts.parse_debug_offsets(raw)
        if offsets is None:
            self.warnings.append("_PyRuntime has no _Py_DebugOffsets cookie; using the table")
            return
        self.layout, problems = layouts.apply_debug_offsets(self.layout, offsets)
        self.layout.source = f"_Py_DebugOffsets of the process, table {self.layout.source}"
        self.warnings.extend(f"_Py_DebugOffsets: {p}" for p in problems)

    # -- interpreters and threads ----------------------------------------------------
    @cached_property
    def interpreters(self):
        o, R, I = self.objects, self.layout.runtime, self.layout.interp
        out = []
        addr = o.ptr(self.address + R.interpreters_head)
        seen = set()
        while addr and addr not in seen and len(out) < MAX_INTERPRETERS:
            seen.add(addr)
            try:
                iid = o.ssize(addr + I.id)
                tstates = self._thread_states(o.ptr(addr + I.tstate_head))
                out.append(Interpreter(addr, iid, o.ptr(addr + I.modules),
                                       o.ptr(addr + I.sysdict), o.ptr(addr + I.builtins),
                                       tstates))
                addr = o.ptr(addr + I.next)
            except FaultError as e:
                self.warnings.append(f"interpreter list broken at {addr:#x}: {e}")
                break
        if not out:
            raise PythonNotFoundError("the runtime has no interpreter (not initialised yet, "
                                      "or already finalised)")
        return out

    def _thread_states(self, head):
        out, seen = [], set()
        addr = head
        while addr and addr not in seen and len(out) < MAX_THREADS:
            seen.add(addr)
            out.append(addr)
            try:
                addr = self.objects.ptr(addr + self.layout.tstate.next)
            except FaultError as e:
                self.warnings.append(f"thread list broken at {addr:#x}: {e}")
                break
        return out

    @property
    def main_interpreter(self):
        return self.interpreters[-1] if len(self.interpreters) > 1 and \
            self.interpreters[-1].id == 0 else self.interpreters[0]

    def gil_holder(self, interp):
        """The thread state holding the GIL of an interpreter, or None."""
        o = self.objects
        try:
            if self.layout.runtime.gil_locked is not None:       # 3.8-3.11: in _PyRuntime
                locked = struct.unpack("<i", self.memory.read(
                    self.address + self.layout.runtime.gil_locked, 4))[0]
                holder = o.ptr(self.address + self.layout.runtime.gil_last_holder)
            else:                                                # 3.12+: interp->ceval.gil
                gil = o.ptr(interp.address + self.layout.interp.ceval_gil)
                if not gil:
                    return None
                locked = struct.unpack("<i", self.memory.read(gil + self.layout.gil.locked,
                                                              4))[0]
                holder = o.ptr(gil + self.layout.gil.last_holder)
        except FaultError:
            return None
        return holder if locked else None

    @cached_property
    def threads(self):
        """Every Python thread of every interpreter."""
        by_fs = {t.regs.get("fs_base"): t for t in self.process.threads}
        by_tid = {t.tid: t for t in self.process.threads}
        crashed = self.process.crashed_thread
        names = self._thread_names()
        out = []
        T = self.layout.tstate
        o = self.objects
        for interp in self.interpreters:
            holder = self.gil_holder(interp)
            for ts in interp.thread_states:
                try:
                    thread_id = o.ptr(ts + T.thread_id)
                    native = o.ptr(ts + T.native_thread_id) \
                        if T.native_thread_id is not None else None
                    first = self._first_frame(ts)
                except FaultError as e:
                    self.warnings.append(f"thread state {ts:#x} unreadable: {e}")
                    continue
                core = by_tid.get(native) if native else None
                if core is None:
                    # pthread_self() is the thread pointer: the fs base on x86-64.
                    core = by_fs.get(thread_id)
                    if core is not None:
                        native = core.tid
                out.append(PyThread(interp.id, ts, thread_id, native,
                                    names.get(thread_id), ts == holder,
                                    crashed is not None and native == crashed.tid,
                                    core.index if core else None, first))
        return out

    def _first_frame(self, ts):
        T, o = self.layout.tstate, self.objects
        if T.frame is not None:                   # 3.8-3.10
            return o.ptr(ts + T.frame)
        if T.current_frame is not None:           # 3.13+
            return o.ptr(ts + T.current_frame)
        cframe = o.ptr(ts + T.cframe)             # 3.11-3.12
        return o.ptr(cframe + self.layout.cframe.current_frame) if cframe else 0

    def _thread_names(self):
        """{ident: name} from threading._active, where it can be read."""
        o = self.objects
        out = {}
        try:
            threading = self.module_object("threading")
            if threading is None:
                return out
            md = o.ptr(threading + self.layout.module.md_dict)
            for dict_name in ("_active", "_limbo"):
                active = o.dict_get_str(md, dict_name)
                if not active:
                    continue
                for key, thread in o.dict_items(active):
                    try:
                        ident = o.read_int(key) if o.kind(key) == "int" else None
                        name = None
                        for k, v in o.attributes(thread):
                            if o.read_str(k) == "_name":
                                name = o.read_str(v, 200)
                        if ident is not None and name is not None:
                            out[ident] = name
                    except NsdebugError:
                        continue
        except NsdebugError as e:
            self.warnings.append(f"thread names unavailable: {e}")
        return out

    def module_object(self, name):
        """sys.modules[name] of the main interpreter, or None."""
        o = self.objects
        return o.dict_get_str(self.main_interpreter.modules, name)

    def frames(self, thread):
        """The thread's Python frames, innermost first (cached)."""
        if thread.frames_ is None:
            thread.frames_ = self.walker.frames(thread.first_frame)
        return thread.frames_

    def thread_for_core(self, core_index):
        for t in self.threads:
            if t.core_index == core_index:
                return t
        return None


def attach(process, method=None):
    """The Runtime of a process; PythonNotFoundError when it holds no CPython."""
    return Runtime(process, method)
