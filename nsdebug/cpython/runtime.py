"""_PyRuntime -> interpreters -> thread states: the interpreter found inside a core."""

from __future__ import annotations

import struct

from ..errors import FaultError, LayoutError, NsdebugError, PythonNotFoundError
from ..once import cached_property
from ..record import record
from . import layout_check, layouts
from .flags import MAX_USER_ADDRESS
from .frames import FrameWalker
from .objects import ObjectReader
from .strhash import StrHasher
from .version import PythonVersion, detect_version, python_module

MAX_INTERPRETERS = 256
MAX_THREADS = 100_000
# struct _gil_runtime_state after its `locked` int (padded to 8): switch_number, then the
# condition variable and mutex a thread waiting for the GIL sleeps on, then (the
# FORCE_SWITCHING pair) those the dropping thread waits on; pthread_cond_t is 48 bytes
# and pthread_mutex_t 40 on x86-64 glibc, on every version 3.8-3.15.
GIL_WAIT_SPAN = (16, 16 + 2 * (48 + 40))


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
        if guess.free_threaded:
            raise LayoutError(f"{self.module.name} is a free-threaded build (CPython "
                              f"{guess}); nsdebug reads only builds with the GIL so far")
        self._tables = layouts.candidates(guess.major, guess.minor, guess.micro,
                                          self._build_id())
        self.address, self.found_by = self._find_runtime(method, guess)
        debug = self._debug_offsets(guess)
        self.version = self._reconcile(guess, debug)
        self.layout = self._choose_layout(debug)
        self.objects = ObjectReader(self.memory, self.layout)
        self.objects.str_hash = StrHasher(self._hash_secret, self.version.key)
        self.frame_walker = FrameWalker(self.objects)

    def _hash_secret(self):
        """(k0, k1) of the process's _Py_HashSecret (its SipHash key), or None."""
        if self.module.file is None:
            return None
        try:
            hit = self.module.file.lookup("_Py_HashSecret", exported=True)
            if hit is None:
                return None
            return struct.unpack("<QQ", self.memory.read(hit[0] + self.module.bias, 16))
        except NsdebugError:
            return None

    def _build_id(self):
        m = self.module
        return m.core_build_id or (m.file.build_id if m.file is not None else None)

    # -- finding _PyRuntime --------------------------------------------------------
    METHODS = ("symbol", "section", "cookie", "scan")

    def _find_runtime(self, method, guess):
        order = [method] if method else list(self.METHODS)
        tried = []
        for m in order:
            if m == "cookie" and guess.key < (3, 13):
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

    def _by_cookie(self):
        for seg in self.process.data_regions(self.module):
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
        """A word that points at an interpreter whose thread states point back at it,
        with each candidate table's offsets in turn."""
        for table in self._tables:
            L = table.layout()
            off = L.runtime.interpreters_head
            for seg in self.process.data_regions(self.module):
                try:
                    data = self.memory.read(seg.start, seg.end - seg.start)
                except FaultError:
                    continue
                words = memoryview(data)[:len(data) // 8 * 8].cast("Q")
                o = ObjectReader(self.memory, L)
                for i in range(len(words) - off // 8):
                    interp = words[i + off // 8]
                    if interp & 7 or not 0x10000 < interp < MAX_USER_ADDRESS:
                        continue
                    cand = seg.start + 8 * i
                    if not layout_check.structure_problems(o, L, cand):
                        return cand
        return None

    # -- which layout -----------------------------------------------------------------
    def _debug_offsets(self, guess):
        """The process's _Py_DebugOffsets (3.13+), parsed as its version defines the
        struct and sanity-checked; None before 3.13. A cookie with offsets that fail
        their checks is an error: nothing read through them could be trusted."""
        if guess.key < (3, 13):
            return None
        specs = layouts.debug_specs(guess.major, guess.minor)
        try:
            raw = self.memory.read(self.address, layouts.debug_offsets_size(specs))
        except FaultError as e:
            raise LayoutError(f"_Py_DebugOffsets at {self.address:#x} unreadable: {e}") \
                from None
        if raw[:8] != layouts.DEBUG_COOKIE:
            self.warnings.append("_PyRuntime has no _Py_DebugOffsets cookie")
            return None
        found = []
        for spec, table in specs:
            d = layouts.parse_debug_offsets(raw, spec, table)
            problems = d.problems()
            if problems:
                found.append(problems[0])
                continue
            if d.free_threaded:
                raise LayoutError(f"the core is of a free-threaded build (CPython "
                                  f"{'.'.join(map(str, d.version))}, _Py_DebugOffsets."
                                  f"free_threaded set); nsdebug reads only builds with the "
                                  f"GIL so far")
            if not self._tables:
                # A version no table knows, read with another version's definition of
                # the struct: it must lead to an interpreter and its threads.
                L = self._debug_layout(d, guess)
                problems = layout_check.structure_problems(ObjectReader(self.memory, L), L,
                                                           self.address)
                if problems:
                    found.append(problems[0])
                    continue
            return d
        raise LayoutError(f"_Py_DebugOffsets of this CPython {guess} process fail their "
                          f"checks ({found[0] if found else 'no known definition'}); "
                          f"refusing to read the runtime through them")

    def _reconcile(self, guess, debug):
        """The version, once _Py_DebugOffsets (when present) agrees with the binary."""
        if debug is None:
            return guess
        dv = debug.version
        if dv[:2] != guess.key or (guess.micro is not None and dv[2] != guess.micro and
                                   guess.how != "file name"):
            raise LayoutError(
                f"_Py_DebugOffsets says CPython {'.'.join(map(str, dv))} but the "
                f"{guess.how} says {guess}: the core and its binary disagree; "
                f"refusing to guess")
        return PythonVersion(dv[0], dv[1], dv[2], "_Py_DebugOffsets")

    def _debug_layout(self, debug, version):
        """A layout of the debug offsets alone. How frame slots encode objects (tagged
        _PyStackRef or not) goes with the frame struct those offsets describe: taken from
        the table whose definition of _Py_DebugOffsets read them."""
        key = version.full or (*version.key, 0)
        types = {"stackref": debug.table.types.get("stackref")} if debug.table else {}
        return layouts.Layout(key, types, "_Py_DebugOffsets of the process",
                              complete=False).with_fields(debug.mapped())

    def _choose_layout(self, debug):
        """The first candidate table that agrees with the debug offsets and passes the
        checks; else, with debug offsets, a layout of those alone (stacks, no heap)."""
        rejected = []
        for table in self._tables:
            layout = table.layout()
            if debug is not None:
                mapped = debug.mapped()
                clash = [f"{a}.{f}" for (a, f), v in mapped.items()
                         if layout.get(a, f) is not None and layout.get(a, f) != v]
                if clash:
                    rejected.append(f"{table.name}: _Py_DebugOffsets differ at "
                                    f"{', '.join(clash[:3])}")
                    continue
                layout = layout.with_fields(mapped)
                layout.source = f"_Py_DebugOffsets of the process + table {table.name}"
            o = ObjectReader(self.memory, layout)
            problems = layout_check.structure_problems(o, layout, self.address)
            if not problems:
                interp = o.ptr(self.address + layout.runtime.interpreters_head)
                problems = layout_check.table_problems(o, layout, interp)
            if problems:
                rejected.append(f"{table.name}: {problems[0]}")
                continue
            if self.version.full and table.version != self.version.full:
                layout.source += f" (checked against this {self.version} build)"
            return layout
        why = "; ".join(rejected) if rejected else \
            f"no table for CPython {self.version.major}.{self.version.minor}"
        if debug is None:
            known = ", ".join(f"{a}.{b}" for a, b in layouts.known_versions())
            raise LayoutError(f"no layout fits this CPython {self.version} ({why}); "
                              f"nsdebug knows {known}: generate a table for this build "
                              f"with tools/gen_layouts.py")
        layout = self._debug_layout(debug, self.version)
        layout.missing = (f"no layout table fits CPython {self.version} ({why}); stacks "
                          f"come from the process's own _Py_DebugOffsets, the heap needs "
                          f"a table: tools/gen_layouts.py")
        problems = layout_check.structure_problems(ObjectReader(self.memory, layout), layout,
                                                   self.address)
        if problems:
            raise LayoutError(f"CPython {self.version}: {why}; and its _Py_DebugOffsets do "
                              f"not check out ({problems[0]})")
        self.warnings.append(layout.missing)
        return layout

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

    def _gil_fields(self, interp):
        """(address of the GIL's `locked` int, address of its last holder) for an
        interpreter, or None."""
        L, o = self.layout, self.objects
        if L.interp.gil_locked is not None:                      # 3.13+: debug offsets
            return interp.address + L.interp.gil_locked, interp.address + L.interp.gil_holder
        if L.runtime.gil_locked is not None:                     # 3.8-3.11: in _PyRuntime
            return self.address + L.runtime.gil_locked, self.address + L.runtime.gil_last_holder
        gil = o.ptr(interp.address + L.interp.ceval_gil)         # 3.12+: interp->ceval.gil
        if not gil:
            return None
        return gil + L.gil.locked, gil + L.gil.last_holder

    def gil_holder(self, interp):
        """The thread state holding the GIL of an interpreter, or None."""
        try:
            fields = self._gil_fields(interp)
            if fields is None:
                return None
            locked = struct.unpack("<i", self.memory.read(fields[0], 4))[0]
            holder = self.objects.ptr(fields[1])
        except FaultError:
            return None
        return holder if locked else None

    def waits_for_gil(self, futex_addr):
        """Whether a thread asleep in futex at `futex_addr` waits on a GIL: on the
        condition variable or mutex of some interpreter's GIL (or the pair a thread
        handing the GIL over waits on), which follow its `locked` field."""
        if not futex_addr:
            return False
        for interp in self.interpreters:
            try:
                fields = self._gil_fields(interp)
            except FaultError:
                continue
            if fields and fields[0] + GIL_WAIT_SPAN[0] <= futex_addr < \
                    fields[0] + GIL_WAIT_SPAN[1]:
                return True
        return False

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
        if not self.layout.complete:
            return out                  # threading._active is a dict: needs a table
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

    def class_names(self):
        """Qualified names of the types found in every module's namespace and of those
        read so far: the types a user may name, known without a heap walk."""
        o = self.objects
        names = {t.qualname for t in o.types_read()}
        for _, module in o.dict_items(self.main_interpreter.modules):
            try:
                md = o.ptr(module + self.layout.module.md_dict) \
                    if o.kind(module) == "module" else 0
                for _, value in o.dict_items(md) if md else ():
                    if o.kind(value) == "type":
                        names.add(o.type_info(value).qualname)
            except NsdebugError:
                continue
        return sorted(names)

    def collecting(self):
        """Whether the main interpreter's garbage collector was running (its own flag),
        None when this build's layout does not say."""
        from .environment import gc_state
        try:
            return gc_state(self).get("collecting")
        except (NsdebugError, struct.error):
            return None

    def frames(self, thread):
        """The thread's Python frames, innermost first (cached)."""
        if thread.frames_ is None:
            thread.frames_ = self.frame_walker.frames(thread.first_frame)
        return thread.frames_

    def thread_for_core(self, core_index):
        for t in self.threads:
            if t.core_index == core_index:
                return t
        return None


def attach(process, method=None):
    """The Runtime of a process; PythonNotFoundError when it holds no CPython."""
    return Runtime(process, method)
