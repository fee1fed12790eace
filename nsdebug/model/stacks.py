"""Threads and their stacks: Python frames with locals, and the C frames each thread
ran merged in (the eval loop's activations give way to the Python frames they ran),
with what each thread was doing. Where native stacks meet the interpreter: native/
unwinds and names C frames knowing nothing of Python; this module knows both."""

from __future__ import annotations

from arthur.coreformat import SYSCALL_NUMBERS, SYSCALLS

from ..cpython.objects import Preview
from ..errors import NsdebugError
from ..record import Factory, record
from ..sourcelines import getline

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


@record
class Selection:
    """What the user selected (the shell's state): rows of it are marked selected."""
    thread_index: int = 0          # index into Process.threads
    frame_index: int = 0           # 0 = innermost Python frame of the selected thread
    native_index: int | None = None   # the selected native frame (frame cN)


@record
class LocalRow:
    name: str
    kind: str
    address: int
    type: str
    value: str


@record
class FrameRow:
    index: int                  # 0 = innermost
    function: str
    file: str
    line: int
    source: str | None
    owner: str
    entry: bool
    selected: bool
    address: int
    error: str | None = None
    locals: list | None = None
    stack: list | None = None   # [LocalRow] of its value stack (see stack_rows)


@record
class NativeRow:
    index: int                  # in the thread's native stack, 0 = innermost (frame cN)
    pc: int
    function: str | None
    offset: int
    module: str | None
    how: str                    # how the unwinder found it: cfi, signal, a guess...
    selected: bool = False
    file: str | None = None     # source file and line, where DWARF says
    line: int = 0
    inlined: bool = False       # a call the compiler inlined into the frame below it
    signal: bool = False        # the signal trampoline: a handler was called from here
    kind: str = "native"


@record
class ThreadStack:
    tid: int | None
    thread_id: int
    name: str | None
    holds_gil: bool
    crashed: bool
    selected: bool
    interpreter: int
    frames: list               # oldest first, like a traceback
    state: str | None = None   # from the native stack: GIL, GC, system call
    native: list | None = None  # with --native: NativeRow and FrameRow, oldest first
    merged: bool | None = None  # the native and Python stacks were merged


@record
class BacktraceResult:
    python: str
    threads: list
    native_only: list = Factory(list)   # tids with no Python thread state


@record
class ListResult:
    file: str
    line: int
    first: int
    lines: list
    error: str | None = None


@record
class ThreadRow:
    index: int
    tid: int
    pc: int
    symbol: str | None
    module: str | None
    sp: int
    signal: str | None
    selected: bool
    state: str | None = None     # GIL, GC, system call, what it waits for
    module_offset: int = 0       # pc - the module's start, for a pc no symbol covers


@record
class ThreadsResult:
    threads: list


# -- Python frames -----------------------------------------------------------------------------
def python_thread(target, core_index):
    """The Python thread state of core thread `core_index` (NsdebugError if none)."""
    t = target.runtime.thread_for_core(core_index)
    if t is None:
        tid = target.process.threads[core_index].tid
        raise NsdebugError(f"thread {tid} has no Python thread state (see 'bt --all')")
    return t


def frame_row(rt, frame, index, selected, with_locals=False, bounds=None, source=True,
              with_stack=False):
    """FrameRow of a Python frame; with its locals and its value stack (previews within
    `bounds`)."""
    src = None
    if source and frame.code is not None and frame.line > 0:
        src = getline(frame.filename, frame.line).strip() or None
    row = FrameRow(index, frame.function, frame.filename, frame.line, src, frame.owner,
                   frame.entry, selected, frame.address, frame.error)
    if with_locals and frame.code is not None:
        row.locals = local_rows(rt, frame, bounds)
    if with_stack and frame.code is not None:
        row.stack = stack_rows(rt, frame, bounds)
    return row


# Kinds of value-stack rows: below the stack pointer the frame recorded; above it (left
# from an earlier instruction); and where it recorded none (live or left, unknown).
STACK_LIVE, STACK_STALE, STACK_UNKNOWN = "stack", "stack (above top)", "stack (top unknown)"


def stack_rows(rt, frame, bounds=None):
    """[LocalRow] of the objects on a frame's value stack, bottom first, named by slot
    ("[0]" the bottom) and marked live, above the recorded top, or top unknown."""
    o = rt.objects
    b = bounds or Preview()
    slots, depth = rt.frame_walker.stack_slots(frame)
    out = []
    for slot, addr in slots:
        kind = STACK_UNKNOWN if depth is None else STACK_LIVE if slot < depth else \
            STACK_STALE
        try:
            tname = o.info(addr).qualname
        except NsdebugError:
            tname = "?"
        out.append(LocalRow(f"[{slot}]", kind, addr, tname, o.preview(addr, b)))
    return out


def local_rows(rt, frame, bounds=None):
    """[LocalRow] of a frame's arguments and locals, each previewed within `bounds`."""
    o = rt.objects
    b = bounds or Preview()
    out = []
    try:
        locals_ = rt.frame_walker.locals_of(frame)
    except NsdebugError as e:
        return [LocalRow("<locals>", "error", 0, "", f"<invalid: {e}>")]
    for loc in locals_:
        try:
            tname = o.info(loc.address).qualname
        except NsdebugError:
            tname = "?"
        out.append(LocalRow(loc.name, loc.kind, loc.address, tname, o.preview(loc.address, b)))
    return out


def source_listing(frame, context=5):
    """ListResult: the source lines around a frame's current line, from the file on this
    machine (an error says when it is not here)."""
    import os
    if frame.code is None:
        raise NsdebugError(f"frame has no code: {frame.error}")
    first = max(1, frame.line - context)
    if not os.path.isfile(frame.filename):
        return ListResult(frame.filename, frame.line, first, [],
                          f"{frame.filename} is not on this machine")
    lines = [getline(frame.filename, n).rstrip("\n")
             for n in range(first, frame.line + context + 1)]
    while lines and not lines[-1] and len(lines) > frame.line - first + 1:
        lines.pop()
    return ListResult(frame.filename, frame.line, first, lines)


# -- whole stacks ------------------------------------------------------------------------------
def thread_stack(target, t, with_locals=False, native=None, bounds=None, sel=None,
                 waits=None):
    """ThreadStack of a Python thread: its frames oldest first, what it was doing (with
    `waits`, wait_phrases(): the lock it waits for), and with `native` ("python":
    hiding the interpreter's plumbing, or "all") its C frames merged in."""
    sel = sel or Selection()
    waits = wait_phrases(target) if waits is None else waits
    rt = target.runtime
    frames = rt.frames(t)
    selected_thread = t.core_index == sel.thread_index
    rows = [frame_row(rt, f, i, selected_thread and i == sel.frame_index, with_locals,
                      bounds) for i, f in enumerate(frames)]
    stack = ThreadStack(t.native_tid, t.thread_id, t.name, t.holds_gil, t.crashed,
                        selected_thread, t.interp_id, rows[::-1])
    if t.core_index is not None:
        _add_native(target, stack, t.core_index, frames, rows, rt.version.key, native, sel,
                    waits.get(t.native_tid))
    return stack


def native_stack(target, core_index, mode, sel=None):
    """ThreadStack of a core thread with no Python thread state: its C frames alone."""
    sel = sel or Selection()
    t = target.process.threads[core_index]
    stack = ThreadStack(t.tid, 0, None, False, target.process.crashed_thread is t,
                        core_index == sel.thread_index, 0, [])
    _add_native(target, stack, core_index, [], [], (0, 0), mode or "all", sel)
    return stack


def backtrace(target, every=False, with_locals=False, native=None, bounds=None, sel=None,
              waits=None):
    """BacktraceResult: the stack of the selected thread, or of every thread (`every`),
    Python frames oldest first; `native` as in thread_stack(); `waits` what each thread
    waits for (wait_phrases(), found here when not given)."""
    sel = sel or Selection()
    rt = target.runtime
    if every:
        threads = sorted(rt.threads, key=lambda t: (t.core_index is None, t.core_index or 0))
        waits = wait_phrases(target) if waits is None else waits
        stacks = [thread_stack(target, t, with_locals, native, bounds, sel, waits)
                  for t in threads]
        py_idx = {t.core_index for t in rt.threads}
        others = [t for t in target.process.threads if t.index not in py_idx]
        if native:
            result = BacktraceResult(str(rt.version), stacks + [
                native_stack(target, t.index, native, sel) for t in others])
            target.native.save()
            return result
        return BacktraceResult(str(rt.version), stacks, [t.tid for t in others])
    py = rt.thread_for_core(sel.thread_index)
    if py is None and native:
        result = BacktraceResult(str(rt.version), [native_stack(target, sel.thread_index,
                                                                native, sel)])
    else:
        result = BacktraceResult(str(rt.version), [thread_stack(
            target, python_thread(target, sel.thread_index), with_locals, native, bounds,
            sel, waits)])
    if native:
        target.native.save()
    return result


def _add_native(target, stack, core_index, py_frames, py_rows, version, mode, sel,
                waits_for=None):
    """The thread's state, and with `mode` ("python" or "all") its merged listing."""
    if mode is None:
        stack.state = thread_state_cheap(target, core_index, stack.holds_gil, waits_for)
        return
    core_thread = target.process.threads[core_index]
    native = target.native.frames(core_index)
    stack.state = thread_state(native, stack.holds_gil, core_thread.regs, waits_for)
    selected = core_index == sel.thread_index
    listing, merged = merge(native, py_frames, version, mode == "all")
    out = []
    for kind, i, f in listing:
        if kind == "python":
            out.append(py_rows[i])
            continue
        caller = i > 0 and not native[i - 1].signal_frame
        places = target.native.locate(f, caller)
        is_sel = selected and sel.native_index == i
        if not places or f.signal_frame:
            out.append(NativeRow(i, f.pc, f.function, f.offset, f.module, f.how, is_sel,
                                 signal=f.signal_frame))
            continue
        for depth, (name, file, line, inlined) in enumerate(reversed(places)):
            # The frame itself by its ELF symbol (as pystack and gdb name it), the
            # inlined calls by their DWARF names.
            out.append(NativeRow(i, f.pc, (name or f.function) if inlined else
                                 (f.function or name),
                                 f.offset if not inlined else 0, f.module, f.how,
                                 is_sel and depth == 0, file, line, inlined))
    if mode != "all":
        # The interpreter's own call machinery between Python frames, inlined or not.
        out = [r for r in out if not (isinstance(r, NativeRow) and is_plumbing(r.function))]
    stack.native, stack.merged = out, merged


def thread_rows(target, sel=None):
    """ThreadsResult: each core thread's tid, pc and its symbol, sp, signal and state."""
    from ..corefile.notes import signal_name
    sel = sel or Selection()
    p = target.process
    holders = _gil_holders(target)
    waits = wait_phrases(target)
    rows = []
    for t in p.threads:
        # The pc named where a symbol (of the file or its debug file) covers it, else
        # placed in its file: no unwind, so `threads` costs what `bt` does.
        name, off, m = target.native.symbolizer.symbolize(t.pc)
        sym = None if name is None else (f"{name}+{off:#x}" if off else name)
        rows.append(ThreadRow(t.index, t.tid, t.pc, sym, m.name if m else None, t.sp,
                              None if not t.signo else signal_name(t.signo),
                              t.index == sel.thread_index,
                              thread_state_cheap(target, t.index, t.index in holders,
                                                 waits.get(t.tid)),
                              off if name is None and m else 0))
    return ThreadsResult(rows)


def _gil_holders(target):
    """Core thread indices whose Python thread state holds the GIL (none without Python)."""
    try:
        return {t.core_index for t in target.runtime.threads if t.holds_gil}
    except NsdebugError:
        return set()


# -- what a thread was doing -----------------------------------------------------------------------
def wait_phrases(target, found=None):
    """{native tid: what the thread waits for, in a few words} for the threads blocked
    on a lock or in a join (model/locks.py, or its result `found` when the caller has
    it); empty without Python."""
    from .locks import locks
    try:
        found = found or locks(target, everything=False)
    except NsdebugError:
        return {}
    return {t.tid: t.phrase for t in found.threads if t.phrase}


def thread_state_cheap(target, core_index, holds_gil, waits_for=None):
    """What the thread was doing, from what the core already says, with no unwind:
    holding the GIL (the runtime says), a collection running on it (the collector's own
    flag, on the GIL holder), waiting for the GIL (the futex it sleeps on, rdi at the
    call, is in a GIL's struct) or for `waits_for`, and its system call (orig_rax)."""
    t = target.process.threads[core_index]
    nr = _syscall(t.regs)
    parts = []
    if holds_gil:
        parts.append("holding the GIL")
        try:
            if target.runtime.collecting():
                parts.append("in a GC run")
        except NsdebugError:
            pass
    elif nr == SYS_FUTEX:
        try:
            if target.runtime.waits_for_gil(t.regs.get("rdi")):
                parts.append("waiting for the GIL")
        except NsdebugError:
            pass
    if waits_for:
        parts.append(waits_for)
    parts += _syscall_phrase(nr)
    return "; ".join(parts) or None


SYS_FUTEX = SYSCALL_NUMBERS["futex"]


def _syscall(regs):
    """The system call the thread was in (orig_rax), None when not in one."""
    nr = regs.get("orig_rax", -1)
    return nr if nr is not None and 0 <= nr < 1 << 16 else None


def _syscall_phrase(nr):
    if nr is None:
        return []
    return [f"in system call {SYSCALLS.get(nr, f'#{nr}')}"]


def thread_state(native, holds_gil, regs, waits_for=None):
    """A few words on what the thread was doing, from its C stack and registers (and
    `waits_for`, what it waits for as wait_phrases() says)."""
    names = [f.function or "" for f in native]
    parts = []
    if any(n.startswith(GIL_WAIT) for n in names[:16]) and not holds_gil:
        parts.append("waiting for the GIL")
    elif holds_gil:
        parts.append("holding the GIL")
    bases = [n.split(".", 1)[0] for n in names]
    if any(b in GC_EXACT or b.startswith(GC_PREFIXES) for b in bases):
        parts.append("in a GC run")
    if waits_for:
        parts.append(waits_for)
    parts += _syscall_phrase(_syscall(regs))
    return "; ".join(parts) or None


# -- merging native frames with Python's ---------------------------------------------------------
def is_eval(name):
    """An activation of the bytecode loop (the LTO build's .cold part included)."""
    return bool(name) and (name == "_PyEval_EvalFrameDefault"
                           or name.startswith("_PyEval_EvalFrameDefault."))


def is_plumbing(name):
    """The interpreter's own call machinery, which --native hides between Python frames."""
    if not name:
        return False
    return name.startswith(PLUMBING_PREFIXES) or "vectorcall" in name.lower()


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
