"""Session: the shell's state over an opened core (a Target): what the user selected, the
preview options, the warnings already shown, and the address syntax users type."""

from __future__ import annotations


from ..cpython.objects import Preview
from ..errors import CommandError, NsdebugError
from ..record import Factory, record
from ..model.stacks import Selection


@record
class Options:
    """Bounds for value previews and walks, settable from the command line."""
    max_depth: int = 2
    max_items: int = 10
    max_string: int = 80
    max_frames: int = 4096
    redact: bool = False       # previews hide values under secret-looking keys (report)


@record
class Session:
    target: object                       # target.Target: the opened core
    options: Options = Factory(Options)
    thread_index: int = 0
    frame_index: int = 0       # 0 = innermost Python frame of the selected thread
    native_index: int | None = None      # the selected native frame (frame cN)
    interrupted: object = None  # callable returning True when the user pressed Ctrl-C
    warnings_shown: int = 0    # of the runtime's warnings
    notes_shown: int = 0       # of the target's own
    process_shown: int | None = None    # of the process's (None: all those at opening)

    def __post_init__(self):
        if self.process_shown is None:
            self.process_shown = len(self.target.process.warnings)
        crashed = self.target.process.crashed_thread
        if crashed is not None:
            self.thread_index = crashed.index

    def new_warnings(self):
        """Warnings not yet shown, of the target and of the runtime model (the CLI and
        the shell print them once); the process's are shown when it is opened, and
        those it finds later (a mapped file checked on first use) here."""
        t = self.target
        out = t.process.warnings[self.process_shown:] + t.notes[self.notes_shown:]
        self.process_shown = len(t.process.warnings)
        self.notes_shown = len(t.notes)
        if t.has("runtime"):
            rt = t.runtime
            out += rt.warnings[self.warnings_shown:]
            self.warnings_shown = len(rt.warnings)
        return out

    @property
    def selection(self):
        return Selection(self.thread_index, self.frame_index, self.native_index)

    @property
    def bounds(self):
        """The preview bounds the options set."""
        o = self.options
        return Preview(o.max_depth, o.max_items, o.max_string, o.redact)

    @property
    def thread(self):
        return self.target.process.threads[self.thread_index]

    def select_thread(self, tid):
        for t in self.target.process.threads:
            if t.tid == tid or (tid < len(self.target.process.threads) and t.index == tid
                                and not any(x.tid == tid for x in self.target.process.threads)):
                self.thread_index = t.index
                self.frame_index = 0
                self.native_index = None
                return t
        raise CommandError(f"no thread {tid} (see 'threads')")

    def selected_frame(self):
        """(runtime, the selected Python frame, its index)."""
        from ..model.stacks import python_thread
        rt = self.target.runtime
        frames = rt.frames(python_thread(self.target, self.thread_index))
        if not frames:
            raise CommandError("this thread has no Python frames")
        idx = min(self.frame_index, len(frames) - 1)
        return rt, frames[idx], idx

    @property
    def native_frame(self):
        """The selected native frame (frame cN), or None for the thread's own registers."""
        if self.native_index is None:
            return None
        frames = self.target.native.frames(self.thread_index)
        return frames[self.native_index] if self.native_index < len(frames) else None

    def frame_registers(self):
        """Registers by name in the selected native frame (None where the unwinder could
        not recover them), else the thread's as the core recorded them."""
        f = self.native_frame
        if f is None or self.native_index == 0:
            return dict(self.thread.regs)
        from ..native.unwind import DWARF_REGS
        return {name: f.regs.get(i) for i, name in enumerate(DWARF_REGS)}

    # Addresses as users type them: 0x7f.., 1234, symbol, symbol+0x10, $rip, @id.
    ADDRESS = r"^\s*(?P<base>[^+\-\s]+)\s*(?:(?P<op>[+\-])\s*(?P<off>\S+))?\s*$"

    def parse_address(self, text):
        import re
        m = re.match(self.ADDRESS, text)
        if not m:
            raise CommandError(f"not an address: {text!r}")
        base = self._address_term(m.group("base"))
        if m.group("op"):
            off = self._number(m.group("off"))
            if off is None:
                raise CommandError(f"not an offset: {m.group('off')!r}")
            base = base + off if m.group("op") == "+" else base - off
        if not 0 <= base < 1 << 64:
            raise CommandError(f"address out of range: {text!r}")
        return base

    def resolve_object(self, text):
        """(address, where) for a name visible in the selected frame, or an address."""
        text = text.strip()
        if text.isidentifier():
            try:
                return self.lookup_name(text)
            except CommandError:
                try:
                    return self.parse_address(text), "symbol"
                except CommandError:
                    pass
                raise
        return self.parse_address(text), "address"

    def lookup_name(self, name):
        """(address, where) of a name visible in the selected frame: local, global, builtin."""
        rt, f, idx = self.selected_frame()
        hit = rt.frame_walker.lookup_name(f, name, rt.main_interpreter.builtins)
        if hit is None:
            raise CommandError(f"name {name!r} is not a local, global or builtin of "
                               f"frame {idx}")
        addr, where = hit
        return addr, {"local": f"local of frame {idx} ({f.function})",
                      "global": f"global of {f.filename}", "builtin": "builtin"}[where]

    @staticmethod
    def _number(text):
        try:
            return int(text, 0)
        except ValueError:
            try:
                return int(text, 16) if text.isascii() and text.isalnum() and \
                    not text.strip("0123456789abcdefABCDEF") else None
            except ValueError:
                return None

    def _address_term(self, term):
        if term.startswith("@"):
            # A node id from a .heapsnapshot: resolved through the heap graph.
            n = self._number(term[1:])
            if n is None:
                raise CommandError(f"not a snapshot id: {term!r}")
            g = self.target.heap
            i = g.index_of_snapshot_id(n)
            if i is None or i < g.n_synth:
                raise CommandError(f"no object has snapshot id {n}")
            return int(g.addr[i])
        if term.startswith("$"):
            reg = term[1:].lower()
            reg = {"pc": "rip", "sp": "rsp", "fp": "rbp"}.get(reg, reg)
            regs = self.frame_registers()
            if reg not in regs:
                raise CommandError(f"no register {term}")
            if regs[reg] is None:
                raise CommandError(f"{term} is not known in the selected native frame")
            return regs[reg]
        n = self._number(term)
        if n is not None:
            return n
        try:
            return self.target.process.symbol_address(term)
        except NsdebugError:
            raise CommandError(f"not an address or known symbol: {term!r}") from None
