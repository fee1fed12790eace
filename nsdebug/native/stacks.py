"""Native stacks of a core's threads, merged with their Python frames, and what each
thread was doing as its C stack shows it."""

from __future__ import annotations

from .dwarf import SourceInfo
from .dwarfcache import InflatedSections
from .symbolize import Symbolizer
from .unwind import Unwinder

# x86-64 system call numbers a parked service thread is usually in.
SYSCALLS = {
    0: "read", 1: "write", 7: "poll", 17: "pread64", 18: "pwrite64", 19: "readv",
    20: "writev", 23: "select", 24: "sched_yield", 34: "pause", 35: "nanosleep",
    40: "sendfile", 42: "connect", 43: "accept", 44: "sendto", 45: "recvfrom",
    46: "sendmsg", 47: "recvmsg", 61: "wait4", 72: "fcntl", 73: "flock", 74: "fsync",
    75: "fdatasync", 128: "rt_sigtimedwait", 130: "rt_sigsuspend", 202: "futex",
    230: "clock_nanosleep", 232: "epoll_wait", 247: "waitid", 257: "openat",
    270: "pselect6", 271: "ppoll", 281: "epoll_pwait", 288: "accept4", 299: "recvmmsg",
    307: "sendmmsg", 426: "io_uring_enter", 441: "epoll_pwait2",
}
GIL_WAIT = ("take_gil", "_PyEval_AcquireLock", "PyEval_RestoreThread",
            "_PyThreadState_Attach", "PyEval_AcquireThread")
# A collection in progress (names without an LTO suffix such as ".lto_priv.0").
GC_PREFIXES = ("gc_collect", "_PyGC_Collect", "_Py_RunGC", "collect_with_callback")
GC_EXACT = ("collect",)
# The interpreter's own call machinery between two Python frames (hidden by --native).
PLUMBING_PREFIXES = ("PyEval", "_PyEval", "_Py", "_TAIL_CALL_", "PyObject_Call",
                     "call_function", "classmethoddescr_call", "cmpwrapper_call",
                     "fast_function", "function_call", "instance_call", "instancemethod_call",
                     "methoddescr_call", "proxy_call", "slot_tp_call", "type_call",
                     "weakref_call", "wrap_call", "wrapper_call", "wrapperdescr_call",
                     "do_call_core")


def is_eval(name):
    """An activation of the bytecode loop (the LTO build's .cold part included)."""
    return bool(name) and (name == "_PyEval_EvalFrameDefault"
                           or name.startswith("_PyEval_EvalFrameDefault."))


def is_plumbing(name):
    if not name:
        return False
    return name.startswith(PLUMBING_PREFIXES) or "vectorcall" in name.lower()


class NativeStacks:
    """Unwinds each core thread once, on first use."""

    def __init__(self, process, debug_dirs=(), use_cache=True):
        self.process = process
        self.symbolizer = Symbolizer(process, debug_dirs)
        self.unwinder = Unwinder(process, self.symbolizer)
        self.source = SourceInfo(InflatedSections() if use_cache else None)
        self._frames = {}
        self._bare = {}                  # unnamed frames, for the thread state alone

    def locate(self, frame, caller):
        """[(function, file, line, inlined)] innermost first for a native frame (the
        address of its call for a caller); [] where no DWARF describes the code."""
        m = self.process.module_at(frame.pc)
        if m is None:
            return []
        vaddr = frame.pc - (1 if caller else 0) - m.bias
        for f in (self.symbolizer.debug_file(m), m.file):
            found = self.source.locate(f, vaddr)
            if found:
                return found
        return []

    def frames(self, core_index):
        """Native frames of core thread `core_index`, innermost first."""
        if core_index not in self._frames:
            thread = self.process.threads[core_index]
            self._frames[core_index] = self.unwinder.unwind(thread)
        return self._frames[core_index]

    def state(self, core_index, holds_gil, interpreter):
        """thread_state() at the cost of naming only the interpreter's frames (the GIL
        and the collector live there): plain `bt` stays as fast as it was."""
        frames = self._frames.get(core_index)
        if frames is None:
            if core_index not in self._bare:
                thread = self.process.threads[core_index]
                self._bare[core_index] = self.unwinder.unwind(thread, names=False)
            frames = self._bare[core_index]
            for k, f in enumerate(frames):
                if f.function is None and f.module == interpreter:
                    lookup = f.pc if k == 0 or frames[k - 1].signal_frame else f.pc - 1
                    f.function = self.symbolizer.symbolize(lookup)[0] or ""
        return thread_state(frames, holds_gil, self.process.threads[core_index].regs)


def merge(native, python, version, everything):
    """One listing, oldest first: [("native", i, frame) | ("python", i, frame)] with i the
    frame's index innermost-first in its own stack; and whether the stacks merged. The
    eval loop's frames give way to their Python frames unless `everything`; hiding the
    rest of the interpreter's plumbing is the caller's (per inlined call too).

    Each activation of the eval loop runs the Python frames from one entry frame (a call
    from C) to the next; below 3.11 every Python frame is its own activation. When the
    counts differ (no symbols for the loop, a damaged stack) the stacks are not merged:
    the native frames come alone and the caller shows the Python ones apart."""
    groups = []
    for i in range(len(python) - 1, -1, -1):             # oldest first
        f = python[i]
        if not groups or version < (3, 11) or f.entry:
            groups.append([])
        groups[-1].append((i, f))
    evals = _eval_frames(native, groups)
    merged = len(evals) == len(groups) and bool(groups)
    evals = set(evals)
    rows = []
    k = 0
    for n in range(len(native) - 1, -1, -1):              # oldest first
        f = native[n]
        if merged and n in evals:
            if everything:
                rows.append(("native", n, f))
            rows.extend(("python", i, pf) for i, pf in groups[k])
            k += 1
            continue
        rows.append(("native", n, f))
    return rows, merged


def _eval_frames(native, groups):
    """Indices of the eval loop's activations in `native`.

    3.12+: each call from C into Python leaves a shim frame as a local of the eval
    loop's C frame, so a native frame whose stack holds a shim is an activation, with no
    symbol needed (a stripped build's loop may have none); the others are the frames in
    the same function (the same FDE: the same code start) or named as the loop. (The
    outermost shim of a 3.15 thread is in its thread state, not on its stack.)"""
    found = set()
    for grp in groups:
        shim = grp[0][1].shim
        if shim:
            found.update(n for n, f in enumerate(native)
                         if f.regs.get(7) is not None and f.regs[7] <= shim < f.cfa)
    starts = {native[n].func_start for n in found} - {None}
    return sorted(n for n, f in enumerate(native)
                  if n in found or f.func_start in starts or is_eval(f.function))


def thread_state(native, holds_gil, regs):
    """A few words on what the thread was doing, from its C stack and registers."""
    names = [f.function or "" for f in native]
    parts = []
    if any(n.startswith(GIL_WAIT) for n in names[:16]) and not holds_gil:
        parts.append("waiting for the GIL")
    elif holds_gil:
        parts.append("holding the GIL")
    bases = [n.split(".", 1)[0] for n in names]
    if any(b in GC_EXACT or b.startswith(GC_PREFIXES) for b in bases):
        parts.append("in a GC run")
    nr = regs.get("orig_rax", -1)
    if nr is not None and 0 <= nr < 1 << 16:
        parts.append(f"in system call {SYSCALLS.get(nr, f'#{nr}')}")
    return "; ".join(parts) or None
