"""Commands over the Python runtime: bt, thread, frame, up, down, locals, list, print,
inspect, registers. The stacks and values come from model/stacks.py and cpython/;
what is here is the selection and the arguments."""

from __future__ import annotations

from ..errors import CommandError, NsdebugError
from ..record import record
from ..model import stacks
from ..model.stacks import FrameRow, ListResult, NativeRow  # noqa: F401 - results shown
from .registry import Arg, command


@record
class SelectResult:
    thread: int | None
    frame: FrameRow | None
    message: str


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


@record
class LocalsResult:
    frame: FrameRow
    locals: list
    stack: list | None = None     # with --stack: [LocalRow] of the value stack


@record
class ValueResult:
    expression: str
    address: int
    type: str
    value: str
    where: str


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
    mode = "all" if ns.native_all else "python" if ns.native else None
    return stacks.backtrace(session.target, ns.all, ns.locals, mode, session.bounds,
                            session.selection)


@command("thread", "select a thread by tid (or by its index in 'threads')",
         Arg(("tid",), {"type": int, "help": "native thread id, or index"}),
         category="python")
def thread(session, ns):
    t = session.select_thread(ns.tid)
    frame = None
    try:
        rt = session.target.runtime
        pt = rt.thread_for_core(t.index)
        if pt is not None and rt.frames(pt):
            frame = stacks.frame_row(rt, rt.frames(pt)[0], 0, True)
    except NsdebugError:
        pass
    return SelectResult(t.tid, frame, f"thread {t.tid} selected")


def _select_frame(session, index):
    rt = session.target.runtime
    frames = rt.frames(stacks.python_thread(session.target, session.thread_index))
    if not frames:
        raise CommandError("this thread has no Python frames")
    if not 0 <= index < len(frames):
        raise CommandError(f"no frame {index}: frames are 0 (innermost) to {len(frames) - 1}")
    session.frame_index = index
    row = stacks.frame_row(rt, frames[index], index, True, with_stack=True,
                           bounds=session.bounds)
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
    frames = session.target.native.frames(session.thread_index)
    if not 0 <= index < len(frames):
        raise CommandError(f"no native frame c{index}: they are c0 (innermost) to "
                           f"c{len(frames) - 1}")
    session.native_index = index
    f = frames[index]
    row = NativeRow(index, f.pc, f.function, f.offset, f.module, f.how, True)
    return NativeSelectResult(session.thread.tid, row,
                              f"native frame c{index} selected ('registers', 'disasm')")


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


@command("locals", "arguments and locals of the selected frame",
         Arg(("--stack", "-s"), {"action": "store_true",
                                 "help": "also the values on the frame's evaluation stack"}),
         category="python")
def locals_(session, ns):
    rt, f, idx = session.selected_frame()
    row = stacks.frame_row(rt, f, idx, True, True, session.bounds, with_stack=ns.stack)
    return LocalsResult(row, row.locals or [], row.stack)


@command("list", "source lines around the selected frame's current line",
         Arg(("--context", "-n"), {"type": int, "default": 5, "help": "lines on each side"}),
         aliases=("l",), category="python")
def list_(session, ns):
    _rt, f, _ = session.selected_frame()
    return stacks.source_listing(f, ns.context)


@command("print", "a local/global of the selected frame, or the object at an address",
         Arg(("what",), {"help": "a name, or an address (0x..., @id)"}, complete="local"),
         aliases=("p",), category="python")
def print_(session, ns):
    addr, where = session.resolve_object(ns.what)
    o = session.target.runtime.objects
    try:
        tname = o.info(addr).qualname
    except NsdebugError as e:
        tname = f"<invalid: {e}>"
    return ValueResult(ns.what, addr, tname, o.preview(addr, session.bounds), where)


@command("inspect", "the whole object: type, refcount, size, attributes or items",
         Arg(("what",), {"help": "an address (0x..., @id) or a name"}, complete="address"),
         Arg(("--depth", "-d"), {"type": int, "default": 1, "help": "nesting of previews"}),
         Arg(("--limit",), {"type": int, "default": 100, "help": "items or attributes shown"}),
         category="python")
def inspect(session, ns):
    """The object's type, refcount, size and fields; for an asyncio Task also its state,
    its coroutine, the await chain and what it waits on (or the tasks of its gather)."""
    from ..cpython.inspect import inspect_object
    from ..heap.tasks import TASK_TYPES, TaskReader
    addr, _ = session.resolve_object(ns.what)
    b = session.bounds
    b.depth = ns.depth
    rt = session.target.runtime
    result = inspect_object(rt, addr, b, ns.limit)
    reader = TaskReader(rt, b)
    if not result.error and reader.kind_of(addr, TASK_TYPES):
        try:
            result.task = reader.task(addr)
        except NsdebugError as e:
            result.error = f"as an asyncio Task: {e}"
    return result
