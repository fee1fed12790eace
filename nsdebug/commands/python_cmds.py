"""Commands over the Python runtime: bt, thread, frame, up, down, locals, list, print, inspect."""

from __future__ import annotations

import linecache
import os

from ..cpython.objects import Preview
from ..errors import CommandError, NsdebugError
from ..record import Factory, record
from .registry import Arg, command


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
class SelectResult:
    thread: int | None
    frame: FrameRow | None
    message: str


@record
class LocalsResult:
    frame: FrameRow
    locals: list


@record
class ListResult:
    file: str
    line: int
    first: int
    lines: list
    error: str | None = None


@record
class ValueResult:
    expression: str
    address: int
    type: str
    value: str
    where: str


@record
class InspectResult:
    address: int
    type: str
    type_address: int
    refcount: int
    size: int | None
    preview: str
    fields: list               # [(name, preview)] attributes, items or struct fields
    error: str | None = None


def bounds(session):
    o = session.options
    return Preview(o.max_depth, o.max_items, o.max_string, o.redact)


def _py_thread(session, core_index=None):
    rt = session.runtime
    idx = session.thread_index if core_index is None else core_index
    t = rt.thread_for_core(idx)
    if t is None:
        tid = session.process.threads[idx].tid
        raise CommandError(f"thread {tid} has no Python thread state (see 'bt --all')")
    return t


def _frame_row(session, rt, frame, index, selected, with_locals, source=True):
    src = None
    if source and frame.code is not None and frame.line > 0:
        src = linecache.getline(frame.filename, frame.line).strip() or None
    row = FrameRow(index, frame.function, frame.filename, frame.line, src, frame.owner,
                   frame.entry, selected, frame.address, frame.error)
    if with_locals and frame.code is not None:
        row.locals = local_rows(session, rt, frame)
    return row


def local_rows(session, rt, frame):
    o = rt.objects
    b = bounds(session)
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


def _stack(session, rt, t, with_locals, native=None):
    frames = rt.frames(t)
    selected_thread = t.core_index == session.thread_index
    rows = [_frame_row(session, rt, f, i, selected_thread and i == session.frame_index,
                       with_locals) for i, f in enumerate(frames)]
    stack = ThreadStack(t.native_tid, t.thread_id, t.name, t.holds_gil, t.crashed,
                        selected_thread, t.interp_id, rows[::-1])
    if t.core_index is not None:
        _add_native(session, stack, t.core_index, frames, rows, rt.version, native)
    return stack


def _add_native(session, stack, core_index, py_frames, py_rows, version, mode):
    """The thread's state, and with `mode` ("python" or "all") its merged listing."""
    from ..native.stacks import is_plumbing, merge, thread_state
    if mode is None:
        stack.state = session.native.state(core_index, stack.holds_gil,
                                           _interpreter_module(session))
        return
    core_thread = session.process.threads[core_index]
    native = session.native.frames(core_index)
    stack.state = thread_state(native, stack.holds_gil, core_thread.regs)
    selected = core_index == session.thread_index
    key = version.key if hasattr(version, "key") else version
    listing, merged = merge(native, py_frames, key, mode == "all")
    out = []
    for kind, i, f in listing:
        if kind == "python":
            out.append(py_rows[i])
            continue
        caller = i > 0 and not native[i - 1].signal_frame
        places = session.native.locate(f, caller)
        sel = selected and session.native_index == i
        if not places or f.signal_frame:
            out.append(NativeRow(i, f.pc, f.function, f.offset, f.module, f.how, sel,
                                 signal=f.signal_frame))
            continue
        for depth, (name, file, line, inlined) in enumerate(reversed(places)):
            # The frame itself by its ELF symbol (as pystack and gdb name it), the
            # inlined calls by their DWARF names.
            out.append(NativeRow(i, f.pc, (name or f.function) if inlined else
                                 (f.function or name),
                                 f.offset if not inlined else 0, f.module, f.how,
                                 sel and depth == 0, file, line, inlined))
    if mode != "all":
        # The interpreter's own call machinery between Python frames, inlined or not.
        out = [r for r in out if not (isinstance(r, NativeRow) and is_plumbing(r.function))]
    stack.native, stack.merged = out, merged


def _interpreter_module(session):
    """The name of the module that holds the interpreter (libpython or python)."""
    try:
        return session.runtime.module.name
    except NsdebugError:
        return None


def native_stack(session, core_index, mode):
    """A ThreadStack for a core thread with no Python thread state."""
    t = session.process.threads[core_index]
    stack = ThreadStack(t.tid, 0, None, False, session.process.crashed_thread is t,
                        core_index == session.thread_index, 0, [])
    _add_native(session, stack, core_index, [], [], (0, 0), mode or "all")
    return stack


@command("bt", "Python stack of the selected thread (or all), oldest call first",
         Arg(("--all", "-a"), {"action": "store_true", "help": "every thread"}),
         Arg(("--locals", "-l"), {"action": "store_true", "help": "show each frame's locals"}),
         Arg(("--native",), {"action": "store_true",
                             "help": "merge the C frames in, hiding the interpreter's own "
                                     "call plumbing between Python frames"}),
         Arg(("--native-all",), {"action": "store_true",
                                 "help": "merge every C frame in, the eval loop included"}),
         aliases=("where", "backtrace"), category="python")
def bt(session, ns):
    """Python stacks like a traceback: each thread headed by tid, name, GIL holder, crash;
    with --native, the C frames each thread ran, Python frames in place of the eval loop."""
    rt = session.runtime
    mode = "all" if ns.native_all else "python" if ns.native else None
    if ns.all:
        threads = sorted(rt.threads, key=lambda t: (t.core_index is None, t.core_index or 0))
        stacks = [_stack(session, rt, t, ns.locals, mode) for t in threads]
        py_idx = {t.core_index for t in rt.threads}
        native = [t.tid for t in session.process.threads if t.index not in py_idx]
        if mode:
            stacks += [native_stack(session, t.index, mode)
                       for t in session.process.threads if t.index not in py_idx]
            native = []
        return BacktraceResult(str(rt.version), stacks, native)
    py = rt.thread_for_core(session.thread_index)
    if py is None and mode:
        return BacktraceResult(str(rt.version), [native_stack(session, session.thread_index,
                                                              mode)])
    return BacktraceResult(str(rt.version), [_stack(session, rt, _py_thread(session),
                                                    ns.locals, mode)])


@command("thread", "select a thread by tid (or by its index in 'threads')",
         Arg(("tid",), {"type": int, "help": "native thread id, or index"}),
         category="python")
def thread(session, ns):
    t = session.select_thread(ns.tid)
    frame = None
    try:
        rt = session.runtime
        pt = rt.thread_for_core(t.index)
        if pt is not None and rt.frames(pt):
            frame = _frame_row(session, rt, rt.frames(pt)[0], 0, True, False)
    except NsdebugError:
        pass
    return SelectResult(t.tid, frame, f"thread {t.tid} selected")


def _select_frame(session, index):
    rt = session.runtime
    frames = rt.frames(_py_thread(session))
    if not frames:
        raise CommandError("this thread has no Python frames")
    if not 0 <= index < len(frames):
        raise CommandError(f"no frame {index}: frames are 0 (innermost) to {len(frames) - 1}")
    session.frame_index = index
    row = _frame_row(session, rt, frames[index], index, True, False)
    return SelectResult(session.thread.tid, row, f"frame {index} selected")


@command("frame", "select a Python frame (0 = innermost), or a native one (c0 = innermost)",
         Arg(("index",), {"nargs": "?", "help": "frame number from 'bt', or cN from "
                                                 "'bt --native'"}),
         aliases=("f",), category="python")
def frame(session, ns):
    if ns.index is not None and ns.index[:1] in ("c", "C"):
        return _select_native(session, ns.index[1:])
    if ns.index is None:
        return _select_frame(session, session.frame_index)
    try:
        index = int(ns.index)
    except ValueError:
        raise CommandError(f"not a frame number: {ns.index!r}") from None
    return _select_frame(session, index)


def _select_native(session, text):
    try:
        index = int(text)
    except ValueError:
        raise CommandError(f"not a native frame number: c{text}") from None
    frames = session.native.frames(session.thread_index)
    if not 0 <= index < len(frames):
        raise CommandError(f"no native frame c{index}: they are c0 (innermost) to "
                           f"c{len(frames) - 1}")
    session.native_index = index
    f = frames[index]
    row = NativeRow(index, f.pc, f.function, f.offset, f.module, f.how, True)
    return NativeSelectResult(session.thread.tid, row,
                              f"native frame c{index} selected ('registers', 'disasm')")


@record
class NativeSelectResult:
    thread: int | None
    frame: NativeRow
    message: str


@record
class RegistersResult:
    thread: int | None
    frame: int | None           # the native frame (None: the thread's registers)
    registers: list             # [(name, value or None)]


@command("registers", "the registers of the selected native frame (or the thread)",
         aliases=("regs",))
def registers(session, ns):
    regs = session.frame_registers()
    names = ("rip", "rsp", "rbp", "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "r8", "r9",
             "r10", "r11", "r12", "r13", "r14", "r15", "eflags", "orig_rax", "fs_base")
    return RegistersResult(session.thread.tid, session.native_index,
                           [(n, regs.get(n)) for n in names if n in regs])


@command("up", "select the caller of the selected frame",
         Arg(("count",), {"type": int, "nargs": "?", "default": 1}), category="python")
def up(session, ns):
    return _select_frame(session, session.frame_index + ns.count)


@command("down", "select the frame the selected one called",
         Arg(("count",), {"type": int, "nargs": "?", "default": 1}), category="python")
def down(session, ns):
    return _select_frame(session, session.frame_index - ns.count)


def selected_frame(session):
    rt = session.runtime
    frames = rt.frames(_py_thread(session))
    if not frames:
        raise CommandError("this thread has no Python frames")
    idx = min(session.frame_index, len(frames) - 1)
    return rt, frames[idx], idx


@command("locals", "arguments and locals of the selected frame", category="python")
def locals_(session, ns):
    rt, f, idx = selected_frame(session)
    row = _frame_row(session, rt, f, idx, True, True)
    return LocalsResult(row, row.locals or [])


@command("list", "source lines around the selected frame's current line",
         Arg(("--context", "-n"), {"type": int, "default": 5, "help": "lines on each side"}),
         aliases=("l",), category="python")
def list_(session, ns):
    rt, f, _ = selected_frame(session)
    if f.code is None:
        raise CommandError(f"frame has no code: {f.error}")
    first = max(1, f.line - ns.context)
    if not os.path.isfile(f.filename):
        return ListResult(f.filename, f.line, first, [], f"{f.filename} is not on this machine")
    lines = [linecache.getline(f.filename, n).rstrip("\n")
             for n in range(first, f.line + ns.context + 1)]
    while lines and not lines[-1] and len(lines) > f.line - first + 1:
        lines.pop()
    return ListResult(f.filename, f.line, first, lines)


def _frame_globals(rt, f):
    o = rt.objects
    if rt.layout.frameobject.f_globals is not None and rt.version.key < (3, 11):
        return o.ptr(f.address + rt.layout.frameobject.f_globals)
    return o.ptr(f.address + rt.layout.iframe.globals)


def lookup_name(session, name):
    """(address, where) of a name visible in the selected frame: local, global, builtin."""
    rt, f, idx = selected_frame(session)
    for loc in rt.frame_walker.locals_of(f):
        if loc.name == name:
            return loc.address, f"local of frame {idx} ({f.function})"
    o = rt.objects
    g = _frame_globals(rt, f)
    if g:
        v = o.dict_get_str(g, name)
        if v:
            return v, f"global of {f.filename}"
    v = o.dict_get_str(rt.main_interpreter.builtins, name)
    if v:
        return v, "builtin"
    raise CommandError(f"name {name!r} is not a local, global or builtin of frame {idx}")


def resolve_object(session, text):
    """(address, where) for a name of the selected frame or an address."""
    text = text.strip()
    if text.isidentifier():
        try:
            return lookup_name(session, text)
        except CommandError:
            try:
                return session.parse_address(text), "symbol"
            except CommandError:
                pass
            raise
    return session.parse_address(text), "address"


@command("print", "a local/global of the selected frame, or the object at an address",
         Arg(("what",), {"help": "a name, or an address (0x..., @id)"}, complete="local"),
         aliases=("p",), category="python")
def print_(session, ns):
    addr, where = resolve_object(session, ns.what)
    rt = session.runtime
    o = rt.objects
    try:
        tname = o.info(addr).qualname
    except NsdebugError as e:
        tname = f"<invalid: {e}>"
    return ValueResult(ns.what, addr, tname, o.preview(addr, bounds(session)), where)


@command("inspect", "the whole object: type, refcount, size, attributes or items",
         Arg(("what",), {"help": "an address (0x..., @id) or a name"}, complete="address"),
         Arg(("--depth", "-d"), {"type": int, "default": 1, "help": "nesting of previews"}),
         Arg(("--limit",), {"type": int, "default": 100, "help": "items or attributes shown"}),
         category="python")
def inspect(session, ns):
    from ..cpython.inspect import inspect_object
    addr, _ = resolve_object(session, ns.what)
    b = bounds(session)
    b.depth = ns.depth
    return InspectResult(**inspect_object(session.runtime, addr, b, ns.limit))
