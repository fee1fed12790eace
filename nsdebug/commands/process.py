"""Commands about the process as a native image: info, threads, maps, x, sym, disasm, help."""

from __future__ import annotations

from ..errors import CommandError
from ..record import record
from ..model import info as target_info
from ..model import stacks
from .registry import Arg, command, help_lines


@record
class MapsResult:
    maps: list                  # [corefile.process.Mapping]


@record
class HexdumpResult:
    address: int
    data: str         # hex of the bytes read
    requested: int
    error: str | None = None


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
    return target_info.process_info(session.target)


@command("threads", "every thread: tid, pc and its symbol, sp")
def threads(session, ns):
    return stacks.thread_rows(session.target, session.selection)


@command("locks", "who waits for which lock, who holds it, and deadlocks")
def locks(session, ns):
    """For each thread the lock it is blocked on and the locks it holds, then the
    cycles of the wait-for graph."""
    from ..model.locks import locks as find_locks
    return find_locks(session.target)


@command("maps", "the memory mappings and where their bytes come from")
def maps(session, ns):
    return MapsResult(session.target.process.mappings())


@command("x", "hexdump memory",
         Arg(("address",), {"help": "address, symbol, $register"}, complete="address"),
         Arg(("count",), {"nargs": "?", "default": "64", "help": "bytes (default 64)"}))
def hexdump(session, ns):
    addr = session.parse_address(ns.address)
    count = _count(ns.count, 1 << 20)
    data, error = session.target.process.memory.read_prefix(addr, count)
    return HexdumpResult(addr, data.hex(), count, error)


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
    return session.target.process.address_info(session.parse_address(ns.address))


@command("disasm", "disassemble machine code (default: at the selected thread's pc)",
         Arg(("address",), {"nargs": "?", "help": "where to start (default $pc)"},
             complete="address"),
         Arg(("count",), {"nargs": "?", "default": "16", "help": "instructions (default 16)"}),
         aliases=("dis",))
def disasm(session, ns):
    from ..native.disasm import disassembly
    native = session.native_frame
    addr = session.parse_address(ns.address) if ns.address else \
        native.pc if native is not None else session.thread.pc
    return disassembly(session.target.process, addr, _count(ns.count, 10000))
