"""Commands about the process as a native image: info, threads, maps, x, sym, disasm."""

from __future__ import annotations

import os

from ..errors import CommandError, FaultError, NsdebugError
from ..record import Factory, record
from .registry import Arg, command, help_lines


@record
class SignalInfo:
    number: int
    name: str
    code: int
    code_name: str
    fault_address: int | None
    sender_pid: int | None
    thread: int | None


@record
class InfoResult:
    core: str
    core_size: int
    made_by: str
    pid: int
    ppid: int | None
    uid: int | None
    state: str | None
    command_line: str
    executable: str | None
    threads: int
    signal: SignalInfo | None
    python: dict | None = None
    crash: str | None = None
    warnings: list = Factory(list)


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
    state: str | None = None     # from its C stack: GIL, GC, system call


@record
class ThreadsResult:
    threads: list


@record
class MapRow:
    start: int
    end: int
    perms: str
    size: int
    file: str | None
    offset: int | None
    source: str      # "core", "file", "core+file", "missing"


@record
class MapsResult:
    maps: list


@record
class HexdumpResult:
    address: int
    data: str         # hex of the bytes read
    requested: int
    error: str | None = None


@record
class SymbolResult:
    address: int
    module: str | None
    symbol: str | None
    offset: int
    mapping: str | None


@record
class DisasmResult:
    address: int
    instructions: list
    error: str | None = None


def signal_info(process):
    si = process.notes.siginfo
    if si is None or si.signo == 0:
        return None
    crashed = process.crashed_thread
    return SignalInfo(si.signo, si.name, si.code, si.code_name, si.addr, si.sender_pid,
                      crashed.tid if crashed else None)


@record
class HelpResult:
    topic: str                  # the command asked about, "" for the list of all
    help: list                  # the text, line by line


@command("help", "every command, or the options of one",
         Arg(("topic",), {"nargs": "?", "help": "a command"}), needs_core=False)
def help_(session, ns):
    """The commands by category, or one command's usage and options: the same in the
    shell, in batch (-c help) and with --json."""
    return HelpResult(ns.topic or "", list(help_lines([ns.topic] if ns.topic else [])))


@command("info", "what the process was and why the core exists")
def info(session, ns):
    """Process, signal, threads and how the core was made; with Python, the crash summary."""
    p = session.process
    ps = p.notes.prpsinfo
    argv = p.initial_stack.argv
    cmdline = " ".join(argv) if argv else (ps.psargs if ps else "")
    result = InfoResult(
        core=p.path, core_size=p.core_size, made_by=p.made_by, pid=p.pid,
        ppid=ps.ppid if ps else None, uid=ps.uid if ps else None,
        state=ps.state if ps else None, command_line=cmdline,
        executable=p.executable_path, threads=len(p.threads), signal=signal_info(p),
        warnings=list(p.warnings))
    from . import python_summary
    python_summary.add_to_info(session, result)
    return result


@command("threads", "every thread: tid, pc and its symbol, sp")
def threads(session, ns):
    from ..native.stacks import thread_state
    p = session.process
    holders = _gil_holders(session)
    rows = []
    for t in p.threads:
        native = session.native.frames(t.index)
        top = native[0] if native else None
        if top is not None and top.function:
            sym, m_name = (f"{top.function}+{top.offset:#x}" if top.offset else
                           top.function), top.module
        else:
            m, name, off = p.symbolize(t.pc)
            sym = None if name is None else (f"{name}+{off:#x}" if off else name)
            m_name = m.name if m else None
        rows.append(ThreadRow(t.index, t.tid, t.pc, sym, m_name, t.sp,
                              None if not t.signo else _signame(t.signo),
                              t.index == session.thread_index,
                              thread_state(native, t.index in holders, t.regs)))
    return ThreadsResult(rows)


def _gil_holders(session):
    """Core thread indices whose Python thread state holds the GIL (none without Python)."""
    try:
        return {t.core_index for t in session.runtime.threads if t.holds_gil}
    except NsdebugError:
        return set()


def _signame(signo):
    from ..corefile.notes import signal_name
    return signal_name(signo)


@command("maps", "the memory mappings and where their bytes come from")
def maps(session, ns):
    p = session.process
    files = sorted(p.notes.files, key=lambda f: f.start)
    rows = []
    for seg in p.memory.segments:
        fm = seg.file or next((f for f in files if f.start == seg.start), None)
        size = seg.end - seg.start
        if seg.filesz >= size:
            source = "core"
        elif seg.file_source is not None:
            source = "core+file" if seg.filesz else "file"
        elif seg.filesz:
            source = "core (partial)"
        else:
            source = "missing"
        rows.append(MapRow(seg.start, seg.end, seg.perms, size,
                           fm.path if fm else None, fm.offset if fm else None, source))
    return MapsResult(rows)


@command("x", "hexdump memory",
         Arg(("address",), {"help": "address, symbol, $register"}, complete="address"),
         Arg(("count",), {"nargs": "?", "default": "64", "help": "bytes (default 64)"}))
def hexdump(session, ns):
    addr = session.parse_address(ns.address)
    count = _count(ns.count, 1 << 20)
    mem = session.process.memory
    try:
        return HexdumpResult(addr, mem.read(addr, count).hex(), count)
    except FaultError as e:
        got = b""
        if e.address > addr:
            got = mem.read(addr, e.address - addr)
        return HexdumpResult(addr, got.hex(), count, str(e))


def _count(text, limit):
    try:
        n = int(text, 0)
    except ValueError:
        raise CommandError(f"not a count: {text!r}") from None
    if not 0 < n <= limit:
        raise CommandError(f"count must be between 1 and {limit}")
    return n


@command("sym", "the symbol and mapping at an address",
         Arg(("address",), {"help": "address, symbol, $register"}, complete="address"))
def sym(session, ns):
    p = session.process
    addr = session.parse_address(ns.address)
    m, name, off = p.symbolize(addr)
    seg = p.memory.find_segment(addr)
    mapping = None
    if seg is not None:
        fm = seg.file
        mapping = f"{seg.start:#x}-{seg.end:#x} {seg.perms}" + (f" {fm.path}" if fm else "")
    return SymbolResult(addr, m.path if m else None, name, off, mapping)


@command("disasm", "disassemble machine code (default: at the selected thread's pc)",
         Arg(("address",), {"nargs": "?", "help": "where to start (default $pc)"},
             complete="address"),
         Arg(("count",), {"nargs": "?", "default": "16", "help": "instructions (default 16)"}),
         aliases=("dis",))
def disasm(session, ns):
    from ..native.disasm import disassemble
    native = session.native_frame
    addr = session.parse_address(ns.address) if ns.address else \
        native.pc if native is not None else session.thread.pc
    count = _count(ns.count, 10000)
    try:
        return DisasmResult(addr, disassemble(session.process, addr, count))
    except FaultError as e:
        return DisasmResult(addr, [], str(e))


def basename(path):
    return os.path.basename(path) if path else path
